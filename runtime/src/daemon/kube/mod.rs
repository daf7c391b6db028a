//! The cluster inside the daemon: the Kubernetes API over HTTPS on
//! 127.0.0.1, its authentication, and the cluster's lifecycle (`wrun
//! cluster start|stop|delete|status`). One route file per concern:
//! `routes.rs` parses paths, `objects.rs` serves the generic verbs,
//! `watch.rs` streams changes, `pods.rs` the pod subresources.
//!
//! **Architecture Invariant:** the listener binds 127.0.0.1 only, and
//! every request but none is authenticated (a bearer token or a client
//! certificate from the kubeconfig); anything else gets 401.

mod metrics;
mod objects;
mod pods;
mod routes;
mod scale;
mod watch;

pub use pods::container_exec;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::error::DaemonError;
use super::node::NodeAgent;
use super::supervisor::Supervisor;
use crate::cluster::bootstrap;
use crate::cluster::pki::Pki;
use crate::cluster::store::Store;
use crate::state::StateRoot;

/// The setting that says the cluster is on (it comes back with the daemon).
const ENABLED: &str = "enabled";
/// The setting that keeps the API's port across starts.
const PORT: &str = "api-port";

/// What `wrun cluster status` and `start` report.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterStatus {
    pub running: bool,
    /// `https://127.0.0.1:PORT` when running.
    pub server: Option<String>,
    pub node: String,
    pub pods: usize,
    pub running_pods: usize,
}

/// What every API request may need.
#[derive(Debug)]
pub struct Api {
    pub store: Arc<Store>,
    pub sup: Arc<Supervisor>,
    pub node: String,
    pub server: String,
    /// CPU readings between `kubectl top` requests.
    pub metrics: metrics::Sampler,
}

struct Running {
    port: u16,
    api: Arc<Api>,
    cancel: CancellationToken,
    agent: Arc<NodeAgent>,
}

/// The cluster: off until `start`, then an API listener and the node
/// agent.
pub struct Cluster {
    root: StateRoot,
    store: Arc<Store>,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

fn kube_err(e: crate::kube::KubeError) -> DaemonError {
    DaemonError::internal(format!("cluster: {e}"))
}

/// The node's (and the cluster's) name.
pub const NODE_NAME: &str = "wrun";

impl Cluster {
    pub fn open(root: &StateRoot) -> Result<Self, DaemonError> {
        let store = Store::open(root).map_err(kube_err)?;
        Ok(Self {
            root: root.clone(),
            store,
            running: Mutex::new(None),
        })
    }

