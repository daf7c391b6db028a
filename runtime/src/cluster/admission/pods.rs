//! Pods: Kubernetes' defaults for a pod (and a pod template's) spec, the
//! spec rules users meet first, and the spec's immutability.

use serde_json::{Value, json};

use super::{invalid, is_dns_label, name_of};
use crate::kube::{Cause, KubeError, Resource};

/// The pull policy Kubernetes defaults to: Always for `:latest` or an
/// untagged image, IfNotPresent otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let without_digest = image.split('@').next().unwrap_or(image);
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last.split_once(':') {
        None => "Always",
        Some((_, "latest")) => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(c: &mut Value) {
    let Some(obj) = c.as_object_mut() else {
        return;
    };
    obj.entry("terminationMessagePath")
        .or_insert(json!("/dev/termination-log"));
    obj.entry("terminationMessagePolicy")
        .or_insert(json!("File"));
    let image = obj
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    obj.entry("imagePullPolicy")
        .or_insert(json!(default_pull_policy(&image)));
    obj.entry("resources").or_insert(json!({}));
    if let Some(ports) = obj.get_mut("ports").and_then(Value::as_array_mut) {
        for p in ports {
            if let Some(p) = p.as_object_mut() {
                p.entry("protocol").or_insert(json!("TCP"));
            }
        }
    }
}

/// The defaults a pod template's spec gets (and every pod's).
pub(super) fn spec_defaults(spec: &mut Value) {
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
    ];
    if let Some(s) = spec.as_object_mut() {
        for (k, v) in defaults {
            s.entry(k).or_insert(v);
        }
    }
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
        }
    }
}

pub(super) fn pod_create(res: &Resource, pod: &mut Value) -> Result<(), KubeError> {
    let spec = &mut pod["spec"];
    if !spec.is_object() {
        return Err(invalid(res, name_of(pod), vec![Cause::required("spec")]));
    }
    spec_defaults(spec);
    // What admission plugins add to pods (not to templates).
    let defaults = [
        ("serviceAccountName", json!("default")),
        ("serviceAccount", json!("default")),
        ("enableServiceLinks", json!(true)),
        ("preemptionPolicy", json!("PreemptLowerPriority")),
        ("priority", json!(0)),
        (
            "tolerations",
            json!([
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            ]),
        ),
    ];
    if let Some(s) = spec.as_object_mut() {
        for (k, v) in defaults {
            s.entry(k).or_insert(v);
        }
    }
    validate_pod_spec(res, name_of(pod), &pod["spec"], "spec")?;
    pod["status"] = json!({"phase": "Pending", "qosClass": qos_class(&pod["spec"])});
    Ok(())
}

