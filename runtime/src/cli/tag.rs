//! `wrun tag`: give an image another name.

use anyhow::{Context as _, Result};
use clap::Args;

use super::Ctx;
use crate::image::ImageStore;

/// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
#[derive(Debug, Args)]
pub struct TagCommand {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    target: String,
}

impl TagCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut store = ImageStore::open(&ctx.root)?;
        store
            .tag(&self.source, &self.target)
            .with_context(|| format!("tag {} {}", self.source, self.target))?;
        Ok(0)
    }
}
