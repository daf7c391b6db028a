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
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use chrono::{SecondsFormat, Utc};
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};
use tokio::sync::broadcast;

pub use super::batch::Batch;
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
    queue: Arc<Queue>,
}

/// A write queued with [`Store::defer`].
pub type Deferred = Box<dyn FnOnce(&mut Batch<'_>) + Send>;

/// The writes queued with [`Store::defer`], and the bell that wakes the
/// store's thread for them.
#[derive(Default)]
struct Queue {
    state: Mutex<Queued>,
    bell: Condvar,
}

#[derive(Default)]
struct Queued {
    ops: VecDeque<(Option<String>, Deferred)>,
    /// The store is gone: its thread ends.
    closed: bool,
}

impl Queue {
    fn push(&self, key: Option<String>, op: Deferred) {
        let mut q = lock(&self.state);
        if let Some(k) = &key {
            q.ops.retain(|(other, _)| other.as_ref() != Some(k));
        }
        q.ops.push_back((key, op));
        self.bell.notify_one();
    }

    fn take(&self) -> Vec<Deferred> {
        lock(&self.state).ops.drain(..).map(|(_, op)| op).collect()
    }

    fn is_empty(&self) -> bool {
        lock(&self.state).ops.is_empty()
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.bell.notify_one();
    }

    /// The store's thread: commits queued writes that no other write took
    /// along, until the store is dropped.
    fn serve(self: Arc<Self>, store: Weak<Store>) {
        loop {
            {
                let mut q = lock(&self.state);
                while q.ops.is_empty() && !q.closed {
                    q = self.bell.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                if q.closed {
                    return;
                }
            }
            let Some(store) = store.upgrade() else { return };
            if let Err(e) = store.flush() {
                tracing::warn!(error = %e, "cannot commit queued writes to the object store");
            }
        }
    }
}

impl Drop for Store {
    /// What is still queued is committed before the store goes.
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            tracing::warn!(error = %e, "cannot commit queued writes to the object store");
        }
        self.queue.close();
    }
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
pub(super) type Key = (String, String, String);

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

pub(super) fn db_err(e: impl std::fmt::Display) -> KubeError {
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

pub(super) fn ns_key(res: &Resource, namespace: Option<&str>) -> String {
    if res.namespaced {
        namespace.unwrap_or_default().to_string()
    } else {
        String::new()
    }
}

pub(super) fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

/// Whether two versions of an object differ outside metadata and status:
/// what bumps `metadata.generation`.
///
/// Compared in place: a pod's status is rewritten often, and copying both
/// objects to strip it cost more than the comparison.
pub(super) fn spec_changed(old: &Value, new: &Value) -> bool {
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
pub(super) fn has_generation(res: &Resource) -> bool {
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
        let queue = Arc::new(Queue::default());
        let store = Arc::new(Self {
            db: Mutex::new(Objects { db, mirror }),
            hub: Arc::new(Mutex::new(Hub {
                capacity: history,
                rv,
                oldest: rv,
                history: VecDeque::new(),
            })),
            tx,
            queue: queue.clone(),
        });
        let weak = Arc::downgrade(&store);
        std::thread::Builder::new()
            .name("wrun-store".into())
            .spawn(move || queue.serve(weak))
            .map_err(|e| {
                KubeError::internal(format!("object store: cannot start its thread: {e}"))
            })?;
        Ok(store)
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
    pub fn create(&self, res: &'static Resource, obj: Value) -> Result<Value, KubeError> {
        self.batch(|b| b.create(res, obj))?
    }

    /// Replaces an object. `obj`'s resourceVersion, when set, must be the
    /// stored one (409 Conflict otherwise). An object being deleted whose
    /// last finalizer this update removes is deleted.
    pub fn update(&self, res: &'static Resource, obj: Value) -> Result<Value, KubeError> {
        self.batch(|b| b.update(res, obj))?
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
        self.batch(|b| b.delete(res, namespace, name, uid))?
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

    /// Runs `f` over a [`Batch`]: its writes, and every write queued with
    /// [`Store::defer`] before it (those first, in the order queued), are
    /// committed as one SQLite transaction. Then, still under the lock, the
    /// mirror takes them and the hub publishes them in resourceVersion
    /// order. The outer error is the commit's: then none of them happened.
    ///
    /// `f` runs under the store's lock: it must not call the store.
    pub fn batch<R>(&self, f: impl FnOnce(&mut Batch<'_>) -> R) -> Result<R, KubeError> {
        let mut objects = lock(&self.db);
        let queued = self.queue.take();
        let start = lock(&self.hub).rv;
        let Objects { db, mirror } = &mut *objects;
        let (r, committed) = {
            let mut b = Batch::new(db.conn(), mirror, start);
            let n = queued.len();
            for op in queued {
                op(&mut b);
            }
            let r = f(&mut b);
            match b.commit() {
                Ok(c) => (r, c),
                Err(e) => {
                    if n > 0 {
                        tracing::warn!(error = %e, writes = n, "queued writes to the object store are lost");
                    }
                    return Err(e);
                }
            }
        };
        if committed.events.is_empty() {
            return Ok(r);
        }
        let mut hub = lock(&self.hub);
        hub.rv = committed.rv;
        for event in committed.events {
            let key = (
                event.resource.qualified_plural(),
                event.namespace.clone(),
                event.name.clone(),
            );
            match event.kind {
                EventType::Deleted => mirror.remove(&key),
                EventType::Added | EventType::Modified => mirror.insert(key, event.object.clone()),
            };
            let event = Arc::new(event);
            if hub.history.len() >= hub.capacity
                && let Some(old) = hub.history.pop_front()
            {
                hub.oldest = old.rv;
            }
            hub.history.push_back(event.clone());
            let _ = self.tx.send(event);
        }
        Ok(r)
    }

    /// Queues a write that nobody waits for: an event, a status the node
    /// agent reports. It is committed with the next write to the store, or
    /// by the store's own thread if none comes, in the order queued; so a
    /// burst of them shares one transaction. A queued write with the same
    /// `key` as this one is dropped (this one, newer, goes last).
    pub fn defer(&self, key: Option<String>, op: Deferred) {
        self.queue.push(key, op);
    }

    /// Commits every queued write now.
    pub fn flush(&self) -> Result<(), KubeError> {
        if self.queue.is_empty() {
            return Ok(());
        }
        self.batch(|_| ())
    }

    /// Every change from now on, of every resource (for controllers and
    /// the node agent, which filter themselves).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Removes every object (`wrun cluster delete`).
    pub fn clear(&self) -> Result<(), KubeError> {
        let mut objects = lock(&self.db);
        // Queued writes were about objects that are going.
        drop(self.queue.take());
        objects
            .db
            .conn()
            .exec("DELETE FROM kube_objects", [])
            .map_err(db_err)?;
        objects.mirror.clear();
        Ok(())
    }
}

/// Objects are JSON objects with an object `metadata`: what every index
/// into them relies on.
pub(super) fn check_shape(res: &Resource, obj: &Value) -> Result<(), KubeError> {
    if obj.is_object() && obj.get("metadata").is_some_and(Value::is_object) {
        Ok(())
    } else {
        Err(KubeError::bad_request(format!(
            "{}: the object must be a JSON object with an object metadata",
            res.kind
        )))
    }
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

    #[test]
    fn queued_writes_commit_in_order_before_the_next_direct_write() {
        let (_d, s) = store();
        for name in ["q1", "q2"] {
            s.defer(
                None,
                Box::new(move |b| {
                    b.create(pods(), pod(name)).expect("queued create");
                }),
            );
        }
        // The direct write takes the queued ones along, ahead of itself.
        let direct = s.create(pods(), pod("d")).expect("direct");
        assert_eq!(direct["metadata"]["resourceVersion"], "3");
        assert_eq!(
            s.get(pods(), Some("default"), "q1").expect("q1")["metadata"]["resourceVersion"],
            "1"
        );
        assert_eq!(
            s.get(pods(), Some("default"), "q2").expect("q2")["metadata"]["resourceVersion"],
            "2"
        );
        assert_eq!(s.rv(), 3);
    }

    #[test]
    fn a_newer_queued_write_with_the_same_key_replaces_the_older() {
        // The queue alone, with no thread to take from it meanwhile.
        let q = Queue::default();
        for (key, name) in [(Some("k"), "old"), (None, "other"), (Some("k"), "new")] {
            q.push(
                key.map(String::from),
                Box::new(move |b| {
                    b.create(pods(), pod(name)).expect("create");
                }),
            );
        }
        let ops = q.take();
        assert!(q.is_empty());
        let (_d, s) = store();
        s.batch(|b| ops.into_iter().for_each(|op| op(b)))
            .expect("commit");
        let (items, _) = s.list(pods(), None).expect("list");
        let mut names: Vec<(String, String)> = items
            .iter()
            .map(|p| {
                (
                    p["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or("")
                        .to_string(),
                    p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![("1".into(), "other".into()), ("2".into(), "new".into())],
            "the older write under the key is dropped; the newer goes last"
        );
    }

    #[test]
    fn the_stores_thread_commits_queued_writes_nobody_took_along() {
        let (_d, s) = store();
        let mut changes = s.subscribe();
        s.defer(
            None,
            Box::new(|b| {
                b.create(pods(), pod("alone")).expect("create");
            }),
        );
        let event = changes.blocking_recv().expect("event");
        assert_eq!(event.name, "alone");
        assert!(
            s.try_get(pods(), Some("default"), "alone")
                .expect("read")
                .is_some()
        );
    }

    #[test]
    fn a_batch_sees_its_own_writes_and_a_failed_one_spoils_no_other() {
        let (_d, s) = store();
        let (seen, twice, gone) = s
            .batch(|b| {
                b.create(pods(), pod("a")).expect("a");
                let seen = b.try_get(pods(), Some("default"), "a").is_some();
                let twice = b.create(pods(), pod("a")).expect_err("taken").code();
                b.create(pods(), pod("b")).expect("b");
                b.delete(pods(), Some("default"), "b", None)
                    .expect("delete b");
                let gone = b.try_get(pods(), Some("default"), "b").is_none();
                (seen, twice, gone)
            })
            .expect("commit");
        assert!(seen, "a batch reads what it created");
        assert_eq!(twice, 409);
        assert!(gone, "a batch reads what it deleted as gone");
        assert!(
            s.try_get(pods(), Some("default"), "a")
                .expect("a")
                .is_some()
        );
        assert!(
            s.try_get(pods(), Some("default"), "b")
                .expect("b")
                .is_none()
        );
        assert_eq!(s.rv(), 3, "a, b and b's deletion");
        // Nothing the batch wrote is lost across a reopen.
        let dir = _d.path().to_path_buf();
        drop(s);
        let s = Store::open(&StateRoot::open(dir).expect("root")).expect("reopen");
        assert_eq!(s.rv(), 3);
        assert_eq!(s.list(pods(), None).expect("list").0.len(), 1);
    }

    #[test]
    fn queued_writes_outlive_the_store_handle() {
        let (d, s) = store();
        s.defer(
            None,
            Box::new(|b| {
                b.create(pods(), pod("late")).expect("create");
            }),
        );
        drop(s);
        let s = Store::open(&StateRoot::open(d.path()).expect("root")).expect("reopen");
        assert!(
            s.try_get(pods(), Some("default"), "late")
                .expect("read")
                .is_some()
        );
    }
}
