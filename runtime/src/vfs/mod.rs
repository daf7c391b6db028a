//! A container's root filesystem without a copy of its image: the image's
//! unpacked layers, shared read-only by every container of that image,
//! under a private writable layer that holds only what the container
//! writes, as overlayfs stacks them, but in-process and on any OS.
//!
//! - [`path`]: guest paths, and resolving them with the rootfs rules
//!   (relative symlinks followed inside the root, absolute ones and `..`
//!   escapes refused, whatever layer a link lives in).
//! - [`overlay`]: the layered view: lookups through the layers, merged
//!   listings, copy-up on first write, whiteouts on delete and rename.
//!
//! Until a container writes, its writable layer does not exist: creating
//! and removing a container that only reads touches no inodes.
//!
//! **Architecture Invariant:** `vfs` knows nothing of images, containers or
//! wasm. It is given directories and answers path operations; every host
//! access goes through a `cap_std::fs::Dir` of a layer, so nothing it does
//! can reach outside them.

pub mod overlay;
pub mod path;
pub mod quota;

pub use overlay::{Change, Found, Kind, Layer, Overlay};
pub use path::VPath;
pub use quota::Quota;

/// Why an operation on the view failed, in the terms `wasi:filesystem`
/// answers with.
#[derive(Debug, thiserror::Error)]
pub enum VfsError {
    #[error("no such file or directory")]
    NotFound,
    #[error("file exists")]
    Exists,
    /// A path that leaves the root: `..` above it, or an absolute symlink.
    #[error("operation not permitted")]
    NotPermitted,
    #[error("not a directory")]
    NotDirectory,
    #[error("is a directory")]
    IsDirectory,
    #[error("directory not empty")]
    NotEmpty,
    #[error("too many levels of symbolic links")]
    Loop,
    #[error("invalid argument")]
    Invalid,
    /// The container's writable layer is at its `--storage-opt size=`.
    #[error("no space left on device")]
    NoSpace,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl VfsError {
    /// The error for an `io::Error` from a layer, by kind where it has one.
    pub fn from_io(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::NotFound => Self::NotFound,
            K::AlreadyExists => Self::Exists,
            K::NotADirectory => Self::NotDirectory,
            K::IsADirectory => Self::IsDirectory,
            K::DirectoryNotEmpty => Self::NotEmpty,
            _ => Self::Io(e),
        }
    }
}

pub type VfsResult<T> = Result<T, VfsError>;

impl From<VfsError> for std::io::Error {
    fn from(e: VfsError) -> Self {
        use std::io::ErrorKind as K;
        match e {
            VfsError::Io(e) => e,
            // Worded as cap-std words an escape, which callers recognise.
            VfsError::NotPermitted => {
                std::io::Error::new(K::PermissionDenied, "a path leads outside the root")
            }
            VfsError::NotFound => K::NotFound.into(),
            VfsError::Exists => K::AlreadyExists.into(),
            VfsError::NotDirectory => K::NotADirectory.into(),
            VfsError::IsDirectory => K::IsADirectory.into(),
            VfsError::NotEmpty => K::DirectoryNotEmpty.into(),
            VfsError::Loop => std::io::Error::other("too many levels of symbolic links"),
            VfsError::Invalid => K::InvalidInput.into(),
            VfsError::NoSpace => no_space(),
        }
    }
}

/// "No space left on device", as the OS says it (so that WASI and callers
/// that read the OS error see ENOSPC).
pub fn no_space() -> std::io::Error {
    #[cfg(unix)]
    return std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error());
    #[cfg(windows)]
    return std::io::Error::from_raw_os_error(112); // ERROR_DISK_FULL
}
