//! `pull`: a manifest (or the wasm entry of an index), its config, and the
//! missing layers, each checked against its digest before it enters the
//! store. The image is committed only once everything is in place, so a
//! failed pull leaves no image and no tag behind.
//!
//! A layer is unpacked while it downloads: its bytes go both to the blob
//! store and, through a channel, to an unpacker on a blocking thread that
//! stages the tree and computes the diff_id. The staged tree is put in
//! place only once the blob has matched its digest and the tree its
//! diff_id; otherwise it is deleted.

use std::io::Write as _;
use std::sync::Arc;

use futures_util::StreamExt as _;
use oci_client::{Client, RegistryOperation};
use oci_spec::image::{Arch, ImageConfiguration, ImageIndex, ImageManifest};

use super::{RegistryError, artifact, authenticate, client_for, oci_reference, remote};
use crate::image::blobs::{BlobError, BlobStore};
use crate::image::media;
use crate::image::store::{Layers, NewImage};
use crate::image::{Digest, ImageStore, Reference, layer};

/// The manifest types wrun asks for, most preferred first.
pub const ACCEPT: &[&str] = &[
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_LIST,
];

/// Layers downloaded at once: enough to fill a link, few enough not to
/// trip a registry's rate limits.
const PARALLEL_DOWNLOADS: usize = 4;

/// What a pull reports while it runs, in the order Docker prints it.
#[derive(Debug, Clone)]
pub enum Event {
    /// `latest: Pulling from library/busybox`.
    Pulling { what: String, repository: String },
    /// A layer already in the store.
    Exists(Digest),
    /// A layer download starting, with its size from the manifest.
    Started { layer: Digest, size: u64 },
    /// Bytes received for a layer.
    Progress { layer: Digest, bytes: u64 },
    /// A layer downloaded and verified.
    Complete(Digest),
}

/// Where events go; called from several download tasks at once.
pub type Progress = Arc<dyn Fn(Event) + Send + Sync>;

/// How a pull ended.
#[derive(Debug, Clone)]
pub struct Pulled {
    pub id: Digest,
    pub manifest_digest: Digest,
    /// The tag (or digest reference) now naming the image.
    pub reference: Reference,
    /// The tag already pointed at this manifest: nothing was downloaded.
    pub up_to_date: bool,
}

/// The manifest and config of the image to pull.
struct Fetched {
    manifest_bytes: Vec<u8>,
    manifest_digest: Digest,
    config_bytes: Vec<u8>,
    layers: Vec<(Digest, u64)>,
    diff_ids: Vec<Digest>,
    /// A wasm artifact: one bare wasm layer, converted on pull.
    artifact: bool,
}

