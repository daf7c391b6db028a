//! The dashboard's traffic view: the service proxy's counters per
//! endpoint (connections made and open, bytes each way), sent over a
//! WebSocket as one JSON message whenever they change. The page maps each
//! endpoint's IP to its pod, so it shows which pod answered which
//! connection; Kubernetes' own proxy keeps no such counts.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::daemon::http::Resp;
use crate::daemon::websocket;
use crate::net::proxy::{ServiceProxy, ServiceStats};

/// How often the counters are read; a change is sent at most this often.
const EVERY: Duration = Duration::from_millis(200);

fn to_json(stats: &[ServiceStats]) -> Value {
    json!(
        stats
            .iter()
            .map(|s| json!({
                "namespace": s.namespace,
                "name": s.name,
                "ports": s.ports.iter().map(|p| json!({
                    "name": p.name,
                    "port": p.port,
                    "protocol": p.proto.name().to_ascii_uppercase(),
                    "endpoints": p.endpoints.iter().map(|e| json!({
                        "ip": e.ip.to_string(),
                        "port": e.port,
                        "ready": e.ready,
                        "connections": e.connections,
                        "active": e.active,
                        "bytesIn": e.bytes_in,
                        "bytesOut": e.bytes_out,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()
    )
}

/// Streams the counters to a WebSocket client until it goes.
pub fn serve(proxy: Arc<ServiceProxy>, mut req: Request<Incoming>) -> Result<Resp, String> {
    let Some(hs) = websocket::handshake(&req, &[])? else {
        return Err("the traffic counters are served over a WebSocket only".into());
    };
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut last = Value::Null;
        loop {
            let now = to_json(&proxy.stats());
            if now != last {
                let line = Bytes::from(now.to_string());
                if tx.send(line).await.is_err() {
                    return;
                }
                last = now;
            }
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = tx.closed() => return,
            }
        }
    });
    Ok(websocket::send_lines(&mut req, hs, rx))
}
