//! The `wrun` command line: one file per verb, each an argument struct with
//! an `execute` method. Library errors are typed; here they become
//! `anyhow` errors with context and are printed once, in `main`.

mod build;
mod format;
mod image;
mod images;
mod load;
mod login;
mod logout;
mod ps;
mod pull;
mod push;
mod rm;
mod rmi;
mod run;
mod save;
mod tag;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};

use crate::state::StateRoot;

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

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Build(build::BuildCommand),
    Images(images::ImagesCommand),
    Image(image::ImageCommand),
    Tag(tag::TagCommand),
    Rmi(rmi::RmiCommand),
    Save(save::SaveCommand),
    Load(load::LoadCommand),
    Pull(pull::PullCommand),
    Push(push::PushCommand),
    Login(login::LoginCommand),
    Logout(logout::LogoutCommand),
    Run(run::RunCommand),
    Ps(ps::PsCommand),
    Rm(rm::RmCommand),
}

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    pub root: StateRoot,
}

impl Cli {
    fn ctx(&self) -> Result<Ctx> {
        let dir = match &self.root {
            Some(d) => d.clone(),
            None => StateRoot::default_dir()?,
        };
        let root = StateRoot::open(&dir)
            .with_context(|| format!("cannot open the state root {}", dir.display()))?;
        Ok(Ctx { root })
    }

    /// Runs the command; returns the process exit code.
    fn execute(self) -> Result<u8> {
        let ctx = self.ctx()?;
        match self.command {
            Command::Build(c) => c.execute(&ctx),
            Command::Images(c) => c.execute(&ctx),
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
        }
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.execute() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("wrun: {}", chain(&e));
            ExitCode::from(exit_code_for(&e))
        }
    }
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

/// Docker's exit codes for failures of the runtime itself: 127 when the
/// command is not found, 126 when it cannot be run, 125 otherwise.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    use crate::container::ContainerError;
    use crate::image::rootfs::RootfsError;
    use crate::sandbox::SandboxError;
    for cause in e.chain() {
        // Docker's registry verbs fail with 1, not the runtime's 125.
        if cause.is::<crate::registry::RegistryError>() {
            return 1;
        }
        if let Some(c) = cause.downcast_ref::<ContainerError>() {
            return match c {
                ContainerError::Exec {
                    source: RootfsError::NotFound(_) | RootfsError::NotInPath(_),
                    ..
                } => 127,
                ContainerError::Exec { .. }
                | ContainerError::Sandbox {
                    source:
                        SandboxError::NotWasm { .. }
                        | SandboxError::Compile { .. }
                        | SandboxError::NotCommand { .. }
                        | SandboxError::HttpNotServed { .. },
                    ..
                } => 126,
                _ => 125,
            };
        }
    }
    125
}
