//! The task service containerd drives: each container (task) is a set of
//! guests in this shim's one engine, its init guest plus any execs.
//!
//! A process moves CREATED → RUNNING → STOPPED. Its exit is kept in a
//! watch channel (set with `send_replace`, so that an exit before anyone
//! waits is not lost) and published as `TaskExit`, which is how CRI learns
//! that a container ended. PIDs: containerd gets the shim's own PID for a
//! task (CRI joins `/proc/<pid>/ns/net`, the pod's namespace, through it);
//! `Pids` lists the guests by their PIDs inside the container, as `ps`
//! there shows them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use containerd_shim::asynchronous::ExitSignal;
use containerd_shim::event::Event;
use containerd_shim::protos::api;
use containerd_shim::protos::cgroups::metrics::{
    CPUStat, CPUUsage, MemoryEntry, MemoryStat, Metrics,
};
use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskStart,
};
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{MessageDyn, MessageFull};
use containerd_shim::protos::shim_async::Task;
use containerd_shim::protos::ttrpc::r#async::TtrpcContext;
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::util::{convert_to_any, timestamp};
use containerd_shim::{Context, Error, TtrpcResult};
use tokio::sync::watch;
use wrun::sandbox::proctable::ProcTable;
use wrun::sandbox::{StopHandle, StopReason, Usage};

use crate::bundle::{self, Bundle, ProcessConfig};
use crate::engine::Engine;
use crate::files;
use crate::guest;
use crate::stdio::{self, Paths, StdinCloser};

/// A process's exit: its code and when.
type Exited = Option<(u32, Timestamp)>;

/// A process's program being found and compiled, from its creation on.
type Finding = tokio::task::JoinHandle<Result<guest::Found, String>>;

struct Process {
    config: ProcessConfig,
    io: Paths,
    /// Taken by the start.
    finding: Option<Finding>,
    status: Status,
    stop: StopHandle,
    exit: watch::Sender<Exited>,
    stdin: Option<StdinCloser>,
}

impl Process {
    fn new(config: ProcessConfig, io: Paths) -> Self {
        Self {
            config,
            io,
            finding: None,
            status: Status::CREATED,
            stop: StopHandle::new(),
            exit: watch::channel(None).0,
            stdin: None,
        }
    }
}

struct Container {
    bundle: Bundle,
    /// The shim mounted the rootfs (from the create request's mounts), so
    /// it unmounts it too.
    mounted: bool,
    /// Where single files were bind-mounted in the rootfs.
    files: Vec<PathBuf>,
    /// The pod's sandbox container: it runs no guest.
    pod_sandbox: bool,
    guests: guest::Container,
    init: Process,
    execs: HashMap<String, Process>,
}

impl Container {
    /// The init process (`exec` empty) or one of the execs.
    fn process(
        &self,
        id: &str,
        exec: &str,
    ) -> Result<&Process, containerd_shim::protos::ttrpc::Error> {
        if exec.is_empty() {
            Ok(&self.init)
        } else {
            self.execs.get(exec).ok_or_else(|| not_found(id, exec))
        }
    }

    fn process_mut(
        &mut self,
        id: &str,
        exec: &str,
    ) -> Result<&mut Process, containerd_shim::protos::ttrpc::Error> {
        if exec.is_empty() {
            Ok(&mut self.init)
        } else {
            self.execs.get_mut(exec).ok_or_else(|| not_found(id, exec))
        }
    }
}

/// The shim's tasks, shared by every request.
pub struct TaskService {
    inner: Arc<Inner>,
}

struct Inner {
    namespace: String,
    publisher: RemotePublisher,
    exit: Arc<ExitSignal>,
    sandbox: Engine,
    containers: Mutex<HashMap<String, Container>>,
}

impl TaskService {
    pub fn new(
        namespace: String,
        publisher: RemotePublisher,
        exit: Arc<ExitSignal>,
        sandbox: Engine,
    ) -> Self {
        // An event is encoded with its type's protobuf descriptor, which
        // is built on first use (about half a millisecond): build it now,
        // beside the engine, rather than in the first Create.
        tokio::task::spawn_blocking(|| {
            let _ = TaskExit::descriptor();
        });
        Self {
            inner: Arc::new(Inner {
                namespace,
                publisher,
                exit,
                sandbox,
                containers: Mutex::new(HashMap::new()),
            }),
        }
    }
}

