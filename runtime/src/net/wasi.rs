//! Socket virtualisation for WASIp2 guests. `wasi:sockets/tcp`, `udp` and
//! `ip-name-lookup` are added to the component linker a second time,
//! shadowing wasmtime-wasi's own, with a view that delegates every call to
//! wasmtime-wasi's implementation and rewrites addresses on the way:
//! - a bind of `0.0.0.0:P` (or loopback, or the namespace's IP) really binds
//!   an ephemeral port on loopback, and the namespace's table maps P to it;
//!   a second bind of P in the namespace is `address-in-use`;
//! - a connect or send goes where [`NetGrant::route`] says, or is
//!   `connection-refused`;
//! - `local-address`, `remote-address` and received datagrams report
//!   virtual addresses: the namespace's, a peer guest's, or the gateway's
//!   for traffic from the host;
//! - names resolve to virtual addresses, and reach the real resolver only
//!   through an egress rule.
//!
//! Guests with `--network host` get every call delegated unchanged.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Network,
};
use wasmtime_wasi::p2::bindings::sockets::{
    ip_name_lookup, network, tcp, tcp_create_socket, udp, udp_create_socket,
};
use wasmtime_wasi::p2::{
    DynInputStream, DynOutputStream, DynPollable, Pollable, SocketError, SocketResult, TcpSocket,
    UdpSocket,
};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use super::fabric::PeerGuard;
use super::handover::Lease;
use super::namespace::{Namespace, PortGuard, Proto, reachable};
use super::policy::{NetGrant, NetMode, Route};

/// A guest store's network state: its grant, and what wrun knows of each
/// of its sockets. Dropping it (with the store) frees every port the
/// guest held, and gives back what its sockets took of the budget.
#[derive(Debug, Default)]
pub struct NetState {
    grant: NetGrant,
    sockets: HashMap<u32, SocketMeta>,
    budget: Option<Arc<dyn SocketBudget>>,
    /// The sockets counted against `budget`, by resource.
    counted: HashSet<u32>,
}

/// What a guest's sockets count against: its container's open-file limit
/// (`nofile`), as a process's sockets count against its own. Every guest
/// socket is a real descriptor of the process that runs it (on loopback,
/// when the network is virtual).
pub trait SocketBudget: Send + Sync + std::fmt::Debug {
    /// Counts a socket about to be made; false (and nothing counted) when
    /// the limit is reached.
    fn take(&self) -> bool;
    /// Counts a socket gone.
    fn give(&self);
}

impl NetState {
    pub fn new(grant: NetGrant) -> Self {
        Self {
            grant,
            sockets: HashMap::new(),
            budget: None,
            counted: HashSet::new(),
        }
    }

    /// Counts the guest's sockets against `budget`.
    pub fn with_budget(mut self, budget: Arc<dyn SocketBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// Takes one socket's worth of the budget, or answers
    /// `new-socket-limit` (EMFILE).
    fn take(&self) -> SocketResult<()> {
        match &self.budget {
            Some(b) if !b.take() => Err(ErrorCode::NewSocketLimit.into()),
            _ => Ok(()),
        }
    }

    fn give(&self) {
        if let Some(b) = &self.budget {
            b.give();
        }
    }

    /// Settles a socket's making: counted for good, or given back.
    fn made<T>(&mut self, made: SocketResult<Resource<T>>) -> SocketResult<Resource<T>> {
        match &made {
            Ok(r) => {
                self.counted.insert(r.rep());
            }
            Err(_) => self.give(),
        }
        made
    }

    /// Gives back what socket `rep` took, once it is gone.
    fn gone(&mut self, rep: u32) {
        self.sockets.remove(&rep);
        if self.counted.remove(&rep) {
            self.give();
        }
    }
}

impl Drop for NetState {
    fn drop(&mut self) {
        for _ in std::mem::take(&mut self.counted) {
            self.give();
        }
    }
}

/// The virtual side of one guest socket.
#[derive(Debug, Default)]
struct SocketMeta {
    /// The address `local-address` reports.
    local: Option<SocketAddr>,
    /// The address `remote-address` reports.
    remote: Option<SocketAddr>,
    /// The namespace port the socket is bound to.
    port: Option<PortGuard>,
    /// The entry that lets peers see this socket's virtual address.
    peer: Option<PeerGuard>,
    /// The host address of a published port, which this listener took
    /// over from the daemon; given back when the socket goes.
    lease: Option<Lease>,
}

/// Store data that can hand out the two halves of the shadow view.
pub trait NetView: Send {
    fn net_view(&mut self) -> NetCtxView<'_>;
}

/// wasmtime-wasi's socket view, plus the guest's network state.
pub struct NetCtxView<'a> {
    pub sockets: WasiSocketsCtxView<'a>,
    pub net: &'a mut NetState,
}

