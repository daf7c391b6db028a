//! The service proxy, kube-proxy's role: the table of Services and the
//! forwarding of their connections to ready endpoints, for every service
//! type at once.
//!
//! - **ClusterIP.** A pod's connect to ClusterIP:port is routed (by
//!   [`NetGrant::route`](super::NetGrant::route)) to a listener of the
//!   proxy's own on 127.0.0.1, which forwards to an endpoint. With no
//!   ready endpoint the connect is refused, as kube-proxy rejects it. The
//!   virtual IP is never bound or dialled on the host.
//! - **NodePort** and **LoadBalancer.** A listener on 127.0.0.1 at the
//!   nodePort, and for a LoadBalancer also at each service port. A port
//!   taken on the host leaves the listener pending; [`ServiceProxy::retry_pending`]
//!   tries again.
//! - **Names.** From a pod in namespace `N`, `svc`, `svc.ns`,
//!   `svc.ns.svc` and `svc.ns.svc.cluster.local` resolve to the
//!   ClusterIP, or for a headless service to its ready pods' IPs. An
//!   ExternalName service's name is an alias (a CNAME) of its
//!   `externalName`, which the caller resolves in turn.
//!
//! Each new connection goes to the next ready endpoint in turn (a counter
//! per service port), or with `ClientIP` affinity to the one its client
//! used last. An endpoint that leaves gets no new connection; its open
//! ones finish. Connections and bytes are counted per endpoint.
//!
//! UDP (and SCTP) service ports are not forwarded yet: a datagram to a
//! ClusterIP's UDP port is refused.

mod balance;
mod forward;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use balance::{Active, Port};
use forward::{Listener, Side};

use super::fabric::Fabric;
use super::namespace::Proto;
use super::policy::Route;

/// Kubernetes' default `sessionAffinityConfig.clientIP.timeoutSeconds`.
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10_800);

/// The cluster's DNS domain.
const DOMAIN: &str = "cluster.local";

/// How a service spreads a client's connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Affinity {
    /// Each connection to the next endpoint in turn.
    #[default]
    None,
    /// A client IP's connections to the endpoint it used last, until it
    /// has not connected for `timeout`.
    ClientIp { timeout: Duration },
}

/// One endpoint: a pod IP (or a loopback address) and the target port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

/// One port of a service, with its ready endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePort {
    /// `""` for a single unnamed port.
    pub name: String,
    pub port: u16,
    pub proto: Proto,
    /// Listened on at 127.0.0.1 (NodePort and LoadBalancer services).
    pub node_port: Option<u16>,
    /// Listened on at 127.0.0.1:`port` too (LoadBalancer services).
    pub load_balancer: bool,
    /// The ready endpoints, in the order connections take turns.
    pub endpoints: Vec<Endpoint>,
}

/// A service as the proxy needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceSpec {
    pub namespace: String,
    pub name: String,
    /// The virtual IP; `None` for a headless service or one without an
    /// address yet.
    pub cluster_ip: Option<Ipv4Addr>,
    /// `clusterIP: None`: its name resolves to `addresses`, and nothing
    /// is forwarded.
    pub headless: bool,
    pub ports: Vec<ServicePort>,
    pub affinity: Affinity,
    /// The ready endpoints' addresses, for a headless service's name.
    pub addresses: Vec<IpAddr>,
    /// An ExternalName service's target: its name is an alias of this
    /// one, and nothing is forwarded.
    pub external_name: Option<String>,
}

/// What a service name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The ClusterIP, or a headless service's ready pods.
    Addresses(Vec<IpAddr>),
    /// An ExternalName service: another name (a CNAME).
    Alias(String),
}

/// Why a host listener exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPortKind {
    NodePort,
    /// A LoadBalancer's service port (which may be its nodePort too).
    LoadBalancer,
}

/// One host listener of a service and whether it is up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    /// The port on 127.0.0.1.
    pub port: u16,
    pub kind: HostPortKind,
    /// Why it is not listening (the port is taken), until a retry works.
    pub error: Option<String>,
}

