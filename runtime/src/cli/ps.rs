//! `wrun ps`: list containers.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::Ctx;
use super::format::{ago, table};
use crate::api::types::ContainerSummary;

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
}

impl PsCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(self.run(ctx))?
    }

    async fn run(&self, ctx: &Ctx) -> Result<u8> {
        let path = format!(
            "/containers/json?all={}{}",
            u8::from(self.all),
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
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                let mut command = format!("\"{}\"", c.command);
                if !self.no_trunc && command.chars().count() > 22 {
                    command = format!("{}…\"", command.chars().take(20).collect::<String>());
                }
                let created = chrono::DateTime::from_timestamp(c.created, 0)
                    .map(ago)
                    .unwrap_or_default();
                vec![
                    short(&c.id),
                    c.image.clone(),
                    command,
                    created,
                    c.status.clone(),
                    ports_column(&c.ports),
                    c.names
                        .iter()
                        .map(|n| n.trim_start_matches('/'))
                        .collect::<Vec<_>>()
                        .join(","),
                ]
            })
            .collect();
        table(
            &[
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "PORTS",
                "NAMES",
            ],
            &rows,
        )?;
        Ok(0)
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
