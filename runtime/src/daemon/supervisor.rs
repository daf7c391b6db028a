//! The container supervisor: owns every container's live state in the
//! daemon, runs their programs through the one shared sandbox, records each
//! change in the database, and applies restart policies.
//!
//! ```text
//!   create ─▶ Created ─start─▶ Running ─exit─▶ Exited ─rm─▶ (gone)
//!                                 ▲              │
//!                                 └─ Restarting ◀┘  (restart policy, with backoff)
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::error::DaemonError;
use super::events::{Event, Events};
use super::io::ContainerIo;
use super::networks::{Networks, RunNet};
use crate::container::{
    ContainerRecord, ContainerSpec, ContainerState, Containers, ProcessRequest, SpecRequest,
    prepare,
};
use crate::image::ImageStore;
use crate::sandbox::proctable::ProcTable;
use crate::sandbox::{Exit, Sandbox, Stdio, StopHandle, StopReason};
use crate::state::StateRoot;

/// The error recorded for containers stopped by the daemon's own shutdown;
/// on the next start they count as having been running.
pub const SHUTDOWN_ERROR: &str = "stopped: the daemon shut down";
/// The error recorded for containers found running after a daemon crash.
pub const CRASH_ERROR: &str = "stopped: the daemon exited while the container was running";

/// Docker's restart backoff: 100 ms, doubling, at most a minute, reset
/// when a run lasted at least ten seconds.
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
const BACKOFF_RESET: Duration = Duration::from_secs(10);

/// How long `stop` waits for a guest to end before reporting an error.
/// Guests end within an epoch tick; this only guards against a bug.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// What clients can observe of a container's run state.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub running: bool,
    pub restarting: bool,
    /// How many runs have ended.
    pub exits: u64,
    pub exit_code: i32,
    /// Why the last run ended, when it did not simply exit.
    pub detail: Option<String>,
    pub removed: bool,
}

/// A running container's handles.
#[derive(Debug, Clone)]
pub struct Live {
    pub stop: StopHandle,
    pub procs: ProcTable,
    /// This run's network; the namespace and published ports go with it.
    pub net: Arc<RunNet>,
    /// The memory and CPU time of this run's guests.
    pub usage: Arc<crate::sandbox::Usage>,
    /// The container's root, shared by the run's guests.
    pub fs: crate::container::Rootfs,
}

/// One container known to the daemon.
#[derive(Debug)]
pub struct Entry {
    pub io: Arc<ContainerIo>,
    status: watch::Sender<Status>,
    live: Mutex<Option<Live>>,
}

impl Entry {
    fn new(io: ContainerIo) -> Self {
        Self {
            io: Arc::new(io),
            status: watch::Sender::new(Status::default()),
            live: Mutex::new(None),
        }
    }

    /// Records the end of a run; `restarting` when its policy starts it
    /// again.
    fn ended(&self, code: i32, detail: Option<String>, restarting: bool) {
        self.status.send_modify(|s| {
            s.running = false;
            s.restarting = restarting;
            s.exits += 1;
            s.exit_code = code;
            s.detail = detail;
        });
    }

    pub fn live(&self) -> Option<Live> {
        lock(&self.live).clone()
    }

    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    pub fn watch(&self) -> watch::Receiver<Status> {
        self.status.subscribe()
    }
}

/// What `wait` waits for, as Docker's `condition` parameter names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl WaitCondition {
    pub fn parse(s: &str) -> Result<Self, DaemonError> {
        match s {
            "" | "not-running" => Ok(Self::NotRunning),
            "next-exit" => Ok(Self::NextExit),
            "removed" => Ok(Self::Removed),
            other => Err(DaemonError::bad_request(format!(
                "invalid condition {other:?}: use not-running, next-exit or removed"
            ))),
        }
    }
}

