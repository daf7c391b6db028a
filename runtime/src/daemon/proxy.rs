//! kube-proxy's role (with the service controller's part for
//! LoadBalancers): watches Services and Endpoints in the store and
//! programs the fabric's service proxy ([`crate::net::proxy`]) with each
//! service's ClusterIP, ports, affinity and ready endpoints.
//!
//! A LoadBalancer's `status.loadBalancer.ingress` becomes `127.0.0.1`
//! once a listener is up at each of its ports; while one is taken on the
//! host it stays empty (`<pending>`), a Warning event names the port, and
//! the listener is tried again every few seconds.
//!
//! Like the node agent, it subscribes before it lists, so no change falls
//! between, reads each changed service afresh from the store, and lists
//! everything again when it falls behind. Cancelling it forgets every
//! service, which closes their listeners.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::networks::Networks;
use crate::cluster::events::{self, Source};
use crate::cluster::store::{Event, Store};
use crate::kube::Resource;
use crate::kube::resources::by_plural;
use crate::net::Proto;
use crate::net::proxy::{
    Affinity, DEFAULT_AFFINITY_TIMEOUT, Endpoint, HostPort, HostPortKind, ServicePort,
    ServiceProxy, ServiceSpec,
};

/// How often host ports that were taken are tried again.
const RETRY: Duration = Duration::from_secs(3);
/// A LoadBalancer's external address: its listeners are on loopback.
const INGRESS_IP: &str = "127.0.0.1";

/// Starts programming the proxy of `networks`' fabric from the store
/// until `cancel`; returns the proxy (for its counters and
/// [`ServiceProxy::active_to`]). Call it inside the tokio runtime.
pub fn start(
    store: Arc<Store>,
    networks: &Networks,
    cancel: CancellationToken,
) -> Arc<ServiceProxy> {
    let proxy = networks.fabric().proxy().clone();
    let generation = proxy.reset();
    let (Some(services), Some(endpoints)) = (
        by_plural("", "v1", "services"),
        by_plural("", "v1", "endpoints"),
    ) else {
        tracing::warn!("service proxy: the API serves no services or endpoints");
        return proxy;
    };
    let handle = match tokio::runtime::Handle::try_current() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "service proxy: not started outside the runtime");
            return proxy;
        }
    };
    // Subscribe before the first list, so no change falls between.
    let rx = store.subscribe();
    let worker = Worker {
        store,
        proxy: proxy.clone(),
        services,
        endpoints,
        reported: HashMap::new(),
    };
    handle.spawn(worker.run(rx, generation, cancel));
    proxy
}

type Key = (String, String);

struct Worker {
    store: Arc<Store>,
    proxy: Arc<ServiceProxy>,
    services: &'static Resource,
    endpoints: &'static Resource,
    /// The failure last recorded as an event, per service, so that a
    /// port still taken at each retry is reported once.
    reported: HashMap<Key, String>,
}

impl Worker {
    async fn run(
        mut self,
        mut rx: broadcast::Receiver<Arc<Event>>,
        generation: u64,
        cancel: CancellationToken,
    ) {
        self.resync();
        let mut retry = tokio::time::interval(RETRY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                e = rx.recv() => match e {
                    Ok(e) if self.concerns(&e) => self.sync(&e.namespace, &e.name),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync(),
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = retry.tick() => {
                    for (ns, name) in self.proxy.retry_pending() {
                        self.report(&ns, &name);
                    }
                }
            }
        }
        self.proxy.clear_if(generation);
    }

    fn concerns(&self, e: &Event) -> bool {
        e.resource == self.services || e.resource == self.endpoints
    }

