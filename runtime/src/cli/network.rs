//! `wrun network create|ls|rm|inspect`: user-defined networks, on which
//! containers reach each other by name.

use anyhow::Result;
use clap::{Args, Subcommand};
use hyper::Method;

use super::Ctx;
use super::format::table;
use super::run::encode;
use super::template::{Format, refuse_quiet_with_format};
use crate::api::types::{
    Ipam, IpamConfig, NetworkCreateRequest, NetworkCreateResponse, NetworkResource,
};

/// The column each `network ls --format` field heads, as the docker CLI
/// names them (and wrun's `Subnet`).
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED AT"),
    ("Subnet", "SUBNET"),
];

/// Manage networks
#[derive(Debug, Args)]
pub struct NetworkCommand {
    #[command(subcommand)]
    action: NetworkAction,
}

#[derive(Debug, Subcommand)]
enum NetworkAction {
    /// Create a network
    Create {
        /// Subnet in CIDR form (default: the next free 10.N.0.0/16)
        #[arg(long, value_name = "CIDR")]
        subnet: Option<String>,
        /// Driver: only bridge, wrun's virtual network
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Set metadata on the network (KEY=VALUE); repeatable
        #[arg(long = "label", value_name = "KEY=VALUE")]
        label: Vec<String>,
        #[arg(value_name = "NETWORK")]
        name: String,
    },
    /// List networks
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output
        #[arg(long)]
        no_trunc: bool,
        /// Filter output (name=..., label=k=v, driver=..., type=custom, ...)
        #[arg(short, long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Format output: table, table TEMPLATE, json, or a Go template
        /// (`{{.Name}} {{.Driver}}`)
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
    },
    /// Remove one or more networks
    #[command(alias = "remove")]
    Rm {
        #[arg(value_name = "NETWORK", required = true)]
        names: Vec<String>,
    },
    /// Display detailed information on one or more networks
    Inspect {
        #[arg(value_name = "NETWORK", required = true)]
        names: Vec<String>,
    },
}

impl NetworkCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(async {
            let client = ctx.client().await?;
            match self.action {
                NetworkAction::Create {
                    subnet,
                    driver,
                    label,
                    name,
                } => {
                    let body = NetworkCreateRequest {
                        name,
                        driver,
                        ipam: subnet.map(|s| Ipam {
                            driver: "default".into(),
                            config: vec![IpamConfig {
                                subnet: s,
                                gateway: String::new(),
                            }],
                        }),
                        internal: false,
                        labels: Some(super::flags::labels(&label)?),
                    };
                    let r: NetworkCreateResponse = client
                        .json(Method::POST, "/networks/create", Some(&body))
                        .await?;
                    println!("{}", r.id);
                    Ok(0)
                }
                NetworkAction::Ls {
                    quiet,
                    no_trunc,
                    filter,
                    format,
                } => {
                    let format = Format::parse(format.as_deref())?;
                    refuse_quiet_with_format(quiet, &format)?;
                    let path = format!("/networks?{}", super::flags::filters_query(&filter)?);
                    let nets: Vec<NetworkResource> =
                        client.json(Method::GET, &path, None::<&()>).await?;
                    let id = |n: &NetworkResource| -> String {
                        if no_trunc {
                            n.id.clone()
                        } else {
                            n.id.chars().take(12).collect()
                        }
                    };
                    if quiet {
                        for n in &nets {
                            println!("{}", id(n));
                        }
                        return Ok(0);
                    }
                    if !format.is_default() {
                        let fields: Vec<serde_json::Value> = nets
                            .iter()
                            .map(|n| {
                                serde_json::json!({
                                    "ID": id(n),
                                    "Name": n.name,
                                    "Driver": n.driver,
                                    "Scope": n.scope,
                                    "IPv6": n.enable_ipv6.to_string(),
                                    "Internal": n.internal.to_string(),
                                    "Labels": n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
                                    "CreatedAt": n.created,
                                    "Subnet": n.ipam.config.first().map(|c| c.subnet.clone()).unwrap_or_default(),
                                })
                            })
                            .collect();
                        format.print(&fields, HEADERS)?;
                        return Ok(0);
                    }
                    let rows: Vec<Vec<String>> = nets
                        .iter()
                        .map(|n| {
                            vec![
                                id(n),
                                n.name.clone(),
                                n.driver.clone(),
                                n.scope.clone(),
                                n.ipam
                                    .config
                                    .first()
                                    .map(|c| c.subnet.clone())
                                    .unwrap_or_default(),
                            ]
                        })
                        .collect();
                    table(&["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET"], &rows)?;
                    Ok(0)
                }
                NetworkAction::Rm { names } => {
                    let mut failed = 0u8;
                    for n in names {
                        let path = format!("/networks/{}", encode(&n));
                        match client.call(Method::DELETE, &path).await {
                            Ok(_) => println!("{n}"),
                            Err(e) => {
                                eprintln!("Error response from daemon: {e}");
                                failed = 1;
                            }
                        }
                    }
                    Ok(failed)
                }
                NetworkAction::Inspect { names } => {
                    let mut out = Vec::new();
                    for n in names {
                        let path = format!("/networks/{}", encode(&n));
                        let v: serde_json::Value =
                            client.json(Method::GET, &path, None::<&()>).await?;
                        out.push(v);
                    }
                    println!("{}", serde_json::to_string_pretty(&out)?);
                    Ok(0)
                }
            }
        })?
    }
}
