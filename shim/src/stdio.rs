//! containerd's stdio FIFOs. Each is opened so that the open never blocks,
//! whether or not containerd (or ctr) has opened the other end yet: output
//! FIFOs read-write, which Linux allows on a FIFO without waiting; stdin
//! through tokio's pipe receiver, also read-write, so that it never sees a
//! premature end. Its real end comes from `CloseIO`: what is still in the
//! pipe is read, then the guest sees end-of-file.
//!
//! Every path given is opened, and closed when the guest ends: containerd
//! waits for end-of-file on each stream of an exec before it answers.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, ReadBuf};
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

/// Ends a guest's stdin on `CloseIO`.
#[derive(Debug, Clone, Default)]
pub struct StdinCloser(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    closed: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl StdinCloser {
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
        let waker = self
            .0
            .waker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(w) = waker {
            w.wake();
        }
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
            .read_write(true)
            .open_receiver(&paths.stdin)
            .map_err(|e| named(&paths.stdin, e))?;
        Input::Stream(Box::new(ClosableStdin {
            rx,
            shared: closer.0.clone(),
        }))
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

/// A stdin FIFO that ends when `CloseIO` says so, after what was written.
struct ClosableStdin {
    rx: pipe::Receiver,
    shared: Arc<Shared>,
}

impl AsyncRead for ClosableStdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.shared.closed.load(Ordering::SeqCst) {
            // Drain what is left without waiting, then end.
            let unfilled = buf.initialize_unfilled();
            return match self.rx.try_read(unfilled) {
                Ok(n) => {
                    buf.advance(n);
                    Poll::Ready(Ok(()))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Ready(Ok(())),
                Err(e) => Poll::Ready(Err(e)),
            };
        }
        *self.shared.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
        // Closed between the check and registering: look again.
        if self.shared.closed.load(Ordering::SeqCst) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.rx).poll_read(cx, buf)
    }
}
