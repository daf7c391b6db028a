//! `wrun run`: create a container from an image and run it in the
//! foreground, in this process. (The daemon will take execution over.)

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::Ctx;
use super::format::parse_memory;
use super::pull::{PullPolicy, ensure_image};
use crate::container::{ContainerSpec, Containers, RunIo, VolumeSpec, run};
use crate::image::ImageStore;
use crate::sandbox::{Input, Output, Sandbox, SandboxOptions, Stdio, StopHandle, StopReason};

/// A one-shot run needs room for its own instance only; a few spare slots
/// cover components made of several core instances.
const CLI_POOL_INSTANCES: u32 = 4;

/// Create and run a new container from an image
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunCommand {
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy the host's)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Bind mount a host directory (HOST:CONTAINER[:ro])
    #[arg(short = 'v', long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    volumes: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "DIR")]
    workdir: Option<String>,
    /// Memory limit (e.g. 64m, 1g)
    #[arg(short = 'm', long = "memory", value_name = "BYTES")]
    memory: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY (accepted for compatibility; output is passed through)
    #[arg(short, long)]
    tty: bool,
    /// Pull the image before running: always, missing (default) or never
    #[arg(long, value_enum, default_value_t = PullPolicy::Missing, value_name = "POLICY")]
    pull: PullPolicy,
    /// The image to run
    #[arg(value_name = "IMAGE")]
    image: String,
    /// Command and arguments, replacing the image's CMD
    #[arg(value_name = "COMMAND", allow_hyphen_values = true)]
    command: Vec<String>,
}

impl RunCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut images = ImageStore::open(&ctx.root)?;
        let image = ensure_image(&mut images, &self.image, self.pull)?;
        let spec = self.spec(&image)?;
        let layers = images.layer_dirs(&image)?;
        let mut containers = Containers::with_db(&ctx.root, images.into_db());
        let rec = containers
            .create(&image, &layers, self.name.as_deref(), spec)
            .with_context(|| format!("run {}", self.image))?;

        let sandbox = Sandbox::new(&SandboxOptions {
            cache_dir: ctx.root.compiled_cache_dir(),
            max_instances: CLI_POOL_INSTANCES,
        })?;
        let stdio = Stdio {
            stdin: if self.interactive {
                Input::Inherit
            } else {
                Input::Null
            },
            stdout: Output::Inherit,
            stderr: Output::Inherit,
        };
        let stop = StopHandle::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let result = runtime.block_on(async {
            let on_ctrl_c = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    on_ctrl_c.stop(StopReason::Interrupted);
                }
            });
            run(&sandbox, &mut containers, &rec, RunIo { stdio }, &stop).await
        });
        if self.rm
            && let Err(e) = containers.remove(&rec.id, true)
        {
            eprintln!("wrun: {e}");
        }
        let exit = result?;
        if let Some(what) = exit.describe() {
            eprintln!("wrun: container {}: {what}", rec.short_id());
        }
        Ok(u8::try_from(exit.code() & 0xff).unwrap_or(1))
    }

    /// Docker's rules: `--entrypoint` replaces the image's ENTRYPOINT and
    /// drops its CMD; trailing arguments replace CMD.
    fn spec(&self, image: &crate::image::Image) -> Result<ContainerSpec> {
        let cfg = image.config.config().clone().unwrap_or_default();
        let entrypoint: Vec<String> = match &self.entrypoint {
            Some(e) if e.is_empty() => Vec::new(),
            Some(e) => vec![e.clone()],
            None => cfg.entrypoint().clone().unwrap_or_default(),
        };
        let cmd: Vec<String> = if !self.command.is_empty() {
            self.command.clone()
        } else if self.entrypoint.is_some() {
            Vec::new()
        } else {
            cfg.cmd().clone().unwrap_or_default()
        };
        let workdir = match &self.workdir {
            Some(w) if !w.starts_with('/') => {
                bail!("the working directory {w:?} is invalid: it needs to be an absolute path")
            }
            Some(w) => crate::image::rootfs::guest_path("/", w),
            None => cfg
                .working_dir()
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
        };
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let volumes = self
            .volumes
            .iter()
            .map(|v| VolumeSpec::parse(v, &cwd))
            .collect::<Result<Vec<_>, _>>()?;
        let memory = self
            .memory
            .as_deref()
            .map(parse_memory)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let env = crate::container::merge_env(&cfg.env().clone().unwrap_or_default(), &self.env)?;
        Ok(ContainerSpec {
            image: self.image.clone(),
            argv: entrypoint.into_iter().chain(cmd).collect(),
            env,
            workdir,
            volumes,
            memory,
            interactive: self.interactive,
            tty: self.tty,
            auto_remove: self.rm,
        })
    }
}
