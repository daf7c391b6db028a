//! The streaming pod subresources: `exec`, `attach` and `portforward`.
//!
//! kubectl 1.30+ asks for WebSocket (`v5.channel.k8s.io` for exec and
//! attach; from 1.31 SPDY tunnelled through WebSocket, subprotocol
//! `SPDY/3.1+portforward.k8s.io`, for port-forward) and falls back to a
//! SPDY/3.1 upgrade when that fails; older kubectl only upgrades to SPDY.
//! Both are served. Everything that can be checked is checked before the
//! upgrade, so errors are `metav1.Status` answers as the API server gives.
//!
//! What exec and attach then do is `jobs.rs`; port-forward is
//! `portforward.rs`.

#[path = "jobs.rs"]
mod jobs;
#[path = "portforward.rs"]
mod portforward;
#[path = "remotecmd.rs"]
mod remotecmd;
#[path = "spdy.rs"]
mod spdy;
#[path = "spdyconn.rs"]
mod spdyconn;
#[path = "spdyheaders.rs"]
mod spdyheaders;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderMap, HeaderValue, UPGRADE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::{attempts, pick_container};
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::kube::Api;
use crate::daemon::kube::objects::Target;
use crate::daemon::supervisor::{Entry, Supervisor};
use crate::kube::KubeError;
use crate::net::{NetMode, Proto};
use remotecmd::{Protocol, Wanted};

/// The stream protocol of port-forward.
const PORT_FORWARD: &str = "portforward.k8s.io";
/// What kubectl puts before a protocol it tunnels through WebSocket.
const TUNNEL_PREFIX: &str = "SPDY/3.1+";

/// How the client asked to upgrade, and what was picked.
#[derive(Debug)]
enum Upgrade {
    WebSocket { accept: String, protocol: String },
    Spdy { protocol: String },
}

/// Every value of a header, split at commas and trimmed.
fn tokens(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Picks the transport and the protocol: the client's first choice that
/// is served.
fn negotiate(headers: &HeaderMap, ws: &[&str], spdy: &[&str]) -> Result<Upgrade, KubeError> {
    let upgrade = tokens(headers, UPGRADE.as_str());
    let pick = |offered: Vec<String>, served: &[&str], what: &str| {
        offered
            .iter()
            .find(|o| served.contains(&o.as_str()))
            .cloned()
            .ok_or_else(|| {
                KubeError::bad_request(format!(
                    "unable to upgrade: {what} offers {offered:?}; this server speaks {served:?}"
                ))
            })
    };
    if upgrade.iter().any(|u| u.eq_ignore_ascii_case("websocket")) {
        let key = headers
            .get("sec-websocket-key")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| KubeError::bad_request("missing Sec-WebSocket-Key"))?;
        if tokens(headers, "sec-websocket-version") != ["13"] {
            return Err(KubeError::bad_request(
                "unsupported WebSocket version: use 13",
            ));
        }
        let protocol = pick(tokens(headers, "sec-websocket-protocol"), ws, "the client")?;
        return Ok(Upgrade::WebSocket {
            accept: derive_accept_key(key.as_bytes()),
            protocol,
        });
    }
    if upgrade.iter().any(|u| u.eq_ignore_ascii_case("SPDY/3.1")) {
        if spdy.is_empty() {
            return Err(KubeError::bad_request(
                "this subresource is served over WebSocket only",
            ));
        }
        let protocol = pick(
            tokens(headers, "x-stream-protocol-version"),
            spdy,
            "the client",
        )?;
        return Ok(Upgrade::Spdy { protocol });
    }
    Err(KubeError::bad_request(
        "Upgrade request required: use kubectl, which streams over WebSocket (1.30+) or SPDY/3.1",
    ))
}

/// The `101 Switching Protocols` answer.
fn switching(up: &Upgrade) -> Resp {
    let mut r = http::empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    match up {
        Upgrade::WebSocket { accept, protocol } => {
            set("upgrade", "websocket");
            set("sec-websocket-accept", accept);
            set("sec-websocket-protocol", protocol);
        }
        Upgrade::Spdy { protocol } => {
            set("upgrade", "SPDY/3.1");
            set("x-stream-protocol-version", protocol);
        }
    }
    r
}

/// The newest run of a pod's container, which must be running.
fn current_run(api: &Api, pod: &Value, container: &str) -> Result<(String, Arc<Entry>), KubeError> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let not_running = || {
        KubeError::bad_request(format!(
            "container {container} in pod {name} is not running"
        ))
    };
    let (_, id) = attempts(api, pod, container)?
        .pop()
        .ok_or_else(not_running)?;
    let (rec, entry) = api
        .sup
        .find(&id)
        .map_err(|e| KubeError::internal(e.to_string()))?;
    if entry.live().is_none() {
        return Err(not_running());
    }
    Ok((rec.id, entry))
}

