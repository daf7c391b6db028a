//! The embedded metadata database: SQLite in WAL mode.
//!
//! Why SQLite rather than redb: several `wrun` processes may work on one state
//! root at once (two builds, a build and a run, later the daemon and a CLI).
//! SQLite coordinates them with file locks and a busy timeout, and every
//! change is an atomic, crash-safe transaction. redb allows one process only.
//!
//! Durability: WAL with `synchronous=NORMAL`. A killed `wrun` (even
//! `kill -9`) never loses a committed change; a power cut may lose the last
//! few, but never leaves a torn database.
//!
//! This module owns the schema and its migrations; the queries belong to the
//! modules whose records they are (`image::store`, `container::records`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rusqlite::Connection;

/// WAL pages after which a write checkpoints the WAL into the database.
static AUTOCHECKPOINT_PAGES: AtomicU32 = AtomicU32::new(64);

/// For a process that keeps its connections open, the daemon: its
/// connections checkpoint at SQLite's default of 1,000 pages (~4 MiB), so a
/// burst of writes (a hundred pods created at once) pays for fewer
/// checkpoints, each of which syncs the WAL and the database. A command
/// that opens the database meanwhile reads a longer WAL.
pub fn long_lived_process() {
    AUTOCHECKPOINT_PAGES.store(1000, Ordering::Relaxed);
}

/// Errors from the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("metadata database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("metadata database {}: schema version {found} is newer than this wrun understands ({known})", path.display())]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
}

/// How long a writer waits for another process's transaction to finish.
/// Builds commit in well under a second; ten seconds absorbs a slow disk.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many have run. Never edit one that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    id              TEXT PRIMARY KEY,      -- config digest, as Docker's image ID
    manifest_digest TEXT NOT NULL,
    manifest_media_type TEXT NOT NULL,
    size            INTEGER NOT NULL,      -- bytes of the unpacked layers
    created         TEXT,                  -- from the image config
    added_at        TEXT NOT NULL
);
CREATE TABLE tags (
    name     TEXT PRIMARY KEY,             -- canonical reference, e.g. docker.io/library/busybox:latest
    image_id TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE build_cache (
    key        TEXT PRIMARY KEY,           -- sha256 of parent key, instruction and inputs
    layer      TEXT NOT NULL,              -- compressed blob digest
    diff_id    TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE containers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    image_id    TEXT NOT NULL,
    image_name  TEXT NOT NULL,
    spec        TEXT NOT NULL,             -- JSON of container::ContainerSpec
    state       TEXT NOT NULL,
    exit_code   INTEGER,
    error       TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);
CREATE INDEX containers_image ON containers(image_id);
"#,
    r#"
-- The daemon's restart bookkeeping.
ALTER TABLE containers ADD COLUMN restart_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE containers ADD COLUMN manually_stopped INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
-- User-defined networks (`network create`); the built-in ones are not stored.
CREATE TABLE networks (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    subnet     TEXT NOT NULL,
    created_at TEXT NOT NULL
);
"#,
    r#"
-- The cluster's Kubernetes objects (cluster::store), as JSON, under one
-- global resourceVersion counter.
CREATE TABLE kube_objects (
    resource  TEXT NOT NULL,               -- qualified plural: pods, deployments.apps
    namespace TEXT NOT NULL,               -- '' for cluster-scoped kinds
    name      TEXT NOT NULL,
    uid       TEXT NOT NULL,
    rv        INTEGER NOT NULL,            -- the resourceVersion of its last write
    body      TEXT NOT NULL,
    PRIMARY KEY (resource, namespace, name)
);
CREATE TABLE kube_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"#,
    r#"
-- A network's labels (`network create --label`), as a JSON object.
ALTER TABLE networks ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
"#,
];

/// Statements each connection keeps parsed (see [`CachedSql`]).
const STATEMENT_CACHE: usize = 64;

/// Running SQL through the connection's statement cache, so that a
/// long-lived process (the daemon) parses each statement's text once
/// rather than on every request.
pub trait CachedSql {
    /// `Connection::execute`, cached.
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// `Connection::query_row`, cached.
    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedSql for Connection {
    fn exec<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// One connection to the metadata database.
pub struct Db {
    conn: Connection,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").finish_non_exhaustive()
    }
}

impl Db {
    /// Opens the database, creating it and running migrations as needed.
    pub fn open(path: &Path) -> Result<Self, DbError> {
        let open_err = |source| DbError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        // Every `wrun` command is a short process. By default the last
        // connection to close checkpoints the WAL into the database and
        // deletes it (three fsyncs), and the next process recreates it (a
        // directory fsync). Leave that to SQLite's automatic checkpoints
        // during writes instead; the WAL stays crash-safe either way.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(open_err)?;
        // Each process is the first to open the database, so SQLite rescans
        // the whole WAL on every command: keep it short. Checkpoint every
        // 64 pages (~256 KiB, about six container runs) and truncate a WAL
        // that has grown past 1 MiB. The daemon checkpoints less often
        // (see `long_lived_process`).
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            AUTOCHECKPOINT_PAGES.load(Ordering::Relaxed),
        )
        .map_err(open_err)?;
        conn.pragma_update(None, "journal_size_limit", 1 << 20)
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        migrate(&mut conn, path)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self { conn })
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Starts an immediate (write-locking) transaction, so that a
    /// read-then-write sequence cannot race another process.
    pub fn write(&mut self) -> Result<rusqlite::Transaction<'_>, DbError> {
        Ok(self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?)
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), DbError> {
    // The common case, an up-to-date schema, needs no write lock.
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current == MIGRATIONS.len() as i64 {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(DbError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known,
        });
    }
    for sql in MIGRATIONS.iter().skip(version as usize) {
        tx.execute_batch(sql)?;
    }
    if version < known {
        tx.pragma_update(None, "user_version", known)?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_twice_and_migrates_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wrun.db");
        let a = Db::open(&path).expect("first open");
        let b = Db::open(&path).expect("second open");
        let v: i64 = b
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(v, MIGRATIONS.len() as i64);
        drop(a);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wrun.db");
        drop(Db::open(&path).expect("open"));
        let c = Connection::open(&path).expect("raw open");
        c.pragma_update(None, "user_version", 99).expect("bump");
        drop(c);
        let err = Db::open(&path).expect_err("newer schema must fail");
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