/// Pulls `name` into `store`.
pub fn pull(
    store: &mut ImageStore,
    name: &str,
    progress: Progress,
) -> Result<Pulled, RegistryError> {
    // Garbage collection stays away from the blobs written until commit.
    let _lease = store.lease().map_err(|source| RegistryError::Image {
        action: "pull",
        name: name.to_string(),
        source: Box::new(source),
    })?;
    let parsed = store
        .parse_reference(name)
        .map_err(|source| RegistryError::Image {
            action: "pull",
            name: name.to_string(),
            source: Box::new(source),
        })?;
    let reference = match (parsed.digest(), parsed.tag()) {
        (None, None) => parsed.with_tag("latest").unwrap_or(parsed),
        _ => parsed,
    };
    let shown = reference.to_string();
    let registry = reference.registry().to_string();
    let image = oci_reference(&reference);
    let client = client_for(store.root(), &registry)?;
    let credentials = super::auth::credentials(store.root(), &registry)?;
    let rt = super::runtime("pull", &shown)?;

    let fetched = rt.block_on(async {
        authenticate(
            &client,
            &image,
            &credentials,
            RegistryOperation::Pull,
            "pull",
            &shown,
        )
        .await?;
        fetch_manifest(&client, &image, &shown).await
    })?;
    progress(Event::Pulling {
        what: reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_string(),
        repository: reference.repository().to_string(),
    });

    let tag = reference.digest().is_none().then_some(&reference);
    if let Some(tag) = tag
        && let Ok(existing) = store.resolve(&tag.to_string())
        && existing.manifest_digest == fetched.manifest_digest
        && fetched
            .layers
            .iter()
            .all(|(d, _)| store.blobs().contains(d))
    {
        return Ok(Pulled {
            id: existing.id,
            manifest_digest: fetched.manifest_digest,
            reference,
            up_to_date: true,
        });
    }

    let blobs = store.blobs().clone();
    let mut missing: Vec<Missing> = Vec::new();
    for (i, (digest, size)) in fetched.layers.iter().enumerate() {
        if blobs.contains(digest) {
            progress(Event::Exists(digest.clone()));
        } else if !missing.iter().any(|m| &m.digest == digest) {
            missing.push(Missing {
                digest: digest.clone(),
                size: *size,
                // An artifact's one layer is bare wasm, not a tar.
                diff_id: (!fetched.artifact)
                    .then(|| fetched.diff_ids.get(i).cloned())
                    .flatten(),
            });
        }
    }
    let layers = store.layers();
    rt.block_on(download_all(
        &client, &image, &shown, &blobs, &layers, missing, &progress,
    ))?;

    let image_err = |source| RegistryError::Image {
        action: "pull",
        name: shown.clone(),
        source: Box::new(source),
    };
    let previous = tag
        .and_then(|t| store.resolve(&t.to_string()).ok())
        .map(|i| i.id);
    let id = if fetched.artifact {
        let (wasm, _) = &fetched.layers[0];
        let (manifest, config, size) =
            artifact::convert(store, wasm, &fetched.config_bytes, &shown)?;
        store
            .commit(NewImage {
                manifest: &manifest,
                config: &config,
                size,
                tag,
            })
            .map_err(image_err)?
    } else {
        let mut size = 0;
        for ((digest, _), diff_id) in fetched.layers.iter().zip(&fetched.diff_ids) {
            let dir = store.unpacked_layer(digest, diff_id).map_err(image_err)?;
            size += layer::dir_size(&dir);
        }
        store
            .commit(NewImage {
                manifest: &fetched.manifest_bytes,
                config: &fetched.config_bytes,
                size,
                tag,
            })
            .map_err(image_err)?
    };
    Ok(Pulled {
        up_to_date: previous.as_ref() == Some(&id),
        id,
        manifest_digest: fetched.manifest_digest,
        reference,
    })
}

/// Reads a manifest by reference and checks it against the digest it was
/// asked by, if any.
async fn manifest_bytes(
    client: &Client,
    image: &oci_client::Reference,
    shown: &str,
    expected: Option<&Digest>,
) -> Result<(Vec<u8>, Digest), RegistryError> {
    let (bytes, _) = client
        .pull_manifest_raw(image, &oci_client::secrets::RegistryAuth::Anonymous, ACCEPT)
        .await
        .map_err(|e| remote("pull", shown, image.registry(), &e))?;
    let actual = Digest::of(&bytes);
    if let Some(expected) = expected
        && expected != &actual
    {
        return Err(blob_err(
            shown,
            BlobError::Mismatch {
                expected: expected.clone(),
                actual,
            },
        ));
    }
    Ok((bytes.to_vec(), actual))
}

fn blob_err(shown: &str, source: BlobError) -> RegistryError {
    RegistryError::Blob {
        action: "pull",
        name: shown.to_string(),
        source,
    }
}

fn invalid(shown: &str, what: &'static str, message: impl ToString) -> RegistryError {
    RegistryError::Invalid {
        action: "pull",
        name: shown.to_string(),
        what,
        message: message.to_string(),
    }
}

