//! The Job controller: a Job runs pods until `completions` of them have
//! succeeded, at most `parallelism` at a time; failures (failed pods, and
//! container restarts under `restartPolicy: OnFailure`) count against
//! `backoffLimit`, with the pod backoff Kubernetes uses (10 s doubling, at
//! most 6 min) between a failure and the next pod. It ends with the
//! Complete or Failed condition that `kubectl wait --for=condition=complete`
//! waits for.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::replication::{controller_uid, is_ready};
use crate::cluster::admission;
use crate::cluster::events::{self, Source};
use crate::cluster::store::{Event, Store, now};
use crate::kube::resources::by_plural;
use crate::kube::{KubeError, Resource};

const SOURCE: Source = Source {
    component: "job-controller",
    host: "",
};
const UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
const NAME_LABEL: &str = "batch.kubernetes.io/job-name";

fn jobs() -> Option<&'static Resource> {
    by_plural("batch", "v1", "jobs")
}

fn pods() -> Option<&'static Resource> {
    by_plural("", "v1", "pods")
}

type Key = (String, String);

pub async fn run(store: Arc<Store>, cancel: CancellationToken) {
    let (Some(jobs_res), Some(pods_res)) = (jobs(), pods()) else {
        return;
    };
    super::driver::run(store, cancel, Jobs { jobs_res, pods_res }).await;
}

struct Jobs {
    jobs_res: &'static Resource,
    pods_res: &'static Resource,
}

impl super::driver::Controller for Jobs {
    type Key = Key;
    const NAME: &'static str = "job";

    fn all(&mut self, store: &Store, keys: &mut BTreeSet<Key>) {
        if let Ok(items) = store.list_where(self.jobs_res, None, |j| !finished(j)) {
            keys.extend(items.iter().map(|j| super::name_key(j)));
        }
    }

    fn changed(&mut self, _: &Store, e: &Event, keys: &mut BTreeSet<Key>) {
        keys.extend(super::owner_key(e, self.jobs_res, self.pods_res));
    }

    fn reconcile(&mut self, store: &Store, (ns, name): &Key) -> Result<(), KubeError> {
        reconcile(store, ns, name)
    }

