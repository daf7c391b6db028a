//! `wrun images`: list images, as the daemon's `GET /images/json` answers.

use anyhow::Result;
use clap::Args;
use hyper::Method;

use super::Ctx;
use super::format::{ago, human_size, table};
use super::template::{Format, refuse_quiet_with_format};
use crate::api::types::ImageSummary;

/// The column each `--format` field heads, as the docker CLI names them.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("Containers", "CONTAINERS"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
];

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
    /// Filter output (reference=busybox*, dangling=true, label=k=v,
    /// before=IMAGE, since=IMAGE, until=1h)
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// Format output: table, table TEMPLATE, json, or a Go template
    /// (`{{.Repository}}:{{.Tag}}`)
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    /// Show only images of this repository (and tag); globs as `reference`
    #[arg(value_name = "REPOSITORY[:TAG]")]
    reference: Option<String>,
}

impl ImagesCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(self.run(ctx))?
    }

    async fn run(&self, ctx: &Ctx) -> Result<u8> {
        let format = Format::parse(self.format.as_deref())?;
        refuse_quiet_with_format(self.quiet, &format)?;
        let mut filters = self.filter.clone();
        if let Some(r) = &self.reference {
            filters.push(format!("reference={r}"));
        }
        let path = format!(
            "/images/json?{}",
            super::flags::filters_query(&filters)?.trim_start_matches('&')
        );
        let client = ctx.client().await?;
        let mut list: Vec<ImageSummary> = client.json(Method::GET, &path, None::<&()>).await?;
        // Newest first, as docker lists them.
        list.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        if self.quiet {
            for img in &list {
                println!("{}", self.id(img));
            }
            return Ok(0);
        }
        let fields: Vec<serde_json::Value> = list.iter().flat_map(|i| self.fields(i)).collect();
        if !format.is_default() {
            format.print(&fields, HEADERS)?;
            return Ok(0);
        }
        let mut header = vec!["REPOSITORY", "TAG"];
        let mut columns = vec!["Repository", "Tag"];
        if self.digests {
            header.push("DIGEST");
            columns.push("Digest");
        }
        header.extend(["IMAGE ID", "CREATED", "SIZE"]);
        columns.extend(["ID", "CreatedSince", "Size"]);
        let rows = super::template::cells(&fields, &columns);
        table(&header, &rows)?;
        Ok(0)
    }

    fn id(&self, img: &ImageSummary) -> String {
        if self.no_trunc {
            img.id.clone()
        } else {
            let hex = img.id.strip_prefix("sha256:").unwrap_or(&img.id);
            hex.chars().take(12).collect()
        }
    }

    /// An image's rows as the docker CLI's `--format` fields see them: one
    /// per tag, or one `<none>` row for an untagged image.
    fn fields(&self, img: &ImageSummary) -> Vec<serde_json::Value> {
        let created = chrono::DateTime::from_timestamp(img.created, 0).filter(|_| img.created > 0);
        let size = human_size(u64::try_from(img.size).unwrap_or(0));
        let digest_of = |repo: &str| -> String {
            img.repo_digests
                .iter()
                .find_map(|d| {
                    d.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, dg)| dg.to_string())
                })
                .unwrap_or_else(|| "<none>".into())
        };
        let row = |repo: &str, tag: &str, digest: String| {
            serde_json::json!({
                "ID": self.id(img),
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": created.map(ago).unwrap_or_else(|| "N/A".into()),
                "CreatedAt": created
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
                    .unwrap_or_default(),
                "Size": size,
                "Containers": if img.containers < 0 { "N/A".to_string() } else { img.containers.to_string() },
                "SharedSize": if img.shared_size < 0 { "N/A".to_string() } else { human_size(u64::try_from(img.shared_size).unwrap_or(0)) },
                "UniqueSize": "N/A",
                "VirtualSize": size,
            })
        };
        if img.repo_tags.is_empty() {
            return vec![row("<none>", "<none>", "<none>".into())];
        }
        img.repo_tags
            .iter()
            .map(|t| {
                // The tag follows the last colon after the last slash.
                let (repo, tag) = match t.rfind(':') {
                    Some(i) if !t[i..].contains('/') => (&t[..i], &t[i + 1..]),
                    _ => (t.as_str(), "<none>"),
                };
                row(repo, tag, digest_of(repo))
            })
            .collect()
    }
}
