//! What every cluster has from its first start: the four system
//! namespaces, a `default` ServiceAccount in each namespace, and the one
//! Node, whose status says what this machine offers.

use serde_json::{Value, json};

use super::store::{Store, now};
use crate::kube::resources::{SYSTEM_NAMESPACES, by_plural};
use crate::kube::{KubeError, Resource};

fn res(plural: &str) -> Result<&'static Resource, KubeError> {
    by_plural("", "v1", plural).ok_or_else(|| KubeError::internal(format!("no {plural} resource")))
}

/// Creates what is missing, and refreshes the node's status.
pub fn ensure(store: &Store, node: &str, server: &str) -> Result<(), KubeError> {
    let namespaces = res("namespaces")?;
    for ns in SYSTEM_NAMESPACES {
        if store.try_get(namespaces, None, ns)?.is_none() {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            });
            match store.create(namespaces, obj) {
                Ok(_) | Err(KubeError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let (all, _) = store.list(namespaces, None)?;
    for ns in all {
        if let Some(name) = ns["metadata"]["name"].as_str() {
            ensure_service_account(store, name)?;
        }
    }
    kubernetes_service(store, server)?;
    let nodes = res("nodes")?;
    let status = node_status();
    match store.try_get(nodes, None, node)? {
        None => {
            let obj = json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node,
                    "labels": {
                        "kubernetes.io/hostname": node,
                        "kubernetes.io/os": std::env::consts::OS,
                        "kubernetes.io/arch": "wasm32",
                        "beta.kubernetes.io/os": std::env::consts::OS,
                        "beta.kubernetes.io/arch": "wasm32",
                        "node-role.kubernetes.io/control-plane": "",
                    },
                    "annotations": {"wrun.dev/api-server": server},
                },
                "spec": {},
                "status": status,
            });
            match store.create(nodes, obj) {
                Ok(_) | Err(KubeError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Some(_) => {
            store.modify(nodes, None, node, |n| {
                n["status"] = status.clone();
                Ok(true)
            })?;
        }
    }
    Ok(())
}

/// The `kubernetes` Service in `default` (10.96.0.1:443), whose one
/// endpoint is the API server itself.
fn kubernetes_service(store: &Store, server: &str) -> Result<(), KubeError> {
    let port: u16 = server
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(443);
    let services = res("services")?;
    if store
        .try_get(services, Some("default"), "kubernetes")?
        .is_none()
    {
        let svc = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "kubernetes",
                "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"},
            },
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.1",
                "clusterIPs": ["10.96.0.1"],
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}],
                "sessionAffinity": "None",
                "internalTrafficPolicy": "Cluster",
                "ipFamilies": ["IPv4"],
                "ipFamilyPolicy": "SingleStack",
            },
            "status": {"loadBalancer": {}},
        });
        match store.create(services, svc) {
            Ok(_) | Err(KubeError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    } else {
        store.modify(services, Some("default"), "kubernetes", |s| {
            if s["spec"]["ports"][0]["targetPort"] == port {
                return Ok(false);
            }
            s["spec"]["ports"][0]["targetPort"] = json!(port);
            Ok(true)
        })?;
    }
    let endpoints = res("endpoints")?;
    let subsets = json!([{
        "addresses": [{"ip": "127.0.0.1"}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }]);
    match store.try_get(endpoints, Some("default"), "kubernetes")? {
        None => {
            let ep = json!({
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": "kubernetes",
                    "namespace": "default",
                    "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                },
                "subsets": subsets,
            });
            match store.create(endpoints, ep) {
                Ok(_) | Err(KubeError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Some(_) => {
            store.modify(endpoints, Some("default"), "kubernetes", |e| {
                if e["subsets"] == subsets {
                    return Ok(false);
                }
                e["subsets"] = subsets.clone();
                Ok(true)
            })?;
        }
    }
    Ok(())
}

/// The `default` ServiceAccount of a namespace (the ServiceAccount
/// controller's one job).
pub fn ensure_service_account(store: &Store, namespace: &str) -> Result<(), KubeError> {
    let sas = res("serviceaccounts")?;
    if store.try_get(sas, Some(namespace), "default")?.is_some() {
        return Ok(());
    }
    let obj = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "default", "namespace": namespace},
    });
    match store.create(sas, obj) {
        Ok(_) | Err(KubeError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn node_status() -> Value {
    let cpus = crate::host::cpus();
    let memory = format!(
        "{}Ki",
        crate::host::memory_bytes().unwrap_or(8 << 30) / 1024
    );
    let t = now();
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({
            "type": kind,
            "status": status,
            "lastHeartbeatTime": t,
            "lastTransitionTime": t,
            "reason": reason,
            "message": message,
        })
    };
    let version = env!("CARGO_PKG_VERSION");
    json!({
        "capacity": {"cpu": cpus.to_string(), "memory": memory, "pods": "1000", "ephemeral-storage": "0"},
        "allocatable": {"cpu": cpus.to_string(), "memory": memory, "pods": "1000", "ephemeral-storage": "0"},
        "conditions": [
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            condition("Ready", "True", "KubeletReady", "wrun's node agent is posting ready status"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": "wrun"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": "",
            "systemUUID": "",
            "bootID": "",
            "kernelVersion": crate::host::kernel_version(),
            "osImage": format!("wrun {version} (WebAssembly on {})", std::env::consts::OS),
            "containerRuntimeVersion": format!("wrun://{version}"),
            "kubeletVersion": format!("v{}.0-wrun", crate::kube::discovery::KUBE_VERSION),
            "kubeProxyVersion": "",
            "operatingSystem": std::env::consts::OS,
            "architecture": "wasm32",
        },
    })
}
