//! One pod's worker: its namespace, volumes, init containers in order,
//! then its containers, restarted as `restartPolicy` says with the
//! kubelet's CrashLoopBackOff (10 s, doubling, at most 5 min); its status
//! written back as it changes; and its end when it is deleted.
//!
//! A wasm guest has no SIGTERM handler, so a deleted pod's containers are
//! stopped at once (within one epoch tick) rather than after the grace
//! period; the grace period is only the most it may take.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::probe::{Kind, Outcome, Probe};
use super::{
    LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID, NodeAgent,
    container_name, env, pods_resource, quantity, volumes,
};
use crate::cluster::events;
use crate::cluster::store::now;
use crate::container::{RestartPolicy, SpecRequest};
use crate::daemon::supervisor::Supervisor;
use crate::net::{Namespace, Proto};
use crate::sandbox::StopReason;

/// The end of one run of a container: its index in the pod, its
/// supervisor ID, exit code and why it ended.
type RunEnd = std::pin::Pin<
    Box<dyn std::future::Future<Output = (usize, String, i32, Option<String>)> + Send>,
>;

const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A container that ran this long has its backoff reset.
const BACKOFF_RESET: Duration = Duration::from_secs(600);
/// How often readiness (the container's ports being bound) is looked at
/// when the pod has no namespace to tell of its ports' changes.
const READY_POLL: Duration = Duration::from_millis(10);

/// What kubectl shows of one container.
#[derive(Debug, Clone)]
enum State {
    Waiting { reason: String, message: String },
    Running { started: String },
    Terminated(Ended),
}

#[derive(Debug, Clone)]
struct Ended {
    code: i32,
    reason: String,
    message: Option<String>,
    started: String,
    finished: String,
    id: String,
}

struct Ctr {
    spec: Value,
    name: String,
    init: bool,
    state: State,
    last: Option<Ended>,
    restarts: u32,
    /// The current supervisor container.
    id: Option<String>,
    image_id: String,
    ready: bool,
    started_at: Option<Instant>,
    backoff: Option<Duration>,
    /// When a waiting container may start again.
    start_after: Option<tokio::time::Instant>,
    /// The current run's probe tasks.
    probes: Vec<tokio::task::JoinHandle<()>>,
    /// No startup probe, or it has succeeded in this run.
    startup_ok: bool,
    /// What the readiness probe last decided (with its thresholds).
    probe_ready: bool,
    /// Consecutive results of each probe in this run.
    successes: [u32; 3],
    failures: [u32; 3],
}

impl Ctr {
    fn stop_probes(&mut self) {
        for p in self.probes.drain(..) {
            p.abort();
        }
    }
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Startup => 0,
        Kind::Liveness => 1,
        Kind::Readiness => 2,
    }
}

struct Pod {
    agent: Arc<NodeAgent>,
    obj: Value,
    uid: String,
    name: String,
    namespace: String,
    ns: Option<Arc<Namespace>>,
    volumes: HashMap<String, std::path::PathBuf>,
    ctrs: Vec<Ctr>,
    start_time: String,
    initialized: bool,
    /// A reason the whole pod cannot run (a volume, say).
    failure: Option<String>,
    probe_tx: tokio::sync::mpsc::UnboundedSender<Outcome>,
    probe_rx: tokio::sync::mpsc::UnboundedReceiver<Outcome>,
    /// The last status this worker wrote (it may not have landed yet).
    sent: Option<Value>,
}

fn sup(agent: &NodeAgent) -> &Arc<Supervisor> {
    agent.sup()
}

pub async fn run(agent: Arc<NodeAgent>, mut rx: watch::Receiver<Value>) {
    let obj = rx.borrow_and_update().clone();
    let mut pod = Pod::new(agent.clone(), obj);
    pod.run(&mut rx).await;
    agent.worker_done(&pod.uid);
}

