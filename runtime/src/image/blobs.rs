//! The content-addressed blob store: `blobs/sha256/<hex>`.
//!
//! **Architecture Invariant:** a blob file only ever appears under its own
//! digest. Writers stage into `tmp/`, the digest is checked, the data is
//! synced, and only then is the file renamed into place; a write that fails
//! verification, or a crash mid-write, leaves nothing behind in `blobs/`.
//! Renames are atomic, so two processes writing the same blob both succeed
//! and the store holds one copy.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::digest::{Digest, DigestWriter};
use crate::state::Staging;

/// Errors of the blob store.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {digest}: {source}")]
    Io {
        digest: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "blob {expected}: content does not match its digest (got {actual}); nothing was stored"
    )]
    Mismatch { expected: Digest, actual: Digest },
    #[error("blob {0}: not in the store")]
    Missing(Digest),
}

/// The blob directory plus the staging directory on the same filesystem.
#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    staging: Staging,
}

/// See [`BlobStore::stamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobStamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    /// The inode's change time and number, where there are such things.
    changed: (i64, i64, u64),
}

impl BlobStore {
    pub fn new(dir: PathBuf, staging: Staging) -> Self {
        Self { dir, staging }
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Opens a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File, BlobError> {
        File::open(self.path(digest)).map_err(|e| read_error(digest, e))
    }

    /// What the blob's file looks like now (size, times, inode): an append,
    /// a replacement or a rewrite changes it (short of a rewrite to the
    /// same length within one tick of the filesystem's clock), so bytes
    /// verified under one stamp may be used again while it holds. `None`
    /// if the file cannot be read.
    pub fn stamp(&self, digest: &Digest) -> Option<BlobStamp> {
        let m = std::fs::metadata(self.path(digest)).ok()?;
        #[cfg(unix)]
        let changed = {
            use std::os::unix::fs::MetadataExt;
            (m.ctime(), m.ctime_nsec(), m.ino())
        };
        #[cfg(not(unix))]
        let changed = (0, 0, 0);
        Some(BlobStamp {
            len: m.len(),
            modified: m.modified().ok(),
            changed,
        })
    }

    /// Reads a whole (small) blob and checks it against its digest, so a
    /// manifest or config tampered with on disk is never trusted.
    pub fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let bytes = std::fs::read(self.path(digest)).map_err(|e| read_error(digest, e))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(BlobError::Mismatch {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes` and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, BlobError> {
        let mut w = self.writer()?;
        w.write_all(bytes).map_err(|source| BlobError::Io {
            digest: "(new)".into(),
            source,
        })?;
        Ok(w.commit(None)?.0)
    }

    /// A new file in the staging directory, for a blob shown as `shown`
    /// in errors.
    fn staged(&self, shown: String) -> Result<NamedTempFile, BlobError> {
        self.staging
            .dir()
            .and_then(NamedTempFile::new_in)
            .map_err(|source| BlobError::Io {
                digest: shown,
                source,
            })
    }

    /// Starts a streaming write.
    pub fn writer(&self) -> Result<BlobWriter, BlobError> {
        let file = self.staged("(new)".into())?;
        Ok(BlobWriter {
            inner: Inner::Hashing(DigestWriter::new(file)),
            dir: self.dir.clone(),
        })
    }

    /// Starts a streaming write of bytes that their source checks against
    /// `expected` itself, such as a registry's blob stream that fails at
    /// its end unless the digest matched. They are not hashed a second
    /// time: the caller commits only once the source has said they match,
    /// and the blob is stored under `expected`.
    pub fn writer_checked_by_source(&self, expected: &Digest) -> Result<BlobWriter, BlobError> {
        let file = self.staged(expected.to_string())?;
        Ok(BlobWriter {
            inner: Inner::Checked {
                file,
                digest: expected.clone(),
                len: 0,
            },
            dir: self.dir.clone(),
        })
    }
}

/// A blob being written; dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    inner: Inner,
    dir: PathBuf,
}

enum Inner {
    /// Hashed as it is written; stored under what it hashes to.
    Hashing(DigestWriter<NamedTempFile>),
    /// Checked by its source; stored under `digest`.
    Checked {
        file: NamedTempFile,
        digest: Digest,
        len: u64,
    },
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Hashing(w) => w.write(buf),
            Inner::Checked { file, len, .. } => {
                let n = file.write(buf)?;
                *len += n as u64;
                Ok(n)
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Hashing(w) => w.flush(),
            Inner::Checked { file, .. } => file.flush(),
        }
    }
}

impl BlobWriter {
    /// Verifies the content against `expected` (when given; a writer whose
    /// source checked the bytes takes its word), syncs it and moves it into
    /// place. Returns the digest and the size.
    pub fn commit(self, expected: Option<&Digest>) -> Result<(Digest, u64), BlobError> {
        let (file, actual, len) = match self.inner {
            Inner::Hashing(w) => w.finish(),
            Inner::Checked { file, digest, len } => (file, digest, len),
        };
        if let Some(expected) = expected
            && expected != &actual
        {
            return Err(BlobError::Mismatch {
                expected: expected.clone(),
                actual,
            });
        }
        let io_err = |source| BlobError::Io {
            digest: actual.to_string(),
            source,
        };
        file.as_file().sync_all().map_err(io_err)?;
        let dest = self.dir.join(actual.hex());
        persist(file, &dest).map_err(io_err)?;
        Ok((actual, len))
    }
}

fn read_error(digest: &Digest, source: io::Error) -> BlobError {
    if source.kind() == io::ErrorKind::NotFound {
        BlobError::Missing(digest.clone())
    } else {
        BlobError::Io {
            digest: digest.to_string(),
            source,
        }
    }
}

/// Renames a staged file into place. If another writer got there first the
/// content is identical by construction, so keeping theirs is correct.
fn persist(file: NamedTempFile, dest: &Path) -> io::Result<()> {
    match file.persist_noclobber(dest) {
        Ok(_) => Ok(()),
        Err(e) if dest.is_file() => {
            drop(e);
            Ok(())
        }
        Err(e) => Err(e.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = dir.path().join("blobs");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&blobs).expect("mkdir");
        std::fs::create_dir_all(&tmp).expect("mkdir");
        (dir, BlobStore::new(blobs, Staging::new(tmp)))
    }

    #[test]
    fn put_then_read() {
        let (_d, s) = store();
        let d = s.put(b"hello").expect("put");
        assert_eq!(s.read_verified(&d).expect("read"), b"hello");
        assert_eq!(s.put(b"hello").expect("put again"), d);
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let (dir, s) = store();
        let wrong = Digest::of(b"other");
        let mut w = s.writer().expect("writer");
        w.write_all(b"hello").expect("write");
        let err = w.commit(Some(&wrong)).expect_err("must mismatch");
        assert!(err.to_string().contains("does not match"), "{err}");
        assert_eq!(
            std::fs::read_dir(dir.path().join("blobs"))
                .expect("ls")
                .count(),
            0
        );
        let staged = s.staging.dir().expect("staging");
        assert_eq!(std::fs::read_dir(staged).expect("ls").count(), 0);
    }

    #[test]
    fn tampered_blob_is_refused_on_read() {
        let (_d, s) = store();
        let d = s.put(b"{}").expect("put");
        std::fs::write(s.path(&d), b"{\"x\":1}").expect("tamper");
        assert!(matches!(
            s.read_verified(&d),
            Err(BlobError::Mismatch { .. })
        ));
    }

    #[test]
    fn a_blob_changed_on_disk_changes_its_stamp() {
        let (_d, s) = store();
        let d = s.put(b"{}").expect("put");
        let first = s.stamp(&d).expect("stamp");
        assert_eq!(s.stamp(&d), Some(first.clone()), "nothing changed");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(s.path(&d))
            .expect("open");
        std::io::Write::write_all(&mut f, b" ").expect("append");
        drop(f);
        let appended = s.stamp(&d).expect("stamp");
        assert_ne!(appended, first, "an append");
        let other = s.path(&d).with_extension("new");
        std::fs::write(&other, b"{ }").expect("write");
        std::fs::rename(&other, s.path(&d)).expect("replace");
        assert_ne!(s.stamp(&d), Some(appended), "a replacement");
        std::fs::remove_file(s.path(&d)).expect("rm");
        assert_eq!(s.stamp(&d), None, "gone");
    }
}