    // Pod backoffs end without any change: look again each second.
    fn period(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

fn has_condition(j: &Value, kind: &str) -> bool {
    j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == kind && c["status"] == "True")
}

fn finished(j: &Value) -> bool {
    has_condition(j, "Complete") || has_condition(j, "Failed")
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("Pending")
}

fn restarts(p: &Value) -> i64 {
    p["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["restartCount"].as_i64())
        .sum()
}

/// When the last failed pod of the Job ended.
fn last_failure(pods: &[&Value]) -> Option<chrono::DateTime<chrono::Utc>> {
    pods.iter()
        .filter(|p| phase(p) == "Failed")
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .filter_map(|s| s["state"]["terminated"]["finishedAt"].as_str())
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .max()
}

fn reconcile(store: &Store, ns: &str, name: &str) -> Result<(), KubeError> {
    let (Some(jobs_res), Some(pods_res)) = (jobs(), pods()) else {
        return Ok(());
    };
    let Some(job) = store.try_get(jobs_res, Some(ns), name)? else {
        return Ok(());
    };
    if job["metadata"].get("deletionTimestamp").is_some() {
        return Ok(());
    }
    let uid = job["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The selector and pod labels of a new Job come from its uid.
    if job["spec"]["selector"].is_null() {
        store.modify(jobs_res, Some(ns), name, |j| {
            if !j["spec"]["selector"].is_null() {
                return Ok(false);
            }
            j["spec"]["selector"] = json!({"matchLabels": {UID_LABEL: uid}});
            let labels = &mut j["spec"]["template"]["metadata"]["labels"];
            labels[UID_LABEL] = json!(uid);
            labels["controller-uid"] = json!(uid);
            labels[NAME_LABEL] = json!(name);
            labels["job-name"] = json!(name);
            Ok(true)
        })?;
        return Ok(());
    }
    let all = owned_pods(store, pods_res, ns, &uid)?;
    let owned: Vec<&Value> = all.iter().map(|p| &**p).collect();
    let active: Vec<&Value> = owned.iter().copied().filter(|p| running(p)).collect();
    let succeeded = owned.iter().filter(|p| phase(p) == "Succeeded").count() as i64;
    let failed_pods = owned.iter().filter(|p| phase(p) == "Failed").count() as i64;
    let on_failure = job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure";
    let failures = failed_pods
        + if on_failure {
            owned.iter().map(|p| restarts(p)).sum()
        } else {
            0
        };
    let completions = job["spec"]["completions"].as_i64().unwrap_or(1);
    let parallelism = job["spec"]["parallelism"].as_i64().unwrap_or(1);
    let backoff_limit = job["spec"]["backoffLimit"].as_i64().unwrap_or(6);
    let suspended = job["spec"]["suspend"] == true;
    let t = now();
    let mut conditions: Vec<Value> = job["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut completion_time = job["status"]["completionTime"].clone();
    let condition = |kind: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": "True", "reason": reason, "message": message,
               "lastProbeTime": t, "lastTransitionTime": t})
    };
    let done = finished(&job);
    if !done {
        if failures > backoff_limit {
            conditions.push(condition(
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
            conditions.push(condition(
                "Failed",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            ));
            for p in &active {
                let _ = admission::delete(store, pods_res, p, Some(0), Some("Background"));
            }
            events::record(
                store,
                SOURCE,
                &job,
                None,
                true,
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            );
        } else if succeeded >= completions {
            conditions.push(condition(
                "SuccessCriteriaMet",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
            conditions.push(condition(
                "Complete",
                "CompletionsReached",
                "Reached expected number of succeeded pods",
            ));
            completion_time = json!(t);
            events::record(
                store,
                SOURCE,
                &job,
                None,
                false,
                "Completed",
                "Job completed",
            );
        } else if suspended {
            for p in &active {
                let _ = admission::delete(store, pods_res, p, Some(0), Some("Background"));
            }
        } else {
            let wanted = parallelism.min(completions - succeeded).max(0);
            let missing = wanted - active.len() as i64;
            let backoff_over = match last_failure(&owned) {
                None => true,
                Some(at) if failed_pods > 0 => {
                    let wait = (10i64 << (failed_pods - 1).min(6)).min(360);
                    chrono::Utc::now().signed_duration_since(at).num_seconds() >= wait
                }
                Some(_) => true,
            };
            if missing > 0 && backoff_over {
                for _ in 0..missing {
                    match create_pod(store, &job) {
                        Ok(p) => {
                            let pod_name = p["metadata"]["name"].as_str().unwrap_or_default();
                            events::record(
                                store,
                                SOURCE,
                                &job,
                                None,
                                false,
                                "SuccessfulCreate",
                                &format!("Created pod: {pod_name}"),
                            );
                        }
                        Err(e) => {
                            events::record(
                                store,
                                SOURCE,
                                &job,
                                None,
                                true,
                                "FailedCreate",
                                &format!("Error creating: {e}"),
                            );
                            break;
                        }
                    }
                }
            }
        }
    }
    let all = owned_pods(store, pods_res, ns, &uid)?;
    let owned: Vec<&Value> = all.iter().map(|p| &**p).collect();
    let active_now: Vec<&Value> = owned.iter().copied().filter(|p| running(p)).collect();
    let mut status = json!({
        "active": active_now.len(),
        "ready": active_now.iter().filter(|p| is_ready(p)).count(),
        "succeeded": succeeded,
        "failed": failed_pods,
        "terminating": owned.iter().filter(|p| p["metadata"].get("deletionTimestamp").is_some()).count(),
        "uncountedTerminatedPods": {},
        "startTime": job["status"]["startTime"].as_str().map(str::to_string).unwrap_or_else(|| t.clone()),
    });
    if !conditions.is_empty() {
        status["conditions"] = json!(conditions);
    }
    if completion_time.is_string() {
        status["completionTime"] = completion_time;
    }
    super::write_status(store, jobs_res, ns, name, &status)
}

/// The pods the job controls.
fn owned_pods(
    store: &Store,
    pods_res: &'static Resource,
    ns: &str,
    uid: &str,
) -> Result<Vec<Arc<Value>>, KubeError> {
    store.list_where(pods_res, Some(ns), |p| controller_uid(p) == Some(uid))
}

/// Neither finished nor being deleted.
fn running(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed")
        && pod["metadata"].get("deletionTimestamp").is_none()
}

fn create_pod(store: &Store, job: &Value) -> Result<Value, KubeError> {
    let pods_res = pods().ok_or_else(|| KubeError::internal("no pods"))?;
    let template = &job["spec"]["template"];
    let mut meta = json!({
        "generateName": format!("{}-", job["metadata"]["name"].as_str().unwrap_or_default()),
        "namespace": job["metadata"]["namespace"],
        "ownerReferences": [{
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": job["metadata"]["name"],
            "uid": job["metadata"]["uid"],
            "controller": true,
            "blockOwnerDeletion": true,
        }],
    });
    for field in ["labels", "annotations"] {
        if template["metadata"][field].is_object() {
            meta[field] = template["metadata"][field].clone();
        }
    }
    let mut pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]});
    admission::admit_create(pods_res, &mut pod)?;
    store.create(pods_res, pod)
}
