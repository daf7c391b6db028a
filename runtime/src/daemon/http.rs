//! HTTP plumbing for the API: bodies, JSON answers, Docker's error shape,
//! query strings, streamed answers and hijacked (upgraded) connections.

use bytes::Bytes;
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use super::error::DaemonError;
use crate::api::types::ErrorBody;

pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;
pub type Resp = Response<Body>;

/// The most a JSON request body may hold.
const MAX_JSON_BODY: usize = 4 << 20;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = Response::new(full(body));
            *r.status_mut() = status;
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => error(&DaemonError::internal(e)),
    }
}

/// Docker's error answer: the status and `{"message": ...}`.
pub fn error(e: &DaemonError) -> Resp {
    if matches!(e, DaemonError::NotModified) {
        return empty(StatusCode::NOT_MODIFIED);
    }
    let exit_code = match e {
        DaemonError::Start { exit_code, .. } => Some(*exit_code),
        _ => None,
    };
    json(
        e.status(),
        &ErrorBody {
            message: e.to_string(),
            exit_code,
        },
    )
}

/// A body fed chunk by chunk from a channel; it ends when the sender is
/// dropped. Headers go out at once, so a client sees the answer begin
/// (e.g. `wait`) before the last chunk exists.
pub fn channel_body(rx: mpsc::Receiver<Bytes>) -> Body {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::io::Error>(Frame::data(b)), rx))
    });
    http_body_util::BodyExt::boxed_unsync(StreamBody::new(stream.boxed()))
}

/// A streamed answer with a content type.
pub fn streamed(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Resp {
    let mut r = Response::new(channel_body(rx));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Reads and parses a JSON body. An empty body is `T::default()`, as
/// Docker treats it.
pub async fn read_json<T: DeserializeOwned + Default>(
    req: Request<Incoming>,
    what: &str,
) -> Result<T, DaemonError> {
    let bytes = read_body(req, MAX_JSON_BODY).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| DaemonError::bad_request(format!("invalid {what} body: {e}")))
}

/// Reads a whole body, refusing one larger than `limit`.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, DaemonError> {
    let limited = http_body_util::Limited::new(req.into_body(), limit);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(DaemonError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

/// A parsed query string.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(q: Option<&str>) -> Self {
        Self(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `key` (`t=a&t=b`).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn str(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Docker's booleans: `1`, `true`, `True` (anything but `0`/`false`/empty).
    pub fn flag(&self, key: &str) -> bool {
        !matches!(self.get(key), None | Some("" | "0" | "false" | "False"))
    }

    pub fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, DaemonError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| DaemonError::bad_request(format!("invalid value for {key}: {v:?}"))),
        }
    }
}

/// Answers an upgrade request with Docker's `101 UPGRADED` and returns the
/// pending upgraded connection.
pub fn hijack(
    req: &mut Request<Incoming>,
    content_type: &'static str,
) -> (Resp, hyper::upgrade::OnUpgrade) {
    let on_upgrade = hyper::upgrade::on(&mut *req);
    (upgrade_response(content_type), on_upgrade)
}

/// The `101` answer that turns the connection into a raw stream.
pub fn upgrade_response(content_type: &'static str) -> Resp {
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    r
}

/// Decodes a path segment (`%2F` and friends).
pub fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
