//! The `wrun` command line: one file per verb, each an argument struct with
//! an `execute` method. Library errors are typed; here they become
//! `anyhow` errors with context and are printed once, in `main`.

mod build;
mod cluster;
mod completion;
mod containers;
mod daemon;
mod dashboard;
mod exec;
mod flags;
pub(crate) mod format;
mod history;
mod image;
mod images;
mod info;
mod inspect;
pub mod kubeconfig;
mod load;
mod login;
mod logout;
mod logs;
mod network;
mod port;
mod ps;
mod pull;
mod push;
mod rmi;
mod run;
mod save;
mod streams;
mod tag;
mod template;
mod top;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::client::{Client, StartPolicy, connect_or_start};
use crate::state::StateRoot;
use crate::transport::Address;

/// Docker plus a single-node Kubernetes for WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "wrun", version, about, disable_help_subcommand = true)]
pub struct Cli {
    /// State root: images, containers and caches live here.
    #[arg(long, env = "WRUN_ROOT", global = true, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Log filter for diagnostics on stderr (e.g. `debug`, `wrun=trace`).
    #[arg(
        long,
        env = "WRUN_LOG",
        global = true,
        default_value = "warn",
        value_name = "FILTER"
    )]
    log: String,

    /// The daemon's API address (as DOCKER_HOST takes it); default
    /// unix://<root>/wrun.sock
    #[arg(
        short = 'H',
        long,
        env = "WRUN_HOST",
        global = true,
        value_name = "ADDRESS"
    )]
    host: Option<String>,

    /// Do not start the daemon when none is running
    #[arg(
        long,
        env = "WRUN_NO_START",
        global = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    no_start: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::BuildCommand),
    Images(images::ImagesCommand),
    History(history::HistoryCommand),
    Image(image::ImageCommand),
    Tag(tag::TagCommand),
    Rmi(rmi::RmiCommand),
    Save(save::SaveCommand),
    Load(load::LoadCommand),
    Pull(pull::PullCommand),
    Push(push::PushCommand),
    Login(login::LoginCommand),
    Logout(logout::LogoutCommand),
    Run(Box<run::RunCommand>),
    Ps(ps::PsCommand),
    Rm(containers::RmCommand),
    Start(containers::StartCommand),
    Stop(containers::StopCommand),
    Restart(containers::RestartCommand),
    Kill(containers::KillCommand),
    Wait(containers::WaitCommand),
    Rename(containers::RenameCommand),
    Inspect(inspect::InspectCommand),
    Logs(logs::LogsCommand),
    Exec(exec::ExecCommand),
    Top(top::TopCommand),
    Port(port::PortCommand),
    Network(network::NetworkCommand),
    Info(info::InfoCommand),
    Daemon(daemon::DaemonCommand),
    Cluster(cluster::ClusterCommand),
    Dashboard(dashboard::DashboardCommand),
    Completion(completion::CompletionCommand),
}

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    pub root: StateRoot,
    pub address: Address,
    pub start: StartPolicy,
}

impl Ctx {
    /// A client of the daemon, which is started if none is running.
    pub async fn client(&self) -> Result<Client> {
        Ok(connect_or_start(self.root.dir(), &self.address, self.start).await?)
    }
}

/// Runs a future to completion on a single-threaded runtime: each CLI
/// verb is one short conversation with the daemon.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let out = rt.block_on(f);
    // A read of this process's stdin may still be blocked: do not wait for it.
    rt.shutdown_background();
    Ok(out)
}

impl Cli {
    fn ctx(&self) -> Result<Ctx> {
        let dir = match &self.root {
            Some(d) => d.clone(),
            None => StateRoot::default_dir()?,
        };
        let root = StateRoot::open(&dir)
            .with_context(|| format!("cannot open the state root {}", dir.display()))?;
        let address = match &self.host {
            Some(h) => Address::parse(h)?,
            None => Address::default_for(root.dir()),
        };
        let start = if self.no_start {
            StartPolicy::NoStart
        } else {
            StartPolicy::Start
        };
        Ok(Ctx {
            root,
            address,
            start,
        })
    }

