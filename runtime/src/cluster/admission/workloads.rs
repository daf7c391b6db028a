//! ReplicationControllers and ReplicaSets: their defaults (replicas 1, an
//! RC's selector from its template's labels, the template's pod defaults)
//! and rules (replicas ≥ 0, a selector that matches the template, a
//! template that restarts Always, an immutable ReplicaSet selector).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::pods::spec_defaults;
use super::{invalid, name_of, validate_pod_spec};
use crate::kube::selector::LabelSelector;
use crate::kube::{Cause, KubeError, Resource};

/// The pods a workload selects, as a label selector: an RC's plain map or
/// a ReplicaSet's LabelSelector.
pub fn selector_of(res: &Resource, obj: &Value) -> Result<LabelSelector, KubeError> {
    let sel = &obj["spec"]["selector"];
    if res.kind == "ReplicationController" {
        let terms: Vec<String> = sel
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        LabelSelector::parse(&terms.join(","))
    } else {
        let meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
            serde_json::from_value(sel.clone()).map_err(|e| {
                KubeError::bad_request(format!("{} {}: spec.selector: {e}", res.kind, name_of(obj)))
            })?;
        LabelSelector::from_meta(&meta)
    }
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// Defaults and checks a new or changed workload.
pub(super) fn admit(res: &Resource, obj: &mut Value, old: Option<&Value>) -> Result<(), KubeError> {
    let name = name_of(obj).to_string();
    if !obj["spec"].is_object() {
        return Err(invalid(res, &name, vec![Cause::required("spec")]));
    }
    let mut causes = Vec::new();
    match obj["spec"].get("replicas") {
        None | Some(Value::Null) => obj["spec"]["replicas"] = json!(1),
        Some(r) => {
            if r.as_i64().is_none_or(|n| n < 0) {
                causes.push(Cause::invalid(
                    "spec.replicas",
                    r,
                    "must be greater than or equal to 0",
                ));
            }
        }
    }
    let template_labels = labels(&obj["spec"]["template"]["metadata"]["labels"]);
    if res.kind == "ReplicationController" {
        let empty = obj["spec"]["selector"]
            .as_object()
            .is_none_or(|m| m.is_empty());
        if empty && !template_labels.is_empty() {
            obj["spec"]["selector"] = json!(template_labels);
        }
    }
    if !obj["spec"]["template"].is_object() {
        causes.push(Cause::required("spec.template"));
        return Err(invalid(res, &name, causes));
    }
    let selector = selector_of(res, obj);
    match &selector {
        Ok(sel) if sel.is_empty() => causes.push(Cause::required("spec.selector")),
        Ok(sel) if !sel.matches(&template_labels) => causes.push(Cause::invalid(
            "spec.template.metadata.labels",
            format!("{template_labels:?}"),
            "`selector` does not match template `labels`",
        )),
        Ok(_) => {}
        Err(e) => causes.push(Cause::invalid(
            "spec.selector",
            obj["spec"]["selector"].clone(),
            &e.to_string(),
        )),
    }
    if let Some(spec) = obj["spec"]["template"].get_mut("spec") {
        spec_defaults(spec);
    } else {
        causes.push(Cause::required("spec.template.spec"));
    }
    if let Some(p) = obj["spec"]["template"]["spec"]["restartPolicy"].as_str()
        && p != "Always"
    {
        causes.push(Cause::not_supported(
            "spec.template.spec.restartPolicy",
            p,
            &["Always"],
        ));
    }
    if let Some(old) = old
        && res.kind != "ReplicationController"
        && old["spec"]["selector"] != obj["spec"]["selector"]
    {
        causes.push(Cause::invalid(
            "spec.selector",
            obj["spec"]["selector"].clone(),
            "field is immutable",
        ));
    }
    if !causes.is_empty() {
        return Err(invalid(res, &name, causes));
    }
    validate_pod_spec(
        res,
        &name,
        &obj["spec"]["template"]["spec"],
        "spec.template.spec",
    )?;
    if res.kind == "Deployment" {
        deployment_defaults(res, obj)?;
    }
    if old.is_none() {
        obj["status"] = if res.kind == "Deployment" {
            json!({})
        } else {
            json!({"replicas": 0})
        };
    }
    Ok(())
}

/// A Deployment's defaults (RollingUpdate with 25% surge and 25%
/// unavailable, ten old revisions kept, a 600 s progress deadline) and the
/// rules of its strategy.
fn deployment_defaults(res: &Resource, obj: &mut Value) -> Result<(), KubeError> {
    let name = name_of(obj).to_string();
    let spec = &mut obj["spec"];
    if spec["strategy"]["type"].as_str().is_none_or(str::is_empty) {
        spec["strategy"]["type"] = json!("RollingUpdate");
    }
    let kind = spec["strategy"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut causes = Vec::new();
    match kind.as_str() {
        "RollingUpdate" => {
            let ru = &mut spec["strategy"]["rollingUpdate"];
            if ru["maxSurge"].is_null() {
                ru["maxSurge"] = json!("25%");
            }
            if ru["maxUnavailable"].is_null() {
                ru["maxUnavailable"] = json!("25%");
            }
            for f in ["maxSurge", "maxUnavailable"] {
                let v = &spec["strategy"]["rollingUpdate"][f];
                let ok = v.as_i64().is_some_and(|n| n >= 0)
                    || v.as_str().is_some_and(|s| {
                        s.strip_suffix('%')
                            .and_then(|n| n.parse::<u32>().ok())
                            .is_some_and(|n| n <= 100)
                    });
                if !ok {
                    causes.push(Cause::invalid(
                        format!("spec.strategy.rollingUpdate.{f}"),
                        v,
                        "must be a non-negative integer or a percentage from 0% to 100%",
                    ));
                }
            }
            let zero = |v: &Value| v == &json!(0) || v == &json!("0%");
            let ru = &spec["strategy"]["rollingUpdate"];
            if zero(&ru["maxSurge"]) && zero(&ru["maxUnavailable"]) {
                causes.push(Cause::invalid(
                    "spec.strategy.rollingUpdate.maxUnavailable",
                    &ru["maxUnavailable"],
                    "may not be 0 when `maxSurge` is 0",
                ));
            }
        }
        "Recreate" => {
            if spec["strategy"]["rollingUpdate"].is_object() {
                causes.push(Cause::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        other => causes.push(Cause::not_supported(
            "spec.strategy.type",
            other,
            &["Recreate", "RollingUpdate"],
        )),
    }
    if let Some(o) = spec.as_object_mut() {
        o.entry("revisionHistoryLimit").or_insert(json!(10));
        o.entry("progressDeadlineSeconds").or_insert(json!(600));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(invalid(res, &name, causes))
    }
}

/// A Job's defaults (one completion, parallelism 1, backoffLimit 6; its
/// selector and labels come from its uid, which the Job controller fills
/// in) and rules (the template restarts Never or OnFailure; the template
/// and completions are immutable).
pub(super) fn admit_job(
    res: &Resource,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), KubeError> {
    let name = name_of(obj).to_string();
    if !obj["spec"]["template"].is_object() {
        return Err(invalid(res, &name, vec![Cause::required("spec.template")]));
    }
    let mut causes = Vec::new();
    for (f, default) in [("completions", 1), ("parallelism", 1), ("backoffLimit", 6)] {
        match obj["spec"].get(f) {
            None | Some(Value::Null) => obj["spec"][f] = json!(default),
            Some(v) if v.as_i64().is_none_or(|n| n < 0) => causes.push(Cause::invalid(
                format!("spec.{f}"),
                v,
                "must be greater than or equal to 0",
            )),
            Some(_) => {}
        }
    }
    if obj["spec"].get("completionMode").is_none_or(Value::is_null) {
        obj["spec"]["completionMode"] = json!("NonIndexed");
    }
    if obj["spec"].get("suspend").is_none_or(Value::is_null) {
        obj["spec"]["suspend"] = json!(false);
    }
    if let Some(spec) = obj["spec"]["template"].get_mut("spec") {
        if spec["restartPolicy"].is_null() {
            causes.push(Cause::required("spec.template.spec.restartPolicy"));
        }
        spec_defaults(spec);
        if spec["restartPolicy"] == "Always" {
            causes.push(Cause::not_supported(
                "spec.template.spec.restartPolicy",
                "Always",
                &["OnFailure", "Never"],
            ));
        }
    }
    if let Some(old) = old {
        for f in ["selector", "template", "completions"] {
            if !old["spec"][f].is_null() && old["spec"][f] != obj["spec"][f] {
                causes.push(Cause::invalid(
                    format!("spec.{f}"),
                    &obj["spec"][f],
                    "field is immutable",
                ));
            }
        }
    } else {
        obj["status"] = json!({});
    }
    if !causes.is_empty() {
        return Err(invalid(res, &name, causes));
    }
    validate_pod_spec(
        res,
        &name,
        &obj["spec"]["template"]["spec"],
        "spec.template.spec",
    )
}
