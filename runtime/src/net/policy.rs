//! What a guest may reach: its network mode and its egress rules, and the
//! routing decision for each address it dials or sends to.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use super::NetError;
use super::namespace::{Namespace, Proto};
use super::proxy::Answer;

/// How a guest's sockets are granted.
#[derive(Debug, Clone, Default)]
pub enum NetMode {
    /// No sockets (`--network none`, and every WASIp1 guest).
    #[default]
    None,
    /// Real sockets, unrewritten (`--network host`).
    Host,
    /// Sockets in a virtual namespace.
    Virtual(Arc<Namespace>),
}

/// A guest's network capabilities.
#[derive(Debug, Clone, Default)]
pub struct NetGrant {
    pub mode: NetMode,
    /// Outside addresses a virtual guest may reach (`--allow-net`).
    pub egress: Vec<EgressRule>,
}

/// One `--allow-net HOST[:PORT]`: a host (a name, resolved when the guest
/// starts, or an address) and optionally one port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    pub host: String,
    pub ips: Vec<IpAddr>,
    pub port: Option<u16>,
}

impl EgressRule {
    /// Parses `HOST`, `HOST:PORT`, `[IPV6]:PORT` or a bare IPv6 address
    /// (without resolving the host).
    pub fn parse(rule: &str) -> Result<Self, NetError> {
        let bad = |message: &str| NetError::BadEgress {
            rule: rule.to_string(),
            message: message.to_string(),
        };
        let s = rule.trim();
        if s.is_empty() {
            return Err(bad("empty; use HOST or HOST:PORT"));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self {
                host: ip.to_string(),
                ips: vec![ip],
                port: None,
            });
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, tail) = rest
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in an IPv6 address"))?;
            match tail {
                "" => (h, None),
                t => (
                    h,
                    Some(
                        t.strip_prefix(':')
                            .ok_or_else(|| bad("expected ':' after ']'"))?,
                    ),
                ),
            }
        } else {
            match s.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(&format!("invalid port {p:?}")))?,
            ),
        };
        let valid_name = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        let ips = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) if valid_name => Vec::new(),
            Err(_) => return Err(bad(&format!("invalid host {host:?}"))),
        };
        Ok(Self {
            host: host.to_ascii_lowercase(),
            ips,
            port,
        })
    }

    /// Resolves a named host to its addresses (blocking).
    pub fn resolve(&mut self) -> Result<(), NetError> {
        if !self.ips.is_empty() {
            return Ok(());
        }
        let addrs = (self.host.as_str(), 0)
            .to_socket_addrs()
            .map_err(|e| NetError::BadEgress {
                rule: self.host.clone(),
                message: format!("cannot resolve the host: {e}"),
            })?;
        self.ips = addrs.map(|a| a.ip()).collect();
        self.ips.dedup();
        Ok(())
    }

    fn allows(&self, addr: SocketAddr) -> bool {
        self.port.is_none_or(|p| p == addr.port()) && self.ips.contains(&canonical(addr.ip()))
    }
}

/// Where a guest's connect or send to a virtual address goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// To this real address.
    Real(SocketAddr),
    /// Nowhere: the guest sees `ECONNREFUSED`.
    Refused,
}

