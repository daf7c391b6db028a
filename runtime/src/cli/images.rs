//! `wrun images`: list local images.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use super::format::{ago, human_size, table};
use crate::image::ImageStore;

/// List images
#[derive(Debug, Args)]
pub struct ImagesCommand {
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Do not truncate the IDs
    #[arg(long)]
    no_trunc: bool,
    /// Show only images of this repository (and tag)
    #[arg(value_name = "REPOSITORY[:TAG]")]
    filter: Option<String>,
}

impl ImagesCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let store = ImageStore::open(&ctx.root)?;
        let wanted = self
            .filter
            .as_deref()
            .map(|f| store.parse_reference(f))
            .transpose()?;
        let filter_has_tag = self.filter.as_deref().is_some_and(|f| {
            let last = f.rsplit('/').next().unwrap_or(f);
            last.contains(':')
        });
        let mut rows = Vec::new();
        let mut ids = Vec::new();
        for img in store.list()? {
            let id = if self.no_trunc {
                img.id.to_string()
            } else {
                img.id.short().to_string()
            };
            let created = img.created.map(ago).unwrap_or_else(|| "N/A".into());
            let size = human_size(img.size);
            let names: Vec<(String, String)> = img
                .tags
                .iter()
                .filter(|t| match &wanted {
                    None => true,
                    Some(w) => w.name() == t.name() && (!filter_has_tag || w.tag() == t.tag()),
                })
                .map(|t| {
                    (
                        t.familiar_repository(),
                        t.tag().unwrap_or("<none>").to_string(),
                    )
                })
                .collect();
            if names.is_empty() {
                if wanted.is_none() {
                    rows.push(vec![
                        "<none>".into(),
                        "<none>".into(),
                        id.clone(),
                        created,
                        size,
                    ]);
                    ids.push(id);
                }
                continue;
            }
            for (repo, tag) in names {
                rows.push(vec![repo, tag, id.clone(), created.clone(), size.clone()]);
            }
            ids.push(id);
        }
        if self.quiet {
            ids.dedup();
            for id in ids {
                println!("{id}");
            }
            return Ok(0);
        }
        table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows)?;
        Ok(0)
    }
}
