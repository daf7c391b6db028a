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
//! - `files.rs`: single-file bind mounts, mounted onto the rootfs;
//! - `guest.rs`: one guest program, found in the rootfs and run;
//! - `engine.rs`: the pod's one wasm engine, made in the background;
//! - `task.rs`: the task service (create, start, exec, kill, wait, ...);
//! - `service.rs`: the shim process itself (start, grouping, delete);
//! - `netns.rs`: entering the pod's network namespace before anything runs.

mod bundle;
mod engine;
mod files;
mod guest;
mod netns;
mod service;
mod stdio;
mod task;

/// The serving process's async worker threads, at most.
const WORKERS: usize = 2;

/// The runtime name containerd knows the shim by.
pub const RUNTIME: &str = "io.containerd.wrun.v1";

/// The binary's entry point: enters the pod's network namespace when this
/// is the process that serves a pod (before any thread starts, so that
/// every thread is in it), then parses containerd's flags and serves the
/// action they name.
pub fn main() {
    wrun::sandbox::quiet_error_backtraces();
    if let Err(e) = netns::enter_from_env() {
        eprintln!("containerd-shim-wrun-v1: {e}");
        std::process::exit(1);
    }
    // `start` and `delete` are one-shot actions that wait on one thing at a
    // time; only the process that serves the pod needs worker threads, and
    // a few do: guests that compute move to the sandbox's own pool.
    let one_shot = matches!(
        std::env::args().next_back().as_deref(),
        Some("start" | "delete")
    );
    let mut builder = if one_shot {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        b.worker_threads(cores.min(WORKERS));
        b
    };
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("containerd-shim-wrun-v1: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(containerd_shim::asynchronous::run::<service::Service>(
        RUNTIME, None,
    ));
}
