//! The endpoints controller: for each Service with a selector, an
//! Endpoints object of the same name listing the selected pods, the ready
//! ones under `addresses` and the others under `notReadyAddresses`, with
//! the service's ports resolved to each pod's target port (a named
//! targetPort is looked up among the pod's container ports), and the same
//! as EndpointSlices. A pod leaves the addresses the moment it is not Ready
//! or is being deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;

use super::replication::is_ready;
use crate::cluster::store::{Event, EventType, Store};
use crate::kube::resources::by_plural;
use crate::kube::selector::{LabelSelector, labels_of};
use crate::kube::{KubeError, Resource};

fn res(plural: &str) -> Option<&'static Resource> {
    by_plural("", "v1", plural)
}

/// A service's selector, when it has one (a Service without one has its
/// Endpoints managed by hand).
fn selector(svc: &Value) -> Option<LabelSelector> {
    let map = svc["spec"]["selector"]
        .as_object()
        .filter(|m| !m.is_empty())?;
    let terms: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    LabelSelector::parse(&terms.join(",")).ok()
}

pub async fn run(store: Arc<Store>, cancel: CancellationToken) {
    let (Some(services), Some(pods), Some(endpoints)) =
        (res("services"), res("pods"), res("endpoints"))
    else {
        return;
    };
    let c = Endpoints {
        services,
        pods,
        endpoints,
    };
    super::driver::run(store, cancel, c).await;
}

/// Keyed by namespace: every service of a namespace is looked at once
/// over one read of its pods.
struct Endpoints {
    services: &'static Resource,
    pods: &'static Resource,
    endpoints: &'static Resource,
}

impl super::driver::Controller for Endpoints {
    type Key = String;
    const NAME: &'static str = "endpoints";

