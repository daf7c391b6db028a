//! The local image store: images and tags in the metadata database, their
//! manifests, configs and layers in the blob store, layers unpacked once.
//!
//! An image's ID is the digest of its config, as in Docker; a tag is a
//! canonical reference (`docker.io/library/busybox:latest`) pointing at one.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use oci_spec::image::{ImageConfiguration, ImageManifest};
use rusqlite::{OptionalExtension, params};

use super::blobs::{BlobStamp, BlobStore};
use super::digest::Digest;
use super::layer;
use super::reference::Reference;
use super::{ImageError, media};
use crate::state::{CachedSql, Db, StateRoot};

/// The registry a bare name like `busybox` belongs to, as in Docker.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A stored image, fully loaded.
#[derive(Debug, Clone)]
pub struct Image {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    pub size: u64,
    pub added_at: DateTime<Utc>,
    pub tags: Vec<Reference>,
}

impl Image {
    /// The name to show for this image: its first tag, else its short ID.
    pub fn display_name(&self) -> String {
        self.tags
            .first()
            .map(Reference::familiar)
            .unwrap_or_else(|| self.id.short().to_string())
    }

    /// The config's history: what made each step, whether it left no
    /// layer, and its comment.
    pub fn history_lines(&self) -> Vec<super::assemble::HistoryStep> {
        self.config
            .history()
            .iter()
            .flatten()
            .map(|h| super::assemble::HistoryStep {
                created_by: h.created_by().clone().unwrap_or_default(),
                empty_layer: h.empty_layer().unwrap_or(false),
                comment: h.comment().clone().unwrap_or_default(),
            })
            .collect()
    }

    /// The layer diff IDs from the config, bottom first.
    pub fn diff_ids(&self) -> Result<Vec<Digest>, ImageError> {
        self.config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| {
                Digest::parse(d).map_err(|e| ImageError::Invalid {
                    name: self.display_name(),
                    message: e.to_string(),
                })
            })
            .collect()
    }
}

/// One row of `wrun images`.
#[derive(Debug, Clone)]
pub struct ImageSummary {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub tags: Vec<Reference>,
    pub created: Option<DateTime<Utc>>,
    pub size: u64,
}

/// What `remove` did, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

/// An image about to be committed to the store.
#[derive(Debug)]
pub struct NewImage<'a> {
    pub manifest: &'a [u8],
    pub config: &'a [u8],
    /// Uncompressed size of all layers.
    pub size: u64,
    pub tag: Option<&'a Reference>,
}

/// The image store of one state root.
pub struct ImageStore {
    root: StateRoot,
    blobs: BlobStore,
    db: Db,
    default_registry: String,
    /// Manifests and configs already read, verified and parsed, by image
    /// ID. Their blobs are content-addressed, so an entry is used again
    /// only while both files keep the stamps they had when verified; a
    /// blob changed on disk is read and verified afresh.
    parsed: Mutex<HashMap<Digest, Parsed>>,
}

/// An image's manifest and config, as verified under `stamps`.
struct Parsed {
    manifest_digest: Digest,
    manifest: ImageManifest,
    config: ImageConfiguration,
    stamps: (BlobStamp, BlobStamp),
}

