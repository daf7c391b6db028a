//! `wrun login`: check credentials against a registry and save them.

use std::io::Read as _;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::Ctx;
use crate::registry::auth;

/// Log in to a registry
#[derive(Debug, Args)]
pub struct LoginCommand {
    /// Username
    #[arg(short, long)]
    username: String,
    /// Password
    #[arg(short, long, conflicts_with = "password_stdin")]
    password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    password_stdin: bool,
    /// The registry, e.g. `127.0.0.1:5000` or `ghcr.io`
    #[arg(value_name = "SERVER")]
    server: String,
}

impl LoginCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let password = match (self.password, self.password_stdin) {
            (Some(p), _) => p,
            (None, true) => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("login: cannot read the password from stdin")?;
                s.trim_end_matches(['\n', '\r']).to_string()
            }
            (None, false) => bail!(
                "login {}: give a password with -p or --password-stdin",
                self.server
            ),
        };
        if password.is_empty() {
            bail!("login {}: the password is empty", self.server);
        }
        let server = normalise(&self.server);
        auth::login(&ctx.root, &server, &self.username, &password)?;
        println!("Login Succeeded");
        Ok(0)
    }
}

/// `https://host/` and `host` name the same registry.
pub(super) fn normalise(server: &str) -> String {
    server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string()
}