impl<'a> NetCtxView<'a> {
    /// The view of a store that holds a `WasiCtx` and its resource table.
    pub fn new(
        ctx: &'a mut wasmtime_wasi::WasiCtx,
        table: &'a mut wasmtime::component::ResourceTable,
        net: &'a mut NetState,
    ) -> Self {
        Self {
            sockets: WasiSocketsCtxView {
                ctx: ctx.sockets(),
                table,
            },
            net,
        }
    }
}

struct VirtualSockets;

impl HasData for VirtualSockets {
    type Data<'a> = NetCtxView<'a>;
}

/// Shadows wasmtime-wasi's socket interfaces in `linker`, which must hold
/// them already.
pub fn add_to_linker<T: NetView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    tcp::add_to_linker::<T, VirtualSockets>(linker, T::net_view)?;
    tcp_create_socket::add_to_linker::<T, VirtualSockets>(linker, T::net_view)?;
    udp::add_to_linker::<T, VirtualSockets>(linker, T::net_view)?;
    udp_create_socket::add_to_linker::<T, VirtualSockets>(linker, T::net_view)?;
    ip_name_lookup::add_to_linker::<T, VirtualSockets>(linker, T::net_view)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Another handle to the same resource, for a second delegated call.
fn again<T: 'static>(r: &Resource<T>) -> Resource<T> {
    Resource::new_borrow(r.rep())
}

