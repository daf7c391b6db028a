//! The one place where a guest is granted capabilities.
//!
//! **Architecture Invariant:** a guest gets exactly what its [`ProcessSpec`]
//! lists and nothing from the host by default: no host `/`, no host
//! environment or arguments, no network, and stdio only as given.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use wasmtime_wasi::cli::{AsyncStdinStream, AsyncStdoutStream};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::SandboxError;

/// What one guest instance may see and do.
#[derive(Debug, Default)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Absolute guest path of the working directory.
    pub cwd: String,
    /// Directories to preopen; the container's rootfs is the one at `/`.
    pub mounts: Vec<Mount>,
    pub stdio: Stdio,
    /// Total linear memory, in bytes.
    pub memory_limit: Option<u64>,
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
        })
    }
}

/// How much a guest may have written but not yet flushed to a stream.
const OUTPUT_BUDGET: usize = 64 * 1024;

/// Turns a spec into a WASI context builder holding exactly its grants.
pub(super) fn wasi_builder(spec: ProcessSpec) -> Result<WasiCtxBuilder, SandboxError> {
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
    // Networking is granted by the network layer when it lands; until then
    // a guest has no sockets at all.
    b.allow_tcp(false);
    b.allow_udp(false);
    b.allow_ip_name_lookup(false);
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
    }
    match spec.stdio.stderr {
        Output::Null => {}
        Output::Inherit => {
            b.inherit_stderr();
        }
        Output::Stream(s) => {
            b.stderr(AsyncStdoutStream::new(OUTPUT_BUDGET, s));
        }
    }
    Ok(b)
}
