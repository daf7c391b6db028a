//! Freeing the disk space of removed images: the blobs and unpacked layers
//! that no stored image and no build cache entry refers to any more.
//!
//! **Architecture Invariant:** a blob or layer being written is never
//! collected. Every operation that adds blobs (pull, build, load, artifact
//! conversion) holds a [`WriteLease`], a shared lock on `<root>/gc.lock`,
//! from its first write until its image is committed; collection takes
//! the lock exclusively and, when any lease is held (in this process or
//! another), skips the sweep rather than wait.

use std::collections::HashSet;
use std::fs::File;
use std::path::PathBuf;

use oci_spec::image::{ImageConfiguration, ImageManifest};

use super::{Digest, ImageError, ImageStore};

/// Held while blobs are added; see the module's invariant.
#[derive(Debug)]
pub struct WriteLease(#[allow(dead_code)] File);

fn lock_file(store: &ImageStore) -> Result<File, ImageError> {
    let path = store.root().dir().join("gc.lock");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ImageError::Invalid {
            name: path.display().to_string(),
            message: format!("cannot open the collection lock: {e}"),
        })
}

impl ImageStore {
    /// A lease that keeps collection away while this operation adds blobs.
    pub fn lease(&self) -> Result<WriteLease, ImageError> {
        let f = lock_file(self)?;
        f.lock_shared().map_err(|e| ImageError::Invalid {
            name: "gc.lock".into(),
            message: format!("cannot take the collection lock: {e}"),
        })?;
        Ok(WriteLease(f))
    }

    /// Deletes the blobs and unpacked layers nothing refers to: no image,
    /// no build cache entry, and none of `in_use` (the layers containers
    /// stand on, by diff ID hex, which outlive a forced image removal).
    /// Returns the bytes freed, or `None` when an operation holding a
    /// lease is adding blobs (nothing is deleted then).
    pub fn collect_garbage(&self, in_use: &HashSet<String>) -> Result<Option<u64>, ImageError> {
        let f = lock_file(self)?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(ImageError::Invalid {
                    name: "gc.lock".into(),
                    message: format!("cannot take the collection lock: {e}"),
                });
            }
        }
        let (blobs, mut layers) = self.referenced()?;
        layers.extend(in_use.iter().cloned());
        let mut freed = 0;
        freed += sweep(self.root().blobs_dir(), |name| blobs.contains(name), false);
        freed += sweep(self.root().layers_dir(), |name| layers.contains(name), true);
        Ok(Some(freed))
    }

    /// The hex digests of every blob and every layer a stored image or a
    /// build cache entry needs.
    fn referenced(&self) -> Result<(HashSet<String>, HashSet<String>), ImageError> {
        let mut blobs = HashSet::new();
        let mut layers = HashSet::new();
        let conn = self.db_ref().conn();
        let manifests: Vec<String> = conn
            .prepare("SELECT manifest_digest FROM images")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for m in manifests {
            let digest = Digest::parse(&m).map_err(|e| ImageError::Invalid {
                name: m.clone(),
                message: format!("corrupt metadata: {e}"),
            })?;
            blobs.insert(digest.hex().to_string());
            // An image whose manifest cannot be read keeps nothing else
            // alive; its own removal or repair is another matter.
            let Ok(bytes) = self.blobs().read_verified(&digest) else {
                continue;
            };
            let Ok(manifest) = serde_json::from_slice::<ImageManifest>(&bytes) else {
                continue;
            };
            let config = manifest.config().digest().to_string();
            for d in manifest
                .layers()
                .iter()
                .map(|l| l.digest().to_string())
                .chain([config.clone()])
            {
                if let Ok(d) = Digest::parse(&d) {
                    blobs.insert(d.hex().to_string());
                }
            }
            let Ok(config) = Digest::parse(&config) else {
                continue;
            };
            if let Ok(bytes) = self.blobs().read_verified(&config)
                && let Ok(cfg) = serde_json::from_slice::<ImageConfiguration>(&bytes)
            {
                for d in cfg.rootfs().diff_ids() {
                    if let Ok(d) = Digest::parse(d) {
                        layers.insert(d.hex().to_string());
                    }
                }
            }
        }
        let cached: Vec<(String, String)> = conn
            .prepare("SELECT layer, diff_id FROM build_cache")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (layer, diff_id) in cached {
            if let Ok(d) = Digest::parse(&layer) {
                blobs.insert(d.hex().to_string());
            }
            if let Ok(d) = Digest::parse(&diff_id) {
                layers.insert(d.hex().to_string());
            }
        }
        Ok((blobs, layers))
    }
}

/// Deletes the entries of `dir` whose names `keep` refuses; returns the
/// bytes they held. Names that are not digests are left alone.
fn sweep(dir: PathBuf, keep: impl Fn(&str) -> bool, dirs: bool) -> u64 {
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut freed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let is_digest = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_digest || keep(&name) {
            continue;
        }
        let path = e.path();
        let removed = if dirs {
            let size = super::layer::dir_size(&path);
            std::fs::remove_dir_all(&path).map(|()| size)
        } else {
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            std::fs::remove_file(&path).map(|()| size)
        };
        match removed {
            Ok(n) => freed += n,
            Err(err) => tracing::warn!(path = %path.display(), error = %err, "not collected"),
        }
    }
    freed
}
