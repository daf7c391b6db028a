//! `GET /containers/{id}/stats`: a running container's memory (its guests'
//! linear memory) and CPU time, as Docker's cgroup statistics, once or
//! each second.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use tokio::sync::mpsc;

use super::containers::ZERO_TIME;
use crate::api::types::{ContainerStats, CpuStats, CpuUsage, MemoryStats, PidsStats};
use crate::container::ContainerRecord;
use crate::daemon::error::DaemonError;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::supervisor::{Entry, Supervisor};

/// How often a stream sends a sample, as Docker does.
const PERIOD: Duration = Duration::from_secs(1);

/// The host's CPU time in nanoseconds, as `system_cpu_usage` counts it:
/// wall time since the daemon started times the CPUs, so that a guest busy
/// on one core shows as 100%, as in Docker.
fn system_cpu_ns() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let wall = START.get_or_init(Instant::now).elapsed().as_nanos() as u64;
    wall.saturating_mul(crate::host::cpus() as u64)
}

fn sample(rec: &ContainerRecord, entry: &Entry) -> ContainerStats {
    let base = ContainerStats {
        name: format!("/{}", rec.name),
        id: rec.id.clone(),
        read: ZERO_TIME.into(),
        preread: ZERO_TIME.into(),
        ..Default::default()
    };
    let Some(live) = entry.live() else {
        // Docker's answer for a container that is not running: zeros.
        return base;
    };
    let limit = rec
        .spec
        .memory
        .or_else(crate::host::memory_bytes)
        .unwrap_or(0);
    let cpu = live.usage.cpu().as_nanos() as u64;
    ContainerStats {
        read: Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
        pids_stats: PidsStats {
            current: live.procs.list().len() as u64,
            limit: 0,
        },
        cpu_stats: CpuStats {
            cpu_usage: CpuUsage {
                total_usage: cpu,
                usage_in_kernelmode: 0,
                usage_in_usermode: cpu,
            },
            system_cpu_usage: system_cpu_ns(),
            online_cpus: crate::host::cpus() as u32,
            ..Default::default()
        },
        memory_stats: MemoryStats {
            usage: live.usage.memory(),
            limit,
            stats: Default::default(),
        },
        ..base
    }
}

/// A sample with the one before it as `precpu_stats`, as Docker sends.
fn with_previous(mut now: ContainerStats, before: &ContainerStats) -> ContainerStats {
    now.precpu_stats = before.cpu_stats.clone();
    now.preread = before.read.clone();
    now
}

fn line(s: &ContainerStats) -> Bytes {
    let mut out = serde_json::to_vec(s).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

pub async fn stats(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let (rec, entry) = sup.find(id)?;
    let stream = q
        .get("stream")
        .is_none_or(|v| !matches!(v, "0" | "false" | "False"));
    let one_shot = q.flag("one-shot");
    if stream && one_shot {
        return Err(DaemonError::bad_request(
            "stats: one-shot is only for stream=false",
        ));
    }
    let first = sample(&rec, &entry);
    if !stream {
        // As Docker: a second sample a moment later fills `precpu_stats`,
        // so clients can compute a CPU percentage from one answer.
        let body = if one_shot || entry.live().is_none() {
            first
        } else {
            tokio::time::sleep(PERIOD).await;
            with_previous(sample(&rec, &entry), &first)
        };
        return Ok(http::json(hyper::StatusCode::OK, &body));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut before = first.clone();
        if tx.send(line(&first)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tokio::time::sleep(PERIOD) => {}
                _ = tx.closed() => return,
            }
            if entry.status().removed {
                return;
            }
            let now = with_previous(sample(&rec, &entry), &before);
            if tx.send(line(&now)).await.is_err() {
                return;
            }
            before = now;
        }
    });
    Ok(http::streamed("application/json", rx))
}
