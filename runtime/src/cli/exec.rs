//! `wrun exec`: run another program in a running container.

use anyhow::{Context as _, Result};
use clap::Args;
use hyper::Method;

use super::run::{encode, resolve_env};
use super::{Ctx, streams};
use crate::api::types::{ExecCreateRequest, ExecInspect, ExecStartRequest, IdResponse};

/// Execute a command in a running container
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecCommand {
    /// Detached mode: run the command in the background
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY (output is passed through unframed)
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "COMMAND", required = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl ExecCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(self.run(ctx))?
    }

    async fn run(&self, ctx: &Ctx) -> Result<u8> {
        let client = ctx.client().await?;
        let attach = !self.detach;
        let body = ExecCreateRequest {
            attach_stdin: self.interactive && attach,
            attach_stdout: attach,
            attach_stderr: attach,
            tty: self.tty,
            cmd: Some(self.command.clone()),
            env: Some(resolve_env(&self.env)),
            working_dir: self.workdir.clone().unwrap_or_default(),
            user: String::new(),
        };
        let created: IdResponse = client
            .json(
                Method::POST,
                &format!("/containers/{}/exec", encode(&self.container)),
                Some(&body),
            )
            .await?;
        let start = serde_json::to_vec(&ExecStartRequest {
            detach: self.detach,
            tty: self.tty,
        })?;
        let path = format!("/exec/{}/start", created.id);
        if self.detach {
            client.request(Method::POST, &path, Some(start)).await?;
            return Ok(0);
        }
        let conn = client.hijack(&path, Some(start)).await?;
        let (rd, wr) = tokio::io::split(conn);
        if self.interactive {
            tokio::spawn(streams::pump_stdin(wr));
        } else {
            drop(wr);
        }
        streams::copy_output(rd, self.tty).await?;
        let info: ExecInspect = client
            .json(
                Method::GET,
                &format!("/exec/{}/json", created.id),
                None::<&()>,
            )
            .await
            .context("cannot read the exec's exit code")?;
        Ok(u8::try_from(info.exit_code.unwrap_or(0) & 0xff).unwrap_or(1))
    }
}
