//! The Kubernetes API's wire format, as `api/` is Docker's: the served
//! resources, discovery documents, server-side Tables, metav1.Status
//! errors, selectors, the four patch types and watch events. Typed objects
//! come from `k8s-openapi`; this module holds what the API server adds
//! around them.
//!
//! **Architecture Invariant:** Kubernetes JSON is converted here and in
//! `daemon/kube/` only.

pub mod decode;
pub mod discovery;
pub mod patch;
pub mod protobuf;
pub mod resources;
pub mod selector;
pub mod status;
pub mod table;

pub use resources::{RESOURCES, Resource};
pub use status::{Cause, KubeError};
