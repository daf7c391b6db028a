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
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Api;
use super::objects::{Filter, Target, table_version};
use crate::cluster::store::{EventType, WatchEnd};
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::websocket;
use crate::kube::{KubeError, Resource, table};

/// How long a watch lasts when the client names no timeout (the API
/// server's default minimum request timeout).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// What a watch over a WebSocket may ask for, as the API server serves
/// it: binary messages, base64 text, or (none) text.
const WATCH_PROTOCOLS: &[&str] = &["base64.binary.k8s.io", "binary.k8s.io"];

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
    let websocket = websocket::handshake(&req, WATCH_PROTOCOLS).map_err(KubeError::bad_request)?;
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
        Some(hs) => Ok(websocket::send_lines(&mut req, hs, rx)),
        None => Ok(http::streamed("application/json", rx)),
    }
}
