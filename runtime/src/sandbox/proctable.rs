//! A container's process table, shown to its guests as a read-only `/proc`
//! served from memory (see `procfs.rs`): no file is written for it.
//!
//! Each guest instance in a container gets a container-local PID; PID 1 is
//! the main program.
//!
//! ```text
//! /proc/<pid>/cmdline   argv, each argument followed by a NUL byte
//! /proc/<pid>/status    Name, State, Pid and PPid lines, as Linux writes them
//! ```
//!
//! An entry exists while its instance runs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The process table of one container.
#[derive(Debug, Clone, Default)]
pub struct ProcTable(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    next: AtomicU32,
    /// The live processes: PID → (PPID, argv).
    live: Mutex<BTreeMap<u32, (u32, Vec<String>)>>,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            next: AtomicU32::new(1),
            live: Mutex::default(),
        }
    }
}

/// One row of the table, as `top` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    pub argv: Vec<String>,
}

impl ProcTable {
    pub fn new() -> Self {
        Self::default()
    }

    fn live(&self) -> MutexGuard<'_, BTreeMap<u32, (u32, Vec<String>)>> {
        self.0.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live processes, by PID.
    pub fn list(&self) -> Vec<ProcInfo> {
        self.live()
            .iter()
            .map(|(pid, (ppid, argv))| ProcInfo {
                pid: *pid,
                ppid: *ppid,
                argv: argv.clone(),
            })
            .collect()
    }

    /// Whether `pid` is running.
    pub fn has(&self, pid: u32) -> bool {
        self.live().contains_key(&pid)
    }

    /// `/proc/<pid>/cmdline`: each argument followed by a NUL byte.
    pub fn cmdline(&self, pid: u32) -> Option<Vec<u8>> {
        let live = self.live();
        let (_, argv) = live.get(&pid)?;
        let mut out = Vec::new();
        for a in argv {
            out.extend_from_slice(a.as_bytes());
            out.push(0);
        }
        Some(out)
    }

    /// `/proc/<pid>/status`, the lines `ps` reads.
    pub fn status(&self, pid: u32) -> Option<Vec<u8>> {
        let live = self.live();
        let (ppid, argv) = live.get(&pid)?;
        let name = argv
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
            .unwrap_or_default();
        Some(
            format!("Name:\t{name}\nState:\tR (running)\nPid:\t{pid}\nPPid:\t{ppid}\n")
                .into_bytes(),
        )
    }

    /// Adds a process and returns its entry; dropping the entry removes it.
    pub fn spawn(&self, argv: &[String], ppid: u32) -> ProcEntry {
        let pid = self.0.next.fetch_add(1, Ordering::SeqCst);
        self.live().insert(pid, (ppid, argv.to_vec()));
        ProcEntry {
            pid,
            table: self.clone(),
        }
    }
}

/// One live process; removed from the table on drop.
#[derive(Debug)]
pub struct ProcEntry {
    pid: u32,
    table: ProcTable,
}

impl ProcEntry {
    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl Drop for ProcEntry {
    fn drop(&mut self) {
        self.table.live().remove(&self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_count_up_and_entries_vanish() {
        let t = ProcTable::new();
        let a = t.spawn(&["/app.wasm".into(), "x".into()], 0);
        let b = t.spawn(&["ps".into()], 1);
        assert_eq!((a.pid(), b.pid()), (1, 2));
        assert_eq!(t.cmdline(1).expect("cmdline"), b"/app.wasm\0x\0");
        let status = String::from_utf8(t.status(2).expect("status")).expect("utf8");
        assert!(
            status.contains("Name:\tps\n") && status.contains("PPid:\t1\n"),
            "{status}"
        );
        assert_eq!(t.list().len(), 2);
        drop(b);
        assert!(!t.has(2) && t.status(2).is_none());
        assert_eq!(t.list()[0].argv, ["/app.wasm", "x"]);
    }
}
