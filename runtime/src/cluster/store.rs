//! The cluster's objects: JSON documents in SQLite under one global,
//! monotonic resourceVersion, and a watch hub that streams every change.
//!
//! Every write runs in one SQLite transaction that also bumps the counter,
//! and its watch event is published while the store's lock is still held,
//! so watchers see changes in resourceVersion order with no gaps. The hub
//! keeps a bounded history: a watch may resume from any resourceVersion it
//! still covers; older ones get 410 Gone, and the client lists again (as
//! with an etcd compaction).
//!
//! SQLite is the durable copy; every object also lives in memory, parsed,
//! in an ordered map that mirrors the table under the same lock (as the
//! API server's watch cache fronts etcd). Reads and lists come from that
//! mirror, so controllers that look at every pod of a namespace on each
//! change pay no query and no JSON parsing.
//!
//! The store knows nothing of HTTP; it speaks `KubeError` because those
//! are the errors its callers (the API, controllers, the node agent) pass
//! on.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{SecondsFormat, Utc};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::kube::{KubeError, Resource};
use crate::state::{CachedSql, Db, StateRoot};

/// How many changes the hub remembers for watches that resume.
const HISTORY: usize = 20_000;
/// How many changes a watcher may fall behind the live stream before it
/// must catch up from the history (and, past the history, end with 410
/// Gone).
const CHANNEL: usize = 8_192;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as the watch hub publishes it.
#[derive(Debug, Clone)]
pub struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub resource: &'static Resource,
    pub namespace: String,
    pub name: String,
    /// The object after the change (before it, for a deletion, with the
    /// deletion's resourceVersion).
    pub object: Arc<Value>,
    /// The object before an update: a filtered watch needs it to tell a
    /// change into or out of its selection.
    pub prev: Option<Arc<Value>>,
}

/// The store. Cheap to share (`Arc`).
pub struct Store {
    db: Mutex<Objects>,
    hub: Arc<Mutex<Hub>>,
    tx: broadcast::Sender<Arc<Event>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Above every namespace and name, as a bound for ranges of the mirror.
const MAX: &str = "\u{10ffff}";

/// Where an object sits in the mirror: its resource's qualified plural,
/// its namespace ("" when cluster-scoped) and its name.
type Key = (String, String, String);

/// The database and its in-memory mirror, locked together so they never
/// disagree.
struct Objects {
    db: Db,
    mirror: BTreeMap<Key, Arc<Value>>,
}

struct Hub {
    /// How many changes `history` keeps.
    capacity: usize,
    /// The last resourceVersion written.
    rv: u64,
    /// Watches may resume from any resourceVersion ≥ this one.
    oldest: u64,
    history: VecDeque<Arc<Event>>,
}

/// A page of a list.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Value>,
    /// The store's resourceVersion when the list began.
    pub rv: u64,
    /// Where the next page starts, when there is one.
    pub next: Option<String>,
    /// How many objects remain after this page.
    pub remaining: u64,
}

/// A watch: the changes it asked for, from the resourceVersion it named.
#[derive(Debug)]
pub struct Watch {
    backlog: VecDeque<Arc<Event>>,
    rx: broadcast::Receiver<Arc<Event>>,
    resource: &'static Resource,
    namespace: Option<String>,
    /// The last change the live stream brought (of any resource): where
    /// to catch up from after a lag.
    seen: u64,
    hub: std::sync::Weak<Mutex<Hub>>,
    tx: broadcast::WeakSender<Arc<Event>>,
}

/// Why a watch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEnd {
    /// The watcher fell behind further than the history reaches: it must
    /// list again (the API sends 410 Gone, as after an etcd compaction).
    Gone(String),
    /// The store went away.
    Closed,
}

