//! `wrun pull`: fetch an image from a registry, in Docker's words.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Ctx;
use crate::image::ImageStore;
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
        pull_image(&mut store, &self.name, self.quiet)?;
        Ok(0)
    }
}

/// Pulls `name`, printing Docker's lines unless `quiet`: progress bars on a
/// terminal, plain lines otherwise. Shared with verbs that pull a missing
/// image.
pub fn pull_image(store: &mut ImageStore, name: &str, quiet: bool) -> Result<()> {
    let bars = (!quiet && std::io::stderr().is_terminal()).then(Bars::new);
    let progress: Progress = match &bars {
        _ if quiet => Arc::new(|_| {}),
        Some(bars) => {
            let bars = bars.clone();
            Arc::new(move |e| bars.event(e))
        }
        None => Arc::new(print_line),
    };
    let pulled = pull::pull(store, name, progress);
    if let Some(bars) = &bars {
        bars.finish();
    }
    let pulled = pulled?;
    if quiet {
        println!("{}", pulled.reference);
        return Ok(());
    }
    println!("Digest: {}", pulled.manifest_digest);
    let shown = pulled.reference.familiar();
    if pulled.up_to_date {
        println!("Status: Image is up to date for {shown}");
    } else {
        println!("Status: Downloaded newer image for {shown}");
    }
    Ok(())
}

fn print_line(e: Event) {
    match e {
        Event::Pulling { what, repository } => println!("{what}: Pulling from {repository}"),
        Event::Exists(d) => println!("{}: Already exists", d.short()),
        Event::Complete(d) => println!("{}: Pull complete", d.short()),
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
