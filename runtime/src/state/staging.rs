//! Staging space under `<root>/tmp/`: one directory per process, swept once
//! its owner is gone.
//!
//! Everything wrun stores is written under `tmp/` first and renamed into
//! place, so a crash never leaves a half-written blob, layer or file in the
//! store. What a crash does leave is the staged file itself. Several
//! processes stage at once (the daemon, and CLI commands such as `wrun pull`
//! and `wrun build`), so no process may simply empty `tmp/`.
//!
//! Each process that stages claims `tmp/own-<nonce>/` and holds an exclusive
//! lock on `tmp/own-<nonce>.lock` for as long as it lives. The operating
//! system lets go of a lock when its holder dies, even by SIGKILL, so
//! whoever opens the root later and can take the lock knows the owner is
//! gone, and deletes its directory.
//!
//! **Invariant:** the lock file exists, and is locked, before its directory
//! is made; a sweeper deletes the directory before the lock file. So a live
//! process's directory always has a locked lock file beside it.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

const PREFIX: &str = "own-";
const LOCK: &str = ".lock";

/// A process's claim on a staging directory under a parent (`<root>/tmp`),
/// made on first use. Clones share the claim; the last one to go deletes the
/// directory and its lock.
#[derive(Debug, Clone)]
pub struct Staging {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    parent: PathBuf,
    claim: Mutex<Option<Claim>>,
}

#[derive(Debug)]
struct Claim {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl Drop for Claim {
    fn drop(&mut self) {
        // The directory first, while the lock is still held (see the
        // invariant); errors leave work for a later sweep.
        let _ = remove_tree(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

impl Staging {
    /// Staging under `parent`, which must exist. Nothing is made until
    /// [`Staging::dir`] is first called.
    pub fn new(parent: impl Into<PathBuf>) -> Self {
        Self {
            inner: Arc::new(Inner {
                parent: parent.into(),
                claim: Mutex::new(None),
            }),
        }
    }

    /// This process's staging directory, claimed on the first call. Files
    /// made in it can be renamed into the store (same filesystem).
    pub fn dir(&self) -> io::Result<PathBuf> {
        let mut claim = self
            .inner
            .claim
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = claim.as_ref() {
            return Ok(c.dir.clone());
        }
        let made = claim_in(&self.inner.parent)?;
        let dir = made.dir.clone();
        *claim = Some(made);
        Ok(dir)
    }
}

/// Makes a fresh lock file, locks it, and only then makes the directory.
fn claim_in(parent: &Path) -> io::Result<Claim> {
    for _ in 0..16 {
        let name = format!("{PREFIX}{}-{:x}", std::process::id(), nonce());
        let lock_path = parent.join(format!("{name}{LOCK}"));
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&lock_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(with_path(e, &lock_path)),
        };
        // A sweeper may have opened the new file and taken the lock first
        // (it found no holder): try another name. Once ours, nobody can
        // delete it, but it may already have been deleted before we locked
        // it; then it is no claim.
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(with_path(e, &lock_path)),
        }
        if !lock_path.exists() {
            continue;
        }
        let dir = parent.join(&name);
        std::fs::create_dir(&dir).map_err(|e| with_path(e, &dir))?;
        return Ok(Claim {
            dir,
            lock_path,
            _lock: file,
        });
    }
    Err(io::Error::other(format!(
        "cannot claim a staging directory in {}",
        parent.display()
    )))
}

/// A value no other claim of this process has had, and unlikely for any
/// other process's (whose pid differs anyway).
fn nonce() -> u64 {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    nanos.wrapping_add(COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Deletes the staging directories under `parent` whose owners are gone:
/// those whose lock can be taken, and any left without a lock file.
/// Returns how many it deleted.
pub fn sweep(parent: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return 0;
    };
    let mut swept = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if let Some(stem) = rest.strip_suffix(LOCK) {
            let lock_path = entry.path();
            let Ok(file) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&lock_path)
            else {
                continue;
            };
            if file.try_lock().is_err() {
                continue; // alive, or busy being swept by another process
            }
            let dir = parent.join(format!("{PREFIX}{stem}"));
            if remove_tree(&dir).is_ok() && std::fs::remove_file(&lock_path).is_ok() {
                swept += 1;
            }
        } else if entry.path().is_dir() && !parent.join(format!("{name}{LOCK}")).exists() {
            // A directory is made only after its lock file, and deleted
            // before it, so one without a lock file belongs to nobody.
            if remove_tree(&entry.path()).is_ok() {
                swept += 1;
            }
        }
    }
    swept
}

/// Deletes a tree, first making read-only directories writable (a guest or
/// a layer may have left some), so the deletion can proceed.
pub fn remove_tree(dir: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    make_writable(dir);
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
    {
        if entry.file_type().is_dir()
            && let Ok(m) = entry.metadata()
        {
            let mode = m.permissions().mode();
            if mode & 0o700 != 0o700 {
                let _ = std::fs::set_permissions(
                    entry.path(),
                    std::fs::Permissions::from_mode(mode | 0o700),
                );
            }
        }
    }
}

// Windows directories have no write bit to restore.
#[cfg(not(unix))]
fn make_writable(_dir: &Path) {}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("ls")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_live_claim_survives_a_sweep_and_goes_with_its_owner() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = Staging::new(tmp.path());
        let dir = s.dir().expect("claim");
        assert_eq!(s.dir().expect("again"), dir, "one claim per Staging");
        std::fs::write(dir.join("part"), b"half").expect("stage");
        assert_eq!(sweep(tmp.path()), 0);
        assert!(dir.join("part").is_file(), "a live owner's file was swept");
        let clone = s.clone();
        drop(s);
        assert!(dir.is_dir(), "a clone still holds the claim");
        drop(clone);
        assert_eq!(listing(tmp.path()), Vec::<String>::new());
    }

    #[test]
    fn a_dead_owners_directory_is_swept() {
        let tmp = tempfile::tempdir().expect("tempdir");
        // What a killed process leaves: an unlocked lock file and its
        // directory, with a staged file; and a directory with no lock file.
        std::fs::write(tmp.path().join("own-dead.lock"), b"").expect("lock file");
        std::fs::create_dir_all(tmp.path().join("own-dead/sub")).expect("dir");
        std::fs::write(tmp.path().join("own-dead/sub/blob"), b"x").expect("file");
        std::fs::create_dir(tmp.path().join("own-orphan")).expect("dir");
        std::fs::write(tmp.path().join("other"), b"not ours").expect("file");
        let live = Staging::new(tmp.path());
        let live_dir = live.dir().expect("claim");
        assert_eq!(sweep(tmp.path()), 2);
        let mut left = listing(tmp.path());
        let live_name = live_dir.file_name().expect("name").to_string_lossy();
        left.retain(|n| !n.starts_with(&live_name[..]));
        assert_eq!(left, vec!["other".to_string()]);
        assert!(live_dir.is_dir());
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directories_are_deleted_too() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("own-ro");
        std::fs::create_dir_all(dir.join("locked")).expect("dir");
        std::fs::write(dir.join("locked/f"), b"x").expect("file");
        std::fs::set_permissions(dir.join("locked"), std::fs::Permissions::from_mode(0o555))
            .expect("chmod");
        std::fs::write(tmp.path().join("own-ro.lock"), b"").expect("lock file");
        assert_eq!(sweep(tmp.path()), 1);
        assert!(!dir.exists());
    }
}
