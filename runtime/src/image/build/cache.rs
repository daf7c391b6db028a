//! The build cache: a COPY/ADD layer is reused when the previous step, the
//! instruction, and the paths, modes and contents of its inputs all match.

use std::collections::BTreeMap;

use chrono::Utc;
use rusqlite::{OptionalExtension, params};
use sha2::{Digest as _, Sha256};

use super::{BuildError, Layer};
use crate::image::digest::Digest;
use crate::image::store::ImageStore;
use crate::image::{ImageError, layer};

pub(super) fn cache_key(
    parent: &str,
    instruction: &str,
    entries: &BTreeMap<String, layer::pack::EntryKind>,
) -> Result<String, ImageError> {
    let mut h = Sha256::new();
    h.update(parent.as_bytes());
    h.update([0]);
    h.update(instruction.as_bytes());
    for (path, kind) in entries {
        h.update([0]);
        h.update(path.as_bytes());
        match kind {
            layer::pack::EntryKind::Dir { mode } => h.update(format!("\0d{mode:o}")),
            layer::pack::EntryKind::Symlink { target } => h.update(format!("\0l{target}")),
            layer::pack::EntryKind::File { source, mode } => {
                h.update(format!("\0f{mode:o}\0"));
                let (d, _) = std::fs::File::open(source)
                    .and_then(Digest::of_reader)
                    .map_err(|e| BuildError::BadSource {
                        source_path: path.clone(),
                        message: e.to_string(),
                    })?;
                h.update(d.as_str());
            }
        }
    }
    Ok(hex::encode(h.finalize()))
}

pub(super) fn cached_layer(store: &ImageStore, key: &str) -> Result<Option<Layer>, ImageError> {
    let row: Option<(String, String, i64)> = store
        .db_ref()
        .conn()
        .query_row(
            "SELECT layer, diff_id, size FROM build_cache WHERE key = ?1",
            [key],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((digest, diff_id, tar_size)) = row else {
        return Ok(None);
    };
    let (Ok(digest), Ok(diff_id)) = (Digest::parse(&digest), Digest::parse(&diff_id)) else {
        return Ok(None);
    };
    let Ok(meta) = std::fs::metadata(store.blobs().path(&digest)) else {
        return Ok(None);
    };
    Ok(Some(Layer {
        digest,
        diff_id,
        size: meta.len(),
        tar_size: tar_size.max(0) as u64,
    }))
}

pub(super) fn remember_layer(
    store: &mut ImageStore,
    key: &str,
    layer: &Layer,
) -> Result<(), ImageError> {
    store.db().conn().execute(
        "INSERT INTO build_cache (key, layer, diff_id, size, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(key) DO UPDATE SET layer = excluded.layer, diff_id = excluded.diff_id, size = excluded.size",
        params![
            key,
            layer.digest.as_str(),
            layer.diff_id.as_str(),
            layer.tar_size as i64,
            Utc::now().to_rfc3339()
        ],
    )?;
    Ok(())
}
