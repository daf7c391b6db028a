//! Pod subresources: `log` (with follow, tail, timestamps, since, previous
//! and container), and the streaming ones (`exec`, `attach`,
//! `portforward`).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use hyper::Request;
use hyper::body::Incoming;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Api;
use super::objects::Target;
use crate::api::stream::StreamKind;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::logs::{self, LogQuery};
use crate::daemon::node::container_prefix;
use crate::kube::KubeError;

// The streaming subresources live beside this file; declared here so the
// cluster module's own list stays as it is.
#[path = "streams.rs"]
mod streams;

pub use streams::container_exec;

/// The container a request names, or the pod's only one.
fn pick_container(pod: &Value, asked: Option<&str>) -> Result<String, KubeError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |list: &str| -> Vec<String> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let apps = names("containers");
    let inits = names("initContainers");
    match asked.filter(|a| !a.is_empty()) {
        Some(c) if apps.iter().chain(&inits).any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(KubeError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if apps.len() == 1 => Ok(apps[0].clone()),
        None => Err(KubeError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            apps.join(" ")
        ))),
    }
}

/// The supervisor containers of one pod container, newest attempt last.
fn attempts(api: &Api, pod: &Value, container: &str) -> Result<Vec<(u32, String)>, KubeError> {
    let meta = &pod["metadata"];
    let prefix = container_prefix(
        container,
        meta["name"].as_str().unwrap_or_default(),
        meta["namespace"].as_str().unwrap_or_default(),
        meta["uid"].as_str().unwrap_or_default(),
    );
    let records = api.sup.db().list().map_err(KubeError::internal)?;
    let mut found: Vec<(u32, String)> = records
        .into_iter()
        .filter_map(|r| {
            let n = r.name.strip_prefix(&prefix)?.parse::<u32>().ok()?;
            Some((n, r.id))
        })
        .collect();
    found.sort();
    Ok(found)
}

/// A container's status in the pod, by name.
fn container_status<'a>(pod: &'a Value, container: &str) -> &'a Value {
    ["containerStatuses", "initContainerStatuses"]
        .iter()
        .filter_map(|l| pod["status"][*l].as_array())
        .flatten()
        .find(|s| s["name"] == container)
        .unwrap_or(&Value::Null)
}

/// The supervisor container whose log a request reads, as the kubelet
/// picks it: with `previous`, the last terminated run; otherwise the
/// current run, or the last terminated one while the next waits.
fn log_container(
    api: &Api,
    pod: &Value,
    container: &str,
    previous: bool,
) -> Result<Option<String>, KubeError> {
    let status = container_status(pod, container);
    let id_of = |v: &Value| {
        v["containerID"]
            .as_str()
            .and_then(|i| i.strip_prefix("wrun://"))
            .map(str::to_string)
    };
    let last = id_of(&status["lastState"]["terminated"]);
    let picked = if previous || status["state"]["waiting"].is_object() {
        last
    } else {
        id_of(&status["state"]["running"])
            .or_else(|| id_of(&status["state"]["terminated"]))
            .or_else(|| id_of(status))
    };
    if picked.is_some() || previous {
        return Ok(picked);
    }
    // No status yet names one: the newest attempt there is.
    Ok(attempts(api, pod, container)?.pop().map(|(_, id)| id))
}

pub async fn log(api: &Arc<Api>, t: &Target, q: &Query) -> Result<Resp, KubeError> {
    let name = t.name.as_deref().unwrap_or_default();
    let pod = api.store.get(t.res, t.namespace.as_deref(), name)?;
    let container = pick_container(&pod, q.get("container"))?;
    let previous = q.flag("previous");
    let Some(id) = log_container(api, &pod, &container, previous)? else {
        let status = container_status(&pod, &container);
        let why = if previous {
            format!("previous terminated container \"{container}\" in pod \"{name}\" not found")
        } else {
            let reason = status["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating");
            format!("container \"{container}\" in pod \"{name}\" is waiting to start: {reason}")
        };
        return Err(KubeError::bad_request(why));
    };
    let (_, entry) = api
        .sup
        .find(&id)
        .map_err(|e| KubeError::internal(e.to_string()))?;
    let now = Utc::now();
    let since = match (q.get("sinceSeconds"), q.get("sinceTime")) {
        (Some(s), _) => {
            let secs: i64 = s.parse().map_err(|_| {
                KubeError::bad_request(format!("sinceSeconds {s:?} is not a number"))
            })?;
            Some(now - chrono::Duration::seconds(secs))
        }
        (None, Some(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    KubeError::bad_request(format!("sinceTime {t:?} is not an RFC 3339 time"))
                })?
                .with_timezone(&Utc),
        ),
        (None, None) => None,
    };
    let tail = match q.get("tailLines") {
        None | Some("") => None,
        Some(n) => {
            let n: i64 = n
                .parse()
                .map_err(|_| KubeError::bad_request(format!("tailLines {n:?} is not a number")))?;
            (n >= 0).then_some(n as usize)
        }
    };
    let query = LogQuery {
        stdout: true,
        stderr: true,
        tail,
        since,
        until: None,
    };
    let timestamps = q.flag("timestamps");
    let limit_bytes: Option<usize> = q.get("limitBytes").and_then(|l| l.parse().ok());
    let follow = q.flag("follow") && !previous;
    let (len, mut live_rx) = entry.io.subscribe_at();
    let following = follow && entry.live().is_some();
    let path = entry.io.log_path().to_path_buf();
    let entries = logs::read(&path, following.then_some(len), &query)
        .map_err(|e| KubeError::internal(format!("{}: {e}", path.display())))?;
    let line = move |data: &[u8], time: DateTime<Utc>| -> Bytes {
        let mut out = Vec::with_capacity(data.len() + 32);
        if timestamps {
            out.extend_from_slice(time.to_rfc3339_opts(SecondsFormat::Nanos, true).as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(data);
        Bytes::from(out)
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let mut sent = 0usize;
        for e in entries {
            let chunk = line(&e.data, e.time);
            sent += chunk.len();
            if tx.send(chunk).await.is_err() || limit_bytes.is_some_and(|l| sent >= l) {
                return;
            }
        }
        if !following {
            return;
        }
        while let Some((kind, data)) = live_rx.recv().await {
            if !matches!(kind, StreamKind::Stdout | StreamKind::Stderr) {
                continue;
            }
            let chunk = line(&data, Utc::now());
            sent += chunk.len();
            if tx.send(chunk).await.is_err() || limit_bytes.is_some_and(|l| sent >= l) {
                return;
            }
        }
    });
    Ok(http::streamed("text/plain", rx))
}

/// `exec`, `attach` and `portforward`: upgraded to WebSocket or SPDY and
/// served by `streams.rs`.
pub async fn stream(
    api: &Arc<Api>,
    t: &Target,
    sub: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    streams::serve(api, t, sub, q, req).await
}
