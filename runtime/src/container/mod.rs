//! Containers: a record in the metadata database, a private rootfs copy of
//! an image, and a guest program run through the sandbox.
//!
//! ```text
//!   create ──▶ Created ──start──▶ Running ──guest exits / stop──▶ Exited
//!                 │                                               │
//!                 └──────────────────── rm ◀──────────────────────┘
//! ```
//!
//! Until the daemon lands, `wrun run` drives this lifecycle in-process.

mod names;
mod records;
mod run;
mod spec;

pub use records::{ContainerRecord, ContainerState, Containers};
pub use run::{RunIo, run};
pub use spec::{ContainerSpec, VolumeSpec, merge_env};

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
    #[error("cannot remove container {0}: the container is running; stop it first or use --force")]
    Running(String),
    #[error("invalid volume {spec:?}: {message}")]
    BadVolume { spec: String, message: String },
    #[error("invalid environment variable {0:?}")]
    BadEnv(String),
    #[error("container {id}: {message}")]
    Rootfs { id: String, message: String },
    #[error("container {id}: {source}")]
    Exec {
        id: String,
        #[source]
        source: crate::image::rootfs::RootfsError,
    },
    #[error("container {id}: {source}")]
    Sandbox {
        id: String,
        #[source]
        source: crate::sandbox::SandboxError,
    },
    #[error("container {id}: no command given and the image has no ENTRYPOINT or CMD")]
    NoCommand { id: String },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Db(#[from] crate::state::DbError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

impl From<rusqlite::Error> for ContainerError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.into())
    }
}
