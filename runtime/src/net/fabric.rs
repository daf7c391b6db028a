//! The fabric: every virtual network, which namespaces are attached to
//! which address, the names that resolve on user-defined networks, and the
//! map from real loopback sockets back to the virtual addresses they stand
//! for (so that a guest sees its peer's virtual address). It also holds
//! the service proxy, which guests' connects and lookups consult.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ipnet::Ipv4Net;
use sha2::Digest as _;

use super::NetError;
use super::namespace::{Namespace, Proto};
use super::proxy::ServiceProxy;

/// The default network, as Docker's `bridge`.
pub const BRIDGE: &str = "bridge";
/// Unrestricted real sockets, as Docker's `--network host`.
pub const HOST: &str = "host";
/// No sockets at all.
pub const NONE: &str = "none";
/// The default network's subnet.
pub const DEFAULT_SUBNET: &str = "10.88.0.0/16";

/// A network as `network ls` and `inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    pub id: String,
    pub name: String,
    /// `bridge` for wrun's virtual networks; `host` and `null` for the two
    /// special ones.
    pub driver: String,
    pub subnet: Option<Ipv4Net>,
    pub gateway: Option<Ipv4Addr>,
    /// Created by the user: container names resolve on it, as in Docker.
    pub user_defined: bool,
    /// RFC 3339.
    pub created: String,
    /// The user's labels (`network create --label`).
    pub labels: std::collections::BTreeMap<String, String>,
}

impl NetworkInfo {
    /// A network that holds virtual namespaces.
    pub fn virtual_net(
        id: String,
        name: String,
        subnet: Ipv4Net,
        user_defined: bool,
        created: String,
    ) -> Self {
        let gateway = subnet.hosts().next();
        Self {
            id,
            name,
            driver: "bridge".into(),
            subnet: Some(subnet),
            gateway,
            user_defined,
            created,
            labels: Default::default(),
        }
    }

    fn special(name: &str, driver: &str) -> Self {
        Self {
            id: builtin_id(name),
            name: name.into(),
            driver: driver.into(),
            subnet: None,
            gateway: None,
            user_defined: false,
            created: String::new(),
            labels: Default::default(),
        }
    }
}

/// Built-in networks get stable IDs derived from their names.
fn builtin_id(name: &str) -> String {
    hex::encode(sha2::Sha256::digest(format!("wrun-network:{name}")))
}

struct Net {
    info: NetworkInfo,
    /// Addresses handed out.
    used: BTreeSet<Ipv4Addr>,
    /// Names (container names, short IDs, aliases) → addresses, in the
    /// order they joined; an alias several containers share has several.
    names: HashMap<String, Vec<Ipv4Addr>>,
}

#[derive(Default)]
struct State {
    networks: BTreeMap<String, Net>,
    namespaces: HashMap<Ipv4Addr, Weak<Namespace>>,
    peers: HashMap<(Proto, SocketAddr), SocketAddr>,
}

/// The process-wide network state. Create one per daemon and share it.
pub struct Fabric {
    state: Mutex<State>,
    /// The Services' table and forwarding; it holds the fabric weakly.
    proxy: Arc<ServiceProxy>,
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric").finish_non_exhaustive()
    }
}

impl Fabric {
    /// A fabric holding the built-in `bridge` (on `subnet`), `host` and
    /// `none` networks.
    pub fn with_bridge(subnet: Ipv4Net) -> Arc<Self> {
        let mut networks = BTreeMap::new();
        let bridge = NetworkInfo::virtual_net(
            builtin_id(BRIDGE),
            BRIDGE.into(),
            subnet.trunc(),
            false,
            String::new(),
        );
        for info in [
            bridge,
            NetworkInfo::special(HOST, "host"),
            NetworkInfo::special(NONE, "null"),
        ] {
            networks.insert(
                info.name.clone(),
                Net {
                    info,
                    used: BTreeSet::new(),
                    names: HashMap::new(),
                },
            );
        }
        Arc::new_cyclic(|weak| Self {
            state: Mutex::new(State {
                networks,
                ..State::default()
            }),
            proxy: Arc::new(ServiceProxy::new(weak.clone())),
        })
    }

