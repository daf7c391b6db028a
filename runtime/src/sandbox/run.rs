//! Instantiating and running a guest: WASIp2 command components (WASIp1
//! modules arrive converted into them, see `adapt.rs`) through
//! `wasi:cli/run`.

use std::sync::OnceLock;

use wasmtime::component::ResourceTable;
use wasmtime::{Engine, Store, UpdateDeadline};
use wasmtime_wasi::p2::bindings::{Command, CommandPre};
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::grant::{ProcessSpec, wasi_builder};
use super::limits::MemoryLimiter;
use super::overflow::Overflow;
use super::serve::HttpState;
use super::stop::StopHandle;
use super::usage::Metered;
use super::{Program, Sandbox, SandboxError, StopReason};
use crate::net::wasi::{NetCtxView, NetState, NetView};

/// How an out-of-memory ending is described; `inspect` reads it back as
/// `OOMKilled`.
pub const OOM_DESCRIPTION: &str = "out of memory";

/// How a guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It returned or called `exit(code)`.
    Code(i32),
    /// It was stopped from outside.
    Stopped(StopReason),
    /// It grew its memory past the limit.
    OutOfMemory { limit: u64, requested: u64 },
    /// It trapped; the message includes the wasm backtrace.
    Trapped(String),
}

impl Exit {
    /// The exit code a shell sees, following wasmtime and Docker: 134
    /// (128 + SIGABRT) for a trap, 137 (128 + SIGKILL) for out of memory.
    pub fn code(&self) -> i32 {
        match self {
            Self::Code(c) => *c,
            Self::Stopped(r) => r.exit_code(),
            Self::OutOfMemory { .. } => 137,
            Self::Trapped(_) => 134,
        }
    }

    /// A line for the user when the guest did not simply exit.
    pub fn describe(&self) -> Option<String> {
        match self {
            Self::Code(_) => None,
            Self::Stopped(StopReason::Interrupted) => Some("interrupted".into()),
            Self::Stopped(StopReason::Killed) => Some("killed".into()),
            Self::OutOfMemory { limit, requested } => Some(format!(
                "{OOM_DESCRIPTION}: the guest asked for {requested} bytes of linear memory, over its limit of {limit} bytes"
            )),
            Self::Trapped(msg) => Some(format!("guest trapped: {msg}")),
        }
    }
}

pub(super) struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
    net: NetState,
    fs: super::fs::FsState,
}

impl super::fs::FsView for P2State {
    fn fs_view(&mut self) -> super::fs::FsCtxView<'_> {
        super::fs::FsCtxView {
            ctx: self.ctx.filesystem(),
            table: &mut self.table,
            state: &self.fs,
        }
    }
}

impl NetView for P2State {
    fn net_view(&mut self) -> NetCtxView<'_> {
        NetCtxView::new(&mut self.ctx, &mut self.table, &mut self.net)
    }
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// The linkers holding the WASI host functions. Each is built on first use
/// and then shared: a one-shot run pays only for the one it needs.
pub(super) struct Linkers {
    engine: Engine,
    p2: OnceLock<wasmtime::component::Linker<P2State>>,
    http: OnceLock<wasmtime::component::Linker<HttpState>>,
}

pub(super) fn engine_err(e: wasmtime::Error) -> SandboxError {
    SandboxError::Engine(format!("{e:#}"))
}

impl Linkers {
    pub fn new(engine: &Engine) -> Self {
        Self {
            engine: engine.clone(),
            p2: OnceLock::new(),
            http: OnceLock::new(),
        }
    }

    pub(super) fn p2(&self) -> Result<&wasmtime::component::Linker<P2State>, SandboxError> {
        if let Some(l) = self.p2.get() {
            return Ok(l);
        }
        let mut p2 = wasmtime::component::Linker::new(&self.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut p2).map_err(engine_err)?;
        crate::net::wasi::add_to_linker(&mut p2).map_err(engine_err)?;
        super::fs::add_to_linker(&mut p2).map_err(engine_err)?;
        // A converted WASIp1 module's proc_exit. wasmtime-wasi refuses
        // statuses of 126 and above, losing them, yet a shell's 127 ("not
        // found") is common; exit statuses are 8 bits on every host: keep
        // the low byte.
        p2.instance(super::adapt::EXIT_INTERFACE)
            .and_then(|mut i| {
                i.func_wrap(
                    "exit",
                    |_: wasmtime::StoreContextMut<'_, P2State>,
                     (status,): (u32,)|
                     -> wasmtime::Result<()> {
                        Err(wasmtime::format_err!(I32Exit((status & 0xff) as i32)))
                    },
                )
            })
            .map_err(engine_err)?;
        Ok(self.p2.get_or_init(|| p2))
    }
}

impl Linkers {
    pub(super) fn http(&self) -> Result<&wasmtime::component::Linker<HttpState>, SandboxError> {
        if let Some(l) = self.http.get() {
            return Ok(l);
        }
        let mut l = wasmtime::component::Linker::new(&self.engine);
        super::serve::add_http_to_linker(&mut l)?;
        Ok(self.http.get_or_init(|| l))
    }
}

