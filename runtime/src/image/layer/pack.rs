//! Writing a layer as a deterministic gzip'd tar.
//!
//! The same entries always give the same bytes: entries are sorted by path,
//! every header has owner 0:0, no user or group names, the given mtime, and
//! normalised modes; the gzip header carries no timestamp or file name.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use flate2::write::GzEncoder;
use tar::{EntryType, Header};

use super::LayerError;
use crate::image::blobs::BlobStore;
use crate::image::digest::{Digest, DigestWriter};

/// One entry of a layer to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir { mode: u32 },
    File { source: PathBuf, mode: u32 },
    Symlink { target: String },
}

/// A written layer: the compressed blob, and the digest of its tar.
#[derive(Debug, Clone)]
pub struct PackedLayer {
    pub digest: Digest,
    pub diff_id: Digest,
    /// Compressed size: the blob's.
    pub size: u64,
    /// Uncompressed size: the tar's.
    pub tar_size: u64,
}

/// Writes `entries` (keyed by relative path, `/`-separated, no leading `/`)
/// into a new blob. Missing parent directories are added with mode 0755.
pub fn pack(
    blobs: &BlobStore,
    mut entries: BTreeMap<String, EntryKind>,
    mtime: u64,
    layer: &str,
) -> Result<PackedLayer, LayerError> {
    let parents: Vec<String> = entries
        .keys()
        .flat_map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |i| parts[..i].join("/"))
        })
        .collect();
    for p in parents {
        entries.entry(p).or_insert(EntryKind::Dir { mode: 0o755 });
    }

    let tar_err = |source| LayerError::Tar {
        layer: layer.to_string(),
        source,
    };
    let blob = blobs.writer()?;
    let gz = flate2::GzBuilder::new().write(blob, flate2::Compression::default());
    let mut tar = tar::Builder::new(DigestWriter::new(gz));
    tar.mode(tar::HeaderMode::Deterministic);
    for (path, kind) in &entries {
        append(&mut tar, path, kind, mtime).map_err(|source| LayerError::Io {
            layer: layer.to_string(),
            path: PathBuf::from(path),
            source,
        })?;
    }
    let hashed = tar.into_inner().map_err(tar_err)?;
    let (gz, diff_id, tar_size) = hashed.finish();
    let blob: crate::image::blobs::BlobWriter = finish_gz(gz).map_err(tar_err)?;
    let (digest, size) = blob.commit(None)?;
    Ok(PackedLayer {
        digest,
        diff_id,
        size,
        tar_size,
    })
}

fn finish_gz<W: Write>(gz: GzEncoder<W>) -> io::Result<W> {
    gz.finish()
}

fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    kind: &EntryKind,
    mtime: u64,
) -> io::Result<()> {
    let mut h = Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    match kind {
        EntryKind::Dir { mode } => {
            h.set_entry_type(EntryType::Directory);
            h.set_mode(*mode);
            h.set_size(0);
            tar.append_data(&mut h, format!("{path}/"), io::empty())
        }
        EntryKind::File { source, mode } => {
            let file = File::open(source)?;
            h.set_entry_type(EntryType::Regular);
            h.set_mode(*mode);
            h.set_size(file.metadata()?.len());
            tar.append_data(&mut h, path, file)
        }
        EntryKind::Symlink { target } => {
            h.set_entry_type(EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            tar.append_link(&mut h, path, target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["blobs", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        let s = BlobStore::new(
            dir.path().join("blobs"),
            crate::state::Staging::new(dir.path().join("tmp")),
        );
        (dir, s)
    }

    #[test]
    fn same_entries_same_digest_and_roundtrip() {
        let (dir, s) = blobs();
        let src = dir.path().join("f");
        std::fs::write(&src, b"payload").expect("write");
        let mut e = BTreeMap::new();
        e.insert(
            "bin/busybox".to_string(),
            EntryKind::File {
                source: src.clone(),
                mode: 0o755,
            },
        );
        e.insert(
            "bin/sh".to_string(),
            EntryKind::Symlink {
                target: "busybox".into(),
            },
        );
        let a = pack(&s, e.clone(), 0, "t").expect("pack");
        let b = pack(&s, e, 0, "t").expect("pack again");
        assert_eq!(a.digest, b.digest);
        let out = tempfile::tempdir().expect("tempdir");
        let diff = super::super::unpack::unpack(s.open(&a.digest).expect("open"), out.path(), "t")
            .expect("unpack");
        assert_eq!(diff, a.diff_id);
        assert_eq!(
            std::fs::read(out.path().join("bin/busybox")).expect("read"),
            b"payload"
        );
    }
}
