//! The Docker Engine API client that the `wrun` CLI uses. One HTTP/1.1
//! connection per request over the daemon's socket; hijacked connections
//! for `attach` and `exec`.

mod autostart;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, HeaderValue, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use autostart::{StartPolicy, connect_or_start};

use crate::api::types::ErrorBody;
use crate::transport::{self, Address};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the wrun daemon at {address}: {source} (is it running? `wrun daemon` starts it)"
    )]
    Connect {
        address: String,
        #[source]
        source: std::io::Error,
    },
    /// The daemon answered with an error: Docker's `{"message": ...}`.
    #[error("{message}")]
    Api {
        status: StatusCode,
        message: String,
        /// For a program that could not start: the exit code a shell reports.
        exit_code: Option<i32>,
    },
    #[error("talking to the wrun daemon: {0}")]
    Http(String),
    #[error("the wrun daemon sent a malformed answer: {0}")]
    Decode(String),
    #[error("cannot start the wrun daemon: {0}")]
    Start(String),
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    address: Address,
}

/// A hijacked connection: raw bytes both ways.
pub type Hijacked = TokioIo<hyper::upgrade::Upgraded>;

impl Client {
    pub fn new(address: Address) -> Self {
        Self { address }
    }

    pub fn address(&self) -> &Address {
        &self.address
    }

    async fn send(
        &self,
        req: Request<Full<Bytes>>,
        upgrade: bool,
    ) -> Result<Response<Incoming>, ClientError> {
        let conn =
            transport::connect(&self.address)
                .await
                .map_err(|source| ClientError::Connect {
                    address: self.address.to_string(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(conn))
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        if upgrade {
            tokio::spawn(async move {
                let _ = connection.with_upgrades().await;
            });
        } else {
            tokio::spawn(async move {
                let _ = connection.await;
            });
        }
        sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    fn build(
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v{}{}", crate::api::API_VERSION, path))
            .header(HOST, "wrun");
        if body.is_some() {
            req = req.header(CONTENT_TYPE, "application/json");
        }
        req.body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// Sends a request; an error status becomes [`ClientError::Api`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let resp = self.send(Self::build(method, path, body)?, false).await?;
        check(resp).await
    }

    /// A request answered with JSON.
    pub async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = self.request(method, path, body).await?;
        let bytes = read_all(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A request whose answer has no body worth reading; returns its
    /// status (e.g. 304 for a start of a running container).
    pub async fn call(&self, method: Method, path: &str) -> Result<StatusCode, ClientError> {
        let resp = self.request(method, path, None).await?;
        let status = resp.status();
        read_all(resp).await?;
        Ok(status)
    }

    /// Opens a hijacked connection (`attach`, `exec start`).
    pub async fn hijack(&self, path: &str, body: Option<Vec<u8>>) -> Result<Hijacked, ClientError> {
        let mut req = Self::build(Method::POST, path, body)?;
        req.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        req.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("tcp"));
        let resp = self.send(req, true).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            check(resp).await?;
            return Err(ClientError::Http(
                "the daemon did not upgrade the connection".into(),
            ));
        }
        let upgraded = hyper::upgrade::on(resp)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(TokioIo::new(upgraded))
    }

    /// Whether the daemon answers.
    pub async fn ping(&self) -> bool {
        self.call(Method::GET, "/_ping").await.is_ok()
    }
}

/// Turns an error status into [`ClientError::Api`] with Docker's message.
async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
    let status = resp.status();
    if status.is_success() || status == StatusCode::NOT_MODIFIED || status.is_informational() {
        return Ok(resp);
    }
    let bytes = read_all(resp).await?;
    let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| ErrorBody {
        message: String::from_utf8_lossy(&bytes).trim().to_string(),
        exit_code: None,
    });
    Err(ClientError::Api {
        status,
        message: body.message,
        exit_code: body.exit_code,
    })
}

/// Reads a whole answer body.
pub async fn read_all(resp: Response<Incoming>) -> Result<Bytes, ClientError> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Http(e.to_string()))
}

/// Reads an answer body chunk by chunk.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>, ClientError> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}
