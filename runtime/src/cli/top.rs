//! `wrun top`: the processes of a running container.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::Ctx;
use super::format::table;
use super::run::encode;
use crate::api::types::TopResponse;

/// Display the running processes of a container
#[derive(Debug, Args)]
pub struct TopCommand {
    #[arg(value_name = "CONTAINER")]
    container: String,
}

impl TopCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(async {
            let client = ctx.client().await?;
            let top: TopResponse = client
                .json(
                    Method::GET,
                    &format!("/containers/{}/top", encode(&self.container)),
                    None::<&()>,
                )
                .await?;
            let titles: Vec<&str> = top.titles.iter().map(String::as_str).collect();
            table(&titles, &top.processes)?;
            Ok(0)
        })?
    }
}
