//! The four patch types of `PATCH` requests, and the field ownership
//! (`metadata.managedFields`) that server-side apply keeps.
//!
//! - `application/json-patch+json`: RFC 6902, with `json-patch`.
//! - `application/merge-patch+json`: RFC 7386, with `json-patch`.
//! - `application/strategic-merge-patch+json`: Kubernetes' strategic merge
//!   patch, with the merge keys of the served kinds in [`strategy`]'s table.
//! - `application/apply-patch+yaml`: server-side apply.
//!
//! Objects are `serde_json::Value`s; the caller validates and stores what
//! [`apply`] returns, and handles `metadata.name`, `namespace`, `uid`,
//! `resourceVersion` (a resourceVersion in a patch is a precondition), and
//! the status of objects patched through their main resource.
//!
//! Server-side apply follows structured-merge-diff closely enough for
//! kubectl and kube-rs, with these simplifications:
//! - The schema is the merge-key table below, not the OpenAPI schema:
//!   lists the table does not know are atomic, objects are granular maps
//!   (except label selectors, which are atomic as in Kubernetes). A list map
//!   has one key (`containerPort`, not `containerPort`+`protocol`).
//! - Field sets ignore the apiVersion they were recorded at (one version is
//!   served per kind), and entries are identified by manager, operation and
//!   subresource.
//! - No cap on the number of `Update` entries, and no special treatment of
//!   conflicts with `kubectl-client-side-apply` through the last-applied
//!   annotation (kubectl migrates those itself); the annotation is kept in
//!   sync when the `kubectl` manager applies, as the API server does.
//! - Fields that a dropped list item still holds for another manager are
//!   kept with the item's key; emptied maps and lists left by removals are
//!   removed (below the top level).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde_json::{Map, Value, json};

use super::resources::RESOURCES;
use super::status::{Cause, KubeError};

/// RFC 6902 JSON patch.
pub const JSON_PATCH: &str = "application/json-patch+json";
/// RFC 7386 JSON merge patch.
pub const MERGE_PATCH: &str = "application/merge-patch+json";
/// Kubernetes strategic merge patch.
pub const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
/// Server-side apply.
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The manager that owns the fields of an object that had no managedFields
/// when it was first applied or updated.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The deepest nesting of `[`/`{` an apply body may have (see
/// `parse_apply_body`).
const MAX_YAML_FLOW_DEPTH: usize = 1000;

/// The most operations a JSON patch may have, as in Kubernetes.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Patches `current`, an object of `kind`, with `body` of the media type
/// `content_type` (without parameters). `manager` is the `fieldManager`
/// query parameter, required for apply; `force` is the `force` query
/// parameter, allowed for apply only. For apply, `current` is `Value::Null`
/// when the object does not exist yet, and the result is the new object.
/// The other patch types need an existing object.
pub fn apply(
    kind: &str,
    current: &Value,
    content_type: &str,
    body: &[u8],
    manager: Option<&str>,
    force: bool,
) -> Result<Value, KubeError> {
    if let Some(m) = manager
        && m.len() > 128
    {
        return Err(KubeError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes",
        ));
    }
    if content_type == APPLY_PATCH {
        return server_side_apply(kind, current, body, manager, force);
    }
    if !matches!(
        content_type,
        JSON_PATCH | MERGE_PATCH | STRATEGIC_MERGE_PATCH
    ) {
        return Err(KubeError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: \
             {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}, {STRATEGIC_MERGE_PATCH} \
             (got \"{content_type}\")"
        )));
    }
    if force {
        return Err(KubeError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
        ));
    }
    let who = who(kind, current);
    if current.is_null() {
        return Err(KubeError::bad_request(format!(
            "{who}: cannot patch an object that does not exist"
        )));
    }
    if !current.is_object() {
        return Err(KubeError::internal(format!(
            "{who}: the stored object is not a JSON object"
        )));
    }
    match content_type {
        JSON_PATCH => json_patch(kind, current, body),
        MERGE_PATCH => merge_patch(kind, current, body),
        _ => strategic_merge_patch(kind, current, body),
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn name_of(obj: &Value) -> &str {
    obj.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `Pod "kubia"`, or `Pod` when the object has no name (yet).
fn who(kind: &str, obj: &Value) -> String {
    let name = name_of(obj);
    if name.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} \"{name}\"")
    }
}

fn group_of(kind: &str) -> String {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind)
        .map(|r| r.group.to_string())
        .unwrap_or_default()
}

