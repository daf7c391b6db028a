//! `wrun rmi`: remove images.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::container::Containers;
use crate::image::{ImageStore, Removed};

/// Remove one or more images
#[derive(Debug, Args)]
pub struct RmiCommand {
    /// Remove even if containers use the image
    #[arg(short, long)]
    force: bool,
    #[arg(value_name = "IMAGE", required = true)]
    images: Vec<String>,
}

impl RmiCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut store = ImageStore::open(&ctx.root)?;
        let containers = Containers::open(&ctx.root)?;
        let mut failed = false;
        for name in &self.images {
            let result = store
                .resolve(name)
                .map_err(anyhow::Error::from)
                .and_then(|img| {
                    let users = containers.users_of_image(img.id.as_str())?;
                    Ok(store.remove(name, self.force, &users)?)
                });
            match result {
                Ok(removed) => {
                    for r in removed {
                        match r {
                            Removed::Untagged(t) => println!("Untagged: {t}"),
                            Removed::Deleted(d) => println!("Deleted: {d}"),
                        }
                    }
                }
                Err(e) => {
                    eprintln!("wrun: rmi {name}: {}", super::chain(&e));
                    failed = true;
                }
            }
        }
        Ok(if failed { 1 } else { 0 })
    }
}
