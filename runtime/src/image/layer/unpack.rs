//! Unpacking one layer tar into a directory, refusing anything that could
//! write outside it.
//!
//! **Architecture Invariant:** no entry is written unless its path is
//! relative, free of `..`, and reaches its parent without passing through a
//! symlink. Symlink *targets* are stored as they are (images contain
//! absolute ones); they are never followed while unpacking, and the guest
//! resolves them under capability rules at run time.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use tar::EntryType;

use super::{Compression, LayerError};
use crate::image::digest::{Digest, DigestReader};

/// Unpacks a (possibly compressed) layer into `dest`, which must exist and be
/// empty. Returns the diff ID: the digest of the uncompressed tar.
/// `layer` names the layer in errors.
pub fn unpack(reader: impl Read, dest: &Path, layer: &str) -> Result<Digest, LayerError> {
    let mut reader = BufReader::new(reader);
    let tar_err = |source| LayerError::Tar {
        layer: layer.to_string(),
        source,
    };
    let head = reader.fill_buf().map_err(tar_err)?;
    let stream: Box<dyn Read> = match Compression::sniff(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::with_buffer(reader).map_err(tar_err)?)
        }
        Compression::None => Box::new(reader),
    };
    let mut hashed = DigestReader::new(stream);
    unpack_tar(&mut hashed, dest, layer)?;
    let (diff_id, _) = hashed.finish().map_err(tar_err)?;
    Ok(diff_id)
}

fn unpack_tar(reader: &mut impl Read, dest: &Path, layer: &str) -> Result<(), LayerError> {
    let tar_err = |source| LayerError::Tar {
        layer: layer.to_string(),
        source,
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    // Directory modes are applied last, so that a read-only directory in the
    // layer does not stop its own children from being written.
    let mut dir_modes: BTreeMap<PathBuf, u32> = BTreeMap::new();
    let mut buf = vec![0u8; COPY_BUFFER];
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw = entry.path().map_err(tar_err)?.into_owned();
        let name = raw.to_string_lossy().into_owned();
        let rel = checked_relative(&raw, layer, &name)?;
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        refuse_symlink_ancestors(dest, &rel, layer, &name)?;
        let io_err = |source| LayerError::Io {
            layer: layer.to_string(),
            path: rel.clone(),
            source,
        };
        match entry.header().entry_type() {
            EntryType::Directory => {
                let path = dest.join(&rel);
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        std::fs::remove_file(&path).map_err(io_err)?;
                        std::fs::create_dir_all(&path).map_err(io_err)?;
                    }
                    Err(_) => std::fs::create_dir_all(&path).map_err(io_err)?,
                }
                let mode = entry.header().mode().unwrap_or(0o755);
                dir_modes.insert(path, mode);
            }
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(tar_err)?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let shown = target.to_string_lossy().into_owned();
                let bad = || LayerError::BadLink {
                    layer: layer.to_string(),
                    entry: name.clone(),
                    target: shown.clone(),
                };
                let target_rel = checked_relative(&target, layer, &name).map_err(|_| bad())?;
                refuse_symlink_ancestors(dest, &target_rel, layer, &name)?;
                if let Some(parent) = rel.parent() {
                    std::fs::create_dir_all(dest.join(parent)).map_err(io_err)?;
                }
                let link = dest.join(&rel);
                let _ = std::fs::remove_file(&link);
                std::fs::hard_link(dest.join(&target_rel), &link).map_err(io_err)?;
            }
            EntryType::Regular | EntryType::Continuous => {
                if let Some(parent) = rel.parent() {
                    std::fs::create_dir_all(dest.join(parent)).map_err(io_err)?;
                }
                write_file(&mut entry, &dest.join(&rel), &mut buf).map_err(io_err)?;
            }
            EntryType::Symlink | EntryType::GNUSparse => {
                if let Some(parent) = rel.parent() {
                    std::fs::create_dir_all(dest.join(parent)).map_err(io_err)?;
                }
                if !entry.unpack_in(dest).map_err(io_err)? {
                    return Err(LayerError::Traversal {
                        layer: layer.to_string(),
                        entry: name,
                    });
                }
            }
            other => {
                // Devices and FIFOs mean nothing to a wasm guest.
                tracing::debug!(layer, entry = %name, kind = ?other, "skipping special file");
            }
        }
    }
    for (path, mode) in dir_modes.into_iter().rev() {
        set_mode(&path, mode).map_err(|source| LayerError::Io {
            layer: layer.to_string(),
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Bytes copied per write into an unpacked file.
const COPY_BUFFER: usize = 256 << 10;

/// Writes a regular file's entry to `path`, whose parents are already
/// checked to hold no symlink. What an earlier entry left there (other than
/// a directory) is replaced. The file is created exclusively, so a link at
/// `path` is never followed, with the entry's mode and modification time.
fn write_file<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &Path,
    buf: &mut [u8],
) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Ok(m) = std::fs::symlink_metadata(path)
        && !m.is_dir()
    {
        std::fs::remove_file(path)?;
    }
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644);
    let mtime = header.mtime().ok();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    // The decompressor hands over a few KiB at a time: fill the buffer
    // before each write.
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        file.write_all(&buf[..filled])?;
        if filled < buf.len() {
            break;
        }
    }
    if let Some(secs) = mtime {
        file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))?;
    }
    #[cfg(not(unix))]
    let _ = mode;
    Ok(())
}

