//! `wrun rm`: remove containers.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::container::Containers;

/// Remove one or more containers
#[derive(Debug, Args)]
pub struct RmCommand {
    /// Force the removal of a running container
    #[arg(short, long)]
    force: bool,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

impl RmCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut containers = Containers::open(&ctx.root)?;
        let mut failed = false;
        for name in &self.containers {
            match containers.remove(name, self.force) {
                Ok(_) => println!("{name}"),
                Err(e) => {
                    eprintln!("wrun: {e}");
                    failed = true;
                }
            }
        }
        Ok(if failed { 1 } else { 0 })
    }
}
