//! The namespace controller: a namespace being deleted has every object
//! in it deleted (pods gracefully, through the node agent), and is removed
//! once it is empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cluster::admission;
use crate::cluster::store::{Event, EventType, Store};
use crate::kube::resources::{RESOURCES, by_plural};
use crate::kube::{KubeError, Resource};

fn namespaces() -> Option<&'static Resource> {
    by_plural("", "v1", "namespaces")
}

fn terminating(ns: &Value) -> bool {
    ns["metadata"].get("deletionTimestamp").is_some()
}

pub async fn run(store: Arc<Store>, cancel: CancellationToken) {
    let Some(ns_res) = namespaces() else { return };
    super::driver::run(store, cancel, Namespaces { ns_res }).await;
}

struct Namespaces {
    ns_res: &'static Resource,
}

impl super::driver::Controller for Namespaces {
    type Key = String;
    const NAME: &'static str = "namespace";

    fn all(&mut self, store: &Store, keys: &mut BTreeSet<String>) {
        if let Ok(list) = store.list_where(self.ns_res, None, terminating) {
            keys.extend(
                list.iter()
                    .filter_map(|ns| ns["metadata"]["name"].as_str().map(str::to_string)),
            );
        }
    }

    fn changed(&mut self, store: &Store, e: &Event, keys: &mut BTreeSet<String>) {
        if e.resource == self.ns_res {
            if e.kind != EventType::Deleted && terminating(&e.object) {
                keys.insert(e.name.clone());
            }
        } else if e.kind == EventType::Deleted && e.resource.namespaced {
            // Something left a namespace: it may be empty now.
            let terminating_ns = store
                .try_get(self.ns_res, None, &e.namespace)
                .ok()
                .flatten()
                .is_some_and(|n| terminating(&n));
            if terminating_ns {
                keys.insert(e.namespace.clone());
            }
        }
    }

    fn reconcile(&mut self, store: &Store, name: &String) -> Result<(), KubeError> {
        reconcile(store, name)
    }
}

/// Deletes what is left in a terminating namespace; removes it when
/// nothing is.
fn reconcile(store: &Store, name: &str) -> Result<(), KubeError> {
    let Some(ns_res) = namespaces() else {
        return Ok(());
    };
    let Some(ns) = store.try_get(ns_res, None, name)? else {
        return Ok(());
    };
    if !terminating(&ns) {
        return Ok(());
    }
    let mut left = 0usize;
    for res in RESOURCES.iter().filter(|r| r.namespaced) {
        let (items, _) = store.list(res, Some(name))?;
        for obj in items {
            left += 1;
            if obj["metadata"].get("deletionTimestamp").is_some() {
                continue;
            }
            match admission::delete(store, res, &obj, None, Some("Background")) {
                Ok((_, true)) => left -= 1,
                Ok((_, false)) | Err(KubeError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    if left == 0 {
        match store.delete(ns_res, None, name, ns["metadata"]["uid"].as_str()) {
            Ok(_) | Err(KubeError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
