//! A published UDP port (`-p HOST:CONTAINER/udp`). UDP has no connections
//! to forward, so the daemon keeps a session per client: a socket of its own
//! on 127.0.0.1, connected to the real socket behind the guest's port. The
//! guest sees each client as the gateway at that session's port, and its
//! answers there go back to the client from the published port.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::namespace::{Namespace, Proto, RelayGuard};

/// A session with no datagram either way for this long is closed.
const IDLE: Duration = Duration::from_secs(30);
/// Clients served at once; datagrams from more are dropped, as a full
/// conntrack table drops them.
const MAX_SESSIONS: usize = 1024;
/// The largest UDP payload.
const MAX_DATAGRAM: usize = 65_535;
/// How long a closing session still passes on the guest's answers.
const LINGER: Duration = Duration::from_millis(100);

/// One client's session.
struct Session {
    id: u64,
    socket: Arc<UdpSocket>,
    /// The guest's real socket the session is connected to.
    real: SocketAddr,
    /// Milliseconds after `epoch` of the last datagram either way.
    last: Arc<AtomicU64>,
    _relay: RelayGuard,
}

/// Relays datagrams between clients of `host` and the guest's UDP `port`
/// in `ns` until the task is aborted, which closes every session, or
/// `drain` fires: then each session passes on the answers the guest has
/// already sent, and the relay ends.
pub(super) async fn relay(
    host: UdpSocket,
    ns: Weak<Namespace>,
    port: u16,
    drain: tokio_util::sync::CancellationToken,
) {
    let host = Arc::new(host);
    let epoch = Instant::now();
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut answers = JoinSet::new();
    let (ended_tx, mut ended) = mpsc::unbounded_channel::<(SocketAddr, u64)>();
    let mut next_id = 0u64;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, client) = tokio::select! {
            _ = drain.cancelled() => {
                while answers.join_next().await.is_some() {}
                return;
            }
            Some((client, id)) = ended.recv() => {
                if sessions.get(&client).is_some_and(|s| s.id == id) {
                    sessions.remove(&client);
                }
                continue;
            }
            got = host.recv_from(&mut buf) => match got {
                Ok(got) => got,
                Err(e) => {
                    tracing::debug!(port, error = %e, "udp relay: receive failed");
                    continue;
                }
            },
        };
        while answers.try_join_next().is_some() {}
        let Some(ns) = ns.upgrade() else { return };
        // Before the guest binds the port, a datagram is dropped, as one
        // to a closed port would be.
        let Some(real) = ns.lookup(Proto::Udp, port) else {
            continue;
        };
        // A guest that bound the port anew (a restart) gets a new session.
        if sessions.get(&client).is_some_and(|s| s.real != real) {
            sessions.remove(&client);
        }
        if !sessions.contains_key(&client) {
            if sessions.len() >= MAX_SESSIONS {
                continue;
            }
            let socket = match open(real).await {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::debug!(port, %client, error = %e, "udp relay: no session socket");
                    continue;
                }
            };
            let local = match socket.local_addr() {
                Ok(a) => a,
                Err(_) => continue,
            };
            next_id += 1;
            let last = Arc::new(AtomicU64::new(0));
            answers.spawn(answer(
                socket.clone(),
                host.clone(),
                client,
                Activity {
                    last: last.clone(),
                    epoch,
                },
                (ended_tx.clone(), next_id),
                drain.clone(),
            ));
            sessions.insert(
                client,
                Session {
                    id: next_id,
                    socket,
                    real,
                    last,
                    _relay: ns.add_relay(local.port()),
                },
            );
        }
        drop(ns);
        if let Some(s) = sessions.get(&client) {
            s.last.store(millis_since(epoch), Ordering::Relaxed);
            if let Err(e) = s.socket.send(&buf[..n]).await {
                tracing::debug!(port, %client, error = %e, "udp relay: send to the guest failed");
            }
        }
    }
}

/// A session socket on 127.0.0.1, connected to the guest's.
async fn open(real: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    socket.connect(real).await?;
    Ok(socket)
}

/// When a session last carried a datagram.
struct Activity {
    last: Arc<AtomicU64>,
    epoch: Instant,
}

fn millis_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Carries the guest's answers on one session back to its client, until
/// the session is idle or its socket fails (the guest's port closed).
async fn answer(
    socket: Arc<UdpSocket>,
    host: Arc<UdpSocket>,
    client: SocketAddr,
    activity: Activity,
    (ended, id): (mpsc::UnboundedSender<(SocketAddr, u64)>, u64),
    drain: tokio_util::sync::CancellationToken,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let got = tokio::select! {
            r = tokio::time::timeout(IDLE, socket.recv(&mut buf)) => r,
            _ = drain.cancelled() => {
                // What the guest sent as it ended may still be on its way
                // through the loopback: pass on what comes within a
                // moment, as a closing socket lingers.
                while let Ok(Ok(n)) = tokio::time::timeout(LINGER, socket.recv(&mut buf)).await {
                    let _ = host.send_to(&buf[..n], client).await;
                }
                break;
            }
        };
        match got {
            Ok(Ok(n)) => {
                activity
                    .last
                    .store(millis_since(activity.epoch), Ordering::Relaxed);
                let _ = host.send_to(&buf[..n], client).await;
            }
            Ok(Err(_)) => break,
            Err(_) => {
                let quiet = millis_since(activity.epoch)
                    .saturating_sub(activity.last.load(Ordering::Relaxed));
                if u128::from(quiet) >= IDLE.as_millis() {
                    break;
                }
            }
        }
    }
    let _ = ended.send((client, id));
}
