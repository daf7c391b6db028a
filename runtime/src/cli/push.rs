//! `wrun push`: upload an image to the registry its name points at.

use std::sync::Arc;

use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::image::ImageStore;
use crate::registry::push::{self, Event};

/// Upload an image to a registry
#[derive(Debug, Args)]
pub struct PushCommand {
    /// Suppress verbose output
    #[arg(short, long)]
    quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    name: String,
}

impl PushCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let store = ImageStore::open(&ctx.root)?;
        let quiet = self.quiet;
        let pushed = push::push(
            &store,
            &self.name,
            Arc::new(move |e| {
                if quiet {
                    return;
                }
                match e {
                    Event::Repository(r) => println!("The push refers to repository [{r}]"),
                    Event::Exists(d) => println!("{}: Layer already exists", d.short()),
                    Event::Pushed(d) => println!("{}: Pushed", d.short()),
                }
            }),
        )?;
        if !quiet {
            println!(
                "{}: digest: {} size: {}",
                pushed.tag, pushed.digest, pushed.size
            );
        }
        Ok(0)
    }
}