fn loopback(family: IpAddressFamily) -> IpAddr {
    match family {
        IpAddressFamily::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddressFamily::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

impl NetCtxView<'_> {
    fn namespace(&self) -> Option<std::sync::Arc<Namespace>> {
        match &self.net.grant.mode {
            NetMode::Virtual(ns) => Some(ns.clone()),
            _ => None,
        }
    }

    fn meta(&mut self, rep: u32) -> &mut SocketMeta {
        self.net.sockets.entry(rep).or_default()
    }

    /// What a guest bind of `requested` becomes: checks the address and
    /// claims the port before the real bind of loopback port 0.
    fn claim(
        &mut self,
        ns: &std::sync::Arc<Namespace>,
        proto: Proto,
        family: IpAddressFamily,
        requested: SocketAddr,
    ) -> SocketResult<(SocketAddr, Option<PortGuard>)> {
        let ip = requested.ip();
        let own = ip == IpAddr::V4(ns.ip());
        if !(own || ip.is_unspecified() || ip.is_loopback()) {
            return Err(ErrorCode::AddressNotBindable.into());
        }
        let guard = match requested.port() {
            0 => None,
            p => Some(ns.reserve(proto, p).ok_or(ErrorCode::AddressInUse)?),
        };
        Ok((SocketAddr::new(loopback(family), 0), guard))
    }

    /// Records a finished bind: the port (claimed now for port 0), the
    /// address to report, and the peer entry.
    fn bound(
        &mut self,
        ns: &std::sync::Arc<Namespace>,
        proto: Proto,
        rep: u32,
        requested: SocketAddr,
        guard: Option<PortGuard>,
        real: SocketAddr,
    ) -> SocketResult<()> {
        let guard = match guard {
            Some(g) => g,
            None => ns
                .reserve_any(proto, real.port())
                .ok_or(ErrorCode::AddressInUse)?,
        };
        guard.set_real(real);
        let shown = SocketAddr::new(requested.ip(), guard.port());
        let virt = SocketAddr::new(IpAddr::V4(ns.ip()), guard.port());
        let peer = ns.fabric().add_peer(proto, real, virt);
        let meta = self.meta(rep);
        meta.local = Some(shown);
        meta.port = Some(guard);
        meta.peer = Some(peer);
        Ok(())
    }

    /// The real destination of a connect or send, or `connection-refused`.
    fn route(&self, proto: Proto, dest: SocketAddr) -> SocketResult<SocketAddr> {
        match self.net.grant.route(proto, dest) {
            Route::Real(a) => Ok(a),
            Route::Refused => Err(ErrorCode::ConnectionRefused.into()),
        }
    }

    /// The virtual address of a real peer: a guest's, else the gateway's
    /// (traffic from the host, through a published port).
    fn virtual_peer(&self, ns: &Namespace, proto: Proto, real: SocketAddr) -> SocketAddr {
        ns.fabric()
            .peer(proto, real)
            .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(ns.gateway()), real.port()))
    }

    /// What `local-address` reports for socket `rep`, whose real local
    /// address is `real`: the address it was bound to, or the namespace's
    /// IP with the real port.
    fn shown_local(&self, rep: u32, real: IpSocketAddress) -> IpSocketAddress {
        let Some(ns) = self.namespace() else {
            return real;
        };
        match self.net.sockets.get(&rep).and_then(|m| m.local) {
            Some(v) => v.into(),
            None => NetCtxView::virtual_local(&ns, real.into()).into(),
        }
    }

    /// The address to report for a connected or accepted socket whose
    /// real local address is `real`.
    fn virtual_local(ns: &Namespace, real: SocketAddr) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(ns.ip()), real.port())
    }
}

impl network::Host for NetCtxView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, err)
    }
}

impl network::HostNetwork for NetCtxView<'_> {
    fn drop(&mut self, this: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, this)
    }
}

impl tcp::Host for NetCtxView<'_> {}

