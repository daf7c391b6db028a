//! `wrun image`: the image management group (`inspect`, `ls`, `rm`).

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::format::json;
use super::{Ctx, images, rmi};
use crate::image::{Image, ImageStore};

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
    /// Remove one or more images
    Rm(rmi::RmiCommand),
}

impl ImageCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        match self.command {
            ImageSub::Ls(c) => c.execute(ctx),
            ImageSub::Rm(c) => c.execute(ctx),
            ImageSub::Inspect { images } => {
                let store = ImageStore::open(&ctx.root)?;
                let mut out = Vec::new();
                let mut missing = Vec::new();
                for name in &images {
                    match store.resolve(name) {
                        Ok(img) => out.push(inspect_json(&img)),
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

/// An image in the shape of `docker image inspect`.
fn inspect_json(img: &Image) -> Value {
    let c = img.config.config().clone().unwrap_or_default();
    let ports: serde_json::Map<String, Value> = c
        .exposed_ports()
        .iter()
        .flatten()
        .map(|p| (p.clone(), json!({})))
        .collect();
    json!({
        "Id": img.id.as_str(),
        "RepoTags": img.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>(),
        "RepoDigests": [],
        "Created": img.config.created(),
        "Config": {
            "Env": c.env(),
            "Entrypoint": c.entrypoint(),
            "Cmd": c.cmd(),
            "WorkingDir": c.working_dir().clone().unwrap_or_default(),
            "ExposedPorts": if ports.is_empty() { Value::Null } else { Value::Object(ports) },
            "Labels": c.labels(),
            "User": c.user().clone().unwrap_or_default(),
            "Volumes": c.volumes().as_ref().map(|v| v.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>()),
            "StopSignal": c.stop_signal(),
        },
        "Architecture": img.config.architecture().to_string(),
        "Os": img.config.os().to_string(),
        "Size": img.size,
        "RootFS": {
            "Type": "layers",
            "Layers": img.config.rootfs().diff_ids(),
        },
        "Descriptor": {
            "mediaType": crate::image::media::OCI_MANIFEST,
            "digest": img.manifest_digest.as_str(),
        },
        "Metadata": {
            "LastTagTime": img.added_at.to_rfc3339(),
        },
    })
}