    /// Programs every service again (at start, and after missing
    /// changes), and forgets those that are gone.
    fn resync(&mut self) {
        let (services, endpoints) = match (
            self.store.list(self.services, None),
            self.store.list(self.endpoints, None),
        ) {
            (Ok((s, _)), Ok((e, _))) => (s, e),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "service proxy: cannot list services");
                return;
            }
        };
        let eps: HashMap<Key, &Value> = endpoints
            .iter()
            .filter_map(|e| Some((key(e)?, e)))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for svc in &services {
            let Some(k) = key(svc) else { continue };
            self.program(svc, eps.get(&k).copied());
            seen.insert(k);
        }
        for (ns, name) in self.proxy.names() {
            if !seen.contains(&(ns.clone(), name.clone())) {
                self.proxy.remove(&ns, &name);
            }
        }
        self.reported.retain(|k, _| seen.contains(k));
        for svc in &services {
            self.report_on(svc);
        }
    }

    /// A service or its endpoints changed: program it as stored now.
    fn sync(&mut self, namespace: &str, name: &str) {
        let svc = match self.store.try_get(self.services, Some(namespace), name) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(service = %format!("{namespace}/{name}"), error = %e, "service proxy: cannot read the service");
                return;
            }
        };
        let Some(svc) = svc else {
            self.proxy.remove(namespace, name);
            self.reported
                .remove(&(namespace.to_string(), name.to_string()));
            return;
        };
        let eps = match self.store.try_get(self.endpoints, Some(namespace), name) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(service = %format!("{namespace}/{name}"), error = %e, "service proxy: cannot read the endpoints");
                None
            }
        };
        self.program(&svc, eps.as_ref());
        self.report_on(&svc);
    }

    fn program(&self, svc: &Value, eps: Option<&Value>) {
        match service_spec(svc, eps) {
            Some(spec) => {
                self.proxy.upsert(spec);
            }
            None => {
                if let Some((ns, name)) = key(svc) {
                    self.proxy.remove(&ns, &name);
                }
            }
        }
    }

    /// A listener of the service came up: its status may change.
    fn report(&mut self, namespace: &str, name: &str) {
        if let Ok(Some(svc)) = self.store.try_get(self.services, Some(namespace), name) {
            self.report_on(&svc);
        }
    }

    /// Writes a LoadBalancer's ingress as its listeners are, and records
    /// the ports that are taken.
    fn report_on(&mut self, svc: &Value) {
        let Some(k) = key(svc) else { return };
        let ports = self.proxy.host_ports(&k.0, &k.1).unwrap_or_default();
        let lb = svc["spec"]["type"] == "LoadBalancer";
        let lb_ports: Vec<&HostPort> = ports
            .iter()
            .filter(|h| h.kind == HostPortKind::LoadBalancer)
            .collect();
        let ingress = lb && !lb_ports.is_empty() && lb_ports.iter().all(|h| h.error.is_none());
        let controller = Source {
            component: "service-controller",
            host: "",
        };
        if self.set_ingress(&k, svc, ingress) && ingress {
            self.event(
                controller,
                svc,
                false,
                "EnsuredLoadBalancer",
                "Ensured load balancer",
            );
        }
        let failed: Vec<String> = ports
            .iter()
            .filter_map(|h| {
                let e = h.error.as_deref()?;
                let what = match h.kind {
                    HostPortKind::LoadBalancer => "port",
                    HostPortKind::NodePort => "nodePort",
                };
                Some(format!(
                    "cannot listen on {INGRESS_IP}:{} ({what}): {e}",
                    h.port
                ))
            })
            .collect();
        if failed.is_empty() {
            self.reported.remove(&k);
            return;
        }
        let (source, reason, message) = if lb {
            (
                controller,
                "SyncLoadBalancerFailed",
                format!(
                    "Error syncing load balancer: failed to ensure load balancer: {}",
                    failed.join("; ")
                ),
            )
        } else {
            (
                Source {
                    component: "kube-proxy",
                    host: super::kube::NODE_NAME,
                },
                "NodePortUnavailable",
                failed.join("; "),
            )
        };
        if self.reported.get(&k) != Some(&message) {
            tracing::warn!(service = %format!("{}/{}", k.0, k.1), %message, "service proxy: a host port is taken");
            self.event(source, svc, true, reason, &message);
            self.reported.insert(k, message);
        }
    }

    fn event(&self, source: Source, svc: &Value, warning: bool, reason: &str, message: &str) {
        events::record(&self.store, source, svc, None, warning, reason, message);
    }

    /// Sets `status.loadBalancer` to the ingress (or to nothing); true
    /// when that changed it.
    fn set_ingress(&self, k: &Key, svc: &Value, ingress: bool) -> bool {
        let want = if ingress {
            json!({"ingress": [{"ip": INGRESS_IP}]})
        } else {
            json!({})
        };
        if load_balancer_status(svc) == want {
            return false;
        }
        let mut wrote = false;
        let written = self.store.modify(self.services, Some(&k.0), &k.1, |s| {
            wrote = false;
            if load_balancer_status(s) == want {
                return Ok(false);
            }
            let Some(obj) = s.as_object_mut() else {
                return Ok(false);
            };
            let status = obj.entry("status").or_insert_with(|| json!({}));
            if !status.is_object() {
                *status = json!({});
            }
            if let Some(status) = status.as_object_mut() {
                status.insert("loadBalancer".into(), want.clone());
                wrote = true;
            }
            Ok(wrote)
        });
        match written {
            Ok(_) => wrote,
            Err(e) => {
                tracing::warn!(service = %format!("{}/{}", k.0, k.1), error = %e, "service proxy: cannot write the status");
                false
            }
        }
    }
}

