//! A container's standard streams inside the daemon: output fans out to
//! the log file and to every attached client; stdin comes from the client
//! that attached with `-i`.
//!
//! The log file and the list of subscribers change under one lock, so a
//! `logs -f` reader that notes the file's length and subscribes in one step
//! sees every byte exactly once.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::logs;
use crate::api::stream::StreamKind;
use crate::sandbox::{Input, Output, OutputSink};

/// One chunk of a container's output.
pub type Chunk = (StreamKind, Bytes);

/// The streams of one container, shared by all its runs.
#[derive(Debug)]
pub struct ContainerIo {
    log_path: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: Option<File>,
    log_len: u64,
    /// Output bytes that could not be logged (a full disk) since the last
    /// write that could.
    unlogged: u64,
    rotation: logs::Rotation,
    subscribers: Vec<mpsc::UnboundedSender<Chunk>>,
    stdin_tx: Option<mpsc::UnboundedSender<Bytes>>,
    stdin_rx: Option<mpsc::UnboundedReceiver<Bytes>>,
}

impl ContainerIo {
    pub fn new(log_path: PathBuf) -> Self {
        Self {
            log_path,
            inner: Mutex::new(Inner {
                log: None,
                log_len: 0,
                unlogged: 0,
                rotation: logs::DEFAULT_ROTATION,
                subscribers: Vec::new(),
                stdin_tx: None,
                stdin_rx: None,
            }),
        }
    }

    /// How the log is rotated (the container's `--log-opt`s).
    pub fn set_rotation(&self, r: logs::Rotation) {
        self.lock().rotation = r;
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Logs a chunk and hands it to every subscriber.
    pub fn publish(&self, stream: StreamKind, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let r = inner.rotation;
        if inner.log_len > 0 && inner.log_len.saturating_add(data.len() as u64) > r.max_size {
            inner.log = None;
            match logs::rotate(&self.log_path, r.max_files) {
                Ok(()) => inner.log_len = 0,
                Err(e) => {
                    tracing::warn!(path = %self.log_path.display(), error = %e, "cannot rotate the log")
                }
            }
        }
        if inner.log.is_none() {
            // The container's directory is made with its first output (or
            // its first write): a silent container that writes nothing
            // has none.
            if let Some(dir) = self.log_path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
            {
                Ok(f) => {
                    inner.log_len = f.metadata().map(|m| m.len()).unwrap_or(0);
                    inner.log = Some(f);
                }
                Err(e) if inner.unlogged == 0 => {
                    tracing::warn!(path = %self.log_path.display(), error = %e, "cannot open the log; output is not logged until it can be")
                }
                Err(_) => {}
            }
        }
        let inner = &mut *inner;
        match inner
            .log
            .as_mut()
            .map(|f| (logs::append(f, stream, data), f))
        {
            Some((Ok(n), _)) => {
                inner.log_len += n;
                if inner.unlogged > 0 {
                    tracing::warn!(
                        path = %self.log_path.display(),
                        bytes = inner.unlogged,
                        "the log is written again; output in between was not logged"
                    );
                    inner.unlogged = 0;
                }
            }
            Some((Err(e), f)) => {
                // A write cut short (a full disk) would leave half an
                // entry, which would also spoil the next one: cut the file
                // back to its last whole entry.
                if f.set_len(inner.log_len).is_err() {
                    inner.log = None;
                }
                if inner.unlogged == 0 {
                    tracing::warn!(path = %self.log_path.display(), error = %e, "cannot write the log; output is not logged until it can be");
                }
                inner.unlogged += data.len() as u64;
            }
            None => inner.unlogged += data.len() as u64,
        }
        let bytes = Bytes::copy_from_slice(data);
        inner
            .subscribers
            .retain(|s| s.send((stream, bytes.clone())).is_ok());
    }

    /// Receives output from now until the current (or next) run ends, and
    /// returns how many bytes of the log file precede the subscription.
    pub fn subscribe_at(&self) -> (u64, mpsc::UnboundedReceiver<Chunk>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut inner = self.lock();
        inner.subscribers.push(tx);
        let len = match inner.log {
            Some(_) => inner.log_len,
            None => std::fs::metadata(&self.log_path)
                .map(|m| m.len())
                .unwrap_or(0),
        };
        (len, rx)
    }

    /// Ends the current run's output: subscribers see the end of stream,
    /// and the log file is closed.
    pub fn end_run(&self) {
        let mut inner = self.lock();
        inner.subscribers.clear();
        inner.log = None;
        inner.stdin_tx = None;
        inner.stdin_rx = None;
    }

    /// The guest's output streams.
    pub fn outputs(self: &Arc<Self>) -> (Output, Output) {
        (
            Output::Sink(Arc::new(Sink {
                io: self.clone(),
                stream: StreamKind::Stdout,
            })),
            Output::Sink(Arc::new(Sink {
                io: self.clone(),
                stream: StreamKind::Stderr,
            })),
        )
    }

    /// The guest's stdin for a run: fed by attached clients when the
    /// container keeps stdin open, else empty.
    pub fn stdin_for_run(&self, open: bool) -> Input {
        if !open {
            return Input::Null;
        }
        let mut inner = self.lock();
        let rx = match inner.stdin_rx.take() {
            Some(rx) => rx,
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                inner.stdin_tx = Some(tx);
                rx
            }
        };
        Input::Stream(channel_reader(rx))
    }

    /// A writer into the guest's stdin for an attaching client. With
    /// `once`, the container's own handle is given up, so the guest sees
    /// end of file when this client closes its side.
    pub fn attach_stdin(&self, once: bool) -> Option<mpsc::UnboundedSender<Bytes>> {
        let mut inner = self.lock();
        if inner.stdin_tx.is_none() && inner.stdin_rx.is_none() {
            // Attached before the run: make the pipe the run will read.
            let (tx, rx) = mpsc::unbounded_channel();
            inner.stdin_tx = Some(tx);
            inner.stdin_rx = Some(rx);
        }
        if once {
            inner.stdin_tx.take()
        } else {
            inner.stdin_tx.clone()
        }
    }
}

struct Sink {
    io: Arc<ContainerIo>,
    stream: StreamKind,
}

impl OutputSink for Sink {
    fn write(&self, data: &[u8]) {
        self.io.publish(self.stream, data);
    }
}

/// Sends what a hijacked client writes to a guest's stdin channel, until the
/// client closes its side or the guest's stdin is gone.
pub async fn pump_into<R: tokio::io::AsyncRead + Unpin>(
    mut rd: R,
    tx: mpsc::UnboundedSender<Bytes>,
) {
    use tokio::io::AsyncReadExt as _;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match rd.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx.send(Bytes::copy_from_slice(&buf[..n])).is_err() {
                    break;
                }
            }
        }
    }
}

/// An `AsyncRead` over a channel of byte chunks; end of file when every
/// sender is gone.
pub fn channel_reader(
    rx: mpsc::UnboundedReceiver<Bytes>,
) -> Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> {
    Box::new(ChannelReader {
        rx,
        pending: Bytes::new(),
    })
}

struct ChannelReader {
    rx: mpsc::UnboundedReceiver<Bytes>,
    pending: Bytes,
}

impl tokio::io::AsyncRead for ChannelReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        loop {
            if !self.pending.is_empty() {
                let n = buf.remaining().min(self.pending.len());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Ready(Some(b)) => self.pending = b,
                Poll::Ready(None) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
