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
    let (namespace, name) = name_key(o);
    (res.plural, namespace, name)
}

/// An object's namespace and name: how controllers of one kind queue it.
pub fn name_key(o: &serde_json::Value) -> (String, String) {
    let field = |f: &str| o["metadata"][f].as_str().unwrap_or_default().to_string();
    (field("namespace"), field("name"))
}

/// The owner a change concerns, for a controller of `owners` whose
/// dependents are `dependents`: the owner itself (unless it was deleted),
/// or a dependent's controller of the owners' kind.
pub fn owner_key(
    e: &Event,
    owners: &'static crate::kube::Resource,
    dependents: &'static crate::kube::Resource,
) -> Option<(String, String)> {
    if e.resource == owners {
        (e.kind != super::store::EventType::Deleted).then(|| name_key(&e.object))
    } else if e.resource == dependents {
        controller_of(e, owners.kind)
    } else {
        None
    }
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
