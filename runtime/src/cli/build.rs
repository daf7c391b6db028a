//! `wrun build`: build an image from a Dockerfile and a context directory.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::Ctx;
use super::pull::{PullPolicy, ensure_image};
use crate::image::ImageStore;
use crate::image::build::{BuildOptions, build};

/// Build an image from a Dockerfile
#[derive(Debug, Args)]
pub struct BuildCommand {
    /// Name and optionally a tag (`name:tag`); may be repeated
    #[arg(short = 't', long = "tag", value_name = "NAME[:TAG]")]
    tags: Vec<String>,
    /// Name of the Dockerfile (default: `PATH/Dockerfile`)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<PathBuf>,
    /// Set a build-time variable
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    build_args: Vec<String>,
    /// Do not use the build cache
    #[arg(long)]
    no_cache: bool,
    /// Print only the image ID
    #[arg(short, long)]
    quiet: bool,
    /// Always pull a newer version of the FROM image
    #[arg(long)]
    pull: bool,
    /// The build context directory
    #[arg(value_name = "PATH")]
    context: PathBuf,
}

impl BuildCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut build_args = BTreeMap::new();
        for a in &self.build_args {
            match a.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    build_args.insert(k.to_string(), v.to_string());
                }
                // `--build-arg KEY` takes the value from the environment.
                None if !a.is_empty() => {
                    if let Ok(v) = std::env::var(a) {
                        build_args.insert(a.clone(), v);
                    }
                }
                _ => bail!("invalid --build-arg {a:?}: expected KEY=VALUE"),
            }
        }
        let mut store = ImageStore::open(&ctx.root)?;
        self.pull_base(&mut store, &build_args)?;
        let opts = BuildOptions {
            context: self.context.clone(),
            dockerfile: self.file,
            tags: self.tags,
            build_args,
            no_cache: self.no_cache,
        };
        let mut sink = std::io::sink();
        let mut stdout = std::io::stdout();
        let out: &mut dyn std::io::Write = if self.quiet { &mut sink } else { &mut stdout };
        let id = build(&mut store, &opts, out)
            .with_context(|| format!("build {}", self.context.display()))?;
        if self.quiet {
            println!("{id}");
        }
        Ok(0)
    }

    /// Pulls the final stage's FROM image when it is missing (or always,
    /// with `--pull`), as `docker build` does. A Dockerfile that does not
    /// parse is left for the build to report, with its line.
    fn pull_base(
        &self,
        store: &mut ImageStore,
        build_args: &BTreeMap<String, String>,
    ) -> Result<()> {
        let path = self
            .file
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"));
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Ok(());
        };
        let Ok(parsed) = crate::image::dockerfile::parse(&text, build_args) else {
            return Ok(());
        };
        let Some(from) = parsed.stages.last().map(|s| s.from.clone()) else {
            return Ok(());
        };
        if from.eq_ignore_ascii_case("scratch") {
            return Ok(());
        }
        let policy = if self.pull {
            PullPolicy::Always
        } else {
            PullPolicy::Missing
        };
        ensure_image(store, &from, policy)
            .map(drop)
            .with_context(|| format!("build {}: FROM {from}", self.context.display()))
    }
}
