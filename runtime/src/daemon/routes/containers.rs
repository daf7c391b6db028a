//! `/containers/...`: create, list, inspect, start, stop, kill, restart,
//! wait, remove, logs, attach, top, rename. Container records become
//! Docker's JSON here.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use super::networks;
use crate::api::filters::Filters;
use crate::api::stream::{self, StreamKind};
use crate::api::types::{
    ContainerConfig, ContainerInspect, ContainerStateBody, ContainerSummary, CreateRequest,
    CreateResponse, HostConfig, MountPoint, RestartPolicy as WireRestart, SummaryHostConfig,
    SummaryNetworkSettings, TopResponse, Ulimit, WaitResponse,
};
use crate::api::{MULTIPLEXED_STREAM, RAW_STREAM};
use crate::container::{ContainerRecord, ContainerState, RestartPolicy, SpecRequest, VolumeSpec};
use crate::daemon::error::DaemonError;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::io::pump_into;
use crate::daemon::logs::{self, LogQuery};
use crate::daemon::supervisor::{Entry, Live, Status, Supervisor, WaitCondition};
use crate::sandbox::StopReason;

/// Docker's time format in inspect: RFC 3339 with nanoseconds.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Docker's zero time, for "never".
pub(super) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub async fn create(sup: &Arc<Supervisor>, req: Request<Incoming>) -> Result<Resp, DaemonError> {
    let q = Query::parse(req.uri().query());
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .map(|n| n.trim_start_matches('/').to_string());
    let body: CreateRequest = http::read_json(req, "container create").await?;
    let mut warnings = Vec::new();
    let spec = spec_request(sup, body, &mut warnings)?;
    let rec = sup.create(name, spec).await?;
    Ok(http::json(
        StatusCode::CREATED,
        &CreateResponse {
            id: rec.id,
            warnings,
        },
    ))
}

