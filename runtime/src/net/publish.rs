//! Published ports (`-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]`):
//! the daemon listens on the host and forwards each TCP connection to
//! whatever the guest has bound on the container port in its namespace;
//! UDP datagrams go through the relay sessions of [`super::relay`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::NetError;
use super::handover::Handover;
use super::namespace::{Namespace, Proto};

/// How long a connection that arrives before the guest has bound its port
/// is held, waiting for the bind, before it is closed.
const BIND_WAIT: Duration = Duration::from_secs(2);
/// How often a held connection looks for the bind.
const BIND_POLL: Duration = Duration::from_millis(10);

/// One `-p` mapping, as asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    /// `None`: every interface, as Docker's default.
    pub host_ip: Option<IpAddr>,
    /// 0: any free port.
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

impl PortSpec {
    /// Parses Docker's `[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]`.
    pub fn parse(spec: &str) -> Result<Self, NetError> {
        let bad = |message: String| NetError::BadPublish {
            spec: spec.to_string(),
            message,
        };
        let (addr, proto) = match spec.rsplit_once('/') {
            Some((a, "tcp")) => (a, Proto::Tcp),
            Some((a, "udp")) => (a, Proto::Udp),
            Some((_, p)) => return Err(bad(format!("unknown protocol {p:?}; use tcp or udp"))),
            None => (spec, Proto::Tcp),
        };
        let (rest, container) = match addr.rsplit_once(':') {
            Some((rest, c)) => (Some(rest), c),
            None => (None, addr),
        };
        let port = |s: &str, what: &str, zero_ok: bool| -> Result<u16, NetError> {
            s.parse::<u16>()
                .ok()
                .filter(|p| zero_ok || *p != 0)
                .ok_or_else(|| bad(format!("invalid {what} port {s:?}")))
        };
        let container_port = port(container, "container", false)?;
        let (host_ip, host_port) = match rest {
            None => (None, 0),
            Some(rest) => {
                let (ip, hp) = match rest.rsplit_once(':') {
                    Some((ip, hp)) => (Some(ip), hp),
                    None => (None, rest),
                };
                let host_port = if hp.is_empty() {
                    0
                } else {
                    port(hp, "host", true)?
                };
                let host_ip = match ip {
                    None | Some("") => None,
                    Some(ip) => {
                        let ip = ip.trim_start_matches('[').trim_end_matches(']');
                        Some(
                            ip.parse::<IpAddr>()
                                .map_err(|_| bad(format!("invalid host IP {ip:?}")))?,
                        )
                    }
                };
                (host_ip, host_port)
            }
        };
        Ok(Self {
            host_ip,
            host_port,
            container_port,
            proto,
        })
    }

    /// The host address to listen on.
    pub fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            self.host_port,
        )
    }
}

/// A port being published; dropping it closes the host listener.
#[derive(Debug)]
pub struct Published {
    pub spec: PortSpec,
    /// The address actually listened on (its port chosen when asked for 0).
    pub addr: SocketAddr,
    /// The accept (TCP) or relay (UDP) loop, which owns the host socket.
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Asks a UDP relay to pass on the answers the guest already sent, then
    /// end (a guest that answers and exits at once must still be heard).
    drain: Option<tokio_util::sync::CancellationToken>,
    /// The namespace the host listener is offered to, and the offer.
    offered: Option<(std::sync::Weak<Namespace>, Arc<Handover>)>,
}

/// How long a closing UDP relay may take to pass on what it holds.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(500);