impl NetGrant {
    /// Routes a guest's destination:
    /// - loopback, the namespace's own IP or the unspecified address: its
    ///   own port table, then the host's loopback if an egress rule allows;
    /// - for a pod, a Service's ClusterIP: the service proxy;
    /// - another namespace's IP on the same network: that one's table;
    /// - anything else: only with an egress rule.
    pub fn route(&self, proto: Proto, dest: SocketAddr) -> Route {
        let ns = match &self.mode {
            NetMode::Host => return Route::Real(dest),
            NetMode::None => return Route::Refused,
            NetMode::Virtual(ns) => ns,
        };
        let ip = canonical(dest.ip());
        let own = match ip {
            IpAddr::V4(v4) => v4 == ns.ip(),
            IpAddr::V6(_) => false,
        };
        if own || ip.is_loopback() || ip.is_unspecified() {
            if let Some(real) = ns.lookup(proto, dest.port()) {
                return Route::Real(real);
            }
            if ip.is_loopback() && self.allows(dest) {
                return Route::Real(dest);
            }
            return Route::Refused;
        }
        // Answers to a published UDP port's clients, who reach the guest
        // from the gateway through the daemon's relays.
        if proto == Proto::Udp && ip == IpAddr::V4(ns.gateway()) && ns.is_relay(dest.port()) {
            return Route::Real(SocketAddr::new(
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                dest.port(),
            ));
        }
        // A Service's ClusterIP, for pods: the proxy's listener for the
        // port, or refused without a ready endpoint. Checked before other
        // namespaces, as a user-defined network may overlap the range.
        if let IpAddr::V4(v4) = ip
            && ns.kube_namespace().is_some()
            && let Some(route) = ns.fabric().proxy().route(proto, v4, dest.port())
        {
            return route;
        }
        if let IpAddr::V4(v4) = ip
            && let Some(other) = ns.fabric().namespace_at(v4)
        {
            return match other.lookup(proto, dest.port()) {
                Some(real) if other.network() == ns.network() => Route::Real(real),
                _ => Route::Refused,
            };
        }
        if self.allows(dest) {
            Route::Real(dest)
        } else {
            Route::Refused
        }
    }

    /// The name a lookup of `name` is really for: a pod's ExternalName
    /// services are aliases (CNAMEs) of their `externalName`, followed
    /// here, at most eight deep as resolvers limit CNAME chains. Any other
    /// name is itself.
    pub fn canonical(&self, name: &str) -> String {
        let mut name = name.trim_end_matches('.').to_string();
        let NetMode::Virtual(ns) = &self.mode else {
            return name;
        };
        let Some(kube_ns) = ns.kube_namespace() else {
            return name;
        };
        for _ in 0..8 {
            match ns.fabric().proxy().resolve(&name, kube_ns) {
                Some(Answer::Alias(target)) => name = target,
                _ => break,
            }
        }
        name
    }

    /// Whether an egress rule names this host, so a lookup of it goes to
    /// the real resolver.
    pub fn may_resolve(&self, name: &str) -> bool {
        let name = &self.canonical(name);
        match &self.mode {
            NetMode::Host => true,
            NetMode::None => false,
            NetMode::Virtual(_) => {
                let name = name.trim_end_matches('.');
                self.egress
                    .iter()
                    .any(|r| r.host.eq_ignore_ascii_case(name))
            }
        }
    }

