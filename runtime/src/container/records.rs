//! Container records in the metadata database, and each container's
//! directory: `containers/<id>/rootfs` (its own copy of the image) and
//! `containers/<id>/proc` (its process table).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::spec::ContainerSpec;
use super::{ContainerError, names};
use crate::image::{Image, layer};
use crate::state::{CachedSql, Db, StateRoot, remove_tree};

/// Where a container is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerState {
    Created,
    Running,
    Exited,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Exited => "exited",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "running" => Self::Running,
            "exited" => Self::Exited,
            _ => Self::Created,
        }
    }
}

/// One container as stored.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    /// 64 hex digits; shown as the first 12.
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub spec: ContainerSpec,
    pub state: ContainerState,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Times the daemon restarted it under its restart policy.
    pub restart_count: u32,
    /// Stopped by `stop` or `kill`: restart policies leave it alone.
    pub manually_stopped: bool,
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// The containers of one state root.
///
/// Records read or written through it are kept in memory by full ID, and
/// each change is made to the database and to that copy alike. The daemon
/// is the only writer of container records, so the copy cannot go stale,
/// and a request that names a container by ID reads no SQL and parses no
/// JSON.
pub struct Containers {
    root: StateRoot,
    db: Db,
    known: RefCell<HashMap<String, ContainerRecord>>,
}

impl std::fmt::Debug for Containers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Containers")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl Containers {
    pub fn open(root: &StateRoot) -> Result<Self, ContainerError> {
        Ok(Self {
            root: root.clone(),
            db: root.db()?,
            known: RefCell::default(),
        })
    }

    /// Records a container and reserves its name. Its root needs nothing
    /// more: it is its image's layers (listed in its spec) until it writes.
    pub fn insert(
        &mut self,
        image: &Image,
        name: Option<&str>,
        spec: ContainerSpec,
    ) -> Result<ContainerRecord, ContainerError> {
        let mut raw = [0u8; 36];
        getrandom::fill(&mut raw).map_err(|e| {
            ContainerError::Internal(spec.image.clone(), format!("no randomness for an ID: {e}"))
        })?;
        let id = hex::encode(&raw[..32]);
        if let Some(n) = name
            && !names::is_valid(n)
        {
            return Err(ContainerError::BadName(n.to_string()));
        }
        let spec_json = serde_json::to_string(&spec).map_err(|e| ContainerError::Rootfs {
            id: id.clone(),
            message: e.to_string(),
        })?;
        let now = Utc::now();
        let seed = [raw[32], raw[33], raw[34], raw[35]];
        let mut attempt = 0;
        let name = loop {
            let candidate = match name {
                Some(n) => n.to_string(),
                None => names::generate(&seed, attempt),
            };
            let inserted = self.db.conn().exec(
                "INSERT INTO containers (id, name, image_id, image_name, spec, state, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'created', ?6)",
                params![
                    id,
                    candidate,
                    image.id.as_str(),
                    spec.image,
                    spec_json,
                    now.to_rfc3339()
                ],
            );
            match inserted {
                Ok(_) => break candidate,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    if name.is_some() {
                        let holder: String = self
                            .db
                            .conn()
                            .row(
                                "SELECT id FROM containers WHERE name = ?1",
                                [&candidate],
                                |r| r.get(0),
                            )
                            .unwrap_or_default();
                        return Err(ContainerError::NameInUse {
                            name: candidate,
                            id: holder,
                        });
                    }
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        };
        let record = ContainerRecord {
            id: id.clone(),
            name,
            image_id: image.id.to_string(),
            spec,
            state: ContainerState::Created,
            exit_code: None,
            error: None,
            created_at: now,
            started_at: None,
            finished_at: None,
            restart_count: 0,
            manually_stopped: false,
        };
        self.remember(&record);
        Ok(record)
    }
}