pub async fn serve(
    api: &Arc<Api>,
    t: &Target,
    sub: &str,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let name = t.name.as_deref().unwrap_or_default();
    // The pod must exist either way, as the API server checks first.
    let pod = api.store.get(t.res, t.namespace.as_deref(), name)?;
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(KubeError::MethodNotAllowed(format!(
            "pods/{sub} takes GET or POST"
        )));
    }
    if sub == "portforward" {
        let tunnelled = format!("{TUNNEL_PREFIX}{PORT_FORWARD}");
        let up = negotiate(req.headers(), &[&tunnelled], &[PORT_FORWARD])?;
        let resolve = resolver(api.clone(), pod);
        let label = format!("{}/{name}", t.namespace.as_deref().unwrap_or("default"));
        return Ok(upgrade(&mut req, up, move |conn| {
            Box::pin(async move {
                let (sender, streams) = match conn {
                    Conn::WebSocket(ws, _) => spdyconn::start(spdyconn::over_websocket(*ws)),
                    Conn::Spdy(io, _) => spdyconn::start(io),
                };
                portforward::serve(sender, streams, label, resolve).await;
            })
        }));
    }
    let container = pick_container(&pod, q.get("container"))?;
    let (id, entry) = current_run(api, &pod, &container)?;
    let up = negotiate(
        req.headers(),
        remotecmd::WS_PROTOCOLS,
        remotecmd::SPDY_PROTOCOLS,
    )?;
    let wanted = wanted_of(q);
    let job = if sub == "exec" {
        exec_of(api.sup.clone(), id, q, wanted)?
    } else {
        // Last: with `stdinOnce` it takes the container's stdin.
        jobs::attach_job(api, &pod, &container, &id, entry, wanted)?
    };
    Ok(upgrade(&mut req, up, move |conn| {
        remote_command(conn, wanted, job)
    }))
}

/// The streams a request asks for.
fn wanted_of(q: &Query) -> Wanted {
    Wanted {
        stdin: q.flag("stdin"),
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        tty: q.flag("tty"),
    }
}

/// The exec of the request's `command`s in the container `id`.
fn exec_of(
    sup: Arc<Supervisor>,
    id: String,
    q: &Query,
    wanted: Wanted,
) -> Result<remotecmd::Job, KubeError> {
    let argv: Vec<String> = q.all("command").into_iter().map(str::to_string).collect();
    if argv.is_empty() {
        return Err(KubeError::bad_request(
            "you must specify at least 1 command",
        ));
    }
    Ok(jobs::exec_job(sup, id, argv, wanted))
}

/// Serves an exec or an attach on the upgraded connection.
fn remote_command(
    conn: Conn,
    wanted: Wanted,
    job: remotecmd::Job,
) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        match conn {
            Conn::WebSocket(ws, protocol) => {
                if let Some(p) = Protocol::parse(&protocol) {
                    remotecmd::serve_ws(*ws, p, wanted, job).await;
                }
            }
            Conn::Spdy(io, protocol) => {
                let version = Protocol::parse(&protocol).map_or(4, |p| p.version);
                let (sender, streams) = spdyconn::start(io);
                remotecmd::serve_spdy(sender, streams, version, wanted, job).await;
            }
        }
    })
}

/// An exec into any running container, named by ID or name, over the
/// same WebSocket channels as a pod's exec: the dashboard's terminal for
/// the Docker side, where Docker's own exec needs a hijacked connection
/// that a browser cannot make.
pub fn container_exec(
    sup: Arc<Supervisor>,
    container: &str,
    q: &Query,
    mut req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let (rec, entry) = sup
        .find(container)
        .map_err(|e| KubeError::bad_request(format!("container {container}: {e}")))?;
    if entry.live().is_none() {
        return Err(KubeError::bad_request(format!(
            "container {container} is not running"
        )));
    }
    let up = negotiate(req.headers(), remotecmd::WS_PROTOCOLS, &[])?;
    let wanted = wanted_of(q);
    let job = exec_of(sup, rec.id, q, wanted)?;
    Ok(upgrade(&mut req, up, move |conn| {
        remote_command(conn, wanted, job)
    }))
}

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

/// The upgraded connection, with the protocol picked.
enum Conn {
    WebSocket(Box<WebSocketStream<Upgraded>>, String),
    Spdy(Upgraded, String),
}

/// Answers 101 and serves the connection once hyper hands it over.
fn upgrade<F>(req: &mut Request<Incoming>, up: Upgrade, serve: F) -> Resp
where
    F: FnOnce(Conn) -> futures_util::future::BoxFuture<'static, ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut *req);
    let resp = switching(&up);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => {
                tracing::debug!(error = %e, "pod stream: the upgrade failed");
                return;
            }
        };
        let conn = match up {
            Upgrade::WebSocket { protocol, .. } => Conn::WebSocket(
                Box::new(WebSocketStream::from_raw_socket(upgraded, Role::Server, None).await),
                protocol,
            ),
            Upgrade::Spdy { protocol } => Conn::Spdy(upgraded, protocol),
        };
        serve(conn).await;
    });
    resp
}

/// Finds the real socket behind one of the pod's ports, through any of
/// its running containers (they share the pod's namespace).
fn resolver(api: Arc<Api>, pod: Value) -> portforward::Resolve {
    Arc::new(move |port| {
        let containers: Vec<String> = pod["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect();
        for c in &containers {
            let runs = attempts(&api, &pod, c).map_err(|e| e.to_string())?;
            for (_, id) in runs.iter().rev() {
                let Ok((_, entry)) = api.sup.find(id) else {
                    continue;
                };
                let Some(live) = entry.live() else {
                    continue;
                };
                return match &live.net.grant.mode {
                    NetMode::Virtual(ns) => ns.lookup(Proto::Tcp, port).ok_or_else(|| {
                        format!("connection refused: nothing listens on port {port}")
                    }),
                    NetMode::Host => Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
                    NetMode::None => Err("the pod has no network".to_string()),
                };
            }
        }
        Err("no container of the pod is running".to_string())
    })
}
