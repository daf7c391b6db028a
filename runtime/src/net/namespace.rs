//! A virtual network namespace: one virtual IP and a TCP and a UDP port
//! table mapping the ports guests bound to the real loopback sockets that
//! back them. Several containers may share one (a pod).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use super::fabric::Fabric;
use super::handover::Handover;

/// A transport protocol with its own port space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// The address peers in wrun dial for a socket bound at `real`: one bound
/// on every interface (a listener that took a published port over) is
/// reached on loopback.
pub fn reachable(real: SocketAddr) -> SocketAddr {
    match real.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), real.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), real.port())
        }
        _ => real,
    }
}

/// The first port handed out for a bind of port 0 when the real port is
/// already taken in the namespace (the IANA dynamic range).
const EPHEMERAL_START: u16 = 49152;

/// Virtual port → the real socket address behind it; `None` while the
/// real bind is still under way.
type PortTable = BTreeMap<u16, Option<SocketAddr>>;

pub struct Namespace {
    fabric: Arc<Fabric>,
    ip: Ipv4Addr,
    gateway: Ipv4Addr,
    network: String,
    /// The container (or pod) that owns the namespace.
    owner: String,
    /// A pod's Kubernetes namespace: service names resolve from it, and
    /// Services' ClusterIPs are reachable.
    kube_namespace: Option<String>,
    /// The names that resolve to the namespace from inside it (the
    /// container's name and short ID) and, on a user-defined network,
    /// from its other members.
    names: Mutex<Vec<String>>,
    tcp: Mutex<PortTable>,
    udp: Mutex<PortTable>,
    /// Real loopback ports of the daemon's UDP relays for published ports:
    /// their datagrams reach guests from the gateway at the same port, and
    /// guests may answer there.
    relays: Mutex<BTreeSet<u16>>,
    /// Published TCP ports, by container port, whose host listener a
    /// guest's bind of that port takes over.
    handovers: Mutex<BTreeMap<u16, Vec<Arc<Handover>>>>,
    /// Counts changes to which ports have a real socket behind them, for
    /// those waiting for a port to be bound (a pod's readiness).
    bound: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Namespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Namespace")
            .field("ip", &self.ip)
            .field("network", &self.network)
            .field("owner", &self.owner)
            .field("kube_namespace", &self.kube_namespace)
            .finish_non_exhaustive()
    }
}

