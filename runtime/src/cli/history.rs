//! `wrun history`: the steps that made an image, newest first.

use anyhow::Result;
use clap::Args;

use super::Ctx;
use super::format::{ago, human_size, table};
use super::template::{Format, refuse_quiet_with_format};
use crate::image::ImageStore;

/// The column each `--format` field heads, as the docker CLI names them.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];

/// Show the history of an image
#[derive(Debug, Args)]
pub struct HistoryCommand {
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output: table, table TEMPLATE, json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "IMAGE")]
    image: String,
}

impl HistoryCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let format = Format::parse(self.format.as_deref())?;
        refuse_quiet_with_format(self.quiet, &format)?;
        let store = ImageStore::open(&ctx.root)?;
        let img = store.resolve(&self.image)?;
        let steps = crate::api::images::history(&img);
        let fields: Vec<serde_json::Value> = steps.iter().map(|s| self.fields(s)).collect();
        if self.quiet {
            for f in &fields {
                println!("{}", f["ID"].as_str().unwrap_or_default());
            }
            return Ok(0);
        }
        if !format.is_default() {
            format.print(&fields, HEADERS)?;
            return Ok(0);
        }
        let columns = ["ID", "CreatedSince", "CreatedBy", "Size", "Comment"];
        let rows = super::template::cells(&fields, &columns);
        table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &rows,
        )?;
        Ok(0)
    }

    /// One step as the docker CLI's `--format` fields see it.
    fn fields(&self, step: &serde_json::Value) -> serde_json::Value {
        let id = step["Id"].as_str().unwrap_or_default();
        let id = if self.no_trunc || id == "<missing>" {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        };
        let created = step["Created"]
            .as_i64()
            .filter(|c| *c > 0)
            .and_then(|c| chrono::DateTime::from_timestamp(c, 0));
        let mut by = step["CreatedBy"]
            .as_str()
            .unwrap_or_default()
            .replace('\t', " ");
        if !self.no_trunc && by.chars().count() > 45 {
            by = format!("{}…", by.chars().take(44).collect::<String>());
        }
        serde_json::json!({
            "ID": id,
            "CreatedSince": created.map(ago).unwrap_or_else(|| "N/A".into()),
            "CreatedAt": created.map(|t| t.to_rfc3339()).unwrap_or_default(),
            "CreatedBy": by,
            "Size": human_size(step["Size"].as_u64().unwrap_or(0)),
            "Comment": step["Comment"].as_str().unwrap_or_default(),
        })
    }
}