    /// The service proxy (kube-proxy's role) of this fabric.
    pub fn proxy(&self) -> &Arc<ServiceProxy> {
        &self.proxy
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a user-defined network. Its name must be new and its subnet
    /// must not overlap another's.
    pub fn add_network(&self, info: NetworkInfo) -> Result<(), NetError> {
        let mut st = self.state();
        if st.networks.contains_key(&info.name) {
            return Err(NetError::NetworkExists(info.name));
        }
        if let Some(subnet) = info.subnet {
            if subnet.hosts().count() < 2 {
                return Err(NetError::BadNetwork {
                    name: info.name,
                    message: format!("subnet {subnet} is too small"),
                });
            }
            if let Some(other) = st.networks.values().find(|n| {
                n.info
                    .subnet
                    .is_some_and(|s| s.contains(&subnet) || subnet.contains(&s))
            }) {
                return Err(NetError::BadNetwork {
                    name: info.name.clone(),
                    message: format!(
                        "subnet {subnet} overlaps network {}'s {}",
                        other.info.name,
                        other.info.subnet.map(|s| s.to_string()).unwrap_or_default()
                    ),
                });
            }
        }
        st.networks.insert(
            info.name.clone(),
            Net {
                info,
                used: BTreeSet::new(),
                names: HashMap::new(),
            },
        );
        Ok(())
    }

    /// The first free /16 from 10.89.0.0/16 up, for a network created
    /// without `--subnet`.
    pub fn free_subnet(&self) -> Option<Ipv4Net> {
        let st = self.state();
        (89..=255u8)
            .filter_map(|b| Ipv4Net::new(Ipv4Addr::new(10, b, 0, 0), 16).ok())
            .find(|cand| {
                !st.networks.values().any(|n| {
                    n.info
                        .subnet
                        .is_some_and(|s| s.contains(cand) || cand.contains(&s))
                })
            })
    }

    /// Finds a network by name, full ID or unique ID prefix.
    pub fn network(&self, name_or_id: &str) -> Result<NetworkInfo, NetError> {
        let st = self.state();
        find(&st, name_or_id).map(|n| n.info.clone())
    }

    /// Every network, with the owners and addresses of the namespaces
    /// attached to it.
    pub fn networks(&self) -> Vec<(NetworkInfo, Vec<(String, Ipv4Addr)>)> {
        let (infos, weaks): (Vec<NetworkInfo>, Vec<Weak<Namespace>>) = {
            let st = self.state();
            (
                st.networks.values().map(|n| n.info.clone()).collect(),
                st.namespaces.values().cloned().collect(),
            )
        };
        // Upgraded outside the lock: a namespace's drop takes it.
        let live: Vec<Arc<Namespace>> = weaks.iter().filter_map(Weak::upgrade).collect();
        infos
            .into_iter()
            .map(|info| {
                let members = live
                    .iter()
                    .filter(|ns| ns.network() == info.name)
                    .map(|ns| (ns.owner().to_string(), ns.ip()))
                    .collect();
                (info, members)
            })
            .collect()
    }

    /// Removes a user-defined network with nothing attached.
    pub fn remove_network(&self, name_or_id: &str) -> Result<NetworkInfo, NetError> {
        let mut st = self.state();
        let net = find(&st, name_or_id)?;
        let name = net.info.name.clone();
        if !net.info.user_defined {
            return Err(NetError::BadNetwork {
                name,
                message: "pre-defined networks cannot be removed".into(),
            });
        }
        if !net.used.is_empty() {
            let mut users: Vec<String> = net.names.keys().cloned().collect();
            users.sort();
            return Err(NetError::NetworkInUse {
                name,
                users: users.join(", "),
            });
        }
        let net = st
            .networks
            .remove(&name)
            .ok_or(NetError::NoSuchNetwork(name))?;
        Ok(net.info)
    }

    /// Gives `owner` a namespace on `network`, with the next free address;
    /// `names` resolve to it for the other members of a user-defined
    /// network.
    pub fn join(
        self: &Arc<Self>,
        network: &str,
        owner: &str,
        names: &[String],
    ) -> Result<Arc<Namespace>, NetError> {
        self.join_as(network, owner, names, None)
    }

    /// As [`Fabric::join`], for a pod of the Kubernetes namespace
    /// `kube_namespace`, whose guests reach Services and resolve their
    /// names.
    pub fn join_pod(
        self: &Arc<Self>,
        network: &str,
        owner: &str,
        names: &[String],
        kube_namespace: &str,
    ) -> Result<Arc<Namespace>, NetError> {
        self.join_as(network, owner, names, Some(kube_namespace.to_string()))
    }

    fn join_as(
        self: &Arc<Self>,
        network: &str,
        owner: &str,
        names: &[String],
        kube_namespace: Option<String>,
    ) -> Result<Arc<Namespace>, NetError> {
        let mut st = self.state();
        let net = st
            .networks
            .get_mut(network)
            .ok_or_else(|| NetError::NoSuchNetwork(network.to_string()))?;
        let (Some(subnet), Some(gateway)) = (net.info.subnet, net.info.gateway) else {
            return Err(NetError::BadNetwork {
                name: network.to_string(),
                message: "it has no addresses to give".into(),
            });
        };
        let ip = subnet
            .hosts()
            .find(|ip| *ip != gateway && !net.used.contains(ip))
            .ok_or_else(|| NetError::Exhausted(network.to_string()))?;
        net.used.insert(ip);
        let names: Vec<String> = names.iter().filter(|n| !n.is_empty()).cloned().collect();
        for n in &names {
            let ips = net.names.entry(n.to_ascii_lowercase()).or_default();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        let ns = Arc::new(Namespace::new(
            self.clone(),
            ip,
            gateway,
            network.to_string(),
            owner.to_string(),
            names,
            kube_namespace,
        ));
        st.namespaces.insert(ip, Arc::downgrade(&ns));
        Ok(ns)
    }

    /// Called when a namespace is dropped: its address and names go back.
    pub(super) fn release(&self, ip: Ipv4Addr, network: &str) {
        let mut st = self.state();
        st.namespaces.remove(&ip);
        if let Some(net) = st.networks.get_mut(network) {
            net.used.remove(&ip);
            net.names.retain(|_, ips| {
                ips.retain(|a| *a != ip);
                !ips.is_empty()
            });
        }
    }

    /// Moves the name `old` of the namespace at `ip` to `new`.
    pub(super) fn rename(&self, network: &str, ip: Ipv4Addr, old: &str, new: &str) {
        let mut st = self.state();
        if let Some(net) = st.networks.get_mut(network) {
            let old = old.to_ascii_lowercase();
            if let Some(ips) = net.names.get_mut(&old) {
                ips.retain(|a| *a != ip);
                if ips.is_empty() {
                    net.names.remove(&old);
                }
            }
            let ips = net.names.entry(new.to_ascii_lowercase()).or_default();
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
    }

    /// The live namespace at a virtual address.
    pub fn namespace_at(&self, ip: Ipv4Addr) -> Option<Arc<Namespace>> {
        let weak = self.state().namespaces.get(&ip).cloned();
        weak.and_then(|w| w.upgrade())
    }

    /// Every live namespace.
    pub fn namespaces(&self) -> Vec<Arc<Namespace>> {
        let weaks: Vec<Weak<Namespace>> = self.state().namespaces.values().cloned().collect();
        weaks.into_iter().filter_map(|w| w.upgrade()).collect()
    }

    /// What `name` resolves to on `network`: only user-defined networks
    /// resolve container names, as in Docker.
    /// An alias shared by several containers answers with all of their
    /// addresses, as Docker's embedded DNS does.
    pub fn resolve(&self, network: &str, name: &str) -> Option<Vec<Ipv4Addr>> {
        let st = self.state();
        let net = st.networks.get(network)?;
        if !net.info.user_defined {
            return None;
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        net.names.get(&name).cloned()
    }

    /// Records that the real socket `real` stands for `virt`, until the
    /// returned guard is dropped.
    pub fn add_peer(
        self: &Arc<Self>,
        proto: Proto,
        real: SocketAddr,
        virt: SocketAddr,
    ) -> PeerGuard {
        self.state().peers.insert((proto, real), virt);
        PeerGuard {
            fabric: self.clone(),
            key: (proto, real),
        }
    }

    /// The virtual address a real socket stands for, if it is a guest's.
    pub fn peer(&self, proto: Proto, real: SocketAddr) -> Option<SocketAddr> {
        self.state().peers.get(&(proto, real)).copied()
    }
}

fn find<'a>(st: &'a State, name_or_id: &str) -> Result<&'a Net, NetError> {
    if let Some(n) = st.networks.get(name_or_id) {
        return Ok(n);
    }
    let mut hits = st
        .networks
        .values()
        .filter(|n| !name_or_id.is_empty() && n.info.id.starts_with(name_or_id));
    match (hits.next(), hits.next()) {
        (Some(n), None) => Ok(n),
        _ => Err(NetError::NoSuchNetwork(name_or_id.to_string())),
    }
}

/// A peer-map entry; dropping it removes the entry.
pub struct PeerGuard {
    fabric: Arc<Fabric>,
    key: (Proto, SocketAddr),
}

impl std::fmt::Debug for PeerGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeerGuard({})", self.key.1)
    }
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        self.fabric.state().peers.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fabric() -> Arc<Fabric> {
        Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"))
    }

