//! A container's environment as Kubernetes builds it: `envFrom` first,
//! then `env` in order, with `valueFrom` reading the pod's own fields and
//! ConfigMap and Secret keys, and `$(VAR)` references expanded.

use base64::Engine as _;
use serde_json::Value;

use crate::cluster::store::Store;
use crate::kube::resources::by_plural;

/// Why a container cannot be created (the kubelet's
/// CreateContainerConfigError).
pub type ConfigError = String;

fn lookup_key(
    store: &Store,
    plural: &str,
    namespace: &str,
    name: &str,
    key: Option<&str>,
    optional: bool,
) -> Result<Option<Vec<(String, String)>>, ConfigError> {
    let res = by_plural("", "v1", plural).ok_or_else(|| format!("no {plural} resource"))?;
    let kind = if plural == "secrets" {
        "secret"
    } else {
        "configmap"
    };
    let obj = match store.try_get(res, Some(namespace), name) {
        Ok(Some(o)) => o,
        Ok(None) if optional => return Ok(None),
        Ok(None) => return Err(format!("{kind} \"{name}\" not found")),
        Err(e) => return Err(e.to_string()),
    };
    let mut pairs = Vec::new();
    if let Some(data) = obj["data"].as_object() {
        for (k, v) in data {
            let text = v.as_str().unwrap_or_default();
            let value = if plural == "secrets" {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| format!("secret \"{name}\" key {k}: not base64: {e}"))?;
                String::from_utf8_lossy(&raw).into_owned()
            } else {
                text.to_string()
            };
            pairs.push((k.clone(), value));
        }
    }
    if let Some(key) = key {
        match pairs.into_iter().find(|(k, _)| k == key) {
            Some(p) => Ok(Some(vec![p])),
            None if optional => Ok(None),
            None => Err(format!(
                "couldn't find key {key} in {kind} {namespace}/{name}"
            )),
        }
    } else {
        Ok(Some(pairs))
    }
}

/// The pod field a `fieldRef` names.
fn field_value(pod: &Value, path: &str, pod_ip: &str) -> Result<String, ConfigError> {
    let meta = &pod["metadata"];
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    Ok(match path {
        "metadata.name" => s(&meta["name"]),
        "metadata.namespace" => s(&meta["namespace"]),
        "metadata.uid" => s(&meta["uid"]),
        "spec.nodeName" => s(&pod["spec"]["nodeName"]),
        "spec.serviceAccountName" => s(&pod["spec"]["serviceAccountName"]),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => "127.0.0.1".into(),
        p => {
            if let Some(key) = p
                .strip_prefix("metadata.labels['")
                .and_then(|k| k.strip_suffix("']"))
            {
                s(&meta["labels"][key])
            } else if let Some(key) = p
                .strip_prefix("metadata.annotations['")
                .and_then(|k| k.strip_suffix("']"))
            {
                s(&meta["annotations"][key])
            } else {
                return Err(format!("unsupported fieldRef path {p:?}"));
            }
        }
    })
}

/// Expands `$(VAR)` with earlier variables; `$$` escapes, and unknown
/// references stay as written (Kubernetes' rules).
fn expand(value: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(')
            && let Some(end) = body.find(')')
        {
            let name = &body[..end];
            match vars.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// The container's `KEY=VALUE` list.
pub fn build(
    store: &Store,
    pod: &Value,
    container: &Value,
    pod_ip: &str,
) -> Result<Vec<String>, ConfigError> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let mut vars: Vec<(String, String)> = Vec::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = from["prefix"].as_str().unwrap_or_default();
        let (plural, source) = if from["configMapRef"].is_object() {
            ("configmaps", &from["configMapRef"])
        } else if from["secretRef"].is_object() {
            ("secrets", &from["secretRef"])
        } else {
            continue;
        };
        let name = source["name"].as_str().unwrap_or_default();
        let optional = source["optional"].as_bool().unwrap_or(false);
        if let Some(pairs) = lookup_key(store, plural, namespace, name, None, optional)? {
            for (k, v) in pairs {
                vars.push((format!("{prefix}{k}"), v));
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        if name.is_empty() {
            continue;
        }
        let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
            expand(v, &vars)
        } else if let Some(from) = e.get("valueFrom") {
            if let Some(path) = from["fieldRef"]["fieldPath"].as_str() {
                field_value(pod, path, pod_ip)?
            } else if from["configMapKeyRef"].is_object() || from["secretKeyRef"].is_object() {
                let (plural, r) = if from["configMapKeyRef"].is_object() {
                    ("configmaps", &from["configMapKeyRef"])
                } else {
                    ("secrets", &from["secretKeyRef"])
                };
                let optional = r["optional"].as_bool().unwrap_or(false);
                match lookup_key(
                    store,
                    plural,
                    namespace,
                    r["name"].as_str().unwrap_or_default(),
                    r["key"].as_str(),
                    optional,
                )? {
                    Some(mut pairs) => pairs.pop().map(|(_, v)| v).unwrap_or_default(),
                    None => continue,
                }
            } else if let Some(res) = from["resourceFieldRef"]["resource"].as_str() {
                let cname = container["name"].as_str().unwrap_or_default();
                let limits = &container["resources"]["limits"];
                let requests = &container["resources"]["requests"];
                match res {
                    "limits.memory" | "requests.memory" | "limits.cpu" | "requests.cpu" => {
                        let (group, key) = res.split_once('.').unwrap_or(("limits", "memory"));
                        let q = if group == "limits" { limits } else { requests };
                        match q[key].as_str() {
                            Some(v) => v.to_string(),
                            None => "0".into(),
                        }
                    }
                    other => {
                        return Err(format!(
                            "container {cname}: unsupported resourceFieldRef {other:?}"
                        ));
                    }
                }
            } else {
                return Err(format!("env {name}: valueFrom names no source"));
            }
        } else {
            String::new()
        };
        vars.push((name, value));
    }
    // Later settings win, as in Kubernetes (and Docker's env merge).
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in vars {
        out.retain(|(ok, _)| *ok != k);
        out.push((k, v));
    }
    Ok(out.into_iter().map(|(k, v)| format!("{k}={v}")).collect())
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn references_expand() {
        let vars = vec![("A".to_string(), "1".to_string())];
        assert_eq!(expand("x$(A)y", &vars), "x1y");
        assert_eq!(expand("$(B)", &vars), "$(B)");
        assert_eq!(expand("$$(A)", &vars), "$(A)");
        assert_eq!(expand("$", &vars), "$");
        assert_eq!(expand("$(unclosed", &vars), "$(unclosed");
    }
}