fn not_found(id: &str, exec: &str) -> containerd_shim::protos::ttrpc::Error {
    if exec.is_empty() {
        Error::NotFoundError(format!("task {id}: no such task in this shim")).into()
    } else {
        Error::NotFoundError(format!("task {id}: no such exec {exec:?}")).into()
    }
}

fn invalid(msg: String) -> containerd_shim::protos::ttrpc::Error {
    Error::InvalidArgument(msg).into()
}

fn precondition(msg: String) -> containerd_shim::protos::ttrpc::Error {
    Error::FailedPreconditionError(msg).into()
}

/// The crate's errors have no ALREADY_EXISTS: build the status itself.
fn already_exists(msg: String) -> containerd_shim::protos::ttrpc::Error {
    use containerd_shim::protos::ttrpc;
    ttrpc::Error::RpcStatus(ttrpc::get_status(ttrpc::Code::ALREADY_EXISTS, msg))
}

fn now() -> Timestamp {
    timestamp().unwrap_or_default()
}

impl Inner {
    fn containers(&self) -> MutexGuard<'_, HashMap<String, Container>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn publish<E: Event + MessageDyn + 'static>(&self, event: E) {
        let topic = event.topic();
        if let Err(e) = self
            .publisher
            .publish(Context::default(), &topic, &self.namespace, Box::new(event))
            .await
        {
            log::warn!("publish {topic}: {e}");
        }
    }

    /// Starts finding and compiling the program of `id`/`exec`, which has
    /// just been created.
    fn find_program(&self, id: &str, exec: &str) {
        let mut all = self.containers();
        let Some(c) = all.get_mut(id) else {
            return;
        };
        let guests = c.guests.clone();
        let Ok(p) = c.process_mut(id, exec) else {
            return;
        };
        let config = p.config.clone();
        let sandbox = self.sandbox.clone();
        p.finding = Some(tokio::spawn(async move {
            let sandbox = sandbox.get().await?;
            tokio::task::spawn_blocking(move || guest::find(&sandbox, &guests, &config))
                .await
                .map_err(|e| format!("finding the program: {e}"))?
        }));
    }

    /// Records a process's end (once) and publishes `TaskExit`.
    async fn exited(&self, id: &str, exec: &str, code: i32) {
        let code = u32::try_from(code).unwrap_or(255);
        let at = now();
        {
            let mut all = self.containers();
            let Some(Ok(p)) = all.get_mut(id).map(|c| c.process_mut(id, exec)) else {
                return;
            };
            if p.exit.borrow().is_some() {
                return;
            }
            p.status = Status::STOPPED;
            p.exit.send_replace(Some((code, at.clone())));
        }
        self.publish(TaskExit {
            container_id: id.to_string(),
            id: if exec.is_empty() { id } else { exec }.to_string(),
            pid: std::process::id(),
            exit_status: code,
            exited_at: Some(at).into(),
            ..Default::default()
        })
        .await;
    }