fn plural_of(kind: &str) -> String {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind)
        .map(|r| r.plural.to_string())
        .unwrap_or_else(|| format!("{}s", kind.to_lowercase()))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_json(who: &str, what: &str, body: &[u8]) -> Result<Value, KubeError> {
    serde_json::from_slice(body).map_err(|e| {
        KubeError::bad_request(format!("{who}: the {what} body is not valid JSON: {e}"))
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Removes the keys whose values are null, at every depth.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

// ---------------------------------------------------------------------------
// JSON patch and JSON merge patch
// ---------------------------------------------------------------------------

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    use json_patch::PatchOperation as P;
    match op {
        P::Add(_) => "add",
        P::Remove(_) => "remove",
        P::Replace(_) => "replace",
        P::Move(_) => "move",
        P::Copy(_) => "copy",
        P::Test(_) => "test",
    }
}

fn json_patch(kind: &str, current: &Value, body: &[u8]) -> Result<Value, KubeError> {
    let who = who(kind, current);
    let doc = parse_json(&who, "JSON patch", body)?;
    let Value::Array(ops) = &doc else {
        return Err(KubeError::bad_request(format!(
            "{who}: a JSON patch must be an array of operations, not {}",
            type_name(&doc)
        )));
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(KubeError::bad_request(format!(
            "{who}: the JSON patch has {} operations, more than the {MAX_JSON_PATCH_OPERATIONS} allowed",
            ops.len()
        )));
    }
    let patch: json_patch::Patch = serde_json::from_value(doc.clone())
        .map_err(|e| KubeError::bad_request(format!("{who}: invalid JSON patch: {e}")))?;
    let mut out = current.clone();
    // `patch_unsafe` on a copy: a failed patch leaves `current` as it was.
    json_patch::patch_unsafe(&mut out, &patch).map_err(|e| {
        let path = e.path.to_string();
        let message = match patch.0.get(e.operation) {
            Some(json_patch::PatchOperation::Move(m)) => format!(
                "the \"move\" operation #{} from \"{}\" failed: {}",
                e.operation, m.from, e.kind
            ),
            Some(json_patch::PatchOperation::Copy(c)) => format!(
                "the \"copy\" operation #{} from \"{}\" failed: {}",
                e.operation, c.from, e.kind
            ),
            Some(op) => format!(
                "the \"{}\" operation #{} failed: {}",
                op_name(op),
                e.operation,
                e.kind
            ),
            None => format!("operation #{} failed: {}", e.operation, e.kind),
        };
        KubeError::Invalid {
            group: group_of(kind),
            kind: kind.to_string(),
            name: name_of(current).to_string(),
            causes: vec![Cause {
                reason: "FieldValueInvalid",
                message,
                field: if path.is_empty() { "/".into() } else { path },
            }],
        }
    })?;
    if !out.is_object() {
        return Err(KubeError::bad_request(format!(
            "{who}: the JSON patch would make the object {}, not an object",
            type_name(&out)
        )));
    }
    Ok(out)
}

fn merge_patch(kind: &str, current: &Value, body: &[u8]) -> Result<Value, KubeError> {
    let who = who(kind, current);
    let patch = parse_json(&who, "merge patch", body)?;
    if !patch.is_object() {
        return Err(KubeError::bad_request(format!(
            "{who}: a merge patch must be a JSON object, not {}",
            type_name(&patch)
        )));
    }
    let mut out = current.clone();
    json_patch::merge(&mut out, &patch);
    Ok(out)
}

// ---------------------------------------------------------------------------
// The merge-key table
// ---------------------------------------------------------------------------

/// How a field merges, by its place in a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The default: a list is replaced whole; an object merges key by key.
    Default,
    /// A list of objects merged element by element by this key.
    Keyed(&'static str),
    /// A list of primitives merged as a set (union).
    Set,
    /// An object replaced whole by server-side apply (label selectors);
    /// strategic merge patch still merges it.
    AtomicMap,
}

fn is_container_list(field: &str) -> bool {
    matches!(
        field,
        "containers" | "initContainers" | "ephemeralContainers"
    )
}

fn meta_strategy(path: &[&str]) -> Strategy {
    match path {
        ["ownerReferences"] => Strategy::Keyed("uid"),
        ["finalizers"] => Strategy::Set,
        _ => Strategy::Default,
    }
}

fn pod_spec_strategy(path: &[&str]) -> Strategy {
    match path {
        [c] if is_container_list(c) => Strategy::Keyed("name"),
        [c, "ports"] if is_container_list(c) => Strategy::Keyed("containerPort"),
        [c, "env"] if is_container_list(c) => Strategy::Keyed("name"),
        [c, "volumeMounts"] if is_container_list(c) => Strategy::Keyed("mountPath"),
        [c, "volumeDevices"] if is_container_list(c) => Strategy::Keyed("devicePath"),
        ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => {
            Strategy::Keyed("name")
        }
        ["hostAliases"] => Strategy::Keyed("ip"),
        ["topologySpreadConstraints"] => Strategy::Keyed("topologyKey"),
        // tolerations, readinessGates and the rest are replaced.
        _ => Strategy::Default,
    }
}

fn pod_template_strategy(path: &[&str]) -> Strategy {
    match path {
        ["metadata", rest @ ..] => meta_strategy(rest),
        ["spec", rest @ ..] => pod_spec_strategy(rest),
        _ => Strategy::Default,
    }
}

/// The merge strategy of the field at `path` (field names from the
/// object's root; list elements add no name) in an object of `kind`.
pub fn strategy(kind: &str, path: &[&str]) -> Strategy {
    if let ["metadata", rest @ ..] = path {
        return meta_strategy(rest);
    }
    match kind {
        "Pod" => match path {
            ["spec", rest @ ..] => pod_spec_strategy(rest),
            ["status", "conditions"] => Strategy::Keyed("type"),
            ["status", "podIPs" | "hostIPs"] => Strategy::Keyed("ip"),
            ["status", "resourceClaimStatuses"] => Strategy::Keyed("name"),
            // containerStatuses and initContainerStatuses are atomic.
            _ => Strategy::Default,
        },
        "PodTemplate" => match path {
            ["template", rest @ ..] => pod_template_strategy(rest),
            _ => Strategy::Default,
        },
        "ReplicationController"
        | "ReplicaSet"
        | "Deployment"
        | "DaemonSet"
        | "StatefulSet"
        | "Job" => match path {
            ["spec", "selector"] => Strategy::AtomicMap,
            ["spec", "template", rest @ ..] => pod_template_strategy(rest),
            ["status", "conditions"] => Strategy::Keyed("type"),
            _ => Strategy::Default,
        },
        "CronJob" => match path {
            ["spec", "jobTemplate", "metadata", rest @ ..] => meta_strategy(rest),
            ["spec", "jobTemplate", "spec", "selector"] => Strategy::AtomicMap,
            ["spec", "jobTemplate", "spec", "template", rest @ ..] => pod_template_strategy(rest),
            _ => Strategy::Default,
        },
        "Service" => match path {
            ["spec", "ports"] => Strategy::Keyed("port"),
            ["spec", "selector"] => Strategy::AtomicMap,
            ["status", "conditions"] => Strategy::Keyed("type"),
            _ => Strategy::Default,
        },
        "Node" => match path {
            ["spec", "podCIDRs"] => Strategy::Set,
            ["status", "conditions" | "addresses"] => Strategy::Keyed("type"),
            _ => Strategy::Default,
        },
        "Namespace" => match path {
            ["status", "conditions"] => Strategy::Keyed("type"),
            _ => Strategy::Default,
        },
        "ServiceAccount" => match path {
            ["secrets"] => Strategy::Keyed("name"),
            _ => Strategy::Default,
        },
        _ => Strategy::Default,
    }
}

fn strategy_at(kind: &str, names: &[String]) -> Strategy {
    let path: Vec<&str> = names.iter().map(String::as_str).collect();
    strategy(kind, &path)
}

/// `.spec.containers` for error messages.
fn dotted(names: &[String]) -> String {
    if names.is_empty() {
        ".".into()
    } else {
        names.iter().map(|n| format!(".{n}")).collect()
    }
}

// ---------------------------------------------------------------------------
// Strategic merge
// ---------------------------------------------------------------------------

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

fn is_directive_key(k: &str) -> bool {
    k == DIRECTIVE
        || k == RETAIN_KEYS
        || k.starts_with(SET_ELEMENT_ORDER)
        || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Merges a patch into an object by the kind's merge keys: strategic merge
/// patch (`directives`), or the merge of server-side apply (no directives,
/// label selectors replaced whole).
struct Merger<'a> {
    kind: &'a str,
    directives: bool,
}

impl Merger<'_> {
    fn strategy(&self, names: &[String]) -> Strategy {
        strategy_at(self.kind, names)
    }

    fn merge_map(
        &self,
        names: &mut Vec<String>,
        orig: &mut Map<String, Value>,
        patch: &Map<String, Value>,
    ) -> Result<(), String> {
        if self.directives {
            if let Some(d) = patch.get(DIRECTIVE) {
                match d.as_str() {
                    Some("replace") => orig.clear(),
                    Some("delete") => {
                        orig.clear();
                        return Ok(());
                    }
                    Some("merge") => {}
                    _ => {
                        return Err(format!(
                            "{}: invalid $patch directive {d} (expected \"replace\", \"delete\" or \"merge\")",
                            dotted(names)
                        ));
                    }
                }
            }
            if let Some(raw) = patch.get(RETAIN_KEYS) {
                let keys: Option<Vec<&str>> = raw
                    .as_array()
                    .and_then(|a| a.iter().map(Value::as_str).collect());
                let Some(keys) = keys else {
                    return Err(format!(
                        "{}: $retainKeys must be a list of field names, not {raw}",
                        dotted(names)
                    ));
                };
                orig.retain(|k, _| keys.contains(&k.as_str()));
            }
            for (k, v) in patch {
                let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
                    continue;
                };
                let Value::Array(drop) = v else {
                    return Err(format!(
                        "{}: {k} must be a list, not {}",
                        dotted(names),
                        type_name(v)
                    ));
                };
                if let Some(Value::Array(list)) = orig.get_mut(field) {
                    list.retain(|x| !drop.contains(x));
                }
            }
        }
        for (k, v) in patch {
            if self.directives && is_directive_key(k) {
                continue;
            }
            names.push(k.clone());
            let r = self.merge_field(names, orig, k, v);
            names.pop();
            r?;
        }
        if self.directives {
            for (k, v) in patch {
                let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) else {
                    continue;
                };
                let Value::Array(order) = v else {
                    return Err(format!(
                        "{}: {k} must be a list, not {}",
                        dotted(names),
                        type_name(v)
                    ));
                };
                names.push(field.to_string());
                let strategy = self.strategy(names);
                names.pop();
                if let Some(Value::Array(list)) = orig.get_mut(field) {
                    reorder(list, order, strategy);
                }
            }
        }
        Ok(())
    }

    fn merge_field(
        &self,
        names: &mut Vec<String>,
        orig: &mut Map<String, Value>,
        k: &str,
        v: &Value,
    ) -> Result<(), String> {
        match v {
            Value::Null => {
                orig.remove(k);
            }
            Value::Object(pm) => {
                let atomic = !self.directives && self.strategy(names) == Strategy::AtomicMap;
                match orig.get_mut(k) {
                    Some(Value::Object(om)) if !atomic => self.merge_map(names, om, pm)?,
                    _ => {
                        let fresh = self.fresh(names, v)?;
                        orig.insert(k.to_string(), fresh);
                    }
                }
            }
            Value::Array(pa) => {
                let strategy = self.strategy(names);
                let base = match (strategy, orig.remove(k)) {
                    (Strategy::Keyed(_) | Strategy::Set, Some(Value::Array(oa))) => oa,
                    _ => Vec::new(),
                };
                let merged = self.merge_list(names, base, pa, strategy)?;
                orig.insert(k.to_string(), Value::Array(merged));
            }
            other => {
                orig.insert(k.to_string(), other.clone());
            }
        }
        Ok(())
    }

    /// A patch value where the original has nothing: merged into an empty
    /// value, so that directives and nulls inside are honoured.
    fn fresh(&self, names: &mut Vec<String>, v: &Value) -> Result<Value, String> {
        match v {
            Value::Object(pm) => {
                if !self.directives && self.strategy(names) == Strategy::AtomicMap {
                    return Ok(v.clone());
                }
                let mut m = Map::new();
                self.merge_map(names, &mut m, pm)?;
                Ok(Value::Object(m))
            }
            Value::Array(pa) => {
                let strategy = self.strategy(names);
                Ok(Value::Array(self.merge_list(
                    names,
                    Vec::new(),
                    pa,
                    strategy,
                )?))
            }
            other => Ok(other.clone()),
        }
    }

    fn merge_list(
        &self,
        names: &mut Vec<String>,
        orig: Vec<Value>,
        patch: &[Value],
        strategy: Strategy,
    ) -> Result<Vec<Value>, String> {
        match strategy {
            Strategy::Keyed(key) => self.merge_keyed(names, orig, patch, key),
            Strategy::Set => {
                let mut out = orig;
                let mut add = Vec::new();
                for el in patch {
                    if self.directives
                        && let Some(d) = el.get(DIRECTIVE)
                    {
                        match d.as_str() {
                            Some("replace") => out.clear(),
                            _ => {
                                return Err(format!(
                                    "{}: invalid $patch directive {d} in a list of values",
                                    dotted(names)
                                ));
                            }
                        }
                        continue;
                    }
                    add.push(el);
                }
                for el in add {
                    if !out.contains(el) {
                        out.push(el.clone());
                    }
                }
                Ok(out)
            }
            Strategy::Default | Strategy::AtomicMap => {
                patch.iter().map(|el| self.fresh(names, el)).collect()
            }
        }
    }

    fn merge_keyed(
        &self,
        names: &mut Vec<String>,
        orig: Vec<Value>,
        patch: &[Value],
        key: &str,
    ) -> Result<Vec<Value>, String> {
        let mut out = orig;
        let mut replace = false;
        let mut deletes: Vec<&Value> = Vec::new();
        let mut items: Vec<(&Value, &Map<String, Value>)> = Vec::new();
        for (i, el) in patch.iter().enumerate() {
            let Value::Object(m) = el else {
                return Err(if self.directives {
                    format!(
                        "{}: element {i} is {}, but the list merges objects by the key \"{key}\"",
                        dotted(names),
                        type_name(el)
                    )
                } else {
                    format!(
                        "{}: element {i}: associative list with keys has an element that is {}, not an object",
                        dotted(names),
                        type_name(el)
                    )
                });
            };
            if self.directives
                && let Some(d) = m.get(DIRECTIVE)
            {
                match d.as_str() {
                    Some("replace") => {
                        replace = true;
                        continue;
                    }
                    Some("delete") => {
                        let Some(kv) = m.get(key) else {
                            return Err(format!(
                                "{}: element {i}: a $patch: delete element needs the merge key \"{key}\"",
                                dotted(names)
                            ));
                        };
                        deletes.push(kv);
                        continue;
                    }
                    Some("merge") => {}
                    _ => {
                        return Err(format!(
                            "{}: element {i}: invalid $patch directive {d}",
                            dotted(names)
                        ));
                    }
                }
            }
            let Some(kv) = m.get(key).filter(|kv| !kv.is_null()) else {
                return Err(if self.directives {
                    format!(
                        "{}: element {i} does not contain the merge key \"{key}\"",
                        dotted(names)
                    )
                } else {
                    format!(
                        "{}: element {i}: associative list with keys has an element that omits key field \"{key}\"",
                        dotted(names)
                    )
                });
            };
            items.push((kv, m));
        }
        if replace {
            out.clear();
        }
        if !deletes.is_empty() {
            out.retain(|x| !x.get(key).is_some_and(|kv| deletes.contains(&kv)));
        }
        for (kv, m) in items {
            match out.iter_mut().find(|x| x.get(key) == Some(kv)) {
                Some(Value::Object(om)) => self.merge_map(names, om, m)?,
                Some(slot) => *slot = self.fresh_map(names, m)?,
                None => {
                    let fresh = self.fresh_map(names, m)?;
                    out.push(fresh);
                }
            }
        }
        Ok(out)
    }

    fn fresh_map(&self, names: &mut Vec<String>, m: &Map<String, Value>) -> Result<Value, String> {
        let mut out = Map::new();
        self.merge_map(names, &mut out, m)?;
        Ok(Value::Object(out))
    }
}

