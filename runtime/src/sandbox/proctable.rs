//! A container's process table, shown to its guests as a read-only `/proc`.
//!
//! Each guest instance in a container gets a container-local PID; PID 1 is
//! the main program. The table is materialised as real files in a host
//! directory that is preopened read-only at `/proc`:
//!
//! ```text
//! /proc/<pid>/cmdline   argv, each argument followed by a NUL byte
//! /proc/<pid>/status    Name, State, Pid and PPid lines, as Linux writes them
//! ```
//!
//! An entry is written when an instance starts and removed when it ends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// The process table of one container.
#[derive(Debug, Clone)]
pub struct ProcTable(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    next: AtomicU32,
    /// The live processes: PID → (PPID, argv), for `top`.
    live: Mutex<BTreeMap<u32, (u32, Vec<String>)>>,
}

/// One row of the table, as `top` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub argv: Vec<String>,
}

impl ProcTable {
    /// A table backed by `dir`, which is created if missing.
    pub fn new(dir: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self(Arc::new(Inner {
            dir,
            next: AtomicU32::new(1),
            live: Mutex::new(BTreeMap::new()),
        })))
    }

    /// The live processes, by PID.
    pub fn list(&self) -> Vec<ProcInfo> {
        let live = self.0.live.lock().unwrap_or_else(|p| p.into_inner());
        live.iter()
            .map(|(pid, (ppid, argv))| ProcInfo {
                pid: *pid,
                ppid: *ppid,
                argv: argv.clone(),
            })
            .collect()
    }

    pub fn dir(&self) -> &Path {
        &self.0.dir
    }

    /// Adds a process and returns its entry; dropping the entry removes it.
    pub fn spawn(&self, argv: &[String], ppid: u32) -> std::io::Result<ProcEntry> {
        let pid = self.0.next.fetch_add(1, Ordering::SeqCst);
        let name = argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
            .unwrap_or_default();
        let mut cmdline = Vec::new();
        for a in argv {
            cmdline.extend_from_slice(a.as_bytes());
            cmdline.push(0);
        }
        let status = format!("Name:\t{name}\nState:\tR (running)\nPid:\t{pid}\nPPid:\t{ppid}\n");
        // Staged under a dot-name and renamed, so a reader never sees a
        // half-written entry.
        let staging = self.0.dir.join(format!(".{pid}.new"));
        std::fs::create_dir_all(&staging)?;
        std::fs::write(staging.join("cmdline"), cmdline)?;
        std::fs::write(staging.join("status"), status)?;
        let path = self.0.dir.join(pid.to_string());
        let _ = std::fs::remove_dir_all(&path);
        std::fs::rename(&staging, &path)?;
        self.0
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(pid, (ppid, argv.to_vec()));
        Ok(ProcEntry {
            pid,
            path,
            table: self.0.clone(),
        })
    }
}

/// One live process; removed from the table on drop.
#[derive(Debug)]
pub struct ProcEntry {
    pid: u32,
    path: PathBuf,
    table: Arc<Inner>,
}

impl ProcEntry {
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for ProcEntry {
    fn drop(&mut self) {
        self.table
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.pid);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_count_up_and_entries_vanish() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = ProcTable::new(dir.path().join("proc")).expect("table");
        let a = t
            .spawn(&["/app.wasm".into(), "x".into()], 0)
            .expect("spawn");
        let b = t.spawn(&["ps".into()], 1).expect("spawn");
        assert_eq!((a.pid(), b.pid()), (1, 2));
        let cmdline = std::fs::read(t.dir().join("1/cmdline")).expect("cmdline");
        assert_eq!(cmdline, b"/app.wasm\0x\0");
        let status = std::fs::read_to_string(t.dir().join("2/status")).expect("status");
        assert!(
            status.contains("Name:\tps\n") && status.contains("PPid:\t1\n"),
            "{status}"
        );
        assert_eq!(t.list().len(), 2);
        drop(b);
        assert!(!t.dir().join("2").exists());
        assert_eq!(t.list()[0].argv, ["/app.wasm", "x"]);
    }
}
