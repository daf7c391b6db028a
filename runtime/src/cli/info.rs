//! `wrun info`: the daemon, its address and what it holds.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::Ctx;
use super::template::Format;
use crate::api::types::InfoResponse;

/// Display system-wide information
#[derive(Debug, Args)]
pub struct InfoCommand {
    /// Format output: json, or a Go template (`{{.ServerVersion}}`)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
}

impl InfoCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let format = Format::parse(self.format.as_deref())?;
        super::block_on(async {
            let client = ctx.client().await?;
            if !format.is_default() {
                let v: serde_json::Value = client.json(Method::GET, "/info", None::<&()>).await?;
                format.print_objects(&[v])?;
                return Ok(0);
            }
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
