//! `wrun logout`: forget the saved credentials of a registry.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use super::login::normalise;
use crate::registry::auth;

/// Log out from a registry
#[derive(Debug, Args)]
pub struct LogoutCommand {
    /// The registry, e.g. `127.0.0.1:5000` or `ghcr.io`
    #[arg(value_name = "SERVER")]
    server: String,
}

impl LogoutCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let server = normalise(&self.server);
        if auth::logout(&ctx.root, &server)? {
            println!("Removing login credentials for {server}");
        } else {
            println!("Not logged in to {server}");
        }
        Ok(0)
    }
}
