//! The API's routes: one dispatcher over Docker's paths, with and without
//! a `/v1.NN` prefix. Handlers live in one file per resource.

mod containers;
mod disk;
mod events;
mod exec;
mod files;
mod images;
mod networks;
mod stats;
mod system;

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};

use super::error::DaemonError;
use super::http::{self, Query, Resp, decode};
use super::supervisor::Supervisor;
use crate::api;
use crate::api::filters::Filters;

/// What every handler may need besides the supervisor.
#[derive(Debug)]
pub struct ServerCtx {
    /// The API's address, as `DOCKER_HOST` takes it.
    pub host: String,
    /// Fired by `POST /_wrun/shutdown`.
    pub shutdown: tokio::sync::Notify,
    /// The Kubernetes half (`wrun cluster`).
    pub cluster: Arc<crate::daemon::kube::Cluster>,
    /// The web UI (`wrun dashboard`).
    pub dashboard: Arc<crate::daemon::dashboard::Dashboard>,
}

pub async fn handle(sup: Arc<Supervisor>, ctx: Arc<ServerCtx>, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match route(&sup, &ctx, req).await {
        Ok(r) => r,
        Err(e) => {
            if !matches!(e, DaemonError::NotModified) {
                tracing::debug!(%method, %path, error = %e, "request failed");
            }
            http::error(&e)
        }
    }
}

