//! What the API server does to an object between decoding and storing
//! it: names are checked, defaults filled in as Kubernetes' defaulting
//! does, kind rules validated, immutable fields kept, and deletion planned
//! (at once, or marked with a deletionTimestamp for the node agent or a
//! finalizer to finish).

use serde_json::{Value, json};

use super::store::Store;
use crate::kube::resources::SYSTEM_NAMESPACES;
use crate::kube::{Cause, KubeError, Resource};

mod pods;
mod services;
mod workloads;

pub use pods::{default_pull_policy, validate_pod_spec};
pub use services::{SERVICE_CIDR, allocate};
pub use workloads::selector_of;

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
        "Pod" => pods::pod_create(res, obj),
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
        "ReplicationController" | "ReplicaSet" | "Deployment" => workloads::admit(res, obj, None),
        "Job" => workloads::admit_job(res, obj, None),
        "Service" => services::admit(res, obj, None),
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
        "Pod" => pods::pod_update(res, old, new),
        "Namespace" => {
            new["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
            if new["status"].is_null() {
                new["status"] = old["status"].clone();
            }
            Ok(())
        }
        "Secret" => secret_create(res, new),
        "ReplicationController" | "ReplicaSet" | "Deployment" => {
            workloads::admit(res, new, Some(old))
        }
        "Job" => workloads::admit_job(res, new, Some(old)),
        "Service" => services::admit(res, new, Some(old)),
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
    propagation: Option<&str>,
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
        _ => {
            // Orphan and Foreground propagation are finished by the
            // garbage collector, through its finalizers.
            let propagation = match propagation {
                Some("Orphan") => Some(super::controllers::gc::ORPHAN),
                Some("Foreground") => Some(super::controllers::gc::FOREGROUND),
                _ => None,
            };
            if has_finalizers || propagation.is_some() {
                Deletion::Mark {
                    grace: Some(0),
                    finalizers: propagation.into_iter().map(str::to_string).collect(),
                }
            } else {
                Deletion::Now
            }
        }
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

/// A Secret's `stringData` is folded into `data` (base64), and its type
/// defaults to Opaque.
fn secret_create(_res: &Resource, obj: &mut Value) -> Result<(), KubeError> {
    use base64::Engine as _;
    if obj["type"].as_str().is_none_or(str::is_empty) {
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
