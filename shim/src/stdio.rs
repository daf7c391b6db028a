//! containerd's stdio FIFOs. Each is opened so that the open never blocks,
//! whether or not containerd (or ctr) has opened the other end yet: output
//! FIFOs read-write, which Linux allows on a FIFO without waiting; stdin
//! read-only through tokio's pipe receiver, plus a write end the shim holds
//! itself so that the reader never sees a premature end. `CloseIO` lets go
//! of that write end: the guest then reads everything the client wrote,
//! and sees end-of-file once the client has closed its own end.
//!
//! Every path given is opened, and closed when the guest ends: containerd
//! waits for end-of-file on each stream of an exec before it answers.

use std::io;
use std::sync::{Arc, Mutex};

use tokio::net::unix::pipe;
use wrun::sandbox::{Input, Output, Stdio};

/// The paths containerd gave for one process's streams (empty: none).
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Ends a guest's stdin on `CloseIO`: the shim's own write end goes.
#[derive(Debug, Clone, Default)]
pub struct StdinCloser(Arc<Mutex<Option<std::fs::File>>>);

impl StdinCloser {
    pub fn close(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// A guest's streams, and what the shim keeps of them.
pub struct Opened {
    pub stdio: Stdio,
    pub stdin: StdinCloser,
    /// A second handle on stderr, for the shim's own last word (a trap, out
    /// of memory) after the guest's: the reader sees end-of-file only
    /// once both are closed.
    pub notes: Option<std::fs::File>,
}

/// Opens the streams in `paths` for a guest.
pub fn open(paths: &Paths) -> io::Result<Opened> {
    let closer = StdinCloser::default();
    let stdin = if paths.stdin.is_empty() {
        Input::Null
    } else {
        let rx = pipe::OpenOptions::new()
            .open_receiver(&paths.stdin)
            .map_err(|e| named(&paths.stdin, e))?;
        // Non-blocking, and at once: this process is a reader now.
        let keeper = {
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&paths.stdin)
                .map_err(|e| named(&paths.stdin, e))?
        };
        *closer.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(keeper);
        Input::Stream(Box::new(rx))
    };
    let notes = if paths.stderr.is_empty() {
        None
    } else {
        Some(open_rw(&paths.stderr)?)
    };
    Ok(Opened {
        stdio: Stdio {
            stdin,
            stdout: output(&paths.stdout)?,
            stderr: output(&paths.stderr)?,
        },
        stdin: closer,
        notes,
    })
}

fn open_rw(path: &str) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| named(path, e))
}

fn output(path: &str) -> io::Result<Output> {
    if path.is_empty() {
        return Ok(Output::Null);
    }
    let f = open_rw(path)?;
    Ok(Output::Stream(Box::new(tokio::fs::File::from_std(f))))
}

fn named(path: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("open {path}: {e}"))
}
