//! Services: defaults (type ClusterIP, protocol TCP, targetPort = port,
//! sessionAffinity None), rules (port ranges, names, nodePorts only where
//! the type has them, type changes Kubernetes refuses), and the allocation
//! of ClusterIPs from 10.96.0.0/12 and nodePorts from 30000–32767, which
//! reads the other services from the store.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::{Value, json};

use super::{invalid, name_of};
use crate::cluster::store::Store;
use crate::kube::resources::by_plural;
use crate::kube::{Cause, KubeError, Resource};

/// Where ClusterIPs come from; its first host address is the `kubernetes`
/// service's.
pub const SERVICE_CIDR: &str = "10.96.0.0/12";
/// The NodePort range.
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];

fn has_node_ports(kind: &str) -> bool {
    matches!(kind, "NodePort" | "LoadBalancer")
}

/// Defaults and checks a new or changed Service (allocation is
/// [`allocate`]'s).
pub(super) fn admit(res: &Resource, svc: &mut Value, old: Option<&Value>) -> Result<(), KubeError> {
    let name = name_of(svc).to_string();
    if svc["spec"].is_null() {
        svc["spec"] = json!({});
    }
    let spec = &mut svc["spec"];
    if !spec.is_object() {
        return Err(invalid(res, &name, vec![Cause::required("spec")]));
    }
    let mut causes = Vec::new();
    if spec["type"].as_str().is_none_or(str::is_empty) {
        spec["type"] = json!("ClusterIP");
    }
    let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if !TYPES.contains(&kind.as_str()) {
        causes.push(Cause::not_supported("spec.type", &kind, TYPES));
    }
    if spec["sessionAffinity"].as_str().is_none_or(str::is_empty) {
        spec["sessionAffinity"] = json!("None");
    }
    if let Some(a) = spec["sessionAffinity"].as_str()
        && !["None", "ClientIP"].contains(&a)
    {
        causes.push(Cause::not_supported(
            "spec.sessionAffinity",
            a,
            &["ClientIP", "None"],
        ));
    }
    if kind == "ExternalName" {
        if spec["externalName"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required("spec.externalName"));
        }
    } else {
        let ports = spec["ports"].as_array().map(Vec::len).unwrap_or(0);
        let headless = spec["clusterIP"] == "None";
        if ports == 0 && !headless {
            causes.push(Cause::required("spec.ports"));
        }
        if let Some(o) = spec.as_object_mut() {
            o.entry("internalTrafficPolicy").or_insert(json!("Cluster"));
            o.entry("ipFamilies").or_insert(json!(["IPv4"]));
            o.entry("ipFamilyPolicy").or_insert(json!("SingleStack"));
            if has_node_ports(&kind) {
                o.entry("externalTrafficPolicy").or_insert(json!("Cluster"));
            }
        }
    }
    let many = spec["ports"].as_array().map(Vec::len).unwrap_or(0) > 1;
    let mut names = HashSet::new();
    let mut seen = HashSet::new();
    for (i, p) in spec["ports"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.ports[{i}]");
        let Some(o) = p.as_object_mut() else {
            causes.push(Cause::required(field));
            continue;
        };
        o.entry("protocol").or_insert(json!("TCP"));
        let port = o.get("port").and_then(Value::as_i64).unwrap_or(0);
        if !(1..=65535).contains(&port) {
            causes.push(Cause::invalid(
                format!("{field}.port"),
                port,
                "must be between 1 and 65535, inclusive",
            ));
        }
        if o.get("targetPort")
            .is_none_or(|t| t.is_null() || t == 0 || t == "")
        {
            o.insert("targetPort".into(), json!(port));
        }
        if let Some(t) = o.get("targetPort").and_then(Value::as_i64)
            && !(1..=65535).contains(&t)
        {
            causes.push(Cause::invalid(
                format!("{field}.targetPort"),
                t,
                "must be between 1 and 65535, inclusive",
            ));
        }
        let pname = o
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if many && pname.is_empty() {
            causes.push(Cause::required(format!("{field}.name")));
        } else if !pname.is_empty() && !names.insert(pname.clone()) {
            causes.push(Cause::duplicate(format!("{field}.name"), &pname));
        }
        let proto = o
            .get("protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP")
            .to_string();
        if !["TCP", "UDP", "SCTP"].contains(&proto.as_str()) {
            causes.push(Cause::not_supported(
                format!("{field}.protocol"),
                &proto,
                &["SCTP", "TCP", "UDP"],
            ));
        }
        if !seen.insert((port, proto.clone())) {
            causes.push(Cause::duplicate(field.clone(), format!("{port}/{proto}")));
        }
        if let Some(np) = o
            .get("nodePort")
            .and_then(Value::as_i64)
            .filter(|n| *n != 0)
        {
            if !has_node_ports(&kind) {
                causes.push(Cause::forbidden(
                    format!("{field}.nodePort"),
                    format!("may not be used when `type` is '{kind}'"),
                ));
            } else if !u16::try_from(np).is_ok_and(|n| NODE_PORTS.contains(&n)) {
                causes.push(Cause::invalid(
                    format!("{field}.nodePort"),
                    np,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
        }
    }
    if let Some(old) = old {
        let old_ip = old["spec"]["clusterIP"].as_str().unwrap_or_default();
        let new_ip = svc["spec"]["clusterIP"].as_str().unwrap_or_default();
        if new_ip.is_empty() && !old_ip.is_empty() && kind != "ExternalName" {
            svc["spec"]["clusterIP"] = json!(old_ip);
            svc["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
        } else if !new_ip.is_empty() && !old_ip.is_empty() && new_ip != old_ip {
            causes.push(Cause::invalid(
                "spec.clusterIP",
                new_ip,
                "field is immutable",
            ));
        }
        if old_ip == "None" && has_node_ports(&kind) {
            causes.push(Cause::invalid(
                "spec.type",
                &kind,
                "may not be set when `clusterIP` is `None` (a headless service has no ports to publish)",
            ));
        }
        // Node ports left out of an update keep their values.
        if has_node_ports(&kind) {
            let old_ports = old["spec"]["ports"].as_array().cloned().unwrap_or_default();
            for p in svc["spec"]["ports"].as_array_mut().into_iter().flatten() {
                if p["nodePort"].as_i64().unwrap_or(0) == 0
                    && let Some(op) = old_ports
                        .iter()
                        .find(|op| op["port"] == p["port"] && op["protocol"] == p["protocol"])
                    && op["nodePort"].as_i64().unwrap_or(0) != 0
                {
                    p["nodePort"] = op["nodePort"].clone();
                }
            }
        }
    } else if svc["spec"]["clusterIP"] == "None" && has_node_ports(&kind) {
        causes.push(Cause::invalid(
            "spec.type",
            &kind,
            "may not be set when `clusterIP` is `None` (a headless service has no ports to publish)",
        ));
    }
    if !causes.is_empty() {
        return Err(invalid(res, &name, causes));
    }
    if svc["status"].is_null() || old.is_none() {
        svc["status"] = json!({"loadBalancer": {}});
    }
    Ok(())
}

/// Gives a Service its ClusterIP and nodePorts, unless it has them;
/// explicit ones must be free.
pub fn allocate(store: &Store, res: &Resource, svc: &mut Value) -> Result<(), KubeError> {
    if res.kind != "Service" {
        return Ok(());
    }
    let name = name_of(svc).to_string();
    let namespace = svc["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let services =
        by_plural("", "v1", "services").ok_or_else(|| KubeError::internal("no services"))?;
    let (all, _) = store.list(services, None)?;
    let others: Vec<&Value> = all
        .iter()
        .filter(|s| {
            !(s["metadata"]["name"] == name.as_str()
                && s["metadata"]["namespace"] == namespace.as_str())
        })
        .collect();
    let used_ips: HashSet<String> = others
        .iter()
        .filter_map(|s| s["spec"]["clusterIP"].as_str().map(str::to_string))
        .collect();
    let used_ports: HashSet<i64> = others
        .iter()
        .flat_map(|s| s["spec"]["ports"].as_array().into_iter().flatten())
        .filter_map(|p| p["nodePort"].as_i64())
        .collect();
    let kind = svc["spec"]["type"]
        .as_str()
        .unwrap_or("ClusterIP")
        .to_string();
    let cidr: Ipv4Net = SERVICE_CIDR.parse().map_err(KubeError::internal)?;
    let mut causes = Vec::new();
    if kind == "ExternalName" {
        if let Some(o) = svc["spec"].as_object_mut() {
            o.remove("clusterIP");
            o.remove("clusterIPs");
        }
    } else {
        let asked = svc["spec"]["clusterIP"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if asked.is_empty() {
            // The first address is the `kubernetes` service's.
            let free = cidr
                .hosts()
                .skip(if name == "kubernetes" && namespace == "default" {
                    0
                } else {
                    1
                })
                .map(|ip| ip.to_string())
                .find(|ip| !used_ips.contains(ip))
                .ok_or_else(|| KubeError::internal("no ClusterIP left in 10.96.0.0/12"))?;
            svc["spec"]["clusterIP"] = json!(free);
            svc["spec"]["clusterIPs"] = json!([free]);
        } else if asked != "None" {
            match asked.parse::<Ipv4Addr>() {
                Ok(ip) if cidr.contains(&ip) => {
                    if used_ips.contains(&asked) {
                        causes.push(Cause::invalid(
                            "spec.clusterIPs",
                            &asked,
                            "failed to allocate IP: provided IP is already allocated",
                        ));
                    }
                    svc["spec"]["clusterIPs"] = json!([asked]);
                }
                _ => causes.push(Cause::invalid(
                    "spec.clusterIPs",
                    &asked,
                    "failed to allocate IP: the provided IP is not in the valid range. The range of valid IPs is 10.96.0.0/12",
                )),
            }
        } else {
            svc["spec"]["clusterIPs"] = json!(["None"]);
        }
    }
    if has_node_ports(&kind) {
        let mut taken = used_ports.clone();
        for (i, p) in svc["spec"]["ports"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .enumerate()
        {
            match p["nodePort"].as_i64().filter(|n| *n != 0) {
                Some(n) => {
                    if !taken.insert(n) {
                        causes.push(Cause::invalid(
                            format!("spec.ports[{i}].nodePort"),
                            n,
                            "provided port is already allocated",
                        ));
                    }
                }
                None => {
                    let span = u64::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
                    let mut raw = [0u8; 8];
                    let _ = getrandom::fill(&mut raw);
                    let start = u64::from_le_bytes(raw) % span;
                    let free = (0..span)
                        .map(|k| i64::from(*NODE_PORTS.start()) + ((start + k) % span) as i64)
                        .find(|n| !taken.contains(n))
                        .ok_or_else(|| KubeError::internal("no NodePort left in 30000-32767"))?;
                    taken.insert(free);
                    p["nodePort"] = json!(free);
                }
            }
        }
    } else if let Some(ports) = svc["spec"]["ports"].as_array_mut() {
        for p in ports {
            if let Some(o) = p.as_object_mut() {
                o.remove("nodePort");
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(res, &name, causes))
    }
}
