//! Image layers: deterministic tar writing ([`pack`]), safe unpacking
//! ([`unpack`]), and stacking unpacked layers into a rootfs ([`compose`]).

pub mod compose;
pub mod pack;
pub mod unpack;

use std::path::PathBuf;

/// Errors reading, writing or stacking layers. Each names the layer and,
/// where there is one, the offending entry.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("layer {layer}: entry {entry:?} has an absolute path; refusing to unpack")]
    AbsolutePath { layer: String, entry: String },
    #[error("layer {layer}: entry {entry:?} escapes the layer with `..`; refusing to unpack")]
    Traversal { layer: String, entry: String },
    #[error(
        "layer {layer}: entry {entry:?} would be written through the symlink {via:?}; refusing to unpack"
    )]
    ThroughSymlink {
        layer: String,
        entry: String,
        via: String,
    },
    #[error("layer {layer}: hard link {entry:?} points outside the layer ({target:?})")]
    BadLink {
        layer: String,
        entry: String,
        target: String,
    },
    #[error("layer {layer}: not a valid tar archive: {source}")]
    Tar {
        layer: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "layer {layer}: uncompressed content has digest {actual}, but the image config says {expected}"
    )]
    DiffIdMismatch {
        layer: String,
        expected: String,
        actual: String,
    },
    #[error("layer {layer}: {}: {source}", path.display())]
    Io {
        layer: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Blob(#[from] super::blobs::BlobError),
}

/// The bytes of the regular files under `dir`: an unpacked layer's size.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// The compressions a layer blob may use, sniffed from its first bytes
/// rather than trusted from a media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn sniff(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, ..] => Self::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Self::Zstd,
            _ => Self::None,
        }
    }
}
