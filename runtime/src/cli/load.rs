//! `wrun load`: read images from an OCI image-layout tar.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;

use super::Ctx;
use crate::image::{ImageStore, layout};

/// Load images from a tar archive (an OCI image layout)
#[derive(Debug, Args)]
pub struct LoadCommand {
    /// Read from a tar archive file, instead of STDIN
    #[arg(short, long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    quiet: bool,
}

impl LoadCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut store = ImageStore::open(&ctx.root)?;
        let loaded = match &self.input {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("load {}", path.display()))?;
                let name = path.display().to_string();
                layout::load(&mut store, std::io::BufReader::new(file), &name)
                    .with_context(|| format!("load {name}"))?
            }
            None => layout::load(&mut store, std::io::stdin().lock(), "stdin").context("load")?,
        };
        if !self.quiet {
            for image in loaded {
                if image.names.is_empty() {
                    println!("Loaded image ID: {}", image.id);
                }
                for n in image.names {
                    println!("Loaded image: {}", n.familiar());
                }
            }
        }
        Ok(0)
    }
}