/// The QoS class Kubernetes gives a pod: BestEffort without requests or
/// limits, Guaranteed when every container's limits equal its requests,
/// else Burstable.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|l| spec[*l].as_array().into_iter().flatten())
        .collect();
    let any = containers.iter().any(|c| {
        let r = &c["resources"];
        r["limits"].as_object().is_some_and(|m| !m.is_empty())
            || r["requests"].as_object().is_some_and(|m| !m.is_empty())
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        let r = &c["resources"];
        let limits = r["limits"].as_object();
        let cpu = limits.is_some_and(|l| l.contains_key("cpu"));
        let mem = limits.is_some_and(|l| l.contains_key("memory"));
        let requests_match = r["requests"].as_object().is_none_or(|req| {
            req.iter()
                .all(|(k, v)| limits.and_then(|l| l.get(k)) == Some(v))
        });
        cpu && mem && requests_match
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The pod spec rules wrun enforces (those a user meets first).
pub fn validate_pod_spec(
    res: &Resource,
    name: &str,
    spec: &Value,
    at: &str,
) -> Result<(), KubeError> {
    let mut causes = Vec::new();
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.is_empty() {
        causes.push(Cause::required(format!("{at}.containers")));
    }
    let mut names = std::collections::HashSet::new();
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            let field = format!("{at}.{list}[{i}]");
            let cname = c["name"].as_str().unwrap_or_default();
            if cname.is_empty() {
                causes.push(Cause::required(format!("{field}.name")));
            } else if !is_dns_label(cname) {
                causes.push(Cause::invalid(
                    format!("{field}.name"),
                    cname,
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                ));
            } else if !names.insert(cname.to_string()) {
                causes.push(Cause::duplicate(format!("{field}.name"), cname));
            }
            if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
                causes.push(Cause::required(format!("{field}.image")));
            }
            if let Some(p) = c["imagePullPolicy"].as_str()
                && !["Always", "IfNotPresent", "Never"].contains(&p)
            {
                causes.push(Cause::not_supported(
                    format!("{field}.imagePullPolicy"),
                    p,
                    &["Always", "IfNotPresent", "Never"],
                ));
            }
            for (j, p) in c["ports"].as_array().into_iter().flatten().enumerate() {
                let port = p["containerPort"].as_i64().unwrap_or(0);
                if !(1..=65535).contains(&port) {
                    causes.push(Cause::invalid(
                        format!("{field}.ports[{j}].containerPort"),
                        port,
                        "must be between 1 and 65535, inclusive",
                    ));
                }
                if let Some(proto) = p["protocol"].as_str()
                    && !["TCP", "UDP", "SCTP"].contains(&proto)
                {
                    causes.push(Cause::not_supported(
                        format!("{field}.ports[{j}].protocol"),
                        proto,
                        &["SCTP", "TCP", "UDP"],
                    ));
                }
            }
        }
    }
    if let Some(p) = spec["restartPolicy"].as_str()
        && !["Always", "OnFailure", "Never"].contains(&p)
    {
        causes.push(Cause::not_supported(
            format!("{at}.restartPolicy"),
            p,
            &["Always", "OnFailure", "Never"],
        ));
    }
    let mut volumes = std::collections::HashSet::new();
    for (i, v) in spec["volumes"].as_array().into_iter().flatten().enumerate() {
        let vname = v["name"].as_str().unwrap_or_default();
        if vname.is_empty() {
            causes.push(Cause::required(format!("{at}.volumes[{i}].name")));
        } else if !volumes.insert(vname.to_string()) {
            causes.push(Cause::duplicate(format!("{at}.volumes[{i}].name"), vname));
        }
    }
    for list in ["initContainers", "containers"] {
        for (i, c) in spec[list].as_array().into_iter().flatten().enumerate() {
            for (j, m) in c["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                let vname = m["name"].as_str().unwrap_or_default();
                if !volumes.contains(vname) {
                    causes.push(Cause {
                        reason: "FieldValueNotFound",
                        message: format!("Not found: \"{vname}\""),
                        field: format!("{at}.{list}[{i}].volumeMounts[{j}].name"),
                    });
                }
            }
        }
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(res, name, causes))
    }
}

/// A pod's spec is immutable but for its images, activeDeadlineSeconds
/// and added tolerations (and what the scheduler sets).
pub(super) fn pod_update(res: &Resource, old: &Value, new: &mut Value) -> Result<(), KubeError> {
    let mask = |spec: &Value| -> Value {
        let mut s = spec.clone();
        for list in ["initContainers", "containers"] {
            if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
                for c in cs {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
        if let Some(o) = s.as_object_mut() {
            o.remove("activeDeadlineSeconds");
            o.remove("tolerations");
        }
        s
    };
    if mask(&old["spec"]) != mask(&new["spec"]) {
        return Err(invalid(
            res,
            name_of(old),
            vec![Cause::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            )],
        ));
    }
    for list in ["initContainers", "containers"] {
        for (i, c) in new["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if c["image"].as_str().is_none_or(|i| i.trim().is_empty()) {
                return Err(invalid(
                    res,
                    name_of(old),
                    vec![Cause::required(format!("spec.{list}[{i}].image"))],
                ));
            }
        }
    }
    Ok(())
}
