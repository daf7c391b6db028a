//! `/networks` (list, inspect, create, remove), the network parts of a
//! container's `inspect` and `ps` row, and wrun's own `/_wrun/net` view of
//! every namespace's port tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::super::error::DaemonError;
use super::super::http::{self, Query, Resp};
use super::super::supervisor::{Live, Supervisor};
use crate::api::filters::Filters;
use crate::api::ports;
use crate::api::types::{
    EndpointSettings, Ipam, IpamConfig, NetworkContainer, NetworkCreateRequest,
    NetworkCreateResponse, NetworkResource, NetworkSettings, Port, PortBinding,
};
use crate::container::ContainerSpec;
use crate::daemon::events::Event;
use crate::net::{NetMode, NetworkInfo, Proto};

fn resource(
    info: &NetworkInfo,
    members: &[(String, std::net::Ipv4Addr)],
    sup: &Supervisor,
) -> NetworkResource {
    let prefix = info.subnet.map(|s| s.prefix_len()).unwrap_or(0);
    let containers = members
        .iter()
        .map(|(id, ip)| {
            let name = sup.db().get(id).map(|r| r.name).unwrap_or_default();
            (
                id.clone(),
                NetworkContainer {
                    name,
                    ipv4_address: format!("{ip}/{prefix}"),
                },
            )
        })
        .collect();
    NetworkResource {
        name: info.name.clone(),
        id: info.id.clone(),
        created: if info.created.is_empty() {
            super::containers::ZERO_TIME.to_string()
        } else {
            info.created.clone()
        },
        scope: "local".into(),
        driver: info.driver.clone(),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            config: info
                .subnet
                .map(|s| IpamConfig {
                    subnet: s.to_string(),
                    gateway: info.gateway.map(|g| g.to_string()).unwrap_or_default(),
                })
                .into_iter()
                .collect(),
        },
        internal: false,
        attachable: info.user_defined,
        ingress: false,
        containers,
        options: BTreeMap::new(),
        labels: info.labels.clone(),
    }
}

/// The filters `GET /networks` takes.
const NETWORK_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];

pub fn list(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let f = Filters::parse(q.get("filters"), "networks", NETWORK_FILTERS)?;
    let names = f.regexes("name")?;
    for t in f.values("type") {
        if t != "custom" && t != "builtin" {
            return Err(DaemonError::bad_request(format!(
                "invalid filter type={t:?}: a network's type is custom or builtin"
            )));
        }
    }
    let dangling = f.bool("dangling")?;
    let nets = sup.networks().fabric().networks();
    // The pod network belongs to the cluster, as minikube's does: it is
    // not listed among Docker's networks.
    let out: Vec<NetworkResource> = nets
        .iter()
        .filter(|(info, _)| info.name != crate::daemon::networks::POD_NETWORK)
        .filter(|(info, members)| {
            let kind = if info.user_defined {
                "custom"
            } else {
                "builtin"
            };
            (names.is_empty() || names.iter().any(|r| r.is_match(&info.name)))
                && f.any("id", |v| info.id.starts_with(v))
                && f.any("driver", |v| info.driver == v)
                && f.any("scope", |v| v == "local")
                && f.any("type", |v| v == kind)
                && f.labels_match(&info.labels)
                && dangling.is_none_or(|d| d == (info.user_defined && members.is_empty()))
        })
        .map(|(info, members)| resource(info, members, sup))
        .collect();
    Ok(http::json(StatusCode::OK, &out))
}

pub fn inspect(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let info = sup.networks().fabric().network(id)?;
    let nets = sup.networks().fabric().networks();
    let members = nets
        .iter()
        .find(|(i, _)| i.id == info.id)
        .map(|(_, m)| m.clone())
        .unwrap_or_default();
    Ok(http::json(StatusCode::OK, &resource(&info, &members, sup)))
}

