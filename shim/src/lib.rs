//! The containerd shim for wrun's images: containerd 1.6 and 1.7 (task API
//! v2, through the `containerd-shim` crate's async runtime) start it as the
//! runtime `io.containerd.wrun.v1`, and Kubernetes reaches it through a
//! RuntimeClass whose handler names that runtime.
//!
//! One shim process serves a whole pod: containers are grouped by the
//! `io.kubernetes.cri.sandbox-id` annotation, and each is a set of guests
//! in one wasmtime engine, run by wrun's own sandbox with the same
//! capability grant as `wrun run` (the container's rootfs as `/`, its bind
//! mounts, `/proc` from memory, and nothing else of the host).
//!
//! - `bundle.rs`: the OCI bundle containerd hands over (config.json, rootfs);
//! - `stdio.rs`: containerd's stdio FIFOs, opened without blocking;
//! - `guest.rs`: one guest program, found in the rootfs and run;
//! - `task.rs`: the task service (create, start, exec, kill, wait, ...);
//! - `service.rs`: the shim process itself (start, grouping, delete).

mod bundle;
mod guest;
mod service;
mod stdio;
mod task;

/// The runtime name containerd knows the shim by.
pub const RUNTIME: &str = "io.containerd.wrun.v1";

/// Runs the shim: parses containerd's flags and serves the action they name.
pub async fn run() {
    containerd_shim::asynchronous::run::<service::Service>(RUNTIME, None).await;
}