/// Docker's create body as wrun's request. What wrun accepts but does not
/// honour goes into `warnings`, which clients print.
fn spec_request(
    sup: &Supervisor,
    body: CreateRequest,
    warnings: &mut Vec<String>,
) -> Result<SpecRequest, DaemonError> {
    let c = body.config;
    let h = body.host_config;
    if c.image.is_empty() {
        return Err(DaemonError::bad_request(
            "no image given: the Image field of the container config is required",
        ));
    }
    let mut volumes = Vec::new();
    for b in h.binds.unwrap_or_default() {
        let host = b.split(':').next().unwrap_or("");
        let windows_drive = host.len() == 1
            && b.as_bytes()
                .get(2)
                .is_some_and(|c| *c == b'\\' || *c == b'/');
        if !std::path::Path::new(host).is_absolute() && !windows_drive {
            return Err(DaemonError::bad_request(format!(
                "invalid volume {b:?}: the host path must be absolute"
            )));
        }
        volumes.push(VolumeSpec::parse(&b, std::path::Path::new("/"))?);
    }
    // Compose names the network in NetworkMode and again, with the
    // service's aliases, in EndpointsConfig; other clients only in the
    // latter. A container is on one network.
    let endpoints = body.networking_config.unwrap_or_default().endpoints_config;
    if endpoints.len() > 1 {
        return Err(DaemonError::bad_request(format!(
            "container create: {} networks given ({}); a wrun container joins one network, \
             the others can be reached through published ports",
            endpoints.len(),
            endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut network = h.network_mode;
    let mut aliases = Vec::new();
    if let Some((net, ep)) = endpoints.into_iter().next() {
        if network.is_empty() || network == "default" {
            network = net.clone();
        }
        // One may name the network by ID and the other by name.
        let fabric = sup.networks().fabric();
        let same = net == network
            || matches!(
                (fabric.network(&net), fabric.network(&network)),
                (Ok(a), Ok(b)) if a.id == b.id
            );
        if !same {
            return Err(DaemonError::bad_request(format!(
                "container create: the endpoint is on network {net:?} but NetworkMode is {network:?}"
            )));
        }
        aliases = ep.aliases;
    }
    if !aliases.is_empty()
        && matches!(
            network.as_str(),
            "" | "default" | "bridge" | "host" | "none"
        )
    {
        return Err(DaemonError::bad_request(format!(
            "network-scoped aliases ({}) are only supported on user-defined networks, not {:?}",
            aliases.join(", "),
            if network.is_empty() {
                "bridge"
            } else {
                &network
            }
        )));
    }
    let log_opts = if matches!(h.log_config.kind.as_str(), "" | "json-file") {
        crate::daemon::logs::Rotation::from_opts(&h.log_config.config)
            .map_err(DaemonError::bad_request)?;
        h.log_config.config.clone()
    } else {
        warnings.push(format!(
            "log driver {:?} is not supported: wrun writes json-file logs",
            h.log_config.kind
        ));
        Default::default()
    };
    let mut open_files = None;
    for u in h.ulimits.iter().flatten() {
        if u.name != "nofile" {
            return Err(DaemonError::bad_request(format!(
                "ulimit {:?} is not supported: wrun limits only nofile (the files a container's guests hold open)",
                u.name
            )));
        }
        open_files = Some(
            u64::try_from(u.soft)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    DaemonError::bad_request(format!(
                        "ulimit nofile={}: the limit must be at least 1",
                        u.soft
                    ))
                })?,
        );
    }
    let storage_size = crate::api::units::storage_size(&h.storage_opt.clone().unwrap_or_default())
        .map_err(DaemonError::bad_request)?;
    let restart = match h.restart_policy.name.as_str() {
        "on-failure" => RestartPolicy::OnFailure {
            max: h.restart_policy.maximum_retry_count,
        },
        other => RestartPolicy::parse(other)?,
    };
    Ok(SpecRequest {
        image: c.image,
        entrypoint: c.entrypoint,
        cmd: c.cmd.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        workdir: c.working_dir,
        volumes,
        memory: u64::try_from(h.memory).ok().filter(|m| *m > 0),
        open_files,
        storage_size,
        interactive: c.open_stdin,
        stdin_once: c.stdin_once,
        tty: c.tty,
        auto_remove: h.auto_remove,
        restart,
        network,
        ports: crate::api::ports::port_specs(&h.port_bindings.unwrap_or_default())
            .map_err(DaemonError::BadRequest)?,
        publish_all: h.publish_all_ports,
        allow_net: h.allow_net,
        http_port: h.http_port.filter(|p| *p != 0),
        labels: c.labels.unwrap_or_default(),
        aliases,
        stop_timeout: c.stop_timeout,
        log_opts,
    })
}

/// The filters `GET /containers/json` takes.
const CONTAINER_FILTERS: &[&str] = &[
    "ancestor", "before", "expose", "exited", "health", "id", "is-task", "label", "name",
    "network", "publish", "since", "status", "volume",
];

/// What the `before` and `since` filters compare with: the creation time
/// of the container they name.
fn created_of(
    sup: &Supervisor,
    f: &Filters,
    key: &str,
) -> Result<Option<DateTime<Utc>>, DaemonError> {
    match f.values(key).last() {
        None => Ok(None),
        Some(v) => Ok(Some(sup.find(v)?.0.created_at)),
    }
}

/// Whether a `publish`/`expose` value (`80`, `80/tcp`, `8000-8080/udp`)
/// covers `port` of `proto`.
fn port_filter(value: &str, port: u16, proto: &str) -> bool {
    let (range, p) = value.split_once('/').unwrap_or((value, "tcp"));
    if p != proto {
        return false;
    }
    let (lo, hi) = range.split_once('-').unwrap_or((range, range));
    match (lo.parse::<u16>(), hi.parse::<u16>()) {
        (Ok(lo), Ok(hi)) => (lo..=hi).contains(&port),
        _ => false,
    }
}

fn state_name(rec: &ContainerRecord, status: &Status) -> &'static str {
    if status.restarting {
        return "restarting";
    }
    if status.running {
        return "running";
    }
    match rec.state {
        ContainerState::Created => "created",
        // A record still saying running belongs to a run that is ending.
        ContainerState::Running | ContainerState::Exited => "exited",
    }
}

/// The list's filters, with what they refer to resolved once.
struct ListFilter {
    f: Filters,
    names: Vec<regex::Regex>,
    before: Option<DateTime<Utc>>,
    since: Option<DateTime<Utc>>,
}

impl ListFilter {
    fn new(sup: &Supervisor, q: &Query) -> Result<Self, DaemonError> {
        let f = Filters::parse(q.get("filters"), "containers", CONTAINER_FILTERS)?;
        Ok(Self {
            names: f.regexes("name")?,
            before: created_of(sup, &f, "before")?,
            since: created_of(sup, &f, "since")?,
            f,
        })
    }

    fn matches(&self, rec: &ContainerRecord, status: &Status, live: Option<&Live>) -> bool {
        let f = &self.f;
        let spec = &rec.spec;
        let code = (!status.running && rec.state != ContainerState::Created)
            .then(|| rec.exit_code.unwrap_or(0).to_string());
        f.any("status", |v| state_name(rec, status) == v)
            && (self.names.is_empty()
                || self
                    .names
                    .iter()
                    .any(|r| r.is_match(&format!("/{}", rec.name))))
            && f.any("id", |v| rec.id.starts_with(v))
            && f.any("ancestor", |v| {
                spec.image == v
                    || rec
                        .image_id
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
                    || crate::image::Reference::parse(v).is_ok_and(|r| {
                        crate::image::Reference::parse(&spec.image).is_ok_and(|s| s == r)
                    })
            })
            && f.any("exited", |v| code.as_deref() == Some(v))
            && f.labels_match(&spec.labels)
            && f.any("network", |v| spec.network == v)
            && f.any("volume", |v| {
                spec.volumes
                    .iter()
                    .any(|m| m.guest == v || m.host.to_str() == Some(v))
            })
            && f.any("health", |v| v == "none")
            && f.any("is-task", |v| v == "false")
            && f.any("expose", |v| {
                spec.exposed.iter().any(|p| port_filter(v, *p, "tcp"))
                    || spec.exposed_udp.iter().any(|p| port_filter(v, *p, "udp"))
            })
            && f.any("publish", |v| {
                live.is_some_and(|l| {
                    l.net
                        .published
                        .iter()
                        .any(|p| port_filter(v, p.addr.port(), p.spec.proto.name()))
                })
            })
            && self.before.is_none_or(|t| rec.created_at < t)
            && self.since.is_none_or(|t| rec.created_at > t)
    }
}

/// Docker's STATUS column: "Up 2 seconds", "Exited (0) 5 minutes ago".
fn status_text(rec: &ContainerRecord, status: &Status) -> String {
    use crate::cli::format::{ago, human_duration};
    if status.restarting {
        return format!(
            "Restarting ({}) {}",
            status.exit_code,
            rec.finished_at.map(ago).unwrap_or_default()
        );
    }
    if status.running {
        return match rec.started_at {
            Some(t) => format!("Up {}", human_duration(Utc::now() - t)),
            None => "Up".into(),
        };
    }
    match rec.state {
        ContainerState::Created => "Created".into(),
        _ => format!(
            "Exited ({}) {}",
            rec.exit_code.unwrap_or(0),
            rec.finished_at.map(ago).unwrap_or_default()
        ),
    }
}

fn quote_command(argv: &[String]) -> String {
    argv.join(" ")
}

fn mounts(rec: &ContainerRecord) -> Vec<MountPoint> {
    rec.spec
        .volumes
        .iter()
        .map(|v| MountPoint {
            kind: "bind".into(),
            source: v.host.display().to_string(),
            destination: v.guest.clone(),
            mode: if v.read_only {
                "ro".into()
            } else {
                String::new()
            },
            rw: !v.read_only,
        })
        .collect()
}

pub fn list(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let all = q.flag("all");
    // Clients send -1 (and 0) for "no limit".
    let limit = q
        .number::<i64>("limit")?
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    let filter = ListFilter::new(sup, q)?;
    // `before`, `since` and `limit` imply all containers, as in Docker.
    let all = all
        || filter.f.has("status")
        || filter.f.has("exited")
        || filter.before.is_some()
        || filter.since.is_some()
        || limit.is_some();
    let mut records = sup.db().list()?;
    // Newest first, as Docker lists them.
    records.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let mut out = Vec::new();
    for rec in records {
        let entry = sup.entry(&rec.id);
        let status = entry.status();
        let live = entry.live();
        if !(all || status.running || status.restarting) {
            continue;
        }
        if !filter.matches(&rec, &status, live.as_ref()) {
            continue;
        }
        let mut row = summary(sup, &rec, &status, live.as_ref());
        if q.flag("size") {
            let (rw, root) = sizes(sup, &rec);
            row.size_rw = Some(rw);
            row.size_root_fs = Some(root);
        }
        out.push(row);
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
    }
    Ok(http::json(StatusCode::OK, &out))
}

/// A container as a row of `GET /containers/json`.
pub(super) fn summary(
    sup: &Supervisor,
    rec: &ContainerRecord,
    status: &Status,
    live: Option<&Live>,
) -> ContainerSummary {
    ContainerSummary {
        id: rec.id.clone(),
        names: vec![format!("/{}", rec.name)],
        image: rec.spec.image.clone(),
        image_id: rec.image_id.clone(),
        command: quote_command(&rec.spec.argv),
        created: rec.created_at.timestamp(),
        ports: networks::summary_ports(live),
        labels: rec.spec.labels.clone(),
        state: state_name(rec, status).into(),
        status: status_text(rec, status),
        mounts: mounts(rec),
        host_config: SummaryHostConfig {
            network_mode: rec.spec.network.clone(),
        },
        network_settings: SummaryNetworkSettings {
            networks: networks::endpoints(sup, &rec.spec, live),
        },
        size_rw: None,
        size_root_fs: None,
    }
}

/// A container's sizes, as `ps -s` and `system df` show them: the bytes
/// it wrote (its writable layer, which removing it frees), and those plus
/// its image's.
pub(super) fn sizes(sup: &Supervisor, rec: &ContainerRecord) -> (i64, i64) {
    let own = i64::try_from(crate::container::own_size(sup.root(), rec)).unwrap_or(i64::MAX);
    let image = if rec.spec.layers.is_empty() {
        0
    } else {
        rec.spec
            .layers
            .iter()
            .map(|l| crate::image::layer::dir_size(&sup.root().layers_dir().join(l)))
            .sum::<u64>()
    };
    (
        own,
        own.saturating_add(i64::try_from(image).unwrap_or(i64::MAX)),
    )
}

pub fn inspect(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let (rec, entry) = sup.find(id)?;
    Ok(http::json(StatusCode::OK, &inspect_body(sup, &rec, &entry)))
}

fn inspect_body(sup: &Supervisor, rec: &ContainerRecord, entry: &Entry) -> ContainerInspect {
    let status = entry.status();
    let spec = &rec.spec;
    let pid = if status.running { 1 } else { 0 };
    ContainerInspect {
        id: rec.id.clone(),
        created: rfc3339(rec.created_at),
        path: spec.argv.first().cloned().unwrap_or_default(),
        args: spec.argv.iter().skip(1).cloned().collect(),
        state: ContainerStateBody {
            status: state_name(rec, &status).into(),
            running: status.running || status.restarting,
            paused: false,
            restarting: status.restarting,
            oom_killed: !status.running
                && rec
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with(crate::sandbox::OOM_DESCRIPTION)),
            dead: false,
            pid,
            exit_code: rec.exit_code.unwrap_or(0),
            error: rec.error.clone().unwrap_or_default(),
            started_at: rec
                .started_at
                .map(rfc3339)
                .unwrap_or_else(|| ZERO_TIME.into()),
            finished_at: rec
                .finished_at
                .map(rfc3339)
                .unwrap_or_else(|| ZERO_TIME.into()),
        },
        image: rec.image_id.clone(),
        name: format!("/{}", rec.name),
        restart_count: rec.restart_count,
        driver: "wrun".into(),
        platform: "wasi".into(),
        log_path: entry.io.log_path().display().to_string(),
        host_config: HostConfig {
            binds: Some(
                spec.volumes
                    .iter()
                    .map(|v| {
                        format!(
                            "{}:{}{}",
                            v.host.display(),
                            v.guest,
                            if v.read_only { ":ro" } else { "" }
                        )
                    })
                    .collect(),
            ),
            memory: spec.memory.and_then(|m| i64::try_from(m).ok()).unwrap_or(0),
            storage_opt: spec
                .storage_size
                .map(|n| std::collections::BTreeMap::from([("size".to_string(), n.to_string())])),
            ulimits: spec.open_files.map(|n| {
                let n = i64::try_from(n).unwrap_or(i64::MAX);
                vec![Ulimit {
                    name: "nofile".into(),
                    soft: n,
                    hard: n,
                }]
            }),
            restart_policy: WireRestart {
                name: spec.restart.name().into(),
                maximum_retry_count: spec.restart.max_retries(),
            },
            auto_remove: spec.auto_remove,
            network_mode: spec.network.clone(),
            port_bindings: Some(crate::api::ports::port_bindings(&spec.ports)),
            publish_all_ports: spec.publish_all,
            allow_net: spec.allow_net.clone(),
            http_port: spec.http_port,
            log_config: crate::api::types::LogConfig {
                kind: "json-file".into(),
                config: spec.log_opts.clone(),
            },
        },
        config: ContainerConfig {
            hostname: rec.short_id().into(),
            attach_stdin: spec.interactive,
            attach_stdout: true,
            attach_stderr: true,
            tty: spec.tty,
            open_stdin: spec.interactive,
            stdin_once: spec.stdin_once,
            env: Some(spec.env.clone()),
            cmd: Some(spec.cmd().to_vec()),
            image: spec.image.clone(),
            working_dir: spec.workdir.clone(),
            entrypoint: Some(spec.entrypoint().to_vec()),
            labels: Some(spec.labels.clone()),
            stop_timeout: spec.stop_timeout,
            ..Default::default()
        },
        mounts: mounts(rec),
        network_settings: networks::settings(sup, spec, entry.live().as_ref()),
    }
}

