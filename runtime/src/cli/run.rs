//! `wrun run`: create a container through the daemon and start it, either
//! detached (`-d`) or attached to this terminal until it exits, as
//! `docker run` does: create, attach, wait, start.

use anyhow::{Context as _, Result, bail};
use clap::Args;
use hyper::{Method, StatusCode};

use super::pull::{PullPolicy, StatusTo, pull_image};
use super::{Ctx, Failed, streams};
use crate::api::types::{
    ContainerConfig, CreateRequest, CreateResponse, HostConfig, RestartPolicy as WireRestart,
    Ulimit, WaitResponse,
};
use crate::client::{Client, ClientError, read_all};
use crate::container::{RestartPolicy, VolumeSpec};
use crate::image::ImageStore;
use crate::net::EgressRule;
use crate::net::publish::PortSpec;

/// Create and run a new container from an image
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct RunCommand {
    /// Run the container in the background and print its ID
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables (KEY=VALUE, or KEY to copy this shell's)
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
    /// Ulimit options: nofile=SOFT[:HARD], the files the container's guests may hold open (default 1024)
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimit: Vec<String>,
    /// Storage options: size=BYTES, the most the container's writable layer may hold (e.g. size=100m)
    #[arg(long = "storage-opt", value_name = "size=BYTES")]
    storage_opt: Vec<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "CMD")]
    entrypoint: Option<String>,
    /// Keep STDIN open
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY (output is passed through unframed)
    #[arg(short, long)]
    tty: bool,
    /// Restart policy: no, always, unless-stopped, on-failure[:max-retries]
    #[arg(long, default_value = "no", value_name = "POLICY")]
    restart: String,
    /// Publish a container's port to the host ([HOST_IP:][HOST_PORT:]CONTAINER_PORT)
    #[arg(short = 'p', long = "publish", value_name = "PORTS")]
    publish: Vec<String>,
    /// Publish every exposed port to a free host port
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Connect the container to a network: bridge (default), host, none, or
    /// one made with `wrun network create`
    #[arg(long, alias = "net", value_name = "NETWORK")]
    network: Option<String>,
    /// Serve a wasi:http component on this port in its network (default:
    /// the image's first EXPOSEd port, else 8080)
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Let the container reach an outside host (HOST[:PORT]); repeatable
    #[arg(long = "allow-net", value_name = "HOST[:PORT]")]
    allow_net: Vec<String>,
    /// Set metadata on the container (KEY=VALUE); repeatable
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Log options of the json-file log: max-size=10m, max-file=3
    #[arg(long = "log-opt", value_name = "KEY=VALUE")]
    log_opt: Vec<String>,
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
        let body = self.create_request()?;
        super::block_on(self.run(ctx, body))?
    }

    async fn run(&self, ctx: &Ctx, body: CreateRequest) -> Result<u8> {
        if self.pull == PullPolicy::Always {
            self.pull(ctx)?;
        }
        let client = ctx.client().await?;
        let mut path = "/containers/create".to_string();
        if let Some(n) = &self.name {
            path.push_str(&format!("?name={}", encode(n)));
        }
        let created: CreateResponse = match client.json(Method::POST, &path, Some(&body)).await {
            Err(ClientError::Api {
                status, message, ..
            }) if status == StatusCode::NOT_FOUND && message.starts_with("No such image") => {
                let shown = self.shown_image(ctx);
                eprintln!("Unable to find image '{shown}' locally");
                if self.pull == PullPolicy::Never {
                    bail!("{shown}: image not found locally, and --pull=never forbids pulling it");
                }
                self.pull(ctx)?;
                client.json(Method::POST, &path, Some(&body)).await?
            }
            other => other.with_context(|| format!("run {}", self.image))?,
        };
        let id = created.id;
        if self.detach {
            start(&client, &id).await?;
            println!("{id}");
            return Ok(0);
        }
        self.foreground(&client, &id).await
    }

    /// Pulls the image on a thread of its own: the registry client runs
    /// its own async runtime.
    fn pull(&self, ctx: &Ctx) -> Result<()> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut store = ImageStore::open(&ctx.root)?;
                pull_image(&mut store, &self.image, false, StatusTo::Stderr)
                    .map_err(|e| anyhow::anyhow!("{}", super::chain(&e)))
            })
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the pull thread panicked")))
        })
    }

    /// The image's name as Docker shows it (`busybox:latest`).
    fn shown_image(&self, ctx: &Ctx) -> String {
        ImageStore::open(&ctx.root)
            .ok()
            .and_then(|s| s.parse_reference(&self.image).ok())
            .map(|r| r.familiar())
            .unwrap_or_else(|| self.image.clone())
    }

    /// Attach, wait, start; stream until the container ends; exit with its
    /// code. Ctrl-C is forwarded to the container as SIGINT.
    async fn foreground(&self, client: &Client, id: &str) -> Result<u8> {
        let attach = format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if self.interactive { "&stdin=1" } else { "" }
        );
        let conn = client.hijack(&attach, None).await?;
        let condition = if self.rm { "removed" } else { "next-exit" };
        let wait = client
            .request(
                Method::POST,
                &format!("/containers/{id}/wait?condition={condition}"),
                None,
            )
            .await?;
        let (rd, wr) = tokio::io::split(conn);
        // Listen for Ctrl-C before the container starts, so none is missed.
        let interrupts = Interrupts::new()?;
        start(client, id).await?;
        if self.interactive {
            tokio::spawn(streams::pump_stdin(wr));
        } else {
            drop(wr);
        }
        let on_ctrl_c = client.clone();
        let target = id.to_string();
        tokio::spawn(async move {
            let mut interrupts = interrupts;
            while interrupts.next().await {
                let _ = on_ctrl_c
                    .call(
                        Method::POST,
                        &format!("/containers/{target}/kill?signal=SIGINT"),
                    )
                    .await;
            }
        });
        streams::copy_output(rd, self.tty).await?;
        let bytes = read_all(wait).await?;
        let result: WaitResponse = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("the daemon's wait answer is malformed: {e}"))?;
        if let Some(detail) = &result.detail {
            eprintln!("wrun: container {}: {detail}", &id[..12]);
        }
        Ok(u8::try_from(result.status_code & 0xff).unwrap_or(1))
    }

    /// The flags as Docker's create body. Host-side details are resolved
    /// here, as the docker CLI does: a bare `-e KEY` takes this shell's
    /// value, and relative volume paths become absolute.
    fn create_request(&self) -> Result<CreateRequest> {
        let env = resolve_env(&self.env);
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let binds = self
            .volumes
            .iter()
            .map(|v| {
                let spec = VolumeSpec::parse(v, &cwd)?;
                Ok(format!(
                    "{}:{}{}",
                    spec.host.display(),
                    spec.guest,
                    if spec.read_only { ":ro" } else { "" }
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let memory = self
            .memory
            .as_deref()
            .map(crate::api::units::parse_bytes)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let storage_opt =
            crate::api::units::storage_opts(&self.storage_opt).map_err(anyhow::Error::msg)?;
        crate::api::units::storage_size(&storage_opt).map_err(anyhow::Error::msg)?;
        let ulimits = self
            .ulimit
            .iter()
            .map(|u| Ulimit::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
        for p in &self.publish {
            PortSpec::parse(p)?;
        }
        for r in &self.allow_net {
            EgressRule::parse(r)?;
        }
        let port_bindings = crate::api::ports::port_bindings(&self.publish);
        let restart = RestartPolicy::parse(&self.restart)?;
        if self.rm && restart != RestartPolicy::No {
            bail!("conflicting options: cannot specify both --restart and --rm");
        }
        if let Some(w) = &self.workdir
            && !w.starts_with('/')
        {
            bail!("the working directory {w:?} is invalid: it needs to be an absolute path");
        }
        Ok(CreateRequest {
            config: ContainerConfig {
                image: self.image.clone(),
                cmd: Some(self.command.clone()).filter(|c| !c.is_empty()),
                entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
                env: Some(env),
                working_dir: self.workdir.clone().unwrap_or_default(),
                tty: self.tty,
                open_stdin: self.interactive,
                stdin_once: self.interactive && !self.detach,
                attach_stdin: self.interactive && !self.detach,
                attach_stdout: !self.detach,
                attach_stderr: !self.detach,
                labels: Some(super::flags::labels(&self.label)?),
                ..Default::default()
            },
            host_config: HostConfig {
                binds: Some(binds),
                memory: memory.and_then(|m| i64::try_from(m).ok()).unwrap_or(0),
                ulimits: Some(ulimits).filter(|u| !u.is_empty()),
                storage_opt: Some(storage_opt).filter(|o| !o.is_empty()),
                restart_policy: WireRestart {
                    name: restart.name().into(),
                    maximum_retry_count: restart.max_retries(),
                },
                auto_remove: self.rm,
                network_mode: self.network.clone().unwrap_or_default(),
                port_bindings: Some(port_bindings),
                publish_all_ports: self.publish_all,
                allow_net: self.allow_net.clone(),
                http_port: self.port,
                log_config: crate::api::types::LogConfig {
                    kind: String::new(),
                    config: super::flags::labels(&self.log_opt)?,
                },
            },
            networking_config: None,
        })
    }
}

/// Ctrl-C presses, registered for as soon as this is created.
struct Interrupts {
    #[cfg(unix)]
    sigint: tokio::signal::unix::Signal,
}

impl Interrupts {
    fn new() -> Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            sigint: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot listen for Ctrl-C")?,
        })
    }

    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            self.sigint.recv().await.is_some()
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// `-e KEY` copies this shell's value, or is dropped if it has none.
pub fn resolve_env(settings: &[String]) -> Vec<String> {
    settings
        .iter()
        .filter_map(|s| {
            if s.contains('=') {
                Some(s.clone())
            } else {
                std::env::var(s).ok().map(|v| format!("{s}={v}"))
            }
        })
        .collect()
}

/// Starts a container; a program that cannot start fails with Docker's
/// exit codes (127 not found, 126 not runnable), which the daemon sends.
pub async fn start(client: &Client, id: &str) -> Result<()> {
    let path = format!("/containers/{id}/start");
    match client.request(Method::POST, &path, None).await {
        Ok(_) => Ok(()),
        Err(ClientError::Api {
            message,
            exit_code: Some(code),
            ..
        }) => Err(Failed {
            code: u8::try_from(code).unwrap_or(125),
            message,
        }
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
