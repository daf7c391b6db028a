//! The container verbs that act on a list of containers and print each
//! name as it succeeds: `rm`, `start`, `stop`, `restart`, `kill`; and
//! `wait`, `rename`.

use anyhow::Result;
use clap::Args;
use hyper::{Method, StatusCode};

use super::Ctx;
use super::run::encode;
use crate::api::types::WaitResponse;
use crate::client::{Client, ClientError};

/// Runs `action` for each container, printing its name on success and the
/// daemon's message on failure; the exit code is 1 if any failed.
async fn each<F, Fut>(ctx: &Ctx, names: &[String], action: F) -> Result<u8>
where
    F: Fn(Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), ClientError>>,
{
    let client = ctx.client().await?;
    let mut failed = false;
    for name in names {
        match action(client.clone(), name.clone()).await {
            Ok(()) => println!("{name}"),
            Err(e) => {
                eprintln!("Error response from daemon: {e}");
                failed = true;
            }
        }
    }
    Ok(u8::from(failed))
}

/// `POST /containers/{name}/{action}{query}` for each container.
fn post_each(ctx: &Ctx, names: &[String], action: &str, query: &str) -> Result<u8> {
    super::block_on(each(ctx, names, |c, n| {
        let path = format!("/containers/{}/{action}{query}", encode(&n));
        async move { c.call(Method::POST, &path).await.map(|_| ()) }
    }))?
}

/// `?t=N` when a grace period was given.
fn time_query(time: Option<i64>) -> String {
    time.map(|t| format!("?t={t}")).unwrap_or_default()
}

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
        let force = u8::from(self.force);
        super::block_on(each(ctx, &self.containers, |c, n| async move {
            c.call(
                Method::DELETE,
                &format!("/containers/{}?force={force}", encode(&n)),
            )
            .await
            .map(|_| ())
        }))?
    }
}

/// Start one or more stopped containers
#[derive(Debug, Args)]
pub struct StartCommand {
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

impl StartCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        post_each(ctx, &self.containers, "start", "")
    }
}

/// Stop one or more running containers (at once: a wasm guest has no
/// signal handlers, so there is no grace period to wait out)
#[derive(Debug, Args)]
pub struct StopCommand {
    /// Seconds to wait before killing (accepted; guests stop at once)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    time: Option<i64>,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

impl StopCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        post_each(ctx, &self.containers, "stop", &time_query(self.time))
    }
}

/// Restart one or more containers
#[derive(Debug, Args)]
pub struct RestartCommand {
    /// Seconds to wait before killing (accepted; guests stop at once)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    time: Option<i64>,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

impl RestartCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        post_each(ctx, &self.containers, "restart", &time_query(self.time))
    }
}

/// Kill one or more running containers
#[derive(Debug, Args)]
pub struct KillCommand {
    /// Signal to send: SIGINT ends the guest as interrupted (130), any
    /// other as killed (137)
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

impl KillCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let query = format!("?signal={}", encode(&self.signal));
        post_each(ctx, &self.containers, "kill", &query)
    }
}

/// Block until one or more containers stop, then print their exit codes
#[derive(Debug, Args)]
pub struct WaitCommand {
    #[arg(value_name = "CONTAINER", required = true)]
    containers: Vec<String>,
}

impl WaitCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(async {
            let client = ctx.client().await?;
            let mut failed = false;
            for name in &self.containers {
                let r: Result<WaitResponse, _> = client
                    .json(
                        Method::POST,
                        &format!("/containers/{}/wait", encode(name)),
                        None::<&()>,
                    )
                    .await;
                match r {
                    Ok(w) => println!("{}", w.status_code),
                    Err(e) => {
                        eprintln!("Error response from daemon: {e}");
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        })?
    }
}

/// Rename a container
#[derive(Debug, Args)]
pub struct RenameCommand {
    #[arg(value_name = "CONTAINER")]
    container: String,
    #[arg(value_name = "NEW_NAME")]
    new_name: String,
}

impl RenameCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(async {
            let client = ctx.client().await?;
            let path = format!(
                "/containers/{}/rename?name={}",
                encode(&self.container),
                encode(&self.new_name)
            );
            match client.call(Method::POST, &path).await {
                Ok(StatusCode::NO_CONTENT | StatusCode::OK) => Ok(0),
                Ok(_) => Ok(0),
                Err(e) => Err(e.into()),
            }
        })?
    }
}