pub async fn start(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    sup.start(id).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `stop` and `kill` take Docker's signal names; a wasm guest has no
/// signal handlers, so SIGINT ends it as an interrupt (130) and every other
/// signal as a kill (137).
fn stop_reason(signal: Option<&str>) -> Result<StopReason, DaemonError> {
    let Some(sig) = signal.filter(|s| !s.is_empty()) else {
        return Ok(StopReason::Killed);
    };
    let name = sig.trim_start_matches("SIG").to_ascii_uppercase();
    match name.as_str() {
        "INT" | "2" => Ok(StopReason::Interrupted),
        "KILL" | "9" | "TERM" | "15" | "QUIT" | "3" | "HUP" | "1" | "USR1" | "USR2" => {
            Ok(StopReason::Killed)
        }
        _ => Err(DaemonError::bad_request(format!("invalid signal: {sig}"))),
    }
}

pub async fn stop(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    // `t` (the grace period) is accepted and has nothing to wait for.
    let _: Option<i64> = q.number("t")?;
    sup.stop(id, stop_reason(q.get("signal"))?).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn kill(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    sup.kill(id, stop_reason(q.get("signal"))?).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn restart(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let _: Option<i64> = q.number("t")?;
    match sup.stop(id, StopReason::Killed).await {
        Ok(()) | Err(DaemonError::NotModified) => {}
        Err(e) => return Err(e),
    }
    match sup.start(id).await {
        Ok(()) | Err(DaemonError::NotModified) => {}
        Err(e) => return Err(e),
    }
    if let Ok((rec, _)) = sup.find(id) {
        sup.container_event(&rec, "restart");
    }
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub async fn remove(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    sup.remove(id, q.flag("force")).await?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

pub fn rename(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let name = q
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| DaemonError::bad_request("rename: the name parameter is required"))?;
    sup.rename(id, name)?;
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// Answers at once with the headers, and with the body when the container
/// meets the condition: clients send `wait` before `start`.
pub fn wait(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let condition = WaitCondition::parse(q.str("condition"))?;
    let (_, entry) = sup.find(id)?;
    // The state is taken now, before the answer's headers go out.
    let waiting = Supervisor::wait(&entry, condition);
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let (code, detail) = waiting.await;
        let body = WaitResponse {
            status_code: i64::from(code),
            error: None,
            detail,
        };
        if let Ok(json) = serde_json::to_vec(&body) {
            let _ = tx.send(Bytes::from(json)).await;
        }
    });
    Ok(http::streamed("application/json", rx))
}

pub fn top(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let (rec, entry) = sup.find(id)?;
    let Some(live) = entry.live() else {
        return Err(DaemonError::Conflict(format!(
            "container {} is not running",
            rec.short_id()
        )));
    };
    let processes = live
        .procs
        .list()
        .into_iter()
        .map(|p| vec![p.pid.to_string(), p.ppid.to_string(), p.argv.join(" ")])
        .collect();
    Ok(http::json(
        StatusCode::OK,
        &TopResponse {
            titles: vec!["PID".into(), "PPID".into(), "CMD".into()],
            processes,
        },
    ))
}

/// Which streams a logs or attach request wants.
fn wanted(q: &Query) -> (bool, bool) {
    (q.flag("stdout"), q.flag("stderr"))
}

/// Encodes one chunk as the client expects it: framed without a TTY, raw
/// with one, with a timestamp prefix when asked.
fn encode(tty: bool, kind: StreamKind, data: &[u8], time: Option<DateTime<Utc>>) -> Vec<u8> {
    let payload: std::borrow::Cow<'_, [u8]> = match time {
        Some(t) => {
            let mut p = format!("{} ", rfc3339(t)).into_bytes();
            p.extend_from_slice(data);
            p.into()
        }
        None => data.into(),
    };
    stream::encode(tty, kind, &payload)
}

pub fn logs(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let (rec, entry) = sup.find(id)?;
    let (stdout, stderr) = wanted(q);
    if !stdout && !stderr {
        return Err(DaemonError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let now = Utc::now();
    let parse_time = |key: &str| -> Result<Option<DateTime<Utc>>, DaemonError> {
        match q.get(key).filter(|s| !s.is_empty() && *s != "0") {
            None => Ok(None),
            Some(s) => logs::parse_time(s, now)
                .map(Some)
                .ok_or_else(|| DaemonError::bad_request(format!("invalid {key} time {s:?}"))),
        }
    };
    let tail = match q.get("tail") {
        None | Some("" | "all") => None,
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| DaemonError::bad_request(format!("invalid tail {n:?}")))?,
        ),
    };
    let query = LogQuery {
        stdout,
        stderr,
        tail,
        since: parse_time("since")?,
        until: parse_time("until")?,
    };
    let timestamps = q.flag("timestamps");
    let follow = q.flag("follow") && query.until.is_none();
    let tty = rec.spec.tty;
    // Subscribe before reading, so a follower misses nothing in between.
    let (len, mut live_rx) = entry.io.subscribe_at();
    let following = follow && entry.live().is_some();
    let path = entry.io.log_path().to_path_buf();
    let entries = logs::read(&path, following.then_some(len), &query)
        .map_err(|e| DaemonError::internal(format!("{}: {e}", path.display())))?;
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        for e in entries {
            let chunk = encode(tty, e.stream, &e.data, timestamps.then_some(e.time));
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
        if !following {
            return;
        }
        while let Some((kind, data)) = live_rx.recv().await {
            let want = match kind {
                StreamKind::Stdout => stdout,
                StreamKind::Stderr => stderr,
                _ => false,
            };
            if !want {
                continue;
            }
            let chunk = encode(tty, kind, &data, timestamps.then(Utc::now));
            if tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
        }
    });
    let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    Ok(http::streamed(content_type, rx))
}

/// The hijacked `attach`: output of the current (or next) run goes to the
/// client until the run ends; with `stdin=1`, what the client sends goes
/// to the guest's stdin.
pub fn attach(
    sup: &Arc<Supervisor>,
    id: &str,
    mut req: Request<Incoming>,
) -> Result<Resp, DaemonError> {
    let q = Query::parse(req.uri().query());
    let (rec, entry) = sup.find(id)?;
    let (stdout, stderr) = wanted(&q);
    let tty = rec.spec.tty;
    let (log_len, mut rx) = entry.io.subscribe_at();
    let replay = if q.flag("logs") {
        let query = LogQuery {
            stdout,
            stderr,
            ..Default::default()
        };
        logs::read(entry.io.log_path(), Some(log_len), &query).unwrap_or_default()
    } else {
        Vec::new()
    };
    let stream = q.flag("stream");
    let stdin = if q.flag("stdin") && rec.spec.interactive {
        entry.io.attach_stdin(rec.spec.stdin_once)
    } else {
        None
    };
    let content_type = if tty { RAW_STREAM } else { MULTIPLEXED_STREAM };
    let (resp, on_upgrade) = http::hijack(&mut req, content_type);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach: the upgrade failed");
                return;
            }
        };
        let (rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        if let Some(tx) = stdin {
            tokio::spawn(pump_into(rd, tx));
        }
        for e in replay {
            if wr
                .write_all(&encode(tty, e.stream, &e.data, None))
                .await
                .is_err()
            {
                return;
            }
        }
        if stream {
            while let Some((kind, data)) = rx.recv().await {
                let want = match kind {
                    StreamKind::Stdout => stdout,
                    StreamKind::Stderr => stderr,
                    _ => false,
                };
                if want && wr.write_all(&encode(tty, kind, &data, None)).await.is_err() {
                    return;
                }
            }
        }
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
    });
    Ok(resp)
}
