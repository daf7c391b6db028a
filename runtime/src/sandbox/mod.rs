//! The sandbox: one shared wasmtime [`Engine`], a compile cache, and running
//! WASIp1 modules and WASIp2 command components, or serving wasi:http
//! components, with exactly the
//! capabilities a [`ProcessSpec`] grants.
//!
//! **Architecture Invariant:** this module knows nothing of images, HTTP
//! APIs, the daemon or containerd. It is given bytes and a spec, and
//! returns an [`Exit`]. Capabilities are granted in one place: [`grant`].

mod adapt;
mod cache;
mod engine;
mod fs;
mod grant;
mod limits;
mod mappings;
mod overflow;
mod procfs;
pub mod proctable;
mod quota_stream;
mod run;
mod sched;
mod serve;
mod stop;
mod usage;

use std::path::PathBuf;
use std::sync::Arc;

pub use engine::SandboxOptions;
pub use grant::{Input, Mount, Output, OutputSink, ProcessSpec, Stdio};
pub use run::{DEFAULT_HTTP_PORT, Exit, OOM_DESCRIPTION};
pub use stop::{StopHandle, StopReason};
pub use usage::{DEFAULT_OPEN_FILES, Usage};

use wasmtime::Engine;

use crate::image::Digest;
use crate::image::wasm::WasmKind;

