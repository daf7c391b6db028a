//! Published ports on the wire: Docker's `PortBindings` map
//! (`{"8080/tcp": [{"HostIp": "", "HostPort": "8080"}]}`) to and from
//! wrun's `-p` specs.

use std::collections::BTreeMap;

use super::types::PortBinding;
use crate::net::Proto;
use crate::net::publish::PortSpec;

/// A port key as Docker writes it: `8080/tcp`.
pub fn port_key(port: u16, proto: Proto) -> String {
    format!("{port}/{}", proto.name())
}

/// The `HostConfig.PortBindings` of a container's `-p` specs.
pub fn port_bindings(ports: &[String]) -> BTreeMap<String, Option<Vec<PortBinding>>> {
    let mut out: BTreeMap<String, Option<Vec<PortBinding>>> = BTreeMap::new();
    for p in ports.iter().filter_map(|p| PortSpec::parse(p).ok()) {
        out.entry(port_key(p.container_port, p.proto))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(PortBinding {
                host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                host_port: if p.host_port == 0 {
                    String::new()
                } else {
                    p.host_port.to_string()
                },
            });
    }
    out
}

/// Turns `HostConfig.PortBindings` back into `-p` specs.
pub fn port_specs(
    bindings: &BTreeMap<String, Option<Vec<PortBinding>>>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (key, hosts) in bindings {
        let hosts = hosts.clone().unwrap_or_default();
        let hosts = if hosts.is_empty() {
            vec![PortBinding::default()]
        } else {
            hosts
        };
        for h in hosts {
            let ip = match h.host_ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
                _ => h.host_ip.clone(),
            };
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let spec = format!("{ip}:{}:{port}/{proto}", h.host_port);
            PortSpec::parse(&spec).map_err(|e| format!("invalid port binding {key:?}: {e}"))?;
            out.push(spec);
        }
    }
    Ok(out)
}
