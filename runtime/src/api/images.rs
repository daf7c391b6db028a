//! Images in Docker's JSON: `images/json` rows and `image inspect`.

use serde_json::{Value, json};

use super::types::ImageSummary;
use crate::image::{Image, ImageSummary as StoredSummary};

/// An image in the shape of `docker image inspect`.
pub fn inspect(img: &Image) -> Value {
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
        "Parent": "",
        // The last step's comment: `docker commit -m`'s message.
        "Comment": img
            .config
            .history()
            .as_ref()
            .and_then(|h| h.last())
            .and_then(|s| s.comment().clone())
            .unwrap_or_default(),
        "Created": img.config.created(),
        "DockerVersion": "",
        "Author": img.config.author().clone().unwrap_or_default(),
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

/// A stored image as a row of `GET /images/json`.
pub fn summary(img: &StoredSummary, containers: i64) -> ImageSummary {
    ImageSummary {
        id: img.id.to_string(),
        parent_id: String::new(),
        repo_tags: img.tags.iter().map(|t| t.familiar()).collect(),
        repo_digests: img
            .tags
            .iter()
            .map(|t| format!("{}@{}", t.familiar_repository(), img.manifest_digest))
            .collect(),
        created: img.created.map(|c| c.timestamp()).unwrap_or(0),
        size: i64::try_from(img.size).unwrap_or(i64::MAX),
        shared_size: -1,
        labels: Default::default(),
        containers,
    }
}

/// An image's history as `GET /images/{name}/history` answers it: newest
/// step first; the top step carries the image's ID and tags, the others
/// `<missing>` (as Docker says of steps it has no image for). A step that
/// made a layer shows that layer's size; an image whose config has no
/// history gets one step per layer.
pub fn history(img: &Image) -> Vec<Value> {
    let layers = img.manifest.layers();
    let mut sizes = layers.iter().map(|l| l.size());
    let created_at = |c: Option<&String>| {
        c.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0)
    };
    let mut steps: Vec<Value> = match img.config.history().as_deref() {
        Some(h) if !h.is_empty() => h
            .iter()
            .map(|step| {
                let size = if step.empty_layer().unwrap_or(false) {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                };
                json!({
                    "Created": created_at(step.created().as_ref()),
                    "CreatedBy": step.created_by().clone().unwrap_or_default(),
                    "Size": size,
                    "Comment": step.comment().clone().unwrap_or_default(),
                })
            })
            .collect(),
        _ => sizes
            .map(|size| {
                json!({
                    "Created": created_at(img.config.created().as_ref()),
                    "CreatedBy": "",
                    "Size": size,
                    "Comment": "",
                })
            })
            .collect(),
    };
    steps.reverse();
    for (i, step) in steps.iter_mut().enumerate() {
        step["Id"] = if i == 0 {
            json!(img.id.as_str())
        } else {
            json!("<missing>")
        };
        step["Tags"] = if i == 0 {
            json!(img.tags.iter().map(|t| t.familiar()).collect::<Vec<_>>())
        } else {
            Value::Null
        };
    }
    steps
}