/// Turns an archive path into a clean relative one, refusing absolute paths
/// and any `..`.
pub(crate) fn checked_relative(raw: &Path, layer: &str, name: &str) -> Result<PathBuf, LayerError> {
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(LayerError::Traversal {
                    layer: layer.to_string(),
                    entry: name.to_string(),
                });
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(LayerError::AbsolutePath {
                    layer: layer.to_string(),
                    entry: name.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Refuses a path whose existing ancestors inside `dest` include a symlink:
/// writing there would land wherever the symlink points.
fn refuse_symlink_ancestors(
    dest: &Path,
    rel: &Path,
    layer: &str,
    name: &str,
) -> Result<(), LayerError> {
    let mut cur = dest.to_path_buf();
    let mut parents: Vec<_> = rel.components().collect();
    parents.pop();
    for c in parents {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(LayerError::ThroughSymlink {
                    layer: layer.to_string(),
                    entry: name.to_string(),
                    via: cur
                        .strip_prefix(dest)
                        .unwrap_or(&cur)
                        .to_string_lossy()
                        .into_owned(),
                });
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
}

// Windows has no mode bits; the read-only attribute is the nearest thing and
// directories never carry it, so there is nothing to apply.
#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().expect("finish tar")
    }

    fn file_header(path: &str, len: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // Bypass the builder's own path checks to write hostile names.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(len);
        h.set_mode(0o644);
        h.set_entry_type(EntryType::Regular);
        h.set_cksum();
        h
    }

    #[test]
    fn unpacks_files_dirs_and_symlinks() {
        let data = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            b.append_data(&mut h, "bin/", &[][..]).expect("dir");
            let mut h = tar::Header::new_gnu();
            h.set_size(4);
            h.set_mode(0o755);
            b.append_data(&mut h, "bin/busybox", &b"\0asm"[..])
                .expect("file");
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "bin/sh", "busybox").expect("link");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let diff = unpack(&data[..], dir.path(), "test").expect("unpack");
        assert_eq!(diff, Digest::of(&data));
        assert_eq!(
            std::fs::read(dir.path().join("bin/busybox")).expect("read"),
            b"\0asm"
        );
        assert_eq!(
            std::fs::read_link(dir.path().join("bin/sh")).expect("readlink"),
            Path::new("busybox")
        );
    }

    #[cfg(unix)]
    #[test]
    fn files_keep_mode_and_mtime_and_a_later_entry_replaces_an_earlier_one() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let big: Vec<u8> = (0..(COPY_BUFFER * 2 + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        let outside = tempfile::tempdir().expect("tempdir");
        let target = outside.path().join("target");
        std::fs::write(&target, b"untouched").expect("write");
        let data = tar_with(|b| {
            let file = |b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, bytes: &[u8]| {
                let mut h = tar::Header::new_gnu();
                h.set_size(bytes.len() as u64);
                h.set_mode(mode);
                h.set_mtime(1_000_000_000);
                b.append_data(&mut h, path, bytes).expect("file");
            };
            file(b, "etc/ro", 0o444, b"first");
            file(b, "etc/ro", 0o444, b"second");
            file(b, "big.bin", 0o640, &big);
            // A link to a host file, then a file of the same name: the
            // file replaces the link, and nothing is written through it.
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "etc/conf", &target).expect("link");
            file(b, "etc/conf", 0o600, b"mine");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        unpack(&data[..], dir.path(), "test").expect("unpack");
        let ro = dir.path().join("etc/ro");
        assert_eq!(std::fs::read(&ro).expect("read"), b"second");
        let m = std::fs::metadata(&ro).expect("stat");
        assert_eq!(m.permissions().mode() & 0o7777, 0o444);
        assert_eq!(m.mtime(), 1_000_000_000);
        let m = std::fs::metadata(dir.path().join("big.bin")).expect("stat");
        assert_eq!(m.permissions().mode() & 0o7777, 0o640);
        assert_eq!(
            std::fs::read(dir.path().join("big.bin")).expect("read"),
            big
        );
        let conf = dir.path().join("etc/conf");
        assert!(
            !std::fs::symlink_metadata(&conf)
                .expect("lstat")
                .is_symlink()
        );
        assert_eq!(std::fs::read(&conf).expect("read"), b"mine");
        assert_eq!(std::fs::read(&target).expect("read"), b"untouched");
    }

    #[test]
    fn gzip_diff_id_is_of_the_uncompressed_tar() {
        use std::io::Write;
        let data = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(2);
            h.set_mode(0o644);
            b.append_data(&mut h, "a", &b"hi"[..]).expect("file");
        });
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).expect("gz");
        let gz = gz.finish().expect("gz finish");
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            unpack(&gz[..], dir.path(), "t").expect("unpack"),
            Digest::of(&data)
        );
    }

    #[test]
    fn zstd_layers_unpack_too() {
        let data = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_size(4);
            h.set_mode(0o755);
            b.append_data(&mut h, "app.wasm", &b"\0asm"[..])
                .expect("file");
        });
        let compressed = zstd::stream::encode_all(&data[..], 3).expect("zstd");
        let dir = tempfile::tempdir().expect("tempdir");
        let diff = unpack(&compressed[..], dir.path(), "t").expect("unpack");
        assert_eq!(
            diff,
            Digest::of(&data),
            "the diff ID is of the uncompressed tar"
        );
        assert_eq!(
            std::fs::read(dir.path().join("app.wasm")).expect("read"),
            b"\0asm"
        );
    }

    #[test]
    fn refuses_parent_dir_entries() {
        let mut data = file_header("../evil", 1).as_bytes().to_vec();
        data.extend_from_slice(&[b'x'; 512]);
        data.extend_from_slice(&[0; 1024]);
        let dir = tempfile::tempdir().expect("tempdir");
        let inner = dir.path().join("layer");
        std::fs::create_dir(&inner).expect("mkdir");
        let err = unpack(&data[..], &inner, "sha256:abc").expect_err("must refuse");
        assert!(matches!(err, LayerError::Traversal { .. }), "{err}");
        assert!(err.to_string().contains("sha256:abc"), "{err}");
        assert!(!dir.path().join("evil").exists());
    }

    #[test]
    fn refuses_absolute_entries() {
        let mut data = file_header("/etc/evil", 1).as_bytes().to_vec();
        data.extend_from_slice(&[b'x'; 512]);
        data.extend_from_slice(&[0; 1024]);
        let dir = tempfile::tempdir().expect("tempdir");
        let err = unpack(&data[..], dir.path(), "l").expect_err("must refuse");
        assert!(matches!(err, LayerError::AbsolutePath { .. }), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn refuses_writing_through_a_symlink_in_the_same_layer() {
        let outside = tempfile::tempdir().expect("tempdir");
        let data = tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "escape", outside.path())
                .expect("link");
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            b.append_data(&mut h, "escape/pwned", &b"x"[..])
                .expect("file");
        });
        let dir = tempfile::tempdir().expect("tempdir");
        let err = unpack(&data[..], dir.path(), "l").expect_err("must refuse");
        assert!(matches!(err, LayerError::ThroughSymlink { .. }), "{err}");
        assert!(!outside.path().join("pwned").exists());
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = unpack(&b"\x1f\x8bnot really gzip"[..], dir.path(), "l").expect_err("garbage");
        assert!(err.to_string().starts_with("layer l:"), "{err}");
    }
}