    fn all(&mut self, store: &Store, keys: &mut BTreeSet<String>) {
        if let Ok((items, _)) = store.list(self.services, None) {
            keys.extend(items.iter().map(|s| {
                s["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            }));
        }
    }

    fn changed(&mut self, _: &Store, e: &Event, keys: &mut BTreeSet<String>) {
        let watched = e.resource == self.services
            || e.resource == self.pods
            || (e.resource == self.endpoints && e.kind == EventType::Deleted);
        if watched {
            keys.insert(e.namespace.clone());
        }
    }

    fn reconcile(&mut self, store: &Store, ns: &String) -> Result<(), KubeError> {
        reconcile(store, ns)
    }
}

/// The port a service port targets on one pod, if the pod has it.
fn target_port(port: &Value, pod: &Value) -> Option<i64> {
    match &port["targetPort"] {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|c| c["ports"].as_array().into_iter().flatten())
                .find(|p| p["name"] == s.as_str())
                .and_then(|p| p["containerPort"].as_i64()),
        },
        _ => port["port"].as_i64(),
    }
}

/// The Endpoints subsets of a service over the pods it selects.
pub fn subsets(svc: &Value, pods: &[Value]) -> Vec<Value> {
    let Some(sel) = selector(svc) else {
        return Vec::new();
    };
    // Pods grouped by the ports they resolve to, as Kubernetes groups them.
    let mut groups: BTreeMap<String, (Value, Vec<Value>, Vec<Value>)> = BTreeMap::new();
    let mut selected: Vec<&Value> = pods
        .iter()
        .filter(|p| {
            sel.matches(&labels_of(p))
                && p["metadata"].get("deletionTimestamp").is_none()
                && p["status"]["podIP"]
                    .as_str()
                    .is_some_and(|ip| !ip.is_empty())
                && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
        })
        .collect();
    selected.sort_by_key(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    for pod in selected {
        let ports: Vec<Value> = svc["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let mut port = json!({
                    "port": target_port(p, pod)?,
                    "protocol": p["protocol"].as_str().unwrap_or("TCP"),
                });
                if let Some(n) = p["name"].as_str().filter(|n| !n.is_empty()) {
                    port["name"] = json!(n);
                }
                Some(port)
            })
            .collect();
        if ports.is_empty() {
            continue;
        }
        let address = json!({
            "ip": pod["status"]["podIP"],
            "nodeName": pod["spec"]["nodeName"],
            "targetRef": {
                "kind": "Pod",
                "namespace": pod["metadata"]["namespace"],
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
        });
        let group_key = Value::Array(ports.clone()).to_string();
        let entry = groups
            .entry(group_key)
            .or_insert_with(|| (Value::Array(ports), Vec::new(), Vec::new()));
        if is_ready(pod) {
            entry.1.push(address);
        } else {
            entry.2.push(address);
        }
    }
    groups
        .into_values()
        .map(|(ports, ready, not_ready)| {
            let mut s = json!({"ports": ports});
            if !ready.is_empty() {
                s["addresses"] = json!(ready);
            }
            if !not_ready.is_empty() {
                s["notReadyAddresses"] = json!(not_ready);
            }
            s
        })
        .collect()
}

const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
const MANAGER: &str = "endpointslice-controller.k8s.io";
const SERVICE_NAME: &str = "kubernetes.io/service-name";

/// The EndpointSlices (discovery.k8s.io/v1) of a service: one per group of
/// pods that share a port list, as its Endpoints' subsets, each endpoint
/// with its ready/serving/terminating conditions. They are owned by the
/// service, so the garbage collector removes them with it.
fn sync_slices(store: &Store, svc: &Value, subsets: &[Value]) -> Result<(), KubeError> {
    let Some(slices) = by_plural("discovery.k8s.io", "v1", "endpointslices") else {
        return Ok(());
    };
    let ns = svc["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = svc["metadata"]["name"].as_str().unwrap_or_default();
    let uid = svc["metadata"]["uid"].as_str().unwrap_or_default();
    let empty = [json!({})];
    let groups: &[Value] = if subsets.is_empty() { &empty } else { subsets };
    let mut wanted = Vec::new();
    for (i, subset) in groups.iter().enumerate() {
        let digest = sha2::Sha256::digest(format!("{uid}/{i}").as_bytes());
        let suffix: String = digest
            .iter()
            .take(5)
            .map(|b| b"bcdfghjklmnpqrstvwxz2456789"[*b as usize % 27] as char)
            .collect();
        let slice_name = format!("{name}-{suffix}");
        let endpoint = |a: &Value, ready: bool| {
            json!({
                "addresses": [a["ip"]],
                "conditions": {"ready": ready, "serving": ready, "terminating": false},
                "nodeName": a["nodeName"],
                "targetRef": a["targetRef"],
            })
        };
        let endpoints: Vec<Value> = subset["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| endpoint(a, true))
            .chain(
                subset["notReadyAddresses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| endpoint(a, false)),
            )
            .collect();
        // A slice's ports always carry a name, empty when the service's
        // port has none (kubectl reads it unconditionally).
        let ports: Vec<Value> = subset["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                let mut p = p.clone();
                if p["name"].is_null() {
                    p["name"] = json!("");
                }
                p
            })
            .collect();
        let ports = Value::Array(ports);
        let body = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": slice_name,
                "namespace": ns,
                "labels": {SERVICE_NAME: name, MANAGED_BY: MANAGER},
                "ownerReferences": [{
                    "apiVersion": "v1",
                    "kind": "Service",
                    "name": name,
                    "uid": uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
            "ports": if ports.is_array() { ports } else { json!([]) },
        });
        wanted.push(slice_name.clone());
        let changed = store.modify(slices, Some(ns), &slice_name, |o| {
            if o["endpoints"] == body["endpoints"] && o["ports"] == body["ports"] {
                return Ok(false);
            }
            o["endpoints"] = body["endpoints"].clone();
            o["ports"] = body["ports"].clone();
            Ok(true)
        })?;
        if changed.is_none() {
            match store.create(slices, body) {
                Ok(_) | Err(KubeError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let (existing, _) = store.list(slices, Some(ns))?;
    for s in existing {
        let mine = s["metadata"]["labels"][SERVICE_NAME] == name
            && s["metadata"]["labels"][MANAGED_BY] == MANAGER;
        let sname = s["metadata"]["name"].as_str().unwrap_or_default();
        if mine && !wanted.iter().any(|w| w == sname) {
            match store.delete(slices, Some(ns), sname, None) {
                Ok(_) | Err(KubeError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

fn reconcile(store: &Store, ns: &str) -> Result<(), KubeError> {
    let (Some(services), Some(pods), Some(endpoints)) =
        (res("services"), res("pods"), res("endpoints"))
    else {
        return Ok(());
    };
    let (svcs, _) = store.list(services, Some(ns))?;
    let (eps, _) = store.list(endpoints, Some(ns))?;
    // Pods are read only for a namespace with services that select them.
    let selecting = svcs
        .iter()
        .any(|s| selector(s).is_some() && s["spec"]["type"] != "ExternalName");
    let all_pods = if selecting {
        store.list(pods, Some(ns))?.0
    } else {
        Vec::new()
    };
    for svc in &svcs {
        if selector(svc).is_none() || svc["spec"]["type"] == "ExternalName" {
            continue;
        }
        let name = svc["metadata"]["name"].as_str().unwrap_or_default();
        let subsets = subsets(svc, &all_pods);
        let mut labels = svc["metadata"]["labels"].clone();
        if !labels.is_object() {
            labels = json!({});
        }
        sync_slices(store, svc, &subsets)?;
        match eps.iter().find(|e| e["metadata"]["name"] == name) {
            None => {
                let obj = json!({
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "subsets": subsets,
                });
                match store.create(endpoints, obj) {
                    Ok(_) | Err(KubeError::AlreadyExists { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Some(_) => {
                store.modify(endpoints, Some(ns), name, |e| {
                    if e["subsets"] == json!(subsets) && e["metadata"]["labels"] == labels {
                        return Ok(false);
                    }
                    e["subsets"] = json!(subsets);
                    e["metadata"]["labels"] = labels.clone();
                    Ok(true)
                })?;
            }
        }
    }
    // Endpoints of services that are gone go too.
    for e in &eps {
        let name = e["metadata"]["name"].as_str().unwrap_or_default();
        let orphan = !svcs.iter().any(|s| s["metadata"]["name"] == name);
        if orphan {
            match store.delete(endpoints, Some(ns), name, None) {
                Ok(_) | Err(KubeError::NotFound { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}
