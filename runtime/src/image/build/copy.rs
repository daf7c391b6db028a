//! Planning a COPY or ADD: which context files land where in the new layer.
//!
//! Docker's rules: a source directory's *contents* are copied; several
//! sources need a destination ending in `/`; a relative destination is
//! relative to WORKDIR; ADD unpacks a local tar archive into the destination.

use std::collections::BTreeMap;
use std::path::Path;

use walkdir::WalkDir;

use super::context::{Context, Source};
use super::{BuildError, looks_like_tar};
use crate::image::layer::pack::EntryKind;
use crate::image::rootfs::guest_path;

/// Returns the layer entries for one COPY/ADD, keyed by image path without
/// the leading `/`. `staging` is scratch space for unpacked ADD archives.
pub fn plan(
    ctx: &Context,
    sources: &[String],
    dest: &str,
    workdir: &str,
    chmod: Option<u32>,
    is_add: bool,
    staging: &Path,
) -> Result<BTreeMap<String, EntryKind>, BuildError> {
    let mut matches: Vec<Source> = Vec::new();
    for s in sources {
        matches.extend(ctx.resolve(s)?);
    }
    let dest_abs = guest_path(workdir, dest);
    let dest_is_dir = dest.ends_with('/') || dest.ends_with("/.") || dest == ".";
    if matches.len() > 1 && !dest_is_dir {
        return Err(BuildError::BadSource {
            source_path: sources.join(" "),
            message: format!(
                "with more than one source file, the destination {dest:?} must be a directory and end with a /"
            ),
        });
    }
    let mut out = BTreeMap::new();
    for (n, src) in matches.iter().enumerate() {
        if src.is_dir {
            let walked = ctx.walk(&src.host)?;
            for (rel, host, is_dir) in walked {
                let inner = rel
                    .strip_prefix(&src.rel)
                    .unwrap_or(&rel)
                    .trim_start_matches('/')
                    .to_string();
                insert(
                    &mut out,
                    &format!("{dest_abs}/{inner}"),
                    &host,
                    is_dir,
                    chmod,
                )?;
            }
            continue;
        }
        if is_add && looks_like_tar(&src.host) {
            let into = staging.join(n.to_string());
            std::fs::create_dir_all(&into).map_err(|source| BuildError::Context {
                path: into.clone(),
                source,
            })?;
            let file = std::fs::File::open(&src.host).map_err(|source| BuildError::Context {
                path: src.host.clone(),
                source,
            })?;
            crate::image::layer::unpack::unpack(file, &into, &src.rel).map_err(|e| {
                BuildError::BadSource {
                    source_path: src.rel.clone(),
                    message: e.to_string(),
                }
            })?;
            for entry in WalkDir::new(&into)
                .min_depth(1)
                .sort_by_file_name()
                .follow_links(false)
            {
                let entry = entry.map_err(|e| BuildError::BadSource {
                    source_path: src.rel.clone(),
                    message: e.to_string(),
                })?;
                let inner = entry.path().strip_prefix(&into).unwrap_or(entry.path());
                let inner = inner.to_string_lossy().replace('\\', "/");
                insert(
                    &mut out,
                    &format!("{dest_abs}/{inner}"),
                    entry.path(),
                    entry.file_type().is_dir(),
                    chmod,
                )?;
            }
            continue;
        }
        let name = src.rel.rsplit('/').next().unwrap_or(&src.rel);
        let target = if dest_is_dir || matches.len() > 1 {
            format!("{dest_abs}/{name}")
        } else {
            dest_abs.clone()
        };
        insert(&mut out, &target, &src.host, false, chmod)?;
    }
    Ok(out)
}

fn insert(
    out: &mut BTreeMap<String, EntryKind>,
    image_path: &str,
    host: &Path,
    is_dir: bool,
    chmod: Option<u32>,
) -> Result<(), BuildError> {
    let key = guest_path("/", image_path)
        .trim_start_matches('/')
        .to_string();
    if key.is_empty() {
        return Err(BuildError::BadSource {
            source_path: host.display().to_string(),
            message: "cannot replace the root directory with a file".into(),
        });
    }
    let meta = std::fs::symlink_metadata(host).map_err(|source| BuildError::Context {
        path: host.to_path_buf(),
        source,
    })?;
    let kind = if meta.file_type().is_symlink() {
        let target = std::fs::read_link(host).map_err(|source| BuildError::Context {
            path: host.to_path_buf(),
            source,
        })?;
        EntryKind::Symlink {
            target: target.to_string_lossy().replace('\\', "/"),
        }
    } else if is_dir || meta.is_dir() {
        EntryKind::Dir {
            mode: chmod.unwrap_or(0o755),
        }
    } else {
        EntryKind::File {
            source: host.to_path_buf(),
            mode: chmod.unwrap_or_else(|| normal_mode(&meta)),
        }
    };
    out.insert(key, kind);
    Ok(())
}

/// 0755 for anything executable, 0644 otherwise: checkouts differ in umask,
/// and layers must not.
#[cfg(unix)]
fn normal_mode(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    }
}

// Windows has no exec bit; wasm files are what we run, so mark those.
#[cfg(not(unix))]
fn normal_mode(_meta: &std::fs::Metadata) -> u32 {
    0o644
}
