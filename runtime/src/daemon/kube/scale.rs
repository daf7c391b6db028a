//! The `/scale` subresource (autoscaling/v1 Scale) of the workloads: what
//! `kubectl scale` reads and patches.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::Api;
use super::objects::{self, Target};
use crate::cluster::admission;
use crate::daemon::http::Query;
use crate::daemon::kube::objects::{content_type, read_body};
use crate::kube::{Cause, KubeError, Resource, patch};

/// The Scale view of a workload.
fn scale_of(res: &Resource, obj: &Value) -> Result<Value, KubeError> {
    let selector = admission::selector_of(res, obj)?.to_string();
    let meta = &obj["metadata"];
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {
            "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    }))
}

fn invalid_replicas(name: &str, value: &Value) -> KubeError {
    KubeError::Invalid {
        group: "autoscaling".into(),
        kind: "Scale".into(),
        name: name.into(),
        causes: vec![Cause::invalid(
            "spec.replicas",
            value,
            "must be greater than or equal to 0",
        )],
    }
}

pub async fn serve(
    api: &Arc<Api>,
    t: &Target,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let name = t.name.clone().ok_or(KubeError::NoRoute)?;
    let namespace = t.namespace.clone();
    let obj = api.store.get(t.res, namespace.as_deref(), &name)?;
    let method = req.method().clone();
    if method == Method::GET {
        return Ok(objects::json(StatusCode::OK, &scale_of(t.res, &obj)?));
    }
    if method != Method::PUT && method != Method::PATCH {
        return Err(KubeError::MethodNotAllowed(format!(
            "{}/scale takes GET, PUT or PATCH",
            t.res.plural
        )));
    }
    let ct = content_type(&req);
    let body = read_body(req).await?;
    let current = scale_of(t.res, &obj)?;
    let wanted = if method == Method::PUT {
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            KubeError::bad_request(format!("Scale: the body is not valid JSON: {e}"))
        })?;
        if !v.is_object() {
            return Err(KubeError::bad_request("Scale: the body must be an object"));
        }
        v
    } else {
        patch::apply(
            "Scale",
            &current,
            &ct,
            &body,
            q.get("fieldManager"),
            q.flag("force"),
        )?
    };
    let replicas = &wanted["spec"]["replicas"];
    let n = match replicas {
        Value::Null => current["spec"]["replicas"].as_i64().unwrap_or(1),
        v => v
            .as_i64()
            .filter(|n| *n >= 0 && *n <= i64::from(i32::MAX))
            .ok_or_else(|| invalid_replicas(&name, v))?,
    };
    // A Scale that names a resourceVersion must name the current one.
    let expected = wanted["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty() && method == Method::PUT)
        .map(str::to_string);
    if q.all("dryRun").contains(&"All") {
        let mut s = current;
        s["spec"]["replicas"] = json!(n);
        return Ok(objects::json(StatusCode::OK, &s));
    }
    let mut conflict = false;
    let updated = api
        .store
        .modify(t.res, namespace.as_deref(), &name, |o| {
            if let Some(rv) = &expected
                && o["metadata"]["resourceVersion"].as_str() != Some(rv)
            {
                conflict = true;
                return Ok(false);
            }
            if o["spec"]["replicas"].as_i64() == Some(n) {
                return Ok(false);
            }
            o["spec"]["replicas"] = json!(n);
            Ok(true)
        })?
        .ok_or_else(|| crate::cluster::store::not_found(t.res, &name))?;
    if conflict {
        return Err(KubeError::Conflict {
            group: "autoscaling".into(),
            plural: "scale".into(),
            name: name.clone(),
            message: format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                t.res.qualified_plural()
            ),
        });
    }
    Ok(objects::json(StatusCode::OK, &scale_of(t.res, &updated)?))
}

use crate::daemon::http::Resp;