/// A program linked against the pool's engine, ready to instantiate.
#[derive(Clone)]
pub(super) enum Ready {
    Command(CommandPre<P2State>),
    Proxy(ProxyPre<HttpState>),
}

impl Linkers {
    /// Links `component` (a wasi:http one when `http`), refusing a program
    /// that imports something wrun does not provide before any container
    /// is started with it.
    pub(super) fn ready(
        &self,
        name: &str,
        component: &wasmtime::component::Component,
        http: bool,
    ) -> Result<Ready, SandboxError> {
        let err = |e: wasmtime::Error| SandboxError::Start {
            program: name.to_string(),
            message: format!("{e:#}"),
        };
        Ok(if http {
            let pre = self.http()?.instantiate_pre(component).map_err(err)?;
            Ready::Proxy(ProxyPre::new(pre).map_err(err)?)
        } else {
            let pre = self.p2()?.instantiate_pre(component).map_err(err)?;
            Ready::Command(CommandPre::new(pre).map_err(err)?)
        })
    }
}

const RUN_INTERFACE: &str = "wasi:cli/run@0.2";
const HTTP_INTERFACE: &str = "wasi:http/incoming-handler@0.2";

/// Refuses programs that have nothing to run: a component exporting
/// neither `wasi:cli/run` nor
/// `wasi:http/incoming-handler`. Returns whether it is an HTTP component.
pub(super) fn check_entry_points(
    engine: &Engine,
    name: &str,
    c: &wasmtime::component::Component,
) -> Result<bool, SandboxError> {
    let exports: Vec<String> = c
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    if exports.iter().any(|e| e.starts_with(RUN_INTERFACE)) {
        return Ok(false);
    }
    if exports.iter().any(|e| e.starts_with(HTTP_INTERFACE)) {
        return Ok(true);
    }
    Err(SandboxError::NotCommand {
        program: name.to_string(),
        message: format!(
            "this component exports neither wasi:cli/run nor wasi:http/incoming-handler (exports: {})",
            if exports.is_empty() {
                "none".to_string()
            } else {
                exports.join(", ")
            }
        ),
    })
}

pub(super) async fn run(
    sandbox: &Sandbox,
    name: &str,
    program: &Program,
    spec: ProcessSpec,
    stop: &StopHandle,
) -> Result<Exit, SandboxError> {
    sandbox
        .mappings
        .admit()
        .map_err(|message| SandboxError::Start {
            program: name.to_string(),
            message,
        })?;
    let pre = match &program.ready {
        Ready::Command(pre) => pre,
        Ready::Proxy(pre) => {
            let port = if spec.http_port == 0 {
                DEFAULT_HTTP_PORT
            } else {
                spec.http_port
            };
            return super::serve::serve(sandbox, name, program, pre, spec, port, stop).await;
        }
    };
    let limiter = MemoryLimiter::new(spec.memory_limit, spec.usage.clone());
    let usage = spec.usage.clone();
    let net = NetState::new(spec.network.clone()).with_budget(spec.usage.clone());
    let fs = super::fs::FsState {
        root: spec.root.clone(),
        proc: spec.proc.clone(),
        files: super::fs::OpenFiles::new(spec.usage.clone()),
    };
    let builder = wasi_builder(spec)?;
    let start_err = |e: wasmtime::Error| SandboxError::Start {
        program: name.to_string(),
        message: format!("{e:#}"),
    };
    let mut builder = builder;
    let state = P2State {
        ctx: builder.build(),
        table: ResourceTable::new(),
        limiter,
        net,
        fs,
    };
    // In the pool while it has a seat, past it otherwise.
    let seat = sandbox.seats.take();
    let (store, pre) = match &seat {
        Some(_) => (new_store(&sandbox.engine, state, stop), pre.clone()),
        None => {
            let (engine, pre) = sandbox.overflow.command(program).map_err(start_err)?;
            (new_store(&engine, state, stop), pre)
        }
    };
    let overflow = sandbox.overflow.clone();
    let program = program.clone();
    let stop = stop.clone();
    let guest = async move {
        let run = async {
            let (mut store, command) = instantiate(store, &pre, &overflow, &program, &stop).await;
            let result = match command {
                Ok(command) => match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(())) => Err(wasmtime::format_err!(I32Exit(1))),
                    Err(e) => Err(e),
                },
                Err(e) => Err(e),
            };
            (result, store)
        };
        let exit = match race(Metered::new(run, usage), &stop).await {
            Some((result, mut store)) => {
                outcome(Some(result), &stop, Some(store.data_mut().limiter()))
            }
            None => outcome(None, &stop, None),
        };
        // The store is gone by now, and its pool slot with it.
        drop(seat);
        exit
    };
    Ok(super::sched::run(guest)
        .await
        .unwrap_or_else(|lost| Exit::Trapped(lost.0)))
}