pub async fn create(sup: &Arc<Supervisor>, req: Request<Incoming>) -> Result<Resp, DaemonError> {
    let body: NetworkCreateRequest = http::read_json(req, "network create").await?;
    if !body.driver.is_empty() && body.driver != "bridge" {
        return Err(DaemonError::bad_request(format!(
            "network {}: driver {:?} is not supported; wrun's networks use the bridge driver",
            body.name, body.driver
        )));
    }
    let subnet = body
        .ipam
        .as_ref()
        .and_then(|i| i.config.first())
        .map(|c| c.subnet.clone())
        .filter(|s| !s.is_empty());
    let info = sup.networks().create(
        &body.name,
        subnet.as_deref(),
        body.labels.unwrap_or_default(),
    )?;
    sup.events.publish(
        Event::new("network", "create", info.id.clone())
            .with("name", info.name.clone())
            .with("type", info.driver.clone()),
    );
    Ok(http::json(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id: info.id,
            warning: String::new(),
        },
    ))
}

pub fn remove(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let info = sup.networks().remove(id)?;
    sup.events.publish(
        Event::new("network", "destroy", info.id)
            .with("name", info.name)
            .with("type", info.driver),
    );
    Ok(http::empty(StatusCode::NO_CONTENT))
}

/// `GET /_wrun/net`: each live namespace's address and bound ports, for
/// debugging and for the tests that check nothing leaks.
pub fn tables(sup: &Arc<Supervisor>) -> Result<Resp, DaemonError> {
    let out: Vec<serde_json::Value> = sup
        .networks()
        .fabric()
        .namespaces()
        .iter()
        .map(|ns| {
            serde_json::json!({
                "Owner": ns.owner(),
                "Network": ns.network(),
                "IPAddress": ns.ip().to_string(),
                "Tcp": ns.ports(Proto::Tcp),
                "Udp": ns.ports(Proto::Udp),
            })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &out))
}

/// The `NetworkSettings` of a container: its network (always), and its
/// address and published ports while it runs.
pub fn settings(sup: &Supervisor, spec: &ContainerSpec, live: Option<&Live>) -> NetworkSettings {
    let mut out = NetworkSettings::default();
    if let Some(live) = live {
        for p in &live.net.published {
            out.ports
                .entry(ports::port_key(p.spec.container_port, p.spec.proto))
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.addr.ip().to_string(),
                    host_port: p.addr.port().to_string(),
                });
        }
    }
    out.networks = endpoints(sup, spec, live);
    if let Some(ep) = out.networks.values().next() {
        out.ip_address = ep.ip_address.clone();
        out.ip_prefix_len = ep.ip_prefix_len;
        out.gateway = ep.gateway.clone();
    }
    out
}

/// The container's endpoint on its network, by network name: the network's
/// ID and the aliases it was given, and while it runs its address. A pod's
/// containers show none, as their pod's network is the cluster's.
pub fn endpoints(
    sup: &Supervisor,
    spec: &ContainerSpec,
    live: Option<&Live>,
) -> BTreeMap<String, EndpointSettings> {
    let mut out = BTreeMap::new();
    let Ok(info) = sup.networks().fabric().network(&spec.network) else {
        return out;
    };
    let mut ep = EndpointSettings {
        network_id: info.id.clone(),
        aliases: spec.aliases.clone(),
        ..Default::default()
    };
    if let Some(NetMode::Virtual(ns)) = live.map(|l| &l.net.grant.mode) {
        ep.ip_address = ns.ip().to_string();
        ep.ip_prefix_len = info.subnet.map(|s| s.prefix_len()).unwrap_or(0);
        ep.gateway = ns.gateway().to_string();
        ep.aliases = ns.names();
    }
    out.insert(info.name, ep);
    out
}

/// The `Ports` of a `ps` row.
pub fn summary_ports(live: Option<&Live>) -> Vec<Port> {
    let Some(live) = live else {
        return Vec::new();
    };
    live.net
        .published
        .iter()
        .map(|p| Port {
            ip: Some(p.addr.ip().to_string()),
            private_port: p.spec.container_port,
            public_port: Some(p.addr.port()),
            kind: p.spec.proto.name().into(),
        })
        .collect()
}