/// A container's root, as its guests and wrun see it.
#[derive(Debug, Clone)]
pub enum Rootfs {
    /// Its image's layers, shared, under its own writable layer.
    Layers(std::sync::Arc<crate::vfs::Overlay>),
    /// A private copy of its image: containers made before the layered
    /// view keep theirs.
    Copy(PathBuf),
}

/// The root of `rec`: the layered view of its image's layers, with its
/// mount points (`/proc`, the working directory, volume targets) always
/// present, as on Linux, where a mount point must exist.
pub fn open_rootfs(root: &StateRoot, rec: &ContainerRecord) -> Result<Rootfs, ContainerError> {
    if rec.spec.layers.is_empty() {
        return Ok(Rootfs::Copy(rootfs_dir(root, &rec.id)));
    }
    let lowers: Vec<PathBuf> = rec
        .spec
        .layers
        .iter()
        .rev()
        .map(|l| root.layers_dir().join(l))
        .collect();
    let dirs = [crate::vfs::VPath::parse_lexical(&rec.spec.workdir)];
    let mut points = vec![crate::vfs::VPath::parse_lexical("/proc")];
    points.extend(
        rec.spec
            .volumes
            .iter()
            .map(|v| crate::vfs::VPath::parse_lexical(&v.guest)),
    );
    let dir = container_dir(root, &rec.id);
    let view = crate::vfs::Overlay::new(
        &lowers,
        &dir.join("upper"),
        &dir.join("work"),
        &dirs,
        &points,
    )
    .map_err(|e| ContainerError::Rootfs {
        id: rec.short_id().to_string(),
        message: format!("its image's layers: {e}"),
    })?;
    let view = match rec.spec.storage_size {
        Some(limit) => view.with_quota(limit),
        None => view,
    };
    Ok(Rootfs::Layers(std::sync::Arc::new(view)))
}

/// The bytes a container holds of its own: what it wrote (its writable
/// layer), or its whole copy of the image.
pub fn own_size(root: &StateRoot, rec: &ContainerRecord) -> u64 {
    let dir = container_dir(root, &rec.id);
    if rec.spec.layers.is_empty() {
        layer::dir_size(&dir.join("rootfs"))
    } else {
        layer::dir_size(&dir.join("upper"))
    }
}