impl Watch {
    /// The next change. A watcher that falls behind the live stream
    /// catches up from the history, so it misses nothing; past what the
    /// history holds, it ends with `Gone`.
    pub async fn next(&mut self) -> Result<Arc<Event>, WatchEnd> {
        loop {
            if let Some(e) = self.backlog.pop_front() {
                return Ok(e);
            }
            match self.rx.recv().await {
                // Already delivered from the history while catching up.
                Ok(e) if e.rv <= self.seen => continue,
                Ok(e) => {
                    self.seen = e.rv;
                    if self.wants(&e) {
                        return Ok(e);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up()?,
                Err(broadcast::error::RecvError::Closed) => return Err(WatchEnd::Closed),
            }
        }
    }

    /// After a lag: what the history holds since the last change seen, and
    /// a fresh subscription from the end of it.
    fn catch_up(&mut self) -> Result<(), WatchEnd> {
        let (Some(hub), Some(tx)) = (self.hub.upgrade(), self.tx.upgrade()) else {
            return Err(WatchEnd::Closed);
        };
        let hub = lock(&hub);
        if self.seen < hub.oldest {
            return Err(WatchEnd::Gone(format!(
                "the watch fell behind: resource version {} is older than the oldest kept ({})",
                self.seen, hub.oldest
            )));
        }
        // Changes are published under the hub's lock: subscribing under it
        // starts exactly after the last one in the history.
        self.rx = tx.subscribe();
        self.backlog = hub
            .history
            .iter()
            .filter(|e| e.rv > self.seen && self.wants(e))
            .cloned()
            .collect();
        self.seen = hub.rv;
        Ok(())
    }

    fn wants(&self, e: &Event) -> bool {
        e.resource == self.resource && self.namespace.as_deref().is_none_or(|ns| e.namespace == ns)
    }
}

fn db_err(e: impl std::fmt::Display) -> KubeError {
    KubeError::internal(format!("object store: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Kubernetes' timestamp format: RFC 3339, in seconds, UTC.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A random UUID (version 4), as object uids are.
pub fn new_uid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy: fall back on the clock, still unique per call.
        let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128;
        b = t.to_le_bytes();
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `generateName`'s suffix: five characters from the alphabet Kubernetes
/// uses (no vowels, no look-alikes).
pub fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut raw = vec![0u8; len];
    let _ = getrandom::fill(&mut raw);
    raw.iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn ns_key(res: &Resource, namespace: Option<&str>) -> String {
    if res.namespaced {
        namespace.unwrap_or_default().to_string()
    } else {
        String::new()
    }
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Whether two versions of an object differ outside metadata and status:
/// what bumps `metadata.generation`.
///
/// Compared in place: a pod's status is rewritten often, and copying both
/// objects to strip it cost more than the comparison.
fn spec_changed(old: &Value, new: &Value) -> bool {
    let (Some(a), Some(b)) = (old.as_object(), new.as_object()) else {
        return old != new;
    };
    let counted = |k: &String| k != "metadata" && k != "status";
    a.keys().filter(|k| counted(k)).count() != b.keys().filter(|k| counted(k)).count()
        || a.iter()
            .filter(|(k, _)| counted(k))
            .any(|(k, v)| b.get(k) != Some(v))
}

/// Kinds whose objects carry `metadata.generation`.
fn has_generation(res: &Resource) -> bool {
    !matches!(
        res.kind,
        "ConfigMap" | "Secret" | "Event" | "ServiceAccount" | "Endpoints" | "Namespace"
    )
}

impl Store {
    pub fn open(root: &StateRoot) -> Result<Arc<Self>, KubeError> {
        Self::open_sized(root, HISTORY, CHANNEL)
    }

    /// `open` with a history of `history` changes and a live stream that a
    /// watcher may fall `channel` changes behind (small ones in tests).
    fn open_sized(
        root: &StateRoot,
        history: usize,
        channel: usize,
    ) -> Result<Arc<Self>, KubeError> {
        let db = root.db().map_err(db_err)?;
        let rv: u64 = db
            .conn()
            .row("SELECT value FROM kube_meta WHERE key = 'rv'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(db_err)?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut mirror = BTreeMap::new();
        {
            let mut stmt = db
                .conn()
                .prepare_cached("SELECT resource, namespace, name, body FROM kube_objects")
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(db_err)?;
            for row in rows {
                let (res, ns, name, body) = row.map_err(db_err)?;
                let obj: Value = serde_json::from_str(&body)
                    .map_err(|e| db_err(format!("{res} {ns}/{name}: {e}")))?;
                mirror.insert((res, ns, name), Arc::new(obj));
            }
        }
        let (tx, _) = broadcast::channel(channel);
        Ok(Arc::new(Self {
            db: Mutex::new(Objects { db, mirror }),
            hub: Arc::new(Mutex::new(Hub {
                capacity: history,
                rv,
                oldest: rv,
                history: VecDeque::new(),
            })),
            tx,
        }))
    }

    /// The last resourceVersion written.
    pub fn rv(&self) -> u64 {
        lock(&self.hub).rv
    }

    /// A setting kept beside the objects (whether the cluster is on, its
    /// port, ...).
    pub fn setting(&self, key: &str) -> Result<Option<String>, KubeError> {
        lock(&self.db)
            .db
            .conn()
            .row(
                "SELECT value FROM kube_meta WHERE key = ?1",
                params![format!("setting.{key}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(db_err)
    }

    pub fn set_setting(&self, key: &str, value: Option<&str>) -> Result<(), KubeError> {
        let db = &lock(&self.db).db;
        let key = format!("setting.{key}");
        match value {
            Some(v) => db.conn().exec(
                "INSERT INTO kube_meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, v],
            ),
            None => db
                .conn()
                .exec("DELETE FROM kube_meta WHERE key = ?1", params![key]),
        }
        .map_err(db_err)?;
        Ok(())
    }

    pub fn get(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, KubeError> {
        self.try_get(res, namespace, name)?
            .ok_or_else(|| not_found(res, name))
    }

    pub fn try_get(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, KubeError> {
        Ok(Self::read(&lock(&self.db), res, namespace, name))
    }

    /// Every object of a resource (in one namespace, or all), ordered by
    /// namespace and name, with the resourceVersion the list reflects.
    pub fn list(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
    ) -> Result<(Vec<Value>, u64), KubeError> {
        let page = self.page(res, namespace, None, 0, &|_| true)?;
        Ok((page.items, page.rv))
    }

    /// The objects of a resource (in one namespace, or all) that pass
    /// `filter`, shared with the mirror rather than copied (what
    /// controllers read on every change).
    pub fn list_where(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        filter: impl Fn(&Value) -> bool,
    ) -> Result<Vec<Arc<Value>>, KubeError> {
        let objects = lock(&self.db);
        let q = res.qualified_plural();
        let range = match namespace.filter(|_| res.namespaced) {
            Some(ns) => (
                (q.clone(), ns.to_string(), String::new()),
                (q.clone(), ns.to_string(), MAX.to_string()),
            ),
            None => (
                (q.clone(), String::new(), String::new()),
                (q.clone(), MAX.to_string(), String::new()),
            ),
        };
        Ok(objects
            .mirror
            .range(range.0..=range.1)
            .filter(|(_, o)| filter(o))
            .map(|(_, o)| o.clone())
            .collect())
    }

    /// One page of a list: at most `limit` objects (0: all) that pass
    /// `filter`, after the continue token `after`.
    pub fn page(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        after: Option<&str>,
        limit: usize,
        filter: &dyn Fn(&Value) -> bool,
    ) -> Result<Page, KubeError> {
        let (start_rv, after_key) = match after {
            Some(token) => {
                let (rv, key) = decode_continue(token)?;
                (Some(rv), Some(key))
            }
            None => (None, None),
        };
        let objects = lock(&self.db);
        let rv = start_rv.unwrap_or_else(|| lock(&self.hub).rv);
        let q = res.qualified_plural();
        let (from, to) = match namespace.filter(|_| res.namespaced) {
            Some(ns) => (
                (q.clone(), ns.to_string(), String::new()),
                (q.clone(), ns.to_string(), MAX.to_string()),
            ),
            None => (
                (q.clone(), String::new(), String::new()),
                (q.clone(), MAX.to_string(), String::new()),
            ),
        };
        let from = match after_key {
            Some((ns, name)) => std::ops::Bound::Excluded((q.clone(), ns, name)),
            None => std::ops::Bound::Included(from),
        };
        let mut items = Vec::new();
        let mut last = None;
        let mut remaining = 0u64;
        for ((_, ns, name), obj) in objects.mirror.range((from, std::ops::Bound::Included(to))) {
            if !filter(obj) {
                continue;
            }
            if limit > 0 && items.len() >= limit {
                remaining += 1;
                continue;
            }
            items.push(Value::clone(obj));
            last = Some((ns.clone(), name.clone()));
        }
        let next = if remaining > 0 {
            last.map(|(ns, name)| encode_continue(rv, &ns, &name))
        } else {
            None
        };
        Ok(Page {
            items,
            rv,
            next,
            remaining,
        })
    }

    /// Stores a new object: fills in its uid, creationTimestamp,
    /// resourceVersion (and generation), and a name from `generateName`.
    pub fn create(&self, res: &'static Resource, mut obj: Value) -> Result<Value, KubeError> {
        check_shape(res, &obj)?;
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(KubeError::internal("metadata vanished"));
        };
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now()));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if has_generation(res) {
            meta.insert("generation".into(), json!(1));
        } else {
            meta.remove("generation");
        }
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .map(str::to_string);
        let fixed = meta.get("name").and_then(Value::as_str).map(str::to_string);
        let fixed = fixed.filter(|n| !n.is_empty());
        let namespace = meta_str(&obj, "namespace").map(str::to_string);
        let mut db = lock(&self.db);
        for attempt in 0..8 {
            let name = match (&fixed, &generate) {
                (Some(n), _) => n.clone(),
                (None, Some(prefix)) => format!("{prefix}{}", random_suffix(5)),
                (None, None) => {
                    return Err(KubeError::invalid(
                        res.group,
                        res.kind,
                        "",
                        crate::kube::Cause::required("metadata.name"),
                    ));
                }
            };
            obj["metadata"]["name"] = json!(name);
            match self.write(
                &mut db,
                res,
                namespace.as_deref(),
                &name,
                &mut obj,
                Write::Insert,
                None,
            ) {
                Err(KubeError::AlreadyExists { .. }) if fixed.is_none() && attempt < 7 => continue,
                other => return other.map(|()| obj),
            }
        }
        Err(KubeError::internal("no free generated name"))
    }

    /// Replaces an object. `obj`'s resourceVersion, when set, must be the
    /// stored one (409 Conflict otherwise). An object being deleted whose
    /// last finalizer this update removes is deleted.
    pub fn update(&self, res: &'static Resource, mut obj: Value) -> Result<Value, KubeError> {
        check_shape(res, &obj)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let namespace = meta_str(&obj, "namespace").map(str::to_string);
        let mut db = lock(&self.db);
        let old = Self::read(&db, res, namespace.as_deref(), &name)
            .ok_or_else(|| not_found(res, &name))?;
        let stored_rv = meta_str(&old, "resourceVersion").unwrap_or_default();
        if let Some(rv) = meta_str(&obj, "resourceVersion")
            && !rv.is_empty()
            && rv != stored_rv
        {
            return Err(KubeError::Conflict {
                group: res.group.into(),
                plural: res.plural.into(),
                name: name.clone(),
                message: format!(
                    "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                    res.qualified_plural()
                ),
            });
        }
        // What the server owns is kept as it is; a deletion, once marked,
        // cannot be taken back (the API's callers strip a client's own
        // deletionTimestamp before they get here).
        for field in ["uid", "creationTimestamp"] {
            match old["metadata"].get(field) {
                Some(v) => obj["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = obj["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if let Some(v) = old["metadata"].get("deletionTimestamp") {
            obj["metadata"]["deletionTimestamp"] = v.clone();
            if obj["metadata"].get("deletionGracePeriodSeconds").is_none()
                && let Some(g) = old["metadata"].get("deletionGracePeriodSeconds")
            {
                obj["metadata"]["deletionGracePeriodSeconds"] = g.clone();
            }
        }
        if has_generation(res) {
            let generation = old["metadata"]["generation"].as_i64().unwrap_or(1);
            let generation = if spec_changed(&old, &obj) {
                generation + 1
            } else {
                generation
            };
            obj["metadata"]["generation"] = json!(generation);
        }
        // The update that removes the last finalizer of an object being
        // deleted deletes it (pods are finished by the node agent, and
        // namespaces by their controller).
        let terminating = obj["metadata"].get("deletionTimestamp").is_some();
        let has_finalizers = |o: &Value| {
            o["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
        };
        if terminating && has_finalizers(&old) && !has_finalizers(&obj) && res.kind != "Pod" {
            self.write(
                &mut db,
                res,
                namespace.as_deref(),
                &name,
                &mut obj,
                Write::Delete,
                None,
            )?;
            return Ok(obj);
        }
        if old == obj_with_rv(&obj, stored_rv) {
            // Nothing changed: no new resourceVersion, no event.
            return Ok(old);
        }
        self.write(
            &mut db,
            res,
            namespace.as_deref(),
            &name,
            &mut obj,
            Write::Update,
            Some(old),
        )?;
        Ok(obj)
    }

    /// Reads, changes and writes an object, retrying on conflicts: how
    /// controllers and the node agent update what they own. `change`
    /// returns false to leave the object as it is.
    pub fn modify(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        mut change: impl FnMut(&mut Value) -> Result<bool, KubeError>,
    ) -> Result<Option<Value>, KubeError> {
        for _ in 0..16 {
            let Some(mut obj) = self.try_get(res, namespace, name)? else {
                return Ok(None);
            };
            if !change(&mut obj)? {
                return Ok(Some(obj));
            }
            match self.update(res, obj) {
                Err(KubeError::Conflict { .. }) => continue,
                Err(KubeError::NotFound { .. }) => return Ok(None),
                other => return other.map(Some),
            }
        }
        Err(KubeError::internal(format!(
            "{} \"{name}\": too many conflicting writes",
            res.qualified_plural()
        )))
    }

    /// Removes an object now (finalizers and grace periods are the
    /// caller's business). Returns it as it was, with the deletion's
    /// resourceVersion. `uid`, when given, must match (a precondition).
    pub fn delete(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Value, KubeError> {
        let mut db = lock(&self.db);
        let mut obj = Self::read(&db, res, namespace, name).ok_or_else(|| not_found(res, name))?;
        if let Some(uid) = uid
            && meta_str(&obj, "uid") != Some(uid)
        {
            return Err(KubeError::Conflict {
                group: res.group.into(),
                plural: res.plural.into(),
                name: name.into(),
                message: format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&obj, "uid").unwrap_or_default()
                ),
            });
        }
        self.write(&mut db, res, namespace, name, &mut obj, Write::Delete, None)?;
        Ok(obj)
    }

    /// A watch of a resource (in one namespace or all) from just after
    /// `from` (the resourceVersion a list returned); `None` starts now.
    /// 410 Gone when `from` is older than the history kept.
    pub fn watch(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<Watch, KubeError> {
        let hub = lock(&self.hub);
        let rx = self.tx.subscribe();
        let namespace = namespace.filter(|_| res.namespaced).map(str::to_string);
        let mut w = Watch {
            backlog: VecDeque::new(),
            rx,
            resource: res,
            namespace,
            seen: hub.rv,
            hub: Arc::downgrade(&self.hub),
            tx: self.tx.downgrade(),
        };
        if let Some(from) = from {
            if from < hub.oldest {
                return Err(KubeError::Gone(format!(
                    "too old resource version: {from} ({})",
                    hub.oldest
                )));
            }
            w.backlog = hub
                .history
                .iter()
                .filter(|e| e.rv > from && w.wants(e))
                .cloned()
                .collect();
        }
        Ok(w)
    }

    fn read(
        objects: &Objects,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key = (
            res.qualified_plural(),
            ns_key(res, namespace),
            name.to_string(),
        );
        objects.mirror.get(&key).map(|o| Value::clone(o))
    }

    #[allow(clippy::too_many_arguments)]
    /// One write: bumps the resourceVersion, stores (or removes) the
    /// object and publishes the change, all under the store's lock.
    fn write(
        &self,
        objects: &mut Objects,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        obj: &mut Value,
        how: Write,
        prev: Option<Value>,
    ) -> Result<(), KubeError> {
        let mut hub = lock(&self.hub);
        let rv = hub.rv + 1;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = ns_key(res, namespace);
        let tx = objects.db.write().map_err(db_err)?;
        let changed = match how {
            Write::Insert => {
                let body = serde_json::to_string(&*obj).map_err(db_err)?;
                let uid = meta_str(obj, "uid").unwrap_or_default();
                let done = tx.exec(
                    "INSERT INTO kube_objects (resource, namespace, name, uid, rv, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![res.qualified_plural(), ns, name, uid, rv as i64, body],
                );
                match done {
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        return Err(KubeError::AlreadyExists {
                            group: res.group.into(),
                            plural: res.plural.into(),
                            name: name.into(),
                        });
                    }
                    other => other.map_err(db_err)?,
                }
            }
            Write::Update => {
                let body = serde_json::to_string(&*obj).map_err(db_err)?;
                tx.exec(
                    "UPDATE kube_objects SET rv = ?4, body = ?5
                     WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                    params![res.qualified_plural(), ns, name, rv as i64, body],
                )
                .map_err(db_err)?
            }
            Write::Delete => tx
                .exec(
                    "DELETE FROM kube_objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                    params![res.qualified_plural(), ns, name],
                )
                .map_err(db_err)?,
        };
        if changed == 0 {
            return Err(not_found(res, name));
        }
        tx.exec(
            "INSERT INTO kube_meta (key, value) VALUES ('rv', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![rv.to_string()],
        )
        .map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        hub.rv = rv;
        let key = (res.qualified_plural(), ns.clone(), name.to_string());
        let object = Arc::new(obj.clone());
        match how {
            Write::Delete => objects.mirror.remove(&key),
            Write::Insert | Write::Update => objects.mirror.insert(key, object.clone()),
        };
        let event = Arc::new(Event {
            rv,
            kind: match how {
                Write::Insert => EventType::Added,
                Write::Update => EventType::Modified,
                Write::Delete => EventType::Deleted,
            },
            resource: res,
            namespace: ns,
            name: name.to_string(),
            object,
            prev: prev.map(Arc::new),
        });
        if hub.history.len() >= hub.capacity
            && let Some(old) = hub.history.pop_front()
        {
            hub.oldest = old.rv;
        }
        hub.history.push_back(event.clone());
        let _ = self.tx.send(event);
        Ok(())
    }

    /// Every change from now on, of every resource (for controllers and
    /// the node agent, which filter themselves).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Removes every object (`wrun cluster delete`).
    pub fn clear(&self) -> Result<(), KubeError> {
        let mut objects = lock(&self.db);
        objects
            .db
            .conn()
            .exec("DELETE FROM kube_objects", [])
            .map_err(db_err)?;
        objects.mirror.clear();
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Write {
    Insert,
    Update,
    Delete,
}

/// Objects are JSON objects with an object `metadata`: what every index
/// into them relies on.
fn check_shape(res: &Resource, obj: &Value) -> Result<(), KubeError> {
    if obj.is_object() && obj.get("metadata").is_some_and(Value::is_object) {
        Ok(())
    } else {
        Err(KubeError::bad_request(format!(
            "{}: the object must be a JSON object with an object metadata",
            res.kind
        )))
    }
}

fn obj_with_rv(obj: &Value, rv: &str) -> Value {
    let mut o = obj.clone();
    o["metadata"]["resourceVersion"] = json!(rv);
    o
}

pub fn not_found(res: &Resource, name: &str) -> KubeError {
    KubeError::NotFound {
        group: res.group.into(),
        plural: res.plural.into(),
        name: name.into(),
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine as _;
    let raw = json!({"v": "wrun/1", "rv": rv, "ns": ns, "name": name}).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn decode_continue(token: &str) -> Result<(u64, (String, String)), KubeError> {
    use base64::Engine as _;
    let bad = || KubeError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v["rv"].as_u64().ok_or_else(bad)?;
    let ns = v["ns"].as_str().ok_or_else(bad)?.to_string();
    let name = v["name"].as_str().ok_or_else(bad)?.to_string();
    Ok((rv, (ns, name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::by_plural;

    fn pods() -> &'static Resource {
        by_plural("", "v1", "pods").expect("pods")
    }

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::open(dir.path()).expect("root");
        let s = Store::open(&root).expect("store");
        (dir, s)
    }

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"}, "spec": {"containers": []}})
    }

    #[test]
    fn only_what_is_outside_metadata_and_status_is_a_spec_change() {
        let a =
            json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"phase": "Pending"}});
        let mut b = a.clone();
        b["metadata"]["labels"] = json!({"k": "v"});
        b["status"]["phase"] = json!("Running");
        assert!(!spec_changed(&a, &b));
        b["spec"]["x"] = json!(2);
        assert!(spec_changed(&a, &b));
        let mut c = a.clone();
        c["data"] = json!({"k": "v"});
        assert!(spec_changed(&a, &c), "a field added");
        assert!(spec_changed(&c, &a), "a field removed");
        assert!(!spec_changed(
            &json!({"spec": 1}),
            &json!({"spec": 1, "status": 2})
        ));
    }

    #[test]
    fn versions_grow_and_stale_updates_conflict() {
        let (_d, s) = store();
        let a = s.create(pods(), pod("a")).expect("create");
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        assert_eq!(a["metadata"]["generation"], 1);
        let mut b = a.clone();
        b["spec"]["nodeName"] = json!("wrun");
        let b = s.update(pods(), b).expect("update");
        assert_eq!(b["metadata"]["resourceVersion"], "2");
        assert_eq!(b["metadata"]["generation"], 2);
        let mut stale = a.clone();
        stale["metadata"]["labels"] = json!({"x": "y"});
        let err = s.update(pods(), stale).expect_err("stale");
        assert_eq!(err.code(), 409);
        let err = s.create(pods(), pod("a")).expect_err("twice");
        assert_eq!(err.code(), 409);
        assert_eq!(err.reason(), "AlreadyExists");
        // A no-op update writes nothing.
        let same = s.update(pods(), b.clone()).expect("same");
        assert_eq!(same["metadata"]["resourceVersion"], "2");
    }

    #[test]
    fn generate_name_and_pages() {
        let (_d, s) = store();
        for _ in 0..5 {
            let mut p = pod("");
            p["metadata"]["generateName"] = json!("kubia-");
            let made = s.create(pods(), p).expect("create");
            let name = made["metadata"]["name"].as_str().expect("name");
            assert!(name.starts_with("kubia-") && name.len() == 11, "{name}");
        }
        let first = s
            .page(pods(), Some("default"), None, 2, &|_| true)
            .expect("page");
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.remaining, 3);
        let token = first.next.expect("token");
        let second = s
            .page(pods(), Some("default"), Some(&token), 10, &|_| true)
            .expect("page 2");
        assert_eq!(second.items.len(), 3);
        assert!(second.next.is_none());
        assert!(
            s.page(pods(), None, Some("garbage!"), 1, &|_| true)
                .is_err()
        );
        assert!(s.list(pods(), Some("other")).expect("list").0.is_empty());
    }

    #[tokio::test]
    async fn a_lagging_watch_catches_up_from_the_history_then_ends_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::open(dir.path()).expect("root");
        let s = Store::open_sized(&root, 40, 4).expect("store");
        let mut w = s.watch(pods(), Some("default"), None).expect("watch");
        // Ten changes against a live stream of four: the watch falls
        // behind, and still sees every one, in order.
        for i in 0..10 {
            s.create(pods(), pod(&format!("p{i}"))).expect("create");
        }
        let mut names = Vec::new();
        for _ in 0..10 {
            names.push(w.next().await.expect("event").name.clone());
        }
        let wanted: Vec<String> = (0..10).map(|i| format!("p{i}")).collect();
        assert_eq!(names, wanted);
        // Fifty more against a history of forty: it cannot catch up.
        for i in 10..60 {
            s.create(pods(), pod(&format!("p{i}"))).expect("create");
        }
        match w.next().await {
            Err(WatchEnd::Gone(why)) => assert!(why.contains("fell behind"), "{why}"),
            other => panic!("expected Gone, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn watches_resume_and_old_versions_are_gone() {
        let (_d, s) = store();
        s.create(pods(), pod("a")).expect("a");
        let mut w = s.watch(pods(), Some("default"), Some(0)).expect("watch");
        s.create(pods(), pod("b")).expect("b");
        s.delete(pods(), Some("default"), "a", None)
            .expect("delete");
        let names: Vec<(String, &str)> = [w.next().await, w.next().await, w.next().await]
            .into_iter()
            .map(|e| {
                let e = e.expect("event");
                (e.name.clone(), e.kind.as_str())
            })
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".to_string(), "ADDED"),
                ("b".to_string(), "ADDED"),
                ("a".to_string(), "DELETED")
            ]
        );
        drop(w);
        let root_dir = _d.path().to_path_buf();
        drop(s);
        let s = Store::open(&StateRoot::open(root_dir).expect("root")).expect("reopen");
        assert_eq!(s.rv(), 3);
        assert_eq!(
            s.watch(pods(), None, Some(1)).expect_err("gone").code(),
            410
        );
        assert!(s.watch(pods(), None, Some(3)).is_ok());
        assert_eq!(s.list(pods(), None).expect("list").0.len(), 1);
    }
}
