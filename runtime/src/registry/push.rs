//! `push`: the layers the registry lacks, then the config, then the stored
//! manifest bytes unchanged, so the pushed digest is the one in the store
//! and a later pull gives back the same image ID.

use std::sync::Arc;

use oci_client::{Client, RegistryOperation};

use super::{RegistryError, authenticate, client_for, oci_reference, remote};
use crate::image::blobs::BlobStore;
use crate::image::{Digest, ImageStore, Reference, media};

/// Layers uploaded at once.
const PARALLEL_UPLOADS: usize = 4;

/// What a push reports while it runs.
#[derive(Debug, Clone)]
pub enum Event {
    /// `The push refers to repository [...]`.
    Repository(String),
    /// A layer the registry already has.
    Exists(Digest),
    /// A layer uploaded.
    Pushed(Digest),
}

/// Where events go; called from several upload tasks at once.
pub type Progress = Arc<dyn Fn(Event) + Send + Sync>;

/// How a push ended: `latest: digest: sha256:... size: N`.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub tag: String,
    pub digest: Digest,
    pub size: usize,
}

/// Pushes the image named `name` to the registry its name points at.
pub fn push(store: &ImageStore, name: &str, progress: Progress) -> Result<Pushed, RegistryError> {
    let image_err = |source| RegistryError::Image {
        action: "push",
        name: name.to_string(),
        source: Box::new(source),
    };
    let parsed = store.parse_reference(name).map_err(image_err)?;
    let reference: Reference = match (parsed.digest(), parsed.tag()) {
        (None, None) => parsed.with_tag("latest").unwrap_or(parsed),
        _ => parsed,
    };
    let shown = reference.to_string();
    let image = store.resolve(&reference.to_string()).map_err(image_err)?;
    let manifest = store
        .blobs()
        .read_verified(&image.manifest_digest)
        .map_err(|source| RegistryError::Blob {
            action: "push",
            name: shown.clone(),
            source,
        })?;
    let media_type = image
        .manifest
        .media_type()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_else(|| media::OCI_MANIFEST.to_string());
    let invalid = |message: String| RegistryError::Invalid {
        action: "push",
        name: shown.clone(),
        what: "image",
        message,
    };
    let mut blobs = Vec::new();
    for l in image.manifest.layers() {
        let d = Digest::parse(l.digest().as_ref()).map_err(|e| invalid(e.to_string()))?;
        if !blobs.contains(&d) {
            blobs.push(d);
        }
    }
    let registry = reference.registry().to_string();
    let target = oci_reference(&reference);
    let client = client_for(store.root(), &registry)?;
    let credentials = super::auth::credentials(store.root(), &registry)?;
    progress(Event::Repository(reference.name()));
    let rt = super::runtime("push", &shown)?;
    let store_blobs = store.blobs().clone();
    let config = image.id.clone();
    rt.block_on(async {
        authenticate(
            &client,
            &target,
            &credentials,
            RegistryOperation::Push,
            "push",
            &shown,
        )
        .await?;
        let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_UPLOADS));
        let mut tasks = tokio::task::JoinSet::new();
        for digest in blobs {
            let (client, target, shown) = (client.clone(), target.clone(), shown.clone());
            let (store_blobs, progress, permits) =
                (store_blobs.clone(), progress.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let existed = upload(&client, &target, &shown, &store_blobs, &digest).await?;
                progress(if existed {
                    Event::Exists(digest)
                } else {
                    Event::Pushed(digest)
                });
                Ok::<_, RegistryError>(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| RegistryError::Runtime {
                action: "push",
                name: shown.clone(),
                message: e.to_string(),
            })??;
        }
        upload(&client, &target, &shown, &store_blobs, &config).await?;
        let content_type = media_type
            .parse()
            .map_err(|_| invalid(format!("media type {media_type:?}")))?;
        let size = manifest.len();
        client
            .push_manifest_raw(&target, manifest, content_type)
            .await
            .map_err(|e| remote("push", &shown, &registry, &e))?;
        Ok(Pushed {
            tag: reference.tag().unwrap_or("latest").to_string(),
            digest: image.manifest_digest.clone(),
            size,
        })
    })
}

/// Uploads one blob unless the registry has it; returns whether it had.
async fn upload(
    client: &Client,
    target: &oci_client::Reference,
    shown: &str,
    blobs: &BlobStore,
    digest: &Digest,
) -> Result<bool, RegistryError> {
    let err =
        |e: &oci_client::errors::OciDistributionError| remote("push", shown, target.registry(), e);
    if client
        .blob_exists(target, digest.as_str())
        .await
        .map_err(|e| err(&e))?
    {
        return Ok(true);
    }
    // A checked read: a blob damaged on disk is never sent out.
    let data = blobs
        .read_verified(digest)
        .map_err(|source| RegistryError::Blob {
            action: "push",
            name: shown.to_string(),
            source,
        })?;
    client
        .push_blob(target, data, digest.as_str())
        .await
        .map_err(|e| err(&e))?;
    Ok(false)
}