/// An object's (namespace, name).
fn key(obj: &Value) -> Option<Key> {
    let meta = &obj["metadata"];
    Some((
        meta["namespace"].as_str().unwrap_or("default").to_string(),
        meta["name"].as_str()?.to_string(),
    ))
}

/// `status.loadBalancer`, with no ingress written as `{}`.
fn load_balancer_status(svc: &Value) -> Value {
    let lb = &svc["status"]["loadBalancer"];
    let empty = lb["ingress"].as_array().is_none_or(Vec::is_empty);
    if lb.is_object() && !empty {
        lb.clone()
    } else {
        json!({})
    }
}

fn port_number(v: &Value) -> Option<u16> {
    v.as_u64()
        .and_then(|n| u16::try_from(n).ok())
        .filter(|n| *n != 0)
}

/// TCP by default; SCTP (and anything else) is not proxied.
fn protocol(v: &Value) -> Option<Proto> {
    match v.as_str().unwrap_or("TCP") {
        "TCP" => Some(Proto::Tcp),
        "UDP" => Some(Proto::Udp),
        _ => None,
    }
}

/// What the proxy needs of a Service and its Endpoints. An ExternalName
/// service is a name only: an alias of its `externalName`.
fn service_spec(svc: &Value, eps: Option<&Value>) -> Option<ServiceSpec> {
    let (namespace, name) = key(svc)?;
    let spec = &svc["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        let target = spec["externalName"].as_str()?.trim_end_matches('.');
        return Some(ServiceSpec {
            namespace,
            name,
            external_name: Some(target.to_ascii_lowercase()),
            ..ServiceSpec::default()
        });
    }
    let node_ports = matches!(kind, "NodePort" | "LoadBalancer");
    let load_balancer = kind == "LoadBalancer";
    let cluster_ip = spec["clusterIP"].as_str().unwrap_or_default();
    let affinity = if spec["sessionAffinity"] == "ClientIP" {
        let timeout = spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"]
            .as_u64()
            .filter(|s| *s > 0)
            .map_or(DEFAULT_AFFINITY_TIMEOUT, Duration::from_secs);
        Affinity::ClientIp { timeout }
    } else {
        Affinity::None
    };
    let subsets: &[Value] = eps
        .and_then(|e| e["subsets"].as_array())
        .map_or(&[], Vec::as_slice);
    let mut addresses: Vec<IpAddr> = Vec::new();
    for ip in subsets
        .iter()
        .flat_map(|s| s["addresses"].as_array().into_iter().flatten())
        .filter_map(|a| a["ip"].as_str()?.parse::<IpAddr>().ok())
    {
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    let ports = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = port_number(&p["port"])?;
            let proto = protocol(&p["protocol"])?;
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let endpoints = endpoints_of(subsets, &name, proto);
            Some(ServicePort {
                node_port: if node_ports {
                    port_number(&p["nodePort"])
                } else {
                    None
                },
                name,
                port,
                proto,
                load_balancer,
                endpoints,
            })
        })
        .collect();
    Some(ServiceSpec {
        namespace,
        name,
        cluster_ip: cluster_ip.parse::<Ipv4Addr>().ok(),
        headless: cluster_ip == "None",
        ports,
        affinity,
        addresses,
        external_name: None,
    })
}

