//! The pod's network namespace. The process that serves a pod is started
//! with `WRUN_SHIM_NETNS` naming the namespace from the sandbox's spec;
//! it moves into it first thing, on its only thread, so that the threads
//! it starts afterwards (tokio's, the guests') all open their sockets
//! there. `setns` moves one thread only, hence before anything else.

use std::os::fd::AsFd as _;

/// The variable `start` passes to the serving process.
pub const ENV: &str = "WRUN_SHIM_NETNS";

/// Enters the namespace `WRUN_SHIM_NETNS` names, if set. Call it before
/// starting any thread.
pub fn enter_from_env() -> Result<(), String> {
    let Some(path) = std::env::var_os(ENV).filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let f = std::fs::File::open(&path)
        .map_err(|e| format!("network namespace {}: {e}", path.to_string_lossy()))?;
    rustix::thread::move_into_link_name_space(
        f.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .map_err(|e| {
        format!(
            "cannot enter the network namespace {}: {e}",
            path.to_string_lossy()
        )
    })?;
    Ok(())
}
