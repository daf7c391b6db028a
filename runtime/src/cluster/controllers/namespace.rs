//! The namespace controller: a namespace being deleted has every object
//! in it deleted (pods gracefully, through the node agent), and is removed
//! once it is empty.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::cluster::admission;
use crate::cluster::store::{EventType, Store};
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
    let mut rx = store.subscribe();
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let all = |pending: &mut BTreeSet<String>| {
        if let Ok((list, _)) = store.list(ns_res, None) {
            for ns in list.iter().filter(|n| terminating(n)) {
                if let Some(name) = ns["metadata"]["name"].as_str() {
                    pending.insert(name.to_string());
                }
            }
        }
    };
    all(&mut pending);
    loop {
        for name in std::mem::take(&mut pending) {
            if let Err(e) = reconcile(&store, &name) {
                tracing::warn!(namespace = %name, error = %e, "namespace controller");
            }
        }
        let event = tokio::select! {
            e = rx.recv() => e,
            () = cancel.cancelled() => return,
        };
        match event {
            Ok(e) if e.resource == ns_res => {
                if e.kind != EventType::Deleted && terminating(&e.object) {
                    pending.insert(e.name.clone());
                }
            }
            // Something left a namespace: it may be empty now.
            Ok(e) if e.kind == EventType::Deleted && e.resource.namespaced => {
                let terminating_ns = store
                    .try_get(ns_res, None, &e.namespace)
                    .ok()
                    .flatten()
                    .is_some_and(|n| terminating(&n));
                if terminating_ns {
                    pending.insert(e.namespace.clone());
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => all(&mut pending),
            Err(RecvError::Closed) => return,
        }
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