impl tcp::HostTcpSocket for NetCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let Some(ns) = self.namespace() else {
            return self.sockets.start_bind(this, network, local_address).await;
        };
        let requested: SocketAddr = local_address.into();
        let family = self
            .sockets
            .address_family(again(&this))
            .map_err(SocketError::trap)?;
        let (real, guard) = self.claim(&ns, Proto::Tcp, family, requested)?;
        // A port published with -p: the guest's socket takes the host
        // address over, so its connections come straight to it.
        let lease = match &guard {
            Some(g) => {
                let v4 = family == IpAddressFamily::Ipv4;
                super::handover::take_offered(&ns, g.port(), v4).await
            }
            None => None,
        };
        let taken = match &lease {
            Some(l) => self
                .sockets
                .start_bind(again(&this), again(&network), l.addr().into())
                .await
                .is_ok(),
            None => false,
        };
        let lease = if taken {
            lease
        } else {
            // Not published, or the host address could not be bound:
            // loopback, with the daemon forwarding.
            drop(lease);
            self.sockets
                .start_bind(again(&this), network, real.into())
                .await?;
            None
        };
        let real: SocketAddr = self.sockets.local_address(again(&this))?.into();
        self.bound(
            &ns,
            Proto::Tcp,
            this.rep(),
            requested,
            guard,
            reachable(real),
        )?;
        self.meta(this.rep()).lease = lease;
        Ok(())
    }

    fn finish_bind(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.sockets.finish_bind(this)
    }

    fn start_connect(
        &mut self,
        this: Resource<TcpSocket>,
        network: Resource<Network>,
        remote_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let Some(ns) = self.namespace() else {
            return self.sockets.start_connect(this, network, remote_address);
        };
        let requested: SocketAddr = remote_address.into();
        let real = self.route(Proto::Tcp, requested)?;
        let rep = this.rep();
        if self.meta(rep).local.is_none() {
            // Bind before connecting, so the peer can be told who this is
            // before it accepts. The bind never waits (wrun's address
            // check answers at once), so one poll completes it.
            let family = self
                .sockets
                .address_family(again(&this))
                .map_err(SocketError::trap)?;
            let local = SocketAddr::new(loopback(family), 0);
            let polled = {
                let bind = self
                    .sockets
                    .start_bind(again(&this), again(&network), local.into());
                let mut bind = std::pin::pin!(bind);
                bind.as_mut().poll(&mut Context::from_waker(Waker::noop()))
            };
            match polled {
                Poll::Ready(r) => r?,
                Poll::Pending => return Err(ErrorCode::WouldBlock.into()),
            }
            self.sockets.finish_bind(again(&this))?;
            let real_local: SocketAddr = self.sockets.local_address(again(&this))?.into();
            let virt = NetCtxView::virtual_local(&ns, real_local);
            let peer = ns.fabric().add_peer(Proto::Tcp, real_local, virt);
            let meta = self.meta(rep);
            meta.local = Some(virt);
            meta.peer = Some(peer);
        }
        self.sockets.start_connect(this, network, real.into())?;
        self.meta(rep).remote = Some(requested);
        Ok(())
    }

    fn finish_connect(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(Resource<DynInputStream>, Resource<DynOutputStream>)> {
        self.sockets.finish_connect(this)
    }

    async fn start_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.sockets.start_listen(this).await
    }

    fn finish_listen(&mut self, this: Resource<TcpSocket>) -> SocketResult<()> {
        self.sockets.finish_listen(this)
    }

    fn accept(
        &mut self,
        this: Resource<TcpSocket>,
    ) -> SocketResult<(
        Resource<TcpSocket>,
        Resource<DynInputStream>,
        Resource<DynOutputStream>,
    )> {
        let listener = this.rep();
        // As accept(2) does at its limit: EMFILE, and the connection waits
        // in the backlog.
        self.net.take()?;
        let accepted = match self.sockets.accept(this) {
            Ok(a) => {
                self.net.counted.insert(a.0.rep());
                a
            }
            Err(e) => {
                self.net.give();
                return Err(e);
            }
        };
        if let Some(ns) = self.namespace() {
            let conn = &accepted.0;
            let real_remote: SocketAddr = self.sockets.remote_address(again(conn))?.into();
            let remote = self.virtual_peer(&ns, Proto::Tcp, real_remote);
            let local = self
                .net
                .sockets
                .get(&listener)
                .and_then(|m| m.port.as_ref())
                .map(|g| SocketAddr::new(IpAddr::V4(ns.ip()), g.port()));
            let meta = self.meta(conn.rep());
            meta.local = local;
            meta.remote = Some(remote);
        }
        Ok(accepted)
    }

    fn local_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = self.sockets.local_address(this)?;
        Ok(self.shown_local(rep, real))
    }

    fn remote_address(&mut self, this: Resource<TcpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = self.sockets.remote_address(this)?;
        let Some(ns) = self.namespace() else {
            return Ok(real);
        };
        Ok(match self.net.sockets.get(&rep).and_then(|m| m.remote) {
            Some(v) => v.into(),
            None => self.virtual_peer(&ns, Proto::Tcp, real.into()).into(),
        })
    }

    fn is_listening(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<bool> {
        self.sockets.is_listening(this)
    }

    fn address_family(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<IpAddressFamily> {
        self.sockets.address_family(this)
    }

    fn set_listen_backlog_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.sockets.set_listen_backlog_size(this, value)
    }

    fn keep_alive_enabled(&mut self, this: Resource<TcpSocket>) -> SocketResult<bool> {
        self.sockets.keep_alive_enabled(this)
    }

    fn set_keep_alive_enabled(
        &mut self,
        this: Resource<TcpSocket>,
        value: bool,
    ) -> SocketResult<()> {
        self.sockets.set_keep_alive_enabled(this, value)
    }

    fn keep_alive_idle_time(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.sockets.keep_alive_idle_time(this)
    }

    fn set_keep_alive_idle_time(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.sockets.set_keep_alive_idle_time(this, value)
    }

    fn keep_alive_interval(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.sockets.keep_alive_interval(this)
    }

    fn set_keep_alive_interval(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.sockets.set_keep_alive_interval(this, value)
    }

    fn keep_alive_count(&mut self, this: Resource<TcpSocket>) -> SocketResult<u32> {
        self.sockets.keep_alive_count(this)
    }

    fn set_keep_alive_count(&mut self, this: Resource<TcpSocket>, value: u32) -> SocketResult<()> {
        self.sockets.set_keep_alive_count(this, value)
    }

    fn hop_limit(&mut self, this: Resource<TcpSocket>) -> SocketResult<u8> {
        self.sockets.hop_limit(this)
    }

    fn set_hop_limit(&mut self, this: Resource<TcpSocket>, value: u8) -> SocketResult<()> {
        self.sockets.set_hop_limit(this, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.sockets.receive_buffer_size(this)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<TcpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.sockets.set_receive_buffer_size(this, value)
    }

    fn send_buffer_size(&mut self, this: Resource<TcpSocket>) -> SocketResult<u64> {
        self.sockets.send_buffer_size(this)
    }

    fn set_send_buffer_size(&mut self, this: Resource<TcpSocket>, value: u64) -> SocketResult<()> {
        self.sockets.set_send_buffer_size(this, value)
    }

    fn subscribe(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        tcp::HostTcpSocket::subscribe(&mut self.sockets, this)
    }

    fn shutdown(
        &mut self,
        this: Resource<TcpSocket>,
        shutdown_type: tcp::ShutdownType,
    ) -> SocketResult<()> {
        self.sockets.shutdown(this, shutdown_type)
    }

    fn drop(&mut self, this: Resource<TcpSocket>) -> wasmtime::Result<()> {
        // The real socket closes first: a host port it took over is free
        // by the time its lease hands it back.
        let rep = this.rep();
        let dropped = tcp::HostTcpSocket::drop(&mut self.sockets, this);
        self.net.gone(rep);
        dropped
    }
}

impl tcp_create_socket::Host for NetCtxView<'_> {
    fn create_tcp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<TcpSocket>> {
        self.net.take()?;
        let made = tcp_create_socket::Host::create_tcp_socket(&mut self.sockets, address_family);
        self.net.made(made)
    }
}