async fn fetch_manifest(
    client: &Client,
    image: &oci_client::Reference,
    shown: &str,
) -> Result<Fetched, RegistryError> {
    let asked = image.digest().and_then(|d| Digest::parse(d).ok());
    let (mut bytes, mut digest) = manifest_bytes(client, image, shown, asked.as_ref()).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| invalid(shown, "manifest", e))?;
    let media_type = value["mediaType"].as_str().unwrap_or_default().to_string();
    if value.get("manifests").is_some()
        || media_type == media::OCI_INDEX
        || media_type == media::DOCKER_LIST
    {
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| invalid(shown, "index", e))?;
        let wasm = index.manifests().iter().find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == Arch::Wasm)
        });
        let Some(entry) = wasm else {
            let found: Vec<String> = index
                .manifests()
                .iter()
                .map(|m| match m.platform() {
                    Some(p) => format!("{}/{}", p.os(), p.architecture()),
                    None => "unknown".into(),
                })
                .collect();
            return Err(RegistryError::NoWasmPlatform {
                name: shown.to_string(),
                found: if found.is_empty() {
                    "nothing".into()
                } else {
                    found.join(", ")
                },
            });
        };
        let want =
            Digest::parse(entry.digest().as_ref()).map_err(|e| invalid(shown, "index", e))?;
        let by_digest = oci_client::Reference::with_digest(
            image.registry().to_string(),
            image.repository().to_string(),
            want.to_string(),
        );
        (bytes, digest) = manifest_bytes(client, &by_digest, shown, Some(&want)).await?;
    } else if !media_type.is_empty()
        && media_type != media::OCI_MANIFEST
        && media_type != media::DOCKER_MANIFEST
    {
        return Err(RegistryError::UnsupportedManifest {
            name: shown.to_string(),
            media_type,
        });
    }
    let manifest: ImageManifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(shown, "manifest", e))?;
    let layer_types: Vec<String> = manifest
        .layers()
        .iter()
        .map(|l| l.media_type().to_string())
        .collect();
    let artifact = artifact::is_artifact(manifest.config().media_type().as_ref(), &layer_types);
    let config_digest = Digest::parse(manifest.config().digest().as_ref())
        .map_err(|e| invalid(shown, "manifest", e))?;
    let mut config_bytes = Vec::new();
    client
        .pull_blob(image, config_digest.as_str(), &mut config_bytes)
        .await
        .map_err(|e| match e {
            oci_client::errors::OciDistributionError::DigestError(_) => blob_err(
                shown,
                BlobError::Mismatch {
                    expected: config_digest.clone(),
                    actual: Digest::of(&config_bytes),
                },
            ),
            e => RegistryError::Remote {
                action: "pull",
                name: shown.to_string(),
                message: format!(
                    "config blob {config_digest}: {}",
                    super::describe(&e, image.registry())
                ),
            },
        })?;
    if artifact {
        let [layer] = manifest.layers().as_slice() else {
            return Err(invalid(
                shown,
                "wasm artifact",
                "expected exactly one wasm layer",
            ));
        };
        let d =
            Digest::parse(layer.digest().as_ref()).map_err(|e| invalid(shown, "manifest", e))?;
        return Ok(Fetched {
            manifest_bytes: bytes,
            manifest_digest: digest,
            config_bytes,
            layers: vec![(d, layer.size())],
            diff_ids: Vec::new(),
            artifact: true,
        });
    }
    let config: ImageConfiguration =
        serde_json::from_slice(&config_bytes).map_err(|e| invalid(shown, "config", e))?;
    if *config.architecture() != Arch::Wasm {
        return Err(RegistryError::NotWasm {
            name: shown.to_string(),
            platform: format!("{}/{}", config.os(), config.architecture()),
        });
    }
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(|e| invalid(shown, "config", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let layers = manifest
        .layers()
        .iter()
        .map(|l| {
            let media_type = l.media_type().to_string();
            if !media_type.contains("tar") {
                return Err(invalid(
                    shown,
                    "layer",
                    format!("unsupported layer media type {media_type:?}"),
                ));
            }
            let d =
                Digest::parse(l.digest().as_ref()).map_err(|e| invalid(shown, "manifest", e))?;
            Ok((d, l.size()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if diff_ids.len() != layers.len() {
        return Err(invalid(
            shown,
            "image",
            format!(
                "manifest lists {} layers but the config lists {} diff IDs",
                layers.len(),
                diff_ids.len()
            ),
        ));
    }
    Ok(Fetched {
        manifest_bytes: bytes,
        manifest_digest: digest,
        config_bytes,
        layers,
        diff_ids,
        artifact: false,
    })
}

/// A layer blob to download.
struct Missing {
    digest: Digest,
    size: u64,
    /// What its tar must unpack to; `None`: do not unpack it.
    diff_id: Option<Digest>,
}

/// Chunks of a layer in flight to its unpacker, at most.
const UNPACK_QUEUE: usize = 64;

/// Downloads `missing` layers, a few at a time, each into the blob store
/// and unpacked into `layers`. The first failure cancels the rest; their
/// staged files vanish with them.
async fn download_all(
    client: &Client,
    image: &oci_client::Reference,
    shown: &str,
    blobs: &BlobStore,
    layers: &Layers,
    missing: Vec<Missing>,
    progress: &Progress,
) -> Result<(), RegistryError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_DOWNLOADS));
    let mut tasks = tokio::task::JoinSet::new();
    for m in missing {
        let (client, image, shown) = (client.clone(), image.clone(), shown.to_string());
        let (blobs, progress, permits) = (blobs.clone(), progress.clone(), permits.clone());
        let layers = layers.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            download(&client, &image, &shown, &blobs, &layers, &m, &progress).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        let result = done.map_err(|e| RegistryError::Runtime {
            action: "pull",
            name: shown.to_string(),
            message: e.to_string(),
        })?;
        result?;
    }
    Ok(())
}

async fn download(
    client: &Client,
    image: &oci_client::Reference,
    shown: &str,
    blobs: &BlobStore,
    layers: &Layers,
    m: &Missing,
    progress: &Progress,
) -> Result<(), RegistryError> {
    let (digest, size) = (&m.digest, m.size);
    // The unpacker, unless the layer is already unpacked (another image's).
    let mut unpacking = m
        .diff_id
        .as_ref()
        .filter(|d| !layers.dest(d).is_dir())
        .map(|_| {
            let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(UNPACK_QUEUE);
            let (layers, digest) = (layers.clone(), digest.clone());
            let job =
                tokio::task::spawn_blocking(move || layers.stage(ChunkReader::new(rx), &digest));
            (tx, job)
        });
    progress(Event::Started {
        layer: digest.clone(),
        size,
    });
    let mut stream = client
        .pull_blob_stream(image, digest.as_str())
        .await
        .map_err(|e| remote("pull", shown, image.registry(), &e))?;
    // oci-client hashes the stream and fails it at its end unless the
    // digest matched: the writer takes its word rather than hash the
    // bytes a second time.
    let mut writer = blobs
        .writer_checked_by_source(digest)
        .map_err(|e| blob_err(shown, e))?;
    let io_err = |source| {
        blob_err(
            shown,
            BlobError::Io {
                digest: digest.to_string(),
                source,
            },
        )
    };
    let mut failure = None;
    let mut received = 0u64;
    while let Some(chunk) = stream.stream.next().await {
        match chunk {
            Ok(bytes) => {
                writer.write_all(&bytes).map_err(io_err)?;
                received += bytes.len() as u64;
                // An unpacker that stopped (a bad tar) takes no more; the
                // blob still downloads, and its error comes from the
                // unpack after the download, as without streaming.
                if let Some((tx, _)) = &unpacking
                    && tx.send(bytes.clone()).await.is_err()
                {
                    unpacking = None;
                }
                progress(Event::Progress {
                    layer: digest.clone(),
                    bytes: bytes.len() as u64,
                });
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    // A failed stream stores nothing. oci-client's digest check fails the
    // stream at its end: all the bytes, but the wrong ones, are a mismatch,
    // named as the blob store names one; anything else broke off.
    if let Some(e) = failure {
        drop(writer);
        if let Some(actual) = mismatch(&e).filter(|a| received >= size && a != digest) {
            return Err(blob_err(
                shown,
                BlobError::Mismatch {
                    expected: digest.clone(),
                    actual,
                },
            ));
        }
        let why = super::innermost_cause(&e).unwrap_or_else(|| e.to_string());
        return Err(RegistryError::Remote {
            action: "pull",
            name: shown.to_string(),
            message: format!(
                "blob {digest}: the answer from registry {} broke off after {received} of its {size} bytes: {why}",
                image.registry()
            ),
        });
    }
    // The stream ended without error: its digest matched.
    writer
        .commit(Some(digest))
        .map_err(|e| blob_err(shown, e))?;
    // The blob is in: the tree it unpacked to goes in place if it is the
    // config's diff_id. Any failure here leaves the unpack to the commit,
    // which names it.
    if let (Some((tx, job)), Some(diff_id)) = (unpacking, &m.diff_id) {
        drop(tx);
        if let Ok(Ok(staged)) = job.await {
            let _ = layers.install(staged, digest, diff_id);
        }
    }
    progress(Event::Complete(digest.clone()));
    Ok(())
}

/// The digest a blob stream had, if it failed because that was not the
/// one asked for.
fn mismatch(e: &std::io::Error) -> Option<Digest> {
    match e
        .get_ref()?
        .downcast_ref::<oci_client::errors::DigestError>()?
    {
        oci_client::errors::DigestError::VerificationError { actual, .. } => {
            Digest::parse(actual).ok()
        }
        _ => None,
    }
}

/// The bytes sent on a channel, as a `Read` for a blocking thread; the
/// channel closing is the end.
struct ChunkReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl ChunkReader {
    fn new(rx: tokio::sync::mpsc::Receiver<bytes::Bytes>) -> Self {
        Self {
            rx,
            chunk: bytes::Bytes::new(),
        }
    }
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.chunk = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
