//! What the API server does to an object between decoding and storing
//! it: names are checked, defaults filled in as Kubernetes' defaulting
//! does, kind rules validated, immutable fields kept, and deletion planned
//! (at once, or marked with a deletionTimestamp for the node agent or a
//! finalizer to finish).

use serde_json::{Value, json};

use super::store::Store;
use crate::kube::resources::SYSTEM_NAMESPACES;
use crate::kube::{Cause, KubeError, Resource};

/// How a deletion proceeds.
#[derive(Debug, PartialEq, Eq)]
pub enum Deletion {
    /// Removed from the store now.
    Now,
    /// Marked with a deletionTimestamp (and these finalizers); whoever
    /// owns the object finishes the deletion.
    Mark {
        grace: Option<i64>,
        finalizers: Vec<String>,
    },
}

fn invalid(res: &Resource, name: &str, causes: Vec<Cause>) -> KubeError {
    KubeError::Invalid {
        group: res.group.into(),
        kind: res.kind.into(),
        name: name.into(),
        causes,
    }
}

/// A DNS-1123 label: at most 63 lower-case alphanumerics or '-', starting
/// and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

fn check_name(res: &Resource, obj: &Value) -> Result<(), KubeError> {
    let name = name_of(obj);
    let generate = obj["metadata"]["generateName"].as_str().unwrap_or_default();
    if name.is_empty() {
        if generate.is_empty() {
            return Err(invalid(res, "", vec![Cause::required("metadata.name")]));
        }
        // The generated name must be valid once its suffix is added.
        let sample = format!("{generate}x");
        let ok = if res.kind == "Namespace" {
            is_dns_label(&sample)
        } else {
            is_dns_subdomain(&sample)
        };
        if !ok {
            return Err(invalid(
                res,
                "",
                vec![Cause::invalid(
                    "metadata.generateName",
                    generate,
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
                )],
            ));
        }
        return Ok(());
    }
    let (ok, why) = if res.kind == "Namespace" {
        (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        )
    } else {
        (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        )
    };
    if !ok {
        return Err(invalid(
            res,
            name,
            vec![Cause::invalid("metadata.name", name, why)],
        ));
    }
    Ok(())
}

/// Checks and completes a new object.
pub fn admit_create(res: &Resource, obj: &mut Value) -> Result<(), KubeError> {
    check_name(res, obj)?;
    match res.kind {
        "Pod" => pod_create(res, obj),
        "Namespace" => {
            let name = name_of(obj).to_string();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if obj["spec"]["finalizers"].is_null() {
                obj["spec"]["finalizers"] = json!(["kubernetes"]);
            }
            obj["status"] = json!({"phase": "Active"});
            Ok(())
        }
        "Secret" => secret_create(res, obj),
        _ => Ok(()),
    }
}

/// What follows a creation: a new namespace gets its `default`
/// ServiceAccount.
pub fn after_create(store: &Store, res: &Resource, obj: &Value) {
    if res.kind == "Namespace"
        && let Err(e) = super::bootstrap::ensure_service_account(store, name_of(obj))
    {
        tracing::warn!(namespace = name_of(obj), error = %e, "no default service account");
    }
}

/// Checks an update against the stored version.
pub fn admit_update(res: &Resource, old: &Value, new: &mut Value) -> Result<(), KubeError> {
    let name = name_of(old).to_string();
    if new["metadata"]["uid"]
        .as_str()
        .is_some_and(|u| Some(u) != old["metadata"]["uid"].as_str())
    {
        return Err(invalid(
            res,
            &name,
            vec![Cause::invalid(
                "metadata.uid",
                new["metadata"]["uid"].as_str().unwrap_or_default(),
                "field is immutable",
            )],
        ));
    }
    match res.kind {
        "Pod" => pod_update(res, old, new),
        "Namespace" => {
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if new["status"].is_null() {
                new["status"] = old["status"].clone();
            }
            Ok(())
        }
        "Secret" => secret_create(res, new),
        _ => Ok(()),
    }
}

/// Refuses deletions Kubernetes refuses.
pub fn admit_delete(res: &Resource, obj: &Value) -> Result<(), KubeError> {
    if res.kind == "Namespace" && SYSTEM_NAMESPACES.contains(&name_of(obj)) {
        return Err(KubeError::Forbidden(format!(
            "namespaces \"{}\" is forbidden: this namespace may not be deleted",
            name_of(obj)
        )));
    }
    Ok(())
}

