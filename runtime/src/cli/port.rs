//! `wrun port`: the published ports of a container, as `docker port`
//! prints them.

use anyhow::{Result, bail};
use clap::Args;
use hyper::Method;

use super::Ctx;
use super::run::encode;
use crate::api::types::ContainerInspect;

/// List port mappings or a specific mapping for the container
#[derive(Debug, Args)]
pub struct PortCommand {
    #[arg(value_name = "CONTAINER")]
    container: String,
    /// Only this container port (PORT or PORT/PROTO)
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    port: Option<String>,
}

impl PortCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(async {
            let client = ctx.client().await?;
            let c: ContainerInspect = client
                .json(
                    Method::GET,
                    &format!("/containers/{}/json", encode(&self.container)),
                    None::<&()>,
                )
                .await?;
            let wanted = self.port.as_deref().map(|p| {
                if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                }
            });
            let mut found = false;
            for (key, hosts) in &c.network_settings.ports {
                if wanted.as_ref().is_some_and(|w| w != key) {
                    continue;
                }
                for h in hosts.iter().flatten() {
                    found = true;
                    let ip = match h.host_ip.parse::<std::net::IpAddr>() {
                        Ok(std::net::IpAddr::V6(v6)) => format!("[{v6}]"),
                        _ => h.host_ip.clone(),
                    };
                    if wanted.is_some() {
                        println!("{ip}:{}", h.host_port);
                    } else {
                        println!("{key} -> {ip}:{}", h.host_port);
                    }
                }
            }
            if let Some(w) = wanted
                && !found
            {
                bail!("no public port '{w}' published for {}", self.container);
            }
            Ok(0)
        })?
    }
}
