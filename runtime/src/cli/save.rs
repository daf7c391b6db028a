//! `wrun save`: write images to an OCI image-layout tar.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use clap::Args;

use super::Ctx;
use crate::image::{ImageStore, layout};

/// Save one or more images to a tar archive (an OCI image layout)
#[derive(Debug, Args)]
pub struct SaveCommand {
    /// Write to a file, instead of STDOUT
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

impl SaveCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let store = ImageStore::open(&ctx.root)?;
        match &self.output {
            Some(path) => {
                // Written beside the target and renamed, so a failed save
                // never leaves a truncated archive under the requested name.
                let dir = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."));
                let mut tmp = tempfile::NamedTempFile::new_in(dir)
                    .with_context(|| format!("save: cannot write in {}", dir.display()))?;
                layout::save(
                    &store,
                    &self.images,
                    std::io::BufWriter::new(tmp.as_file_mut()),
                )
                .with_context(|| format!("save {}", self.images.join(" ")))?;
                tmp.persist(path)
                    .with_context(|| format!("save: cannot write {}", path.display()))?;
            }
            None => {
                let stdout = std::io::stdout();
                if stdout.is_terminal() {
                    bail!(
                        "refusing to write an archive to a terminal: use -o FILE or redirect the output"
                    );
                }
                let mut lock = stdout.lock();
                layout::save(&store, &self.images, &mut lock)
                    .with_context(|| format!("save {}", self.images.join(" ")))?;
                lock.flush()?;
            }
        }
        Ok(0)
    }
}
