//! `wrun cluster start|stop|delete|status`: the Kubernetes half, as
//! `minikube start` gives it, but in the daemon already running and with
//! no VM. `start` also writes the `wrun` cluster, user and context into
//! the kubeconfig kubectl reads.

use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use hyper::Method;

use super::Ctx;
use super::kubeconfig;
use crate::cluster::pki::Pki;
use crate::daemon::kube::ClusterStatus;

/// Run a single-node Kubernetes cluster that the real kubectl talks to
#[derive(Debug, Args)]
pub struct ClusterCommand {
    #[command(subcommand)]
    action: ClusterAction,
}

#[derive(Debug, Subcommand)]
enum ClusterAction {
    /// Start the cluster (and the daemon, if none runs), and point kubectl
    /// at it
    Start {
        /// The API's port on 127.0.0.1 (default: the one it had, or a
        /// free one)
        #[arg(long, value_name = "PORT")]
        api_port: Option<u16>,
    },
    /// Stop every pod; objects are kept for the next start
    Stop,
    /// Stop the cluster, remove every object and the kubeconfig entries
    Delete,
    /// Say whether the cluster runs, where, and how many pods it has
    Status,
}

/// The name of the kubeconfig's cluster, user and context.
const NAME: &str = "wrun";

/// Starts the cluster (a no-op when it runs) and writes the `wrun`
/// context into the kubeconfig: the status, the API's address and the
/// kubeconfig's path.
pub(super) async fn start(
    ctx: &Ctx,
    api_port: Option<u16>,
) -> Result<(ClusterStatus, String, std::path::PathBuf)> {
    let client = ctx.client().await?;
    let path = match api_port {
        Some(p) => format!("/_wrun/cluster/start?port={p}"),
        None => "/_wrun/cluster/start".to_string(),
    };
    let status: ClusterStatus = client.json(Method::POST, &path, None::<&()>).await?;
    let server = status
        .server
        .clone()
        .context("the daemon started the cluster but reported no address")?;
    let pki_dir = ctx.root.dir().join("cluster").join("pki");
    let pki = Pki::load_or_create(&pki_dir)
        .with_context(|| format!("reading the cluster's credentials in {}", pki_dir.display()))?;
    let file = kubeconfig::default_path()?;
    kubeconfig::merge(
        &file,
        &kubeconfig::Entry {
            name: NAME.into(),
            server: server.clone(),
            ca_pem: pki.ca_pem.clone(),
            token: pki.token.clone(),
            client_cert_pem: pki.client_cert_pem.clone(),
            client_key_pem: pki.client_key_pem.clone(),
            namespace: Some("default".into()),
        },
    )?;
    Ok((status, server, file))
}

impl ClusterCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(self.run(ctx))?
    }

    async fn run(self, ctx: &Ctx) -> Result<u8> {
        match self.action {
            ClusterAction::Start { api_port } => {
                let began = Instant::now();
                let (status, server, file) = start(ctx, api_port).await?;
                println!(
                    "✓ wrun cluster \"{NAME}\" is running: Kubernetes API at {server}, node \"{}\" Ready",
                    status.node
                );
                println!(
                    "✓ kubectl is now configured to use \"{NAME}\" (context in {})",
                    file.display()
                );
                println!(
                    "  started in {:.0?}; try: kubectl run kubia --image=kubia --port=8080",
                    began.elapsed()
                );
                Ok(0)
            }
            ClusterAction::Stop => {
                let client = ctx.client().await?;
                client.call(Method::POST, "/_wrun/cluster/stop").await?;
                println!("✓ wrun cluster stopped: its pods are stopped, its objects kept");
                Ok(0)
            }
            ClusterAction::Delete => {
                let client = ctx.client().await?;
                client.call(Method::POST, "/_wrun/cluster/delete").await?;
                let file = kubeconfig::default_path()?;
                let removed = kubeconfig::remove(&file, NAME)?;
                println!("✓ wrun cluster deleted: every object is gone");
                if removed {
                    println!("✓ removed the \"{NAME}\" context from {}", file.display());
                }
                Ok(0)
            }
            ClusterAction::Status => {
                let client = ctx.client().await?;
                let s: ClusterStatus = client
                    .json(Method::GET, "/_wrun/cluster", None::<&()>)
                    .await?;
                if s.running {
                    println!("wrun cluster: Running");
                    println!("apiserver: {}", s.server.unwrap_or_default());
                    println!("node: {} (Ready)", s.node);
                    println!("pods: {} ({} running)", s.pods, s.running_pods);
                    Ok(0)
                } else {
                    println!("wrun cluster: Stopped");
                    println!("pods: {} kept", s.pods);
                    Ok(7)
                }
            }
        }
    }
}