impl Pod {
    fn new(agent: Arc<NodeAgent>, obj: Value) -> Self {
        let meta = &obj["metadata"];
        let uid = meta["uid"].as_str().unwrap_or_default().to_string();
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
        let mut ctrs = Vec::new();
        for (list, init) in [("initContainers", true), ("containers", false)] {
            for c in obj["spec"][list].as_array().into_iter().flatten() {
                ctrs.push(Ctr {
                    spec: c.clone(),
                    name: c["name"].as_str().unwrap_or_default().to_string(),
                    init,
                    state: State::Waiting {
                        reason: if init {
                            "PodInitializing"
                        } else {
                            "ContainerCreating"
                        }
                        .into(),
                        message: String::new(),
                    },
                    last: None,
                    restarts: 0,
                    id: None,
                    image_id: String::new(),
                    ready: false,
                    started_at: None,
                    backoff: None,
                    start_after: None,
                    probes: Vec::new(),
                    startup_ok: true,
                    probe_ready: false,
                    successes: [0; 3],
                    failures: [0; 3],
                });
            }
        }
        // Restart counts carry over a daemon restart.
        for cs in ["initContainerStatuses", "containerStatuses"] {
            for s in obj["status"][cs].as_array().into_iter().flatten() {
                if let Some(c) = ctrs.iter_mut().find(|c| s["name"] == c.name.as_str()) {
                    c.restarts = s["restartCount"].as_u64().unwrap_or(0) as u32;
                }
            }
        }
        let start_time = obj["status"]["startTime"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(now);
        let initialized = !ctrs.iter().any(|c| c.init);
        let (probe_tx, probe_rx) = tokio::sync::mpsc::unbounded_channel();
        Self {
            agent,
            obj,
            uid,
            name,
            namespace,
            ns: None,
            volumes: HashMap::new(),
            ctrs,
            start_time,
            initialized,
            failure: None,
            probe_tx,
            probe_rx,
            sent: None,
        }
    }

    fn restart_policy(&self) -> &str {
        self.obj["spec"]["restartPolicy"]
            .as_str()
            .unwrap_or("Always")
    }

    fn event(&self, container: Option<&str>, warning: bool, reason: &str, message: &str) {
        let field = container.map(|c| {
            let init = self.ctrs.iter().any(|x| x.init && x.name == c);
            format!(
                "spec.{}{{{c}}}",
                if init { "initContainers" } else { "containers" }
            )
        });
        events::record(
            self.agent.store(),
            self.agent.source(),
            &self.obj,
            field.as_deref(),
            warning,
            reason,
            message,
        );
    }

    fn terminating(&self) -> bool {
        self.obj["metadata"].get("deletionTimestamp").is_some()
    }

    async fn run(&mut self, rx: &mut watch::Receiver<Value>) {
        if self.terminating() {
            self.finish().await;
            return;
        }
        match self
            .agent
            .sup()
            .networks()
            .pod_namespace(&self.uid, &self.name, &self.namespace)
        {
            Ok(ns) => self.ns = Some(ns),
            Err(e) => self.failure = Some(format!("cannot make the pod's network: {e}")),
        }
        if self.failure.is_none() {
            let root = self.agent.sup().root().dir().to_path_buf();
            let store = self.agent.store().clone();
            let obj = self.obj.clone();
            match tokio::task::spawn_blocking(move || volumes::prepare(&root, &store, &obj)).await {
                Ok(Ok(v)) => self.volumes = v,
                Ok(Err(e)) => {
                    self.event(
                        None,
                        true,
                        "FailedMount",
                        &format!("MountVolume.SetUp failed: {e}"),
                    );
                    self.failure = Some(e);
                }
                Err(e) => self.failure = Some(e.to_string()),
            }
        }
        if let Some(f) = self.failure.clone() {
            for c in &mut self.ctrs {
                c.state = State::Waiting {
                    reason: "CreateContainerConfigError".into(),
                    message: f.clone(),
                };
            }
        }
        self.write_status();
        let mut waits: FuturesUnordered<RunEnd> = FuturesUnordered::new();
        // Readiness is looked at again whenever a port is bound or freed.
        let mut ports = self.ns.as_ref().map(|n| n.watch_ports());
        loop {
            if self.failure.is_none() {
                self.start_due(&mut waits).await;
            }
            self.update_ready();
            self.write_status();
            let next_start = self
                .ctrs
                .iter()
                .filter(|c| matches!(c.state, State::Waiting { .. }))
                .filter_map(|c| c.start_after)
                .min();
            let polling = self.ctrs.iter().any(|c| {
                !c.init
                    && matches!(c.state, State::Running { .. })
                    && !c.ready
                    && c.spec["readinessProbe"].is_null()
            });
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        // The pod is gone from the store.
                        self.stop_all(false).await;
                        self.cleanup().await;
                        return;
                    }
                    self.obj = rx.borrow_and_update().clone();
                    if self.terminating() {
                        self.drain().await;
                        self.stop_all(true).await;
                        self.finish().await;
                        return;
                    }
                }
                Some((i, id, code, detail)) = waits.next(), if !waits.is_empty() => {
                    self.exited(i, &id, code, detail).await;
                }
                Some(outcome) = self.probe_rx.recv() => {
                    self.probed(outcome).await;
                }
                () = sleep_until(next_start), if next_start.is_some() => {}
                () = port_change(&mut ports), if polling => {}
                () = self.agent.cancelled().cancelled() => {
                    // The cluster stops: containers go, the pod stays.
                    self.stop_all(false).await;
                    self.cleanup().await;
                    return;
                }
            }
        }
    }

    /// Starts whatever should run now: the next init container, or every
    /// app container that is waiting and past its backoff.
    async fn start_due(&mut self, waits: &mut FuturesUnordered<RunEnd>) {
        let now_i = tokio::time::Instant::now();
        let due = |c: &Ctr| {
            matches!(c.state, State::Waiting { .. })
                && c.id.is_none()
                && c.start_after.is_none_or(|t| t <= now_i)
                && !matches!(&c.state, State::Waiting { reason, .. } if reason == "ErrImageNeverPull" || reason == "CreateContainerConfigError" && c.start_after.is_none() && c.restarts > 0)
        };
        if !self.initialized {
            // Init containers one at a time, in order.
            let next = self
                .ctrs
                .iter()
                .position(|c| c.init && !matches!(&c.state, State::Terminated(e) if e.code == 0));
            match next {
                None => {
                    self.initialized = true;
                }
                Some(i) => {
                    let idle = matches!(self.ctrs[i].state, State::Waiting { .. })
                        && self.ctrs[i].id.is_none();
                    if idle
                        && due(&self.ctrs[i])
                        && let Some(w) = self.start(i).await
                    {
                        waits.push(w);
                    }
                    return;
                }
            }
        }
        for i in 0..self.ctrs.len() {
            if !self.ctrs[i].init
                && due(&self.ctrs[i])
                && let Some(w) = self.start(i).await
            {
                waits.push(w);
            }
        }
    }

    /// Creates and starts one container; returns the future of its end.
    async fn start(&mut self, i: usize) -> Option<RunEnd> {
        let spec = self.ctrs[i].spec.clone();
        let cname = self.ctrs[i].name.clone();
        let image = spec["image"].as_str().unwrap_or_default().to_string();
        let policy = spec["imagePullPolicy"]
            .as_str()
            .unwrap_or("IfNotPresent")
            .to_string();
        if let Err((reason, message)) = self.ensure_image(&cname, &image, &policy).await {
            let c = &mut self.ctrs[i];
            // The first failure is retried at once; then the kubelet backs
            // off, and says so.
            let wait = next_backoff(c);
            c.start_after = Some(tokio::time::Instant::now() + wait);
            if reason == "ErrImagePull" && !wait.is_zero() {
                c.state = State::Waiting {
                    reason: "ImagePullBackOff".into(),
                    message: format!("Back-off pulling image \"{image}\""),
                };
                self.event(
                    Some(&cname),
                    false,
                    "BackOff",
                    &format!("Back-off pulling image \"{image}\""),
                );
            } else {
                c.state = State::Waiting { reason, message };
            }
            return None;
        }
        let pod_ip = self
            .ns
            .as_ref()
            .map(|n| n.ip().to_string())
            .unwrap_or_default();
        let mut env_list = match env::build(self.agent.store(), &self.obj, &spec, &pod_ip) {
            Ok(e) => e,
            Err(e) => return self.config_error(i, e),
        };
        env_list.insert(0, format!("HOSTNAME={}", self.name));
        let mounts = match volumes::mounts(&spec, &self.volumes) {
            Ok(m) => m,
            Err(e) => return self.config_error(i, e),
        };
        let memory = spec["resources"]["limits"]["memory"]
            .as_str()
            .and_then(quantity::parse);
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .map(|s| s.as_str().unwrap_or_default().to_string())
                        .collect()
                })
                .unwrap_or_default()
        };
        let command = strings(&spec["command"]);
        let labels = [
            (LABEL_POD_NAME, self.name.clone()),
            (LABEL_POD_NAMESPACE, self.namespace.clone()),
            (LABEL_POD_UID, self.uid.clone()),
            (LABEL_CONTAINER_NAME, cname.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let attempt = self.ctrs[i].restarts;
        let req = SpecRequest {
            image: image.clone(),
            entrypoint: (!command.is_empty()).then_some(command),
            cmd: strings(&spec["args"]),
            env: env_list,
            workdir: spec["workingDir"].as_str().unwrap_or_default().to_string(),
            volumes: mounts,
            memory,
            interactive: spec["stdin"].as_bool().unwrap_or(false),
            stdin_once: spec["stdinOnce"].as_bool().unwrap_or(false),
            tty: spec["tty"].as_bool().unwrap_or(false),
            auto_remove: false,
            restart: RestartPolicy::No,
            network: format!("{}{}", crate::daemon::networks::POD_PREFIX, self.uid),
            labels,
            ..SpecRequest::default()
        };
        let name = container_name(&cname, &self.name, &self.namespace, &self.uid, attempt);
        // An attempt of the same number left over (a failed start) goes.
        let _ = sup(&self.agent).remove(&name, true).await;
        let rec = match sup(&self.agent).create(Some(name), req).await {
            Ok(r) => r,
            Err(e) => return self.config_error(i, e.to_string()),
        };
        self.event(
            Some(&cname),
            false,
            "Created",
            &format!("Created container {cname}"),
        );
        let entry = sup(&self.agent).entry(&rec.id);
        let mut status = entry.watch();
        let exits_before = status.borrow().exits;
        let started = sup(&self.agent).start(&rec.id).await;
        let c = &mut self.ctrs[i];
        c.id = Some(rec.id.clone());
        c.image_id = rec.image_id.clone();
        if let Err(e) = started {
            // The program could not be loaded: recorded as an exit.
            let code = match &e {
                crate::daemon::DaemonError::Start { exit_code, .. } => *exit_code,
                _ => 128,
            };
            let msg = e.to_string();
            self.event(Some(&cname), true, "Failed", &format!("Error: {msg}"));
            let id = rec.id.clone();
            return Some(Box::pin(async move { (i, id, code, Some(msg)) }));
        }
        c.state = State::Running { started: now() };
        c.started_at = Some(Instant::now());
        self.event(
            Some(&cname),
            false,
            "Started",
            &format!("Started container {cname}"),
        );
        self.start_probes(i, &rec.id);
        let id = rec.id.clone();
        Some(Box::pin(async move {
            let _ = status
                .wait_for(|s| s.exits > exits_before || s.removed)
                .await;
            let s = status.borrow().clone();
            (i, id, s.exit_code, s.detail)
        }))
    }

    fn config_error(&mut self, i: usize, message: String) -> Option<RunEnd> {
        let cname = self.ctrs[i].name.clone();
        self.event(Some(&cname), true, "Failed", &format!("Error: {message}"));
        let c = &mut self.ctrs[i];
        c.state = State::Waiting {
            reason: "CreateContainerConfigError".into(),
            message,
        };
        c.start_after = Some(tokio::time::Instant::now() + next_backoff(c));
        None
    }

    /// Makes sure the image is in the store, as `imagePullPolicy` says.
    async fn ensure_image(
        &self,
        cname: &str,
        image: &str,
        policy: &str,
    ) -> Result<(), (String, String)> {
        let present = sup(&self.agent).images().resolve(image).is_ok();
        let local_only = !names_registry(image);
        match (policy, present) {
            ("Never", false) => {
                let msg =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                self.event(Some(cname), true, "ErrImageNeverPull", &msg);
                return Err(("ErrImageNeverPull".into(), msg));
            }
            (_, true) if policy != "Always" || local_only => {
                self.event(
                    Some(cname),
                    false,
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                );
                return Ok(());
            }
            _ => {}
        }
        self.event(
            Some(cname),
            false,
            "Pulling",
            &format!("Pulling image \"{image}\""),
        );
        let started = Instant::now();
        let root = sup(&self.agent).root().clone();
        let name = image.to_string();
        let pull = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut store = crate::image::ImageStore::open(&root).map_err(|e| e.to_string())?;
            crate::registry::pull::pull(&mut store, &name, Arc::new(|_| {}))
                .map(|_| ())
                .map_err(|e| format!("{e:#}"))
        });
        // With the image at hand, an unreachable registry costs at most
        // about a second.
        let result = if present {
            match tokio::time::timeout(Duration::from_secs(1), pull).await {
                Ok(r) => r.map_err(|e| e.to_string()).and_then(|r| r),
                Err(_) => Err("the registry did not answer within 1s".into()),
            }
        } else {
            pull.await.map_err(|e| e.to_string()).and_then(|r| r)
        };
        match result {
            Ok(()) => {
                self.event(
                    Some(cname),
                    false,
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{image}\" in {:.3}s",
                        started.elapsed().as_secs_f64()
                    ),
                );
                Ok(())
            }
            Err(e) if present => {
                self.event(
                    Some(cname),
                    true,
                    "Failed",
                    &format!("Failed to pull image \"{image}\": {e}; using the image already present on machine"),
                );
                Ok(())
            }
            Err(e) => {
                let msg = format!("Failed to pull image \"{image}\": {e}");
                self.event(Some(cname), true, "Failed", &msg);
                self.event(Some(cname), true, "Failed", "Error: ErrImagePull");
                Err(("ErrImagePull".into(), msg))
            }
        }
    }

    /// A container ended: record it, and decide whether it runs again.
    async fn exited(&mut self, i: usize, id: &str, code: i32, detail: Option<String>) {
        if self.ctrs[i].id.as_deref() != Some(id) {
            return;
        }
        let policy = self.restart_policy().to_string();
        let c = &mut self.ctrs[i];
        let oom = detail
            .as_deref()
            .is_some_and(|d| d.starts_with(crate::sandbox::OOM_DESCRIPTION));
        let reason = if oom {
            "OOMKilled"
        } else if code == 0 {
            "Completed"
        } else {
            "Error"
        };
        let started = match &c.state {
            State::Running { started } => started.clone(),
            _ => now(),
        };
        let ended = Ended {
            code,
            reason: reason.into(),
            message: detail.filter(|_| oom || code != 0),
            started,
            finished: now(),
            id: id.to_string(),
        };
        c.ready = false;
        c.stop_probes();
        c.state = State::Terminated(ended.clone());
        let ran = c.started_at.map(|t| t.elapsed()).unwrap_or_default();
        let restart = match (c.init, policy.as_str()) {
            (true, "Never") => false,
            (true, _) => code != 0,
            (false, "Always") => true,
            (false, "OnFailure") => code != 0,
            _ => false,
        };
        if !restart {
            return;
        }
        if ran >= BACKOFF_RESET {
            c.backoff = None;
        }
        let wait = next_backoff(c);
        c.last = Some(ended);
        c.restarts += 1;
        c.id = None;
        c.state = State::Waiting {
            reason: if wait.is_zero() {
                "ContainerCreating".into()
            } else {
                "CrashLoopBackOff".into()
            },
            message: format!(
                "back-off {}s restarting failed container={} pod={}_{}({})",
                wait.as_secs(),
                c.name,
                self.name,
                self.namespace,
                self.uid
            ),
        };
        c.start_after = Some(tokio::time::Instant::now() + wait);
        let cname = c.name.clone();
        if !wait.is_zero() {
            self.event(
                Some(&cname),
                true,
                "BackOff",
                "Back-off restarting failed container",
            );
        }
        // The attempt before the previous one goes; the previous one stays
        // for `logs --previous`.
        if let Some(old) = self.ctrs[i].restarts.checked_sub(2) {
            let name = container_name(&cname, &self.name, &self.namespace, &self.uid, old);
            let _ = sup(&self.agent).remove(&name, true).await;
        }
    }

    /// A container is ready when it runs and every TCP port it declares is
    /// bound in the pod's namespace (the one rule for readiness without a
    /// readiness probe).
    fn update_ready(&mut self) {
        let ns = self.ns.clone();
        for c in &mut self.ctrs {
            if c.init {
                c.ready = false;
                continue;
            }
            let running = matches!(c.state, State::Running { .. }) && c.startup_ok;
            c.ready = running
                && if c.spec["readinessProbe"].is_object() {
                    c.probe_ready
                } else {
                    c.spec["ports"].as_array().into_iter().flatten().all(|p| {
                        let proto = p["protocol"].as_str().unwrap_or("TCP");
                        let port = p["containerPort"].as_u64().unwrap_or(0) as u16;
                        proto != "TCP"
                            || ns
                                .as_ref()
                                .is_some_and(|n| n.lookup(Proto::Tcp, port).is_some())
                    })
                };
        }
    }

    /// Starts the probes of a container's new run.
    fn start_probes(&mut self, i: usize, id: &str) {
        let Some(ns) = self.ns.clone() else { return };
        let sup = self.agent.sup().clone();
        let c = &mut self.ctrs[i];
        c.stop_probes();
        c.successes = [0; 3];
        c.failures = [0; 3];
        c.probe_ready = false;
        c.startup_ok = c.spec["startupProbe"].is_null();
        for kind in [Kind::Startup, Kind::Liveness, Kind::Readiness] {
            match Probe::of(&c.spec, kind) {
                Ok(Some(p)) => c.probes.push(p.spawn(
                    i,
                    id.to_string(),
                    sup.clone(),
                    ns.clone(),
                    self.probe_tx.clone(),
                )),
                Ok(None) => {}
                Err(e) => tracing::warn!(pod = %self.name, error = %e, "probe not run"),
            }
        }
    }

    /// A probe's result: the thresholds decide readiness, or a restart.
    async fn probed(&mut self, o: Outcome) {
        let Some(c) = self.ctrs.get_mut(o.container) else {
            return;
        };
        if c.id.as_deref() != Some(o.id.as_str()) || !matches!(c.state, State::Running { .. }) {
            return;
        }
        if o.kind != Kind::Startup && !c.startup_ok {
            return;
        }
        let Ok(Some(probe)) = Probe::of(&c.spec, o.kind) else {
            return;
        };
        let k = slot(o.kind);
        let cname = c.name.clone();
        let failed = match o.result {
            Ok(()) => {
                c.successes[k] += 1;
                c.failures[k] = 0;
                match o.kind {
                    Kind::Startup => c.startup_ok = true,
                    Kind::Readiness if c.successes[k] >= probe.success_threshold => {
                        c.probe_ready = true
                    }
                    _ => {}
                }
                None
            }
            Err(msg) => {
                c.successes[k] = 0;
                c.failures[k] += 1;
                let over = c.failures[k] >= probe.failure_threshold;
                if o.kind == Kind::Readiness && over {
                    c.probe_ready = false;
                }
                Some((msg, over))
            }
        };
        let Some((msg, over)) = failed else { return };
        self.event(
            Some(&cname),
            true,
            "Unhealthy",
            &format!("{} probe failed: {msg}", o.kind.name()),
        );
        if over && o.kind != Kind::Readiness {
            let what = o.kind.name().to_ascii_lowercase();
            self.event(
                Some(&cname),
                false,
                "Killing",
                &format!("Container {cname} failed {what} probe, will be restarted"),
            );
            if let Some(c) = self.ctrs.get_mut(o.container) {
                c.stop_probes();
            }
            let _ = sup(&self.agent).stop(&o.id, StopReason::Killed).await;
        }
    }

    /// A deleted pod leaves its services' endpoints first (the endpoints
    /// controller sees the deletion); the connections the proxy already
    /// sent it may finish, within the grace period, before its guests
    /// stop. A pod nobody connects to stops at once.
    async fn drain(&self) {
        let Some(ns) = &self.ns else { return };
        let proxy = self.agent.sup().networks().fabric().proxy().clone();
        let ip = std::net::IpAddr::V4(ns.ip());
        let grace = self.obj["metadata"]["deletionGracePeriodSeconds"]
            .as_u64()
            .or_else(|| self.obj["spec"]["terminationGracePeriodSeconds"].as_u64())
            .unwrap_or(30);
        let in_endpoints = |proxy: &crate::net::proxy::ServiceProxy| {
            proxy.stats().iter().any(|s| {
                s.ports
                    .iter()
                    .any(|p| p.endpoints.iter().any(|e| e.ip == ip && e.ready))
            })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(grace);
        while tokio::time::Instant::now() < deadline
            && (in_endpoints(&proxy) || proxy.active_to(ip) > 0)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn stop_all(&mut self, announce: bool) {
        for c in &mut self.ctrs {
            c.stop_probes();
        }
        let running: Vec<(String, String)> = self
            .ctrs
            .iter()
            .filter(|c| matches!(c.state, State::Running { .. }))
            .filter_map(|c| c.id.clone().map(|id| (c.name.clone(), id)))
            .collect();
        for (cname, id) in running {
            if announce {
                self.event(
                    Some(&cname),
                    false,
                    "Killing",
                    &format!("Stopping container {cname}"),
                );
            }
            let _ = sup(&self.agent).stop(&id, StopReason::Killed).await;
        }
    }

    /// Removes the pod's containers and files.
    async fn cleanup(&mut self) {
        // Their names end in `_<uid>_<attempt>`: ask for those alone.
        let records = sup(&self.agent)
            .db()
            .named_like(&format!("_{}_", self.uid))
            .unwrap_or_default();
        for rec in records {
            if rec.spec.labels.get(LABEL_POD_UID) == Some(&self.uid) {
                let _ = sup(&self.agent).remove(&rec.id, true).await;
            }
        }
        self.ns = None;
        let dir = volumes::pod_dir(sup(&self.agent).root().dir(), &self.uid);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }

    /// A deleted pod: stopped, cleaned up, and removed from the store.
    async fn finish(&mut self) {
        self.cleanup().await;
        let store = self.agent.store();
        if let Err(e) = store.delete(
            pods_resource(),
            Some(&self.namespace),
            &self.name,
            Some(&self.uid),
        ) {
            tracing::debug!(pod = %self.name, error = %e, "pod already gone");
        }
    }

    fn phase(&self) -> &'static str {
        let apps: Vec<&Ctr> = self.ctrs.iter().filter(|c| !c.init).collect();
        let init_failed = self
            .ctrs
            .iter()
            .any(|c| c.init && matches!(&c.state, State::Terminated(e) if e.code != 0));
        if init_failed && self.restart_policy() == "Never" {
            return "Failed";
        }
        if apps
            .iter()
            .any(|c| matches!(c.state, State::Running { .. }))
        {
            return "Running";
        }
        let all_ended =
            !apps.is_empty() && apps.iter().all(|c| matches!(c.state, State::Terminated(_)));
        if all_ended {
            let failed = apps
                .iter()
                .any(|c| matches!(&c.state, State::Terminated(e) if e.code != 0));
            return if failed { "Failed" } else { "Succeeded" };
        }
        // Between restarts a pod that ran stays Running, as the kubelet's.
        if apps.iter().any(|c| c.restarts > 0) {
            return "Running";
        }
        "Pending"
    }

    fn container_status(&self, c: &Ctr) -> Value {
        let state = state_json(&c.state);
        let mut s = json!({
            "name": c.name,
            "state": state,
            "ready": c.ready,
            "restartCount": c.restarts,
            "image": c.spec["image"],
            "imageID": if c.image_id.is_empty() { String::new() } else { format!("wrun://{}", c.image_id) },
            "started": matches!(c.state, State::Running { .. }),
        });
        if let Some(id) = &c.id {
            s["containerID"] = json!(format!("wrun://{id}"));
        }
        if let Some(last) = &c.last {
            s["lastState"] = state_json(&State::Terminated(last.clone()));
        } else {
            s["lastState"] = json!({});
        }
        s
    }

    /// Reports the pod's status. The write is queued, as the kubelet's
    /// status manager writes statuses apart from the pod's own work: a
    /// burst of pods shares transactions, and a status that a newer one
    /// replaces before it lands is never written (see `Store::defer`).
    fn write_status(&mut self) {
        let t = now();
        let apps_ready = self.ctrs.iter().filter(|c| !c.init).all(|c| c.ready);
        let phase = self.phase();
        let finished = matches!(phase, "Succeeded" | "Failed");
        // Transition times carry over from the last status written, which
        // the pod's own copy may not show yet.
        let last = self.sent.as_ref().unwrap_or(&self.obj["status"]);
        let old_conditions = last["conditions"].as_array().cloned().unwrap_or_default();
        let condition = |kind: &str, ok: bool, reason: Option<&str>| {
            let status = if ok { "True" } else { "False" };
            // The transition time moves only when the status does.
            let since = old_conditions
                .iter()
                .find(|c| c["type"] == kind && c["status"] == status)
                .and_then(|c| c["lastTransitionTime"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| t.clone());
            let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
            if let Some(r) = reason {
                c["reason"] = json!(r);
            }
            c
        };
        let not_ready: Vec<&str> = self
            .ctrs
            .iter()
            .filter(|c| !c.init && !c.ready)
            .map(|c| c.name.as_str())
            .collect();
        let ready_reason = if finished {
            Some("PodCompleted")
        } else if apps_ready {
            None
        } else {
            Some("ContainersNotReady")
        };
        let mut conditions = vec![
            condition("PodReadyToStartContainers", self.ns.is_some(), None),
            condition(
                "Initialized",
                self.initialized,
                (!self.initialized).then_some("ContainersNotInitialized"),
            ),
            condition("Ready", apps_ready && !finished, ready_reason),
            condition("ContainersReady", apps_ready && !finished, ready_reason),
            condition("PodScheduled", true, None),
        ];
        if !apps_ready && !finished {
            let msg = format!("containers with unready status: [{}]", not_ready.join(" "));
            for c in conditions
                .iter_mut()
                .filter(|c| c["type"] == "Ready" || c["type"] == "ContainersReady")
            {
                c["message"] = json!(msg);
            }
        }
        let ip = self.ns.as_ref().map(|n| n.ip().to_string());
        let mut status = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": self.start_time,
            "qosClass": self.obj["status"]["qosClass"],
            "containerStatuses": self.ctrs.iter().filter(|c| !c.init).map(|c| self.container_status(c)).collect::<Vec<_>>(),
        });
        if let Some(ip) = ip {
            status["podIP"] = json!(ip);
            status["podIPs"] = json!([{"ip": ip}]);
        }
        if self.ctrs.iter().any(|c| c.init) {
            status["initContainerStatuses"] = json!(
                self.ctrs
                    .iter()
                    .filter(|c| c.init)
                    .map(|c| self.container_status(c))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(f) = &self.failure {
            status["message"] = json!(f);
        }
        if self.sent.as_ref() == Some(&status) && same_status(&self.obj["status"], &status) {
            // Written, and nobody changed it since.
            return;
        }
        self.sent = Some(status.clone());
        let (uid, namespace, name) = (self.uid.clone(), self.namespace.clone(), self.name.clone());
        self.agent.store().defer(
            Some(format!("pod-status/{uid}")),
            Box::new(move |b| {
                let written = b.modify(pods_resource(), Some(&namespace), &name, |p| {
                    if p["metadata"]["uid"] != uid.as_str() || same_status(&p["status"], &status) {
                        return Ok(false);
                    }
                    p["status"] = status;
                    Ok(true)
                });
                if let Err(e) = written {
                    tracing::debug!(pod = %name, error = %e, "cannot write the pod's status");
                }
            }),
        );
    }
}

/// Whether two statuses differ only in times that a rewrite would move.
fn same_status(a: &Value, b: &Value) -> bool {
    a == b
}

fn state_json(s: &State) -> Value {
    match s {
        State::Waiting { reason, message } => {
            let mut w = json!({"reason": reason});
            if !message.is_empty() {
                w["message"] = json!(message);
            }
            json!({"waiting": w})
        }
        State::Running { started } => json!({"running": {"startedAt": started}}),
        State::Terminated(e) => {
            let mut t = json!({
                "exitCode": e.code,
                "reason": e.reason,
                "startedAt": e.started,
                "finishedAt": e.finished,
                "containerID": format!("wrun://{}", e.id),
            });
            if let Some(m) = &e.message {
                t["message"] = json!(m);
            }
            json!({"terminated": t})
        }
    }
}

/// The kubelet's backoff: the first restart at once, then 10 s doubling
/// to 5 min.
fn next_backoff(c: &mut Ctr) -> Duration {
    let wait = c.backoff.unwrap_or(Duration::ZERO);
    c.backoff = Some(match c.backoff {
        None => BACKOFF_START,
        Some(b) => (b * 2).min(BACKOFF_MAX),
    });
    wait
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Whether an image reference names a registry host (`127.0.0.1:5000/x`,
/// `ghcr.io/x`), rather than a bare name like `kubia`.
fn names_registry(image: &str) -> bool {
    match image.split_once('/') {
        Some((first, _)) => first.contains('.') || first.contains(':') || first == "localhost",
        None => false,
    }
}

/// Resolves when a port of the pod's namespace is bound or freed (never,
/// once the namespace is gone); without a namespace, after [`READY_POLL`].
async fn port_change(ports: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    match ports {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => tokio::time::sleep(READY_POLL).await,
    }
}

#[cfg(test)]
mod tests {
    use super::names_registry;

    #[test]
    fn registry_names() {
        assert!(names_registry("127.0.0.1:5000/me/kubia"));
        assert!(names_registry("ghcr.io/me/kubia:v1"));
        assert!(!names_registry("kubia"));
        assert!(!names_registry("me/kubia"));
    }
}
