//! Watches: a stream of `{"type": ..., "object": ...}` lines from a
//! resourceVersion on, filtered by selectors, as JSON objects or one-row
//! Tables, with bookmarks when asked for and an end after
//! `timeoutSeconds`. Over a chunked answer, as kubectl reads them, or over
//! a WebSocket (one event a message), as the API server also serves them
//! and as browsers need them: a browser keeps six HTTP/1.1 connections
//! per host, which a page's watches would use up.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Api;
use super::objects::{Filter, Target, table_version};
use crate::cluster::store::{EventType, WatchEnd};
use crate::daemon::http::{self, Query, Resp};
use crate::kube::{KubeError, Resource, table};

/// How long a watch lasts when the client names no timeout (the API
/// server's default minimum request timeout).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

struct Encoder {
    res: &'static Resource,
    table: Option<&'static str>,
    /// Column definitions go with the first Table only, as the API
    /// server sends them.
    headers_sent: bool,
}

impl Encoder {
    fn line(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = match self.table {
            Some(v) => {
                let first = !self.headers_sent;
                self.headers_sent = true;
                table::watch_table(
                    self.res,
                    obj,
                    table::IncludeObject::Metadata,
                    chrono::Utc::now(),
                    v,
                    first,
                )
            }
            None => obj.clone(),
        };
        let mut line =
            serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn error(&self, status: &Value) -> Bytes {
        let mut line =
            serde_json::to_vec(&json!({"type": "ERROR", "object": status})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object =
            json!({"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": meta});
        let mut line =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).unwrap_or_default();
        line.push(b'\n');
        Bytes::from(line)
    }
}

pub fn serve(
    api: &Arc<Api>,
    t: &Target,
    q: &Query,
    accept: &str,
    mut req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let websocket = websocket_handshake(&req)?;
    let filter = Filter::parse(t.res, q)?;
    let name = t.name.clone();
    let matches = move |o: &Value| {
        filter.matches(o) && name.as_deref().is_none_or(|n| o["metadata"]["name"] == n)
    };
    let timeout = match q.get("timeoutSeconds") {
        None | Some("") => DEFAULT_TIMEOUT,
        Some(s) => Duration::from_secs(s.parse().map_err(|_| {
            KubeError::bad_request(format!("timeoutSeconds {s:?} is not a number"))
        })?),
    };
    let bookmarks = q.flag("allowWatchBookmarks");
    let send_initial = q.get("sendInitialEvents") == Some("true");
    let namespace = t.namespace.as_deref();
    let from =
        match q.get("resourceVersion") {
            None | Some("") | Some("0") => None,
            Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
                KubeError::bad_request(format!("resourceVersion {rv:?} is not valid"))
            })?),
        };
    // Without a resourceVersion (or with sendInitialEvents), the watch
    // starts with every matching object as ADDED, then follows on from
    // the list's version.
    let (initial, mut watch) = if from.is_none() || send_initial {
        let (items, rv) = api.store.list(t.res, namespace)?;
        let items: Vec<Value> = items.into_iter().filter(|o| matches(o)).collect();
        (
            Some((items, rv)),
            api.store.watch(t.res, namespace, Some(rv))?,
        )
    } else {
        (None, api.store.watch(t.res, namespace, from)?)
    };
    let mut enc = Encoder {
        res: t.res,
        table: table_version(accept),
        headers_sent: false,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut last_rv = from.unwrap_or_else(|| api.store.rv());
    tokio::spawn(async move {
        if let Some((items, rv)) = initial {
            last_rv = rv;
            for o in &items {
                if tx.send(enc.line("ADDED", o)).await.is_err() {
                    return;
                }
            }
            if send_initial && tx.send(enc.bookmark(rv, true)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let event = tokio::select! {
                e = watch.next() => e,
                () = &mut deadline => return,
                () = tokio::time::sleep(BOOKMARK_EVERY), if bookmarks => {
                    if tx.send(enc.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                    continue;
                }
                () = tx.closed() => return,
            };
            let event = match event {
                Ok(e) => e,
                // As the API server ends a watch whose version was
                // compacted away: an ERROR event with a 410 Status, after
                // which clients list again.
                Err(WatchEnd::Gone(why)) => {
                    let status = KubeError::Gone(why).to_status();
                    let _ = tx.send(enc.error(&status)).await;
                    return;
                }
                Err(WatchEnd::Closed) => return,
            };
            last_rv = event.rv;
            let now = matches(&event.object);
            let before = event.prev.as_deref().map(&matches);
            let kind = match (event.kind, before, now) {
                (EventType::Deleted, _, true) => "DELETED",
                (EventType::Deleted, _, false) => continue,
                (EventType::Added, _, true) => "ADDED",
                (EventType::Modified, Some(false), true) => "ADDED",
                (EventType::Modified, Some(true) | None, true) => "MODIFIED",
                (EventType::Modified, Some(true), false) => "DELETED",
                _ => continue,
            };
            if tx.send(enc.line(kind, &event.object)).await.is_err() {
                return;
            }
        }
    });
    match websocket {
        Some(hs) => Ok(over_websocket(&mut req, hs, rx)),
        None => Ok(http::streamed("application/json", rx)),
    }
}

/// What a WebSocket watch asked for.
struct Handshake {
    accept: String,
    /// `binary.k8s.io` (binary messages), `base64.binary.k8s.io` (base64
    /// text), or none (text messages, what a browser's plain WebSocket
    /// reads most simply).
    protocol: Option<&'static str>,
}

/// The request's WebSocket handshake, when it asks to upgrade.
fn websocket_handshake(req: &Request<Incoming>) -> Result<Option<Handshake>, KubeError> {
    let h = req.headers();
    let wants = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !wants {
        return Ok(None);
    }
    let key = h
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| KubeError::bad_request("missing Sec-WebSocket-Key"))?;
    if h.get("sec-websocket-version").and_then(|v| v.to_str().ok()) != Some("13") {
        return Err(KubeError::bad_request(
            "unsupported WebSocket version: use 13",
        ));
    }
    let offered: Vec<&str> = h
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let protocol = ["base64.binary.k8s.io", "binary.k8s.io"]
        .into_iter()
        .find(|p| offered.contains(p));
    if protocol.is_none() && !offered.is_empty() {
        return Err(KubeError::bad_request(format!(
            "unable to upgrade: the client offers {offered:?}; a watch speaks binary.k8s.io, base64.binary.k8s.io or no subprotocol"
        )));
    }
    Ok(Some(Handshake {
        accept: derive_accept_key(key.as_bytes()),
        protocol,
    }))
}

/// Answers 101 and sends each line of `rx` as one message, until either
/// side ends.
fn over_websocket(
    req: &mut Request<Incoming>,
    hs: Handshake,
    mut rx: mpsc::Receiver<Bytes>,
) -> Resp {
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let mut resp = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let headers = resp.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&hs.accept) {
        headers.insert("sec-websocket-accept", v);
    }
    if let Some(p) = hs.protocol {
        headers.insert("sec-websocket-protocol", HeaderValue::from_static(p));
    }
    let protocol = hs.protocol;
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "watch: the WebSocket upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await;
        let (mut sink, mut incoming) = ws.split();
        loop {
            tokio::select! {
                line = rx.recv() => {
                    let Some(mut line) = line else { break };
                    if line.last() == Some(&b'\n') {
                        line.truncate(line.len() - 1);
                    }
                    let msg = match protocol {
                        Some("binary.k8s.io") => Message::Binary(line),
                        Some(_) => {
                            use base64::Engine as _;
                            Message::text(base64::engine::general_purpose::STANDARD.encode(&line))
                        }
                        None => match String::from_utf8(line.to_vec()) {
                            Ok(text) => Message::text(text),
                            Err(_) => Message::Binary(line),
                        },
                    };
                    if sink.send(msg).await.is_err() {
                        return;
                    }
                }
                // The client's messages are not read for content; a close
                // (or a broken connection) ends the watch.
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = sink.close().await;
    });
    resp
}
