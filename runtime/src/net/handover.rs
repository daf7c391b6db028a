//! Handing a published port's host listener to the guest that serves it.
//!
//! A published TCP port (`-p`) starts as the daemon's listener, which holds
//! connections until the guest binds the container port and then forwards
//! them to it ([`super::publish`]). When the guest binds that port, it takes
//! the host port over: the daemon stops accepting (connections already
//! waiting are still forwarded), closes its listener, and the guest's socket
//! is bound to the host address itself. Its connections then reach the guest
//! with no copy through the daemon. When the guest's socket goes, the daemon
//! listens again.
//!
//! The two sides meet here: [`Handover::take`] is the guest's bind,
//! [`Handover::asked`], [`Handover::released`] and [`Handover::returned`]
//! the daemon's accept loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Namespace;

/// How long a guest's bind waits for the daemon's listener to close. Past
/// it, the bind goes ahead on loopback and the daemon keeps forwarding.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// Who holds the host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    /// The daemon listens and forwards.
    Daemon,
    /// A guest's bind asked for it; the daemon is closing its listener.
    Asked,
    /// The daemon's listener is closed: the guest may bind the address.
    Guest,
    /// The guest's socket is gone: the daemon may listen again.
    Returned,
}

/// One published TCP port that a guest's bind may take over.
#[derive(Debug)]
pub struct Handover {
    /// The host address the port is published on.
    addr: SocketAddr,
    holder: watch::Sender<Holder>,
}

impl Handover {
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Arc::new(Self {
            addr,
            holder: watch::Sender::new(Holder::Daemon),
        })
    }

    /// The host address the port is published on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Moves from `from` to `to`; false when the holder was not `from`.
    fn step(&self, from: Holder, to: Holder) -> bool {
        self.holder.send_if_modified(|h| {
            if *h == from {
                *h = to;
                true
            } else {
                false
            }
        })
    }

    /// The guest's side: asks the daemon to close its listener and waits
    /// for that. `None` when the port is not the daemon's to give (another
    /// guest holds it, or is giving it back), or the daemon did not let go
    /// in time (it keeps forwarding then). The lease gives the port back
    /// when dropped.
    pub async fn take(self: &Arc<Self>) -> Option<Lease> {
        if !self.step(Holder::Daemon, Holder::Asked) {
            return None;
        }
        let granted = {
            let mut rx = self.holder.subscribe();
            let answer =
                tokio::time::timeout(RELEASE_WAIT, rx.wait_for(|h| *h != Holder::Asked)).await;
            matches!(answer, Ok(Ok(h)) if *h == Holder::Guest)
        };
        // Withdrawn unless the daemon let go in the meantime.
        if granted || !self.step(Holder::Asked, Holder::Daemon) {
            return (*self.holder.borrow() == Holder::Guest).then(|| Lease {
                handover: self.clone(),
            });
        }
        None
    }

    /// The daemon's side: resolves when a guest asks for the port.
    pub async fn asked(&self) {
        let mut rx = self.holder.subscribe();
        let _ = rx.wait_for(|h| *h == Holder::Asked).await;
    }

    /// The daemon's side: its listener is closed, and the guest may bind.
    /// False when the guest no longer waits: the daemon listens again.
    pub fn released(&self) -> bool {
        self.step(Holder::Asked, Holder::Guest)
    }

    /// The daemon's side: resolves when the guest's socket is gone.
    pub async fn returned(&self) {
        let mut rx = self.holder.subscribe();
        let _ = rx.wait_for(|h| *h == Holder::Returned).await;
    }

    /// The daemon's side: it listens again.
    pub fn resumed(&self) {
        self.step(Holder::Returned, Holder::Daemon);
    }

    /// Whether a guest holds the port now (or is being given it).
    #[cfg(test)]
    fn is_guests(&self) -> bool {
        matches!(*self.holder.borrow(), Holder::Asked | Holder::Guest)
    }

    /// Waits, at most `limit`, until no guest holds the port.
    pub async fn wait_given_back(&self, limit: Duration) {
        let mut rx = self.holder.subscribe();
        let _ = tokio::time::timeout(
            limit,
            rx.wait_for(|h| matches!(h, Holder::Daemon | Holder::Returned)),
        )
        .await;
    }
}

/// The host address of a port published to the container port `port` of
/// `ns`, taken over from the daemon, if one is offered in the family asked
/// for (IPv4 when `v4`).
pub async fn take_offered(ns: &Namespace, port: u16, v4: bool) -> Option<Lease> {
    for offer in ns.offers(port) {
        if offer.addr().is_ipv4() == v4
            && let Some(lease) = offer.take().await
        {
            return Some(lease);
        }
    }
    None
}

/// A guest's hold on a published host port; dropping it gives the port
/// back to the daemon. Drop it only once the guest's socket is closed.
#[derive(Debug)]
pub struct Lease {
    handover: Arc<Handover>,
}

impl Lease {
    /// The host address to bind.
    pub fn addr(&self) -> SocketAddr {
        self.handover.addr
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.handover.step(Holder::Guest, Holder::Returned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_port_goes_to_one_guest_and_back() {
        let h = Handover::new("127.0.0.1:1".parse().expect("addr"));
        let daemon = {
            let h = h.clone();
            tokio::spawn(async move {
                h.asked().await;
                assert!(h.released());
                h.returned().await;
                h.resumed();
            })
        };
        let lease = h.take().await.expect("the daemon lets go");
        assert!(h.is_guests());
        assert!(h.take().await.is_none(), "a second guest takes it too");
        drop(lease);
        daemon.await.expect("daemon side");
        assert!(!h.is_guests());
    }

    #[tokio::test]
    async fn a_daemon_that_does_not_let_go_keeps_the_port() {
        let h = Handover::new("127.0.0.1:1".parse().expect("addr"));
        assert!(h.take().await.is_none());
        assert!(!h.is_guests());
    }
}
