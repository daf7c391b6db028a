//! A limit on the bytes a container's writable layer holds
//! (`--storage-opt size=`), as Docker's overlay2 sets with a project quota.
//!
//! The count is of file sizes in the upper layer: what was copied up, and
//! what writes and truncations added or took away. A write that would go
//! past the limit fails with "no space left on device", as on a full disk,
//! and nothing of it is written. Hard links share their bytes, and count
//! once; directories, symlinks and whiteouts are not counted.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Quota {
    limit: u64,
    used: AtomicU64,
}

impl Quota {
    /// A limit of `limit` bytes, of which what `upper` already holds (a
    /// container that ran before) is in use.
    pub fn new(limit: u64, upper: &Path) -> Self {
        Self {
            limit,
            used: AtomicU64::new(bytes_under(upper)),
        }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Counts `n` more bytes; false (and nothing counted) past the limit.
    pub fn reserve(&self, n: u64) -> bool {
        n == 0
            || self
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                    u.checked_add(n).filter(|t| *t <= self.limit)
                })
                .is_ok()
    }

    /// Counts `n` bytes given back.
    pub fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(n))
            });
    }

    /// Counts a file's change of size from `before` to `after`; false (and
    /// nothing counted) when growing it would pass the limit.
    pub fn resize(&self, before: u64, after: u64) -> bool {
        if after >= before {
            self.reserve(after - before)
        } else {
            self.release(before - after);
            true
        }
    }
}

/// The bytes of the regular files under `dir`, each hard-linked file once.
fn bytes_under(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| once(&mut seen, m))
        .map(|m| m.len())
        .sum()
}

#[cfg(unix)]
fn once(seen: &mut std::collections::HashSet<(u64, u64)>, m: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.nlink() <= 1 || seen.insert((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn once(_seen: &mut std::collections::HashSet<(u64, u64)>, _m: &std::fs::Metadata) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_release_and_resize_keep_to_the_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), vec![0u8; 300]).expect("a");
        std::fs::create_dir(dir.path().join("d")).expect("d");
        std::fs::write(dir.path().join("d/b"), vec![0u8; 200]).expect("b");
        #[cfg(unix)]
        std::fs::hard_link(dir.path().join("a"), dir.path().join("d/a2")).expect("link");
        let q = Quota::new(1000, dir.path());
        assert_eq!(q.used(), 500, "hard links count once");
        assert!(q.reserve(500));
        assert!(!q.reserve(1), "past the limit");
        assert_eq!(q.used(), 1000);
        q.release(400);
        assert!(q.resize(100, 450));
        assert!(!q.resize(0, 51));
        assert!(q.resize(450, 0));
        assert_eq!(q.used(), 500);
        q.release(10_000);
        assert_eq!(q.used(), 0, "never below zero");
    }
}