impl Namespace {
    pub(super) fn new(
        fabric: Arc<Fabric>,
        ip: Ipv4Addr,
        gateway: Ipv4Addr,
        network: String,
        owner: String,
        names: Vec<String>,
        kube_namespace: Option<String>,
    ) -> Self {
        Self {
            fabric,
            ip,
            gateway,
            network,
            owner,
            kube_namespace,
            names: Mutex::new(names),
            tcp: Mutex::default(),
            udp: Mutex::default(),
            relays: Mutex::default(),
            handovers: Mutex::default(),
            bound: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Changes whenever a port gets its real socket or is freed.
    pub fn watch_ports(&self) -> tokio::sync::watch::Receiver<u64> {
        self.bound.subscribe()
    }

    fn ports_changed(&self) {
        self.bound.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// The namespace's virtual IP.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// The address guests see as the peer of traffic from the host.
    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn fabric(&self) -> &Arc<Fabric> {
        &self.fabric
    }

    /// The Kubernetes namespace of the pod that owns the namespace; `None`
    /// for a container's.
    pub fn kube_namespace(&self) -> Option<&str> {
        self.kube_namespace.as_deref()
    }

    /// The names the namespace answers to.
    pub fn names(&self) -> Vec<String> {
        self.names.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether `name` (lower case, no trailing dot) is one of its names.
    pub fn answers_to(&self, name: &str) -> bool {
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }

    /// Replaces the name `old` with `new` (a container renamed while it
    /// runs), here and in its network's resolver.
    pub fn rename(&self, old: &str, new: &str) {
        {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            names.retain(|n| !n.eq_ignore_ascii_case(old));
            names.push(new.to_string());
        }
        self.fabric.rename(&self.network, self.ip, old, new);
    }

    fn table(&self, proto: Proto) -> MutexGuard<'_, PortTable> {
        let m = match proto {
            Proto::Tcp => &self.tcp,
            Proto::Udp => &self.udp,
        };
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Claims `port`; `None` when something in the namespace holds it
    /// already (the guest sees `AddrInUse`).
    pub fn reserve(self: &Arc<Self>, proto: Proto, port: u16) -> Option<PortGuard> {
        let mut table = self.table(proto);
        if port == 0 || table.contains_key(&port) {
            return None;
        }
        table.insert(port, None);
        Some(PortGuard {
            ns: self.clone(),
            proto,
            port,
        })
    }

    /// Claims a port for a bind of port 0: the real port the kernel chose
    /// when it is free here, else the first free dynamic port.
    pub fn reserve_any(self: &Arc<Self>, proto: Proto, preferred: u16) -> Option<PortGuard> {
        let port = {
            let table = self.table(proto);
            std::iter::once(preferred)
                .chain(EPHEMERAL_START..=u16::MAX)
                .find(|p| *p != 0 && !table.contains_key(p))?
        };
        self.reserve(proto, port)
    }

    /// The real address behind a bound port.
    pub fn lookup(&self, proto: Proto, port: u16) -> Option<SocketAddr> {
        self.table(proto).get(&port).copied().flatten()
    }

    /// Lets guests answer datagrams that the relay on the real loopback
    /// `port` brings them from the gateway, until the guard is dropped.
    pub fn add_relay(self: &Arc<Self>, port: u16) -> RelayGuard {
        self.relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(port);
        RelayGuard {
            ns: self.clone(),
            port,
        }
    }

    /// Offers the host listener of a port published to the container port
    /// `port` to the guest that binds it.
    pub fn offer(&self, port: u16, handover: Arc<Handover>) {
        self.handovers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(port)
            .or_default()
            .push(handover);
    }

    /// Withdraws an offer made with [`Namespace::offer`].
    pub fn withdraw(&self, port: u16, handover: &Arc<Handover>) {
        let mut all = self.handovers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = all.get_mut(&port) {
            list.retain(|h| !Arc::ptr_eq(h, handover));
            if list.is_empty() {
                all.remove(&port);
            }
        }
    }

    /// The host listeners offered for the container port `port`.
    pub fn offers(&self, port: u16) -> Vec<Arc<Handover>> {
        self.handovers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&port)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether the gateway's UDP `port` is one of the daemon's relays.
    pub fn is_relay(&self, port: u16) -> bool {
        self.relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&port)
    }

    /// The bound ports, in order: those with a real socket behind them, so
    /// a port whose bind is still under way (and whose traffic would still
    /// be dropped or refused) is not listed yet.
    pub fn ports(&self, proto: Proto) -> Vec<u16> {
        self.table(proto)
            .iter()
            .filter(|(_, real)| real.is_some())
            .map(|(port, _)| *port)
            .collect()
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.fabric.release(self.ip, &self.network);
    }
}

/// Ownership of one port-table entry; dropping it frees the port.
pub struct PortGuard {
    ns: Arc<Namespace>,
    proto: Proto,
    port: u16,
}

impl std::fmt::Debug for PortGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PortGuard({}/{})", self.port, self.proto.name())
    }
}

impl PortGuard {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Records the real socket that now backs the port.
    pub fn set_real(&self, real: SocketAddr) {
        self.ns.table(self.proto).insert(self.port, Some(real));
        self.ns.ports_changed();
    }
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        self.ns.table(self.proto).remove(&self.port);
        self.ns.ports_changed();
    }
}

/// A relay's entry in its namespace; dropping it removes the entry.
pub struct RelayGuard {
    ns: Arc<Namespace>,
    port: u16,
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.ns
            .relays
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_claimed_once_and_freed_on_drop() {
        let fabric = Fabric::with_bridge(
            super::super::DEFAULT_SUBNET
                .parse()
                .expect("valid in this test"),
        );
        let ns = fabric
            .join(super::super::BRIDGE, "c1", &[])
            .expect("valid in this test");
        let g = ns.reserve(Proto::Tcp, 8080).expect("valid in this test");
        assert!(
            ns.reserve(Proto::Tcp, 8080).is_none(),
            "second bind of 8080"
        );
        assert!(
            ns.reserve(Proto::Udp, 8080).is_some(),
            "udp has its own ports"
        );
        assert_eq!(ns.lookup(Proto::Tcp, 8080), None, "not backed yet");
        assert!(
            ns.ports(Proto::Tcp).is_empty(),
            "not listed before it is backed"
        );
        g.set_real("127.0.0.1:40000".parse().expect("valid in this test"));
        assert_eq!(
            ns.lookup(Proto::Tcp, 8080),
            Some("127.0.0.1:40000".parse().expect("valid in this test"))
        );
        assert_eq!(ns.ports(Proto::Tcp), vec![8080]);
        drop(g);
        assert!(ns.ports(Proto::Tcp).is_empty());
        let any = ns
            .reserve_any(Proto::Tcp, 40000)
            .expect("valid in this test");
        assert_eq!(any.port(), 40000);
        let other = ns
            .reserve_any(Proto::Tcp, 40000)
            .expect("valid in this test");
        assert_eq!(other.port(), EPHEMERAL_START);
    }
}