    /// Runs the command; returns the process exit code.
    fn execute(self) -> Result<u8> {
        if let Command::Completion(c) = self.command {
            return c.execute();
        }
        let ctx = self.ctx()?;
        match self.command {
            Command::Build(c) => c.execute(&ctx),
            Command::Images(c) => c.execute(&ctx),
            Command::History(c) => c.execute(&ctx),
            Command::Image(c) => c.execute(&ctx),
            Command::Tag(c) => c.execute(&ctx),
            Command::Rmi(c) => c.execute(&ctx),
            Command::Save(c) => c.execute(&ctx),
            Command::Load(c) => c.execute(&ctx),
            Command::Pull(c) => c.execute(&ctx),
            Command::Push(c) => c.execute(&ctx),
            Command::Login(c) => c.execute(&ctx),
            Command::Logout(c) => c.execute(&ctx),
            Command::Run(c) => c.execute(&ctx),
            Command::Ps(c) => c.execute(&ctx),
            Command::Rm(c) => c.execute(&ctx),
            Command::Start(c) => c.execute(&ctx),
            Command::Stop(c) => c.execute(&ctx),
            Command::Restart(c) => c.execute(&ctx),
            Command::Kill(c) => c.execute(&ctx),
            Command::Wait(c) => c.execute(&ctx),
            Command::Rename(c) => c.execute(&ctx),
            Command::Inspect(c) => c.execute(&ctx),
            Command::Logs(c) => c.execute(&ctx),
            Command::Exec(c) => c.execute(&ctx),
            Command::Top(c) => c.execute(&ctx),
            Command::Port(c) => c.execute(&ctx),
            Command::Network(c) => c.execute(&ctx),
            Command::Info(c) => c.execute(&ctx),
            Command::Daemon(c) => c.execute(&ctx),
            Command::Cluster(c) => c.execute(&ctx),
            Command::Dashboard(c) => c.execute(&ctx),
            Command::Completion(c) => c.execute(),
        }
    }
}

/// The binary's entry point.
pub fn main() -> std::process::ExitCode {
    crate::sandbox::quiet_error_backtraces();
    quiet_on_a_closed_pipe();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.execute() {
        Ok(code) => std::process::ExitCode::from(code),
        // A bare broken pipe, with no context around it, is stdout's: the
        // reader went away (a failure to reach the daemon says so).
        Err(e)
            if e.chain().count() == 1
                && e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            std::process::ExitCode::from(141)
        }
        Err(e) => {
            eprintln!("wrun: {}", chain(&e));
            std::process::ExitCode::from(exit_code_for(&e))
        }
    }
}

/// A reader that closes its end of the pipe early (`wrun ps | head -1`)
/// ends the command quietly, as it ends `ls` or `docker ps`: with the
/// status a shell shows for SIGPIPE (141), and no message. Commands that
/// write through `io::Write` return the error (see `main`); Rust's print
/// macros panic instead, so that panic is told apart here. Every other
/// panic is reported as before.
fn quiet_on_a_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        let closed = std::io::Error::from(std::io::ErrorKind::BrokenPipe).to_string();
        if message.starts_with("failed printing to stdout")
            && (message.contains("Broken pipe") || message.contains(&closed))
        {
            std::process::exit(141);
        }
        report(info);
    }));
}

/// The error and its causes joined with ": ", as `{:#}` prints them, but
/// without repeating a cause that an outer message already quotes (the
/// library's messages name their cause so that they read well alone).
pub(crate) fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out
}

/// An error that ends the command with a given exit code.
#[derive(Debug)]
pub struct Failed {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failed {}

/// Docker's exit codes for failures of the runtime itself: 127 when the
/// command is not found, 126 when it cannot be run, 125 otherwise.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        // Docker's registry verbs fail with 1, not the runtime's 125.
        if cause.is::<crate::registry::RegistryError>() {
            return 1;
        }
        if let Some(f) = cause.downcast_ref::<Failed>() {
            return f.code;
        }
        if let Some(c) = cause.downcast_ref::<crate::container::ContainerError>() {
            return u8::try_from(c.exit_code()).unwrap_or(125);
        }
    }
    125
}