    /// Starts the guest of `id`/`exec` in the background, with its program
    /// as `find_program` found it.
    fn launch(
        self: &Arc<Self>,
        id: &str,
        exec: &str,
        found: Option<Result<guest::Found, String>>,
    ) -> Result<(), String> {
        let prepared = {
            let mut all = self.containers();
            let c = all.get_mut(id).ok_or_else(|| format!("task {id}: gone"))?;
            let ppid = if exec.is_empty() { 0 } else { 1 };
            let guests = c.guests.clone();
            if exec.is_empty() && c.pod_sandbox {
                // Nothing to run: stay up until killed.
                c.init.status = Status::RUNNING;
                let stop = c.init.stop.clone();
                let me = self.clone();
                let id = id.to_string();
                tokio::spawn(async move {
                    stop.stopped().await;
                    me.exited(&id, "", StopReason::Killed.exit_code()).await;
                });
                return Ok(());
            }
            let p = c
                .process_mut(id, exec)
                .map_err(|_| format!("task {id}: no such exec {exec:?}"))?;
            let found = found
                .unwrap_or_else(|| Err("its program was never looked for".into()))
                .map_err(|e| format!("task {id}: {e}"))?;
            let opened = stdio::open(&p.io, &p.stop).map_err(|e| e.to_string())?;
            p.stdin = Some(opened.stdin);
            let prepared = guest::prepare(&guests, &p.config, found, opened.stdio, ppid);
            p.status = Status::RUNNING;
            (prepared, p.stop.clone(), opened.notes)
        };
        let (prepared, stop, notes) = prepared;
        let me = self.clone();
        let (id, exec) = (id.to_string(), exec.to_string());
        tokio::spawn(async move {
            let code = match me.sandbox.get().await {
                Ok(sandbox) => prepared.run(&sandbox, &stop, notes).await,
                Err(_) => 126,
            };
            me.exited(&id, &exec, code).await;
        });
        Ok(())
    }
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> TtrpcResult<api::CreateTaskResponse> {
        if self.inner.containers().contains_key(&req.id) {
            return Err(already_exists(format!("task {}: already exists", req.id)));
        }
        let dir = PathBuf::from(&req.bundle);
        let bundle = Bundle::read(&dir).map_err(|e| invalid(format!("task {}: {e}", req.id)))?;
        let pod_sandbox = bundle.is_pod_sandbox();
        if !pod_sandbox && bundle.process.args.is_empty() {
            return Err(invalid(format!(
                "task {}: the OCI spec has no process.args: nothing to run",
                req.id
            )));
        }
        let rootfs = bundle.rootfs();
        bundle::mount_rootfs(&req.rootfs, &rootfs)
            .map_err(|e| precondition(format!("task {}: {e}", req.id)))?;
        let mounted = !req.rootfs.is_empty();
        if !pod_sandbox && !rootfs.is_dir() {
            if mounted {
                bundle::unmount_rootfs(&rootfs);
            }
            return Err(precondition(format!(
                "task {}: the rootfs {} is missing",
                req.id,
                rootfs.display()
            )));
        }
        let files = if pod_sandbox {
            Vec::new()
        } else {
            files::mount(&bundle.files, &rootfs).map_err(|e| {
                if mounted {
                    bundle::unmount_rootfs(&rootfs);
                }
                precondition(format!("task {}: {e}", req.id))
            })?
        };
        let io = Paths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let container = Container {
            mounted,
            files,
            pod_sandbox,
            guests: guest::Container {
                rootfs,
                mounts: bundle.mounts.clone(),
                procs: ProcTable::new(),
                usage: Arc::new(Usage::default()),
                memory_limit: bundle.memory_limit,
            },
            init: Process::new(bundle.process.clone(), io),
            execs: HashMap::new(),
            bundle,
        };
        self.inner.containers().insert(req.id.clone(), container);
        if !pod_sandbox {
            self.inner.find_program(&req.id, "");
        }
        let pid = std::process::id();
        self.inner
            .publish(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                rootfs: req.rootfs.clone(),
                io: Some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                })
                .into(),
                pid,
                ..Default::default()
            })
            .await;
        Ok(api::CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    async fn start(
        &self,
        _ctx: &TtrpcContext,
        req: api::StartRequest,
    ) -> TtrpcResult<api::StartResponse> {
        let finding = {
            let mut all = self.inner.containers();
            let c = all.get_mut(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
            let runs_nothing = c.pod_sandbox && req.exec_id.is_empty();
            let p = c.process_mut(&req.id, &req.exec_id)?;
            let what = if req.exec_id.is_empty() {
                "the task"
            } else {
                "the exec"
            };
            if p.status != Status::CREATED {
                return Err(precondition(format!(
                    "task {}: {what} already started",
                    req.id
                )));
            }
            match p.finding.take() {
                Some(f) => Some(f),
                None if runs_nothing => None,
                // Another start took it and is waiting for the program.
                None => {
                    return Err(precondition(format!(
                        "task {}: {what} is already starting",
                        req.id
                    )));
                }
            }
        };
        let found = match finding {
            Some(f) => Some(
                f.await
                    .unwrap_or_else(|e| Err(format!("finding the program: {e}"))),
            ),
            None => None,
        };
        if let Err(e) = self.inner.launch(&req.id, &req.exec_id, found) {
            // It never ran: record it as ended, as a failed exec does.
            self.inner.exited(&req.id, &req.exec_id, 127).await;
            return Err(precondition(e));
        }
        let pid = std::process::id();
        if req.exec_id.is_empty() {
            self.inner
                .publish(TaskStart {
                    container_id: req.id.clone(),
                    pid,
                    ..Default::default()
                })
                .await;
        } else {
            self.inner
                .publish(TaskExecStarted {
                    container_id: req.id.clone(),
                    exec_id: req.exec_id.clone(),
                    pid,
                    ..Default::default()
                })
                .await;
        }
        Ok(api::StartResponse {
            pid,
            ..Default::default()
        })
    }

    async fn state(
        &self,
        _ctx: &TtrpcContext,
        req: api::StateRequest,
    ) -> TtrpcResult<api::StateResponse> {
        let all = self.inner.containers();
        let c = all.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let p = c.process(&req.id, &req.exec_id)?;
        let exit = p.exit.borrow().clone();
        Ok(api::StateResponse {
            id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            bundle: c.bundle.dir.display().to_string(),
            pid: std::process::id(),
            status: p.status.into(),
            stdin: p.io.stdin.clone(),
            stdout: p.io.stdout.clone(),
            stderr: p.io.stderr.clone(),
            terminal: p.io.terminal,
            exit_status: exit.as_ref().map(|e| e.0).unwrap_or_default(),
            exited_at: exit.map(|e| e.1).into(),
            ..Default::default()
        })
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: api::KillRequest) -> TtrpcResult<api::Empty> {
        // A wasm guest has no signal handlers: every signal ends it (137).
        let never_started = {
            let all = self.inner.containers();
            let c = all.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
            let mut targets: Vec<(&str, &Process)> = Vec::new();
            if req.exec_id.is_empty() {
                targets.push(("", &c.init));
                if req.all {
                    targets.extend(c.execs.iter().map(|(k, p)| (k.as_str(), p)));
                }
            } else {
                let p = c
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
                targets.push((req.exec_id.as_str(), p));
            }
            let mut never_started = Vec::new();
            for (exec, p) in targets {
                p.stop.stop(StopReason::Killed);
                if p.status == Status::CREATED {
                    never_started.push(exec.to_string());
                }
            }
            never_started
        };
        for exec in never_started {
            self.inner
                .exited(&req.id, &exec, StopReason::Killed.exit_code())
                .await;
        }
        Ok(api::Empty::new())
    }

    async fn delete(
        &self,
        _ctx: &TtrpcContext,
        req: api::DeleteRequest,
    ) -> TtrpcResult<api::DeleteResponse> {
        let (exit, removed) = {
            let mut all = self.inner.containers();
            let c = all.get_mut(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
            if req.exec_id.is_empty() {
                if c.init.status == Status::RUNNING {
                    return Err(precondition(format!(
                        "task {}: still running; kill it first",
                        req.id
                    )));
                }
                let exit = c.init.exit.borrow().clone();
                let removed = all.remove(&req.id);
                (exit, removed)
            } else {
                let p = c
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| not_found(&req.id, &req.exec_id))?;
                if p.status == Status::RUNNING {
                    return Err(precondition(format!(
                        "task {}: exec {} still running",
                        req.id, req.exec_id
                    )));
                }
                let exit = p.exit.borrow().clone();
                c.execs.remove(&req.exec_id);
                (exit, None)
            }
        };
        let (code, at) = exit.unwrap_or_else(|| (0, now()));
        if let Some(c) = removed {
            // Its execs go with it.
            for p in c.execs.values() {
                p.stop.stop(StopReason::Killed);
            }
            files::unmount(&c.files);
            if c.mounted {
                bundle::unmount_rootfs(&c.bundle.rootfs());
            }
            self.inner
                .publish(TaskDelete {
                    container_id: req.id.clone(),
                    pid: std::process::id(),
                    exit_status: code,
                    exited_at: Some(at.clone()).into(),
                    ..Default::default()
                })
                .await;
        }
        Ok(api::DeleteResponse {
            pid: std::process::id(),
            exit_status: code,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    async fn wait(
        &self,
        _ctx: &TtrpcContext,
        req: api::WaitRequest,
    ) -> TtrpcResult<api::WaitResponse> {
        let mut rx = {
            let all = self.inner.containers();
            let c = all.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
            let p = c.process(&req.id, &req.exec_id)?;
            p.exit.subscribe()
        };
        let exit = rx
            .wait_for(Option::is_some)
            .await
            .map_err(|_| not_found(&req.id, &req.exec_id))?
            .clone();
        let (code, at) = exit.unwrap_or_else(|| (0, now()));
        Ok(api::WaitResponse {
            exit_status: code,
            exited_at: Some(at).into(),
            ..Default::default()
        })
    }

    async fn pids(
        &self,
        _ctx: &TtrpcContext,
        req: api::PidsRequest,
    ) -> TtrpcResult<api::PidsResponse> {
        let all = self.inner.containers();
        let c = all.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        Ok(api::PidsResponse {
            processes: c
                .guests
                .procs
                .list()
                .into_iter()
                .map(|p| ProcessInfo {
                    pid: p.pid,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
    }

    async fn stats(
        &self,
        _ctx: &TtrpcContext,
        req: api::StatsRequest,
    ) -> TtrpcResult<api::StatsResponse> {
        let (memory, cpu, limit) = {
            let all = self.inner.containers();
            let c = all.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
            let u = &c.guests.usage;
            (u.memory(), u.cpu(), c.guests.memory_limit)
        };
        // cgroup v1 metrics, the shape containerd 1.6's CRI reads: the
        // guests' linear memory and the CPU time they spent running.
        let mut m = Metrics::new();
        let mut mem = MemoryStat::new();
        let mut usage = MemoryEntry::new();
        usage.usage = memory;
        usage.limit = limit.unwrap_or(0);
        mem.usage = Some(usage).into();
        mem.rss = memory;
        mem.total_rss = memory;
        m.memory = Some(mem).into();
        let mut cpu_stat = CPUStat::new();
        let mut cpu_usage = CPUUsage::new();
        cpu_usage.total = u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX);
        cpu_usage.user = cpu_usage.total;
        cpu_stat.usage = Some(cpu_usage).into();
        m.cpu = Some(cpu_stat).into();
        Ok(api::StatsResponse {
            stats: Some(convert_to_any(Box::new(m))?).into(),
            ..Default::default()
        })
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: api::ConnectRequest,
    ) -> TtrpcResult<api::ConnectResponse> {
        if !req.id.is_empty() && !self.inner.containers().contains_key(&req.id) {
            return Err(not_found(&req.id, ""));
        }
        Ok(api::ConnectResponse {
            shim_pid: std::process::id(),
            task_pid: std::process::id(),
            ..Default::default()
        })
    }

    async fn shutdown(
        &self,
        _ctx: &TtrpcContext,
        _req: api::ShutdownRequest,
    ) -> TtrpcResult<api::Empty> {
        // One shim serves a pod: it ends with the last of its tasks.
        if self.inner.containers().is_empty() {
            self.inner.exit.signal();
        }
        Ok(api::Empty::new())
    }

    async fn exec(
        &self,
        _ctx: &TtrpcContext,
        req: api::ExecProcessRequest,
    ) -> TtrpcResult<api::Empty> {
        let spec = req.spec.as_ref().ok_or_else(|| {
            invalid(format!(
                "task {}: exec {}: no process spec",
                req.id, req.exec_id
            ))
        })?;
        let config: ProcessConfig = serde_json::from_slice(&spec.value).map_err(|e| {
            invalid(format!(
                "task {}: exec {}: bad process spec: {e}",
                req.id, req.exec_id
            ))
        })?;
        if config.args.is_empty() {
            return Err(invalid(format!(
                "task {}: exec {}: no command given",
                req.id, req.exec_id
            )));
        }
        {
            let mut all = self.inner.containers();
            let c = all.get_mut(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
            if c.init.status != Status::RUNNING {
                return Err(precondition(format!("task {}: not running", req.id)));
            }
            if c.execs.contains_key(&req.exec_id) {
                return Err(already_exists(format!(
                    "task {}: exec {} already exists",
                    req.id, req.exec_id
                )));
            }
            let io = Paths {
                stdin: req.stdin.clone(),
                stdout: req.stdout.clone(),
                stderr: req.stderr.clone(),
                terminal: req.terminal,
            };
            c.execs
                .insert(req.exec_id.clone(), Process::new(config, io));
        }
        self.inner.find_program(&req.id, &req.exec_id);
        self.inner
            .publish(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            })
            .await;
        Ok(api::Empty::new())
    }

    async fn resize_pty(
        &self,
        _ctx: &TtrpcContext,
        req: api::ResizePtyRequest,
    ) -> TtrpcResult<api::Empty> {
        // Guests see no terminal device and WASI has no window size: the
        // line discipline needs none either.
        if !self.inner.containers().contains_key(&req.id) {
            return Err(not_found(&req.id, ""));
        }
        Ok(api::Empty::new())
    }

    async fn close_io(
        &self,
        _ctx: &TtrpcContext,
        req: api::CloseIORequest,
    ) -> TtrpcResult<api::Empty> {
        let all = self.inner.containers();
        let c = all.get(&req.id).ok_or_else(|| not_found(&req.id, ""))?;
        let p = c.process(&req.id, &req.exec_id)?;
        if req.stdin
            && let Some(closer) = &p.stdin
        {
            closer.close();
        }
        Ok(api::Empty::new())
    }
}