/// How an object is deleted, given the request's grace period.
pub fn deletion(
    res: &Resource,
    obj: &Value,
    grace: Option<i64>,
    _propagation: Option<&str>,
) -> Deletion {
    let meta = &obj["metadata"];
    let has_finalizers = meta["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    match res.kind {
        "Pod" => {
            let phase = obj["status"]["phase"].as_str().unwrap_or("Pending");
            let scheduled = obj["spec"]["nodeName"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            let grace = grace
                .or_else(|| obj["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30);
            let finished = matches!(phase, "Succeeded" | "Failed");
            // A pod that never ran, or has ended, has nothing to stop.
            if grace == 0 || !scheduled || finished {
                if has_finalizers {
                    Deletion::Mark {
                        grace: Some(0),
                        finalizers: Vec::new(),
                    }
                } else {
                    Deletion::Now
                }
            } else {
                Deletion::Mark {
                    grace: Some(grace),
                    finalizers: Vec::new(),
                }
            }
        }
        "Namespace" => Deletion::Mark {
            grace: Some(0),
            finalizers: Vec::new(),
        },
        _ if has_finalizers => Deletion::Mark {
            grace: Some(0),
            finalizers: Vec::new(),
        },
        _ => Deletion::Now,
    }
}

/// Deletes `obj` as its plan says: removed at once, or marked with a
/// deletionTimestamp (the shorter grace period wins) and finalizers.
/// Returns the object and whether it is gone.
pub fn delete(
    store: &Store,
    res: &'static Resource,
    obj: &Value,
    grace: Option<i64>,
    propagation: Option<&str>,
) -> Result<(Value, bool), KubeError> {
    let namespace = obj["metadata"]["namespace"]
        .as_str()
        .filter(|_| res.namespaced);
    let name = name_of(obj);
    match deletion(res, obj, grace, propagation) {
        Deletion::Now => {
            let gone = store.delete(res, namespace, name, obj["metadata"]["uid"].as_str())?;
            Ok((gone, true))
        }
        Deletion::Mark { grace, finalizers } => {
            let marked = store.modify(res, namespace, name, |cur| {
                let meta = &mut cur["metadata"];
                let mut changed = false;
                if meta.get("deletionTimestamp").is_none() {
                    let at = chrono::Utc::now() + chrono::Duration::seconds(grace.unwrap_or(0));
                    meta["deletionTimestamp"] =
                        json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                    changed = true;
                }
                if let Some(g) = grace {
                    let shorter = meta["deletionGracePeriodSeconds"]
                        .as_i64()
                        .is_none_or(|old| g < old);
                    if shorter {
                        meta["deletionGracePeriodSeconds"] = json!(g);
                        changed = true;
                    }
                }
                for f in &finalizers {
                    let mut list = meta["finalizers"].as_array().cloned().unwrap_or_default();
                    if !list.iter().any(|x| x == f) {
                        list.push(json!(f));
                        meta["finalizers"] = json!(list);
                        changed = true;
                    }
                }
                if res.kind == "Namespace" && cur["status"]["phase"] != "Terminating" {
                    cur["status"]["phase"] = json!("Terminating");
                    changed = true;
                }
                Ok(changed)
            })?;
            let marked = marked.ok_or_else(|| super::store::not_found(res, name))?;
            Ok((marked, false))
        }
    }
}

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

fn pod_create(res: &Resource, pod: &mut Value) -> Result<(), KubeError> {
    let spec = &mut pod["spec"];
    if !spec.is_object() {
        return Err(invalid(res, name_of(pod), vec![Cause::required("spec")]));
    }
    let defaults = [
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("dnsPolicy", json!("ClusterFirst")),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
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
    for list in ["initContainers", "containers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            cs.iter_mut().for_each(default_container);
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
fn pod_update(res: &Resource, old: &Value, new: &mut Value) -> Result<(), KubeError> {
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

/// A Secret's `stringData` is folded into `data` (base64), and its type
/// defaults to Opaque.
fn secret_create(_res: &Resource, obj: &mut Value) -> Result<(), KubeError> {
    use base64::Engine as _;
    if obj["type"].is_null() {
        obj["type"] = json!("Opaque");
    }
    if let Some(strings) = obj.get("stringData").and_then(Value::as_object).cloned() {
        for (k, v) in strings {
            let text = v.as_str().unwrap_or_default();
            obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
        if let Some(o) = obj.as_object_mut() {
            o.remove("stringData");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::by_plural;

    fn pods() -> &'static Resource {
        by_plural("", "v1", "pods").expect("pods")
    }

    #[test]
    fn pods_get_kubernetes_defaults() {
        let mut pod = json!({"metadata": {"name": "kubia"}, "spec": {"containers": [{"name": "kubia", "image": "kubia", "ports": [{"containerPort": 8080}]}]}});
        admit_create(pods(), &mut pod).expect("valid");
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
        assert_eq!(
            default_pull_policy("127.0.0.1:5000/me/kubia:v1"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("127.0.0.1:5000/me/kubia"), "Always");
    }

    #[test]
    fn bad_pods_name_their_fields() {
        let mut pod = json!({"metadata": {"name": "Kubia"}, "spec": {"containers": []}});
        let e = admit_create(pods(), &mut pod).expect_err("bad name");
        assert!(e.to_string().contains("metadata.name"), "{e}");
        let mut pod = json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "a"}, {"name": "a", "image": "x", "ports": [{"containerPort": 70000}]}], "restartPolicy": "Sometimes"}});
        let e = admit_create(pods(), &mut pod).expect_err("bad spec");
        let text = e.to_string();
        for f in [
            "spec.containers[0].image",
            "spec.containers[1].name",
            "containerPort",
            "spec.restartPolicy",
        ] {
            assert!(text.contains(f), "{f} in {text}");
        }
        assert_eq!(e.code(), 422);
    }

    #[test]
    fn pod_specs_are_immutable_but_images() {
        let mut old = json!({"metadata": {"name": "k"}, "spec": {"containers": [{"name": "a", "image": "x"}]}});
        admit_create(pods(), &mut old).expect("valid");
        let mut new = old.clone();
        new["spec"]["containers"][0]["image"] = json!("y");
        admit_update(pods(), &old, &mut new).expect("image may change");
        new["spec"]["restartPolicy"] = json!("Never");
        assert_eq!(
            admit_update(pods(), &old, &mut new)
                .expect_err("immutable")
                .code(),
            422
        );
    }

    #[test]
    fn deletion_plans() {
        let pod = json!({"metadata": {"name": "k"}, "spec": {"nodeName": "wrun", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(
            deletion(pods(), &pod, None, None),
            Deletion::Mark {
                grace: Some(30),
                finalizers: vec![]
            }
        );
        assert_eq!(deletion(pods(), &pod, Some(0), None), Deletion::Now);
        let pending = json!({"metadata": {"name": "k"}, "spec": {}});
        assert_eq!(deletion(pods(), &pending, None, None), Deletion::Now);
    }
}
