//! Serving a stream of messages over a WebSocket: the handshake on an
//! HTTP/1.1 upgrade, then each line from a channel as one message, until
//! either side ends. Watches of the Kubernetes API and the dashboard's
//! live counters use it. The message framing follows the subprotocol, with
//! the names the Kubernetes API server gives them: `binary.k8s.io` sends
//! binary messages, `base64.binary.k8s.io` base64 text, and no
//! subprotocol plain text (what a browser's WebSocket reads most simply).

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::http::{self, Resp};

/// A client's accepted WebSocket handshake.
#[derive(Debug)]
pub struct Handshake {
    accept: String,
    /// The subprotocol picked, if the client offered one that is served.
    pub protocol: Option<&'static str>,
}

/// The request's WebSocket handshake when it asks to upgrade (`None` for
/// a plain request). `served` are the subprotocols that may be picked;
/// offering only others is an error, offering none picks none.
pub fn handshake(
    req: &Request<Incoming>,
    served: &[&'static str],
) -> Result<Option<Handshake>, String> {
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
        .ok_or("missing Sec-WebSocket-Key")?;
    if h.get("sec-websocket-version").and_then(|v| v.to_str().ok()) != Some("13") {
        return Err("unsupported WebSocket version: use 13".into());
    }
    let offered: Vec<&str> = h
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let protocol = served.iter().copied().find(|p| offered.contains(p));
    if protocol.is_none() && !offered.is_empty() {
        return Err(format!(
            "unable to upgrade: the client offers {offered:?}; this endpoint speaks {served:?} or no subprotocol"
        ));
    }
    Ok(Some(Handshake {
        accept: derive_accept_key(key.as_bytes()),
        protocol,
    }))
}

/// Answers 101 and sends each line of `rx` (without its newline) as one
/// message, until the channel ends or the client closes.
pub fn send_lines(
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
                tracing::debug!(error = %e, "the WebSocket upgrade failed");
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
                    if sink.send(frame(protocol, line)).await.is_err() {
                        return;
                    }
                }
                // The client's messages are not read for content; a close
                // (or a broken connection) ends the stream.
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
            }
        }
        let _ = sink.close().await;
    });
    resp
}

fn frame(protocol: Option<&str>, line: Bytes) -> Message {
    match protocol {
        Some("binary.k8s.io") => Message::Binary(line),
        Some(_) => {
            use base64::Engine as _;
            Message::text(base64::engine::general_purpose::STANDARD.encode(&line))
        }
        None => match String::from_utf8(line.to_vec()) {
            Ok(text) => Message::text(text),
            Err(_) => Message::Binary(line),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_subprotocol() {
        let line = Bytes::from_static(b"{\"type\":\"ADDED\"}");
        assert_eq!(
            frame(None, line.clone()),
            Message::text("{\"type\":\"ADDED\"}")
        );
        assert_eq!(
            frame(Some("binary.k8s.io"), line.clone()),
            Message::Binary(line.clone())
        );
        assert_eq!(
            frame(Some("base64.binary.k8s.io"), line),
            Message::text("eyJ0eXBlIjoiQURERUQifQ==")
        );
    }
}