impl udp_create_socket::Host for NetCtxView<'_> {
    async fn create_udp_socket(
        &mut self,
        address_family: IpAddressFamily,
    ) -> SocketResult<Resource<UdpSocket>> {
        self.net.take()?;
        let made =
            udp_create_socket::Host::create_udp_socket(&mut self.sockets, address_family).await;
        self.net.made(made)
    }
}

impl udp::Host for NetCtxView<'_> {}

impl udp::HostUdpSocket for NetCtxView<'_> {
    async fn start_bind(
        &mut self,
        this: Resource<UdpSocket>,
        network: Resource<Network>,
        local_address: IpSocketAddress,
    ) -> SocketResult<()> {
        let Some(ns) = self.namespace() else {
            return self.sockets.start_bind(this, network, local_address).await;
        };
        let requested: SocketAddr = local_address.into();
        let family = self
            .sockets
            .address_family(again(&this))
            .map_err(SocketError::trap)?;
        let (real, guard) = self.claim(&ns, Proto::Udp, family, requested)?;
        self.sockets
            .start_bind(again(&this), network, real.into())
            .await?;
        let real: SocketAddr = self.sockets.local_address(again(&this))?.into();
        self.bound(&ns, Proto::Udp, this.rep(), requested, guard, real)
    }

    fn finish_bind(&mut self, this: Resource<UdpSocket>) -> SocketResult<()> {
        self.sockets.finish_bind(this)
    }

    async fn stream(
        &mut self,
        this: Resource<UdpSocket>,
        remote_address: Option<IpSocketAddress>,
    ) -> SocketResult<(
        Resource<udp::IncomingDatagramStream>,
        Resource<udp::OutgoingDatagramStream>,
    )> {
        if self.namespace().is_none() {
            return self.sockets.stream(this, remote_address).await;
        }
        let rep = this.rep();
        let requested: Option<SocketAddr> = remote_address.map(Into::into);
        let real = match requested {
            Some(r) => Some(self.route(Proto::Udp, r)?),
            None => None,
        };
        let streams = self.sockets.stream(this, real.map(Into::into)).await?;
        self.meta(rep).remote = requested;
        Ok(streams)
    }

    fn local_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = self.sockets.local_address(this)?;
        Ok(self.shown_local(rep, real))
    }

    fn remote_address(&mut self, this: Resource<UdpSocket>) -> SocketResult<IpSocketAddress> {
        let rep = this.rep();
        let real = self.sockets.remote_address(this)?;
        if self.namespace().is_none() {
            return Ok(real);
        }
        Ok(self
            .net
            .sockets
            .get(&rep)
            .and_then(|m| m.remote)
            .map(Into::into)
            .unwrap_or(real))
    }

    fn address_family(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<IpAddressFamily> {
        self.sockets.address_family(this)
    }

    fn unicast_hop_limit(&mut self, this: Resource<UdpSocket>) -> SocketResult<u8> {
        self.sockets.unicast_hop_limit(this)
    }

    fn set_unicast_hop_limit(&mut self, this: Resource<UdpSocket>, value: u8) -> SocketResult<()> {
        self.sockets.set_unicast_hop_limit(this, value)
    }

    fn receive_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.sockets.receive_buffer_size(this)
    }

    fn set_receive_buffer_size(
        &mut self,
        this: Resource<UdpSocket>,
        value: u64,
    ) -> SocketResult<()> {
        self.sockets.set_receive_buffer_size(this, value)
    }

    fn send_buffer_size(&mut self, this: Resource<UdpSocket>) -> SocketResult<u64> {
        self.sockets.send_buffer_size(this)
    }

    fn set_send_buffer_size(&mut self, this: Resource<UdpSocket>, value: u64) -> SocketResult<()> {
        self.sockets.set_send_buffer_size(this, value)
    }

    fn subscribe(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<Resource<DynPollable>> {
        udp::HostUdpSocket::subscribe(&mut self.sockets, this)
    }

    fn drop(&mut self, this: Resource<UdpSocket>) -> wasmtime::Result<()> {
        self.net.gone(this.rep());
        udp::HostUdpSocket::drop(&mut self.sockets, this)
    }
}

