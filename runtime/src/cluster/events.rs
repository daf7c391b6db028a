//! Recording Events (core/v1) about objects, as the kubelet and the
//! controllers emit them: a repeat of the same reason and message on the
//! same object bumps `count` and `lastTimestamp` instead of adding one (the
//! event's name is its object's name plus a hash of what it says, so a
//! repeat is found with one read).

use serde_json::{Value, json};

use sha2::{Digest as _, Sha256};

use super::store::{Batch, Store, now};
use crate::kube::resources::by_plural;
use crate::kube::{KubeError, Resource};

/// Who reports an event.
#[derive(Debug, Clone, Copy)]
pub struct Source {
    pub component: &'static str,
    pub host: &'static str,
}

/// Records `reason`/`message` about `obj` (a Normal or Warning event).
/// `field_path` names a container: `spec.containers{kubia}`.
///
/// The write is queued (`Store::defer`), as the kubelet's and the
/// controllers' event broadcaster sends events without waiting for them:
/// it lands with the next write to the store, before it, so an event is
/// never seen after a change made once it was recorded.
pub fn record(
    store: &Store,
    source: Source,
    obj: &Value,
    field_path: Option<&str>,
    warning: bool,
    reason: &str,
    message: &str,
) {
    let Some(events) = by_plural("", "v1", "events") else {
        return;
    };
    let meta = &obj["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or("default").to_string();
    let name = meta["name"].as_str().unwrap_or_default();
    let uid = meta["uid"].as_str().unwrap_or_default();
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
    store.defer(
        None,
        Box::new(move |b| {
            if let Err(e) = write(b, events, &namespace, &event_name, &t, event) {
                tracing::debug!(event = %event_name, error = %e, "cannot record an event");
            }
        }),
    );
}

/// Counts a repeat, or stores the new event.
fn write(
    b: &mut Batch<'_>,
    events: &'static Resource,
    namespace: &str,
    event_name: &str,
    t: &str,
    event: Value,
) -> Result<(), KubeError> {
    // Nothing is recorded in a namespace that is gone or going.
    if let Some(namespaces) = by_plural("", "v1", "namespaces") {
        match b.try_get(namespaces, None, namespace) {
            Some(ns) if ns["metadata"].get("deletionTimestamp").is_none() => {}
            _ => return Ok(()),
        }
    }
    let counted = b.modify(events, Some(namespace), event_name, |e| {
        let count = e["count"].as_i64().unwrap_or(1) + 1;
        e["count"] = json!(count);
        e["lastTimestamp"] = json!(t);
        Ok(true)
    })?;
    if counted.is_some() {
        return Ok(());
    }
    match b.create(events, event) {
        Ok(_) | Err(KubeError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
