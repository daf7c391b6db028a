//! The daemon: one long-running process per state root that owns the
//! containers and serves the Docker Engine API on a Unix socket (a named
//! pipe on Windows). One process shares one wasmtime engine, one compile
//! cache and one pooling allocator across every container.
//!
//! **Architecture Invariant:** the daemon drives `container/` and
//! `sandbox/`; neither knows it exists. Docker's JSON is converted in
//! `api/` and `routes/` only.

pub mod dashboard;
pub mod error;
pub mod events;
pub mod exec;
mod fdlimit;
pub mod http;
pub mod io;
pub mod kube;
mod lock;
pub mod logs;
pub mod networks;
pub mod node;
pub mod proxy;
mod routes;
pub mod supervisor;
pub mod websocket;

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::sandbox::{Sandbox, SandboxOptions};
use crate::state::StateRoot;
use crate::transport::{Address, Listener};
pub use error::DaemonError;
use routes::ServerCtx;
use supervisor::Supervisor;

/// How the daemon is started.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    pub root: StateRoot,
    pub address: Address,
    /// Guest instances the engine's pool reserves room for.
    pub max_instances: u32,
    /// The default network's subnet.
    pub bridge_subnet: ipnet::Ipv4Net,
}

/// Runs the daemon until SIGTERM, Ctrl-C or `wrun daemon stop`; then stops
/// every container, saves their state and removes the socket.
pub fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    let _lock = lock::DaemonLock::acquire(opts.root.dir())?;
    let files = fdlimit::raise();
    tracing::info!(limit = ?files, "open-file limit");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("wrun-daemon")
        .build()
        .map_err(|e| DaemonError::internal(format!("cannot start the async runtime: {e}")))?;
    // The accept loop runs on a worker rather than on this thread, so that
    // each connection's task starts on the worker that accepted it instead
    // of waking another thread.
    runtime.block_on(async {
        tokio::spawn(serve(opts))
            .await
            .map_err(|e| DaemonError::internal(format!("the daemon's server failed: {e}")))?
    })
}

async fn serve(opts: DaemonOptions) -> Result<(), DaemonError> {
    // Its database connections last as long as it does.
    crate::state::long_lived_process();
    let staging_dir = opts.root.staging_dir().map_err(|e| {
        DaemonError::internal(format!(
            "cannot claim a staging directory under {}: {e}",
            opts.root.tmp_dir().display()
        ))
    })?;
    let sandbox = Sandbox::new(&SandboxOptions {
        cache_dir: opts.root.compiled_cache_dir(),
        staging_dir: Some(staging_dir),
        max_instances: opts.max_instances,
    })
    .map_err(DaemonError::internal)?;
    let sup = Arc::new(Supervisor::new(&opts.root, sandbox, opts.bridge_subnet)?);
    let mut listener = Listener::bind(&opts.address)
        .map_err(|e| DaemonError::internal(format!("cannot listen on {}: {e}", opts.address)))?;
    sup.restore()?;
    let cluster = Arc::new(kube::Cluster::open(&opts.root)?);
    if let Err(e) = cluster.restore(&sup).await {
        tracing::warn!(error = %e, "the cluster did not start again");
        eprintln!("wrun: the cluster did not start again: {e}");
    }
    let ctx = Arc::new(ServerCtx {
        host: opts.address.to_string(),
        shutdown: tokio::sync::Notify::new(),
        cluster: cluster.clone(),
        dashboard: Arc::new(dashboard::Dashboard::default()),
    });
    tracing::info!(address = %opts.address, "wrun daemon listening");
    eprintln!("wrun daemon listening on {}", opts.address);
    let stop = stop_signal(ctx.clone());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            conn = listener.accept() => {
                let conn = match conn {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let sup = sup.clone();
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let sup = sup.clone();
                        let ctx = ctx.clone();
                        async move { Ok::<_, std::convert::Infallible>(routes::handle(sup, ctx, req).await) }
                    });
                    let served = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(conn), service)
                        .with_upgrades()
                        .await;
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut stop => break,
        }
    }
    eprintln!("wrun daemon shutting down");
    listener.close();
    // The cluster stays on: it starts again with the daemon.
    let _ = cluster.stop(false).await;
    sup.shutdown().await;
    Ok(())
}

/// Resolves on SIGTERM, SIGINT (Ctrl-C) or an API shutdown request.
async fn stop_signal(ctx: Arc<ServerCtx>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        if let (Ok(mut term), Ok(mut int)) = (term, int) {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
                () = ctx.shutdown.notified() => {}
            }
            return;
        }
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = ctx.shutdown.notified() => {}
    }
}