/// Orders the elements a `$setElementOrder` list names as it names them,
/// in the places those elements occupy; the others keep their places.
fn reorder(list: &mut [Value], order: &[Value], strategy: Strategy) {
    let key_of = |v: &Value| -> Option<Value> {
        match strategy {
            Strategy::Keyed(k) => v.get(k).cloned(),
            Strategy::Set => Some(v.clone()),
            _ => None,
        }
    };
    if !matches!(strategy, Strategy::Keyed(_) | Strategy::Set) {
        return;
    }
    let wanted: Vec<Value> = order.iter().filter_map(key_of).collect();
    let rank = |v: &Value| key_of(v).and_then(|k| wanted.iter().position(|w| *w == k));
    let mut slots = Vec::new();
    let mut ranked = Vec::new();
    for (i, v) in list.iter().enumerate() {
        if let Some(r) = rank(v) {
            slots.push(i);
            ranked.push((r, v.clone()));
        }
    }
    ranked.sort_by_key(|(r, _)| *r);
    for (slot, (_, v)) in slots.into_iter().zip(ranked) {
        if let Some(s) = list.get_mut(slot) {
            *s = v;
        }
    }
}

fn strategic_merge_patch(kind: &str, current: &Value, body: &[u8]) -> Result<Value, KubeError> {
    let who = who(kind, current);
    let patch = parse_json(&who, "strategic merge patch", body)?;
    let Value::Object(pm) = &patch else {
        return Err(KubeError::bad_request(format!(
            "{who}: a strategic merge patch must be a JSON object, not {}",
            type_name(&patch)
        )));
    };
    if pm.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
        return Err(KubeError::bad_request(format!(
            "{who}: a strategic merge patch cannot delete the whole object ($patch: delete at the top level)"
        )));
    }
    let mut out = current.as_object().cloned().unwrap_or_default();
    Merger {
        kind,
        directives: true,
    }
    .merge_map(&mut Vec::new(), &mut out, pm)
    .map_err(|e| {
        KubeError::bad_request(format!(
            "{who}: unable to apply the strategic merge patch: {e}"
        ))
    })?;
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------
// Field sets
// ---------------------------------------------------------------------------

/// A field's path as managedFields spell its elements: `f:spec`,
/// `k:{"name":"kubia"}` (a list element by its key), `v:"x"` (a set
/// element), `i:0` (a list element by index, read only).
type FieldPath = Vec<String>;

/// The fields a manager owns: every path that is a member.
type FieldSet = BTreeSet<FieldPath>;

/// Metadata no manager owns, as the API server strips it.
const STRIPPED_METADATA: &[&str] = &[
    "f:name",
    "f:namespace",
    "f:creationTimestamp",
    "f:selfLink",
    "f:uid",
    "f:clusterName",
    "f:generation",
    "f:managedFields",
    "f:resourceVersion",
];

fn is_stripped(p: &FieldPath) -> bool {
    match p.as_slice() {
        [a, ..] if a == "f:apiVersion" || a == "f:kind" => true,
        [m] if m == "f:metadata" => true,
        [m, f, ..] if m == "f:metadata" => STRIPPED_METADATA.contains(&f.as_str()),
        _ => false,
    }
}

fn strip(set: &mut FieldSet) {
    set.retain(|p| !is_stripped(p));
}

fn key_element(key: &str, value: &Value) -> String {
    let mut m = Map::new();
    m.insert(key.to_string(), value.clone());
    format!("k:{}", Value::Object(m))
}

/// The `k:` elements of a keyed list, or `None` when an element is not an
/// object with the key or two elements share a key.
fn item_keys(list: &[Value], key: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(list.len());
    for el in list {
        let kv = el.as_object()?.get(key).filter(|v| !v.is_null())?;
        let k = key_element(key, kv);
        if !seen.insert(k.clone()) {
            return None;
        }
        out.push(k);
    }
    Some(out)
}

/// Paths of objects of one kind.
struct Schema<'a> {
    kind: &'a str,
}

impl Schema<'_> {
    /// Adds the paths of `v` (at `path`) to `out`: its leaves, the elements
    /// of keyed lists and sets, and empty objects and lists. With `strict`,
    /// a keyed list whose elements lack their key or repeat one is an error
    /// (else the list counts as one leaf).
    fn collect(
        &self,
        names: &mut Vec<String>,
        path: &mut FieldPath,
        v: &Value,
        out: &mut FieldSet,
        strict: bool,
    ) -> Result<(), String> {
        let strategy = strategy_at(self.kind, names);
        match v {
            Value::Object(m) if !m.is_empty() && strategy != Strategy::AtomicMap => {
                for (k, child) in m {
                    if child.is_null() {
                        continue;
                    }
                    names.push(k.clone());
                    path.push(format!("f:{k}"));
                    let r = self.collect(names, path, child, out, strict);
                    names.pop();
                    path.pop();
                    r?;
                }
            }
            Value::Array(a) if !a.is_empty() => match strategy {
                Strategy::Keyed(key) => match item_keys(a, key) {
                    Some(keys) => {
                        for (item, k) in a.iter().zip(keys) {
                            path.push(k);
                            out.insert(path.clone());
                            let r = self.collect(names, path, item, out, strict);
                            path.pop();
                            r?;
                        }
                    }
                    None if strict => return Err(keyed_list_error(names, a, key)),
                    None => {
                        out.insert(path.clone());
                    }
                },
                Strategy::Set if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
                    for x in a {
                        path.push(format!("v:{x}"));
                        out.insert(path.clone());
                        path.pop();
                    }
                }
                _ => {
                    out.insert(path.clone());
                }
            },
            _ => {
                out.insert(path.clone());
            }
        }
        Ok(())
    }

    /// The fields of an object, less the metadata nobody owns.
    fn fields_of(&self, obj: &Value, strict: bool) -> Result<FieldSet, String> {
        let mut out = FieldSet::new();
        self.collect(&mut Vec::new(), &mut Vec::new(), obj, &mut out, strict)?;
        strip(&mut out);
        Ok(out)
    }

    fn collect_lenient(
        &self,
        names: &mut Vec<String>,
        path: &mut FieldPath,
        v: &Value,
        out: &mut FieldSet,
    ) {
        // Not strict: cannot fail.
        let _ = self.collect(names, path, v, out, false);
    }

    /// The paths that differ between `old` and `new`: added or modified
    /// (`changed`), and removed.
    fn compare(
        &self,
        names: &mut Vec<String>,
        path: &mut FieldPath,
        old: Option<&Value>,
        new: Option<&Value>,
        changed: &mut FieldSet,
        removed: &mut FieldSet,
    ) {
        let (o, n) = match (old, new) {
            (None, None) => return,
            (Some(o), None) => return self.collect_lenient(names, path, o, removed),
            (None, Some(n)) => return self.collect_lenient(names, path, n, changed),
            (Some(o), Some(n)) => (o, n),
        };
        if o == n {
            return;
        }
        let strategy = strategy_at(self.kind, names);
        match (o, n) {
            (Value::Object(om), Value::Object(nm))
                if strategy != Strategy::AtomicMap && !om.is_empty() && !nm.is_empty() =>
            {
                let keys: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
                for k in keys {
                    names.push(k.clone());
                    path.push(format!("f:{k}"));
                    self.compare(
                        names,
                        path,
                        om.get(k).filter(|v| !v.is_null()),
                        nm.get(k).filter(|v| !v.is_null()),
                        changed,
                        removed,
                    );
                    names.pop();
                    path.pop();
                }
                return;
            }
            (Value::Array(oa), Value::Array(na)) if !oa.is_empty() && !na.is_empty() => {
                match strategy {
                    Strategy::Keyed(key) => {
                        if let (Some(ok), Some(nk)) = (item_keys(oa, key), item_keys(na, key)) {
                            let old_items: BTreeMap<&String, &Value> = ok.iter().zip(oa).collect();
                            let new_items: BTreeMap<&String, &Value> = nk.iter().zip(na).collect();
                            for (k, ni) in &new_items {
                                path.push((*k).clone());
                                match old_items.get(k) {
                                    Some(oi) => self.compare(
                                        names,
                                        path,
                                        Some(oi),
                                        Some(ni),
                                        changed,
                                        removed,
                                    ),
                                    None => {
                                        changed.insert(path.clone());
                                        self.collect_lenient(names, path, ni, changed);
                                    }
                                }
                                path.pop();
                            }
                            for (k, oi) in &old_items {
                                if !new_items.contains_key(k) {
                                    path.push((*k).clone());
                                    removed.insert(path.clone());
                                    self.collect_lenient(names, path, oi, removed);
                                    path.pop();
                                }
                            }
                            return;
                        }
                    }
                    Strategy::Set => {
                        let prim = |a: &[Value]| a.iter().all(|x| !x.is_object() && !x.is_array());
                        if prim(oa) && prim(na) {
                            for x in na.iter().filter(|x| !oa.contains(x)) {
                                path.push(format!("v:{x}"));
                                changed.insert(path.clone());
                                path.pop();
                            }
                            for x in oa.iter().filter(|x| !na.contains(x)) {
                                path.push(format!("v:{x}"));
                                removed.insert(path.clone());
                                path.pop();
                            }
                            return;
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        // A leaf changed, or a value changed shape.
        let mut before = FieldSet::new();
        let mut after = FieldSet::new();
        self.collect_lenient(names, path, o, &mut before);
        self.collect_lenient(names, path, n, &mut after);
        for p in before.difference(&after) {
            removed.insert(p.clone());
        }
        changed.extend(after);
    }

    /// What changed from `old` to `new`, less the metadata nobody owns.
    fn diff(&self, old: &Value, new: &Value) -> (FieldSet, FieldSet) {
        let mut changed = FieldSet::new();
        let mut removed = FieldSet::new();
        self.compare(
            &mut Vec::new(),
            &mut Vec::new(),
            Some(old),
            Some(new),
            &mut changed,
            &mut removed,
        );
        strip(&mut changed);
        strip(&mut removed);
        (changed, removed)
    }
}

fn keyed_list_error(names: &[String], list: &[Value], key: &str) -> String {
    let mut seen = BTreeSet::new();
    for (i, el) in list.iter().enumerate() {
        let Some(kv) = el
            .as_object()
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_null())
        else {
            return format!(
                "{}: element {i}: associative list with keys has an element that omits key field \"{key}\"",
                dotted(names)
            );
        };
        if !seen.insert(kv.to_string()) {
            return format!("{}: duplicate entries for key [{key}={kv}]", dotted(names));
        }
    }
    format!("{}: invalid associative list", dotted(names))
}

/// A managedFields tree (`{"f:spec": {"f:x": {}}}`) as a set of paths.
fn set_from_fields_v1(v: &Value) -> FieldSet {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut FieldSet) {
        let Some(m) = v.as_object() else {
            return;
        };
        for (k, child) in m {
            if k == "." {
                continue;
            }
            path.push(k.clone());
            match child.as_object() {
                Some(cm) => {
                    if cm.is_empty() || cm.contains_key(".") {
                        out.insert(path.clone());
                    }
                    walk(child, path, out);
                }
                None => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// A set of paths as a managedFields tree: members are `{}` leaves, or
/// carry `".": {}` when they have children.
fn fields_v1_from_set(set: &FieldSet) -> Value {
    fn insert(node: &mut Map<String, Value>, path: &[String]) {
        match path.split_first() {
            None => {
                node.insert(".".into(), json!({}));
            }
            Some((first, rest)) => {
                let child = node
                    .entry(first.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(cm) = child {
                    insert(cm, rest);
                }
            }
        }
    }
    fn tidy(node: &mut Map<String, Value>) {
        for child in node.values_mut() {
            if let Value::Object(cm) = child {
                if cm.len() == 1 && cm.contains_key(".") {
                    cm.clear();
                } else {
                    tidy(cm);
                }
            }
        }
    }
    let mut root = Map::new();
    for p in set {
        if !p.is_empty() {
            insert(&mut root, p);
        }
    }
    tidy(&mut root);
    Value::Object(root)
}

/// `.spec.containers[name="kubia"].image`, as conflicts name fields.
fn display_path(p: &FieldPath) -> String {
    let mut out = String::new();
    for pe in p {
        if let Some(f) = pe.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            match serde_json::from_str::<Map<String, Value>>(k) {
                Ok(m) => {
                    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    out.push_str(&format!("[{}]", parts.join(",")));
                }
                Err(_) => out.push_str(&format!("[{k}]")),
            }
        } else if let Some(v) = pe.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = pe.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        } else {
            out.push_str(pe);
        }
    }
    out
}

fn child_index(v: &Value, pe: &str) -> Option<usize> {
    let list = v.as_array()?;
    if let Some(k) = pe.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(k).ok()?;
        list.iter()
            .position(|item| key.iter().all(|(f, kv)| item.get(f) == Some(kv)))
    } else if let Some(x) = pe.strip_prefix("v:") {
        let x: Value = serde_json::from_str(x).ok()?;
        list.iter().position(|item| *item == x)
    } else if let Some(i) = pe.strip_prefix("i:") {
        i.parse::<usize>().ok().filter(|i| *i < list.len())
    } else {
        None
    }
}

fn child_mut<'a>(v: &'a mut Value, pe: &str) -> Option<&'a mut Value> {
    if let Some(f) = pe.strip_prefix("f:") {
        return v.as_object_mut()?.get_mut(f);
    }
    let i = child_index(v, pe)?;
    v.as_array_mut()?.get_mut(i)
}

fn get_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = v;
    for pe in path {
        cur = if let Some(f) = pe.strip_prefix("f:") {
            cur.as_object()?.get(f)?
        } else {
            let i = child_index(cur, pe)?;
            cur.as_array()?.get(i)?
        };
    }
    Some(cur)
}

fn remove_path(v: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for pe in parents {
        match child_mut(cur, pe) {
            Some(next) => cur = next,
            None => return false,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        return cur.as_object_mut().and_then(|m| m.remove(f)).is_some();
    }
    match child_index(cur, last) {
        Some(i) => match cur.as_array_mut() {
            Some(list) if i < list.len() => {
                list.remove(i);
                true
            }
            _ => false,
        },
        None => false,
    }
}

/// Whether `p` names the key field of a keyed list element
/// (`k:{"name":"x"}` then `f:name`).
fn is_key_field(p: &FieldPath) -> bool {
    let [.., item, field] = p.as_slice() else {
        return false;
    };
    let (Some(k), Some(f)) = (item.strip_prefix("k:"), field.strip_prefix("f:")) else {
        return false;
    };
    serde_json::from_str::<Map<String, Value>>(k).is_ok_and(|m| m.contains_key(f))
}

/// Whether a member of `set` lies strictly under `p`.
fn has_descendant(set: &FieldSet, p: &FieldPath) -> bool {
    set.range::<FieldPath, _>((Bound::Excluded(p), Bound::Unbounded))
        .next()
        .is_some_and(|q| q.starts_with(p))
}

/// Removes from `obj` the fields of `to_remove`, except those holding
/// fields someone still owns and the keys of list elements that stay;
/// then removes the maps and lists that became empty (below the top
/// level) and nobody owns.
fn prune(obj: &mut Value, to_remove: &FieldSet, owned: &FieldSet) {
    for p in to_remove {
        if has_descendant(owned, p) || is_key_field(p) {
            continue;
        }
        if !remove_path(obj, p) {
            continue;
        }
        for depth in (2..p.len()).rev() {
            let parent = p.get(..depth).unwrap_or(&[]);
            let empty = match get_path(obj, parent) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !empty || owned.contains(parent) {
                break;
            }
            remove_path(obj, parent);
        }
    }
}

// ---------------------------------------------------------------------------
// managedFields
// ---------------------------------------------------------------------------

/// One managedFields entry.
#[derive(Debug, Clone)]
struct Entry {
    /// The entry as stored, so fields this module does not know survive.
    raw: Map<String, Value>,
    manager: String,
    operation: String,
    subresource: String,
    set: FieldSet,
    /// Whether `set` changed and `raw` must be rewritten.
    dirty: bool,
}

impl Entry {
    fn new(manager: &str, operation: &str, api_version: &str, set: FieldSet) -> Self {
        let mut raw = Map::new();
        raw.insert("manager".into(), json!(manager));
        raw.insert("operation".into(), json!(operation));
        raw.insert("apiVersion".into(), json!(api_version));
        raw.insert("time".into(), json!(now()));
        Entry {
            raw,
            manager: manager.into(),
            operation: operation.into(),
            subresource: String::new(),
            set,
            dirty: true,
        }
    }

    fn read(v: &Value) -> Option<Self> {
        let raw = v.as_object()?.clone();
        let text = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let manager = text("manager");
        let operation = text("operation");
        let subresource = text("subresource");
        let set = raw
            .get("fieldsV1")
            .map(set_from_fields_v1)
            .unwrap_or_default();
        Some(Entry {
            raw,
            manager,
            operation,
            subresource,
            set,
            dirty: false,
        })
    }

    fn is(&self, manager: &str, operation: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.is_empty()
    }

    /// `"kubectl" using v1`, as conflicts name managers.
    fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            let v = self
                .raw
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            s.push_str(&format!(" using {v}"));
        }
        s
    }

    /// Marks the entry written now at `api_version`.
    fn touch(&mut self, api_version: &str) {
        self.raw.insert("apiVersion".into(), json!(api_version));
        self.raw.insert("time".into(), json!(now()));
        self.dirty = true;
    }

    fn to_value(&self) -> Value {
        if !self.dirty {
            return Value::Object(self.raw.clone());
        }
        let mut raw = self.raw.clone();
        raw.insert("fieldsType".into(), json!("FieldsV1"));
        raw.insert("fieldsV1".into(), fields_v1_from_set(&self.set));
        Value::Object(raw)
    }

    fn time(&self) -> &str {
        self.raw.get("time").and_then(Value::as_str).unwrap_or("")
    }
}

