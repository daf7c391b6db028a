//! `GET /events`: the daemon's events as newline-delimited JSON, past ones
//! from `since`, then live ones until `until` (or until the client goes).

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc};

use crate::api::filters::Filters;
use crate::api::types::{EventActor, EventMessage};
use crate::daemon::error::DaemonError;
use crate::daemon::events::Event;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::supervisor::Supervisor;

/// The filters `GET /events` takes.
const EVENT_FILTERS: &[&str] = &[
    "container",
    "daemon",
    "event",
    "image",
    "label",
    "network",
    "scope",
    "type",
    "volume",
];

/// Docker's event times: Unix seconds with an optional fraction
/// (`1700000000.123456789`), as the docker CLI sends them, or RFC 3339.
fn parse_time(key: &str, raw: &str) -> Result<DateTime<Utc>, DaemonError> {
    let bad = || {
        DaemonError::bad_request(format!(
            "invalid {key} {raw:?}: expected Unix seconds (with an optional fraction) or an RFC 3339 time"
        ))
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    let (secs, frac) = raw.split_once('.').unwrap_or((raw, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else if frac.len() <= 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    DateTime::from_timestamp(secs, nanos).ok_or_else(bad)
}

fn time_param(q: &Query, key: &str) -> Result<Option<DateTime<Utc>>, DaemonError> {
    match q.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(raw) => parse_time(key, raw).map(Some),
    }
}

/// True if `value` names the object: its ID or name, or the start of one.
fn fuzzy(value: &str, ev: &Event) -> bool {
    ev.id.starts_with(value)
        || ev
            .attributes
            .get("name")
            .is_some_and(|n| n.starts_with(value))
}

fn strip_tag(name: &str) -> &str {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    }
}

/// Whether `ev` passes the filters, as Docker's event filter decides.
fn included(f: &Filters, ev: &Event) -> bool {
    let image_name = ev
        .attributes
        .get(if ev.kind == "image" { "name" } else { "image" })
        .map(String::as_str)
        .unwrap_or("");
    f.any("type", |v| ev.kind == v)
        && f.any("event", |v| {
            ev.action == v || ev.action.split(':').next().is_some_and(|a| a.trim() == v)
        })
        && f.any("scope", |v| v == "local")
        && f.any("container", |v| fuzzy(v, ev))
        && f.any("network", |v| fuzzy(v, ev))
        && f.any("daemon", |v| ev.kind == "daemon" && fuzzy(v, ev))
        && f.any("volume", |v| ev.kind == "volume" && fuzzy(v, ev))
        && f.any("image", |v| {
            [
                ev.id.as_str(),
                image_name,
                strip_tag(&ev.id),
                strip_tag(image_name),
            ]
            .contains(&v)
        })
        && f.labels_match(&ev.attributes)
}

fn message(ev: &Event) -> EventMessage {
    let legacy = matches!(ev.kind, "container" | "image");
    EventMessage {
        status: legacy.then(|| ev.action.clone()),
        id: legacy.then(|| ev.id.clone()),
        from: (ev.kind == "container")
            .then(|| ev.attributes.get("image").cloned())
            .flatten(),
        kind: ev.kind.to_string(),
        action: ev.action.clone(),
        actor: EventActor {
            id: ev.id.clone(),
            attributes: ev.attributes.clone(),
        },
        scope: "local".into(),
        time: ev.time.timestamp(),
        time_nano: ev.time_nano(),
    }
}

fn line(ev: &Event) -> Bytes {
    let mut out = serde_json::to_vec(&message(ev)).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

pub fn events(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let f = Filters::parse(q.get("filters"), "events", EVENT_FILTERS)?;
    let since = time_param(q, "since")?;
    let until = time_param(q, "until")?;
    if let (Some(s), Some(u)) = (since, until)
        && u < s
    {
        return Err(DaemonError::bad_request(format!(
            "invalid until {u}: it is before since {s}"
        )));
    }
    let (past, mut live) = sup.events.subscribe(since);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let before_until = |ev: &Event| until.is_none_or(|u| ev.time <= u);
        for ev in past.iter().filter(|e| before_until(e) && included(&f, e)) {
            if tx.send(line(ev)).await.is_err() {
                return;
            }
        }
        loop {
            let deadline = async {
                match until {
                    Some(u) => {
                        let left = (u - Utc::now()).to_std().unwrap_or_default();
                        tokio::time::sleep(left).await
                    }
                    None => std::future::pending().await,
                }
            };
            let ev = tokio::select! {
                r = live.recv() => r,
                _ = deadline => return,
                _ = tx.closed() => return,
            };
            match ev {
                Ok(ev) => {
                    if !before_until(&ev) {
                        return;
                    }
                    if included(&f, &ev) && tx.send(line(&ev)).await.is_err() {
                        return;
                    }
                }
                // A subscriber too slow for the daemon misses events, as
                // Docker's does; it is not cut off.
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "an events reader fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(http::streamed("application/json", rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_as_docker_sends_them() {
        let t = parse_time("since", "1700000000.5").expect("fraction");
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert_eq!(
            parse_time("since", "1700000000").expect("secs").timestamp(),
            1_700_000_000
        );
        assert!(parse_time("since", "2024-01-01T00:00:00Z").is_ok());
        let e = parse_time("until", "soon")
            .expect_err("refused")
            .to_string();
        assert!(e.contains("until") && e.contains("soon"), "{e}");
    }

    #[test]
    fn filters_follow_docker() {
        let ev = Event::new("container", "exec_start: sh -c ls", "abcdef0123")
            .with("name", "web-1")
            .with("image", "busybox:latest")
            .with("com.docker.compose.project", "p");
        let f = |raw: &str| Filters::parse(Some(raw), "events", EVENT_FILTERS).expect("valid");
        assert!(included(&f(r#"{"event":["exec_start"]}"#), &ev));
        assert!(included(&f(r#"{"container":["web-1"]}"#), &ev));
        assert!(included(&f(r#"{"container":["abcd"]}"#), &ev));
        assert!(!included(&f(r#"{"container":["db"]}"#), &ev));
        assert!(included(&f(r#"{"image":["busybox"]}"#), &ev));
        assert!(included(
            &f(r#"{"label":["com.docker.compose.project=p"]}"#),
            &ev
        ));
        assert!(!included(
            &f(r#"{"label":["com.docker.compose.project=q"]}"#),
            &ev
        ));
        assert!(!included(&f(r#"{"type":["network"]}"#), &ev));
        assert_eq!(strip_tag("localhost:5000/a/b:1"), "localhost:5000/a/b");
        assert_eq!(strip_tag("localhost:5000/a"), "localhost:5000/a");
    }
}
