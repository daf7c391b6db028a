//! Stacking unpacked layers into one directory tree, as overlayfs would.
//!
//! Each layer is applied in two passes: first its whiteouts (`.wh.NAME`
//! deletes NAME from the layers below, `.wh..wh..opq` empties its directory),
//! then its files. A directory in an upper layer replaces a symlink of the
//! same name below it, so nothing is ever written through a symlink.
//! Hard links inside a layer become independent copies.

use std::io;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::LayerError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Applies `layers` (bottom first) onto `dest`. Returns the bytes copied.
pub fn compose(layers: &[PathBuf], dest: &Path) -> Result<u64, LayerError> {
    let mut bytes = 0;
    for layer in layers {
        let name = layer
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        apply_whiteouts(layer, dest).map_err(|(path, source)| LayerError::Io {
            layer: name.clone(),
            path,
            source,
        })?;
        bytes += copy_layer(layer, dest).map_err(|(path, source)| LayerError::Io {
            layer: name.clone(),
            path,
            source,
        })?;
    }
    Ok(bytes)
}

type Failed = (PathBuf, io::Error);

fn walk(layer: &Path) -> impl Iterator<Item = Result<(PathBuf, walkdir::DirEntry), Failed>> + '_ {
    WalkDir::new(layer)
        .min_depth(1)
        .sort_by_file_name()
        .follow_links(false)
        .into_iter()
        .map(move |e| {
            let e = e.map_err(|e| {
                let path = e.path().map(Path::to_path_buf).unwrap_or_default();
                (path, io::Error::other(e))
            })?;
            let rel = e
                .path()
                .strip_prefix(layer)
                .unwrap_or(e.path())
                .to_path_buf();
            Ok((rel, e))
        })
}

fn apply_whiteouts(layer: &Path, dest: &Path) -> Result<(), Failed> {
    for item in walk(layer) {
        let (rel, entry) = item?;
        let fname = entry.file_name().to_string_lossy();
        let parent = rel.parent().unwrap_or(Path::new(""));
        if fname == OPAQUE {
            let dir = dest.join(parent);
            if let Ok(children) = std::fs::read_dir(&dir) {
                for child in children.flatten() {
                    remove_any(&child.path()).map_err(|e| (rel.clone(), e))?;
                }
            }
        } else if let Some(victim) = fname.strip_prefix(WHITEOUT_PREFIX) {
            if victim.is_empty() || victim == "." || victim == ".." || victim.contains('/') {
                continue;
            }
            let path = dest.join(parent).join(victim);
            if std::fs::symlink_metadata(&path).is_ok() {
                remove_any(&path).map_err(|e| (rel.clone(), e))?;
            }
        }
    }
    Ok(())
}

fn copy_layer(layer: &Path, dest: &Path) -> Result<u64, Failed> {
    let mut bytes = 0;
    for item in walk(layer) {
        let (rel, entry) = item?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(WHITEOUT_PREFIX)
        {
            continue;
        }
        let target = dest.join(&rel);
        let fail = |e| (rel.clone(), e);
        let ft = entry.file_type();
        let existing = std::fs::symlink_metadata(&target).ok();
        if ft.is_dir() {
            if existing.as_ref().is_some_and(|m| !m.is_dir()) {
                remove_any(&target).map_err(fail)?;
            }
            if !target.is_dir() || existing.is_none() {
                std::fs::create_dir_all(&target).map_err(fail)?;
            }
            let perms = entry
                .metadata()
                .map_err(|e| fail(io::Error::other(e)))?
                .permissions();
            std::fs::set_permissions(&target, perms).map_err(fail)?;
        } else {
            if existing.is_some() {
                remove_any(&target).map_err(fail)?;
            }
            if ft.is_symlink() {
                let link = std::fs::read_link(entry.path()).map_err(fail)?;
                symlink(&link, &target).map_err(fail)?;
            } else {
                bytes += std::fs::copy(entry.path(), &target).map_err(fail)?;
            }
        }
    }
    Ok(bytes)
}

fn remove_any(path: &Path) -> io::Result<()> {
    let m = std::fs::symlink_metadata(path)?;
    if m.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

// On Windows, creating symlinks needs Developer Mode or a privilege; a
// file symlink is the closest equivalent of a layer's symlink.
#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn upper_layers_override_and_whiteout() {
        let base = tempfile::tempdir().expect("tempdir");
        let l1 = base.path().join("l1");
        let l2 = base.path().join("l2");
        let out = base.path().join("out");
        for d in [&l1, &l2, &out] {
            std::fs::create_dir(d).expect("mkdir");
        }
        std::fs::create_dir_all(l1.join("etc/old")).expect("mkdir");
        std::fs::write(l1.join("etc/old/x"), "x").expect("write");
        std::fs::write(l1.join("etc/keep"), "1").expect("write");
        std::fs::write(l1.join("gone"), "g").expect("write");
        std::os::unix::fs::symlink("/elsewhere", l1.join("lib")).expect("symlink");
        std::fs::create_dir_all(l2.join("etc/old")).expect("mkdir");
        std::fs::write(l2.join("etc/old/.wh..wh..opq"), "").expect("write");
        std::fs::write(l2.join("etc/old/y"), "y").expect("write");
        std::fs::write(l2.join("etc/keep"), "2").expect("write");
        std::fs::write(l2.join(".wh.gone"), "").expect("write");
        std::fs::create_dir(l2.join("lib")).expect("mkdir");
        std::fs::write(l2.join("lib/z"), "z").expect("write");

        compose(&[l1, l2], &out).expect("compose");
        assert!(!out.join("etc/old/x").exists());
        assert_eq!(
            std::fs::read_to_string(out.join("etc/old/y")).expect("y"),
            "y"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("etc/keep")).expect("keep"),
            "2"
        );
        assert!(!out.join("gone").exists());
        assert!(!out.join(".wh.gone").exists());
        assert!(
            std::fs::symlink_metadata(out.join("lib"))
                .expect("lib")
                .is_dir()
        );
        assert_eq!(std::fs::read_to_string(out.join("lib/z")).expect("z"), "z");
    }
}
