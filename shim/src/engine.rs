//! The pod's one wasm engine (wrun's sandbox), made in the background as
//! the shim process starts: the shim answers containerd meanwhile, and the
//! first container's program is compiled as soon as both are ready.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::OnceCell;
use wrun::sandbox::{Sandbox, SandboxOptions};

/// Guests one shim (one pod) may hold at once in the engine's pool; more
/// are allocated on demand.
const MAX_INSTANCES: u32 = 256;

/// The sandbox being made, or made; clones share it.
#[derive(Clone, Default)]
pub struct Engine(Arc<OnceCell<Result<Arc<Sandbox>, String>>>);

impl Engine {
    /// Starts making the sandbox.
    pub fn start() -> Self {
        let engine = Self::default();
        let making = engine.clone();
        tokio::spawn(async move {
            let _ = making.get().await;
        });
        engine
    }

    /// The sandbox, once made; why not, if it cannot be.
    pub async fn get(&self) -> Result<Arc<Sandbox>, String> {
        self.0
            .get_or_init(|| async {
                let made = tokio::task::spawn_blocking(|| {
                    Sandbox::new(&SandboxOptions {
                        cache_dir: cache_dir(),
                        staging_dir: None,
                        max_instances: MAX_INSTANCES,
                    })
                })
                .await;
                match made {
                    Ok(Ok(s)) => Ok(Arc::new(s)),
                    Ok(Err(e)) => Err(format!("wasm engine: {e}")),
                    Err(e) => Err(format!("wasm engine: {e}")),
                }
            })
            .await
            .clone()
    }
}

/// Where compiled programs are cached, across shims: `WRUN_SHIM_CACHE_DIR`
/// (containerd passes its environment on), else under /var/cache.
fn cache_dir() -> PathBuf {
    std::env::var_os("WRUN_SHIM_CACHE_DIR")
        .map(Into::into)
        .unwrap_or_else(|| "/var/cache/containerd-shim-wrun-v1".into())
}
