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

use super::store::Store;

/// An object as controllers queue it: its resource's plural, namespace
/// ("" when cluster-scoped) and name.
pub type ObjectKey = (&'static str, String, String);

pub fn object_key(res: &'static crate::kube::Resource, o: &serde_json::Value) -> ObjectKey {
    let field = |f: &str| o["metadata"][f].as_str().unwrap_or_default().to_string();
    (res.plural, field("namespace"), field("name"))
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
