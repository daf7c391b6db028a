//! The deployment controller: each pod template of a Deployment is a
//! ReplicaSet of its own (named by a hash of the template, with its
//! revision in an annotation), and the Deployment moves its pods from the
//! old ones to the new one as its strategy says: RollingUpdate (never more
//! than replicas + maxSurge pods, never fewer than replicas − maxUnavailable
//! available) or Recreate (the old pods go before new ones start). Old
//! ReplicaSets are kept, scaled to 0, up to revisionHistoryLimit, which is
//! what `kubectl rollout history|undo` reads.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use super::replication::controller_uid;
use crate::cluster::admission;
use crate::cluster::events::{self, Source};
use crate::cluster::store::{Event, Store, now};
use crate::kube::resources::by_plural;
use crate::kube::{KubeError, Resource};

const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";
const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
const SOURCE: Source = Source {
    component: "deployment-controller",
    host: "",
};

fn deployments() -> Option<&'static Resource> {
    by_plural("apps", "v1", "deployments")
}

fn replica_sets() -> Option<&'static Resource> {
    by_plural("apps", "v1", "replicasets")
}

fn pods() -> Option<&'static Resource> {
    by_plural("", "v1", "pods")
}

type Key = (String, String);

pub async fn run(store: Arc<Store>, cancel: CancellationToken) {
    let (Some(deploys), Some(rs_res)) = (deployments(), replica_sets()) else {
        return;
    };
    super::driver::run(store, cancel, Deployments { deploys, rs_res }).await;
}

struct Deployments {
    deploys: &'static Resource,
    rs_res: &'static Resource,
}

impl super::driver::Controller for Deployments {
    type Key = Key;
    const NAME: &'static str = "deployment";

    fn all(&mut self, store: &Store, keys: &mut BTreeSet<Key>) {
        if let Ok((items, _)) = store.list(self.deploys, None) {
            keys.extend(items.iter().map(super::name_key));
        }
    }

    fn changed(&mut self, _: &Store, e: &Event, keys: &mut BTreeSet<Key>) {
        keys.extend(super::owner_key(e, self.deploys, self.rs_res));
    }

    fn reconcile(&mut self, store: &Store, (ns, name): &Key) -> Result<(), KubeError> {
        reconcile(store, ns, name)
    }

    // A progress deadline passes without any change: look again now and
    // then while a rollout is under way.
    fn period(&self) -> Option<Duration> {
        Some(Duration::from_secs(5))
    }
}

/// A short, stable hash of a pod template, in Kubernetes' alphabet of
/// characters that spell no words.
pub fn template_hash(template: &Value) -> String {
    let digest = Sha256::digest(template.to_string().as_bytes());
    let mut n = u64::from_le_bytes(digest[..8].try_into().unwrap_or_default());
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    for _ in 0..10 {
        out.push(ALPHABET[(n % ALPHABET.len() as u64) as usize] as char);
        n /= ALPHABET.len() as u64;
    }
    out
}

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn replicas(o: &Value) -> i64 {
    o["spec"]["replicas"].as_i64().unwrap_or(0)
}

fn status(o: &Value, field: &str) -> i64 {
    o["status"][field].as_i64().unwrap_or(0)
}

/// maxSurge or maxUnavailable as a number of pods.
fn resolve(v: &Value, total: i64, round_up: bool) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(0).max(0),
        Value::String(s) => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            let scaled = total * pct;
            if round_up {
                (scaled + 99) / 100
            } else {
                scaled / 100
            }
        }
        _ => 0,
    }
}