impl udp::HostIncomingDatagramStream for NetCtxView<'_> {
    fn receive(
        &mut self,
        this: Resource<udp::IncomingDatagramStream>,
        max_results: u64,
    ) -> SocketResult<Vec<udp::IncomingDatagram>> {
        let mut datagrams = self.sockets.receive(this, max_results)?;
        if let Some(ns) = self.namespace() {
            for d in &mut datagrams {
                let real: SocketAddr = d.remote_address.into();
                d.remote_address = self.virtual_peer(&ns, Proto::Udp, real).into();
            }
        }
        Ok(datagrams)
    }

    fn subscribe(
        &mut self,
        this: Resource<udp::IncomingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        udp::HostIncomingDatagramStream::subscribe(&mut self.sockets, this)
    }

    fn drop(&mut self, this: Resource<udp::IncomingDatagramStream>) -> wasmtime::Result<()> {
        udp::HostIncomingDatagramStream::drop(&mut self.sockets, this)
    }
}

impl udp::HostOutgoingDatagramStream for NetCtxView<'_> {
    fn check_send(&mut self, this: Resource<udp::OutgoingDatagramStream>) -> SocketResult<u64> {
        self.sockets.check_send(this)
    }

    fn send(
        &mut self,
        this: Resource<udp::OutgoingDatagramStream>,
        mut datagrams: Vec<udp::OutgoingDatagram>,
    ) -> SocketResult<u64> {
        if self.namespace().is_some() {
            for (i, d) in datagrams.iter_mut().enumerate() {
                let Some(to) = d.remote_address else { continue };
                match self.route(Proto::Udp, to.into()) {
                    Ok(real) => d.remote_address = Some(real.into()),
                    // As the WIT asks: once one datagram went out, report
                    // the count rather than the error.
                    Err(e) if i == 0 => return Err(e),
                    Err(_) => {
                        datagrams.truncate(i);
                        break;
                    }
                }
            }
        }
        self.sockets.send(this, datagrams)
    }

    fn subscribe(
        &mut self,
        this: Resource<udp::OutgoingDatagramStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        udp::HostOutgoingDatagramStream::subscribe(&mut self.sockets, this)
    }

    async fn drop(&mut self, this: Resource<udp::OutgoingDatagramStream>) -> wasmtime::Result<()> {
        udp::HostOutgoingDatagramStream::drop(&mut self.sockets, this).await
    }
}

