//! The one place where a guest is granted capabilities.
//!
//! **Architecture Invariant:** a guest gets exactly what its [`ProcessSpec`]
//! lists and nothing from the host by default: no host `/`, no host
//! environment or arguments, no network, and stdio only as given. Sockets
//! come only from [`ProcessSpec::network`].

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime_wasi::cli::{AsyncStdinStream, AsyncStdoutStream, IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::SandboxError;
use crate::net::{NetGrant, NetMode};

/// What one guest instance may see and do.
#[derive(Debug, Default)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute guest path of the working directory.
    pub cwd: String,
    /// The container's root, as its image's layers under its own writable
    /// layer, preopened at `/` (else a mount at `/` is the root).
    pub root: Option<std::sync::Arc<crate::vfs::Overlay>>,
    /// The container's process table, served at `/proc` from memory.
    pub proc: Option<super::proctable::ProcTable>,
    /// Host directories to preopen (volumes).
    pub mounts: Vec<Mount>,
    pub stdio: Stdio,
    /// Total linear memory, in bytes.
    pub memory_limit: Option<u64>,
    /// Where the guest's memory and CPU time are counted (shared by every
    /// guest of a container run).
    pub usage: std::sync::Arc<super::Usage>,
    /// Sockets: none, the host's, or a virtual namespace's.
    pub network: NetGrant,
    /// Where a wasi:http component is served, in its namespace.
    pub http_port: u16,
}

/// A host directory preopened at a guest path.
#[derive(Debug, Clone)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// The guest's standard streams.
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

/// Where the guest's stdin comes from.
#[derive(Default)]
pub enum Input {
    /// An empty stream, as `docker run` without `-i` gives.
    #[default]
    Null,
    /// The host process's own stdin (a foreground `run -i`).
    Inherit,
    Stream(Box<dyn AsyncRead + Send + Sync + Unpin>),
}

/// Where one of the guest's output streams goes.
#[derive(Default)]
pub enum Output {
    #[default]
    Null,
    /// The host process's own stream (a foreground `run`).
    Inherit,
    Stream(Box<dyn AsyncWrite + Send + Sync + Unpin>),
    /// A host-side sink that takes each write as it happens: nothing is
    /// buffered, so when the guest ends all its output has been delivered.
    Sink(Arc<dyn OutputSink>),
}

/// Receives a guest's output synchronously, write by write.
pub trait OutputSink: Send + Sync + 'static {
    fn write(&self, data: &[u8]);
}

/// Adapts a sink to both of wasmtime-wasi's stream flavours.
#[derive(Clone)]
struct SinkStream(Arc<dyn OutputSink>);

impl IsTerminal for SinkStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for SinkStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for SinkStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.0.write(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(OUTPUT_BUDGET)
    }
}

#[async_trait::async_trait]
impl Pollable for SinkStream {
    async fn ready(&mut self) {}
}

impl AsyncWrite for SinkStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.write(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Null => "Null",
            Self::Inherit => "Inherit",
            Self::Stream(_) => "Stream",
        })
    }
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Null => "Null",
            Self::Inherit => "Inherit",
            Self::Stream(_) => "Stream",
            Self::Sink(_) => "Sink",
        })
    }
}

/// How much a guest may have written but not yet flushed to a stream.
const OUTPUT_BUDGET: usize = 64 * 1024;

/// The grants shared by every instance of a spec: arguments, environment,
/// preopens and sockets.
fn base_builder(spec: &ProcessSpec) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = WasiCtxBuilder::new();
    b.args(&spec.argv);
    b.envs(&spec.env);
    b.initial_cwd(&spec.cwd);
    for m in &spec.mounts {
        let perms = if m.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        b.preopened_dir(&m.host, &m.guest, perms)
            .map_err(|e| SandboxError::Mount {
                host: m.host.clone(),
                source: std::io::Error::other(format!("{e:#}")),
            })?;
    }
    // Sockets: none at all, or every socket kind with wasmtime-wasi's own
    // address check open, because each address is already decided by
    // `NetGrant::route` in the socket shadow (net::wasi) before
    // wasmtime-wasi sees it; with `--network host` nothing is rewritten.
    let sockets = !matches!(spec.network.mode, NetMode::None);
    b.allow_tcp(sockets);
    b.allow_udp(sockets);
    b.allow_ip_name_lookup(sockets);
    if sockets {
        b.socket_addr_check(|_, _| Box::pin(async { true }));
    }
    Ok(b)
}

/// A builder for one request's instance of a served component: the
/// spec's grants, no stdin, and its output sinks shared by all instances.
pub(super) fn request_builder(spec: &ProcessSpec) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = base_builder(spec)?;
    if let Output::Sink(s) = &spec.stdio.stdout {
        b.stdout(SinkStream(s.clone()));
    }
    if let Output::Sink(s) = &spec.stdio.stderr {
        b.stderr(SinkStream(s.clone()));
    }
    Ok(b)
}

/// Turns a spec into a WASI context builder holding exactly its grants.
pub(super) fn wasi_builder(spec: ProcessSpec) -> Result<WasiCtxBuilder, SandboxError> {
    let mut b = base_builder(&spec)?;
    match spec.stdio.stdin {
        Input::Null => {}
        Input::Inherit => {
            b.inherit_stdin();
        }
        Input::Stream(s) => {
            b.stdin(AsyncStdinStream::new(s));
        }
    }
    match spec.stdio.stdout {
        Output::Null => {}
        Output::Inherit => {
            b.inherit_stdout();
        }
        Output::Stream(s) => {
            b.stdout(AsyncStdoutStream::new(OUTPUT_BUDGET, s));
        }
        Output::Sink(s) => {
            b.stdout(SinkStream(s));
        }
    }
    match spec.stdio.stderr {
        Output::Null => {}
        Output::Inherit => {
            b.inherit_stderr();
        }
        Output::Stream(s) => {
            b.stderr(AsyncStdoutStream::new(OUTPUT_BUDGET, s));
        }
        Output::Sink(s) => {
            b.stderr(SinkStream(s));
        }
    }
    Ok(b)
}