async fn route(
    sup: &Arc<Supervisor>,
    ctx: &Arc<ServerCtx>,
    req: Request<Incoming>,
) -> Result<Resp, DaemonError> {
    let (version, path) = api::split_version(req.uri().path());
    if let Some(v) = version
        && !api::version_supported(v)
    {
        return Err(DaemonError::bad_request(format!(
            "client version {v} is not supported: wrun serves API versions {} to {}",
            api::MIN_API_VERSION,
            api::API_VERSION
        )));
    }
    let path = path.to_string();
    let q = Query::parse(req.uri().query());
    let method = req.method().clone();
    let segs: Vec<String> = path.trim_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    use Method as M;
    match (&method, segs.as_slice()) {
        (&M::GET, ["_ping"]) => Ok(system::ping(false)),
        (&M::HEAD, ["_ping"]) => Ok(system::ping(true)),
        (&M::GET, ["version"]) => Ok(system::version()),
        (&M::GET, ["info"]) => system::info(sup, &ctx.host),
        (&M::GET, ["events"]) => events::events(sup, &q),
        (&M::GET, ["system", "df"]) => disk::df(sup, &q),
        // wrun has bind mounts only: no named volume exists.
        (&M::GET, ["volumes"]) => {
            Filters::parse(
                q.get("filters"),
                "volumes",
                &["dangling", "driver", "label", "name"],
            )?;
            Ok(http::json(
                hyper::StatusCode::OK,
                &serde_json::json!({"Volumes": [], "Warnings": null}),
            ))
        }
        (&M::GET, ["volumes", name]) => Err(DaemonError::NotFound(format!(
            "get {name}: no such volume (wrun mounts host directories only, with -v HOST:GUEST)"
        ))),
        (&M::POST, ["containers", "prune"]) => disk::prune_containers(sup, &q).await,
        (&M::POST, ["images", "prune"]) => disk::prune_images(sup, &q),
        (&M::POST, ["networks", "prune"]) => disk::prune_networks(sup, &q),
        (&M::POST, ["_wrun", "shutdown"]) => {
            ctx.shutdown.notify_one();
            Ok(http::empty(hyper::StatusCode::NO_CONTENT))
        }

        (&M::GET, ["_wrun", "cluster"]) => {
            Ok(http::json(hyper::StatusCode::OK, &ctx.cluster.status()?))
        }
        (&M::POST, ["_wrun", "cluster", "start"]) => {
            let port = q.number::<u16>("port")?;
            let status = ctx.cluster.start(sup, port).await?;
            Ok(http::json(hyper::StatusCode::OK, &status))
        }
        (&M::POST, ["_wrun", "cluster", "stop"]) => {
            ctx.cluster.stop(true).await?;
            Ok(http::empty(hyper::StatusCode::NO_CONTENT))
        }
        (&M::POST, ["_wrun", "cluster", "delete"]) => {
            ctx.cluster.delete().await?;
            Ok(http::empty(hyper::StatusCode::NO_CONTENT))
        }
        (&M::POST, ["_wrun", "dashboard"]) => {
            ctx.cluster.start(sup, None).await?;
            let url = ctx.dashboard.login_url(sup, ctx)?;
            Ok(http::json(
                hyper::StatusCode::OK,
                &serde_json::json!({ "url": url }),
            ))
        }
        (&M::GET, ["_wrun", "net"]) => networks::tables(sup),
        (&M::GET, ["networks"]) => networks::list(sup, &q),
        (&M::POST, ["networks", "create"]) => networks::create(sup, req).await,
        (&M::GET, ["networks", id]) => networks::inspect(sup, id),
        (&M::DELETE, ["networks", id]) => networks::remove(sup, id),
        (&M::POST, ["containers", "create"]) => containers::create(sup, req).await,
        (&M::GET, ["containers", "json"]) => containers::list(sup, &q),
        (&M::GET, ["containers", id, "json"]) => containers::inspect(sup, id),
        (&M::POST, ["containers", id, "start"]) => containers::start(sup, id).await,
        (&M::POST, ["containers", id, "stop"]) => containers::stop(sup, id, &q).await,
        (&M::POST, ["containers", id, "kill"]) => containers::kill(sup, id, &q).await,
        (&M::POST, ["containers", id, "restart"]) => containers::restart(sup, id, &q).await,
        (&M::POST, ["containers", id, "wait"]) => containers::wait(sup, id, &q),
        (&M::POST, ["containers", id, "rename"]) => containers::rename(sup, id, &q),
        (&M::POST, ["containers", id, "attach"]) => containers::attach(sup, id, req),
        (&M::POST, ["containers", id, "resize"]) => {
            sup.find(id)?;
            Ok(http::empty(hyper::StatusCode::OK))
        }
        (&M::GET, ["containers", id, "logs"]) => containers::logs(sup, id, &q),
        (&M::GET, ["containers", id, "top"]) => containers::top(sup, id),
        (&M::GET, ["containers", id, "stats"]) => stats::stats(sup, id, &q).await,
        (&M::GET, ["containers", id, "changes"]) => files::changes(sup, id),
        (&M::GET, ["containers", id, "export"]) => files::export(sup, id),
        (&M::HEAD, ["containers", id, "archive"]) => files::archive_stat(sup, id, &q),
        (&M::GET, ["containers", id, "archive"]) => files::archive_get(sup, id, &q),
        (&M::PUT, ["containers", id, "archive"]) => files::archive_put(sup, id, req).await,
        (&M::DELETE, ["containers", id]) => containers::remove(sup, id, &q).await,
        (&M::POST, ["containers", id, "exec"]) => exec::create(sup, id, req).await,
        (&M::POST, ["exec", id, "start"]) => exec::start(sup, id, req).await,
        (&M::POST, ["exec", id, "resize"]) => {
            sup.execs.get(id)?;
            Ok(http::empty(hyper::StatusCode::OK))
        }
        (&M::GET, ["exec", id, "json"]) => exec::inspect(sup, id),

        (&M::GET, ["images", "json"]) => images::list(sup, &q),
        (&M::POST, ["images", "create"]) => images::create(sup, &q),
        (&M::POST, ["build"]) => images::build(sup, req).await,
        (&M::POST, ["commit"]) => files::commit(sup, &q, req).await,
        (&M::GET, ["images", "get"]) => images::get(
            sup,
            q.all("names").into_iter().map(str::to_string).collect(),
        ),
        (&M::POST, ["images", "load"]) => images::load(sup, req).await,
        // Image names contain slashes: the name is everything between
        // `images/` and the action.
        (&M::GET, ["images", name @ .., "get"]) if !name.is_empty() => {
            images::get(sup, vec![name.join("/")])
        }
        (&M::GET, ["images", name @ .., "json"]) if !name.is_empty() => {
            images::inspect(sup, &name.join("/"))
        }
        (&M::GET, ["images", name @ .., "history"]) if !name.is_empty() => {
            images::history(sup, &name.join("/"))
        }
        (&M::POST, ["images", name @ .., "tag"]) if !name.is_empty() => {
            images::tag(sup, &name.join("/"), &q)
        }
        (&M::POST, ["images", name @ .., "push"]) if !name.is_empty() => {
            images::push(sup, &name.join("/"), &q)
        }
        (&M::DELETE, ["images", name @ ..]) if !name.is_empty() => {
            images::remove(sup, &name.join("/"), &q)
        }
        _ => Err(DaemonError::NotFound(format!(
            "page not found: wrun does not serve {method} {path}"
        ))),
    }
}
