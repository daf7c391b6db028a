//! Serving a `wasi:http/incoming-handler` component: wrun listens on the
//! guest's port inside its network namespace (so `-p` and other containers
//! reach it like any server) and runs one fresh instance per request, from
//! the engine's instance pool, as `wasmtime serve` does.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::grant::{OutputSink, ProcessSpec, request_builder};
use super::limits::MemoryLimiter;
use super::mappings::Mappings;
use super::overflow::{Overflow, Seats};
use super::run::{Exit, engine_err, moved, new_store};
use super::stop::StopHandle;
use super::{Program, Sandbox, SandboxError, StopReason};
use crate::net::wasi::{NetCtxView, NetState, NetView};
use crate::net::{NetGrant, NetMode, Proto, Route};

/// The store of one request's instance.
pub(super) struct HttpState {
    ctx: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: EgressHooks,
    limiter: MemoryLimiter,
    net: NetState,
    fs: super::fs::FsState,
}

impl super::fs::FsView for HttpState {
    fn fs_view(&mut self) -> super::fs::FsCtxView<'_> {
        super::fs::FsCtxView {
            ctx: self.ctx.filesystem(),
            table: &mut self.table,
            state: &self.fs,
        }
    }
}

impl WasiView for HttpState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HttpState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

impl NetView for HttpState {
    fn net_view(&mut self) -> NetCtxView<'_> {
        NetCtxView::new(&mut self.ctx, &mut self.table, &mut self.net)
    }
}

impl super::run::Limited for HttpState {
    fn limiter(&mut self) -> &mut MemoryLimiter {
        &mut self.limiter
    }
}

/// The guest's outgoing HTTP requests, under the same rules as its
/// sockets: a virtual name or address goes where the namespace routes it;
/// anything else needs an egress rule.
struct EgressHooks {
    grant: NetGrant,
}

type SendFuture = Box<
    dyn std::future::Future<
            Output = wasmtime_wasi_http::Result<(
                hyper::Response<wasmtime_wasi_http::WasiBody>,
                Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
            )>,
        > + Send,
>;

impl WasiHttpHooks for EgressHooks {
    fn send_request(
        &mut self,
        mut request: hyper::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn std::future::Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> SendFuture {
        drop(fut);
        let denied = || -> SendFuture {
            Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) })
        };
        if let Some(real) = self.rewrite(request.uri()) {
            match real {
                Some(uri) => *request.uri_mut() = uri,
                None => return denied(),
            }
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn std::future::Future<Output = _> + Send>,
            ))
        })
    }
}

impl EgressHooks {
    /// `None`: send as is. `Some(None)`: refuse. `Some(Some(uri))`: send
    /// to this rewritten address instead.
    fn rewrite(&self, uri: &hyper::Uri) -> Option<Option<hyper::Uri>> {
        if matches!(self.grant.mode, NetMode::Host) {
            return None;
        }
        let Some(authority) = uri.authority() else {
            return Some(None);
        };
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let https = uri.scheme() == Some(&hyper::http::uri::Scheme::HTTPS);
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        if let Some(ips) = self.grant.lookup(host) {
            let Some(ip) = ips.first() else {
                return Some(None);
            };
            return match self.grant.route(Proto::Tcp, SocketAddr::new(*ip, port)) {
                Route::Real(real) if real == SocketAddr::new(*ip, port) => None,
                Route::Real(real) => {
                    let mut parts = uri.clone().into_parts();
                    parts.authority = real.to_string().parse().ok();
                    Some(hyper::Uri::from_parts(parts).ok())
                }
                Route::Refused => Some(None),
            };
        }
        if self.grant.may_resolve(host) {
            // An ExternalName service: the request goes to its target.
            let target = self.grant.canonical(host);
            if target.eq_ignore_ascii_case(host.trim_end_matches('.')) {
                return None;
            }
            let mut parts = uri.clone().into_parts();
            parts.authority = format!("{target}:{port}").parse().ok();
            Some(hyper::Uri::from_parts(parts).ok())
        } else {
            Some(None)
        }
    }
}

/// Serves the component (`pre`, made ready in the pool's engine) on `port`
/// in the guest's namespace until `stop`.
pub(super) async fn serve(
    sandbox: &Sandbox,
    name: &str,
    program: &Program,
    pre: &ProxyPre<HttpState>,
    spec: ProcessSpec,
    port: u16,
    stop: &StopHandle,
) -> Result<Exit, SandboxError> {
    let start_err = |message: String| SandboxError::Start {
        program: name.to_string(),
        message,
    };
    let (listener, guard, lease) = match &spec.network.mode {
        NetMode::None => {
            return Err(start_err(
                "a wasi:http component needs a network to serve on; it has --network none".into(),
            ));
        }
        NetMode::Host => {
            let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| start_err(format!("listen on {addr}: {e}")))?;
            (l, None, None)
        }
        NetMode::Virtual(ns) => {
            let guard = ns.reserve(Proto::Tcp, port).ok_or_else(|| {
                start_err(format!(
                    "port {port} is already bound in the container's network"
                ))
            })?;
            // A port published with -p: the listener takes the host
            // address over, so requests come straight to it.
            let lease = crate::net::handover::take_offered(ns, port, true).await;
            let taken = match &lease {
                Some(l) => tokio::net::TcpListener::bind(l.addr()).await.ok(),
                None => None,
            };
            let lease = lease.filter(|_| taken.is_some());
            let l = match taken {
                Some(l) => l,
                None => tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                    .await
                    .map_err(|e| start_err(format!("listen on 127.0.0.1: {e}")))?,
            };
            let real = l.local_addr().map_err(|e| start_err(e.to_string()))?;
            guard.set_real(crate::net::reachable(real));
            (l, Some(guard), lease)
        }
    };
    let server = Arc::new(Server {
        engine: sandbox.engine.clone(),
        pre: pre.clone(),
        overflow: sandbox.overflow.clone(),
        seats: sandbox.seats.clone(),
        mappings: sandbox.mappings.clone(),
        program: program.clone(),
        spec,
        stop: stop.clone(),
    });
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.stopped() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let server = server.clone();
                        async move { server.handle(req).await }
                    });
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
        // Reap finished connections as we go.
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    // The host port goes back to the daemon once the listener is closed.
    drop(listener);
    drop(lease);
    drop(guard);
    Ok(Exit::Stopped(stop.reason().unwrap_or(StopReason::Killed)))
}

