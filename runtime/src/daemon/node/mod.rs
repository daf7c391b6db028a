//! The node agent: the kubelet's role. It binds unscheduled pods to the one
//! node (the scheduler's one decision here), and runs each pod bound to it
//! as a worker (`pod.rs`) that turns the pod's containers into supervisor
//! containers sharing one virtual network namespace, and writes the pod's
//! status and events back to the store.
//!
//! It lives in the daemon, beside the supervisor it drives; it talks to
//! the rest of the cluster only through the store.

mod env;
mod pod;
mod probe;
mod quantity;
mod volumes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::supervisor::Supervisor;
use crate::cluster::events::{self, Source};
use crate::cluster::store::{EventType, Store, now};
use crate::kube::Resource;
use crate::kube::resources::by_plural;

/// Labels on a pod's containers, as the Docker shim set them.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";

pub(crate) fn pods_resource() -> &'static Resource {
    by_plural("", "v1", "pods").unwrap_or(&crate::kube::RESOURCES[2])
}

/// The agent of one node.
pub struct NodeAgent {
    store: Arc<Store>,
    sup: Arc<Supervisor>,
    node: &'static str,
    workers: Mutex<HashMap<String, Worker>>,
    cancel: CancellationToken,
}

struct Worker {
    pod: watch::Sender<Value>,
    done: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for NodeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeAgent")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl NodeAgent {
    /// Starts the agent; it runs until `stop`.
    pub fn start(store: Arc<Store>, sup: Arc<Supervisor>, node: &'static str) -> Arc<Self> {
        let agent = Arc::new(Self {
            store,
            sup,
            node,
            workers: Mutex::new(HashMap::new()),
            cancel: CancellationToken::new(),
        });
        // Subscribe before the first list, so no change falls between.
        let rx = agent.store.subscribe();
        tokio::spawn(agent.clone().run(rx));
        agent
    }

    fn workers(&self) -> MutexGuard<'_, HashMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub(crate) fn sup(&self) -> &Arc<Supervisor> {
        &self.sup
    }

    pub(crate) fn source(&self) -> Source {
        Source {
            component: "kubelet",
            host: self.node,
        }
    }

    /// Stops every pod's containers (the objects stay) and the agent.
    pub async fn stop(&self) {
        self.cancel.cancel();
        let workers: Vec<Worker> = self.workers().drain().map(|(_, w)| w).collect();
        for w in workers {
            let _ = w.done.await;
        }
    }

    async fn run(self: Arc<Self>, mut rx: broadcast::Receiver<Arc<crate::cluster::store::Event>>) {
        self.remove_stale_containers().await;
        self.resync();
        loop {
            let event = tokio::select! {
                e = rx.recv() => e,
                () = self.cancel.cancelled() => return,
            };
            match event {
                Ok(e) if e.resource == pods_resource() => {
                    if e.kind == EventType::Deleted {
                        self.forget(&e.object);
                    } else {
                        self.sync(&e.object);
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => self.resync(),
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Looks at every pod again (at start, and after missing changes).
    fn resync(self: &Arc<Self>) {
        let pods = match self.store.list(pods_resource(), None) {
            Ok((p, _)) => p,
            Err(e) => {
                tracing::warn!(error = %e, "node agent: cannot list pods");
                return;
            }
        };
        let uids: std::collections::HashSet<String> = pods
            .iter()
            .filter_map(|p| p["metadata"]["uid"].as_str().map(str::to_string))
            .collect();
        let gone: Vec<String> = self
            .workers()
            .keys()
            .filter(|u| !uids.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            self.workers().remove(&uid);
        }
        for p in &pods {
            self.sync(p);
        }
    }

    /// Containers of pods from an earlier run of the daemon (it was killed,
    /// or the cluster stopped): their pods start afresh.
    async fn remove_stale_containers(&self) {
        let records = match self.sup.db().list() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "node agent: cannot list containers");
                return;
            }
        };
        for rec in records {
            if rec.spec.labels.contains_key(LABEL_POD_UID)
                && let Err(e) = self.sup.remove(&rec.id, true).await
            {
                tracing::warn!(container = rec.short_id(), error = %e, "cannot remove a stale pod container");
            }
        }
    }

    /// Reacts to a pod's new version: binds it, or hands it to its worker.
    fn sync(self: &Arc<Self>, pod: &Value) {
        let Some(uid) = pod["metadata"]["uid"].as_str().map(str::to_string) else {
            return;
        };
        let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
        if node.is_empty() {
            if pod["metadata"].get("deletionTimestamp").is_none() {
                self.bind(pod);
            }
            return;
        }
        if node != self.node {
            return;
        }
        let mut workers = self.workers();
        if let Some(w) = workers.get(&uid) {
            w.pod.send_replace(pod.clone());
            return;
        }
        if self.cancel.is_cancelled() {
            return;
        }
        let (tx, rx) = watch::channel(pod.clone());
        let agent = self.clone();
        let done = tokio::spawn(async move { pod::run(agent, rx).await });
        workers.insert(uid, Worker { pod: tx, done });
    }

    /// The pod is gone from the store: its worker cleans up.
    fn forget(&self, pod: &Value) {
        if let Some(uid) = pod["metadata"]["uid"].as_str() {
            // Dropping the sender tells the worker.
            self.workers().remove(uid);
        }
    }

    /// The scheduler's job: the one node takes every pod.
    fn bind(&self, pod: &Value) {
        let ns = pod["metadata"]["namespace"].as_str().unwrap_or("default");
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let node = self.node;
        let t = now();
        let bound = self.store.modify(pods_resource(), Some(ns), name, |p| {
            if p["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty()) {
                return Ok(false);
            }
            p["spec"]["nodeName"] = json!(node);
            let mut conditions = p["status"]["conditions"].as_array().cloned().unwrap_or_default();
            conditions.retain(|c| c["type"] != "PodScheduled");
            conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": t}));
            p["status"]["conditions"] = json!(conditions);
            Ok(true)
        });
        match bound {
            Ok(Some(p)) => {
                let msg = format!("Successfully assigned {ns}/{name} to {node}");
                let source = Source {
                    component: "default-scheduler",
                    host: "",
                };
                events::record(&self.store, source, &p, None, false, "Scheduled", &msg);
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(pod = name, error = %e, "cannot bind the pod"),
        }
    }

    /// Ends a worker that finished on its own (its pod was deleted).
    pub(crate) fn worker_done(&self, uid: &str) {
        let mut workers = self.workers();
        if workers
            .get(uid)
            .is_some_and(|w| w.done.is_finished() || w.pod.is_closed())
        {
            workers.remove(uid);
        }
    }

    pub(crate) fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }
}

/// The supervisor name of a pod's container, as the Docker shim named
/// them: `k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`.
pub fn container_name(
    container: &str,
    pod: &str,
    namespace: &str,
    uid: &str,
    attempt: u32,
) -> String {
    format!("k8s_{container}_{pod}_{namespace}_{uid}_{attempt}")
}

/// The prefix shared by every attempt of one container of a pod.
pub fn container_prefix(container: &str, pod: &str, namespace: &str, uid: &str) -> String {
    format!("k8s_{container}_{pod}_{namespace}_{uid}_")
}