/// One endpoint's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStats {
    pub ip: IpAddr,
    pub port: u16,
    /// False for an endpoint that left with connections still open.
    pub ready: bool,
    /// Connections made, in total.
    pub connections: u64,
    /// Connections open now.
    pub active: u64,
    /// Bytes from clients to the endpoint.
    pub bytes_in: u64,
    /// Bytes from the endpoint to clients.
    pub bytes_out: u64,
}

/// One service port's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStats {
    pub name: String,
    pub port: u16,
    pub proto: Proto,
    pub endpoints: Vec<EndpointStats>,
}

/// One service's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStats {
    pub namespace: String,
    pub name: String,
    pub ports: Vec<PortStats>,
}

type Key = (String, String);

/// A service port as programmed: its shared state and its ClusterIP
/// listener.
#[derive(Debug)]
struct Programmed {
    port: Arc<Port>,
    cluster: Option<Listener>,
}

#[derive(Debug)]
struct HostListener {
    port: Arc<Port>,
    kind: HostPortKind,
    listening: Result<Listener, String>,
}

#[derive(Debug)]
struct Svc {
    spec: ServiceSpec,
    ports: Vec<Programmed>,
    host: BTreeMap<u16, HostListener>,
}

impl Svc {
    fn host_ports(&self) -> Vec<HostPort> {
        self.host
            .iter()
            .map(|(port, h)| HostPort {
                port: *port,
                kind: h.kind,
                error: h.listening.as_ref().err().cloned(),
            })
            .collect()
    }
}

#[derive(Debug, Default)]
struct Table {
    services: BTreeMap<Key, Svc>,
    by_ip: HashMap<Ipv4Addr, Key>,
}

/// The proxy of one fabric (see the module's documentation).
pub struct ServiceProxy {
    fabric: Weak<Fabric>,
    active: Arc<Active>,
    table: Mutex<Table>,
    /// Bumped by each [`ServiceProxy::reset`], so that a stopped
    /// programmer's last [`ServiceProxy::clear_if`] leaves its successor's
    /// services alone.
    generation: AtomicU64,
}

impl std::fmt::Debug for ServiceProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceProxy").finish_non_exhaustive()
    }
}