impl Published {
    fn take_task(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Withdraws the host listener from the guests.
    fn withdraw(&self) {
        if let Some((weak, handover)) = &self.offered
            && let Some(ns) = weak.upgrade()
        {
            ns.withdraw(self.spec.container_port, handover);
        }
    }

    /// Stops listening and waits until the host port is closed, so a
    /// `start` right after a `stop` can bind it again: by the daemon, or
    /// by the guest that took it over (whose socket closes as its store
    /// goes).
    pub async fn close(&self) {
        self.withdraw();
        if let Some((_, handover)) = &self.offered {
            handover.wait_given_back(BIND_WAIT).await;
        }
        if let Some(mut task) = self.take_task() {
            if let Some(drain) = &self.drain {
                drain.cancel();
                if tokio::time::timeout(DRAIN, &mut task).await.is_ok() {
                    return;
                }
            }
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        self.withdraw();
        // Without `close`, the port is released when the runtime next
        // polls the aborted task.
        if let Some(task) = self.take_task() {
            task.abort();
        }
    }
}

/// Listens on the host for `spec` and forwards into `ns`. Must be called
/// inside a tokio runtime. A host port in use is an error here, so `start`
/// reports it.
pub fn publish(ns: &Arc<Namespace>, spec: PortSpec) -> Result<Published, NetError> {
    let want = spec.listen_addr();
    let bind_err = |source| NetError::Bind { addr: want, source };
    if spec.proto == Proto::Udp {
        let std_socket = std::net::UdpSocket::bind(want).map_err(bind_err)?;
        std_socket.set_nonblocking(true).map_err(bind_err)?;
        let socket = tokio::net::UdpSocket::from_std(std_socket).map_err(bind_err)?;
        let addr = socket.local_addr().map_err(bind_err)?;
        let drain = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(super::relay::relay(
            socket,
            Arc::downgrade(ns),
            spec.container_port,
            drain.clone(),
        ));
        return Ok(Published {
            spec,
            addr,
            task: std::sync::Mutex::new(Some(task)),
            drain: Some(drain),
            offered: None,
        });
    }
    let std_listener = std::net::TcpListener::bind(want).map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let listener = tokio::net::TcpListener::from_std(std_listener).map_err(bind_err)?;
    let addr = listener.local_addr().map_err(bind_err)?;
    let port = spec.container_port;
    // The guest that binds the container port takes the host listener over.
    let handover = Handover::new(addr);
    ns.offer(port, handover.clone());
    // The task holds the namespace weakly: a published port must not keep
    // a stopped container's namespace alive.
    let weak = Arc::downgrade(ns);
    let task = tokio::spawn(accept_loop(listener, weak.clone(), port, handover.clone()));
    Ok(Published {
        spec,
        addr,
        task: std::sync::Mutex::new(Some(task)),
        drain: None,
        offered: Some((weak, handover)),
    })
}

/// Accepts on the host listener and forwards each connection, until a
/// guest takes the port over; listens again once the guest gives it back.
async fn accept_loop(
    mut listener: tokio::net::TcpListener,
    weak: std::sync::Weak<Namespace>,
    port: u16,
    handover: Arc<Handover>,
) {
    let addr = handover.addr();
    let serve = |conn: tokio::net::TcpStream, from: SocketAddr| {
        let Some(ns) = weak.upgrade() else {
            return false;
        };
        tokio::spawn(async move {
            if let Err(e) = forward(ns, port, conn).await {
                tracing::debug!(%from, port, error = %e, "forward ended");
            }
        });
        true
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => Some(a),
            () = handover.asked() => None,
        };
        match accepted {
            Some(Ok((conn, from))) => {
                if !serve(conn, from) {
                    return;
                }
                continue;
            }
            Some(Err(e)) => {
                tracing::debug!(%addr, error = %e, "accept failed");
                tokio::time::sleep(BIND_POLL).await;
                continue;
            }
            None => {}
        }
        // A guest asks for the port: the connections already waiting are
        // forwarded, then the listener closes and the guest binds the
        // address.
        if let Ok(std_listener) = listener.into_std() {
            while let Ok((conn, from)) = std_listener.accept() {
                let conn = conn
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::TcpStream::from_std(conn));
                if let Ok(conn) = conn {
                    serve(conn, from);
                }
            }
        }
        if handover.released() {
            handover.returned().await;
        }
        listener = match listen_again(addr).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(%addr, port, error = %e, "cannot listen again on a published port the guest gave back");
                return;
            }
        };
        handover.resumed();
    }
}

/// Binds `addr` again once a guest's listener on it is closed, which the
/// guest's runtime may finish a moment after the socket is dropped.
async fn listen_again(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let deadline = Instant::now() + BIND_WAIT;
    loop {
        let bound = std::net::TcpListener::bind(addr).and_then(|l| {
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        });
        match bound {
            Ok(l) => return Ok(l),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(BIND_POLL).await,
        }
    }
}

/// Carries one host connection to the guest's port `port`, waiting
/// briefly for the guest to bind it.
async fn forward(
    ns: Arc<Namespace>,
    port: u16,
    mut conn: tokio::net::TcpStream,
) -> std::io::Result<()> {
    let deadline = Instant::now() + BIND_WAIT;
    let real = loop {
        if let Some(real) = ns.lookup(Proto::Tcp, port) {
            break real;
        }
        if Instant::now() >= deadline {
            // Closing the connection is the refusal.
            return Ok(());
        }
        tokio::time::sleep(BIND_POLL).await;
    };
    drop(ns);
    let _ = conn.set_nodelay(true);
    let mut upstream = tokio::net::TcpStream::connect(real).await?;
    let _ = upstream.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_port_specs() {
        let p = PortSpec::parse("8080:80").expect("valid in this test");
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 8080, 80));
        let p = PortSpec::parse("127.0.0.1:8080:80/tcp").expect("valid in this test");
        assert_eq!(
            p.host_ip,
            Some("127.0.0.1".parse().expect("valid in this test"))
        );
        let p = PortSpec::parse("80").expect("valid in this test");
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortSpec::parse("127.0.0.1::80").expect("valid in this test");
        assert_eq!((p.host_port, p.container_port), (0, 80));
        let p = PortSpec::parse("[::1]:8080:80").expect("valid in this test");
        assert_eq!(p.host_ip, Some("::1".parse().expect("valid in this test")));
        let p = PortSpec::parse("5353:53/udp").expect("valid in this test");
        assert_eq!(
            (p.host_port, p.container_port, p.proto),
            (5353, 53, Proto::Udp)
        );
        for bad in [
            "",
            "x",
            "8080:0",
            "8080:80/sctp",
            "1.2.3:80:80",
            "99999:80",
            "53:0/udp",
        ] {
            let e = PortSpec::parse(bad)
                .expect_err("must be refused")
                .to_string();
            assert!(e.starts_with(&format!("{bad:?}")), "{bad}: {e}");
        }
    }
}
