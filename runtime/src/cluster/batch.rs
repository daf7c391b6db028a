//! The store's write path: creates, updates and deletions made under the
//! store's lock and committed together as one SQLite transaction (a group
//! commit).
//!
//! A [`Batch`] sees its own writes: an object it created or changed is read
//! back as it left it. Nobody else sees any of them until the batch
//! commits; then the mirror, the resourceVersion and the watch hub move
//! together (see `Store::batch`). A failed write (a conflict, a name that
//! is taken) leaves the rest of the batch as it was: SQLite undoes only
//! the failed statement.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::{Connection, params};
use serde_json::{Value, json};

use super::store::{
    Event, EventType, Key, check_shape, db_err, has_generation, meta_str, new_uid, not_found, now,
    ns_key, random_suffix, spec_changed,
};
use crate::kube::{KubeError, Resource};
use crate::state::CachedSql;

/// Writes under the store's lock, committed together.
pub struct Batch<'a> {
    conn: &'a Connection,
    mirror: &'a BTreeMap<Key, Arc<Value>>,
    /// Whether the SQLite transaction has begun (with the first write).
    open: bool,
    /// What this batch wrote, by key (`None`: deleted).
    written: HashMap<Key, Option<Arc<Value>>>,
    /// The changes, in resourceVersion order.
    events: Vec<Event>,
    /// The last resourceVersion given out.
    rv: u64,
}

/// What a write does to its row.
#[derive(Debug, Clone, Copy)]
enum Write {
    Insert,
    Update,
    Delete,
}

/// What a committed batch hands back to the store to publish.
pub(super) struct Committed {
    pub events: Vec<Event>,
    pub rv: u64,
}

impl<'a> Batch<'a> {
    /// A batch over `conn` and the mirror, after resourceVersion `rv`.
    pub(super) fn new(
        conn: &'a Connection,
        mirror: &'a BTreeMap<Key, Arc<Value>>,
        rv: u64,
    ) -> Self {
        Self {
            conn,
            mirror,
            open: false,
            written: HashMap::new(),
            events: Vec::new(),
            rv,
        }
    }

    /// Commits what was written (with the new resourceVersion). A batch
    /// that wrote nothing touches no file.
    pub(super) fn commit(mut self) -> Result<Committed, KubeError> {
        if self.open {
            self.conn
                .exec(
                    "INSERT INTO kube_meta (key, value) VALUES ('rv', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    params![self.rv.to_string()],
                )
                .map_err(db_err)?;
            self.conn.execute_batch("COMMIT").map_err(db_err)?;
            self.open = false;
        }
        Ok(Committed {
            events: std::mem::take(&mut self.events),
            rv: self.rv,
        })
    }

    /// An object as this batch sees it: its own writes first.
    pub fn try_get(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.current(&key(res, namespace, name))
            .map(|o| Value::clone(&o))
    }

    /// The object under `key` as this batch sees it, shared.
    fn current(&self, key: &Key) -> Option<Arc<Value>> {
        match self.written.get(key) {
            Some(o) => o.clone(),
            None => self.mirror.get(key).cloned(),
        }
    }

    /// Stores a new object: fills in its uid, creationTimestamp,
    /// resourceVersion (and generation), and a name from `generateName`.
    pub fn create(&mut self, res: &'static Resource, mut obj: Value) -> Result<Value, KubeError> {
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
    pub fn update(&mut self, res: &'static Resource, mut obj: Value) -> Result<Value, KubeError> {
        check_shape(res, &obj)?;
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let namespace = meta_str(&obj, "namespace").map(str::to_string);
        let old = self
            .current(&key(res, namespace.as_deref(), &name))
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
                res,
                namespace.as_deref(),
                &name,
                &mut obj,
                Write::Delete,
                None,
            )?;
            return Ok(obj);
        }
        // Nothing changed: no new resourceVersion, no event. (The write
        // below sets the new resourceVersion over the stored one.)
        obj["metadata"]["resourceVersion"] = json!(stored_rv);
        if *old == obj {
            return Ok(Value::clone(&old));
        }
        self.write(
            res,
            namespace.as_deref(),
            &name,
            &mut obj,
            Write::Update,
            Some(old),
        )?;
        Ok(obj)
    }

    /// Reads, changes and writes an object in this batch (no other writer
    /// can come between). `change` returns false to leave it as it is.
    /// `None` when there is no such object.
    pub fn modify(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<bool, KubeError>,
    ) -> Result<Option<Value>, KubeError> {
        let Some(mut obj) = self.try_get(res, namespace, name) else {
            return Ok(None);
        };
        if !change(&mut obj)? {
            return Ok(Some(obj));
        }
        match self.update(res, obj) {
            Err(KubeError::NotFound { .. }) => Ok(None),
            other => other.map(Some),
        }
    }

    /// Removes an object now (finalizers and grace periods are the
    /// caller's business). Returns it as it was, with the deletion's
    /// resourceVersion. `uid`, when given, must match (a precondition).
    pub fn delete(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        uid: Option<&str>,
    ) -> Result<Value, KubeError> {
        let mut obj = self
            .try_get(res, namespace, name)
            .ok_or_else(|| not_found(res, name))?;
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
        self.write(res, namespace, name, &mut obj, Write::Delete, None)?;
        Ok(obj)
    }

    /// One write: the next resourceVersion, the row, and the change to
    /// publish once the batch commits.
    fn write(
        &mut self,
        res: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        obj: &mut Value,
        how: Write,
        prev: Option<Arc<Value>>,
    ) -> Result<(), KubeError> {
        if !self.open {
            self.conn.execute_batch("BEGIN IMMEDIATE").map_err(db_err)?;
            self.open = true;
        }
        let rv = self.rv + 1;
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        let ns = ns_key(res, namespace);
        let changed = match how {
            Write::Insert => {
                let body = serde_json::to_string(&*obj).map_err(db_err)?;
                let uid = meta_str(obj, "uid").unwrap_or_default();
                let done = self.conn.exec(
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
                self.conn
                    .exec(
                        "UPDATE kube_objects SET rv = ?4, body = ?5
                         WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                        params![res.qualified_plural(), ns, name, rv as i64, body],
                    )
                    .map_err(db_err)?
            }
            Write::Delete => self
                .conn
                .exec(
                    "DELETE FROM kube_objects WHERE resource = ?1 AND namespace = ?2 AND name = ?3",
                    params![res.qualified_plural(), ns, name],
                )
                .map_err(db_err)?,
        };
        if changed == 0 {
            return Err(not_found(res, name));
        }
        self.rv = rv;
        let object = Arc::new(obj.clone());
        let key = (res.qualified_plural(), ns.clone(), name.to_string());
        self.written.insert(
            key,
            match how {
                Write::Delete => None,
                Write::Insert | Write::Update => Some(object.clone()),
            },
        );
        self.events.push(Event {
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
            prev,
        });
        Ok(())
    }
}

impl Drop for Batch<'_> {
    /// A batch that did not commit (an error, a panic) takes back what it
    /// wrote, so the connection is left with no transaction open.
    fn drop(&mut self) {
        if self.open {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Where an object sits in the mirror.
pub(super) fn key(res: &Resource, namespace: Option<&str>, name: &str) -> Key {
    (
        res.qualified_plural(),
        ns_key(res, namespace),
        name.to_string(),
    )
}