fn scale(store: &Store, deploy: &Value, rs: &Value, to: i64) -> Result<(), KubeError> {
    let Some(rs_res) = replica_sets() else {
        return Ok(());
    };
    let from = replicas(rs);
    if from == to {
        return Ok(());
    }
    let ns = rs["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = rs["metadata"]["name"].as_str().unwrap_or_default();
    let d_replicas = replicas(deploy);
    store.modify(rs_res, Some(ns), name, |o| {
        o["spec"]["replicas"] = json!(to);
        o["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] =
            json!(d_replicas.to_string());
        Ok(true)
    })?;
    let verb = if to > from { "up" } else { "down" };
    events::record(
        store,
        SOURCE,
        deploy,
        None,
        false,
        "ScalingReplicaSet",
        &format!("Scaled {verb} replica set {name} from {from} to {to}"),
    );
    Ok(())
}

fn reconcile(store: &Store, ns: &str, name: &str) -> Result<(), KubeError> {
    let (Some(deploys), Some(rs_res), Some(pods_res)) = (deployments(), replica_sets(), pods())
    else {
        return Ok(());
    };
    let Some(d) = store.try_get(deploys, Some(ns), name)? else {
        return Ok(());
    };
    if d["metadata"].get("deletionTimestamp").is_some() {
        return Ok(());
    }
    let uid = d["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (all_rs, _) = store.list(rs_res, Some(ns))?;
    let mut owned: Vec<Value> = all_rs
        .into_iter()
        .filter(|rs| controller_uid(rs) == Some(uid.as_str()))
        .collect();
    owned.sort_by_key(revision);
    let hash = template_hash(&d["spec"]["template"]);
    let max_revision = owned.iter().map(revision).max().unwrap_or(0);
    let paused = d["spec"]["paused"] == true;
    let mut new = owned
        .iter()
        .find(|rs| rs["metadata"]["labels"][HASH_LABEL] == hash.as_str())
        .cloned();
    let want = replicas(&d).max(0);
    let strategy = d["spec"]["strategy"]["type"]
        .as_str()
        .unwrap_or("RollingUpdate")
        .to_string();
    if !paused {
        match &new {
            None => {
                let old_pods = owned.iter().map(|rs| status(rs, "replicas")).sum::<i64>();
                let initial = if strategy == "Recreate" && old_pods > 0 {
                    0
                } else if owned.is_empty() {
                    want
                } else {
                    0
                };
                new = Some(create_rs(store, &d, &hash, max_revision + 1, initial)?);
            }
            Some(rs) if revision(rs) < max_revision => {
                // A rollback to an old template: it becomes the newest
                // revision again.
                let rs_name = rs["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let cause = d["metadata"]["annotations"][CHANGE_CAUSE].clone();
                new = store.modify(rs_res, Some(ns), &rs_name, |o| {
                    o["metadata"]["annotations"][REVISION] = json!((max_revision + 1).to_string());
                    if cause.is_string() {
                        o["metadata"]["annotations"][CHANGE_CAUSE] = cause.clone();
                    }
                    Ok(true)
                })?;
            }
            Some(_) => {}
        }
    }
    let Some(new) = new else {
        return write_status(store, &d, None, &owned);
    };
    let new_name = new["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let olds: Vec<&Value> = owned
        .iter()
        .filter(|rs| rs["metadata"]["name"] != new_name.as_str())
        .collect();
    if paused {
        // A paused rollout still follows scaling of the current revision.
        if olds.iter().all(|rs| replicas(rs) == 0) && replicas(&new) != want {
            scale(store, &d, &new, want)?;
        }
    } else if strategy == "Recreate" {
        for rs in &olds {
            scale(store, &d, rs, 0)?;
        }
        let (all_pods, _) = store.list(pods_res, Some(ns))?;
        let old_uids: Vec<&str> = olds
            .iter()
            .filter_map(|rs| rs["metadata"]["uid"].as_str())
            .collect();
        let old_left = all_pods
            .iter()
            .any(|p| controller_uid(p).is_some_and(|u| old_uids.contains(&u)));
        if !old_left {
            scale(store, &d, &new, want)?;
        }
    } else {
        let ru = &d["spec"]["strategy"]["rollingUpdate"];
        let surge = resolve(&ru["maxSurge"], want, true);
        let mut unavailable = resolve(&ru["maxUnavailable"], want, false);
        if surge == 0 && unavailable == 0 {
            unavailable = 1;
        }
        let total: i64 = owned.iter().map(replicas).sum();
        let new_replicas = replicas(&new);
        // Up: the new ReplicaSet grows within the surge.
        if new_replicas > want {
            scale(store, &d, &new, want)?;
        } else if new_replicas < want {
            let room = want + surge - total;
            if room > 0 {
                scale(store, &d, &new, (new_replicas + room).min(want))?;
            }
        }
        // Down: the old ones shrink as far as availability allows, the
        // oldest first.
        let new_now = store
            .try_get(rs_res, Some(ns), &new_name)?
            .unwrap_or(new.clone());
        let available: i64 = olds
            .iter()
            .map(|rs| status(rs, "availableReplicas"))
            .sum::<i64>()
            + status(&new_now, "availableReplicas");
        let min_available = want - unavailable;
        let mut can_remove = (available - min_available).max(0);
        // Old pods that are not available cost no availability to remove.
        for rs in &olds {
            let spare = (replicas(rs) - status(rs, "availableReplicas")).max(0);
            if spare > 0 {
                scale(store, &d, rs, replicas(rs) - spare)?;
            }
        }
        for rs in &olds {
            let current = store
                .try_get(
                    rs_res,
                    Some(ns),
                    rs["metadata"]["name"].as_str().unwrap_or_default(),
                )?
                .unwrap_or((*rs).clone());
            if can_remove == 0 {
                break;
            }
            let r = replicas(&current);
            let cut = r.min(can_remove);
            if cut > 0 {
                scale(store, &d, &current, r - cut)?;
                can_remove -= cut;
            }
        }
    }
    cleanup_history(store, &d, &new_name)?;
    let (owned_now, _) = store.list(rs_res, Some(ns))?;
    let owned_now: Vec<Value> = owned_now
        .into_iter()
        .filter(|rs| controller_uid(rs) == Some(uid.as_str()))
        .collect();
    let new_now = owned_now
        .iter()
        .find(|rs| rs["metadata"]["name"] == new_name.as_str())
        .cloned();
    write_status(store, &d, new_now.as_ref(), &owned_now)
}

/// The ReplicaSet of a new template revision.
fn create_rs(
    store: &Store,
    d: &Value,
    hash: &str,
    revision: i64,
    initial: i64,
) -> Result<Value, KubeError> {
    let rs_res = replica_sets().ok_or_else(|| KubeError::internal("no replicasets"))?;
    let name = format!(
        "{}-{hash}",
        d["metadata"]["name"].as_str().unwrap_or_default()
    );
    let mut template = d["spec"]["template"].clone();
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut selector = d["spec"]["selector"].clone();
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut annotations = json!({
        REVISION: revision.to_string(),
        "deployment.kubernetes.io/desired-replicas": replicas(d).to_string(),
    });
    if let Some(cause) = d["metadata"]["annotations"][CHANGE_CAUSE].as_str() {
        annotations[CHANGE_CAUSE] = json!(cause);
    }
    let mut rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": d["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
            "annotations": annotations,
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": d["metadata"]["name"],
                "uid": d["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": initial,
            "minReadySeconds": d["spec"]["minReadySeconds"].as_i64().unwrap_or(0),
            "selector": selector,
            "template": template,
        },
    });
    admission::admit_create(rs_res, &mut rs)?;
    let made = match store.create(rs_res, rs) {
        Ok(m) => m,
        Err(KubeError::AlreadyExists { .. }) => {
            let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
            store.get(rs_res, Some(ns), &name)?
        }
        Err(e) => return Err(e),
    };
    if initial > 0 {
        events::record(
            store,
            SOURCE,
            d,
            None,
            false,
            "ScalingReplicaSet",
            &format!("Scaled up replica set {name} from 0 to {initial}"),
        );
    }
    Ok(made)
}

/// Old revisions beyond revisionHistoryLimit go, the oldest first.
fn cleanup_history(store: &Store, d: &Value, new_name: &str) -> Result<(), KubeError> {
    let Some(rs_res) = replica_sets() else {
        return Ok(());
    };
    let limit = d["spec"]["revisionHistoryLimit"]
        .as_i64()
        .unwrap_or(10)
        .max(0) as usize;
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let uid = d["metadata"]["uid"].as_str().unwrap_or_default();
    let (all, _) = store.list(rs_res, Some(ns))?;
    let mut idle: Vec<Value> = all
        .into_iter()
        .filter(|rs| {
            controller_uid(rs) == Some(uid)
                && rs["metadata"]["name"] != new_name
                && replicas(rs) == 0
                && status(rs, "replicas") == 0
                && rs["metadata"].get("deletionTimestamp").is_none()
        })
        .collect();
    if idle.len() <= limit {
        return Ok(());
    }
    idle.sort_by_key(revision);
    let extra = idle.len() - limit;
    for rs in idle.iter().take(extra) {
        match admission::delete(store, rs_res, rs, None, Some("Background")) {
            Ok(_) | Err(KubeError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn condition(kind: &str, ok: &str, reason: &str, message: &str, old: &Value, t: &str) -> Value {
    let previous = old["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == kind)
        .cloned();
    let transition = match &previous {
        Some(p) if p["status"] == ok => p["lastTransitionTime"].clone(),
        _ => json!(t),
    };
    let update = match &previous {
        Some(p) if p["status"] == ok && p["reason"] == reason && p["message"] == message => {
            p["lastUpdateTime"].clone()
        }
        _ => json!(t),
    };
    json!({
        "type": kind,
        "status": ok,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "lastUpdateTime": update,
    })
}

fn write_status(
    store: &Store,
    d: &Value,
    new: Option<&Value>,
    owned: &[Value],
) -> Result<(), KubeError> {
    let Some(deploys) = deployments() else {
        return Ok(());
    };
    let want = replicas(d).max(0);
    let ru = &d["spec"]["strategy"]["rollingUpdate"];
    let unavailable_allowed = if d["spec"]["strategy"]["type"] == "Recreate" {
        0
    } else {
        resolve(&ru["maxUnavailable"], want, false)
    };
    let total: i64 = owned.iter().map(|rs| status(rs, "replicas")).sum();
    let ready: i64 = owned.iter().map(|rs| status(rs, "readyReplicas")).sum();
    let available: i64 = owned.iter().map(|rs| status(rs, "availableReplicas")).sum();
    let updated = new.map(|rs| status(rs, "replicas")).unwrap_or(0);
    let new_name = new
        .and_then(|rs| rs["metadata"]["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let t = now();
    let complete = updated == want
        && total == want
        && available == want
        && new.is_some_and(|rs| replicas(rs) == want);
    let available_cond = if available >= want - unavailable_allowed {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            d,
            &t,
        )
    } else {
        condition(
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            d,
            &t,
        )
    };
    let deadline = d["spec"]["progressDeadlineSeconds"].as_i64().unwrap_or(600);
    let progressing = if d["spec"]["paused"] == true {
        condition(
            "Progressing",
            "Unknown",
            "DeploymentPaused",
            "Deployment is paused",
            d,
            &t,
        )
    } else if complete {
        condition(
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            &format!("ReplicaSet \"{new_name}\" has successfully progressed."),
            d,
            &t,
        )
    } else {
        let msg = format!("ReplicaSet \"{new_name}\" is progressing.");
        let c = condition("Progressing", "True", "ReplicaSetUpdated", &msg, d, &t);
        let since = c["lastUpdateTime"]
            .as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        let late = since
            .is_some_and(|s| chrono::Utc::now().signed_duration_since(s).num_seconds() > deadline);
        // Progress (a count changing) moves the update time; the deadline
        // counts from the last progress.
        let progressed = d["status"]["updatedReplicas"].as_i64() != Some(updated)
            || d["status"]["availableReplicas"].as_i64() != Some(available);
        if late && !progressed {
            condition(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                &format!("ReplicaSet \"{new_name}\" has timed out progressing."),
                d,
                &t,
            )
        } else if progressed {
            let mut c = c;
            c["lastUpdateTime"] = json!(t);
            c
        } else {
            c
        }
    };
    let status = json!({
        "observedGeneration": d["metadata"]["generation"].as_i64().unwrap_or(1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": available,
        "unavailableReplicas": (want - available).max(0),
        "conditions": [available_cond, progressing],
    });
    let ns = d["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = d["metadata"]["name"].as_str().unwrap_or_default();
    super::write_status(store, deploys, ns, name, &status)
}
