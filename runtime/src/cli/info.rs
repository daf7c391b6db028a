//! `wrun info`: the daemon, its address and what it holds.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::Ctx;
use crate::api::types::InfoResponse;

/// Display system-wide information
#[derive(Debug, Args)]
pub struct InfoCommand {}

impl InfoCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(async {
            let client = ctx.client().await?;
            let i: InfoResponse = client.json(Method::GET, "/info", None::<&()>).await?;
            println!("Server:");
            println!(" Server Version: {}", i.server_version);
            println!(" Host: {}", i.wrun_host);
            println!(
                " Containers: {} (running {}, stopped {})",
                i.containers, i.containers_running, i.containers_stopped
            );
            println!(" Images: {}", i.images);
            println!(" Runtime: {}", i.default_runtime);
            println!(" Logging Driver: {}", i.logging_driver);
            println!(" Root Dir: {}", i.docker_root_dir);
            println!(" CPUs: {}", i.ncpu);
            println!();
            println!(
                "To use the docker CLI with wrun: export DOCKER_HOST={}",
                i.wrun_host
            );
            Ok(0)
        })?
    }
}
