//! One daemon per state root: an exclusive lock on `<root>/daemon.lock`,
//! held for the daemon's life and released by the OS however it ends, even
//! by `kill -9`. The file holds the daemon's PID for humans.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::Path;

use super::error::DaemonError;

/// The held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    pub fn acquire(root: &Path) -> Result<Self, DaemonError> {
        let path = root.join("daemon.lock");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| DaemonError::internal(format!("{}: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(DaemonError::Conflict(format!(
                    "another wrun daemon (pid {}) is already running for {}",
                    pid.trim(),
                    root.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(DaemonError::internal(format!("{}: {e}", path.display())));
            }
        }
        let _ = file.set_len(0);
        let _ = writeln!(file, "{}", std::process::id());
        Ok(Self { _file: file })
    }
}