impl Containers {
    /// Finds a container by name, full ID or unique ID prefix.
    /// A full ID is looked up first, as Docker does.
    pub fn get(&self, name_or_id: &str) -> Result<ContainerRecord, ContainerError> {
        if let Some(r) = self.known.borrow().get(name_or_id) {
            return Ok(r.clone());
        }
        let by_name = self.query_one("WHERE name = ?1", name_or_id)?;
        if let Some(r) = by_name {
            self.remember(&r);
            return Ok(r);
        }
        if !name_or_id.is_empty() && name_or_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            // IDs are lowercase hex, so those that start with `prefix` are
            // exactly the ones from `prefix` up to `prefix` followed by
            // `g`: a range the primary key's index answers (LIKE would
            // read every row, on every request that names a container by
            // ID).
            let prefix = name_or_id.to_ascii_lowercase();
            let mut found = self.query_with(
                "WHERE id >= ?1 AND id < ?2",
                &[&prefix, &format!("{prefix}g")],
                "LIMIT 2",
            )?;
            if found.len() == 1 {
                let r = found.remove(0);
                self.remember(&r);
                return Ok(r);
            }
        }
        Err(ContainerError::NotFound(name_or_id.to_string()))
    }

    /// All containers, newest first.
    pub fn list(&self) -> Result<Vec<ContainerRecord>, ContainerError> {
        self.query("WHERE ?1 = ?1", "")
    }

    /// The containers whose name contains `part` (as a substring; `_` and
    /// `%` in it match any character, so callers check what they get).
    pub fn named_like(&self, part: &str) -> Result<Vec<ContainerRecord>, ContainerError> {
        self.query("WHERE name LIKE ?1", &format!("%{part}%"))
    }

    /// Names of the containers (any state) created from `image_id`.
    pub fn users_of_image(&self, image_id: &str) -> Result<Vec<String>, ContainerError> {
        Ok(self
            .query("WHERE image_id = ?1", image_id)?
            .into_iter()
            .map(|r| r.short_id().to_string())
            .collect())
    }

    /// Records a start; `restarted` counts it as a restart-policy restart.
    pub fn mark_running(&mut self, id: &str, restarted: bool) -> Result<(), ContainerError> {
        let now = Utc::now();
        self.db.conn().exec(
            "UPDATE containers SET state = 'running', started_at = ?2, exit_code = NULL, error = NULL,
                 manually_stopped = 0, restart_count = CASE WHEN ?3 THEN restart_count + 1 ELSE 0 END
             WHERE id = ?1",
            params![id, now.to_rfc3339(), restarted],
        )?;
        self.change(id, |r| {
            r.state = ContainerState::Running;
            r.started_at = Some(now);
            r.exit_code = None;
            r.error = None;
            r.manually_stopped = false;
            r.restart_count = if restarted { r.restart_count + 1 } else { 0 };
        });
        Ok(())
    }

    /// Records that the user stopped or killed it.
    pub fn mark_manually_stopped(&mut self, id: &str) -> Result<(), ContainerError> {
        self.db.conn().exec(
            "UPDATE containers SET manually_stopped = 1 WHERE id = ?1",
            [id],
        )?;
        self.change(id, |r| r.manually_stopped = true);
        Ok(())
    }

    /// Gives a container a new name.
    pub fn rename(&mut self, id: &str, name: &str) -> Result<(), ContainerError> {
        if !names::is_valid(name) {
            return Err(ContainerError::BadName(name.to_string()));
        }
        match self.db.conn().exec(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        ) {
            Ok(_) => {
                self.change(id, |r| r.name = name.to_string());
                Ok(())
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                let holder = self.get(name).map(|r| r.id).unwrap_or_default();
                Err(ContainerError::NameInUse {
                    name: name.to_string(),
                    id: holder,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn mark_exited(
        &mut self,
        id: &str,
        code: i32,
        error: Option<&str>,
    ) -> Result<(), ContainerError> {
        let now = Utc::now();
        self.db.conn().exec(
            "UPDATE containers SET state = 'exited', finished_at = ?2, exit_code = ?3, error = ?4 WHERE id = ?1",
            params![id, now.to_rfc3339(), code, error],
        )?;
        self.change(id, |r| {
            r.state = ContainerState::Exited;
            r.finished_at = Some(now);
            r.exit_code = Some(code);
            r.error = error.map(str::to_string);
        });
        Ok(())
    }

    /// Deletes the record and the directory of a container, whatever its
    /// state. The daemon calls it once the container is stopped.
    pub fn delete(&mut self, id: &str) -> Result<(), ContainerError> {
        self.delete_record(id)?;
        remove_container_dir(&self.root, id)
    }

    /// Deletes a container's record; false when there was none.
    pub fn delete_record(&mut self, id: &str) -> Result<bool, ContainerError> {
        let n = self
            .db
            .conn()
            .exec("DELETE FROM containers WHERE id = ?1", [id])?;
        self.known.borrow_mut().remove(id);
        Ok(n > 0)
    }

    /// Keeps a copy of `rec`, as the database now holds it.
    fn remember(&self, rec: &ContainerRecord) {
        self.known.borrow_mut().insert(rec.id.clone(), rec.clone());
    }

    /// Makes a change that the database has just made to the copy of the
    /// record `id`, if there is one.
    fn change(&self, id: &str, f: impl FnOnce(&mut ContainerRecord)) {
        if let Some(r) = self.known.borrow_mut().get_mut(id) {
            f(r);
        }
    }

    fn query_one(
        &self,
        filter: &str,
        arg: &str,
    ) -> Result<Option<ContainerRecord>, ContainerError> {
        Ok(self.query(filter, arg)?.into_iter().next())
    }

    fn query(&self, filter: &str, arg: &str) -> Result<Vec<ContainerRecord>, ContainerError> {
        self.query_with(filter, &[arg], "")
    }

    /// The containers `filter` (with `args`) selects, newest first, then
    /// `limit`.
    fn query_with(
        &self,
        filter: &str,
        args: &[&str],
        limit: &str,
    ) -> Result<Vec<ContainerRecord>, ContainerError> {
        let sql = format!(
            "SELECT id, name, image_id, spec, state, exit_code, error, created_at, started_at, finished_at,
                    restart_count, manually_stopped
             FROM containers {filter} ORDER BY created_at DESC {limit}"
        );
        let mut stmt = self.db.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i32>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, u32>(10)?,
                r.get::<_, bool>(11)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (
                id,
                name,
                image_id,
                spec,
                state,
                exit_code,
                error,
                created,
                started,
                finished,
                restart_count,
                manually_stopped,
            ) = row?;
            let spec: ContainerSpec =
                serde_json::from_str(&spec).map_err(|e| ContainerError::Rootfs {
                    id: id.clone(),
                    message: format!("corrupt record: {e}"),
                })?;
            out.push(ContainerRecord {
                id,
                name,
                image_id,
                spec,
                state: ContainerState::parse(&state),
                exit_code,
                error,
                created_at: parse_time(&created).unwrap_or_default(),
                started_at: started.as_deref().and_then(parse_time),
                finished_at: finished.as_deref().and_then(parse_time),
                restart_count,
                manually_stopped,
            });
        }
        Ok(out)
    }
}

/// Takes a removed container's directory out of `containers/` at once, by
/// renaming it into this process's staging directory, and returns where it
/// went; deleting the files (slow on some filesystems) can then happen off
/// the caller's path. If the process dies first, the next opening of the
/// state root sweeps them (see `state::staging`).
pub fn detach_container_dir(root: &StateRoot, id: &str) -> Option<PathBuf> {
    remove_logs(root, id);
    let dir = container_dir(root, id);
    let trash = root.staging_dir().ok()?.join(format!("removed-{id}"));
    match std::fs::rename(&dir, &trash) {
        Ok(()) => Some(trash),
        Err(_) => None,
    }
}

/// Deletes what [`detach_container_dir`] moved out.
pub fn delete_detached(path: &std::path::Path) {
    if let Err(e) = remove_tree(path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot delete a removed container's files");
    }
}

/// Deletes a container's directory (its writable layer) and its logs.
pub fn remove_container_dir(root: &StateRoot, id: &str) -> Result<(), ContainerError> {
    remove_logs(root, id);
    let dir = container_dir(root, id);
    remove_tree(&dir).map_err(|e| ContainerError::Rootfs {
        id: id[..12.min(id.len())].to_string(),
        message: format!("cannot remove {}: {e}", dir.display()),
    })
}

/// `containers/<id>`: everything of one container.
pub fn container_dir(root: &StateRoot, id: &str) -> PathBuf {
    root.containers_dir().join(id)
}

/// The container's own copy of its image, preopened as its `/`.
pub fn rootfs_dir(root: &StateRoot, id: &str) -> PathBuf {
    container_dir(root, id).join("rootfs")
}

/// The container's log, in Docker's json-file format:
/// `containers/<id>-json.log`, beside the container's directory rather
/// than in it. A container that prints but writes no file then costs one
/// new file and no directory: on ext4 a new directory is far dearer, since
/// the allocator looks across block groups for a place to spread it.
pub fn log_path(root: &StateRoot, id: &str) -> PathBuf {
    root.containers_dir().join(format!("{id}-json.log"))
}

/// The `n`th rotated file of the log at `path` (`.1` is the newest).
pub fn rotated_log(path: &std::path::Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    p.into()
}

/// Deletes a container's log and its rotated files.
fn remove_logs(root: &StateRoot, id: &str) {
    let log = log_path(root, id);
    let _ = std::fs::remove_file(&log);
    for n in 1.. {
        if std::fs::remove_file(rotated_log(&log, n)).is_err() {
            break;
        }
    }
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
