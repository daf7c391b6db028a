//! Recording Events (core/v1) about objects, as the kubelet and the
//! controllers emit them: a repeat of the same reason and message on the
//! same object bumps `count` and `lastTimestamp` instead of adding one (the
//! event's name is its object's name plus a hash of what it says, so a
//! repeat is found with one read).

use serde_json::{Value, json};

use sha2::{Digest as _, Sha256};

use super::store::{Store, now};
use crate::kube::KubeError;
use crate::kube::resources::by_plural;

/// Who reports an event.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub component: &'static str,
    pub host: &'static str,
}

/// Records `reason`/`message` about `obj` (a Normal or Warning event).
/// `field_path` names a container: `spec.containers{kubia}`.
pub fn record(
    store: &Store,
    source: Source,
    obj: &Value,
    field_path: Option<&str>,
    warning: bool,
    reason: &str,
    message: &str,
) -> Result<(), KubeError> {
    let events = by_plural("", "v1", "events").ok_or_else(|| KubeError::internal("no events"))?;
    let meta = &obj["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
    let name = meta["name"].as_str().unwrap_or_default();
    let uid = meta["uid"].as_str().unwrap_or_default();
    // Nothing is recorded in a namespace that is gone or going.
    if let Some(namespaces) = by_plural("", "v1", "namespaces") {
        match store.try_get(namespaces, None, &namespace)? {
            Some(ns) if ns["metadata"].get("deletionTimestamp").is_none() => {}
            _ => return Ok(()),
        }
    }
    let t = now();
    // The same event again (same object, reason, message and field) has
    // the same name: it is counted rather than added, with one read.
    let mut key = Sha256::new();
    for part in [
        uid,
        reason,
        message,
        field_path.unwrap_or_default(),
        source.component,
    ] {
        key.update(part.as_bytes());
        key.update([0]);
    }
    let digest = key.finalize();
    let event_name = format!("{name}.{}", hex::encode(&digest[..8]));
    let counted = store.modify(events, Some(&namespace), &event_name, |e| {
        let count = e["count"].as_i64().unwrap_or(1) + 1;
        e["count"] = json!(count);
        e["lastTimestamp"] = json!(t);
        Ok(true)
    })?;
    if counted.is_some() {
        return Ok(());
    }
    let mut involved = json!({
        "kind": obj["kind"],
        "namespace": namespace,
        "name": name,
        "uid": uid,
        "apiVersion": obj["apiVersion"],
        "resourceVersion": meta["resourceVersion"],
    });
    if let Some(fp) = field_path {
        involved["fieldPath"] = json!(fp);
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": event_name,
            "namespace": namespace,
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": {"component": source.component, "host": source.host},
        "firstTimestamp": t,
        "lastTimestamp": t,
        "count": 1,
        "type": if warning { "Warning" } else { "Normal" },
        "eventTime": null,
        "reportingComponent": source.component,
        "reportingInstance": source.host,
    });
    match store.create(events, event) {
        Ok(_) | Err(KubeError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