/// Instantiates the command in `store`. When the engine's instance pool
/// has no room left, the store's state moves to a store of the overflow
/// engine, which allocates on demand, and the command is instantiated
/// there. Returns the store the guest lives in, with the instance.
async fn instantiate(
    mut store: Store<P2State>,
    pre: &CommandPre<P2State>,
    overflow: &Overflow,
    program: &Program,
    stop: &StopHandle,
) -> (Store<P2State>, wasmtime::Result<Command>) {
    let err = match pre.instantiate_async(&mut store).await {
        Ok(command) => return (store, Ok(command)),
        Err(e) => e,
    };
    if err
        .downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
        .is_none()
    {
        return (store, Err(err));
    }
    let (engine, pre) = match overflow.command(program) {
        Ok(ready) => ready,
        Err(e) => return (store, Err(e.context(err))),
    };
    let mut store = moved(store, &engine, stop);
    let command = pre.instantiate_async(&mut store).await;
    (store, command)
}

/// A store of `engine` holding what `store` held: where a guest whose
/// instantiation found the pool full starts again.
pub(super) fn moved<T: Limited>(store: Store<T>, engine: &Engine, stop: &StopHandle) -> Store<T> {
    let mut state = store.into_data();
    // What the failed attempt counted of memory is gone with its store.
    state.limiter().start_over();
    new_store(engine, state, stop)
}

/// Where a wasi:http component is served when its image exposes no port.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// Store data that carries a memory limiter.
pub(super) trait Limited: Send + 'static {
    fn limiter(&mut self) -> &mut MemoryLimiter;
}

impl Limited for P2State {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}

/// A store for one guest instance, with its limits and deadlines armed.
pub(super) fn new_store<T: Limited>(engine: &Engine, state: T, stop: &StopHandle) -> Store<T> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| s.limiter());
    arm_deadline(&mut store, stop);
    store
}

/// Sets the first epoch deadline and what happens at each: trap when the
/// guest has been asked to stop, else yield to the executor (time slicing)
/// and carry on for another tick.
pub(super) fn arm_deadline<T>(store: &mut Store<T>, stop: &StopHandle) {
    let stop = stop.clone();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if stop.reason().is_some() {
            Ok(UpdateDeadline::Interrupt)
        } else {
            super::sched::epoch_yield();
            Ok(UpdateDeadline::Yield(1))
        }
    });
}

/// Runs the guest until it finishes or `stop` fires. Dropping the guest's
/// future also ends a guest blocked in a host call (a sleep, a read).
async fn race<F: std::future::Future>(guest: F, stop: &StopHandle) -> Option<F::Output> {
    tokio::select! {
        r = guest => Some(r),
        _ = stop.stopped() => None,
    }
}

/// What a guest's end means. `result` is `None` when `stop` ended it;
/// `limiter` is the one of the store it ran in.
fn outcome(
    result: Option<wasmtime::Result<()>>,
    stop: &StopHandle,
    limiter: Option<&mut MemoryLimiter>,
) -> Exit {
    let Some(result) = result else {
        return Exit::Stopped(stop.reason().unwrap_or(StopReason::Killed));
    };
    let err = match result {
        Ok(()) => return Exit::Code(0),
        Err(e) => e,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return Exit::Code(exit.0);
    }
    if let Some(reason) = stop.reason() {
        return Exit::Stopped(reason);
    }
    if let Some((limit, requested)) = limiter.and_then(|l| l.limit().zip(l.exceeded())) {
        return Exit::OutOfMemory { limit, requested };
    }
    Exit::Trapped(trap_message(&err))
}

/// Frames of a guest's backtrace a trap message keeps.
const TRAP_FRAMES: usize = 5;

/// What a trap says: its cause (`wasm trap: call stack exhausted`), then
/// where it happened in the guest (the innermost frames of the wasm
/// backtrace); never the host's own backtrace, which says nothing about
/// the guest.
pub(super) fn trap_message(err: &wasmtime::Error) -> String {
    let bt = err.downcast_ref::<wasmtime::WasmBacktrace>();
    // The causes, outermost first; the backtrace is attached as one of
    // them, and is told apart by its text.
    let bt_text = bt.map(ToString::to_string);
    let causes: Vec<String> = err
        .chain()
        .map(ToString::to_string)
        .filter(|c| Some(c) != bt_text.as_ref())
        .collect();
    let mut msg = causes.join(": ");
    if let Some(bt) = bt {
        let frames = bt.frames();
        msg.push_str("; in the guest at:");
        for f in frames.iter().take(TRAP_FRAMES) {
            let name = f.func_name().unwrap_or("<unnamed>");
            let module = f.module().name().unwrap_or("<module>");
            match f.module_offset() {
                Some(at) => msg.push_str(&format!("\n  {module}!{name} (offset {at:#x})")),
                None => msg.push_str(&format!("\n  {module}!{name}")),
            }
        }
        if frames.len() > TRAP_FRAMES {
            msg.push_str(&format!("\n  … {} more frames", frames.len() - TRAP_FRAMES));
        }
    }
    msg
}
