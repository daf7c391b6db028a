//! The dashboard (`wrun dashboard`): a web UI the daemon serves on
//! 127.0.0.1, over the same APIs the CLIs use. The page's calls go to
//! `/api`, `/apis` (the Kubernetes API, answered in-process by the
//! cluster's router) and `/docker` (the Docker API, answered by the
//! daemon's router), so what the page shows is what kubectl and docker
//! see, and its watches are the API's watches.
//!
//! **Security.** The listener binds 127.0.0.1 only. `wrun dashboard`
//! asks for a one-time login link; following it trades the link's token
//! for a session cookie (HttpOnly, SameSite=Strict). Every other request
//! needs that cookie, a Host that names this listener (against DNS
//! rebinding), and, when it changes something or opens a WebSocket, an
//! Origin that is this listener: a page of another origin is refused.
//!
//! ```text
//!  wrun dashboard ── POST /_wrun/dashboard ──▶ token (one use, 10 min)
//!  browser ── GET /login?token=… ──▶ Set-Cookie: session; 303 → /
//!  browser ── GET /, /assets/…, /api/…, /docker/… (cookie) ──▶ answers
//! ```

mod assets;
mod traffic;
mod usage;

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::{
    CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, HeaderValue, LOCATION, ORIGIN, SET_COOKIE,
};
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::error::DaemonError;
use super::http::{self, Query, Resp};
use super::routes::ServerCtx;
use super::supervisor::Supervisor;

/// The session cookie's name.
const COOKIE_NAME: &str = "wrun-dashboard";
/// How long a login link works (once).
const LOGIN_TTL: Duration = Duration::from_secs(600);

#[derive(Default)]
struct State {
    /// The listener's port, once started.
    port: Option<u16>,
    /// Login tokens not used yet, with when they were made.
    tokens: HashMap<String, Instant>,
    /// Sessions that logged in.
    sessions: HashSet<String>,
    cancel: Option<CancellationToken>,
}

/// The dashboard's listener and its sessions.
#[derive(Default)]
pub struct Dashboard {
    state: Mutex<State>,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard").finish_non_exhaustive()
    }
}

fn random_hex(bytes: usize) -> Result<String, DaemonError> {
    let mut raw = vec![0u8; bytes];
    getrandom::fill(&mut raw).map_err(DaemonError::internal)?;
    Ok(hex::encode(raw))
}

impl Dashboard {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the listener if it is not up, and returns a login URL that
    /// works once.
    ///
    /// Not `async`: the Docker routes that call it are served by this
    /// listener too, and a future that contained itself could not be
    /// proven `Send`.
    pub fn login_url(
        self: &Arc<Self>,
        sup: &Arc<Supervisor>,
        ctx: &Arc<ServerCtx>,
    ) -> Result<String, DaemonError> {
        let running = self.state().port;
        let port = match running {
            Some(p) => p,
            None => self.start(sup, ctx)?,
        };
        let token = random_hex(24)?;
        let mut state = self.state();
        state.tokens.retain(|_, made| made.elapsed() < LOGIN_TTL);
        state.tokens.insert(token.clone(), Instant::now());
        Ok(format!("http://127.0.0.1:{port}/login?token={token}"))
    }

    fn start(
        self: &Arc<Self>,
        sup: &Arc<Supervisor>,
        ctx: &Arc<ServerCtx>,
    ) -> Result<u16, DaemonError> {
        let cannot =
            |e: std::io::Error| DaemonError::internal(format!("dashboard: cannot listen: {e}"));
        let listener = std::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .map_err(cannot)?;
        listener.set_nonblocking(true).map_err(cannot)?;
        let listener = TcpListener::from_std(listener).map_err(cannot)?;
        let port = listener.local_addr().map_err(DaemonError::internal)?.port();
        let cancel = CancellationToken::new();
        {
            let mut state = self.state();
            if let Some(p) = state.port {
                // Another request started it meanwhile.
                return Ok(p);
            }
            state.port = Some(port);
            state.cancel = Some(cancel.clone());
        }
        tokio::spawn(serve(
            listener,
            self.clone(),
            sup.clone(),
            ctx.clone(),
            cancel,
        ));
        tracing::info!(port, "dashboard listening");
        Ok(port)
    }

    /// Closes the listener (the daemon is stopping).
    pub fn stop(&self) {
        let mut state = self.state();
        if let Some(c) = state.cancel.take() {
            c.cancel();
        }
        state.port = None;
        state.sessions.clear();
        state.tokens.clear();
    }

    fn take_token(&self, token: &str) -> bool {
        let mut state = self.state();
        match state.tokens.remove(token) {
            Some(made) => made.elapsed() < LOGIN_TTL,
            None => false,
        }
    }

    fn new_session(&self) -> Result<String, DaemonError> {
        let id = random_hex(32)?;
        self.state().sessions.insert(id.clone());
        Ok(id)
    }

    fn has_session(&self, id: &str) -> bool {
        self.state().sessions.contains(id)
    }
}

async fn serve(
    listener: TcpListener,
    dash: Arc<Dashboard>,
    sup: Arc<Supervisor>,
    ctx: Arc<ServerCtx>,
    cancel: CancellationToken,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    loop {
        let (tcp, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = cancel.cancelled() => return,
        };
        let _ = tcp.set_nodelay(true);
        let (dash, sup, ctx, cancel) = (dash.clone(), sup.clone(), ctx.clone(), cancel.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let (dash, sup, ctx) = (dash.clone(), sup.clone(), ctx.clone());
                async move {
                    Ok::<_, std::convert::Infallible>(handle(&dash, port, sup, ctx, req).await)
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(error = %e, "dashboard connection ended with an error");
                    }
                }
                () = cancel.cancelled() => {}
            }
        });
    }
}

