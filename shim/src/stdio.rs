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
//!
//! With a terminal (`ctr run -t`, `kubectl exec -t`) the client's own
//! terminal is raw and expects a pty at this end; guests have none, so
//! wrun's line discipline stands in: typed input is echoed and edited and
//! reaches the guest a line at a time, ^D ends it, ^C interrupts the guest
//! (130), and the guest's newlines go out as CR LF.

use std::io;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::unix::pipe;
use wrun::sandbox::{Input, Output, Stdio, StopHandle, StopReason};
use wrun::tty::{Discipline, Onlcr};

/// Cooked input not yet read by the guest, at most.
const COOKED_BUFFER: usize = 64 << 10;

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

/// Opens the streams in `paths` for a guest; with a terminal, ^C stops it
/// through `stop`.
pub fn open(paths: &Paths, stop: &StopHandle) -> io::Result<Opened> {
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
        if paths.terminal {
            let echo = if paths.stdout.is_empty() {
                None
            } else {
                Some(tokio::fs::File::from_std(open_rw(&paths.stdout)?))
            };
            cooked(rx, echo, stop.clone())
        } else {
            Input::Stream(Box::new(rx))
        }
    };
    let notes = if paths.stderr.is_empty() {
        None
    } else {
        Some(open_rw(&paths.stderr)?)
    };
    Ok(Opened {
        stdio: Stdio {
            stdin,
            stdout: output(&paths.stdout, paths.terminal)?,
            stderr: output(&paths.stderr, paths.terminal)?,
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

fn output(path: &str, terminal: bool) -> io::Result<Output> {
    if path.is_empty() {
        return Ok(Output::Null);
    }
    let f = tokio::fs::File::from_std(open_rw(path)?);
    Ok(if terminal {
        Output::Stream(Box::new(Onlcr::new(f)))
    } else {
        Output::Stream(Box::new(f))
    })
}

/// The guest's stdin through the line discipline: what is typed on `raw`
/// is echoed to `echo`, and each finished line goes to the guest.
fn cooked(mut raw: pipe::Receiver, mut echo: Option<tokio::fs::File>, stop: StopHandle) -> Input {
    let (mut to_guest, guest_reads) = tokio::io::duplex(COOKED_BUFFER);
    tokio::spawn(async move {
        let mut line = Discipline::default();
        let mut buf = vec![0; 4096];
        loop {
            let n = match raw.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let fed = line.feed(&buf[..n]);
            if let Some(out) = echo.as_mut().filter(|_| !fed.echo.is_empty()) {
                // A client that stopped reading its terminal loses the echo.
                if out.write_all(&fed.echo).await.is_err() {
                    echo = None;
                }
            }
            if !fed.input.is_empty() && to_guest.write_all(&fed.input).await.is_err() {
                break;
            }
            if fed.interrupt {
                stop.stop(StopReason::Interrupted);
            }
            if fed.eof {
                break;
            }
        }
        // Dropping `to_guest` ends the guest's input.
    });
    Input::Stream(Box::new(guest_reads))
}

fn named(path: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("open {path}: {e}"))
}