    #[test]
    fn addresses_are_handed_out_and_returned() {
        let f = fabric();
        let a = f.join(BRIDGE, "a", &[]).expect("valid in this test");
        let b = f.join(BRIDGE, "b", &[]).expect("valid in this test");
        assert_eq!(a.ip(), Ipv4Addr::new(10, 88, 0, 2));
        assert_eq!(b.ip(), Ipv4Addr::new(10, 88, 0, 3));
        assert_eq!(a.gateway(), Ipv4Addr::new(10, 88, 0, 1));
        assert!(f.namespace_at(a.ip()).is_some());
        drop(a);
        assert!(f.namespace_at(Ipv4Addr::new(10, 88, 0, 2)).is_none());
        let c = f.join(BRIDGE, "c", &[]).expect("valid in this test");
        assert_eq!(c.ip(), Ipv4Addr::new(10, 88, 0, 2), "freed address reused");
    }

    #[test]
    fn names_resolve_on_user_defined_networks_only() {
        let f = fabric();
        let subnet = f.free_subnet().expect("valid in this test");
        assert_eq!(subnet.to_string(), "10.89.0.0/16");
        f.add_network(NetworkInfo::virtual_net(
            "1".repeat(64),
            "app".into(),
            subnet,
            true,
            String::new(),
        ))
        .expect("valid in this test");
        let web = f
            .join("app", "id1", &["web".into()])
            .expect("valid in this test");
        let _b = f
            .join(BRIDGE, "id2", &["db".into()])
            .expect("valid in this test");
        assert_eq!(f.resolve("app", "WEB."), Some(vec![web.ip()]));
        assert_eq!(f.resolve(BRIDGE, "db"), None);
        // An alias two members share answers with both, until each goes.
        let web2 = f
            .join("app", "id3", &["web2".into(), "web".into()])
            .expect("valid in this test");
        assert_eq!(f.resolve("app", "web"), Some(vec![web.ip(), web2.ip()]));
        drop(web2);
        assert_eq!(f.resolve("app", "web"), Some(vec![web.ip()]));
        assert_eq!(f.resolve("app", "web2"), None);
        assert!(matches!(
            f.remove_network("app"),
            Err(NetError::NetworkInUse { .. })
        ));
        drop(web);
        assert_eq!(f.resolve("app", "web"), None);
        f.remove_network("app").expect("valid in this test");
        assert!(matches!(
            f.remove_network(BRIDGE),
            Err(NetError::BadNetwork { .. })
        ));
    }

    #[test]
    fn overlapping_subnets_are_refused() {
        let f = fabric();
        let err = f
            .add_network(NetworkInfo::virtual_net(
                "2".repeat(64),
                "x".into(),
                "10.88.5.0/24".parse().expect("valid in this test"),
                true,
                String::new(),
            ))
            .expect_err("must be refused");
        assert!(err.to_string().contains("overlaps network bridge"), "{err}");
    }
}
