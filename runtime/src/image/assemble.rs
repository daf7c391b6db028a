//! Writing a new image's config and manifest: the one place wrun creates
//! OCI image JSON, shared by `build` and by converting pulled wasm artifacts.

use oci_spec::image::{
    Arch, Config, DescriptorBuilder, HistoryBuilder, ImageConfiguration, ImageConfigurationBuilder,
    ImageManifestBuilder, MediaType, Os, RootFsBuilder,
};

use super::digest::Digest;
use super::media;
use super::wasm::WasmKind;

/// A layer already in the blob store.
#[derive(Debug, Clone)]
pub struct LayerRef {
    pub digest: Digest,
    pub diff_id: Digest,
    /// The blob's (compressed) size.
    pub size: u64,
}

/// One step of an image's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryStep {
    /// What made it: a Dockerfile instruction, or a committed container's
    /// command.
    pub created_by: String,
    /// It changed the config only.
    pub empty_layer: bool,
    /// `docker commit -m`'s message.
    pub comment: String,
}

impl HistoryStep {
    pub fn new(created_by: impl Into<String>, empty_layer: bool) -> Self {
        Self {
            created_by: created_by.into(),
            empty_layer,
            comment: String::new(),
        }
    }
}

/// Returns `(manifest, config)` bytes for a wasm image: architecture `wasm`,
/// os from `kind`, `created` (RFC 3339) on the image and every history entry.
pub fn assemble(
    config: Config,
    kind: WasmKind,
    created: &str,
    layers: &[LayerRef],
    history: &[HistoryStep],
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let history = history
        .iter()
        .map(|step| {
            let mut b = HistoryBuilder::default()
                .created(created.to_string())
                .created_by(step.created_by.clone());
            if step.empty_layer {
                b = b.empty_layer(true);
            }
            if !step.comment.is_empty() {
                b = b.comment(step.comment.clone());
            }
            b.build().map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let image_config: ImageConfiguration = ImageConfigurationBuilder::default()
        .created(created.to_string())
        .architecture(Arch::Wasm)
        .os(Os::Other(kind.oci_os().to_string()))
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(
                    layers
                        .iter()
                        .map(|l| l.diff_id.to_string())
                        .collect::<Vec<_>>(),
                )
                .build()
                .map_err(|e| e.to_string())?,
        )
        .history(history)
        .build()
        .map_err(|e| e.to_string())?;
    let config_bytes = serde_json::to_vec(&image_config).map_err(|e| e.to_string())?;
    let config_digest = Digest::of(&config_bytes);
    let descriptor = |mt: &str, digest: &Digest, size: u64| {
        DescriptorBuilder::default()
            .media_type(MediaType::from(mt))
            .digest(
                digest
                    .as_str()
                    .parse::<oci_spec::image::Digest>()
                    .map_err(|e| e.to_string())?,
            )
            .size(size)
            .build()
            .map_err(|e| e.to_string())
    };
    let layer_descriptors = layers
        .iter()
        .map(|l| descriptor(media::OCI_LAYER_GZIP, &l.digest, l.size))
        .collect::<Result<Vec<_>, _>>()?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(descriptor(
            media::OCI_CONFIG,
            &config_digest,
            config_bytes.len() as u64,
        )?)
        .layers(layer_descriptors)
        .build()
        .map_err(|e| e.to_string())?;
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
    Ok((manifest_bytes, config_bytes))
}