/// The ready endpoints of the service port `name`/`proto`: each ready
/// address at the subset port of the same name.
fn endpoints_of(subsets: &[Value], name: &str, proto: Proto) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for subset in subsets {
        let ports = subset["ports"].as_array().into_iter().flatten();
        for port in ports.filter(|p| {
            p["name"].as_str().unwrap_or_default() == name
                && protocol(&p["protocol"]) == Some(proto)
        }) {
            let Some(number) = port_number(&port["port"]) else {
                continue;
            };
            for a in subset["addresses"].as_array().into_iter().flatten() {
                let Some(ip) = a["ip"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                    continue;
                };
                let ep = Endpoint { ip, port: number };
                if !out.contains(&ep) {
                    out.push(ep);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_and_endpoints_become_specs() {
        let svc = json!({
            "metadata": {"namespace": "default", "name": "kubia"},
            "spec": {
                "type": "LoadBalancer",
                "clusterIP": "10.96.0.12",
                "sessionAffinity": "ClientIP",
                "ports": [
                    {"name": "http", "port": 8080, "nodePort": 30599, "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "odd", "port": 9, "protocol": "SCTP"},
                    {"name": "bad", "port": 70000},
                ]
            }
        });
        let eps = json!({
            "subsets": [{
                "addresses": [{"ip": "10.244.0.2"}, {"ip": "10.244.0.3"}],
                "notReadyAddresses": [{"ip": "10.244.0.4"}],
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "dns", "port": 5353, "protocol": "UDP"}]
            }]
        });
        let spec = service_spec(&svc, Some(&eps)).expect("a spec");
        assert_eq!(spec.cluster_ip, Some(Ipv4Addr::new(10, 96, 0, 12)));
        assert!(!spec.headless);
        assert_eq!(
            spec.affinity,
            Affinity::ClientIp {
                timeout: DEFAULT_AFFINITY_TIMEOUT
            }
        );
        assert_eq!(spec.ports.len(), 2, "{:?}", spec.ports);
        let http = &spec.ports[0];
        assert_eq!(
            (http.port, http.node_port, http.load_balancer),
            (8080, Some(30599), true)
        );
        let ip = |s: &str| s.parse::<IpAddr>().expect("valid in this test");
        assert_eq!(
            http.endpoints,
            [
                Endpoint {
                    ip: ip("10.244.0.2"),
                    port: 8080
                },
                Endpoint {
                    ip: ip("10.244.0.3"),
                    port: 8080
                }
            ]
        );
        assert_eq!(spec.ports[1].proto, Proto::Udp);
        assert_eq!(spec.ports[1].endpoints[0].port, 5353);
        assert_eq!(spec.addresses, [ip("10.244.0.2"), ip("10.244.0.3")]);

        let headless = json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "ports": [{"port": 5432, "nodePort": 30000}]}});
        let spec = service_spec(&headless, None).expect("a spec");
        assert!(spec.headless && spec.cluster_ip.is_none());
        assert_eq!(spec.namespace, "default");
        assert_eq!(spec.ports[0].node_port, None, "a ClusterIP service");
        assert!(
            service_spec(
                &json!({"metadata": {"name": "x"}, "spec": {"type": "ExternalName"}}),
                None
            )
            .is_none(),
            "an ExternalName service without its name"
        );
        let alias = service_spec(
            &json!({"metadata": {"name": "x"}, "spec": {"type": "ExternalName", "externalName": "DB.Example.com."}}),
            None,
        )
        .expect("a spec");
        assert_eq!(alias.external_name.as_deref(), Some("db.example.com"));
        assert!(alias.ports.is_empty() && alias.cluster_ip.is_none());
        // Nothing in odd shapes panics.
        for odd in [
            json!(null),
            json!([]),
            json!({"metadata": 3}),
            json!({"metadata": {"name": "y"}, "spec": {"ports": "x"}}),
        ] {
            let _ = service_spec(&odd, Some(&json!({"subsets": {"a": 1}})));
            let _ = load_balancer_status(&odd);
        }
    }

    /// Polls `f` for up to ten seconds.
    async fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
        for _ in 0..1000 {
            if let Some(v) = f() {
                return Some(v);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn programs_the_proxy_writes_status_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = crate::state::StateRoot::open(dir.path()).expect("state root");
        let store = Store::open(&root).expect("store");
        let networks =
            Networks::open(&root, "10.88.0.0/16".parse().expect("valid")).expect("networks");
        let res = |plural| by_plural("", "v1", plural).expect("served");
        store
            .create(
                res("namespaces"),
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
            )
            .expect("namespace");
        let lb = |name: &str, ip: &str, port: u16| {
            json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"type": "LoadBalancer", "clusterIP": ip, "ports": [{"name": "http", "port": port}]},
            })
        };
        let free = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let taken = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let taken_port = taken.local_addr().expect("address").port();
        store
            .create(res("services"), lb("web", "10.96.0.50", free))
            .expect("service");
        let cancel = CancellationToken::new();
        let proxy = start(store.clone(), &networks, cancel.clone());
        let status = |name: &str| {
            let svc = store.get(res("services"), Some("default"), name).ok()?;
            Some(svc["status"]["loadBalancer"].clone())
        };
        let up = eventually(|| status("web").filter(|s| s["ingress"][0]["ip"] == INGRESS_IP));
        assert!(up.await.is_some(), "no ingress: {:?}", status("web"));
        // Created after the start: seen through the watch.
        store
            .create(res("services"), lb("busy", "10.96.0.51", taken_port))
            .expect("service");
        let warned = eventually(|| {
            let (events, _) = store.list(res("events"), Some("default")).ok()?;
            events
                .into_iter()
                .find(|e| e["reason"] == "SyncLoadBalancerFailed")
        });
        let warned = warned.await.expect("a SyncLoadBalancerFailed event");
        let message = warned["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("127.0.0.1:{taken_port}")),
            "{message}"
        );
        assert_eq!(warned["type"], "Warning");
        assert_eq!(status("busy"), Some(Value::Null), "still pending");
        assert_eq!(proxy.names().len(), 2);
        // Deleted, a service is forgotten.
        store
            .delete(res("services"), Some("default"), "busy", None)
            .expect("deleted");
        let forgotten = eventually(|| (proxy.names().len() == 1).then_some(()));
        assert!(forgotten.await.is_some(), "{:?}", proxy.names());
        // Stopping closes the listeners.
        cancel.cancel();
        let closed = eventually(|| std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, free)).ok());
        assert!(closed.await.is_some(), "the LoadBalancer port stayed open");
        assert!(proxy.names().is_empty());
        drop(taken);
    }

    #[test]
    fn load_balancer_status_is_normalised() {
        assert_eq!(load_balancer_status(&json!({})), json!({}));
        assert_eq!(
            load_balancer_status(&json!({"status": {"loadBalancer": {"ingress": []}}})),
            json!({})
        );
        let up = json!({"status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}}});
        assert_eq!(
            load_balancer_status(&up),
            json!({"ingress": [{"ip": "127.0.0.1"}]})
        );
    }
}