/// Errors loading or starting a guest program. Failures *of* the guest (a
/// trap, running out of memory) are not errors: they are an [`Exit`].
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("wasm engine: {0}")]
    Engine(String),
    #[error("{program}: cannot run {what}: wrun runs WebAssembly (WASI) programs only")]
    NotWasm { program: String, what: &'static str },
    #[error("{program}: invalid WebAssembly: {message}")]
    Compile { program: String, message: String },
    #[error("{program}: {message}")]
    NotCommand { program: String, message: String },
    #[error("{program}: cannot start: {message}")]
    Start { program: String, message: String },
    #[error("mount {}: {source}", host.display())]
    Mount {
        host: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A compiled guest program, ready to instantiate. A WASIp1 module is
/// converted into a command component when it is compiled.
#[derive(Clone)]
pub struct Program {
    component: wasmtime::component::Component,
    /// Linked against the pool's engine once, when loaded, rather than on
    /// every start: a command, or a wasi:http component (served rather
    /// than run).
    ready: run::Ready,
    /// The digest of the bytes it was compiled from.
    digest: Digest,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("http", &matches!(self.ready, run::Ready::Proxy(_)))
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// Keeps guests' exits and traps from capturing a Rust backtrace.
///
/// wasmtime records one with each error a host function returns, and every
/// `proc_exit` is such an error. With `RUST_BACKTRACE=1` in the
/// environment (common on developers' machines) that stack walk was a few
/// percent of a daemon's CPU when running short containers, and its frames
/// are wrun's, never the guest's, so nobody reads them. Unless the user set
/// `RUST_LIB_BACKTRACE`, this sets it to 0; panics still print their
/// backtrace as `RUST_BACKTRACE` says.
///
/// Call it first in `main`, while the process has one thread.
pub fn quiet_error_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called at the start of `main`, before any thread exists
        // that could read the environment at the same time.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// How many distinct programs [`Sandbox::load`] keeps in memory.
pub(super) const LOADED_PROGRAMS: usize = 64;

/// The process-wide sandbox. Create one and share it.
pub struct Sandbox {
    engine: Engine,
    /// Programs already loaded by this process, by the digest of their
    /// bytes: a daemon running many containers of one image compiles and
    /// maps its code once.
    loaded: std::sync::Mutex<std::collections::HashMap<Digest, Program>>,
    /// One gate per program being loaded: the callers that want the same
    /// program at once wait for the first one's compile rather than each
    /// compiling it (an exec storm into a fresh container would otherwise
    /// compile its shell once per exec, all at the same time).
    loading: std::sync::Mutex<std::collections::HashMap<Digest, Arc<std::sync::Mutex<()>>>>,
    /// The digests of programs by a key under which their bytes never
    /// change (a file of an image's read-only layer, see
    /// [`Sandbox::load_fixed`]): a start of a program loaded before neither
    /// reads nor hashes it again.
    fixed: std::sync::Mutex<std::collections::HashMap<String, Digest>>,
    cache: cache::CompileCache,
    linkers: run::Linkers,
    _ticker: engine::EpochTicker,
    /// Where guests go when the engine's pool is full.
    overflow: Arc<overflow::Overflow>,
    /// Guests that may be in the pool at once.
    seats: Arc<overflow::Seats>,
    /// The kernel's ceiling on the process's memory mappings.
    mappings: Arc<mappings::Mappings>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox").finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(opts: &SandboxOptions) -> Result<Self, SandboxError> {
        let (engine, pool) = engine::new_engine(opts)?;
        let cache = cache::CompileCache::new(&engine, &opts.cache_dir, opts.staging_dir.clone());
        let linkers = run::Linkers::new(&engine);
        let ticker = engine::EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            loaded: Default::default(),
            loading: Default::default(),
            fixed: Default::default(),
            cache,
            linkers,
            _ticker: ticker,
            overflow: Arc::new(overflow::Overflow::default()),
            seats: overflow::Seats::new(pool),
            mappings: Arc::new(mappings::Mappings::new()),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The program loaded before under `key`, if it is still loaded. A key
    /// names bytes that cannot change, such as a file of an image's
    /// read-only layer; [`Sandbox::load_fixed`] records it.
    pub fn fixed(&self, key: &str) -> Option<Program> {
        let digest = self
            .fixed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()?;
        self.loaded().get(&digest).cloned()
    }

    /// [`Sandbox::load`], and records the program under `key`, a name for
    /// `bytes` that holds as long as they cannot change.
    pub fn load_fixed(
        &self,
        name: &str,
        key: String,
        bytes: &[u8],
    ) -> Result<Program, SandboxError> {
        let program = self.load(name, bytes)?;
        let mut fixed = self.fixed.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded as the loaded programs are: a key whose program has
        // been dropped finds nothing and is recorded again.
        if fixed.len() >= LOADED_PROGRAMS * 16 {
            fixed.clear();
        }
        fixed.insert(key, program.digest.clone());
        Ok(program)
    }

    /// Compiles (or loads from the cache) the program in `bytes`. `name`
    /// names it in errors, e.g. its path in the container.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Program, SandboxError> {
        let kind = WasmKind::sniff(bytes);
        if let WasmKind::Other(what) = kind {
            return Err(SandboxError::NotWasm {
                program: name.to_string(),
                what,
            });
        }
        let digest = Digest::of(bytes);
        if let Some(p) = self.loaded().get(&digest) {
            return Ok(p.clone());
        }
        let gate = self
            .loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(digest.clone())
            .or_default()
            .clone();
        let loaded = {
            let _turn = gate.lock().unwrap_or_else(|p| p.into_inner());
            // Another caller may have loaded it while this one waited.
            let done = self.loaded().get(&digest).cloned();
            match done {
                Some(p) => Ok(p),
                None => self.load_new(name, bytes, kind, digest.clone()),
            }
        };
        self.loading
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&digest);
        loaded
    }

    /// Compiles (or loads from the cache) a program this process has not
    /// loaded, checks it, and keeps it.
    fn load_new(
        &self,
        name: &str,
        bytes: &[u8],
        kind: WasmKind,
        digest: Digest,
    ) -> Result<Program, SandboxError> {
        if kind == WasmKind::Module {
            adapt::check_module(name, bytes)?;
        }
        let component = self
            .cache
            .load_or_compile(&self.engine, name, &digest, kind, bytes)?;
        let http = run::check_entry_points(&self.engine, name, &component)?;
        let ready = self.linkers.ready(name, &component, http)?;
        let program = Program {
            component,
            ready,
            digest: digest.clone(),
        };
        let mut map = self.loaded();
        if map.len() >= LOADED_PROGRAMS {
            map.clear();
        }
        map.insert(digest, program.clone());
        Ok(program)
    }

    fn loaded(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Digest, Program>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `program` to completion, or until `stop` fires.
    pub async fn run(
        &self,
        name: &str,
        program: &Program,
        spec: ProcessSpec,
        stop: &StopHandle,
    ) -> Result<Exit, SandboxError> {
        run::run(self, name, program, spec, stop).await
    }
}
