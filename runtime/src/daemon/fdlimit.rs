//! The daemon's open-file limit. Every container holds descriptors (its
//! log, its guest's sockets, its published ports), and the usual soft limit
//! of 1024 would stop a daemon far short of the thousands of containers it
//! is meant to hold. As dockerd (like every Go program) does, the daemon
//! raises its soft limit to the hard one when it starts.

/// Raises the soft `RLIMIT_NOFILE` as far as the system allows; the limit
/// it ends with, or `None` when it could not be read or is unlimited.
#[cfg(unix)]
pub fn raise() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

    /// macOS refuses a soft limit above OPEN_MAX when the hard one is
    /// unlimited.
    const OPEN_MAX: u64 = 10_240;

    let now = getrlimit(Resource::Nofile);
    let current = now.current?;
    for want in [now.maximum, Some(OPEN_MAX)] {
        if want.is_some_and(|w| w <= current) {
            continue;
        }
        let raised = Rlimit {
            current: want,
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => {
                tracing::debug!(from = current, to = ?want, "raised the open-file limit");
                return want;
            }
            Err(e) => {
                tracing::debug!(to = ?want, error = %e, "cannot raise the open-file limit");
            }
        }
    }
    Some(current)
}

/// Windows has no per-process descriptor limit of this kind.
#[cfg(not(unix))]
pub fn raise() -> Option<u64> {
    None
}