/// The origins this listener is: the only ones whose pages may use it.
fn own_origin(port: u16, value: &str) -> bool {
    value == format!("http://127.0.0.1:{port}") || value == format!("http://localhost:{port}")
}

fn header(req: &Request<Incoming>, name: hyper::header::HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn session_of(req: &Request<Incoming>) -> Option<String> {
    req.headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.to_string())
}

fn text(status: StatusCode, body: String) -> Resp {
    let mut r = http::empty(status);
    *r.body_mut() = http::full(body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Why a request is refused before it reaches a route, if it is.
fn refusal(dash: &Dashboard, port: u16, req: &Request<Incoming>) -> Option<Resp> {
    let host_ok = header(req, HOST)
        .is_some_and(|h| h == format!("127.0.0.1:{port}") || h == format!("localhost:{port}"));
    if !host_ok {
        return Some(text(
            StatusCode::MISDIRECTED_REQUEST,
            "the dashboard answers only as 127.0.0.1 or localhost\n".into(),
        ));
    }
    let cross_site = header(
        req,
        hyper::header::HeaderName::from_static("sec-fetch-site"),
    ) == Some("cross-site");
    let origin = header(req, ORIGIN);
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD)
        || req.headers().contains_key(hyper::header::UPGRADE);
    let origin_ok = match origin {
        Some(o) => own_origin(port, o),
        // Browsers always send an Origin with these; other clients must
        // too.
        None => !changes,
    };
    if cross_site || !origin_ok {
        return Some(text(
            StatusCode::FORBIDDEN,
            format!(
                "the dashboard refuses requests from another origin ({})\n",
                origin.unwrap_or("none given")
            ),
        ));
    }
    if req.uri().path() == "/login" {
        return None;
    }
    match session_of(req) {
        Some(id) if dash.has_session(&id) => None,
        _ => Some(text(
            StatusCode::UNAUTHORIZED,
            "not logged in: run `wrun dashboard` for a login link\n".into(),
        )),
    }
}

async fn handle(
    dash: &Dashboard,
    port: u16,
    sup: Arc<Supervisor>,
    ctx: Arc<ServerCtx>,
    mut req: Request<Incoming>,
) -> Resp {
    if let Some(refused) = refusal(dash, port, &req) {
        return refused;
    }
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/login" => login(dash, &req),
        "/" => assets::page(),
        p if p.starts_with("/ui/") => assets::page(),
        p if p.starts_with("/assets/") => assets::asset(&p["/assets/".len()..]),
        p if p == "/version"
            || p.starts_with("/api/")
            || p.starts_with("/apis/")
            || p == "/api"
            || p == "/apis" =>
        {
            match ctx.cluster.api() {
                Some(api) => super::kube::handle(api, req).await,
                None => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the cluster is not running: `wrun cluster start`\n".into(),
                ),
            }
        }
        "/wrun/usage" => usage::serve(sup, req)
            .unwrap_or_else(|why| text(StatusCode::BAD_REQUEST, format!("{why}\n"))),
        // A terminal into a Docker-side container (`/wrun/containers/ID/exec`).
        p if p.starts_with("/wrun/containers/") && p.ends_with("/exec") => {
            let id = &p["/wrun/containers/".len()..p.len() - "/exec".len()];
            let q = Query::parse(req.uri().query());
            super::kube::container_exec(sup, id, &q, req)
                .unwrap_or_else(|why| text(StatusCode::BAD_REQUEST, format!("{why}\n")))
        }
        "/wrun/traffic" => {
            let proxy = sup.networks().fabric().proxy().clone();
            traffic::serve(proxy, req)
                .unwrap_or_else(|why| text(StatusCode::BAD_REQUEST, format!("{why}\n")))
        }
        // The Docker API under a prefix of its own (wrun's own `_wrun`
        // endpoints, such as shutdown, stay with the CLI).
        p if p.starts_with("/docker/") && !p.starts_with("/docker/_wrun") => {
            let rest = &p["/docker".len()..];
            let uri = match req.uri().query() {
                Some(q) => format!("{rest}?{q}"),
                None => rest.to_string(),
            };
            match uri.parse() {
                Ok(u) => {
                    *req.uri_mut() = u;
                    super::routes::handle(sup, ctx, req).await
                }
                Err(_) => http::error(&DaemonError::bad_request(format!("bad path {p:?}"))),
            }
        }
        _ => text(StatusCode::NOT_FOUND, format!("no page at {path}\n")),
    }
}

/// Trades a login link's token for a session cookie.
fn login(dash: &Dashboard, req: &Request<Incoming>) -> Resp {
    let q = Query::parse(req.uri().query());
    let token = q.get("token").unwrap_or_default();
    if token.is_empty() || !dash.take_token(token) {
        return text(
            StatusCode::UNAUTHORIZED,
            "this login link was used already or has expired: run `wrun dashboard` for a new one\n"
                .into(),
        );
    }
    let session = match dash.new_session() {
        Ok(s) => s,
        Err(e) => return http::error(&e),
    };
    let mut r = http::empty(StatusCode::SEE_OTHER);
    r.headers_mut()
        .insert(LOCATION, HeaderValue::from_static("/"));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={session}; HttpOnly; SameSite=Strict; Path=/"
    )) {
        r.headers_mut().insert(SET_COOKIE, v);
    }
    r
}
