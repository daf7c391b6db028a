//! `wrun image`: the image management group (`inspect`, `ls`, `history`,
//! `rm`).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::format::json;
use super::{Ctx, history, images, rmi};
use crate::image::ImageStore;

/// Manage images
#[derive(Debug, Args)]
pub struct ImageCommand {
    #[command(subcommand)]
    command: ImageSub,
}

#[derive(Debug, Subcommand)]
enum ImageSub {
    /// Display detailed information on one or more images
    Inspect {
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<String>,
    },
    /// List images
    Ls(images::ImagesCommand),
    /// Show the history of an image
    History(history::HistoryCommand),
    /// Remove one or more images
    Rm(rmi::RmiCommand),
}

impl ImageCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        match self.command {
            ImageSub::Ls(c) => c.execute(ctx),
            ImageSub::Rm(c) => c.execute(ctx),
            ImageSub::History(c) => c.execute(ctx),
            ImageSub::Inspect { images } => {
                let store = ImageStore::open(&ctx.root)?;
                let mut out = Vec::new();
                let mut missing = Vec::new();
                for name in &images {
                    match store.resolve(name) {
                        Ok(img) => out.push(crate::api::images::inspect(&img)),
                        Err(e) => missing.push(format!("{e}")),
                    }
                }
                println!("{}", json(&Value::Array(out)));
                if !missing.is_empty() {
                    bail!("{}", missing.join("; "));
                }
                Ok(0)
            }
        }
    }
}