fn host_addr(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

impl ServiceProxy {
    pub(super) fn new(fabric: Weak<Fabric>) -> Self {
        Self {
            fabric,
            active: Arc::default(),
            table: Mutex::default(),
            generation: AtomicU64::new(0),
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds or updates a service, and reports its host listeners. Ports
    /// that stay (same protocol, number and name) keep their counters,
    /// turn and listeners. Listeners need a tokio runtime; outside one
    /// they are reported as not listening.
    pub fn upsert(&self, spec: ServiceSpec) -> Vec<HostPort> {
        let key = (spec.namespace.clone(), spec.name.clone());
        let mut table = self.table();
        let old = table.services.remove(&key);
        table.by_ip.retain(|_, k| *k != key);
        let (mut old_ports, mut old_host) = match old {
            Some(s) => (s.ports, s.host),
            None => (Vec::new(), BTreeMap::new()),
        };
        let mut ports: Vec<Programmed> = Vec::new();
        if !spec.headless {
            for sp in &spec.ports {
                if ports
                    .iter()
                    .any(|p| p.port.proto == sp.proto && p.port.port == sp.port)
                {
                    continue;
                }
                let same = old_ports.iter().position(|p| {
                    p.port.proto == sp.proto && p.port.port == sp.port && p.port.name == sp.name
                });
                let mut programmed = match same {
                    Some(i) => old_ports.swap_remove(i),
                    None => Programmed {
                        port: Arc::new(Port::new(
                            sp.name.clone(),
                            sp.port,
                            sp.proto,
                            self.active.clone(),
                        )),
                        cluster: None,
                    },
                };
                programmed.port.set(&sp.endpoints, spec.affinity);
                if spec.cluster_ip.is_none() || sp.proto != Proto::Tcp {
                    programmed.cluster = None;
                } else if programmed.cluster.is_none() {
                    let bound = Listener::bind(
                        self.fabric.clone(),
                        programmed.port.clone(),
                        host_addr(0),
                        Side::Cluster,
                    );
                    match bound {
                        Ok(l) => programmed.cluster = Some(l),
                        Err(e) => tracing::warn!(
                            service = %format!("{}/{}", key.0, key.1),
                            port = sp.port,
                            error = %e,
                            "service proxy: cannot listen for the ClusterIP"
                        ),
                    }
                }
                ports.push(programmed);
            }
        }
        drop(old_ports);
        let mut host = BTreeMap::new();
        for (hp, (port, kind)) in desired_host_ports(&spec, &ports) {
            let listening = match old_host.remove(&hp) {
                Some(HostListener {
                    listening: Ok(l), ..
                }) => {
                    if !l.serves(&port) {
                        l.retarget(&port);
                    }
                    Ok(l)
                }
                _ => Listener::bind(self.fabric.clone(), port.clone(), host_addr(hp), Side::Host)
                    .map_err(|e| e.to_string()),
            };
            host.insert(
                hp,
                HostListener {
                    port,
                    kind,
                    listening,
                },
            );
        }
        drop(old_host);
        if let Some(ip) = spec.cluster_ip.filter(|_| !spec.headless) {
            table.by_ip.insert(ip, key.clone());
        }
        let svc = Svc { spec, ports, host };
        let report = svc.host_ports();
        table.services.insert(key, svc);
        report
    }

    /// Removes a service: its listeners close; connections already open
    /// finish.
    pub fn remove(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        let mut table = self.table();
        table.services.remove(&key);
        table.by_ip.retain(|_, k| *k != key);
    }

    /// The services programmed, as (namespace, name).
    pub fn names(&self) -> Vec<(String, String)> {
        self.table().services.keys().cloned().collect()
    }

    /// The service as last programmed.
    pub fn spec(&self, namespace: &str, name: &str) -> Option<ServiceSpec> {
        let key = (namespace.to_string(), name.to_string());
        self.table().services.get(&key).map(|s| s.spec.clone())
    }

    /// A service's host listeners and whether each is up.
    pub fn host_ports(&self, namespace: &str, name: &str) -> Option<Vec<HostPort>> {
        let key = (namespace.to_string(), name.to_string());
        self.table().services.get(&key).map(Svc::host_ports)
    }

    /// Tries again to listen on every host port that was taken; returns
    /// the services of which some listener came up.
    pub fn retry_pending(&self) -> Vec<(String, String)> {
        let mut table = self.table();
        let mut changed = Vec::new();
        for (key, svc) in table.services.iter_mut() {
            let mut up = false;
            for (hp, h) in svc.host.iter_mut() {
                if h.listening.is_ok() {
                    continue;
                }
                let bound = Listener::bind(
                    self.fabric.clone(),
                    h.port.clone(),
                    host_addr(*hp),
                    Side::Host,
                );
                h.listening = bound.map_err(|e| e.to_string());
                up |= h.listening.is_ok();
            }
            if up {
                changed.push(key.clone());
            }
        }
        changed
    }

    /// Forgets every service and starts a new generation of programming;
    /// returns it.
    pub fn reset(&self) -> u64 {
        let mut table = self.table();
        *table = Table::default();
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Forgets every service, unless a [`ServiceProxy::reset`] came after
    /// `generation`.
    pub fn clear_if(&self, generation: u64) {
        let mut table = self.table();
        if self.generation.load(Ordering::SeqCst) == generation {
            *table = Table::default();
        }
    }

    /// Where a pod's connect or send to `ip:port` goes when `ip` is a
    /// ClusterIP: the proxy's listener for that port, or refused (no such
    /// port, no ready endpoint, or UDP). `None` when `ip` is no ClusterIP.
    pub fn route(&self, proto: Proto, ip: Ipv4Addr, port: u16) -> Option<Route> {
        let table = self.table();
        let key = table.by_ip.get(&ip)?;
        let svc = table.services.get(key)?;
        let hit = svc
            .ports
            .iter()
            .find(|p| p.port.proto == proto && p.port.port == port);
        Some(match hit {
            Some(Programmed {
                port,
                cluster: Some(l),
            }) if port.has_ready() => Route::Real(l.addr),
            _ => Route::Refused,
        })
    }

    /// A service name as a pod in `namespace` looks it up (lower case):
    /// the ClusterIP, a headless service's ready addresses, or an
    /// ExternalName service's target.
    pub fn resolve(&self, name: &str, namespace: &str) -> Option<Answer> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let (svc, ns) = service_name(&name, namespace)?;
        let table = self.table();
        let found = table.services.get(&(ns.to_string(), svc.to_string()))?;
        if let Some(target) = &found.spec.external_name {
            return Some(Answer::Alias(target.clone()));
        }
        if found.spec.headless {
            return (!found.spec.addresses.is_empty())
                .then(|| Answer::Addresses(found.spec.addresses.clone()));
        }
        found
            .spec
            .cluster_ip
            .map(|ip| Answer::Addresses(vec![IpAddr::V4(ip)]))
    }

    /// Connections open (or being dialled) to the endpoint address `ip`,
    /// through any service.
    pub fn active_to(&self, ip: IpAddr) -> usize {
        self.active.to(ip)
    }

    /// Every service's counters, per port and endpoint.
    pub fn stats(&self) -> Vec<ServiceStats> {
        self.table()
            .services
            .values()
            .map(|s| ServiceStats {
                namespace: s.spec.namespace.clone(),
                name: s.spec.name.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| PortStats {
                        name: p.port.name.clone(),
                        port: p.port.port,
                        proto: p.port.proto,
                        endpoints: p.port.stats(),
                    })
                    .collect(),
            })
            .collect()
    }
}

/// The host listeners a service wants: each TCP port's nodePort, and a
/// LoadBalancer's service ports. Two ports wanting one host port: the
/// first has it.
fn desired_host_ports(
    spec: &ServiceSpec,
    ports: &[Programmed],
) -> BTreeMap<u16, (Arc<Port>, HostPortKind)> {
    let mut want: BTreeMap<u16, (Arc<Port>, HostPortKind)> = BTreeMap::new();
    for sp in &spec.ports {
        let Some(p) = ports
            .iter()
            .find(|p| p.port.proto == sp.proto && p.port.port == sp.port)
            .filter(|_| sp.proto == Proto::Tcp)
        else {
            continue;
        };
        let wanted = sp
            .node_port
            .map(|np| (np, HostPortKind::NodePort))
            .into_iter()
            .chain(
                sp.load_balancer
                    .then_some((sp.port, HostPortKind::LoadBalancer)),
            );
        for (hp, kind) in wanted {
            if hp == 0 {
                continue;
            }
            match want.get_mut(&hp) {
                None => {
                    want.insert(hp, (p.port.clone(), kind));
                }
                Some((port, k)) if Arc::ptr_eq(port, &p.port) => {
                    if kind == HostPortKind::LoadBalancer {
                        *k = kind;
                    }
                }
                Some(_) => tracing::warn!(
                    service = %format!("{}/{}", spec.namespace, spec.name),
                    port = hp,
                    "service proxy: two ports of the service want one host port"
                ),
            }
        }
    }
    want
}

/// The (service, namespace) a name means from `namespace`: `svc`,
/// `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`.
fn service_name<'a>(name: &'a str, namespace: &'a str) -> Option<(&'a str, &'a str)> {
    let full = format!(".svc.{DOMAIN}");
    let rest = name
        .strip_suffix(full.as_str())
        .or_else(|| name.strip_suffix(".svc"));
    let labels: Vec<&str> = rest.unwrap_or(name).split('.').collect();
    match labels.as_slice() {
        [svc] if rest.is_none() && !svc.is_empty() => Some((svc, namespace)),
        [svc, ns] if !svc.is_empty() && !ns.is_empty() => Some((svc, ns)),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
