//! The replication controller, for ReplicationControllers and ReplicaSets
//! alike: it keeps `spec.replicas` active pods matching the selector,
//! owned through a controller ownerReference. It adopts matching orphans,
//! replaces pods that are deleted or fail, removes the surplus (the least
//! useful first, as Kubernetes ranks them), and reports what it sees in
//! the status, with the events Kubernetes emits.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::admission;
use crate::cluster::events::{self, Source};
use crate::cluster::store::{Event, EventType, Store};
use crate::kube::resources::by_plural;
use crate::kube::selector::labels_of;
use crate::kube::{KubeError, Resource};

fn kinds() -> Vec<&'static Resource> {
    [("", "replicationcontrollers"), ("apps", "replicasets")]
        .iter()
        .filter_map(|(g, p)| by_plural(g, "v1", p))
        .collect()
}

fn pods() -> Option<&'static Resource> {
    by_plural("", "v1", "pods")
}

type Key = super::ObjectKey;

fn source(res: &Resource) -> Source {
    Source {
        component: if res.kind == "ReplicaSet" {
            "replicaset-controller"
        } else {
            "replication-controller"
        },
        host: "",
    }
}

/// The pod's controller ownerReference's uid.
pub fn controller_uid(pod: &Value) -> Option<&str> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
}

fn terminating(o: &Value) -> bool {
    o["metadata"].get("deletionTimestamp").is_some()
}

fn finished(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    )
}

/// How long (in seconds) the pod has been Ready; -1 when it is not.
pub fn ready_for(pod: &Value) -> i64 {
    let Some(c) = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
    else {
        return -1;
    };
    c["lastTransitionTime"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            chrono::Utc::now()
                .signed_duration_since(t)
                .num_seconds()
                .max(0)
        })
        .unwrap_or(0)
}

pub fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

pub async fn run(store: Arc<Store>, cancel: CancellationToken) {
    let Some(pods) = pods() else { return };
    let c = Replication {
        kinds: kinds(),
        pods,
    };
    super::driver::run(store, cancel, c).await;
}

struct Replication {
    kinds: Vec<&'static Resource>,
    pods: &'static Resource,
}

impl super::driver::Controller for Replication {
    type Key = Key;
    const NAME: &'static str = "replication";

    fn all(&mut self, store: &Store, keys: &mut BTreeSet<Key>) {
        for res in &self.kinds {
            if let Ok((items, _)) = store.list(res, None) {
                for o in items {
                    keys.insert(super::object_key(res, &o));
                }
            }
        }
    }

    fn changed(&mut self, store: &Store, e: &Event, keys: &mut BTreeSet<Key>) {
        if self.kinds.contains(&e.resource) {
            if e.kind != EventType::Deleted {
                keys.insert(super::object_key(e.resource, &e.object));
            }
        } else if e.resource == self.pods {
            owners_of(store, &self.kinds, &e.object, keys);
        }
    }

    fn reconcile(&mut self, store: &Store, (plural, ns, name): &Key) -> Result<(), KubeError> {
        match self.kinds.iter().find(|r| r.plural == *plural) {
            Some(res) => reconcile(store, res, ns, name),
            None => Ok(()),
        }
    }

    // Pods become available minReadySeconds after they are ready, with no
    // change to mark it: look again each second at the owners that wait
    // for that.
    fn period(&self) -> Option<std::time::Duration> {
        Some(std::time::Duration::from_secs(1))
    }

    fn tick(&mut self, store: &Store, keys: &mut BTreeSet<Key>) {
        for res in &self.kinds {
            let waiting = store.list_where(res, None, |o| {
                o["spec"]["minReadySeconds"].as_i64().unwrap_or(0) > 0
                    && o["status"]["availableReplicas"] != o["status"]["readyReplicas"]
            });
            for o in waiting.into_iter().flatten() {
                keys.insert(super::object_key(res, &o));
            }
        }
    }
}

