//! The resource metrics API (`metrics.k8s.io/v1beta1`, metrics-server's
//! on a real cluster), so `kubectl top pods|nodes` works on a bare
//! cluster: PodMetrics per running pod (each container's CPU and memory)
//! and NodeMetrics for the one node (every running container of the
//! daemon). Memory is the guests' linear memory now; CPU is the rate of
//! the guests' CPU time over the last second or more, in nanocores, as
//! metrics-server reports a rate over its window.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::Api;
use super::objects::{self, Filter, Target};
use crate::container::ContainerRecord;
use crate::daemon::http::{Query, Resp};
use crate::kube::KubeError;
use crate::kube::resources::by_plural;

/// The shortest span a CPU rate is measured over.
const WINDOW: Duration = Duration::from_secs(1);

/// One container's last CPU reading and the rate it gave.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu: Duration,
    nanocores: u64,
}

/// CPU readings kept between requests, by container id.
#[derive(Debug, Default)]
pub struct Sampler {
    samples: Mutex<HashMap<String, Sample>>,
}

impl Sampler {
    /// The container's CPU rate, in nanocores: over the time since the
    /// last reading (once a window has passed), or on a first reading over
    /// the time since the run began.
    fn nanocores(&self, id: &str, cpu: Duration, running_for: Duration) -> u64 {
        let now = Instant::now();
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let rate = |spent: Duration, over: Duration| -> u64 {
            if over.is_zero() {
                return 0;
            }
            u64::try_from(spent.as_nanos() * 1_000_000_000 / over.as_nanos()).unwrap_or(u64::MAX)
        };
        let nanocores = match samples.get(id) {
            Some(s) if now.duration_since(s.at) < WINDOW => return s.nanocores,
            Some(s) => rate(cpu.saturating_sub(s.cpu), now.duration_since(s.at)),
            None => rate(cpu, running_for),
        };
        samples.insert(
            id.to_string(),
            Sample {
                at: now,
                cpu,
                nanocores,
            },
        );
        nanocores
    }
}

/// What one container, found by its ID, uses now: nanocores and bytes.
fn container_usage(api: &Api, id: &str) -> Option<(u64, u64)> {
    let (rec, _) = api.sup.find(id).ok()?;
    usage_of(api, &rec)
}

/// What the container of a record uses now, if it runs.
fn usage_of(api: &Api, rec: &ContainerRecord) -> Option<(u64, u64)> {
    let live = api.sup.live_of(&rec.id)?;
    let running_for = rec
        .started_at
        .and_then(|t| (chrono::Utc::now() - t).to_std().ok())
        .unwrap_or_default();
    let cpu = api
        .metrics
        .nanocores(&rec.id, live.usage.cpu(), running_for);
    Some((cpu, live.usage.memory()))
}

fn usage_json(nanocores: u64, bytes: u64) -> Value {
    json!({
        "cpu": format!("{nanocores}n"),
        "memory": format!("{}Ki", bytes.div_ceil(1024)),
    })
}

/// A running pod's metrics: each running container's usage.
fn pod_metrics(api: &Api, pod: &Value, now: &str) -> Option<Value> {
    if pod["status"]["phase"] != "Running" {
        return None;
    }
    let containers: Vec<Value> = pod["status"]["containerStatuses"]
        .as_array()?
        .iter()
        .filter_map(|c| {
            let id = c["containerID"].as_str()?.strip_prefix("wrun://")?;
            let (cpu, memory) = container_usage(api, id)?;
            Some(json!({"name": c["name"], "usage": usage_json(cpu, memory)}))
        })
        .collect();
    let meta = &pod["metadata"];
    Some(json!({
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "creationTimestamp": now,
            "labels": meta["labels"],
        },
        "timestamp": now,
        "window": format!("{}s", WINDOW.as_secs()),
        "containers": containers,
    }))
}

/// The node's metrics: every running container of the daemon.
fn node_metrics(api: &Api, now: &str) -> Value {
    let (mut cpu, mut memory) = (0u64, 0u64);
    let records = api.sup.db().list().unwrap_or_default();
    for rec in &records {
        if let Some((c, m)) = usage_of(api, rec) {
            cpu = cpu.saturating_add(c);
            memory = memory.saturating_add(m);
        }
    }
    json!({
        "metadata": {"name": api.node, "creationTimestamp": now},
        "timestamp": now,
        "window": format!("{}s", WINDOW.as_secs()),
        "usage": usage_json(cpu, memory),
    })
}

/// GET (one or a list) of PodMetrics or NodeMetrics; nothing else.
pub fn serve(api: &Arc<Api>, t: &Target, q: &Query, method: &Method) -> Result<Resp, KubeError> {
    if *method != Method::GET {
        return Err(KubeError::MethodNotAllowed(format!(
            "{} are computed from what runs: only get and list are served",
            t.res.qualified_plural()
        )));
    }
    if q.flag("watch") || t.watch_prefix || t.sub.is_some() {
        return Err(KubeError::MethodNotAllowed(format!(
            "{}: only get and list are served",
            t.res.qualified_plural()
        )));
    }
    let now = crate::cluster::store::now();
    let api_version = t.res.api_version();
    let items: Vec<Value> = if t.res.kind == "NodeMetrics" {
        let node = node_metrics(api, &now);
        vec![node]
            .into_iter()
            .filter(|n| {
                t.name
                    .as_deref()
                    .is_none_or(|want| n["metadata"]["name"] == want)
            })
            .collect()
    } else {
        let pods_res =
            by_plural("", "v1", "pods").ok_or_else(|| KubeError::internal("no pods resource"))?;
        let pod_filter = Filter::parse(pods_res, q)?;
        let pods = api
            .store
            .list_where(pods_res, t.namespace.as_deref(), |p| {
                pod_filter.matches(p)
                    && t.name
                        .as_deref()
                        .is_none_or(|want| p["metadata"]["name"] == want)
            })?;
        pods.iter()
            .filter_map(|p| pod_metrics(api, p, &now))
            .collect()
    };
    let with_kind = |mut o: Value| {
        o["kind"] = json!(t.res.kind);
        o["apiVersion"] = json!(api_version);
        o
    };
    if let Some(name) = t.name.as_deref() {
        return match items.into_iter().next() {
            Some(o) => Ok(objects::json(StatusCode::OK, &with_kind(o))),
            None => Err(KubeError::NotFound {
                group: t.res.group.into(),
                plural: t.res.plural.into(),
                name: name.into(),
            }),
        };
    }
    Ok(objects::json(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.res.kind),
            "apiVersion": api_version,
            "metadata": {},
            "items": items,
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_a_rate_over_a_window() {
        let s = Sampler::default();
        // A first reading: the average since the run began.
        assert_eq!(
            s.nanocores("a", Duration::from_millis(500), Duration::from_secs(1)),
            500_000_000
        );
        // Within the window, the same rate again.
        assert_eq!(
            s.nanocores("a", Duration::from_secs(9), Duration::from_secs(1)),
            500_000_000
        );
        assert_eq!(s.nanocores("b", Duration::ZERO, Duration::ZERO), 0);
        assert_eq!(usage_json(250_000_000, 1025)["memory"], "2Ki");
    }
}
