//! `/networks` (list, inspect, create, remove), the network parts of a
//! container's `inspect` and `ps` row, and wrun's own `/_wrun/net` view of
//! every namespace's port tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::super::error::DaemonError;
use super::super::http::{self, Resp};
use super::super::supervisor::{Live, Supervisor};
use crate::api::ports;
use crate::api::types::{
    EndpointSettings, Ipam, IpamConfig, NetworkContainer, NetworkCreateRequest,
    NetworkCreateResponse, NetworkResource, NetworkSettings, Port, PortBinding,
};
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
        labels: BTreeMap::new(),
    }
}

pub fn list(sup: &Arc<Supervisor>) -> Result<Resp, DaemonError> {
    let nets = sup.networks().fabric().networks();
    // The pod network belongs to the cluster, as minikube's does: it is
    // not listed among Docker's networks.
    let out: Vec<NetworkResource> = nets
        .iter()
        .filter(|(info, _)| info.name != crate::daemon::networks::POD_NETWORK)
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
    let info = sup.networks().create(&body.name, subnet.as_deref())?;
    Ok(http::json(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id: info.id,
            warning: String::new(),
        },
    ))
}

pub fn remove(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    sup.networks().remove(id)?;
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

/// The `NetworkSettings` of a container: its address and published ports
/// while it runs.
pub fn settings(sup: &Supervisor, network: &str, live: Option<&Live>) -> NetworkSettings {
    let mut out = NetworkSettings::default();
    let Some(live) = live else { return out };
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
    if let NetMode::Virtual(ns) = &live.net.grant.mode {
        let info = sup.networks().fabric().network(network).ok();
        let prefix = info
            .as_ref()
            .and_then(|i| i.subnet)
            .map(|s| s.prefix_len())
            .unwrap_or(0);
        let id = info.map(|i| i.id).unwrap_or_default();
        out.ip_address = ns.ip().to_string();
        out.ip_prefix_len = prefix;
        out.gateway = ns.gateway().to_string();
        out.networks.insert(
            ns.network().to_string(),
            EndpointSettings {
                network_id: id,
                ip_address: ns.ip().to_string(),
                ip_prefix_len: prefix,
                gateway: ns.gateway().to_string(),
                aliases: ns.names(),
            },
        );
    }
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
