//! Errors of daemon operations, each with the HTTP status Docker answers
//! it with.

use hyper::StatusCode;

use crate::container::ContainerError;
use crate::image::ImageError;
use crate::net::NetError;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// 404: an unknown container, image, exec instance or endpoint.
    #[error("{0}")]
    NotFound(String),
    /// 409: a name in use, a running container removed, a stopped one
    /// exec'd into.
    #[error("{0}")]
    Conflict(String),
    /// 400: a malformed body or parameter.
    #[error("{0}")]
    BadRequest(String),
    /// 400: a program that cannot be started, with the exit code a shell
    /// would report (127 not found, 126 not runnable).
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
    /// 304: start of a started container, stop of a stopped one.
    #[error("container already in the requested state")]
    NotModified,
    #[error("{0}")]
    Internal(String),
}

impl DaemonError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) | Self::Start { .. } => StatusCode::BAD_REQUEST,
            Self::NotModified => StatusCode::NOT_MODIFIED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn bad_request(msg: impl std::fmt::Display) -> Self {
        Self::BadRequest(msg.to_string())
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::Internal(msg.to_string())
    }
}

impl From<ContainerError> for DaemonError {
    fn from(e: ContainerError) -> Self {
        let msg = e.to_string();
        match e {
            ContainerError::NotFound(_) => Self::NotFound(msg),
            ContainerError::NameInUse { .. } => Self::Conflict(msg),
            ContainerError::BadName(_)
            | ContainerError::BadVolume { .. }
            | ContainerError::BadEnv(_)
            | ContainerError::BadRestartPolicy(_)
            | ContainerError::BadWorkdir(_) => Self::BadRequest(msg),
            ContainerError::Net(e) => e.into(),
            // Docker answers a missing executable with 400 and the words
            // "executable file not found", which clients map to exit 127.
            ContainerError::NoCommand { .. }
            | ContainerError::Sandbox { .. }
            | ContainerError::Exec { .. } => Self::Start {
                exit_code: e.exit_code(),
                message: msg,
            },
            ContainerError::Image(i) => i.into(),
            _ => Self::Internal(msg),
        }
    }
}

impl From<crate::api::filters::FilterError> for DaemonError {
    fn from(e: crate::api::filters::FilterError) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<NetError> for DaemonError {
    fn from(e: NetError) -> Self {
        let msg = e.to_string();
        match e {
            NetError::NoSuchNetwork(_) => Self::NotFound(msg),
            NetError::NetworkExists(_) | NetError::NetworkInUse { .. } => Self::Conflict(msg),
            NetError::BadNetwork { .. }
            | NetError::BadEgress { .. }
            | NetError::BadPublish { .. } => Self::BadRequest(msg),
            NetError::Exhausted(_) | NetError::Bind { .. } => Self::Internal(msg),
        }
    }
}

impl From<ImageError> for DaemonError {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::NotFound(name) => Self::NotFound(format!("No such image: {name}")),
            ImageError::InUse { .. } => Self::Conflict(e.to_string()),
            ImageError::Reference { .. } | ImageError::Invalid { .. } => {
                Self::BadRequest(e.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}
