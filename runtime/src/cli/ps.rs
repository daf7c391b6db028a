//! `wrun ps`: list containers.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::Ctx;
use super::format::{ago, human_size, table};
use super::template::{Format, refuse_quiet_with_format};
use crate::api::types::ContainerSummary;

/// The column each `--format` field heads, as the docker CLI names them.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// List containers
#[derive(Debug, Args)]
pub struct PsCommand {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Filter output (status=running, name=web, label=k=v, ancestor=image, ...)
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Display total file sizes
    #[arg(short, long)]
    size: bool,
    /// Format output: table, table TEMPLATE, json, or a Go template
    /// (`{{.ID}} {{.Names}}`)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
}

impl PsCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(self.run(ctx))?
    }

    async fn run(&self, ctx: &Ctx) -> Result<u8> {
        let format = Format::parse(self.format.as_deref())?;
        refuse_quiet_with_format(self.quiet, &format)?;
        let path = format!(
            "/containers/json?all={}&size={}{}",
            u8::from(self.all),
            u8::from(self.size),
            super::flags::filters_query(&self.filter)?
        );
        let client = ctx.client().await?;
        let list: Vec<ContainerSummary> = client.json(Method::GET, &path, None::<&()>).await?;
        let short = |id: &str| -> String {
            if self.no_trunc {
                id.to_string()
            } else {
                id.chars().take(12).collect()
            }
        };
        if self.quiet {
            for c in &list {
                println!("{}", short(&c.id));
            }
            return Ok(0);
        }
        let fields: Vec<serde_json::Value> = list.iter().map(|c| self.fields(c)).collect();
        if !format.is_default() {
            format.print(&fields, HEADERS)?;
            return Ok(0);
        }
        let mut header = vec![
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ];
        let mut columns = vec![
            "ID",
            "Image",
            "Command",
            "RunningFor",
            "Status",
            "Ports",
            "Names",
        ];
        if self.size {
            header.push("SIZE");
            columns.push("Size");
        }
        let rows = super::template::cells(&fields, &columns);
        table(&header, &rows)?;
        Ok(0)
    }

    /// One container as the docker CLI's `--format` fields see it.
    fn fields(&self, c: &ContainerSummary) -> serde_json::Value {
        let id = if self.no_trunc {
            c.id.clone()
        } else {
            c.id.chars().take(12).collect()
        };
        let mut command = format!("\"{}\"", c.command);
        if !self.no_trunc && command.chars().count() > 22 {
            command = format!("{}…\"", command.chars().take(20).collect::<String>());
        }
        let created = chrono::DateTime::from_timestamp(c.created, 0);
        let size = match (c.size_rw, c.size_root_fs) {
            (Some(rw), Some(total)) => format!(
                "{} (virtual {})",
                human_size(u64::try_from(rw).unwrap_or(0)),
                human_size(u64::try_from(total).unwrap_or(0))
            ),
            (Some(rw), None) => human_size(u64::try_from(rw).unwrap_or(0)),
            _ => "0B".into(),
        };
        let join = |items: Vec<String>| items.join(",");
        serde_json::json!({
            "ID": id,
            "Image": c.image,
            "Command": command,
            "CreatedAt": created
                .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                .unwrap_or_default(),
            "RunningFor": created.map(ago).unwrap_or_default(),
            "Ports": ports_column(&c.ports),
            "State": c.state,
            "Status": c.status,
            "Size": size,
            "Names": join(c.names.iter().map(|n| n.trim_start_matches('/').to_string()).collect()),
            "Labels": join(c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            "Mounts": join(c.mounts.iter().map(|m| m.source.clone()).collect()),
            "Networks": join(c.network_settings.networks.keys().cloned().collect()),
            "LocalVolumes": c.mounts.iter().filter(|m| m.kind == "volume").count().to_string(),
        })
    }
}

/// Docker's PORTS column: `0.0.0.0:8080->8080/tcp, 127.0.0.1:9000->9000/tcp`.
fn ports_column(ports: &[crate::api::types::Port]) -> String {
    ports
        .iter()
        .map(|p| {
            let private = format!("{}/{}", p.private_port, p.kind);
            match (&p.ip, p.public_port) {
                (Some(ip), Some(public)) if ip.contains(':') => {
                    format!("[{ip}]:{public}->{private}")
                }
                (Some(ip), Some(public)) => format!("{ip}:{public}->{private}"),
                _ => private,
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}
