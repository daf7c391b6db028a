//! Where the daemon's API lives and how to reach it: a Unix socket that
//! only its owner can open, or a named pipe on Windows. Addresses are
//! written as `DOCKER_HOST` takes them: `unix:///path/wrun.sock`,
//! `npipe:////./pipe/wrun`.

use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};

/// A connection to or from the API.
pub trait Conn: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Conn for T {}

/// An API address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    Unix(PathBuf),
    Pipe(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    #[error("invalid host {0:?}: use unix:///path/to/socket or npipe:////./pipe/name")]
    Invalid(String),
}

impl Address {
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(AddressError::Invalid(s.to_string()));
            }
            return Ok(Self::Unix(PathBuf::from(p)));
        }
        if let Some(p) = s.strip_prefix("npipe://") {
            if p.is_empty() {
                return Err(AddressError::Invalid(s.to_string()));
            }
            return Ok(Self::Pipe(p.replace('/', "\\")));
        }
        Err(AddressError::Invalid(s.to_string()))
    }

    /// The default for a state root: `<root>/wrun.sock`, or on Windows a
    /// pipe named after the root.
    pub fn default_for(root: &std::path::Path) -> Self {
        if cfg!(windows) {
            let digest = crate::image::Digest::of(root.to_string_lossy().as_bytes());
            Self::Pipe(format!(r"\\.\pipe\wrun-{}", &digest.hex()[..12]))
        } else {
            Self::Unix(root.join("wrun.sock"))
        }
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix://{}", p.display()),
            Self::Pipe(name) => write!(f, "npipe://{}", name.replace('\\', "/")),
        }
    }
}

/// Connects to an API address.
pub async fn connect(addr: &Address) -> std::io::Result<Box<dyn Conn>> {
    match addr {
        #[cfg(unix)]
        Address::Unix(p) => Ok(Box::new(tokio::net::UnixStream::connect(p).await?)),
        #[cfg(windows)]
        Address::Pipe(name) => {
            use tokio::net::windows::named_pipe::ClientOptions;
            Ok(Box::new(ClientOptions::new().open(name)?))
        }
        other => Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("{other} is not available on this platform"),
        )),
    }
}

/// The daemon's listening end.
pub struct Listener {
    #[cfg(unix)]
    unix: Option<(tokio::net::UnixListener, PathBuf)>,
    #[cfg(windows)]
    pipe: Option<(tokio::net::windows::named_pipe::NamedPipeServer, String)>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    /// Listens at `addr`. A Unix socket is made under a temporary name,
    /// restricted to its owner (0600), then renamed into place, so no one
    /// else can ever connect. A stale socket left by a crash is replaced;
    /// the caller holds the daemon lock, so it is no live daemon's.
    pub fn bind(addr: &Address) -> std::io::Result<Self> {
        match addr {
            #[cfg(unix)]
            Address::Unix(path) => {
                use std::os::unix::fs::PermissionsExt;
                let staging = path.with_extension(format!("sock.{}", std::process::id()));
                let _ = std::fs::remove_file(&staging);
                let listener = tokio::net::UnixListener::bind(&staging)?;
                std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))?;
                std::fs::rename(&staging, path)?;
                Ok(Self {
                    unix: Some((listener, path.clone())),
                })
            }
            #[cfg(windows)]
            Address::Pipe(name) => {
                use tokio::net::windows::named_pipe::ServerOptions;
                let server = ServerOptions::new()
                    .first_pipe_instance(true)
                    .reject_remote_clients(true)
                    .create(name)?;
                Ok(Self {
                    pipe: Some((server, name.clone())),
                })
            }
            other => Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                format!("{other} is not available on this platform"),
            )),
        }
    }

    /// The next client connection.
    pub async fn accept(&mut self) -> std::io::Result<Box<dyn Conn>> {
        #[cfg(unix)]
        if let Some((l, _)) = &self.unix {
            let (stream, _) = l.accept().await?;
            return Ok(Box::new(stream));
        }
        #[cfg(windows)]
        if let Some((server, name)) = &mut self.pipe {
            use tokio::net::windows::named_pipe::ServerOptions;
            server.connect().await?;
            let next = ServerOptions::new()
                .reject_remote_clients(true)
                .create(name.as_str())?;
            let connected = std::mem::replace(server, next);
            return Ok(Box::new(connected));
        }
        Err(std::io::Error::other("the listener is closed"))
    }

    /// Stops listening and removes the socket file.
    pub fn close(&mut self) {
        #[cfg(unix)]
        if let Some((_, path)) = self.unix.take() {
            let _ = std::fs::remove_file(path);
        }
        #[cfg(windows)]
        {
            self.pipe = None;
        }
    }
}
