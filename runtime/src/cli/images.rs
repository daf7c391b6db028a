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
    /// Show digests: the manifest digest a registry knows the image by
    #[arg(long)]
    digests: bool,
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
                    rows.push(self.row(
                        "<none>".into(),
                        "<none>".into(),
                        &img.manifest_digest,
                        &id,
                        created,
                        size,
                    ));
                    ids.push(id);
                }
                continue;
            }
            for (repo, tag) in names {
                rows.push(self.row(
                    repo,
                    tag,
                    &img.manifest_digest,
                    &id,
                    created.clone(),
                    size.clone(),
                ));
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
        if self.digests {
            table(
                &["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"],
                &rows,
            )?;
        } else {
            table(&["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], &rows)?;
        }
        Ok(0)
    }

    fn row(
        &self,
        repo: String,
        tag: String,
        digest: &crate::image::Digest,
        id: &str,
        created: String,
        size: String,
    ) -> Vec<String> {
        let mut row = vec![repo, tag];
        if self.digests {
            row.push(digest.to_string());
        }
        row.extend([id.to_string(), created, size]);
        row
    }
}
