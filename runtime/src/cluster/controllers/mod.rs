//! Controllers: level-triggered reconcilers that read and write objects
//! through the store only, as Kubernetes' controllers talk to the API
//! server. Each one looks at everything at its start, then at what each
//! change touches, so it converges from whatever is stored.

pub mod deployment;
mod driver;
pub mod endpoints;
pub mod gc;
pub mod job;
pub mod namespace;
pub mod replication;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::store::{Event, Store};

/// An object as controllers queue it: its resource's plural, namespace
/// ("" when cluster-scoped) and name.
pub type ObjectKey = (&'static str, String, String);

pub fn object_key(res: &'static crate::kube::Resource, o: &serde_json::Value) -> ObjectKey {
    let field = |f: &str| o["metadata"][f].as_str().unwrap_or_default().to_string();
    (res.plural, field("namespace"), field("name"))
}

/// The (namespace, name) of the `kind` that controls the changed object,
/// from its controller ownerReference.
pub fn controller_of(e: &Event, kind: &str) -> Option<(String, String)> {
    let owner = e.object["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true && r["kind"] == kind)?;
    Some((
        e.namespace.clone(),
        owner["name"].as_str().unwrap_or_default().to_string(),
    ))
}

/// Writes what a controller observed as the object's status, unless it
/// is already that.
pub fn write_status(
    store: &Store,
    res: &'static crate::kube::Resource,
    ns: &str,
    name: &str,
    status: &serde_json::Value,
) -> Result<(), crate::kube::KubeError> {
    store.modify(res, Some(ns), name, |o| {
        if o["status"] == *status {
            return Ok(false);
        }
        o["status"] = status.clone();
        Ok(true)
    })?;
    Ok(())
}

/// Starts every controller; they run until `cancel`.
pub fn start(store: &Arc<Store>, cancel: &CancellationToken) {
    tokio::spawn(namespace::run(store.clone(), cancel.clone()));
    tokio::spawn(replication::run(store.clone(), cancel.clone()));
    tokio::spawn(gc::run(store.clone(), cancel.clone()));
    tokio::spawn(endpoints::run(store.clone(), cancel.clone()));
    tokio::spawn(deployment::run(store.clone(), cancel.clone()));
    tokio::spawn(job::run(store.clone(), cancel.clone()));
}
