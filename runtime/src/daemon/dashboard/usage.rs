//! The dashboard's live usage: each pod's and each container's memory
//! (its guests' linear memory now) and CPU time (cumulative; the page
//! turns it into a rate), sent over a WebSocket once a second. The same figures serve
//! `metrics.k8s.io` (`kubectl top`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;
use serde_json::json;
use tokio::sync::mpsc;

use crate::daemon::http::Resp;
use crate::daemon::node::LABEL_POD_UID;
use crate::daemon::supervisor::Supervisor;
use crate::daemon::websocket;

const EVERY: Duration = Duration::from_secs(1);

/// Memory (bytes) and CPU time (ns) of one running container, or of a
/// pod's running containers together.
type Usage = (u64, u64);

/// Every running container's usage by ID, and each pod's by uid.
fn measure(sup: &Supervisor) -> (BTreeMap<String, Usage>, BTreeMap<String, Usage>) {
    let mut pods: BTreeMap<String, Usage> = BTreeMap::new();
    let mut containers = BTreeMap::new();
    let records = sup.db().list().unwrap_or_default();
    for rec in records {
        let Some(live) = sup.live_of(&rec.id) else {
            continue;
        };
        let memory = live.usage.memory();
        let cpu = u64::try_from(live.usage.cpu().as_nanos()).unwrap_or(u64::MAX);
        if let Some(uid) = rec.spec.labels.get(LABEL_POD_UID) {
            let e = pods.entry(uid.clone()).or_default();
            e.0 = e.0.saturating_add(memory);
            e.1 = e.1.saturating_add(cpu);
        }
        containers.insert(rec.id, (memory, cpu));
    }
    (containers, pods)
}

fn as_json(m: BTreeMap<String, Usage>) -> serde_json::Map<String, serde_json::Value> {
    m.into_iter()
        .map(|(k, (memory, cpu))| (k, json!({"memory": memory, "cpuNs": cpu})))
        .collect()
}

/// Streams the usage of each pod and each container to a WebSocket client
/// until it goes.
pub fn serve(sup: Arc<Supervisor>, mut req: Request<Incoming>) -> Result<Resp, String> {
    let Some(hs) = websocket::handshake(&req, &[])? else {
        return Err("the usage figures are served over a WebSocket only".into());
    };
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        loop {
            let s = sup.clone();
            let Ok((containers, pods)) = tokio::task::spawn_blocking(move || measure(&s)).await
            else {
                return;
            };
            let msg = json!({
                "at": chrono::Utc::now().timestamp_millis(),
                "pods": as_json(pods),
                "containers": as_json(containers),
            });
            if tx.send(Bytes::from(msg.to_string())).await.is_err() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(EVERY) => {}
                () = tx.closed() => return,
            }
        }
    });
    Ok(websocket::send_lines(&mut req, hs, rx))
}
