//! The one wasmtime `Engine` of a process, and the epoch ticker that drives
//! time slicing and stops.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::SandboxError;

/// How often the epoch advances. Each tick a running guest yields to the
/// executor and its stop flag is checked, so this bounds both the latency of
/// `stop` and the time slice one guest can hold a worker thread.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Bytes of a freed linear memory kept resident for the next instance.
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// Bytes of a freed table kept resident for the next instance.
const TABLE_KEEP_RESIDENT: usize = 64 << 10;

/// How the engine is sized.
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where compiled code is cached.
    pub cache_dir: PathBuf,
    /// Where compiled code is written before it is moved into the cache:
    /// a directory on the same file system that is deleted once this
    /// process is gone, so that a process killed while writing leaves
    /// nothing behind. `None`: in the cache itself.
    pub staging_dir: Option<PathBuf>,
    /// Instances the pooling allocator reserves room for. A one-shot CLI run
    /// needs a handful; the daemon sizes this for thousands of containers.
    pub max_instances: u32,
}

/// Builds the engine: epoch interruption on, and the pooling allocator when
/// the address space allows its reservation; on-demand allocation otherwise.
/// Returns how many instances its pool holds (`None`: no pool).
pub fn new_engine(opts: &SandboxOptions) -> Result<(Engine, Option<u32>), SandboxError> {
    let mut config = base_config();
    let mut pool = PoolingAllocationConfig::new();
    let n = opts.max_instances.max(1);
    pool.total_component_instances(n)
        // A component holds several core instances (its code, the WASI
        // adapter, shims); allow a few per component.
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        // Every pooled slot costs set-up work (a stack's guard page is an
        // mprotect, and a memory mapping of its own): size the stacks and
        // GC heaps to the pool too, not to wasmtime's default of a
        // thousand.
        .total_stacks(n)
        .total_gc_heaps(n)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        // A freed slot keeps the pages its guest dirtied, up to these
        // sizes, and is reset by copying them back from the image instead
        // of unmapping them: no page faults and no TLB shootdowns when the
        // next instance (a wasi:http request, a restart) takes the slot.
        // Finding the dirty pages needs Linux's PAGEMAP_SCAN (6.7+);
        // without it the low bytes are reset with `memset`.
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok((engine, Some(n))),
        Err(e) => {
            tracing::info!(error = %e, "pooling allocator unavailable; allocating on demand");
            Engine::new(&base_config())
                .map(|engine| (engine, None))
                .map_err(|e| SandboxError::Engine(e.to_string()))
        }
    }
}

pub(super) fn base_config() -> Config {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    done: Arc<AtomicBool>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let spawned = std::thread::Builder::new()
            .name("wrun-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the epoch ticker; guests will not be preempted");
        }
        Self { done }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}
