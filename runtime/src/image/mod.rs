//! Images: references, digests, the content-addressed store, layers, and
//! Dockerfile builds. Everything here is standard OCI, so other tools can
//! read what wrun writes.

pub mod assemble;
pub mod blobs;
pub mod build;
pub mod commit;
pub mod digest;
pub mod dockerfile;
pub mod gc;
pub mod layer;
pub mod layout;
pub mod reference;
pub mod rootfs;
pub mod store;
pub mod wasm;

pub use digest::Digest;
pub use reference::Reference;
pub use store::{Image, ImageStore, ImageSummary, Removed};

/// Everything that can go wrong with images, rolled up.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}: image not found")]
    NotFound(String),
    #[error("{source}")]
    Reference {
        name: String,
        #[source]
        source: reference::ReferenceError,
    },
    #[error("image {name}: {message}")]
    Invalid { name: String, message: String },
    #[error("unable to remove {name} (must force): {reason}")]
    InUse { name: String, reason: String },
    #[error("{name}: {message}")]
    Ambiguous { name: String, message: String },
    #[error(transparent)]
    Blob(#[from] blobs::BlobError),
    #[error(transparent)]
    Layer(#[from] layer::LayerError),
    #[error(transparent)]
    Db(#[from] crate::state::DbError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Dockerfile(#[from] dockerfile::DockerfileError),
    #[error(transparent)]
    Build(#[from] build::BuildError),
}

impl From<rusqlite::Error> for ImageError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Db(e.into())
    }
}

/// The media types wrun reads and writes.
pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
}
