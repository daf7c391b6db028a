//! The one piece of forwarding code for every service type. A listener on
//! 127.0.0.1 accepts a connection, its port picks an endpoint, the
//! endpoint is found as a real socket through the fabric, and the bytes
//! are copied both ways and counted. ClusterIP traffic arrives on a
//! listener of the proxy's own (where the guest's connect was routed) and
//! the endpoint sees the client pod's address; NodePort and LoadBalancer
//! traffic arrives from the host, and the endpoint sees its network's
//! gateway, as with `-p`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};

use super::Endpoint;
use super::balance::{Backend, Port};
use crate::net::fabric::{Fabric, PeerGuard};
use crate::net::namespace::Proto;

/// How long the accept loop rests after a failed accept (out of
/// descriptors, say) before it tries again.
const ACCEPT_PAUSE: Duration = Duration::from_millis(10);

/// Connections waiting to be accepted, per listener (tokio's default).
const BACKLOG: u32 = 1024;

/// Where a listener's connections come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Guests that connected to a ClusterIP: the endpoint sees the client
    /// pod's address, and affinity follows it.
    Cluster,
    /// The host (a NodePort or a LoadBalancer port): the endpoint sees
    /// the gateway.
    Host,
}

/// A listening socket and its accept loop; dropping it stops the loop,
/// which closes the socket. Connections already accepted go on.
#[derive(Debug)]
pub(super) struct Listener {
    pub(super) addr: SocketAddr,
    /// The port it serves now; a listener can be handed to another port
    /// of its service without closing.
    target: Arc<Mutex<Arc<Port>>>,
    task: tokio::task::JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Listener {
    /// Listens on `addr` (127.0.0.1, port 0 for any) for `port`. Needs a
    /// tokio runtime; without one it is an error, not a panic.
    pub(super) fn bind(
        fabric: Weak<Fabric>,
        port: Arc<Port>,
        addr: SocketAddr,
        side: Side,
    ) -> io::Result<Self> {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| io::Error::other(format!("no async runtime: {e}")))?;
        let _entered = handle.enter();
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        // So that a port whose last connections linger in TIME_WAIT can
        // be listened on again at once (a service deleted and created
        // again). Not on Windows, where it would let two sockets share
        // the port.
        #[cfg(not(windows))]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        let listener = socket.listen(BACKLOG)?;
        let addr = listener.local_addr()?;
        let target = Arc::new(Mutex::new(port));
        let task = handle.spawn(accept_loop(listener, fabric, target.clone(), side));
        Ok(Self { addr, target, task })
    }

    pub(super) fn serves(&self, port: &Arc<Port>) -> bool {
        Arc::ptr_eq(&lock(&self.target), port)
    }

    pub(super) fn retarget(&self, port: &Arc<Port>) {
        *lock(&self.target) = port.clone();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // The socket closes when the runtime next polls the aborted task.
        self.task.abort();
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    fabric: Weak<Fabric>,
    target: Arc<Mutex<Arc<Port>>>,
    side: Side,
) {
    loop {
        let (conn, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "service proxy: accept failed");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let (client, show_as) = match side {
            Side::Host => (Some(from.ip()), None),
            Side::Cluster => {
                let guest = fabric
                    .upgrade()
                    .and_then(|f| f.peer(Proto::Tcp, from))
                    .map(|a| a.ip());
                (guest, guest)
            }
        };
        let port = lock(&target).clone();
        tokio::spawn(serve(fabric.clone(), port, conn, client, show_as));
    }
}

/// Carries one accepted connection to an endpoint of `port`: the one
/// picked first, else the next that can be reached. When none can,
/// closing the connection is the refusal.
async fn serve(
    fabric: Weak<Fabric>,
    port: Arc<Port>,
    mut conn: TcpStream,
    client: Option<IpAddr>,
    show_as: Option<IpAddr>,
) {
    let _ = conn.set_nodelay(true);
    for backend in port.pick(client) {
        let guard = port.begin(&backend);
        let Some(fabric) = fabric.upgrade() else {
            return;
        };
        let Some(real) = real_addr(&fabric, backend.ep) else {
            continue;
        };
        let (upstream, peer) = match dial(&fabric, real, show_as).await {
            Ok(d) => d,
            Err(e) => {
                tracing::debug!(endpoint = %real, error = %e, "service proxy: endpoint unreachable");
                continue;
            }
        };
        drop(fabric);
        guard.established();
        port.stick(client, backend.ep);
        let _ = upstream.set_nodelay(true);
        let mut counted = Counted {
            inner: upstream,
            backend: guard.backend(),
        };
        if let Err(e) = tokio::io::copy_bidirectional(&mut conn, &mut counted).await {
            tracing::debug!(endpoint = %real, error = %e, "service proxy: connection ended");
        }
        drop(peer);
        return;
    }
}

/// The real socket behind an endpoint: the port a pod's guest bound in
/// its namespace, or a loopback address as it is (the API server behind
/// the `kubernetes` service). Any other address is not dialled: virtual
/// addresses exist only inside wrun.
pub(super) fn real_addr(fabric: &Fabric, ep: Endpoint) -> Option<SocketAddr> {
    if let IpAddr::V4(v4) = ep.ip
        && let Some(ns) = fabric.namespace_at(v4)
    {
        return ns.lookup(Proto::Tcp, ep.port);
    }
    ep.ip
        .is_loopback()
        .then_some(SocketAddr::new(ep.ip, ep.port))
}

/// Connects to `real`. With `show_as`, the connection's local socket is
/// first entered in the peer map as that address, so the endpoint sees
/// the client pod rather than the gateway.
async fn dial(
    fabric: &Arc<Fabric>,
    real: SocketAddr,
    show_as: Option<IpAddr>,
) -> io::Result<(TcpStream, Option<PeerGuard>)> {
    let Some(vip) = show_as else {
        return Ok((TcpStream::connect(real).await?, None));
    };
    let (socket, any) = match real {
        SocketAddr::V4(_) => (
            TcpSocket::new_v4()?,
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ),
        SocketAddr::V6(_) => (
            TcpSocket::new_v6()?,
            SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
        ),
    };
    socket.bind(any)?;
    let local = socket.local_addr()?;
    let peer = fabric.add_peer(Proto::Tcp, local, SocketAddr::new(vip, local.port()));
    let stream = socket.connect(real).await?;
    Ok((stream, Some(peer)))
}

/// The endpoint's side of a connection, counting its bytes.
struct Counted<'a> {
    inner: TcpStream,
    backend: &'a Backend,
}

impl AsyncRead for Counted<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len().saturating_sub(before) as u64;
            self.backend.bytes_out.fetch_add(n, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.backend.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.backend.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