/// The answer to a lookup of a virtual name, already known.
struct VirtualResolve(std::vec::IntoIter<IpAddr>);

#[async_trait::async_trait]
impl Pollable for VirtualResolve {
    async fn ready(&mut self) {}
}

type ResolveAddressStream = ip_name_lookup::ResolveAddressStream;

/// A lookup handle seen as wrun's own answer.
fn as_virtual(r: &Resource<ResolveAddressStream>) -> Resource<VirtualResolve> {
    Resource::new_borrow(r.rep())
}

impl ip_name_lookup::Host for NetCtxView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> SocketResult<Resource<ResolveAddressStream>> {
        if self.namespace().is_none() {
            return self.sockets.resolve_addresses(network, name);
        }
        // The network handle is the capability: check it as wasmtime-wasi
        // does.
        self.sockets.table.get(&network)?;
        if let Some(ips) = self.net.grant.lookup(&name) {
            let r = self.sockets.table.push(VirtualResolve(ips.into_iter()))?;
            return Ok(Resource::new_own(r.rep()));
        }
        if self.net.grant.may_resolve(&name) {
            // An ExternalName service's alias is resolved as its target.
            let name = self.net.grant.canonical(&name);
            return self.sockets.resolve_addresses(network, name);
        }
        Err(ErrorCode::NameUnresolvable.into())
    }
}

impl ip_name_lookup::HostResolveAddressStream for NetCtxView<'_> {
    fn resolve_next_address(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> SocketResult<Option<IpAddress>> {
        if let Ok(v) = self.sockets.table.get_mut(&as_virtual(&this)) {
            return Ok(v.0.next().map(Into::into));
        }
        self.sockets.resolve_next_address(this)
    }

    fn subscribe(
        &mut self,
        this: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        let v = as_virtual(&this);
        if self.sockets.table.get(&v).is_ok() {
            return wasmtime_wasi::p2::subscribe(self.sockets.table, v);
        }
        ip_name_lookup::HostResolveAddressStream::subscribe(&mut self.sockets, this)
    }

    fn drop(&mut self, this: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        let v: Resource<VirtualResolve> = Resource::new_own(this.rep());
        if self.sockets.table.get(&v).is_ok() {
            self.sockets.table.delete(v)?;
            return Ok(());
        }
        ip_name_lookup::HostResolveAddressStream::drop(&mut self.sockets, this)
    }
}
