//! `commit`: a new image from a base image and a directory that is one
//! more layer in OCI's form (whiteouts as `.wh.NAME` files, opaque
//! directories marked `.wh..wh..opq`), such as a container's writable
//! layer. The directory is packed as it is, so what the container deleted
//! stays deleted in the image.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::image::Config;

use super::assemble::{HistoryStep, LayerRef, assemble};
use super::layer::pack::{EntryKind, pack};
use super::store::NewImage;
use super::wasm::WasmKind;
use super::{Digest, Image, ImageError, ImageStore, Reference};

/// What a commit makes.
#[derive(Debug)]
pub struct Commit<'a> {
    pub base: &'a Image,
    /// The new layer's files; missing means the container wrote nothing,
    /// which gives an empty layer, as Docker's does.
    pub layer: &'a Path,
    pub config: Config,
    /// The history step: what ran in the container, and `docker commit
    /// -m`'s message.
    pub step: HistoryStep,
    pub tag: Option<&'a Reference>,
}

#[cfg(unix)]
fn mode(m: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode(m: &std::fs::Metadata) -> u32 {
    if m.is_dir() { 0o755 } else { 0o644 }
}

/// The entries of `dir`, by relative path, symlinks as themselves.
fn entries(dir: &Path) -> Result<BTreeMap<String, EntryKind>, ImageError> {
    let mut out = BTreeMap::new();
    if !dir.exists() {
        return Ok(out);
    }
    for e in walkdir::WalkDir::new(dir).min_depth(1).follow_links(false) {
        let e = e.map_err(|e| ImageError::Invalid {
            name: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let rel = e
            .path()
            .strip_prefix(dir)
            .unwrap_or(e.path())
            .to_string_lossy()
            .replace('\\', "/");
        let meta = e
            .path()
            .symlink_metadata()
            .map_err(|err| ImageError::Invalid {
                name: e.path().display().to_string(),
                message: err.to_string(),
            })?;
        let kind = if meta.is_dir() {
            EntryKind::Dir { mode: mode(&meta) }
        } else if meta.file_type().is_symlink() {
            let target = std::fs::read_link(e.path()).map_err(|err| ImageError::Invalid {
                name: e.path().display().to_string(),
                message: err.to_string(),
            })?;
            EntryKind::Symlink {
                target: target.to_string_lossy().replace('\\', "/"),
            }
        } else {
            EntryKind::File {
                source: e.path().to_path_buf(),
                mode: mode(&meta),
            }
        };
        out.insert(rel, kind);
    }
    Ok(out)
}

/// Packs the layer, stores the image and returns its ID.
pub fn commit(store: &mut ImageStore, c: Commit<'_>) -> Result<Digest, ImageError> {
    // Garbage collection stays away from the blobs written until commit.
    let _lease = store.lease()?;
    let now = chrono::Utc::now();
    let packed = pack(
        store.blobs(),
        entries(c.layer)?,
        u64::try_from(now.timestamp()).unwrap_or(0),
        "the container's changes",
    )?;
    // Unpacked now, so containers of the new image start at once.
    store.unpacked_layer(&packed.digest, &packed.diff_id)?;
    let diff_ids = c.base.diff_ids()?;
    let mut layers: Vec<LayerRef> = c
        .base
        .manifest
        .layers()
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| {
            Digest::parse(d.digest().as_ref())
                .map(|digest| LayerRef {
                    digest,
                    diff_id,
                    size: d.size(),
                })
                .map_err(|e| ImageError::Invalid {
                    name: c.base.display_name(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<_, _>>()?;
    layers.push(LayerRef {
        digest: packed.digest.clone(),
        diff_id: packed.diff_id.clone(),
        size: packed.size,
    });
    let mut history = c.base.history_lines();
    history.push(HistoryStep {
        empty_layer: false,
        ..c.step
    });
    let kind = match c.base.config.os().to_string().as_str() {
        "wasip1" => WasmKind::Module,
        "wasip2" => WasmKind::Component,
        _ => WasmKind::Other("a wasi image"),
    };
    let created = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (manifest, config) =
        assemble(c.config, kind, &created, &layers, &history).map_err(|message| {
            ImageError::Invalid {
                name: c.base.display_name(),
                message,
            }
        })?;
    store.commit(NewImage {
        manifest: &manifest,
        config: &config,
        size: c.base.size + packed.tar_size,
        tag: c.tag,
    })
}
