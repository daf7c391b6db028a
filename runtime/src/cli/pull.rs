//! `wrun pull`: fetch an image from a registry, in Docker's words.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Ctx;
use crate::image::{Image, ImageError, ImageStore};
use crate::registry::pull::{self, Event, Progress};

/// Download an image from a registry
#[derive(Debug, Args)]
pub struct PullCommand {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    name: String,
}

impl PullCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut store = ImageStore::open(&ctx.root)?;
        pull_image(&mut store, &self.name, self.quiet, StatusTo::Stdout)?;
        Ok(0)
    }
}

/// Where pull status lines go: stdout for `wrun pull`, stderr when another
/// verb pulls on the way (its own output owns stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusTo {
    Stdout,
    Stderr,
}

impl StatusTo {
    fn line(self, s: &str) {
        match self {
            Self::Stdout => println!("{s}"),
            Self::Stderr => eprintln!("{s}"),
        }
    }
}

/// When a verb that needs an image pulls it, as Docker's `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PullPolicy {
    /// Pull every time
    Always,
    /// Pull only when the image is not in the local store
    #[default]
    Missing,
    /// Never pull
    Never,
}

/// Finds `name` locally, pulling it first as `policy` says.
pub fn ensure_image(store: &mut ImageStore, name: &str, policy: PullPolicy) -> Result<Image> {
    if policy == PullPolicy::Always {
        pull_image(store, name, false, StatusTo::Stderr)
            .map_err(|e| anyhow::anyhow!("{}", super::chain(&e)))?;
        return Ok(store.resolve(name)?);
    }
    match store.resolve(name) {
        Err(ImageError::NotFound(_)) => {
            let shown = store
                .parse_reference(name)
                .map(|r| r.familiar())
                .unwrap_or_else(|_| name.to_string());
            eprintln!("Unable to find image '{shown}' locally");
            if policy == PullPolicy::Never {
                anyhow::bail!(
                    "{shown}: image not found locally, and --pull=never forbids pulling it"
                );
            }
            // The caller's verb fails, not a pull: keep its exit code.
            pull_image(store, name, false, StatusTo::Stderr)
                .map_err(|e| anyhow::anyhow!("{}", super::chain(&e)))?;
            Ok(store.resolve(name)?)
        }
        other => Ok(other?),
    }
}

/// Pulls `name`, printing Docker's lines unless `quiet`: progress bars on a
/// terminal, plain lines otherwise.
pub fn pull_image(store: &mut ImageStore, name: &str, quiet: bool, to: StatusTo) -> Result<()> {
    let bars = (!quiet && std::io::stderr().is_terminal()).then(Bars::new);
    let progress: Progress = match &bars {
        _ if quiet => Arc::new(|_| {}),
        Some(bars) => {
            let bars = bars.clone();
            Arc::new(move |e| bars.event(e))
        }
        None => Arc::new(move |e| print_line(e, to)),
    };
    let pulled = pull::pull(store, name, progress);
    if let Some(bars) = &bars {
        bars.finish();
    }
    let pulled = pulled?;
    if quiet {
        to.line(&pulled.reference.to_string());
        return Ok(());
    }
    to.line(&format!("Digest: {}", pulled.manifest_digest));
    let shown = pulled.reference.familiar();
    if pulled.up_to_date {
        to.line(&format!("Status: Image is up to date for {shown}"));
    } else {
        to.line(&format!("Status: Downloaded newer image for {shown}"));
    }
    Ok(())
}

fn print_line(e: Event, to: StatusTo) {
    match e {
        Event::Pulling { what, repository } => {
            to.line(&format!("{what}: Pulling from {repository}"))
        }
        Event::Exists(d) => to.line(&format!("{}: Already exists", d.short())),
        Event::Complete(d) => to.line(&format!("{}: Pull complete", d.short())),
        Event::Started { .. } | Event::Progress { .. } => {}
    }
}

/// One progress bar per layer, on stderr.
#[derive(Clone)]
struct Bars {
    multi: MultiProgress,
    layers: Arc<Mutex<HashMap<String, ProgressBar>>>,
}

impl Bars {
    fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            layers: Arc::default(),
        }
    }

    fn event(&self, e: Event) {
        let style =
            ProgressStyle::with_template("{prefix}: {msg} [{bar:30}] {bytes}/{total_bytes}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        let Ok(mut layers) = self.layers.lock() else {
            return;
        };
        match e {
            Event::Pulling { what, repository } => {
                let _ = self
                    .multi
                    .println(format!("{what}: Pulling from {repository}"));
            }
            Event::Exists(d) => {
                let _ = self.multi.println(format!("{}: Already exists", d.short()));
            }
            Event::Started { layer, size } => {
                let bar = self.multi.add(ProgressBar::new(size));
                bar.set_style(style);
                bar.set_prefix(layer.short().to_string());
                bar.set_message("Downloading");
                layers.insert(layer.to_string(), bar);
            }
            Event::Progress { layer, bytes } => {
                if let Some(bar) = layers.get(layer.as_str()) {
                    bar.inc(bytes);
                }
            }
            Event::Complete(layer) => {
                if let Some(bar) = layers.get(layer.as_str()) {
                    bar.set_style(
                        ProgressStyle::with_template("{prefix}: {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.finish_with_message("Pull complete");
                }
            }
        }
    }

    fn finish(&self) {
        if let Ok(layers) = self.layers.lock() {
            for bar in layers.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