/// A fresh run's usage, with the container's open-file limit.
fn run_usage(rec: &ContainerRecord) -> Arc<crate::sandbox::Usage> {
    Arc::new(crate::sandbox::Usage::with_open_files(
        rec.spec
            .open_files
            .unwrap_or(crate::sandbox::DEFAULT_OPEN_FILES),
    ))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The daemon's containers.
pub struct Supervisor {
    root: StateRoot,
    sandbox: Sandbox,
    networks: Networks,
    images: Mutex<ImageStore>,
    db: Mutex<Containers>,
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    shutting_down: AtomicBool,
    pub(super) execs: super::exec::Execs,
    /// What happened, for `GET /events`.
    pub events: Events,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Supervisor {
    pub fn new(
        root: &StateRoot,
        sandbox: Sandbox,
        bridge_subnet: ipnet::Ipv4Net,
    ) -> Result<Self, DaemonError> {
        let images = ImageStore::open(root).map_err(DaemonError::internal)?;
        let db = Containers::open(root).map_err(DaemonError::internal)?;
        let networks = Networks::open(root, bridge_subnet)?;
        Ok(Self {
            root: root.clone(),
            sandbox,
            networks,
            images: Mutex::new(images),
            db: Mutex::new(db),
            entries: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            execs: Default::default(),
            events: Events::default(),
        })
    }

    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn images(&self) -> MutexGuard<'_, ImageStore> {
        lock(&self.images)
    }

    pub fn db(&self) -> MutexGuard<'_, Containers> {
        lock(&self.db)
    }

    /// Loads every stored container. Those the daemon left running (it was
    /// killed) are recorded as exited; then restart policies decide which
    /// start again.
    pub fn restore(self: &Arc<Self>) -> Result<(), DaemonError> {
        let records = self.db().list()?;
        let mut to_start = Vec::new();
        for rec in records {
            let was_running = rec.state == ContainerState::Running
                || rec.error.as_deref() == Some(SHUTDOWN_ERROR);
            if rec.state == ContainerState::Running {
                self.db().mark_exited(
                    &rec.id,
                    StopReason::Killed.exit_code(),
                    Some(CRASH_ERROR),
                )?;
            }
            let restart = rec
                .spec
                .restart
                .restarts_with_daemon(was_running, rec.manually_stopped);
            // A `--rm` container that ended while the daemon was away is
            // removed now, as Docker does.
            if rec.spec.auto_remove && !restart && rec.state != ContainerState::Created {
                self.db().delete(&rec.id)?;
                continue;
            }
            let entry = self.add_entry(&rec.id);
            entry.status.send_modify(|s| {
                s.exit_code = rec.exit_code.unwrap_or(0);
            });
            if restart {
                to_start.push(rec.id.clone());
            }
        }
        for id in to_start {
            let sup = self.clone();
            tokio::spawn(async move {
                if let Err(e) = sup.start(&id).await {
                    tracing::warn!(container = %&id[..12], error = %e, "restart on daemon start failed");
                }
            });
        }
        Ok(())
    }

    /// The entry for `id`, made if there is none yet (never replaced: a
    /// concurrent caller gets the same one).
    fn add_entry(&self, id: &str) -> Arc<Entry> {
        let log = crate::container::log_path(&self.root, id);
        lock(&self.entries)
            .entry(id.to_string())
            .or_insert_with(|| Arc::new(Entry::new(ContainerIo::new(log))))
            .clone()
    }

    /// The live entry of a container known by its full ID.
    pub fn entry(&self, id: &str) -> Arc<Entry> {
        let found = lock(&self.entries).get(id).cloned();
        found.unwrap_or_else(|| self.add_entry(id))
    }

    /// The handles of a container known by its full ID, if it runs; unlike
    /// [`Self::entry`] it makes no entry, and unlike [`Self::find`] it
    /// does not read the database.
    pub fn live_of(&self, id: &str) -> Option<Live> {
        let found = lock(&self.entries).get(id).cloned();
        found.and_then(|e| e.live())
    }

    /// Finds a container by name, ID or ID prefix.
    pub fn find(&self, name_or_id: &str) -> Result<(ContainerRecord, Arc<Entry>), DaemonError> {
        let rec = self.db().get(name_or_id)?;
        let entry = lock(&self.entries).get(&rec.id).cloned();
        let entry = match entry {
            Some(e) => e,
            None => self.add_entry(&rec.id),
        };
        Ok((rec, entry))
    }

    /// Creates a container: resolves the image, applies its defaults, and
    /// records its layers (unpacked now if they were not), which its root
    /// is made of. Nothing is copied.
    pub async fn create(
        self: &Arc<Self>,
        name: Option<String>,
        req: SpecRequest,
    ) -> Result<ContainerRecord, DaemonError> {
        let sup = self.clone();
        let rec = tokio::task::spawn_blocking(move || -> Result<ContainerRecord, DaemonError> {
            let (image, layers) = {
                let images = sup.images();
                let image = images.resolve(&req.image)?;
                let layers = images.layer_dirs(&image)?;
                (image, layers)
            };
            let cfg = image.config.config().clone().unwrap_or_default();
            let mut spec = ContainerSpec::resolve(req, &cfg)?;
            spec.layers = layers
                .iter()
                .filter_map(|l| l.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect();
            sup.networks.check(&spec.network)?;
            let rec = sup.db().insert(&image, name.as_deref(), spec)?;
            Ok(rec)
        })
        .await
        .map_err(DaemonError::internal)??;
        self.add_entry(&rec.id);
        self.container_event(&rec, "create");
        Ok(rec)
    }

    /// Publishes a container event, with its labels, image and name as
    /// attributes, as Docker's are.
    pub fn container_event(&self, rec: &ContainerRecord, action: &str) {
        self.events.publish(Self::container_event_of(rec, action));
    }

    pub fn container_event_of(rec: &ContainerRecord, action: &str) -> Event {
        Event::new("container", action, rec.id.clone())
            .with_all(&rec.spec.labels)
            .with("image", rec.spec.image.clone())
            .with("name", rec.name.clone())
    }

    /// `connect` or `disconnect` of a run's network, for a container on a
    /// Docker network (a pod's containers are the cluster's).
    fn network_event(&self, rec: &ContainerRecord, action: &str) {
        if rec.spec.network.starts_with(super::networks::POD_PREFIX) {
            return;
        }
        if let Ok(info) = self.networks.fabric().network(&rec.spec.network) {
            self.events.publish(
                Event::new("network", action, info.id)
                    .with("container", rec.id.clone())
                    .with("name", info.name)
                    .with("type", info.driver),
            );
        }
    }

    /// Starts a container's main program. 304 when it is already running.
    pub async fn start(self: &Arc<Self>, name_or_id: &str) -> Result<(), DaemonError> {
        let (rec, entry) = self.find(name_or_id)?;
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(DaemonError::Conflict("the daemon is shutting down".into()));
        }
        if entry.live().is_some() {
            return Err(DaemonError::NotModified);
        }
        entry.io.set_rotation(
            super::logs::Rotation::from_opts(&rec.spec.log_opts)
                .unwrap_or(super::logs::DEFAULT_ROTATION),
        );
        let net = Arc::new(tokio::task::block_in_place(|| self.networks.attach(&rec))?);
        self.network_event(&rec, "connect");
        let live = {
            let mut slot = lock(&entry.live);
            if slot.is_some() {
                return Err(DaemonError::NotModified);
            }
            let procs = ProcTable::new();
            let live = Live {
                stop: StopHandle::new(),
                procs,
                net,
                usage: run_usage(&rec),
                fs: crate::container::open_rootfs(&self.root, &rec)?,
            };
            *slot = Some(live.clone());
            // Starting counts as running: a `stop` from now on waits for
            // this run's end.
            entry.status.send_modify(|s| s.running = true);
            live
        };
        match self.launch(&entry, &rec, &live, false).await {
            Ok(process) => {
                let sup = self.clone();
                tokio::spawn(async move { sup.supervise(entry, rec, live, process).await });
                Ok(())
            }
            Err(e) => {
                live.net.close().await;
                *lock(&entry.live) = None;
                self.network_event(&rec, "disconnect");
                // As Docker: a container that was to be removed on exit is
                // removed when it cannot start (clients wait for that).
                if rec.spec.auto_remove {
                    let _ = self.remove(&rec.id, true).await;
                }
                Err(e)
            }
        }
    }

    /// Prepares a run and records it as started. A program that cannot be
    /// loaded is recorded as an exit with Docker's 127 or 126.
    async fn launch(
        &self,
        entry: &Arc<Entry>,
        rec: &ContainerRecord,
        live: &Live,
        restarted: bool,
    ) -> Result<crate::container::Process, DaemonError> {
        let (stdout, stderr) = entry.io.outputs();
        let stdio = Stdio {
            stdin: entry.io.stdin_for_run(rec.spec.interactive),
            stdout,
            stderr,
        };
        let prepared = tokio::task::block_in_place(|| {
            prepare(
                &self.sandbox,
                &live.fs,
                &live.procs,
                rec,
                ProcessRequest {
                    network: live.net.grant.clone(),
                    usage: live.usage.clone(),
                    ..ProcessRequest::default()
                },
                stdio,
            )
        });
        match prepared {
            Ok(process) => {
                self.db().mark_running(&rec.id, restarted)?;
                entry.status.send_modify(|s| {
                    s.running = true;
                    s.restarting = false;
                });
                self.container_event(rec, "start");
                Ok(process)
            }
            Err(e) => {
                let code = e.exit_code();
                let msg = e.to_string();
                self.db().mark_exited(&rec.id, code, Some(&msg))?;
                entry.io.end_run();
                entry.ended(code, Some(msg), false);
                Err(e.into())
            }
        }
    }

    /// Runs the container until it ends for good: records each exit,
    /// restarts it as its policy says, and removes it if asked to.
    async fn supervise(
        self: Arc<Self>,
        entry: Arc<Entry>,
        mut rec: ContainerRecord,
        mut live: Live,
        mut process: crate::container::Process,
    ) {
        let mut backoff = BACKOFF_START;
        loop {
            let started = Instant::now();
            let result = self
                .sandbox
                .run(
                    &process.program_path,
                    &process.program,
                    process.spec,
                    &live.stop,
                )
                .await;
            drop(process.entry);
            // The host ports close before anyone hears of the end, so a
            // `start` right after `stop` can publish them again.
            live.net.close().await;
            let (code, error) = match &result {
                Ok(exit) => (exit.code(), exit.describe()),
                Err(e) => (128, Some(e.to_string())),
            };
            let shutting_down = self.shutting_down.load(Ordering::SeqCst);
            let error = match (&result, shutting_down) {
                (Ok(Exit::Stopped(_)), true) => Some(SHUTDOWN_ERROR.to_string()),
                _ => error,
            };
            if let Err(e) = self.db().mark_exited(&rec.id, code, error.as_deref()) {
                tracing::error!(container = rec.short_id(), error = %e, "cannot record the exit");
            }
            if error
                .as_deref()
                .is_some_and(|e| e.starts_with(crate::sandbox::OOM_DESCRIPTION))
            {
                self.container_event(&rec, "oom");
            }
            self.events.publish(
                Self::container_event_of(&rec, "die")
                    .with("exitCode", code.to_string())
                    .with("execDuration", started.elapsed().as_secs().to_string()),
            );
            entry.io.end_run();
            let manual = live.stop.reason().is_some();
            let restart = !shutting_down
                && rec
                    .spec
                    .restart
                    .restarts_after_exit(code, rec.restart_count, manual);
            if !restart {
                *lock(&entry.live) = None;
                // The run's namespace goes before anyone hears of the end,
                // as its ports did.
                live.net = Arc::new(RunNet::default());
                self.network_event(&rec, "disconnect");
                entry.ended(code, error, false);
                break;
            }
            // Restarting: a fresh stop handle, so a `stop` during the
            // backoff cancels the restart.
            if started.elapsed() >= BACKOFF_RESET {
                backoff = BACKOFF_START;
            }
            // The ended run's namespace and published ports are let go
            // before the next run attaches again.
            live = Live {
                stop: StopHandle::new(),
                procs: live.procs.clone(),
                net: Arc::new(RunNet::default()),
                usage: run_usage(&rec),
                fs: live.fs.clone(),
            };
            self.network_event(&rec, "disconnect");
            *lock(&entry.live) = Some(live.clone());
            entry.ended(code, error, true);
            let cancelled = tokio::select! {
                _ = tokio::time::sleep(backoff) => false,
                _ = live.stop.stopped() => true,
            };
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if cancelled || self.shutting_down.load(Ordering::SeqCst) {
                *lock(&entry.live) = None;
                entry.status.send_modify(|s| s.restarting = false);
                break;
            }
            rec = match self.db().get(&rec.id) {
                Ok(r) => r,
                Err(_) => {
                    *lock(&entry.live) = None;
                    break;
                }
            };
            match tokio::task::block_in_place(|| self.networks.attach(&rec)) {
                Ok(net) => {
                    live.net = Arc::new(net);
                    *lock(&entry.live) = Some(live.clone());
                    self.network_event(&rec, "connect");
                }
                Err(e) => {
                    let msg = e.to_string();
                    tracing::warn!(container = rec.short_id(), error = %msg, "restart failed");
                    let _ = self.db().mark_exited(&rec.id, 128, Some(&msg));
                    *lock(&entry.live) = None;
                    entry.ended(128, Some(msg), false);
                    break;
                }
            }
            match self.launch(&entry, &rec, &live, true).await {
                Ok(p) => {
                    rec.restart_count += 1;
                    process = p;
                }
                Err(e) => {
                    tracing::warn!(container = rec.short_id(), error = %e, "restart failed");
                    *lock(&entry.live) = None;
                    break;
                }
            }
        }
        if rec.spec.auto_remove
            && !self.shutting_down.load(Ordering::SeqCst)
            && let Err(e) = self.remove(&rec.id, true).await
        {
            tracing::warn!(container = rec.short_id(), error = %e, "auto-remove failed");
        }
    }

    /// Stops a running container (or one waiting to restart) and waits for
    /// it to end. 304 when it is not running.
    pub async fn stop(&self, name_or_id: &str, reason: StopReason) -> Result<(), DaemonError> {
        let (rec, entry) = self.find(name_or_id)?;
        if entry.live().is_some() {
            // Docker's stop sends SIGTERM first and says so; a wasm guest
            // has no handler for it, so it ends at once.
            self.events
                .publish(Self::container_event_of(&rec, "kill").with("signal", "15"));
        }
        self.stop_run(&rec, &entry, reason).await?;
        self.container_event(&rec, "stop");
        Ok(())
    }

    async fn stop_run(
        &self,
        rec: &ContainerRecord,
        entry: &Entry,
        reason: StopReason,
    ) -> Result<(), DaemonError> {
        let Some(live) = entry.live() else {
            return Err(DaemonError::NotModified);
        };
        self.db().mark_manually_stopped(&rec.id)?;
        let mut watch = entry.watch();
        live.stop.stop(reason);
        let ended =
            tokio::time::timeout(STOP_WAIT, watch.wait_for(|s| !s.running && !s.restarting)).await;
        match ended {
            Ok(_) => Ok(()),
            Err(_) => Err(DaemonError::internal(format!(
                "container {}: did not stop within {STOP_WAIT:?}",
                rec.short_id()
            ))),
        }
    }

    /// Docker's `kill`: like stop, but a container that is not running is
    /// a conflict, not "not modified".
    pub async fn kill(&self, name_or_id: &str, reason: StopReason) -> Result<(), DaemonError> {
        let (rec, entry) = self.find(name_or_id)?;
        if entry.live().is_some() {
            // Docker's events give the signal's number.
            let signal = match reason {
                StopReason::Interrupted => "2",
                StopReason::Killed => "9",
            };
            self.events
                .publish(Self::container_event_of(&rec, "kill").with("signal", signal));
        }
        match self.stop_run(&rec, &entry, reason).await {
            Err(DaemonError::NotModified) => Err(DaemonError::Conflict(format!(
                "Cannot kill container: {}: container {} is not running",
                name_or_id,
                rec.short_id()
            ))),
            other => other,
        }
    }

    /// Removes a container; a running one only with `force`, which stops it.
    pub async fn remove(&self, name_or_id: &str, force: bool) -> Result<(), DaemonError> {
        let (rec, entry) = self.find(name_or_id)?;
        if entry.live().is_some() {
            if !force {
                return Err(DaemonError::Conflict(format!(
                    "cannot remove container \"{name_or_id}\": container is running: stop the container before removing or force remove"
                )));
            }
            match self.kill(&rec.id, StopReason::Killed).await {
                Ok(()) | Err(DaemonError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        // Only one remover wins the record; the others see it gone.
        let deleted = self
            .db()
            .delete_record(&rec.id)
            .map_err(DaemonError::from)?;
        if !deleted {
            // Another remover took the record after it was found here: the
            // container's own removal on exit (after the stop above), or a
            // concurrent `rm`. Gone is what was asked for; Docker's `rm -f`
            // of a running `--rm` container succeeds too. Its end is waited
            // for, so the caller sees no trace of it afterwards.
            let mut watch = entry.watch();
            let _ = tokio::time::timeout(STOP_WAIT, watch.wait_for(|s| s.removed)).await;
            return Ok(());
        }
        lock(&self.entries).remove(&rec.id);
        self.execs.forget_container(&rec.id);
        // The directory is renamed out of the way at once and its files
        // deleted in the background.
        match crate::container::detach_container_dir(&self.root, &rec.id) {
            Some(trash) => {
                tokio::task::spawn_blocking(move || crate::container::delete_detached(&trash));
            }
            None => {
                let root = self.root.clone();
                let id = rec.id.clone();
                tokio::task::spawn_blocking(move || {
                    crate::container::remove_container_dir(&root, &id)
                })
                .await
                .map_err(DaemonError::internal)??;
            }
        }
        entry.status.send_modify(|s| s.removed = true);
        self.container_event(&rec, "destroy");
        Ok(())
    }

    /// Resolves once the container meets `condition`, with its exit code
    /// and why it ended.
    ///
    /// The container's state is taken when this is called, not when the
    /// future is first polled: a `next-exit` asked for before a start
    /// counts that start's exit, however soon it comes (`docker run`
    /// waits, then starts, and `echo` may be done before a spawned task
    /// runs).
    pub fn wait(
        entry: &Entry,
        condition: WaitCondition,
    ) -> impl std::future::Future<Output = (i32, Option<String>)> + Send + 'static {
        let mut rx = entry.watch();
        let initial = rx.borrow_and_update().clone();
        async move {
            let done = |s: &Status| match condition {
                WaitCondition::NotRunning => {
                    (!s.running && !s.restarting) || s.removed || s.exits > initial.exits
                }
                WaitCondition::NextExit => s.exits > initial.exits || s.removed,
                WaitCondition::Removed => s.removed,
            };
            let waited = rx.wait_for(done).await.map(|s| s.clone());
            let status = match waited {
                Ok(s) => s,
                Err(_) => rx.borrow().clone(),
            };
            (status.exit_code, status.detail)
        }
    }

    /// Gives a container a new name.
    pub fn rename(&self, name_or_id: &str, new_name: &str) -> Result<(), DaemonError> {
        let new_name = new_name.trim_start_matches('/');
        let (rec, entry) = self.find(name_or_id)?;
        self.db().rename(&rec.id, new_name)?;
        self.events.publish(
            Self::container_event_of(&rec, "rename")
                .with("name", new_name)
                .with("oldName", format!("/{}", rec.name)),
        );
        // A running container answers to its new name at once, on its
        // network's resolver too, as in Docker.
        if let Some(live) = entry.live()
            && let crate::net::NetMode::Virtual(ns) = &live.net.grant.mode
        {
            ns.rename(&rec.name, new_name);
        }
        Ok(())
    }

    /// Stops every container for shutdown; restart policies see them as
    /// having been running when the daemon comes back.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        let entries: Vec<Arc<Entry>> = lock(&self.entries).values().cloned().collect();
        let mut waits = Vec::new();
        for entry in entries {
            if let Some(live) = entry.live() {
                let mut watch = entry.watch();
                live.stop.stop(StopReason::Killed);
                waits.push(async move {
                    let _ = tokio::time::timeout(
                        STOP_WAIT,
                        watch.wait_for(|s| !s.running && !s.restarting),
                    )
                    .await;
                });
            }
        }
        futures_util::future::join_all(waits).await;
        self.execs.stop_all();
    }
}