struct Server {
    engine: wasmtime::Engine,
    pre: ProxyPre<HttpState>,
    /// Where a request's instance goes when the engine's pool is full.
    overflow: Arc<Overflow>,
    seats: Arc<Seats>,
    mappings: Arc<Mappings>,
    program: Program,
    spec: ProcessSpec,
    stop: StopHandle,
}

impl Server {
    /// One request: a fresh instance, its `handle` export called with the
    /// request, and whatever response it sets.
    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
    ) -> Result<hyper::Response<HyperOutgoingBody>, std::convert::Infallible> {
        match self.instance_handle(req).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                self.spec.report(&format!("wrun: request failed: {e:#}\n"));
                Ok(error_response())
            }
        }
    }

    async fn instance_handle(
        &self,
        req: hyper::Request<Incoming>,
    ) -> anyhow::Result<hyper::Response<HyperOutgoingBody>> {
        let mut builder = request_builder(&self.spec)?;
        let state = HttpState {
            ctx: builder.build(),
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            hooks: EgressHooks {
                grant: self.spec.network.clone(),
            },
            limiter: MemoryLimiter::new(self.spec.memory_limit, self.spec.usage.clone()),
            net: NetState::new(self.spec.network.clone()).with_budget(self.spec.usage.clone()),
            fs: super::fs::FsState {
                root: self.spec.root.clone(),
                proc: self.spec.proc.clone(),
                files: super::fs::OpenFiles::new(self.spec.usage.clone()),
            },
        };
        self.mappings.admit().map_err(anyhow::Error::msg)?;
        // In the pool while it has a seat, past it otherwise.
        let seat = self.seats.take();
        let (engine, pre) = match &seat {
            Some(_) => (self.engine.clone(), self.pre.clone()),
            None => self.overflow.proxy(&self.program)?,
        };
        let mut store = new_store(&engine, state, &self.stop);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let req = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let out = store.data_mut().http().new_response_outparam(tx)?;
        let (mut store, proxy) = match pre.instantiate_async(&mut store).await {
            Ok(proxy) => (store, proxy),
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                // Past the pool: the request's state moves to a store of
                // the overflow engine.
                let (engine, pre) = self.overflow.proxy(&self.program)?;
                let mut store = moved(store, &engine, &self.stop);
                let proxy = pre.instantiate_async(&mut store).await?;
                (store, proxy)
            }
            Err(e) => return Err(e.into()),
        };
        let usage = self.spec.usage.clone();
        let task = tokio::spawn(super::sched::run(super::usage::Metered::new(
            async move {
                let handled = proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await;
                // The store first, and its pool slot with it.
                drop(store);
                drop(seat);
                handled
            },
            usage,
        )));
        match rx.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => anyhow::bail!("the guest answered with an error: {code:?}"),
            Err(_) => match task.await {
                Ok(Ok(Ok(()))) => anyhow::bail!("the guest set no response"),
                Ok(Ok(Err(e))) => Err(anyhow::anyhow!(
                    "guest trapped: {}",
                    super::run::trap_message(&e)
                )),
                Ok(Err(lost)) => Err(anyhow::anyhow!("{}", lost.0)),
                Err(e) => Err(anyhow::anyhow!("the request task failed: {e}")),
            },
        }
    }
}

fn error_response() -> hyper::Response<HyperOutgoingBody> {
    use http_body_util::BodyExt;
    let body = http_body_util::Full::new(bytes::Bytes::from_static(b"internal server error\n"))
        .map_err(|never: std::convert::Infallible| match never {})
        .boxed_unsync();
    let mut resp = hyper::Response::new(body);
    *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
    resp
}

impl ProcessSpec {
    /// Writes a line to the guest's stderr sink, if it has one.
    fn report(&self, line: &str) {
        if let super::grant::Output::Sink(s) = &self.stdio.stderr {
            OutputSink::write(s.as_ref(), line.as_bytes());
        }
    }
}

pub(super) fn add_http_to_linker(
    l: &mut wasmtime::component::Linker<HttpState>,
) -> Result<(), SandboxError> {
    wasmtime_wasi::p2::add_to_linker_async(l).map_err(engine_err)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(l).map_err(engine_err)?;
    crate::net::wasi::add_to_linker(l).map_err(engine_err)?;
    super::fs::add_to_linker(l).map_err(engine_err)?;
    Ok(())
}
