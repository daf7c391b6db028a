//! Errors as the Kubernetes API reports them: a `metav1.Status` with a
//! reason, a code and, for invalid objects, the fields at fault.

use serde_json::{Value, json};

/// One field at fault in an `Invalid` error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueRequired`, `FieldValueInvalid`, `FieldValueNotSupported`,
    /// `FieldValueDuplicate`, `FieldValueForbidden`.
    pub reason: &'static str,
    pub message: String,
    /// The field's path: `metadata.name`, `spec.containers[0].image`.
    pub field: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: field.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: impl std::fmt::Display, why: &str) -> Self {
        Self {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: \"{value}\": {why}"),
            field: field.into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {}", why.into()),
            field: field.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("\"{s}\"")).collect();
        Self {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: \"{value}\": supported values: {}",
                list.join(", ")
            ),
            field: field.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: impl std::fmt::Display) -> Self {
        Self {
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: \"{value}\""),
            field: field.into(),
        }
    }
}

/// An API error: what a real API server answers with, as a Status.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KubeError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// 403.
    #[error("{0}")]
    Forbidden(String),
    /// 404: `pods "kubia" not found`.
    #[error("{} \"{name}\" not found", qualified(.group, .plural))]
    NotFound {
        group: String,
        plural: String,
        name: String,
    },
    /// 404 for a path that names no resource.
    #[error("the server could not find the requested resource")]
    NoRoute,
    /// 405.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409: `pods "kubia" already exists`.
    #[error("{} \"{name}\" already exists", qualified(.group, .plural))]
    AlreadyExists {
        group: String,
        plural: String,
        name: String,
    },
    /// 409: a stale resourceVersion, or another conflict.
    #[error("{message}")]
    Conflict {
        group: String,
        plural: String,
        name: String,
        message: String,
    },
    /// 410: a watch or list from a resourceVersion that is no longer kept.
    #[error("{0}")]
    Gone(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: `Pod "x" is invalid: spec.containers: Required value`.
    #[error("{kind} \"{name}\" is invalid: {}", causes_text(.causes))]
    Invalid {
        group: String,
        kind: String,
        name: String,
        causes: Vec<Cause>,
    },
    /// 500.
    #[error("{0}")]
    Internal(String),
}

fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

fn causes_text(causes: &[Cause]) -> String {
    let parts: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c.field, c.message))
        .collect();
    if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    }
}

impl KubeError {
    pub fn bad_request(msg: impl std::fmt::Display) -> Self {
        Self::BadRequest(msg.to_string())
    }

    pub fn internal(msg: impl std::fmt::Display) -> Self {
        Self::Internal(msg.to_string())
    }

    /// An `Invalid` error with a single cause.
    pub fn invalid(group: &str, kind: &str, name: &str, cause: Cause) -> Self {
        Self::Invalid {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            causes: vec![cause],
        }
    }

    pub fn code(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::Unauthorized => 401,
            Self::Forbidden(_) => 403,
            Self::NotFound { .. } | Self::NoRoute => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::NotAcceptable(_) => 406,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::Gone(_) => 410,
            Self::UnsupportedMediaType(_) => 415,
            Self::Invalid { .. } => 422,
            Self::Internal(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "BadRequest",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden(_) => "Forbidden",
            Self::NotFound { .. } | Self::NoRoute => "NotFound",
            Self::MethodNotAllowed(_) => "MethodNotAllowed",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::Gone(_) => "Expired",
            Self::UnsupportedMediaType(_) => "UnsupportedMediaType",
            Self::Invalid { .. } => "Invalid",
            Self::Internal(_) => "InternalError",
        }
    }

    /// The error as a `metav1.Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            Self::NotFound {
                group,
                plural,
                name,
            }
            | Self::AlreadyExists {
                group,
                plural,
                name,
            }
            | Self::Conflict {
                group,
                plural,
                name,
                ..
            } => Some(json!({"name": name, "group": group, "kind": plural})),
            Self::Invalid {
                group,
                kind,
                name,
                causes,
            } => Some(json!({
                "name": name,
                "group": group,
                "kind": kind,
                "causes": causes.iter().map(|c| json!({
                    "reason": c.reason,
                    "message": c.message,
                    "field": c.field,
                })).collect::<Vec<_>>(),
            })),
            _ => None,
        };
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

/// A successful Status, as a delete of a collection or some subresources
/// answer.
pub fn success(details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_as_the_api_servers() {
        let e = KubeError::NotFound {
            group: String::new(),
            plural: "pods".into(),
            name: "kubia".into(),
        };
        assert_eq!(e.to_string(), "pods \"kubia\" not found");
        let s = e.to_status();
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["kind"], "pods");
    }

    #[test]
    fn invalid_lists_its_causes() {
        let e = KubeError::Invalid {
            group: String::new(),
            kind: "Pod".into(),
            name: "x".into(),
            causes: vec![Cause::required("spec.containers")],
        };
        assert_eq!(
            e.to_string(),
            "Pod \"x\" is invalid: spec.containers: Required value"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][0]["field"],
            "spec.containers"
        );
        assert_eq!(e.code(), 422);
    }
}