    /// Virtual names: `localhost`, the guest's own names, Services (for a
    /// pod), and the members of its user-defined network.
    pub fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        let NetMode::Virtual(ns) = &self.mode else {
            return None;
        };
        let name = self.canonical(name);
        let bare = name.as_str();
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(vec![ip]);
        }
        let lower = bare.to_ascii_lowercase();
        if lower == "localhost" || lower.ends_with(".localhost") {
            return Some(vec![IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)]);
        }
        if ns.answers_to(&lower) {
            return Some(vec![IpAddr::V4(ns.ip())]);
        }
        if let Some(kube_ns) = ns.kube_namespace()
            && let Some(answer) = ns.fabric().proxy().resolve(&lower, kube_ns)
        {
            // An alias still, past the chain's limit: no answer.
            return match answer {
                Answer::Addresses(ips) => Some(ips),
                Answer::Alias(_) => None,
            };
        }
        ns.fabric()
            .resolve(ns.network(), &lower)
            .map(|ips| ips.into_iter().map(IpAddr::V4).collect())
    }

    fn allows(&self, dest: SocketAddr) -> bool {
        self.egress.iter().any(|r| r.allows(dest))
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{BRIDGE, DEFAULT_SUBNET, Fabric};

    #[test]
    fn parses_egress_rules() {
        let r = EgressRule::parse("127.0.0.1:8080").expect("valid in this test");
        assert_eq!(
            r.ips,
            vec!["127.0.0.1".parse::<IpAddr>().expect("valid in this test")]
        );
        assert_eq!(r.port, Some(8080));
        let r = EgressRule::parse("Example.com").expect("valid in this test");
        assert_eq!((r.host.as_str(), r.port), ("example.com", None));
        assert!(r.ips.is_empty());
        let r = EgressRule::parse("[::1]:53").expect("valid in this test");
        assert_eq!(r.port, Some(53));
        assert_eq!(
            EgressRule::parse("::1").expect("valid in this test").port,
            None
        );
        for bad in ["", "a:b", "host:0", "[::1", "bad host", "x:70000"] {
            let e = EgressRule::parse(bad)
                .expect_err("must be refused")
                .to_string();
            assert!(e.starts_with("--allow-net"), "{bad}: {e}");
        }
    }

    #[test]
    fn routes_follow_the_rules() {
        let f = Fabric::with_bridge(DEFAULT_SUBNET.parse().expect("valid in this test"));
        let a = f.join(BRIDGE, "a", &[]).expect("valid in this test");
        let b = f.join(BRIDGE, "b", &[]).expect("valid in this test");
        let ga = a.reserve(Proto::Tcp, 8080).expect("valid in this test");
        ga.set_real("127.0.0.1:40001".parse().expect("valid in this test"));
        let gb = b.reserve(Proto::Tcp, 8080).expect("valid in this test");
        gb.set_real("127.0.0.1:40002".parse().expect("valid in this test"));
        let grant = NetGrant {
            mode: NetMode::Virtual(a.clone()),
            ..NetGrant::default()
        };
        let real = |s: &str| Route::Real(s.parse().expect("valid in this test"));
        let at = |ip: std::net::Ipv4Addr, port| SocketAddr::from((ip, port));
        assert_eq!(
            grant.route(
                Proto::Tcp,
                "127.0.0.1:8080".parse().expect("valid in this test")
            ),
            real("127.0.0.1:40001")
        );
        assert_eq!(
            grant.route(Proto::Tcp, at(a.ip(), 8080)),
            real("127.0.0.1:40001")
        );
        assert_eq!(
            grant.route(Proto::Tcp, at(b.ip(), 8080)),
            real("127.0.0.1:40002")
        );
        assert_eq!(grant.route(Proto::Tcp, at(b.ip(), 9)), Route::Refused);
        assert_eq!(grant.route(Proto::Udp, at(b.ip(), 8080)), Route::Refused);
        let outside: SocketAddr = "192.0.2.7:80".parse().expect("valid in this test");
        assert_eq!(grant.route(Proto::Tcp, outside), Route::Refused);
        assert_eq!(
            grant.route(
                Proto::Tcp,
                "127.0.0.1:5432".parse().expect("valid in this test")
            ),
            Route::Refused
        );
        let open = NetGrant {
            egress: vec![
                EgressRule::parse("192.0.2.7").expect("valid in this test"),
                EgressRule::parse("127.0.0.1:5432").expect("valid in this test"),
            ],
            ..grant.clone()
        };
        assert_eq!(open.route(Proto::Tcp, outside), Route::Real(outside));
        assert_eq!(
            open.route(
                Proto::Tcp,
                "127.0.0.1:5432".parse().expect("valid in this test")
            ),
            real("127.0.0.1:5432")
        );
        assert_eq!(
            open.route(
                Proto::Tcp,
                "127.0.0.1:5433".parse().expect("valid in this test")
            ),
            Route::Refused
        );
        assert_eq!(
            grant.lookup("localhost"),
            Some(vec!["127.0.0.1".parse().expect("valid in this test")])
        );
        assert_eq!(grant.lookup("example.com"), None);
        assert!(!grant.may_resolve("example.com"));

        // The gateway is reachable only at a UDP relay's port, while the
        // relay lives.
        let gw = |port| SocketAddr::new(IpAddr::V4(a.gateway()), port);
        assert_eq!(grant.route(Proto::Udp, gw(40001)), Route::Refused);
        let relay = a.add_relay(40001);
        assert_eq!(grant.route(Proto::Udp, gw(40001)), real("127.0.0.1:40001"));
        assert_eq!(grant.route(Proto::Tcp, gw(40001)), Route::Refused);
        assert_eq!(grant.route(Proto::Udp, gw(40002)), Route::Refused);
        drop(relay);
        assert_eq!(grant.route(Proto::Udp, gw(40001)), Route::Refused);
    }
}