/// Past this many images the parsed ones are dropped and read again.
const PARSED_IMAGES: usize = 256;

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl ImageStore {
    pub fn open(root: &StateRoot) -> Result<Self, ImageError> {
        Ok(Self {
            root: root.clone(),
            blobs: BlobStore::new(root.blobs_dir(), root.staging().clone()),
            db: root.db()?,
            default_registry: std::env::var("WRUN_DEFAULT_REGISTRY")
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| DEFAULT_REGISTRY.to_string()),
            parsed: Mutex::default(),
        })
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn root(&self) -> &StateRoot {
        &self.root
    }

    pub fn db(&mut self) -> &mut Db {
        &mut self.db
    }

    pub fn db_ref(&self) -> &Db {
        &self.db
    }

    /// Parses a user-written name against the configured default registry.
    pub fn parse_reference(&self, name: &str) -> Result<Reference, ImageError> {
        Reference::parse_with_default_registry(name, &self.default_registry).map_err(|source| {
            ImageError::Reference {
                name: name.to_string(),
                source,
            }
        })
    }

    /// Finds an image by reference, full ID, or unique ID prefix.
    pub fn resolve(&self, name: &str) -> Result<Image, ImageError> {
        let id = self.resolve_id(name)?;
        self.load(&id, name)
    }

    fn resolve_id(&self, name: &str) -> Result<Digest, ImageError> {
        if let Ok(d) = Digest::parse(name) {
            if self.exists(&d)? {
                return Ok(d);
            }
            return Err(ImageError::NotFound(name.to_string()));
        }
        let parsed = self.parse_reference(name);
        if let Ok(reference) = &parsed {
            if let Some(digest) = reference.digest() {
                // name@sha256:… names a manifest.
                let found: Option<String> = self
                    .db
                    .conn()
                    .row(
                        "SELECT id FROM images WHERE manifest_digest = ?1",
                        [digest],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = found {
                    return parse_stored(&id);
                }
            } else {
                let found: Option<String> = self
                    .db
                    .conn()
                    .row(
                        "SELECT image_id FROM tags WHERE name = ?1",
                        [reference.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(id) = found {
                    return parse_stored(&id);
                }
            }
        }
        let hex = name.strip_prefix("sha256:").unwrap_or(name);
        if !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut stmt = self
                .db
                .conn()
                .prepare_cached("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
            let ids: Vec<String> = stmt
                .query_map([format!("sha256:{}%", hex.to_ascii_lowercase())], |r| {
                    r.get(0)
                })?
                .collect::<Result<_, _>>()?;
            match ids.as_slice() {
                [one] => return parse_stored(one),
                [] => {}
                _ => {
                    return Err(ImageError::Ambiguous {
                        name: name.to_string(),
                        message: "ID prefix matches more than one image".into(),
                    });
                }
            }
        }
        // Neither a known name nor an ID: say why the name is wrong, if it is.
        parsed?;
        Err(ImageError::NotFound(name.to_string()))
    }

    fn exists(&self, id: &Digest) -> Result<bool, ImageError> {
        Ok(self
            .db
            .conn()
            .row("SELECT 1 FROM images WHERE id = ?1", [id.as_str()], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    fn load(&self, id: &Digest, name: &str) -> Result<Image, ImageError> {
        let (manifest_digest, size, added_at): (String, i64, String) = self
            .db
            .conn()
            .row(
                "SELECT manifest_digest, size, added_at FROM images WHERE id = ?1",
                [id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| ImageError::NotFound(name.to_string()))?;
        let manifest_digest = parse_stored(&manifest_digest)?;
        let (manifest, config) = self.parsed(id, &manifest_digest, name)?;
        Ok(Image {
            id: id.clone(),
            manifest_digest,
            manifest,
            config,
            size: size.max(0) as u64,
            added_at: parse_time(&added_at).unwrap_or_default(),
            tags: self.tags_of(id)?,
        })
    }

    /// The manifest and config of image `id`, verified against their
    /// digests: read and parsed once, then again only if a blob's file
    /// changed.
    fn parsed(
        &self,
        id: &Digest,
        manifest_digest: &Digest,
        name: &str,
    ) -> Result<(ImageManifest, ImageConfiguration), ImageError> {
        let stamps = self.blobs.stamp(manifest_digest).zip(self.blobs.stamp(id));
        let memo = || self.parsed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stamps) = &stamps
            && let Some(p) = memo().get(id)
            && &p.manifest_digest == manifest_digest
            && &p.stamps == stamps
        {
            return Ok((p.manifest.clone(), p.config.clone()));
        }
        let invalid = |message: String| ImageError::Invalid {
            name: name.to_string(),
            message,
        };
        let manifest: ImageManifest =
            serde_json::from_slice(&self.blobs.read_verified(manifest_digest)?)
                .map_err(|e| invalid(format!("manifest {manifest_digest}: {e}")))?;
        let config: ImageConfiguration = serde_json::from_slice(&self.blobs.read_verified(id)?)
            .map_err(|e| invalid(format!("config {id}: {e}")))?;
        // A blob that could not be stamped is used this once, never kept.
        if let Some(stamps) = stamps {
            let mut memo = memo();
            if memo.len() >= PARSED_IMAGES {
                memo.clear();
            }
            memo.insert(
                id.clone(),
                Parsed {
                    manifest_digest: manifest_digest.clone(),
                    manifest: manifest.clone(),
                    config: config.clone(),
                    stamps,
                },
            );
        }
        Ok((manifest, config))
    }

    fn tags_of(&self, id: &Digest) -> Result<Vec<Reference>, ImageError> {
        let mut stmt = self
            .db
            .conn()
            .prepare_cached("SELECT name FROM tags WHERE image_id = ?1 ORDER BY name")?;
        let names: Vec<String> = stmt
            .query_map([id.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names
            .iter()
            .filter_map(|n| Reference::parse_with_default_registry(n, &self.default_registry).ok())
            .collect())
    }

    /// All images, newest first, each with its tags.
    pub fn list(&self) -> Result<Vec<ImageSummary>, ImageError> {
        let mut stmt = self.db.conn().prepare_cached(
            "SELECT id, manifest_digest, created, size FROM images ORDER BY created DESC, added_at DESC",
        )?;
        let rows: Vec<(String, String, Option<String>, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, manifest, created, size)| {
                let id = parse_stored(&id)?;
                Ok(ImageSummary {
                    tags: self.tags_of(&id)?,
                    id,
                    manifest_digest: parse_stored(&manifest)?,
                    created: created.as_deref().and_then(parse_time),
                    size: size.max(0) as u64,
                })
            })
            .collect()
    }

    /// Stores an image whose layers are already in the blob store, and
    /// points `tag` at it. Returns the image ID.
    pub fn commit(&mut self, new: NewImage<'_>) -> Result<Digest, ImageError> {
        let manifest: ImageManifest =
            serde_json::from_slice(new.manifest).map_err(|e| ImageError::Invalid {
                name: "(new image)".into(),
                message: format!("manifest: {e}"),
            })?;
        let config_digest = Digest::parse(manifest.config().digest().as_ref()).map_err(|e| {
            ImageError::Invalid {
                name: "(new image)".into(),
                message: e.to_string(),
            }
        })?;
        let config: ImageConfiguration =
            serde_json::from_slice(new.config).map_err(|e| ImageError::Invalid {
                name: config_digest.to_string(),
                message: format!("config: {e}"),
            })?;
        for layer in manifest.layers() {
            let d = Digest::parse(layer.digest().as_ref()).map_err(|e| ImageError::Invalid {
                name: config_digest.to_string(),
                message: e.to_string(),
            })?;
            if !self.blobs.contains(&d) {
                return Err(super::blobs::BlobError::Missing(d).into());
            }
        }
        let stored_config = self.blobs.put(new.config)?;
        if stored_config != config_digest {
            return Err(ImageError::Invalid {
                name: config_digest.to_string(),
                message: format!("config blob has digest {stored_config}"),
            });
        }
        let manifest_digest = self.blobs.put(new.manifest)?;
        let media_type = manifest
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
        let now = Utc::now().to_rfc3339();
        let tx = self.db.write()?;
        tx.exec(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, size, created, added_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(id) DO UPDATE SET manifest_digest = excluded.manifest_digest,
                 manifest_media_type = excluded.manifest_media_type",
            params![
                config_digest.as_str(),
                manifest_digest.as_str(),
                media_type,
                new.size as i64,
                config.created().clone(),
                now
            ],
        )?;
        if let Some(tag) = new.tag {
            tx.exec(
                "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
                params![tag.to_string(), config_digest.as_str()],
            )?;
        }
        tx.commit().map_err(crate::state::DbError::from)?;
        Ok(config_digest)
    }

    /// Points `target` at the image `source` names.
    pub fn tag(&mut self, source: &str, target: &str) -> Result<Reference, ImageError> {
        let id = self.resolve_id(source)?;
        let target_ref = self.parse_reference(target)?;
        if target_ref.digest().is_some() {
            return Err(ImageError::Invalid {
                name: target.to_string(),
                message: "a tag cannot contain a digest".into(),
            });
        }
        self.db.conn().exec(
            "INSERT INTO tags (name, image_id) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            params![target_ref.to_string(), id.as_str()],
        )?;
        Ok(target_ref)
    }

    /// Removes a tag, and the image once nothing else names it. `users` are
    /// the containers using the image; any user refuses removal unless `force`.
    pub fn remove(
        &mut self,
        name: &str,
        force: bool,
        users: &[String],
    ) -> Result<Vec<Removed>, ImageError> {
        let id = self.resolve_id(name)?;
        let by_id = self
            .parse_reference(name)
            .ok()
            .map(|r| r.to_string())
            .filter(|r| {
                self.db
                    .conn()
                    .row("SELECT 1 FROM tags WHERE name = ?1", [r], |_| Ok(()))
                    .optional()
                    .ok()
                    .flatten()
                    .is_some()
            });
        let tags = self.tags_of(&id)?;
        let untag_only = by_id.is_some() && tags.len() > 1;
        // Untagging one of several names is always allowed, as in Docker;
        // deleting an image a container uses needs force.
        if !force
            && !untag_only
            && let Some(user) = users.first()
        {
            let what = by_id.clone().unwrap_or_else(|| id.short().to_string());
            return Err(ImageError::InUse {
                name: what,
                reason: format!(
                    "container {user} is using its referenced image {}",
                    id.short()
                ),
            });
        }
        let mut out = Vec::new();
        let tx = self.db.write()?;
        match &by_id {
            Some(tag) if tags.len() > 1 => {
                // Other names still point at the image: only untag.
                tx.exec("DELETE FROM tags WHERE name = ?1", [tag])?;
                out.push(Removed::Untagged(familiar(tag, &self.default_registry)));
            }
            _ => {
                if by_id.is_none() && tags.len() > 1 && !force {
                    return Err(ImageError::InUse {
                        name: id.short().to_string(),
                        reason: "image is referenced in multiple repositories".into(),
                    });
                }
                for t in &tags {
                    out.push(Removed::Untagged(t.familiar()));
                }
                tx.exec("DELETE FROM tags WHERE image_id = ?1", [id.as_str()])?;
                tx.exec("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
                out.push(Removed::Deleted(id.clone()));
            }
        }
        tx.commit().map_err(crate::state::DbError::from)?;
        Ok(out)
    }

    /// The unpacked directory of each layer of `image`, bottom first,
    /// unpacking any that are not yet unpacked.
    pub fn layer_dirs(&self, image: &Image) -> Result<Vec<PathBuf>, ImageError> {
        let diff_ids = image.diff_ids()?;
        if diff_ids.len() != image.manifest.layers().len() {
            return Err(ImageError::Invalid {
                name: image.display_name(),
                message: format!(
                    "manifest lists {} layers but the config lists {} diff IDs",
                    image.manifest.layers().len(),
                    diff_ids.len()
                ),
            });
        }
        image
            .manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(desc, diff_id)| {
                let digest =
                    Digest::parse(desc.digest().as_ref()).map_err(|e| ImageError::Invalid {
                        name: image.display_name(),
                        message: e.to_string(),
                    })?;
                self.unpacked_layer(&digest, &diff_id)
            })
            .collect()
    }

    /// Unpacks the layer blob `digest` into `layers/<diff_id>` unless that
    /// is already there. Staged in `tmp/` and renamed, so a crash or a
    /// concurrent unpack of the same layer never leaves a partial directory.
    pub fn unpacked_layer(&self, digest: &Digest, diff_id: &Digest) -> Result<PathBuf, ImageError> {
        let layers = self.layers();
        let dest = layers.dest(diff_id);
        if dest.is_dir() {
            return Ok(dest);
        }
        let staged = layers.stage(self.blobs.open(digest)?, digest)?;
        layers.install(staged, digest, diff_id)
    }

    /// Where unpacked layers go, as a handle that download tasks can hold.
    pub fn layers(&self) -> Layers {
        Layers {
            root: self.root.clone(),
        }
    }
}

/// The unpacked-layer directory: `layers/<diff_id>`, each made in the
/// staging directory and renamed into place only once checked.
#[derive(Debug, Clone)]
pub struct Layers {
    root: StateRoot,
}

/// A layer unpacked into the staging directory, not yet in place; dropped,
/// it is deleted.
#[derive(Debug)]
pub struct StagedLayer {
    dir: tempfile::TempDir,
    diff_id: Digest,
}

impl Layers {
    /// Where the layer with `diff_id` lives once unpacked.
    pub fn dest(&self, diff_id: &Digest) -> PathBuf {
        self.root.layers_dir().join(diff_id.hex())
    }

    /// Unpacks the compressed tar that `reader` yields (the blob `digest`)
    /// into the staging directory, computing its diff_id as it goes.
    pub fn stage(
        &self,
        reader: impl std::io::Read,
        digest: &Digest,
    ) -> Result<StagedLayer, ImageError> {
        let dir = self
            .root
            .staging_dir()
            .and_then(|d| tempfile::Builder::new().prefix("unpack-").tempdir_in(d))
            .map_err(|source| layer::LayerError::Io {
                layer: digest.to_string(),
                path: self.root.tmp_dir(),
                source,
            })?;
        let diff_id = layer::unpack::unpack(reader, dir.path(), digest.as_str())?;
        Ok(StagedLayer { dir, diff_id })
    }

    /// Puts `staged` in place as the layer `diff_id`, if that is what it
    /// unpacked to; the blob `digest` names it in errors.
    pub fn install(
        &self,
        staged: StagedLayer,
        digest: &Digest,
        diff_id: &Digest,
    ) -> Result<PathBuf, ImageError> {
        if &staged.diff_id != diff_id {
            return Err(layer::LayerError::DiffIdMismatch {
                layer: digest.to_string(),
                expected: diff_id.to_string(),
                actual: staged.diff_id.to_string(),
            }
            .into());
        }
        let dest = self.dest(diff_id);
        let staged = staged.dir.keep();
        if let Err(source) = std::fs::rename(&staged, &dest) {
            let _ = std::fs::remove_dir_all(&staged);
            if !dest.is_dir() {
                return Err(layer::LayerError::Io {
                    layer: digest.to_string(),
                    path: dest,
                    source,
                }
                .into());
            }
        }
        Ok(dest)
    }
}

fn familiar(canonical: &str, default_registry: &str) -> String {
    Reference::parse_with_default_registry(canonical, default_registry)
        .map(|r| r.familiar())
        .unwrap_or_else(|_| canonical.to_string())
}

fn parse_stored(s: &str) -> Result<Digest, ImageError> {
    Digest::parse(s).map_err(|e| ImageError::Invalid {
        name: s.to_string(),
        message: format!("corrupt metadata: {e}"),
    })
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
