//! The state root: the one directory under which wrun keeps everything it owns.
//!
//! ```text
//! <root>/
//!   wrun.db               metadata (SQLite, WAL): images, tags, build cache, containers
//!   blobs/sha256/<hex>    content-addressed blobs: manifests, configs, layer tars
//!   layers/<hex>          each layer unpacked once, keyed by its diff ID
//!   containers/<id>/      a container's own rootfs copy and its synthetic /proc
//!   cache/compiled/<engine>/  compiled code, keyed by module digest and engine hash
//!   tmp/own-<n>/          one process's staging area; everything is renamed
//!                         into place from here (see `staging`)
//! ```

mod db;
mod staging;

pub use db::{CachedSql, Db, DbError, long_lived_process};
pub use staging::{Staging, remove_tree};

use std::path::{Path, PathBuf};

/// Errors opening or laying out the state root.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state root {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state root: no home or data directory found; pass --root or set WRUN_ROOT")]
    NoDefault,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The directories of one state root. Cheap to clone; its only handle is
/// the lock of its staging directory, once it has one.
#[derive(Debug, Clone)]
pub struct StateRoot {
    dir: PathBuf,
    staging: Staging,
}

impl StateRoot {
    /// The platform's data directory for wrun (`~/.local/share/wrun` on Linux,
    /// `~/Library/Application Support/dev.wrun.wrun` on macOS, `%APPDATA%` on Windows).
    pub fn default_dir() -> Result<PathBuf, StateError> {
        directories::ProjectDirs::from("dev", "wrun", "wrun")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or(StateError::NoDefault)
    }

    /// Opens (creating if needed) the state root at `dir`, and deletes what
    /// processes that died left staged in it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StateError> {
        let dir = dir.into();
        let root = Self {
            staging: Staging::new(dir.join("tmp")),
            dir,
        };
        for sub in [
            root.blobs_dir(),
            root.layers_dir(),
            root.containers_dir(),
            root.compiled_cache_dir(),
            root.tmp_dir(),
        ] {
            std::fs::create_dir_all(&sub).map_err(|source| StateError::Io {
                path: sub.clone(),
                source,
            })?;
        }
        let swept = staging::sweep(&root.tmp_dir());
        if swept > 0 {
            tracing::info!(swept, "deleted what dead processes left staged");
        }
        Ok(root)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.join("wrun.db")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.dir.join("layers")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.dir.join("containers")
    }

    pub fn compiled_cache_dir(&self) -> PathBuf {
        self.dir.join("cache").join("compiled")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.dir.join("tmp")
    }

    /// This process's own staging directory under `tmp/`, made on first use.
    pub fn staging_dir(&self) -> std::io::Result<PathBuf> {
        self.staging.dir()
    }

    /// The staging claim itself, for stores that make files lazily.
    pub fn staging(&self) -> &Staging {
        &self.staging
    }

    /// Opens a connection to this root's metadata database.
    pub fn db(&self) -> Result<Db, StateError> {
        Ok(Db::open(&self.db_path())?)
    }
}
