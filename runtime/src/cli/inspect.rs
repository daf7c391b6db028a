//! `wrun inspect`: containers (or images) as Docker's JSON.

use anyhow::{Result, bail};
use clap::Args;
use hyper::{Method, StatusCode};
use serde_json::Value;

use super::Ctx;
use super::format::json;
use super::run::encode;
use super::template::Format;
use crate::client::ClientError;

/// Return low-level information on containers or images
#[derive(Debug, Args)]
pub struct InspectCommand {
    /// Only inspect objects of this type: container or image
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Format output: json, or a Go template (`{{.State.Status}}`,
    /// `{{json .Config}}`)
    #[arg(short, long, value_name = "FORMAT")]
    format: Option<String>,
    #[arg(value_name = "NAME|ID", required = true)]
    names: Vec<String>,
}

impl InspectCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let kind = self.kind.as_deref().unwrap_or("");
        if !matches!(kind, "" | "container" | "image") {
            bail!("invalid --type {kind:?}: use container or image");
        }
        let format = Format::parse(self.format.as_deref())?;
        super::block_on(async {
            let client = ctx.client().await?;
            let mut out = Vec::new();
            let mut missing = Vec::new();
            for name in &self.names {
                let mut found = None;
                if kind != "image" {
                    let path = format!("/containers/{}/json", encode(name));
                    match client.json::<Value>(Method::GET, &path, None::<&()>).await {
                        Ok(v) => found = Some(v),
                        Err(ClientError::Api { status, .. }) if status == StatusCode::NOT_FOUND => {
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                if found.is_none() && kind != "container" {
                    let path = format!("/images/{name}/json");
                    match client.json::<Value>(Method::GET, &path, None::<&()>).await {
                        Ok(v) => found = Some(v),
                        Err(ClientError::Api { status, .. }) if status == StatusCode::NOT_FOUND => {
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                match found {
                    Some(v) => out.push(v),
                    None => missing.push(format!("No such object: {name}")),
                }
            }
            if format.is_default() {
                println!("{}", json(&Value::Array(out)));
            } else {
                format.print_objects(&out)?;
            }
            if !missing.is_empty() {
                eprintln!("Error: {}", missing.join("; "));
                return Ok(1);
            }
            Ok(0)
        })?
    }
}
