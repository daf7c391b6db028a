//! The dashboard's live usage: each pod's memory (its guests' linear
//! memory now) and CPU time (cumulative; the page turns it into a rate),
//! sent over a WebSocket once a second. The same figures serve
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

/// Memory (bytes) and CPU time (ns) per pod uid, summed over the pod's
/// running containers.
fn per_pod(sup: &Supervisor) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let records = sup.db().list().unwrap_or_default();
    for rec in records {
        let Some(uid) = rec.spec.labels.get(LABEL_POD_UID) else {
            continue;
        };
        let Some(live) = sup.find(&rec.id).ok().and_then(|(_, e)| e.live()) else {
            continue;
        };
        let e = out.entry(uid.clone()).or_default();
        e.0 = e.0.saturating_add(live.usage.memory());
        let cpu = u64::try_from(live.usage.cpu().as_nanos()).unwrap_or(u64::MAX);
        e.1 = e.1.saturating_add(cpu);
    }
    out
}

/// Streams each pod's usage to a WebSocket client until it goes.
pub fn serve(sup: Arc<Supervisor>, mut req: Request<Incoming>) -> Result<Resp, String> {
    let Some(hs) = websocket::handshake(&req, &[])? else {
        return Err("the usage figures are served over a WebSocket only".into());
    };
    let (tx, rx) = mpsc::channel::<Bytes>(2);
    tokio::spawn(async move {
        loop {
            let s = sup.clone();
            let Ok(pods) = tokio::task::spawn_blocking(move || per_pod(&s)).await else {
                return;
            };
            let pods: serde_json::Map<String, serde_json::Value> = pods
                .into_iter()
                .map(|(uid, (memory, cpu))| (uid, json!({"memory": memory, "cpuNs": cpu})))
                .collect();
            let msg = json!({"at": chrono::Utc::now().timestamp_millis(), "pods": pods});
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
