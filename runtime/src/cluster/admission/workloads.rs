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
    if old.is_none() {
        obj["status"] = json!({"replicas": 0});
    }
    Ok(())
}
