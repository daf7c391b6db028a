//! `wrun ps`: list containers.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use super::format::{ago, table};
use crate::container::{ContainerRecord, ContainerState, Containers};

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
}

impl PsCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let containers = Containers::open(&ctx.root)?;
        let list: Vec<ContainerRecord> = containers
            .list()?
            .into_iter()
            .filter(|c| self.all || c.state == ContainerState::Running)
            .collect();
        if self.quiet {
            for c in &list {
                println!("{}", if self.no_trunc { &c.id } else { c.short_id() });
            }
            return Ok(0);
        }
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|c| {
                let mut command = format!("\"{}\"", c.spec.argv.join(" "));
                if !self.no_trunc && command.chars().count() > 22 {
                    command = format!("{}…\"", command.chars().take(20).collect::<String>());
                }
                vec![
                    if self.no_trunc {
                        c.id.clone()
                    } else {
                        c.short_id().to_string()
                    },
                    c.spec.image.clone(),
                    command,
                    ago(c.created_at),
                    status(c),
                    String::new(),
                    c.name.clone(),
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

/// Docker's STATUS column.
fn status(c: &ContainerRecord) -> String {
    match c.state {
        ContainerState::Created => "Created".into(),
        ContainerState::Running => match c.started_at {
            Some(t) => format!(
                "Up {}",
                super::format::human_duration(chrono::Utc::now() - t)
            ),
            None => "Up".into(),
        },
        ContainerState::Exited => format!(
            "Exited ({}) {}",
            c.exit_code.unwrap_or(0),
            c.finished_at.map(ago).unwrap_or_default()
        ),
    }
}
