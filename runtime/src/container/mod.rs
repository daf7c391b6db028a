//! Containers: a record in the metadata database, a root made of its
//! image's shared layers under its own writable layer, and a guest program
//! run through the sandbox.
//!
//! ```text
//!   create ──▶ Created ──start──▶ Running ──guest exits / stop──▶ Exited
//!                 │                                               │
//!                 └──────────────────── rm ◀──────────────────────┘
//! ```
//!
//! The daemon drives this lifecycle; this module knows nothing of it.

mod names;
mod records;
#[cfg(feature = "runtime")]
mod run;
mod spec;

pub use records::{
    ContainerRecord, ContainerState, Containers, Rootfs, container_dir, delete_detached,
    detach_container_dir, log_path, open_rootfs, own_size, remove_container_dir, rootfs_dir,
    rotated_log,
};
#[cfg(feature = "runtime")]
pub use run::{Process, ProcessRequest, prepare};
pub use spec::{ContainerSpec, RestartPolicy, SpecRequest, VolumeSpec, merge_env};

/// Errors of container operations; each names the container or its image.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No such container: {0}")]
    NotFound(String),
    #[error(
        "Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name {0:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    BadName(String),
    #[error("invalid volume {spec:?}: {message}")]
    BadVolume { spec: String, message: String },
    #[error("invalid environment variable {0:?}")]
    BadEnv(String),
    #[error(
        "invalid restart policy {0:?}: use no, always, unless-stopped or on-failure[:max-retries]"
    )]
    BadRestartPolicy(String),
    #[error("the working directory {0:?} is invalid: it needs to be an absolute path")]
    BadWorkdir(String),
    #[error("container {0}: {1}")]
    Internal(String, String),
    #[error("container {id}: {message}")]
    Rootfs { id: String, message: String },
    #[error("container {id}: {source}")]
    Exec {
        id: String,
        #[source]
        source: crate::image::rootfs::RootfsError,
    },
    #[cfg(feature = "runtime")]
    #[error("container {id}: {source}")]
    Sandbox {
        id: String,
        #[source]
        source: crate::sandbox::SandboxError,
    },
    #[error("container {id}: no command given and the image has no ENTRYPOINT or CMD")]
    NoCommand { id: String },
    #[error(transparent)]
    Net(#[from] crate::net::NetError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Db(#[from] crate::state::DbError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl ContainerError {
    /// Docker's exit codes for a program that could not be run: 127 when
    /// it is not found, 126 when it cannot be run, 125 otherwise.
    pub fn exit_code(&self) -> i32 {
        use crate::image::rootfs::RootfsError;
        #[cfg(feature = "runtime")]
        use crate::sandbox::SandboxError;
        match self {
            Self::Exec {
                source: RootfsError::NotFound(_) | RootfsError::NotInPath(_),
                ..
            } => 127,
            Self::Exec { .. } => 126,
            #[cfg(feature = "runtime")]
            Self::Sandbox {
                source:
                    SandboxError::NotWasm { .. }
                    | SandboxError::Compile { .. }
                    | SandboxError::NotCommand { .. },
                ..
            } => 126,
            _ => 125,
        }
    }
}

impl From<rusqlite::Error> for ContainerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.into())
    }
}
