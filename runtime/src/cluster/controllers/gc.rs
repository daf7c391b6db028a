//! The garbage collector: objects whose owners (ownerReferences) are all
//! gone are deleted. A deletion with `propagationPolicy: Orphan` marks the
//! owner with the `orphan` finalizer: its dependents lose their reference
//! to it, then it goes. `Foreground` marks it with `foregroundDeletion`:
//! its dependents are deleted first, then it goes. `Background` (the
//! default) deletes the owner at once, and its dependents after.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::admission;
use crate::cluster::store::{Event, EventType, Store};
use crate::kube::resources::RESOURCES;
use crate::kube::{KubeError, Resource};

pub const ORPHAN: &str = "orphan";
pub const FOREGROUND: &str = "foregroundDeletion";

fn owner_uids(o: &Value) -> Vec<String> {
    o["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(str::to_string))
        .collect()
}

fn has_finalizer(o: &Value, f: &str) -> bool {
    o["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == f))
}

/// What needs a look.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Work {
    /// A dependent whose owners may be gone.
    Dependent(&'static str, String, String),
    /// An owner marked for Orphan or Foreground deletion.
    Owner(&'static str, String, String),
}

type ObjKey = super::ObjectKey;

/// Owner uid → the objects that name it, kept from the store's events.
#[derive(Default)]
struct Index {
    by_owner: BTreeMap<String, BTreeSet<ObjKey>>,
    owners_of: BTreeMap<ObjKey, Vec<String>>,
}

impl Index {
    fn set(&mut self, key: ObjKey, owners: Vec<String>) {
        self.remove(&key);
        if owners.is_empty() {
            return;
        }
        for u in &owners {
            self.by_owner
                .entry(u.clone())
                .or_default()
                .insert(key.clone());
        }
        self.owners_of.insert(key, owners);
    }

    fn remove(&mut self, key: &ObjKey) {
        if let Some(old) = self.owners_of.remove(key) {
            for u in old {
                if let Some(set) = self.by_owner.get_mut(&u) {
                    set.remove(key);
                    if set.is_empty() {
                        self.by_owner.remove(&u);
                    }
                }
            }
        }
    }
}

pub async fn run(store: Arc<Store>, cancel: CancellationToken) {
    let c = Collector {
        index: Index::default(),
    };
    super::driver::run(store, cancel, c).await;
}

/// The collector keeps its owner index from the store's events.
struct Collector {
    index: Index,
}

impl super::driver::Controller for Collector {
    type Key = Work;
    const NAME: &'static str = "garbage collector";

    fn all(&mut self, store: &Store, keys: &mut BTreeSet<Work>) {
        self.index = Index::default();
        for res in RESOURCES {
            if let Ok((items, _)) = store.list(res, None) {
                for o in &items {
                    let owners = owner_uids(o);
                    if !owners.is_empty() {
                        let key = super::object_key(res, o);
                        keys.insert(Work::Dependent(key.0, key.1.clone(), key.2.clone()));
                        self.index.set(key, owners);
                    }
                    if o["metadata"].get("deletionTimestamp").is_some()
                        && (has_finalizer(o, ORPHAN) || has_finalizer(o, FOREGROUND))
                    {
                        keys.insert(owner_work(res, o));
                    }
                }
            }
        }
    }

    fn changed(&mut self, store: &Store, e: &Event, keys: &mut BTreeSet<Work>) {
        let o = &e.object;
        let key = super::object_key(e.resource, o);
        if e.kind == EventType::Deleted {
            self.index.remove(&key);
            // Its dependents may be orphans now, and an owner waiting on it
            // (in the foreground) may go.
            let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
            for d in self.index.by_owner.get(uid).into_iter().flatten() {
                keys.insert(Work::Dependent(d.0, d.1.clone(), d.2.clone()));
            }
            for owner in owner_uids(o) {
                keys.extend(foreground_owners(store, &owner, &e.namespace));
            }
            return;
        }
        let owners = owner_uids(o);
        if e.kind == EventType::Added && !owners.is_empty() {
            // A dependent created after its owner went.
            keys.insert(Work::Dependent(key.0, key.1.clone(), key.2.clone()));
        }
        self.index.set(key, owners);
        if o["metadata"].get("deletionTimestamp").is_some()
            && (has_finalizer(o, ORPHAN) || has_finalizer(o, FOREGROUND))
        {
            keys.insert(owner_work(e.resource, o));
        }
    }

    fn reconcile(&mut self, store: &Store, work: &Work) -> Result<(), KubeError> {
        match work {
            Work::Dependent(plural, ns, name) => check_dependent(store, plural, ns, name),
            Work::Owner(plural, ns, name) => finish_owner(store, &self.index, plural, ns, name),
        }
    }
}

fn owner_work(res: &'static Resource, o: &Value) -> Work {
    let (plural, ns, name) = super::object_key(res, o);
    Work::Owner(plural, ns, name)
}

/// The owner with this uid, when it is being deleted in the foreground.
fn foreground_owners(store: &Store, uid: &str, ns: &str) -> Vec<Work> {
    let mut out = Vec::new();
    for res in RESOURCES
        .iter()
        .filter(|r| !matches!(r.kind, "Pod" | "Event"))
    {
        let scope = if res.namespaced { Some(ns) } else { None };
        let found = store.list_where(res, scope, |o| {
            o["metadata"]["uid"] == uid && has_finalizer(o, FOREGROUND)
        });
        out.extend(found.iter().flatten().map(|o| owner_work(res, o)));
    }
    out
}

/// Whether the owner an ownerReference names still exists (same uid).
fn owner_alive(store: &Store, ns: &str, r: &Value) -> Result<bool, KubeError> {
    let api_version = r["apiVersion"].as_str().unwrap_or_default();
    let kind = r["kind"].as_str().unwrap_or_default();
    let Some(res) = crate::kube::resources::by_kind(api_version, kind) else {
        // A kind wrun does not serve: leave it be.
        return Ok(true);
    };
    let scope = if res.namespaced { Some(ns) } else { None };
    let name = r["name"].as_str().unwrap_or_default();
    Ok(store
        .try_get(res, scope, name)?
        .is_some_and(|o| o["metadata"]["uid"] == r["uid"]))
}

/// Deletes a dependent whose owners are all gone, or drops its references
/// to the owners that are gone.
fn check_dependent(store: &Store, plural: &str, ns: &str, name: &str) -> Result<(), KubeError> {
    let Some(res) = RESOURCES.iter().find(|r| r.plural == plural) else {
        return Ok(());
    };
    let scope = if res.namespaced { Some(ns) } else { None };
    let Some(o) = store.try_get(res, scope, name)? else {
        return Ok(());
    };
    let refs: Vec<Value> = o["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if refs.is_empty() {
        return Ok(());
    }
    let mut alive = Vec::new();
    for r in &refs {
        if owner_alive(store, ns, r)? {
            alive.push(r.clone());
        }
    }
    if alive.len() == refs.len() {
        return Ok(());
    }
    if alive.is_empty() {
        if o["metadata"].get("deletionTimestamp").is_none() {
            match admission::delete(store, res, &o, None, Some("Background")) {
                Ok(_) | Err(KubeError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    }
    store.modify(res, scope, name, |cur| {
        cur["metadata"]["ownerReferences"] = json!(alive);
        Ok(true)
    })?;
    Ok(())
}

/// The dependents of an owner, from the index.
fn dependents(
    store: &Store,
    index: &Index,
    uid: &str,
) -> Result<Vec<(&'static Resource, Value)>, KubeError> {
    let mut out = Vec::new();
    for (plural, ns, name) in index.by_owner.get(uid).into_iter().flatten() {
        let Some(res) = RESOURCES.iter().find(|r| r.plural == *plural) else {
            continue;
        };
        let scope = if res.namespaced {
            Some(ns.as_str())
        } else {
            None
        };
        if let Some(o) = store.try_get(res, scope, name)? {
            out.push((res, o));
        }
    }
    Ok(out)
}

fn remove_finalizer(
    store: &Store,
    res: &'static Resource,
    ns: &str,
    name: &str,
    f: &str,
) -> Result<(), KubeError> {
    let scope = if res.namespaced { Some(ns) } else { None };
    store.modify(res, scope, name, |o| {
        let list: Vec<Value> = o["metadata"]["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| *x != f)
            .cloned()
            .collect();
        o["metadata"]["finalizers"] = json!(list);
        Ok(true)
    })?;
    Ok(())
}

/// An owner deleted with Orphan or Foreground propagation.
fn finish_owner(
    store: &Store,
    index: &Index,
    plural: &str,
    ns: &str,
    name: &str,
) -> Result<(), KubeError> {
    let Some(res) = RESOURCES.iter().find(|r| r.plural == plural) else {
        return Ok(());
    };
    let scope = if res.namespaced { Some(ns) } else { None };
    let Some(owner) = store.try_get(res, scope, name)? else {
        return Ok(());
    };
    let uid = owner["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let deps = dependents(store, index, &uid)?;
    if has_finalizer(&owner, ORPHAN) {
        for (dres, d) in &deps {
            let dns = d["metadata"]["namespace"].as_str().map(str::to_string);
            let dname = d["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            store.modify(dres, dns.as_deref(), &dname, |cur| {
                let refs: Vec<Value> = cur["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["uid"] != uid.as_str())
                    .cloned()
                    .collect();
                cur["metadata"]["ownerReferences"] = json!(refs);
                Ok(true)
            })?;
        }
        return remove_finalizer(store, res, ns, name, ORPHAN);
    }
    if has_finalizer(&owner, FOREGROUND) {
        if deps.is_empty() {
            return remove_finalizer(store, res, ns, name, FOREGROUND);
        }
        for (dres, d) in deps {
            if d["metadata"].get("deletionTimestamp").is_none() {
                match admission::delete(store, dres, &d, None, Some("Foreground")) {
                    Ok(_) | Err(KubeError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(())
}
