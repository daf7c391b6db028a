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
