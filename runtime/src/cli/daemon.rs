//! `wrun daemon`: run the daemon in the foreground; `wrun daemon stop`
//! stops the one serving this state root.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use hyper::Method;

use super::Ctx;
use crate::client::Client;
use crate::daemon::DaemonOptions;

/// Run the wrun daemon in the foreground (other commands start it on demand)
#[derive(Debug, Args)]
pub struct DaemonCommand {
    /// Guest instances to reserve room for (the most containers and execs
    /// that can run at once)
    #[arg(long, default_value_t = 4096, value_name = "N")]
    max_instances: u32,
    /// The default network's subnet; containers get their virtual IPs from
    /// it. Virtual IPs exist only inside wrun
    #[arg(long, env = "WRUN_BRIDGE_SUBNET", default_value = crate::net::DEFAULT_SUBNET, value_name = "CIDR")]
    bridge_subnet: ipnet::Ipv4Net,
    #[command(subcommand)]
    action: Option<DaemonAction>,
}

#[derive(Debug, Subcommand)]
enum DaemonAction {
    /// Stop the daemon of this state root gracefully: its containers are
    /// stopped and their state saved
    Stop,
}

/// How long `daemon stop` waits for the daemon to finish.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

impl DaemonCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        match self.action {
            None => {
                crate::daemon::run(DaemonOptions {
                    root: ctx.root.clone(),
                    address: ctx.address.clone(),
                    max_instances: self.max_instances,
                    bridge_subnet: self.bridge_subnet,
                })?;
                Ok(0)
            }
            Some(DaemonAction::Stop) => super::block_on(stop(ctx))?,
        }
    }
}

async fn stop(ctx: &Ctx) -> Result<u8> {
    let client = Client::new(ctx.address.clone());
    if !client.ping().await {
        eprintln!("no wrun daemon is running at {}", ctx.address);
        return Ok(0);
    }
    client.call(Method::POST, "/_wrun/shutdown").await?;
    // Done when the lock is free: the process has exited.
    let lock = ctx.root.dir().join("daemon.lock");
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&lock)
            && f.try_lock().is_ok()
        {
            return Ok(0);
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon at {} did not stop within {STOP_TIMEOUT:?}",
                ctx.address
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
