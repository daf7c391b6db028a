//! Moving a container's streams between the daemon and this terminal:
//! Docker's multiplexed frames split back into stdout and stderr, and this
//! process's stdin sent up a hijacked connection.

use std::io::Write as _;

use anyhow::{Result, bail};
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::api::stream::{Demuxer, StreamKind};
use crate::client::next_chunk;

/// Writes chunks of a container's output to this process's stdout and
/// stderr; `raw` streams (a TTY) all go to stdout.
#[derive(Debug)]
pub struct OutputSplitter {
    raw: bool,
    demux: Demuxer,
}

impl OutputSplitter {
    pub fn new(raw: bool) -> Self {
        Self {
            raw,
            demux: Demuxer::new(),
        }
    }

    pub fn push(&mut self, data: &[u8]) -> Result<()> {
        if self.raw {
            return write_to(StreamKind::Stdout, data);
        }
        self.demux.push(data);
        while let Some((kind, payload)) = self.demux.next_frame()? {
            write_to(kind, &payload)?;
        }
        Ok(())
    }
}

fn write_to(kind: StreamKind, data: &[u8]) -> Result<()> {
    let r = match kind {
        StreamKind::Stderr | StreamKind::System => {
            let mut e = std::io::stderr().lock();
            e.write_all(data).and_then(|()| e.flush())
        }
        _ => {
            let mut o = std::io::stdout().lock();
            o.write_all(data).and_then(|()| o.flush())
        }
    };
    match r {
        // A closed pipe (`| head`) ends the output quietly, as Docker does.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

/// Copies a hijacked connection's output until the daemon closes it.
pub async fn copy_output<R: AsyncRead + Unpin>(mut r: R, raw: bool) -> Result<()> {
    let mut out = OutputSplitter::new(raw);
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // The daemon going away mid-stream ends the output.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(()),
            Err(e) => bail!("reading the container's output: {e}"),
        };
        out.push(&buf[..n])?;
    }
}

/// Copies a streamed answer body (`logs`).
pub async fn copy_body(mut body: Incoming, raw: bool) -> Result<()> {
    let mut out = OutputSplitter::new(raw);
    while let Some(chunk) = next_chunk(&mut body).await? {
        out.push(&chunk)?;
    }
    Ok(())
}

/// Sends this process's stdin up a connection, then closes the write side
/// so the guest sees end of file.
pub async fn pump_stdin<W: AsyncWrite + Unpin>(mut w: W) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if w.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                let _ = w.flush().await;
            }
        }
    }
    let _ = w.shutdown().await;
}