fn managed_fields(obj: &Value) -> Option<&Value> {
    obj.get("metadata").and_then(|m| m.get("managedFields"))
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    managed_fields(obj)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::read).collect())
        .unwrap_or_default()
}

/// Writes the entries (those with fields) into `metadata.managedFields`, in
/// the API server's order: Apply before Update, then oldest first.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time().cmp(b.time()))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_value).collect()),
        );
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(meta) = out.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    out
}

/// Whether an object's managedFields ask for a reset: `[]` or `[{}]`.
fn is_reset(mf: &Value) -> bool {
    match mf.as_array() {
        Some(a) => a.iter().all(|e| e.as_object().is_some_and(Map::is_empty)),
        None => false,
    }
}

/// Returns `new` with its managedFields updated for a write that is not an
/// apply (create, update, or a JSON, merge or strategic patch) by `manager`
/// at `api_version`: the manager's `Update` entry gains the fields the
/// write added or changed, every manager loses the fields the write
/// changed or removed. `old` is `Value::Null` for a create.
///
/// As in Kubernetes, `new`'s own managedFields are used when it has some
/// (a client may rewrite them), `[]` resets them, and otherwise those of
/// `old` carry over. An existing object without managedFields has its
/// fields recorded for `before-first-apply` first.
pub fn record_update(manager: &str, old: &Value, new: &Value, api_version: &str) -> Value {
    let mut out = new.clone();
    if !out.is_object() {
        return out;
    }
    let kind = new
        .get("kind")
        .or_else(|| old.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let schema = Schema { kind };
    let old_clean = if old.is_object() {
        without_managed_fields(old)
    } else {
        json!({})
    };
    let new_clean = without_managed_fields(new);

    let mut entries = match managed_fields(new) {
        Some(mf) if is_reset(mf) => Vec::new(),
        Some(mf) if mf.is_array() => {
            let from_new = read_entries(new);
            if from_new.is_empty() {
                read_entries(old)
            } else {
                from_new
            }
        }
        _ => read_entries(old),
    };
    let reset = managed_fields(new).is_some_and(is_reset);
    if entries.is_empty() && !reset && old.is_object() {
        let set = schema.fields_of(&old_clean, false).unwrap_or_default();
        if !set.is_empty() {
            let v = old
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(api_version);
            entries.push(Entry::new(BEFORE_FIRST_APPLY, "Update", v, set));
        }
    }

    let (changed, removed) = schema.diff(&old_clean, &new_clean);
    if !changed.is_empty() || !removed.is_empty() {
        for e in entries.iter_mut() {
            let before = e.set.len();
            e.set.retain(|p| !removed.contains(p));
            if !e.is(manager, "Update") {
                e.set.retain(|p| !changed.contains(p));
            }
            if e.set.len() != before {
                e.dirty = true;
            }
        }
        let own_changed: FieldSet = changed.difference(&removed).cloned().collect();
        match entries.iter_mut().find(|e| e.is(manager, "Update")) {
            Some(e) => {
                e.set.extend(own_changed);
                e.touch(api_version);
            }
            None => {
                if !own_changed.is_empty() {
                    entries.push(Entry::new(manager, "Update", api_version, own_changed));
                }
            }
        }
    }
    write_entries(&mut out, entries);
    out
}

// ---------------------------------------------------------------------------
// Server-side apply
// ---------------------------------------------------------------------------

fn parse_apply_body(kind: &str, body: &[u8]) -> Result<Value, KubeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        KubeError::bad_request(format!("{kind}: the apply body is not UTF-8 text: {e}"))
    })?;
    if text.trim_start().starts_with('{')
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        return Ok(v);
    }
    // The YAML parser slows down sharply with the depth of flow
    // collections (`[[[[...`), and any depth past 128 fails anyway: refuse
    // deep bodies first. Brackets are counted naively (also inside
    // strings), with a margin that real manifests never come near.
    let mut depth: usize = 0;
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_YAML_FLOW_DEPTH {
                    return Err(KubeError::bad_request(format!(
                        "{kind}: the apply body nests deeper than {MAX_YAML_FLOW_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_yaml_ng::from_str::<Value>(text).map_err(|e| {
        KubeError::bad_request(format!(
            "{kind}: the apply body is neither valid JSON nor valid YAML: {e}"
        ))
    })
}

/// Fails unless `api_version` is the current object's apiVersion or one
/// `kind` is served at; any apiVersion goes for kinds the table does not
/// serve (yet) when the object is new.
fn check_api_version(
    who: &str,
    kind: &str,
    current: &Value,
    api_version: &str,
) -> Result<(), KubeError> {
    let mut expected: Vec<String> = RESOURCES
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.api_version())
        .collect();
    if let Some(v) = current.get("apiVersion").and_then(Value::as_str)
        && !v.is_empty()
        && !expected.iter().any(|e| e == v)
    {
        expected.insert(0, v.to_string());
    }
    if expected.is_empty() || expected.iter().any(|e| e == api_version) {
        return Ok(());
    }
    let expected: Vec<String> = expected.iter().map(|e| format!("\"{e}\"")).collect();
    Err(KubeError::bad_request(format!(
        "{who}: the applied configuration's apiVersion \"{api_version}\" does not match the object's apiVersion {}",
        expected.join(" or ")
    )))
}

