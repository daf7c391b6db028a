//! Decoding objects through their typed form from `k8s-openapi`, as the
//! API server's decoder does: a field of the wrong type is an error that
//! names the field, and fields the kind does not have are found (so the
//! caller can refuse them, with `fieldValidation=Strict`, or warn).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{KubeError, Resource};
use k8s_openapi::api::core::v1 as core;

fn through<T: DeserializeOwned + Serialize>(
    res: &Resource,
    obj: &Value,
) -> Result<Value, KubeError> {
    let typed: T = serde_path_to_error::deserialize(obj).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = if path.is_empty() || path == "." {
            String::new()
        } else {
            format!(" (at {path})")
        };
        KubeError::bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {inner}{at}",
            kind = res.kind,
            version = res.version,
        ))
    })?;
    serde_json::to_value(&typed).map_err(KubeError::internal)
}

/// The object as its typed form keeps it, and the paths of the fields it
/// dropped (`spec.containers[0].imagee`).
pub fn roundtrip(res: &Resource, obj: Value) -> Result<(Value, Vec<String>), KubeError> {
    let typed = match res.kind {
        "Pod" => through::<core::Pod>(res, &obj)?,
        "Namespace" => through::<core::Namespace>(res, &obj)?,
        "Node" => through::<core::Node>(res, &obj)?,
        "Event" => through::<core::Event>(res, &obj)?,
        "ConfigMap" => through::<core::ConfigMap>(res, &obj)?,
        "Secret" => through::<core::Secret>(res, &obj)?,
        "ServiceAccount" => through::<core::ServiceAccount>(res, &obj)?,
        "Service" => through::<core::Service>(res, &obj)?,
        "Endpoints" => through::<core::Endpoints>(res, &obj)?,
        "ReplicationController" => through::<core::ReplicationController>(res, &obj)?,
        "ReplicaSet" => through::<k8s_openapi::api::apps::v1::ReplicaSet>(res, &obj)?,
        "Deployment" => through::<k8s_openapi::api::apps::v1::Deployment>(res, &obj)?,
        "Job" => through::<k8s_openapi::api::batch::v1::Job>(res, &obj)?,
        "EndpointSlice" => through::<k8s_openapi::api::discovery::v1::EndpointSlice>(res, &obj)?,
        _ => return Ok((obj, Vec::new())),
    };
    let mut unknown = Vec::new();
    dropped(&obj, &typed, String::new(), &mut unknown);
    Ok((typed, unknown))
}

/// Collects the paths present (and not null) in `original` but missing
/// from `kept`.
fn dropped(original: &Value, kept: &Value, path: String, out: &mut Vec<String>) {
    match (original, kept) {
        (Value::Object(o), Value::Object(k)) => {
            for (key, v) in o {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => dropped(v, kv, p, out),
                    None if v.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(o), Value::Array(k)) => {
            for (i, (ov, kv)) in o.iter().zip(k.iter()).enumerate() {
                dropped(ov, kv, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::by_plural;
    use serde_json::json;

    #[test]
    fn typos_and_wrong_types_are_found() {
        let pods = by_plural("", "v1", "pods").expect("pods");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "a", "imagee": "x", "ports": null}]}});
        let (typed, unknown) = roundtrip(pods, pod).expect("decodes");
        assert_eq!(unknown, vec!["spec.containers[0].imagee".to_string()]);
        assert!(typed["spec"]["containers"][0].get("imagee").is_none());
        let bad = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": 3}]}});
        let err = roundtrip(pods, bad).expect_err("wrong type");
        let text = err.to_string();
        assert!(
            text.contains("cannot be handled as a Pod") && text.contains("spec.containers[0].name"),
            "{text}"
        );
    }
}
