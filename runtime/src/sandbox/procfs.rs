//! `/proc` as guests see it: the container's process table, read from
//! memory when a guest looks (`proctable.rs`), never written to disk.
//!
//! ```text
//! /proc/            one directory per live PID
//! /proc/<pid>/      cmdline, status
//! ```
//!
//! It is read-only; `..` may not climb above `/proc`.

use wasmtime_wasi::p2::bindings::filesystem::types::{DescriptorType, DirectoryEntry, ErrorCode};

use super::proctable::ProcTable;

/// The files of a process's directory.
const FILES: [&str; 2] = ["cmdline", "status"];

/// A place in `/proc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcNode {
    Root,
    Pid(u32),
    File { pid: u32, name: &'static str },
}

impl ProcNode {
    pub fn is_dir(&self) -> bool {
        !matches!(self, Self::File { .. })
    }
}

/// Resolves `path` from the directory `base`.
pub fn resolve(table: &ProcTable, base: ProcNode, path: &str) -> Result<ProcNode, ErrorCode> {
    if path.starts_with('/') {
        return Err(ErrorCode::NotPermitted);
    }
    if path.is_empty() {
        return Err(ErrorCode::NoEntry);
    }
    let mut at = base;
    for c in path.split('/') {
        at = match (c, at) {
            ("" | ".", n) => n,
            (_, ProcNode::File { .. }) => return Err(ErrorCode::NotDirectory),
            ("..", ProcNode::Pid(_)) => ProcNode::Root,
            ("..", _) => return Err(ErrorCode::NotPermitted),
            (name, ProcNode::Root) => match name.parse::<u32>() {
                Ok(pid) if table.has(pid) => ProcNode::Pid(pid),
                _ => return Err(ErrorCode::NoEntry),
            },
            (name, ProcNode::Pid(pid)) => match FILES.iter().find(|f| **f == name) {
                Some(f) if table.has(pid) => ProcNode::File { pid, name: f },
                _ => return Err(ErrorCode::NoEntry),
            },
        };
    }
    if path.ends_with('/') && !at.is_dir() {
        return Err(ErrorCode::NotDirectory);
    }
    Ok(at)
}

/// The entries of a directory of `/proc`.
pub fn entries(table: &ProcTable, dir: ProcNode) -> Result<Vec<DirectoryEntry>, ErrorCode> {
    match dir {
        ProcNode::Root => Ok(table
            .list()
            .into_iter()
            .map(|p| DirectoryEntry {
                type_: DescriptorType::Directory,
                name: p.pid.to_string(),
            })
            .collect()),
        ProcNode::Pid(pid) if table.has(pid) => Ok(FILES
            .iter()
            .map(|f| DirectoryEntry {
                type_: DescriptorType::RegularFile,
                name: f.to_string(),
            })
            .collect()),
        ProcNode::Pid(_) => Err(ErrorCode::NoEntry),
        ProcNode::File { .. } => Err(ErrorCode::NotDirectory),
    }
}

/// A file's bytes now, or `None` once its process has ended.
pub fn content(table: &ProcTable, node: ProcNode) -> Option<Vec<u8>> {
    match node {
        ProcNode::File {
            pid,
            name: "cmdline",
        } => table.cmdline(pid),
        ProcNode::File { pid, .. } => table.status(pid),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_proc_only() {
        let t = ProcTable::new();
        let _a = t.spawn(&["sh".into()], 0);
        assert_eq!(
            resolve(&t, ProcNode::Root, "1").expect("pid"),
            ProcNode::Pid(1)
        );
        let f = resolve(&t, ProcNode::Root, "1/status").expect("file");
        assert!(
            String::from_utf8(content(&t, f).expect("bytes"))
                .expect("utf8")
                .contains("Pid:\t1\n")
        );
        assert_eq!(
            resolve(&t, ProcNode::Pid(1), "../1/./cmdline").expect("file"),
            ProcNode::File {
                pid: 1,
                name: "cmdline"
            }
        );
        assert_eq!(
            resolve(&t, ProcNode::Root, ".."),
            Err(ErrorCode::NotPermitted)
        );
        assert_eq!(resolve(&t, ProcNode::Root, "2"), Err(ErrorCode::NoEntry));
        assert_eq!(
            resolve(&t, ProcNode::Root, "1/status/x"),
            Err(ErrorCode::NotDirectory)
        );
        assert_eq!(entries(&t, ProcNode::Root).expect("ls").len(), 1);
        assert_eq!(entries(&t, ProcNode::Pid(1)).expect("ls").len(), 2);
    }
}