fn conflict_message(conflicts: &[(String, FieldPath)]) -> String {
    if let [(manager, path)] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {manager}: {}",
            display_path(path)
        );
    }
    let mut by_manager: BTreeMap<&str, Vec<&FieldPath>> = BTreeMap::new();
    for (m, p) in conflicts {
        by_manager.entry(m).or_default().push(p);
    }
    let mut lines = Vec::new();
    for (m, paths) in by_manager {
        lines.push(format!("conflicts with {m}:"));
        for p in paths {
            lines.push(format!("- {}", display_path(p)));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

fn server_side_apply(
    kind: &str,
    current: &Value,
    body: &[u8],
    manager: Option<&str>,
    force: bool,
) -> Result<Value, KubeError> {
    let Some(manager) = manager.filter(|m| !m.is_empty()) else {
        return Err(KubeError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    };
    if !current.is_null() && !current.is_object() {
        return Err(KubeError::internal(format!(
            "{}: the stored object is not a JSON object",
            who(kind, current)
        )));
    }
    let mut applied = parse_apply_body(kind, body)?;
    let who = who(kind, if current.is_null() { &applied } else { current });
    if !applied.is_object() {
        return Err(KubeError::bad_request(format!(
            "{who}: the applied configuration must be an object, not {}",
            type_name(&applied)
        )));
    }
    let applied_kind = applied.get("kind").and_then(Value::as_str).unwrap_or("");
    if applied_kind.is_empty() {
        return Err(KubeError::bad_request(format!(
            "{who}: the applied configuration has no kind (expected \"{kind}\")"
        )));
    }
    if applied_kind != kind {
        return Err(KubeError::bad_request(format!(
            "{who}: the applied configuration's kind \"{applied_kind}\" does not match the object's kind \"{kind}\""
        )));
    }
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if api_version.is_empty() {
        return Err(KubeError::bad_request(format!(
            "{who}: the applied configuration has no apiVersion"
        )));
    }
    check_api_version(&who, kind, current, &api_version)?;
    if managed_fields(&applied).is_some_and(|m| !m.is_null()) {
        return Err(KubeError::bad_request(format!(
            "{who}: metadata.managedFields must be nil in an applied configuration"
        )));
    }
    drop_nulls(&mut applied);
    let Value::Object(applied_map) = &applied else {
        return Err(KubeError::bad_request(format!(
            "{who}: the applied configuration must be an object"
        )));
    };

    let schema = Schema { kind };
    let new_set = schema
        .fields_of(&applied, true)
        .map_err(|e| KubeError::bad_request(format!("{who}: {e}")))?;

    let live = if current.is_null() {
        json!({})
    } else {
        without_managed_fields(current)
    };
    let mut entries = read_entries(current);
    if entries.is_empty() && !current.is_null() {
        let set = schema.fields_of(&live, false).unwrap_or_default();
        if !set.is_empty() {
            let v = current
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(&api_version);
            entries.push(Entry::new(BEFORE_FIRST_APPLY, "Update", v, set));
        }
    }

    let mut merged_map = live.as_object().cloned().unwrap_or_default();
    Merger {
        kind,
        directives: false,
    }
    .merge_map(&mut Vec::new(), &mut merged_map, applied_map)
    .map_err(|e| KubeError::bad_request(format!("{who}: {e}")))?;
    let mut merged = Value::Object(merged_map);

    // Fields the apply changes that another manager owns conflict.
    let (changed, removed) = schema.diff(&live, &merged);
    let own = |e: &Entry| e.is(manager, "Apply");
    let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
    for e in entries.iter().filter(|e| !own(e)) {
        for p in e.set.iter().filter(|p| changed.contains(*p)) {
            conflicts.push((e.display(), p.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(KubeError::Conflict {
            group: group_of(kind),
            plural: plural_of(kind),
            name: name_of(&merged).to_string(),
            message: conflict_message(&conflicts),
        });
    }
    // Forced: the fields move to this manager. Fields the merge removed
    // (a value that changed shape) are nobody's.
    for e in entries.iter_mut().filter(|e| !own(e)) {
        let before = e.set.len();
        e.set
            .retain(|p| !changed.contains(p) && !removed.contains(p));
        if e.set.len() != before {
            e.dirty = true;
        }
    }

    // Fields this manager applied before and no longer does go, unless
    // another manager owns them too.
    let last_set = entries
        .iter()
        .find(|e| own(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut owned = new_set.clone();
    for e in entries.iter().filter(|e| !own(e)) {
        owned.extend(e.set.iter().cloned());
    }
    let to_remove: FieldSet = last_set.difference(&owned).cloned().collect();
    prune(&mut merged, &to_remove, &owned);

    match entries.iter_mut().find(|e| own(e)) {
        Some(e) => {
            e.set = new_set;
            e.touch(&api_version);
        }
        None => entries.push(Entry::new(manager, "Apply", &api_version, new_set)),
    }
    write_entries(&mut merged, entries);

    // As the API server does for kubectl, keep a client-side-apply
    // annotation in step with what was applied.
    if manager == "kubectl"
        && let Some(annotations) = merged
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
        && annotations.contains_key(LAST_APPLIED)
    {
        let mut last = applied.clone();
        if let Some(a) = last
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
            if a.is_empty()
                && let Some(m) = last.get_mut("metadata").and_then(Value::as_object_mut)
            {
                m.remove("annotations");
            }
        }
        annotations.insert(LAST_APPLIED.into(), Value::String(last.to_string()));
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubia", "namespace": "default", "labels": {"app": "kubia"},
                         "finalizers": ["a", "b"]},
            "spec": {
                "containers": [
                    {"name": "kubia", "image": "kubia:v1",
                     "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                     "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "side:v1"},
                ],
                "tolerations": [{"key": "x", "operator": "Exists"}],
            },
        })
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kubia", "namespace": "default"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "kubia"}},
                "template": {
                    "metadata": {"labels": {"app": "kubia"}},
                    "spec": {"containers": [
                        {"name": "kubia", "image": "x:v1",
                         "ports": [{"containerPort": 8080}]},
                        {"name": "sidecar", "image": "side:v1"},
                    ]},
                },
            },
        })
    }

    fn patch(kind: &str, current: &Value, ct: &str, body: Value) -> Result<Value, KubeError> {
        apply(kind, current, ct, body.to_string().as_bytes(), None, false)
    }

    fn smp(kind: &str, current: &Value, body: Value) -> Value {
        patch(kind, current, STRATEGIC_MERGE_PATCH, body).expect("strategic merge patch")
    }

    fn smp_err(kind: &str, current: &Value, body: &str) -> String {
        match apply(
            kind,
            current,
            STRATEGIC_MERGE_PATCH,
            body.as_bytes(),
            None,
            false,
        ) {
            Err(KubeError::BadRequest(m)) => m,
            other => panic!("expected BadRequest, got {other:?}"),
        }
    }

    fn ssa(current: &Value, body: Value, manager: &str, force: bool) -> Result<Value, KubeError> {
        let kind = body["kind"].as_str().unwrap_or("Pod").to_string();
        apply(
            &kind,
            current,
            APPLY_PATCH,
            body.to_string().as_bytes(),
            Some(manager),
            force,
        )
    }

    fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
        obj["metadata"]["managedFields"]
            .as_array()?
            .iter()
            .find(|e| e["manager"] == manager && e["operation"] == operation)
    }

    // -- dispatch ---------------------------------------------------------

    #[test]
    fn unknown_media_type() {
        let e = apply("Pod", &pod(), "application/json", b"{}", None, false);
        assert!(
            matches!(e, Err(KubeError::UnsupportedMediaType(_))),
            "{e:?}"
        );
    }

    #[test]
    fn force_only_for_apply() {
        let e = apply("Pod", &pod(), MERGE_PATCH, b"{}", None, true);
        assert_eq!(
            e,
            Err(KubeError::BadRequest(
                "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch".into()
            ))
        );
    }

    #[test]
    fn non_apply_patches_need_an_object() {
        for ct in [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH] {
            let e = apply("Pod", &Value::Null, ct, b"{}", None, false);
            assert!(
                matches!(e, Err(KubeError::BadRequest(ref m)) if m.contains("Pod")),
                "{e:?}"
            );
        }
    }

    // -- JSON patch -------------------------------------------------------

    #[test]
    fn json_patch_applies_operations() {
        let out = patch(
            "Pod",
            &pod(),
            JSON_PATCH,
            json!([
                {"op": "test", "path": "/metadata/labels/app", "value": "kubia"},
                {"op": "add", "path": "/metadata/labels/tier", "value": "web"},
                {"op": "replace", "path": "/spec/containers/0/image", "value": "kubia:v2"},
                {"op": "remove", "path": "/spec/tolerations"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "c"},
                {"op": "copy", "from": "/metadata/name", "path": "/metadata/labels/name"},
                {"op": "move", "from": "/metadata/labels/tier", "path": "/metadata/labels/layer"},
            ]),
        )
        .expect("patched");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "kubia", "layer": "web", "name": "kubia"})
        );
        assert_eq!(out["spec"]["containers"][0]["image"], "kubia:v2");
        assert!(out["spec"].get("tolerations").is_none());
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
    }

    #[test]
    fn json_patch_failures_are_invalid() {
        let e = patch(
            "Pod",
            &pod(),
            JSON_PATCH,
            json!([{"op": "test", "path": "/metadata/labels/app", "value": "other"}]),
        );
        let Err(KubeError::Invalid {
            kind, name, causes, ..
        }) = e
        else {
            panic!("expected Invalid, got {e:?}");
        };
        assert_eq!((kind.as_str(), name.as_str()), ("Pod", "kubia"));
        assert_eq!(causes[0].field, "/metadata/labels/app");
        assert!(
            causes[0].message.contains("\"test\" operation #0 failed"),
            "{:?}",
            causes[0]
        );

        let e = patch(
            "Pod",
            &pod(),
            JSON_PATCH,
            json!([
                {"op": "add", "path": "/metadata/labels/x", "value": "1"},
                {"op": "remove", "path": "/spec/nothing/here"},
            ]),
        );
        let Err(KubeError::Invalid { causes, .. }) = e else {
            panic!("expected Invalid, got {e:?}");
        };
        assert_eq!(causes[0].field, "/spec/nothing/here");
        assert!(
            causes[0].message.contains("\"remove\" operation #1"),
            "{:?}",
            causes[0]
        );
        let e = patch(
            "Pod",
            &pod(),
            JSON_PATCH,
            json!([{"op": "move", "from": "/nope", "path": "/x"}]),
        );
        assert!(
            matches!(e, Err(KubeError::Invalid { ref causes, .. }) if causes[0].message.contains("/nope")),
            "{e:?}"
        );
        // Odd pointers fail without panicking.
        for path in [
            "/metadata/finalizers/-",
            "/metadata/finalizers/9",
            "/metadata/finalizers/x",
        ] {
            let e = patch(
                "Pod",
                &pod(),
                JSON_PATCH,
                json!([{"op": "remove", "path": path}]),
            );
            assert!(matches!(e, Err(KubeError::Invalid { .. })), "{path}: {e:?}");
        }
        let empty = json!({"metadata": {"finalizers": []}});
        let e = patch(
            "Pod",
            &empty,
            JSON_PATCH,
            json!([{"op": "move", "from": "/metadata/finalizers/-", "path": "/x"}]),
        );
        assert!(e.is_err());
    }

    #[test]
    fn json_patch_bad_bodies() {
        let bad = |body: &str| match apply("Pod", &pod(), JSON_PATCH, body.as_bytes(), None, false)
        {
            Err(KubeError::BadRequest(m)) => m,
            other => panic!("{body}: expected BadRequest, got {other:?}"),
        };
        assert!(bad("{").contains("not valid JSON"));
        assert!(bad(r#"{"op":"add"}"#).contains("must be an array"));
        assert!(bad(r#"[{"op":"frobnicate","path":"/x"}]"#).contains("invalid JSON patch"));
        assert!(bad(r#"[{"op":"add","path":"x","value":1}]"#).contains("invalid JSON patch"));
        assert!(bad(r#"[{"op":"replace","path":"","value":[1]}]"#).contains("not an object"));
        assert!(bad("{").starts_with("Pod \"kubia\""));
    }

    // -- merge patch ------------------------------------------------------

    #[test]
    fn merge_patch_merges_and_deletes() {
        let out = patch(
            "Pod",
            &pod(),
            MERGE_PATCH,
            json!({"metadata": {"labels": {"app": null, "tier": "web"}},
                   "spec": {"containers": [{"name": "only"}]}}),
        )
        .expect("patched");
        assert_eq!(out["metadata"]["labels"], json!({"tier": "web"}));
        // Lists are replaced whole.
        assert_eq!(out["spec"]["containers"], json!([{"name": "only"}]));
        assert_eq!(out["metadata"]["name"], "kubia");
    }

    #[test]
    fn merge_patch_bad_bodies() {
        for (body, want) in [
            ("[]", "must be a JSON object"),
            ("3", "must be a JSON object"),
            ("{x", "not valid JSON"),
        ] {
            let e = apply("Pod", &pod(), MERGE_PATCH, body.as_bytes(), None, false);
            assert!(
                matches!(e, Err(KubeError::BadRequest(ref m)) if m.contains(want) && m.contains("Pod")),
                "{body}: {e:?}"
            );
        }
    }

    // -- strategic merge patch ---------------------------------------------

    #[test]
    fn kubectl_client_side_apply_patch() {
        let body = json!({
            "metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"kind\":\"Deployment\"}\n"}},
            "spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "kubia"}, {"name": "sidecar"}],
                "containers": [{"name": "kubia", "image": "x:v2", "ports": null}],
            }}},
        });
        let out = smp("Deployment", &deployment(), body);
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "kubia", "image": "x:v2"}, {"name": "sidecar", "image": "side:v1"}])
        );
        assert_eq!(
            out["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"],
            "{\"kind\":\"Deployment\"}\n"
        );
        assert_eq!(out["spec"]["replicas"], 3);
        assert_eq!(
            out["spec"]["selector"],
            json!({"matchLabels": {"app": "kubia"}})
        );
    }

    #[test]
    fn smp_merges_lists_by_key() {
        let out = smp(
            "Pod",
            &pod(),
            json!({"spec": {"containers": [
                {"name": "sidecar", "image": "side:v2"},
                {"name": "new", "image": "new:v1"},
                {"name": "kubia", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                 "ports": [{"containerPort": 9090}]},
            ]}}),
        );
        let c = &out["spec"]["containers"];
        assert_eq!(c[0]["name"], "kubia");
        assert_eq!(c[0]["image"], "kubia:v1");
        assert_eq!(
            c[0]["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}])
        );
        assert_eq!(
            c[0]["ports"],
            json!([{"containerPort": 8080, "protocol": "TCP"}, {"containerPort": 9090}])
        );
        assert_eq!(c[1], json!({"name": "sidecar", "image": "side:v2"}));
        assert_eq!(c[2], json!({"name": "new", "image": "new:v1"}));
    }

    #[test]
    fn smp_replaces_lists_without_a_key() {
        let out = smp(
            "Pod",
            &pod(),
            json!({"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "y", "operator": "Exists"}])
        );
        // Unknown kinds: lists replaced, maps merged, nulls delete.
        let cm = json!({"kind": "Widget", "spec": {"items": [1, 2], "a": 1, "b": 2}});
        let out = smp(
            "Widget",
            &cm,
            json!({"spec": {"items": [3], "a": null, "c": 3}}),
        );
        assert_eq!(out["spec"], json!({"items": [3], "b": 2, "c": 3}));
    }

    #[test]
    fn smp_delete_and_replace_list_elements() {
        let out = smp(
            "Pod",
            &pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
        );
        assert_eq!(out["spec"]["containers"].as_array().map(Vec::len), Some(1));
        assert_eq!(out["spec"]["containers"][0]["name"], "kubia");

        let out = smp(
            "Pod",
            &pod(),
            json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "solo", "image": "s"}]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "solo", "image": "s"}])
        );
    }

    #[test]
    fn smp_map_directives() {
        let out = smp(
            "Pod",
            &pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "tier": "web"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"tier": "web"}));
        let out = smp(
            "Pod",
            &pod(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
        // $retainKeys keeps only the listed fields of the original.
        let vol = json!({"kind": "Pod", "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
        let out = smp(
            "Pod",
            &vol,
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["hostPath", "name"],
                                         "hostPath": {"path": "/x"}}]}}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "hostPath": {"path": "/x"}}])
        );
        // Directives never reach the object, even where the original had nothing.
        let out = smp(
            "Pod",
            &json!({"kind": "Pod"}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}],
                            "containers": [{"name": "a", "$patch": "merge"}],
                            "securityContext": {"$patch": "replace", "runAsUser": 1}}}),
        );
        assert_eq!(
            out,
            json!({"kind": "Pod", "spec": {"containers": [{"name": "a"}], "securityContext": {"runAsUser": 1}}})
        );
    }

    #[test]
    fn smp_primitive_lists() {
        // metadata.finalizers merges as a set, for every kind.
        let out = smp(
            "Pod",
            &pod(),
            json!({"metadata": {"finalizers": ["c", "a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = smp(
            "ConfigMap",
            &json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"],
                                "$setElementOrder/finalizers": ["c", "a"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a"]));
        let out = smp(
            "Pod",
            &pod(),
            json!({"metadata": {"finalizers": [{"$patch": "replace"}, "z"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["z"]));
    }

    #[test]
    fn smp_set_element_order() {
        let out = smp(
            "Pod",
            &pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "kubia"}]}}),
        );
        assert_eq!(out["spec"]["containers"][0]["name"], "sidecar");
        assert_eq!(out["spec"]["containers"][1]["name"], "kubia");
        // A new element goes where the order puts it.
        let out = smp(
            "Pod",
            &pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "kubia"}, {"name": "mid"}, {"name": "sidecar"}],
                "containers": [{"name": "mid", "image": "m"}]}}),
        );
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["kubia", "mid", "sidecar"]);
    }

    #[test]
    fn smp_merge_key_table() {
        let owner =
            |uid: &str| json!({"apiVersion": "v1", "kind": "ReplicaSet", "name": "rs", "uid": uid});
        let obj = json!({"metadata": {"ownerReferences": [owner("1")]}});
        let out = smp(
            "ConfigMap",
            &obj,
            json!({"metadata": {"ownerReferences": [owner("2")]}}),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().map(Vec::len),
            Some(2)
        );

        let svc = json!({"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}});
        let out = smp(
            "Service",
            &svc,
            json!({"spec": {"ports": [{"port": 443, "targetPort": 8443}]}}),
        );
        assert_eq!(
            out["spec"]["ports"][1],
            json!({"port": 443, "name": "https", "targetPort": 8443})
        );

        let node = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "MemoryPressure", "status": "False"}]}});
        let out = smp(
            "Node",
            &node,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert_eq!(
            out["status"]["conditions"][0],
            json!({"type": "Ready", "status": "True"})
        );
        assert_eq!(
            out["status"]["conditions"].as_array().map(Vec::len),
            Some(2)
        );

        assert_eq!(
            strategy("Pod", &["spec", "containers", "volumeMounts"]),
            Strategy::Keyed("mountPath")
        );
        assert_eq!(
            strategy("Pod", &["spec", "initContainers", "env"]),
            Strategy::Keyed("name")
        );
        assert_eq!(strategy("Pod", &["spec", "tolerations"]), Strategy::Default);
        assert_eq!(
            strategy("Pod", &["status", "containerStatuses"]),
            Strategy::Default
        );
        assert_eq!(
            strategy("Pod", &["status", "conditions"]),
            Strategy::Keyed("type")
        );
        assert_eq!(
            strategy("StatefulSet", &["spec", "template", "spec", "volumes"]),
            Strategy::Keyed("name")
        );
        assert_eq!(
            strategy("Job", &["spec", "template", "spec", "containers", "ports"]),
            Strategy::Keyed("containerPort")
        );
        assert_eq!(
            strategy(
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers"
                ]
            ),
            Strategy::Keyed("name")
        );
        assert_eq!(
            strategy("Deployment", &["status", "conditions"]),
            Strategy::Keyed("type")
        );
        assert_eq!(
            strategy("Node", &["status", "addresses"]),
            Strategy::Keyed("type")
        );
        assert_eq!(
            strategy("Widget", &["metadata", "finalizers"]),
            Strategy::Set
        );
        assert_eq!(
            strategy("Widget", &["spec", "containers"]),
            Strategy::Default
        );
    }

    #[test]
    fn smp_bad_bodies() {
        assert!(smp_err("Pod", &pod(), "[]").contains("must be a JSON object"));
        assert!(smp_err("Pod", &pod(), "nope").contains("not valid JSON"));
        assert!(smp_err("Pod", &pod(), r#"{"$patch":"delete"}"#).contains("whole object"));
        let m = smp_err("Pod", &pod(), r#"{"spec":{"containers":[{"image":"x"}]}}"#);
        assert!(
            m.contains(".spec.containers") && m.contains("merge key \"name\""),
            "{m}"
        );
        assert!(m.starts_with("Pod \"kubia\""), "{m}");
        let m = smp_err("Pod", &pod(), r#"{"spec":{"containers":["x"]}}"#);
        assert!(m.contains("element 0 is a string"), "{m}");
        let m = smp_err(
            "Pod",
            &pod(),
            r#"{"metadata":{"labels":{"$patch":"explode"}}}"#,
        );
        assert!(m.contains("invalid $patch directive"), "{m}");
        let m = smp_err(
            "Pod",
            &pod(),
            r#"{"spec":{"containers":[{"$patch":"delete"}]}}"#,
        );
        assert!(m.contains("needs the merge key"), "{m}");
        let m = smp_err(
            "Pod",
            &pod(),
            r#"{"spec":{"$setElementOrder/containers":3}}"#,
        );
        assert!(m.contains("must be a list"), "{m}");
        let m = smp_err("Pod", &pod(), r#"{"spec":{"$retainKeys":"x"}}"#);
        assert!(m.contains("$retainKeys"), "{m}");
    }

    // -- field sets -------------------------------------------------------

    #[test]
    fn fields_v1_round_trip() {
        let schema = Schema { kind: "Pod" };
        let set = schema.fields_of(&pod(), true).expect("fields");
        let tree = fields_v1_from_set(&set);
        assert_eq!(tree["f:metadata"]["f:labels"], json!({"f:app": {}}));
        assert_eq!(
            tree["f:metadata"]["f:finalizers"],
            json!({"v:\"a\"": {}, "v:\"b\"": {}})
        );
        assert!(tree["f:metadata"].get("f:name").is_none());
        assert!(tree.get("f:kind").is_none());
        let kubia = &tree["f:spec"]["f:containers"]["k:{\"name\":\"kubia\"}"];
        assert_eq!(kubia["."], json!({}));
        assert_eq!(kubia["f:image"], json!({}));
        assert_eq!(
            kubia["f:ports"]["k:{\"containerPort\":8080}"]["f:protocol"],
            json!({})
        );
        assert_eq!(tree["f:spec"]["f:tolerations"], json!({}));
        assert_eq!(set_from_fields_v1(&tree), set);
        assert_eq!(
            display_path(&vec![
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"kubia\"}".into(),
                "f:image".into()
            ]),
            ".spec.containers[name=\"kubia\"].image"
        );
        assert_eq!(
            display_path(&vec![
                "f:metadata".into(),
                "f:finalizers".into(),
                "v:\"a\"".into()
            ]),
            ".metadata.finalizers[=\"a\"]"
        );
    }

    // -- record_update ----------------------------------------------------

    #[test]
    fn record_update_on_create_owns_everything() {
        let out = record_update("kubectl-create", &Value::Null, &pod(), "v1");
        let e = entry(&out, "kubectl-create", "Update").expect("entry");
        assert_eq!(e["apiVersion"], "v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(
            e["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"sidecar\"}"]["f:image"],
            json!({})
        );
        // Everything else about the object is unchanged.
        assert_eq!(without_managed_fields(&out), pod());
    }

    #[test]
    fn record_update_moves_changed_fields() {
        let created = record_update("kubectl-create", &Value::Null, &pod(), "v1");
        let mut edited = created.clone();
        edited["spec"]["containers"][0]["image"] = json!("kubia:v2");
        edited["metadata"]["labels"]["tier"] = json!("web");
        let out = record_update("kubectl-edit", &created, &edited, "v1");
        let edit = entry(&out, "kubectl-edit", "Update").expect("edit entry");
        let image =
            &edit["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"kubia\"}"]["f:image"];
        assert_eq!(image, &json!({}));
        assert_eq!(
            edit["fieldsV1"]["f:metadata"]["f:labels"],
            json!({"f:tier": {}})
        );
        let create = entry(&out, "kubectl-create", "Update").expect("create entry");
        let kubia = &create["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"kubia\"}"];
        assert!(kubia.get("f:image").is_none(), "{kubia}");
        assert!(kubia.get("f:name").is_some());

        // A write that changes nothing changes no entry.
        let again = record_update("kubectl-edit", &out, &out, "v1");
        assert_eq!(
            again["metadata"]["managedFields"],
            out["metadata"]["managedFields"]
        );

        // [] resets the entries: only the writer's changes are recorded.
        let mut reset = out.clone();
        reset["metadata"]["managedFields"] = json!([]);
        reset["metadata"]["labels"]["x"] = json!("y");
        let r = record_update("m", &out, &reset, "v1");
        let mf = r["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(mf.len(), 1);
        assert_eq!(
            mf[0]["fieldsV1"],
            json!({"f:metadata": {"f:labels": {"f:x": {}}}})
        );

        // Removing the only fields a manager owned removes its entry.
        let mut dropped = out.clone();
        if let Some(l) = dropped["metadata"]["labels"].as_object_mut() {
            l.remove("tier");
        }
        dropped["spec"]["containers"][0]["image"] = json!("kubia:v1");
        let d = record_update("other", &out, &dropped, "v1");
        assert!(entry(&d, "kubectl-edit", "Update").is_none());
        assert!(entry(&d, "other", "Update").is_some());
    }

    #[test]
    fn record_update_seeds_untracked_objects() {
        let mut edited = pod();
        edited["metadata"]["labels"]["app"] = json!("other");
        let out = record_update("kubectl-edit", &pod(), &edited, "v1");
        let before = entry(&out, BEFORE_FIRST_APPLY, "Update").expect("seeded");
        assert!(
            before["fieldsV1"]["f:metadata"]["f:labels"]
                .get("f:app")
                .is_none()
        );
        assert!(entry(&out, "kubectl-edit", "Update").is_some());
    }

    // -- server-side apply ------------------------------------------------

    fn applied_pod(image: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubia", "labels": {"app": "kubia"}},
            "spec": {"containers": [{"name": "kubia", "image": image}]},
        })
    }

    #[test]
    fn apply_creates() {
        let out = ssa(&Value::Null, applied_pod("kubia:v1"), "kubectl", false).expect("created");
        assert_eq!(without_managed_fields(&out), applied_pod("kubia:v1"));
        let mf = out["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(mf.len(), 1);
        let e = &mf[0];
        assert_eq!(e["manager"], "kubectl");
        assert_eq!(e["operation"], "Apply");
        assert_eq!(e["apiVersion"], "v1");
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(
            e["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"kubia\"}": {".": {}, "f:image": {}, "f:name": {}}}},
            })
        );
        // YAML works too.
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubia\nspec:\n  containers:\n  - name: kubia\n    image: kubia:v1\n";
        let out = apply(
            "Pod",
            &Value::Null,
            APPLY_PATCH,
            yaml.as_bytes(),
            Some("m"),
            false,
        )
        .expect("yaml");
        assert_eq!(out["spec"]["containers"][0]["image"], "kubia:v1");
    }

    #[test]
    fn apply_updates_and_removes_dropped_fields() {
        let mut applied = applied_pod("kubia:v1");
        applied["metadata"]["labels"]["tier"] = json!("web");
        if let Some(c) = applied["spec"]["containers"].as_array_mut() {
            c.push(json!({"name": "sidecar", "image": "side:v1", "args": ["a"]}));
        }
        let v1 = ssa(&Value::Null, applied, "mgr", false).expect("v1");
        // Fields set by others survive.
        let mut live = v1.clone();
        live["status"] = json!({"phase": "Running"});
        let live = record_update("kubelet", &v1, &live, "v1");

        let v2 = ssa(&live, applied_pod("kubia:v2"), "mgr", false).expect("v2");
        assert_eq!(v2["metadata"]["labels"], json!({"app": "kubia"}));
        assert_eq!(
            v2["spec"]["containers"],
            json!([{"name": "kubia", "image": "kubia:v2"}])
        );
        assert_eq!(v2["status"]["phase"], "Running");
        assert_eq!(v2["metadata"]["name"], "kubia");
        let e = entry(&v2, "mgr", "Apply").expect("apply entry");
        assert!(
            e["fieldsV1"]["f:metadata"]["f:labels"]
                .get("f:tier")
                .is_none()
        );
        assert!(entry(&v2, "kubelet", "Update").is_some());
    }

    #[test]
    fn apply_conflicts_with_other_managers() {
        let created =
            ssa(&Value::Null, applied_pod("kubia:v1"), "kubectl", false).expect("created");
        // Someone else changes the image with a patch.
        let mut edited = created.clone();
        edited["spec"]["containers"][0]["image"] = json!("kubia:edited");
        let live = record_update("kubectl-client-side-apply", &created, &edited, "v1");

        let e = ssa(&live, applied_pod("kubia:v2"), "kubectl", false);
        let Err(KubeError::Conflict {
            message,
            plural,
            name,
            ..
        }) = &e
        else {
            panic!("expected Conflict, got {e:?}");
        };
        assert_eq!(
            message,
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.containers[name=\"kubia\"].image"
        );
        assert_eq!((plural.as_str(), name.as_str()), ("pods", "kubia"));
        assert_eq!(e.as_ref().err().map(KubeError::code), Some(409));

        // Applying the value the other manager set is no conflict: both own it.
        let shared = ssa(&live, applied_pod("kubia:edited"), "kubectl", false).expect("shared");
        let other = entry(&shared, "kubectl-client-side-apply", "Update").expect("other keeps");
        assert!(
            other["fieldsV1"]["f:spec"]["f:containers"]["k:{\"name\":\"kubia\"}"]
                .get("f:image")
                .is_some()
        );

        // With force the field is taken over.
        let forced = ssa(&live, applied_pod("kubia:v2"), "kubectl", true).expect("forced");
        assert_eq!(forced["spec"]["containers"][0]["image"], "kubia:v2");
        assert!(entry(&forced, "kubectl-client-side-apply", "Update").is_none());

        // A field another manager also owns stays when the applier drops it.
        let mut dropped = applied_pod("kubia:edited");
        if let Some(c) = dropped["spec"]["containers"][0].as_object_mut() {
            c.remove("image");
        }
        let kept = ssa(&shared, dropped, "kubectl", false).expect("dropped");
        assert_eq!(kept["spec"]["containers"][0]["image"], "kubia:edited");
    }

    #[test]
    fn apply_lists_several_conflicts() {
        let created = record_update("a", &Value::Null, &applied_pod("kubia:v1"), "v1");
        let mut applied = applied_pod("kubia:v2");
        applied["metadata"]["labels"]["app"] = json!("other");
        let e = ssa(&created, applied, "b", false);
        let Err(KubeError::Conflict { message, .. }) = e else {
            panic!("expected Conflict, got {e:?}");
        };
        assert_eq!(
            message,
            "Apply failed with 2 conflicts: conflicts with \"a\" using v1:\n- .metadata.labels.app\n- .spec.containers[name=\"kubia\"].image"
        );
    }

    #[test]
    fn apply_to_untracked_object_conflicts_with_before_first_apply() {
        let untracked = applied_pod("kubia:v1");
        let e = ssa(&untracked, applied_pod("kubia:v2"), "kubectl", false);
        assert!(
            matches!(e, Err(KubeError::Conflict { ref message, .. }) if message.contains("before-first-apply")),
            "{e:?}"
        );
        let same = ssa(&untracked, applied_pod("kubia:v1"), "kubectl", false).expect("same");
        assert!(entry(&same, "kubectl", "Apply").is_some());
    }

    #[test]
    fn apply_merges_keyed_lists_and_sets() {
        let d = record_update(
            "kube-controller-manager",
            &Value::Null,
            &deployment(),
            "apps/v1",
        );
        let applied = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "kubia", "finalizers": ["mine"]},
            "spec": {"template": {"spec": {"containers": [{"name": "extra", "image": "e"}]}}},
        });
        let out = ssa(&d, applied, "me", false).expect("applied");
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .map(|a| a.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["kubia", "sidecar", "extra"]);
        assert_eq!(out["metadata"]["finalizers"], json!(["mine"]));
        assert_eq!(out["spec"]["replicas"], 3);
        // The selector is atomic for apply: replacing it conflicts as one field.
        let sel = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "kubia"},
                         "spec": {"selector": {"matchLabels": {"app": "x"}}}});
        let e = ssa(&d, sel, "me", false);
        assert!(
            matches!(e, Err(KubeError::Conflict { ref message, .. }) if message.ends_with(".spec.selector")),
            "{e:?}"
        );
    }

    #[test]
    fn apply_keeps_last_applied_in_step_for_kubectl() {
        let mut current = applied_pod("kubia:v1");
        current["metadata"]["annotations"] = json!({LAST_APPLIED: "{}"});
        let current = record_update("kubectl-client-side-apply", &Value::Null, &current, "v1");
        let mut applied = applied_pod("kubia:v1");
        applied["metadata"]["labels"]["new"] = json!("1");
        let out = ssa(&current, applied.clone(), "kubectl", false).expect("applied");
        let last: Value = out["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default();
        assert_eq!(last, applied);
        let other = ssa(&current, applied, "someone", false).expect("applied");
        assert_eq!(other["metadata"]["annotations"][LAST_APPLIED], "{}");
    }

    #[test]
    fn apply_bad_requests() {
        let bad = |current: &Value, body: &str, manager: Option<&str>| -> String {
            match apply("Pod", current, APPLY_PATCH, body.as_bytes(), manager, false) {
                Err(KubeError::BadRequest(m)) => m,
                other => panic!("{body}: expected BadRequest, got {other:?}"),
            }
        };
        let body = applied_pod("x").to_string();
        assert_eq!(
            bad(&Value::Null, &body, None),
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
        assert!(bad(&Value::Null, &body, Some("")).contains("fieldManager: Required value"));
        let long = "m".repeat(129);
        assert!(bad(&Value::Null, &body, Some(&long)).contains("Too long"));
        let m = bad(&Value::Null, "a: [", Some("m"));
        assert!(
            m.contains("neither valid JSON nor valid YAML") && m.starts_with("Pod"),
            "{m}"
        );
        assert!(bad(&Value::Null, "[1]", Some("m")).contains("must be an object"));
        assert!(bad(&Value::Null, "", Some("m")).contains("must be an object"));
        assert!(bad(&Value::Null, "{\"apiVersion\":\"v1\"}", Some("m")).contains("no kind"));
        let m = bad(
            &Value::Null,
            r#"{"apiVersion":"v1","kind":"Secret"}"#,
            Some("m"),
        );
        assert!(m.contains("\"Secret\"") && m.contains("\"Pod\""), "{m}");
        let m = bad(
            &Value::Null,
            r#"{"apiVersion":"apps/v1","kind":"Pod"}"#,
            Some("m"),
        );
        assert!(m.contains("\"apps/v1\"") && m.contains("\"v1\""), "{m}");
        assert!(bad(&Value::Null, r#"{"kind":"Pod"}"#, Some("m")).contains("no apiVersion"));
        let m = bad(
            &pod(),
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"kubia","managedFields":[{}]}}"#,
            Some("m"),
        );
        assert!(
            m.contains("managedFields must be nil") && m.starts_with("Pod \"kubia\""),
            "{m}"
        );
        let m = bad(
            &Value::Null,
            r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"image":"x"}]}}"#,
            Some("m"),
        );
        assert!(m.contains("omits key field \"name\""), "{m}");
        let m = bad(
            &Value::Null,
            r#"{"apiVersion":"v1","kind":"Pod","spec":{"containers":[{"name":"a"},{"name":"a"}]}}"#,
            Some("m"),
        );
        assert!(m.contains("duplicate entries for key [name=\"a\"]"), "{m}");
        assert!(bad(&Value::Null, "\u{0}\u{1}", Some("m")).contains("Pod"));
        let e = apply(
            "Pod",
            &Value::Null,
            APPLY_PATCH,
            &[0xff, 0xfe],
            Some("m"),
            false,
        );
        assert!(matches!(e, Err(KubeError::BadRequest(_))), "{e:?}");
    }

    #[test]
    fn apply_with_nulls_and_empty_values() {
        let mut applied = applied_pod("x");
        applied["spec"]["nodeSelector"] = Value::Null;
        applied["metadata"]["annotations"] = json!({});
        let out = ssa(&Value::Null, applied, "m", false).expect("applied");
        assert!(out["spec"].get("nodeSelector").is_none());
        assert_eq!(out["metadata"]["annotations"], json!({}));
        let e = entry(&out, "m", "Apply").expect("entry");
        assert_eq!(e["fieldsV1"]["f:metadata"]["f:annotations"], json!({}));
    }

    #[test]
    fn apply_is_idempotent() {
        let once = ssa(&Value::Null, applied_pod("kubia:v1"), "m", false).expect("once");
        let twice = ssa(&once, applied_pod("kubia:v1"), "m", false).expect("twice");
        assert_eq!(
            without_managed_fields(&once),
            without_managed_fields(&twice)
        );
        assert_eq!(
            entry(&once, "m", "Apply").map(|e| &e["fieldsV1"]),
            entry(&twice, "m", "Apply").map(|e| &e["fieldsV1"])
        );
    }

    #[test]
    fn smp_kubectl_apply_removes_a_container_and_switches_strategy() {
        let mut d = deployment();
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
        let out = smp(
            "Deployment",
            &d,
            json!({"spec": {
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "kubia"}],
                    "containers": [{"$patch": "delete", "name": "sidecar"}],
                }},
            }}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let containers = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(1));
        assert_eq!(containers[0]["name"], "kubia");
    }

    #[test]
    fn nothing_panics_on_odd_input() {
        let bodies: &[&[u8]] = &[
            b"", b"null", b"1", b"\"s\"", b"[]", b"{}", b"[null]", b"[{}]", b"{\"$patch\":1}",
            b"{\"metadata\":null}", b"{\"metadata\":[]}", b"{\"spec\":{\"containers\":{}}}",
            b"{\"spec\":{\"containers\":[null,1,[]]}}", b"{\"spec\":{\"$retainKeys\":[1]}}",
            b"{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":{}}}",
            b"{\"metadata\":{\"finalizers\":[{\"$patch\":\"delete\"}]}}",
            b"[{\"op\":\"remove\",\"path\":\"\"}]", b"[{\"op\":\"add\",\"path\":\"/a/b/c\",\"value\":1}]",
            b"[{\"op\":\"copy\",\"from\":\"/metadata\",\"path\":\"/metadata/x\"}]",
            b"[{\"op\":\"move\",\"from\":\"/metadata\",\"path\":\"/metadata/x\"}]",
            b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"kubia\",\"finalizers\":[{},[]]}}",
            b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{\"containers\":[{\"name\":null}]}}",
            b"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":[],\"metadata\":\"x\"}",
            b"apiVersion: v1\nkind: Pod\n---\napiVersion: v1\nkind: Pod\n",
            b"apiVersion: v1\nkind: Pod\nmetadata: {name: kubia, labels: {? [1]: 2}}\n",
            b"\xff\xfe",
        ];
        let odd_managed = {
            let mut p = pod();
            p["metadata"]["managedFields"] = json!([1, {"manager": 2, "fieldsV1": "x"},
                {"manager": "m", "operation": "Update", "fieldsV1": {"f:spec": {"f:containers": {"k:oops": {}, "k:{\"name\":\"kubia\"}": {"f:image": 1}}}}}]);
            p
        };
        let currents = [pod(), deployment(), Value::Null, json!({}), odd_managed];
        for current in &currents {
            for body in bodies {
                for ct in [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH] {
                    for force in [false, true] {
                        let _ = apply("Pod", current, ct, body, Some("m"), force);
                    }
                }
            }
            let _ = record_update("m", current, &pod(), "v1");
            let _ = record_update("m", &pod(), current, "v1");
        }
        // Deep nesting is refused by the parsers rather than overflowing.
        let deep_json = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep_yaml = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        for body in [deep_json, deep_yaml] {
            for ct in [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH] {
                let started = std::time::Instant::now();
                assert!(apply("Pod", &pod(), ct, body.as_bytes(), Some("m"), false).is_err());
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(2),
                    "{ct}"
                );
            }
        }
        // So are YAML alias bombs.
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for (i, prev) in ["b", "c", "d", "e", "f", "g", "h", "i", "j"]
            .iter()
            .zip(["a", "b", "c", "d", "e", "f", "g", "h", "i"])
        {
            bomb.push_str(&format!("{i}: &{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let started = std::time::Instant::now();
        let _ = apply(
            "Pod",
            &Value::Null,
            APPLY_PATCH,
            bomb.as_bytes(),
            Some("m"),
            false,
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}