    fn running(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// What the API's routes need, while the cluster runs (the dashboard
    /// serves the same routes to its logged-in page).
    pub fn api(&self) -> Option<Arc<Api>> {
        self.running().as_ref().map(|r| r.api.clone())
    }

    /// Starts the cluster again if it was on when the daemon stopped.
    pub async fn restore(&self, sup: &Arc<Supervisor>) -> Result<(), DaemonError> {
        if self.store.setting(ENABLED).map_err(kube_err)?.as_deref() == Some("true") {
            self.start(sup, None).await?;
        }
        Ok(())
    }

    /// Turns the cluster on (a no-op when it is on): the objects every
    /// cluster has, the API listener, the node agent.
    pub async fn start(
        &self,
        sup: &Arc<Supervisor>,
        port: Option<u16>,
    ) -> Result<ClusterStatus, DaemonError> {
        // The lock is let go before `status` takes it again.
        let current = self.running().as_ref().map(|r| r.port);
        if let Some(running_port) = current {
            if port.is_some_and(|p| p != running_port) {
                return Err(DaemonError::Conflict(format!(
                    "the cluster is already running on port {running_port}: stop it first to change the port"
                )));
            }
            return self.status();
        }
        let pki_dir = self.root.dir().join("cluster").join("pki");
        let pki = tokio::task::spawn_blocking(move || Pki::load_or_create(&pki_dir))
            .await
            .map_err(DaemonError::internal)?
            .map_err(|e| DaemonError::internal(format!("cluster certificates: {e}")))?;
        let tls = pki
            .server_config()
            .map_err(|e| DaemonError::internal(format!("cluster TLS: {e}")))?;
        let stored_port = self
            .store
            .setting(PORT)
            .map_err(kube_err)?
            .and_then(|p| p.parse::<u16>().ok());
        let wanted = port.or(stored_port).unwrap_or(0);
        let listener =
            match TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, wanted))).await {
                Ok(l) => l,
                // The kept port was taken meanwhile: take another, as the user
                // did not ask for this one.
                Err(_) if port.is_none() && wanted != 0 => {
                    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                        .await
                        .map_err(|e| {
                            DaemonError::internal(format!("cluster API: cannot listen: {e}"))
                        })?
                }
                Err(e) => {
                    return Err(DaemonError::Conflict(format!(
                        "cluster API: cannot listen on 127.0.0.1:{wanted}: {e}"
                    )));
                }
            };
        let local = listener.local_addr().map_err(DaemonError::internal)?;
        let server = format!("https://127.0.0.1:{}", local.port());
        bootstrap::ensure(&self.store, NODE_NAME, &server).map_err(kube_err)?;
        self.store
            .set_setting(PORT, Some(&local.port().to_string()))
            .map_err(kube_err)?;
        self.store
            .set_setting(ENABLED, Some("true"))
            .map_err(kube_err)?;
        let api = Arc::new(Api {
            store: self.store.clone(),
            sup: sup.clone(),
            node: NODE_NAME.into(),
            server: server.clone(),
            metrics: metrics::Sampler::default(),
        });
        let cancel = CancellationToken::new();
        super::proxy::start(self.store.clone(), sup.networks(), cancel.clone());
        tokio::spawn(serve(
            listener,
            tokio_rustls::TlsAcceptor::from(tls),
            Arc::new(pki),
            api.clone(),
            cancel.clone(),
        ));
        tracing::info!(%server, "cluster API listening");
        let agent = NodeAgent::start(self.store.clone(), sup.clone(), NODE_NAME);
        crate::cluster::controllers::start(&self.store, &cancel);
        *self.running() = Some(Running {
            port: local.port(),
            api: api.clone(),
            cancel,
            agent,
        });
        self.status()
    }

    /// Turns the cluster off: the listener closes; objects stay.
    pub async fn stop(&self, remember: bool) -> Result<(), DaemonError> {
        let running = self.running().take();
        if let Some(r) = running {
            r.cancel.cancel();
            r.agent.stop().await;
        }
        if remember {
            self.store.set_setting(ENABLED, None).map_err(kube_err)?;
        }
        Ok(())
    }

    /// Turns the cluster off and removes every object and its credentials.
    pub async fn delete(&self) -> Result<(), DaemonError> {
        self.stop(true).await?;
        self.store.clear().map_err(kube_err)?;
        self.store.set_setting(PORT, None).map_err(kube_err)?;
        let dir = self.root.dir().join("cluster");
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }

    pub fn status(&self) -> Result<ClusterStatus, DaemonError> {
        let guard = self.running();
        let pods_res = crate::kube::resources::by_plural("", "v1", "pods")
            .ok_or_else(|| DaemonError::internal("no pods resource"))?;
        let (pods, _) = self.store.list(pods_res, None).map_err(kube_err)?;
        let running_pods = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Running")
            .count();
        Ok(ClusterStatus {
            running: guard.is_some(),
            server: guard
                .as_ref()
                .map(|r| format!("https://127.0.0.1:{}", r.port)),
            node: NODE_NAME.into(),
            pods: pods.len(),
            running_pods,
        })
    }
}

/// Answers one Kubernetes API request that its caller authenticated.
pub async fn handle(
    api: Arc<Api>,
    req: hyper::Request<hyper::body::Incoming>,
) -> super::http::Resp {
    routes::handle(api, req).await
}

/// Accepts TLS connections until cancelled.
async fn serve(
    listener: TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    pki: Arc<Pki>,
    api: Arc<Api>,
    cancel: CancellationToken,
) {
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cluster API: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = cancel.cancelled() => return,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let pki = pki.clone();
        let api = api.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let stream = match tls.accept(tcp).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "cluster API: TLS handshake failed");
                    return;
                }
            };
            let cert_ok = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .is_some_and(|c| pki.is_admin_cert(c.as_ref()));
            let service = service_fn(move |req| {
                let api = api.clone();
                let pki = pki.clone();
                async move {
                    let auth = req
                        .headers()
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    let resp = if cert_ok || pki.check_token(auth) {
                        routes::handle(api, req).await
                    } else {
                        objects::error(&crate::kube::KubeError::Unauthorized)
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "cluster API connection ended with an error");
                    }
                }
                () = cancel.cancelled() => {}
            }
        });
    }
}