/// The workloads a pod's change concerns: its controller, or (for an
/// orphan) those whose selector matches it.
fn owners_of(store: &Store, kinds: &[&'static Resource], pod: &Value, pending: &mut BTreeSet<Key>) {
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    if let Some(owner) = pod["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["controller"] == true)
    {
        if let Some(res) = kinds.iter().find(|r| r.kind == owner["kind"]) {
            let name = owner["name"].as_str().unwrap_or_default().to_string();
            pending.insert((res.plural, ns.to_string(), name));
        }
        return;
    }
    let labels = labels_of(pod);
    for res in kinds {
        let selecting = store.list_where(res, Some(ns), |o| {
            admission::selector_of(res, o).is_ok_and(|s| !s.is_empty() && s.matches(&labels))
        });
        for o in selecting.into_iter().flatten() {
            pending.insert(super::object_key(res, &o));
        }
    }
}

/// A rank for choosing which pods go first when scaling down: unscheduled
/// before scheduled, pending before running, not ready before ready, more
/// restarts before fewer, newer before older.
fn deletion_rank(
    pod: &Value,
) -> (
    bool,
    u8,
    bool,
    std::cmp::Reverse<u64>,
    std::cmp::Reverse<String>,
) {
    let scheduled = pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let phase = match pod["status"]["phase"].as_str() {
        Some("Pending") => 0,
        Some("Running") => 2,
        _ => 1,
    };
    let restarts: u64 = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["restartCount"].as_u64())
        .sum();
    let created = pod["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (
        scheduled,
        phase,
        is_ready(pod),
        std::cmp::Reverse(restarts),
        std::cmp::Reverse(created),
    )
}

fn reconcile(store: &Store, res: &'static Resource, ns: &str, name: &str) -> Result<(), KubeError> {
    let Some(pods_res) = pods() else {
        return Ok(());
    };
    let Some(owner) = store.try_get(res, Some(ns), name)? else {
        return Ok(());
    };
    if terminating(&owner) {
        return Ok(());
    }
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let selector = admission::selector_of(res, &owner)?;
    if selector.is_empty() {
        return Ok(());
    }
    let candidates = store.list_where(pods_res, Some(ns), |p| match controller_uid(p) {
        Some(owner) => owner == uid,
        None => !terminating(p) && selector.matches(&labels_of(p)),
    })?;
    let mut owned: Vec<Arc<Value>> = Vec::new();
    for pod in candidates {
        let mine = controller_uid(&pod) == Some(uid.as_str());
        let matches = selector.matches(&labels_of(&pod));
        if mine {
            owned.push(pod);
        } else if controller_uid(&pod).is_none() && matches && !terminating(&pod) {
            // Adopt the orphan.
            let pod_name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let reference = owner_reference(res, &owner);
            if let Some(adopted) = store.modify(pods_res, Some(ns), &pod_name, |p| {
                if controller_uid(p).is_some() {
                    return Ok(false);
                }
                let mut refs = p["metadata"]["ownerReferences"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                refs.push(reference.clone());
                p["metadata"]["ownerReferences"] = json!(refs);
                Ok(true)
            })? {
                owned.push(Arc::new(adopted));
            }
        }
    }
    let src = source(res);
    // Failed pods are deleted, and replaced below.
    for pod in owned.iter().filter(|p| finished(p) && !terminating(p)) {
        if pod["status"]["phase"] == "Failed" {
            let _ = admission::delete(store, pods_res, pod, None, Some("Background"));
        }
    }
    let mut active: Vec<&Value> = owned
        .iter()
        .map(|p| &**p)
        .filter(|p| !terminating(p) && !finished(p))
        .collect();
    let wanted = owner["spec"]["replicas"].as_i64().unwrap_or(1).max(0) as usize;
    let mut failure: Option<String> = None;
    if active.len() < wanted {
        for _ in active.len()..wanted {
            match create_pod(store, res, &owner) {
                Ok(pod) => {
                    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
                    events::record(
                        store,
                        src,
                        &owner,
                        None,
                        false,
                        "SuccessfulCreate",
                        &format!("Created pod: {pod_name}"),
                    );
                }
                Err(e) => {
                    let msg = format!("Error creating: {e}");
                    events::record(store, src, &owner, None, true, "FailedCreate", &msg);
                    failure = Some(msg);
                    break;
                }
            }
        }
    } else if active.len() > wanted {
        active.sort_by_key(|p| deletion_rank(p));
        let surplus = active.len() - wanted;
        for pod in active.drain(..surplus) {
            let pod_name = pod["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match admission::delete(store, pods_res, pod, None, Some("Background")) {
                Ok(_) | Err(KubeError::NotFound { .. }) => {
                    events::record(
                        store,
                        src,
                        &owner,
                        None,
                        false,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {pod_name}"),
                    );
                }
                Err(e) => {
                    tracing::warn!(pod = %pod_name, error = %e, "cannot delete a surplus pod")
                }
            }
        }
    }
    write_status(store, res, ns, name, failure)
}

fn owner_reference(res: &Resource, owner: &Value) -> Value {
    json!({
        "apiVersion": res.api_version(),
        "kind": res.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// A new pod from the workload's template, as the API server would store
/// it.
fn create_pod(store: &Store, res: &Resource, owner: &Value) -> Result<Value, KubeError> {
    let pods_res = pods().ok_or_else(|| KubeError::internal("no pods"))?;
    let template = &owner["spec"]["template"];
    let mut meta = json!({
        "generateName": format!("{}-", owner["metadata"]["name"].as_str().unwrap_or_default()),
        "namespace": owner["metadata"]["namespace"],
        "ownerReferences": [owner_reference(res, owner)],
    });
    for field in ["labels", "annotations"] {
        if template["metadata"][field].is_object() {
            meta[field] = template["metadata"][field].clone();
        }
    }
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template["spec"],
    });
    admission::admit_create(pods_res, &mut pod)?;
    store.create(pods_res, pod)
}

/// What the controller observed, in the workload's status.
fn write_status(
    store: &Store,
    res: &'static Resource,
    ns: &str,
    name: &str,
    failure: Option<String>,
) -> Result<(), KubeError> {
    let Some(pods_res) = pods() else {
        return Ok(());
    };
    let Some(owner) = store.try_get(res, Some(ns), name)? else {
        return Ok(());
    };
    let uid = owner["metadata"]["uid"].as_str().unwrap_or_default();
    let selector = admission::selector_of(res, &owner)?;
    let all = store.list_where(pods_res, Some(ns), |p| {
        controller_uid(p) == Some(uid) && !terminating(p) && !finished(p)
    })?;
    let active: Vec<&Value> = all.iter().map(|p| &**p).collect();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    // Available: ready for at least minReadySeconds.
    let min_ready = owner["spec"]["minReadySeconds"].as_i64().unwrap_or(0);
    let available = active.iter().filter(|p| ready_for(p) >= min_ready).count();
    let labeled = active
        .iter()
        .filter(|p| selector.matches(&labels_of(p)))
        .count();
    let mut status = json!({
        "replicas": active.len(),
        "fullyLabeledReplicas": labeled,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": owner["metadata"]["generation"].as_i64().unwrap_or(1),
    });
    if let Some(msg) = failure {
        status["conditions"] = json!([{
            "type": "ReplicaFailure",
            "status": "True",
            "reason": "FailedCreate",
            "message": msg,
            "lastTransitionTime": crate::cluster::store::now(),
        }]);
    }
    super::write_status(store, res, ns, name, &status)
}
