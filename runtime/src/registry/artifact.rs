//! The CNCF wasm artifact (config `application/vnd.wasm.config.v0+json`,
//! one `application/wasm` layer, as `wkg` and `oras` push it) and the older
//! `application/vnd.wasm.content.layer.v1+wasm` layers: a bare wasm file
//! rather than a tar. It is converted on pull into a standard local image
//! whose one layer holds the program as `/app.wasm`, its entrypoint, so that
//! everything after the pull (run, save, push) sees an ordinary OCI image.

use std::collections::BTreeMap;
use std::io::Read;

use oci_spec::image::ConfigBuilder;

use super::RegistryError;
use crate::image::assemble::{HistoryStep, LayerRef, assemble};
use crate::image::layer::pack::{EntryKind, pack};
use crate::image::wasm::WasmKind;
use crate::image::{Digest, ImageStore};

/// Config media type of the CNCF wasm artifact.
pub const CONFIG_V0: &str = "application/vnd.wasm.config.v0+json";
/// Layer media types that hold a bare wasm file.
pub const WASM_LAYERS: &[&str] = &[
    "application/wasm",
    "application/vnd.wasm.content.layer.v1+wasm",
];

/// Where the converted image keeps the program.
const PROGRAM: &str = "app.wasm";

/// Whether a manifest with this config and these layer media types is a
/// wasm artifact rather than an image of tar layers.
pub fn is_artifact(config_media_type: &str, layer_media_types: &[String]) -> bool {
    config_media_type == CONFIG_V0
        || (layer_media_types.len() == 1 && WASM_LAYERS.contains(&layer_media_types[0].as_str()))
}

/// Builds the local image for the artifact whose wasm blob `wasm` is in the
/// store. Returns (manifest, config, size). `shown` names it in errors.
pub fn convert(
    store: &ImageStore,
    wasm: &Digest,
    artifact_config: &[u8],
    shown: &str,
) -> Result<(Vec<u8>, Vec<u8>, u64), RegistryError> {
    let invalid = |message: String| RegistryError::Invalid {
        action: "pull",
        name: shown.to_string(),
        what: "wasm artifact",
        message,
    };
    let path = store.blobs().path(wasm);
    let mut head = [0u8; 8];
    let read = std::fs::File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| invalid(format!("layer {wasm}: {e}")))?;
    let kind = WasmKind::sniff(&head[..read]);
    if let WasmKind::Other(what) = kind {
        return Err(invalid(format!("layer {wasm} is {what}, not WebAssembly")));
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    // The artifact's own `created`, when it has one, keeps the conversion
    // deterministic: the same artifact always becomes the same image ID.
    let created = serde_json::from_slice::<serde_json::Value>(artifact_config)
        .ok()
        .and_then(|v| v["created"].as_str().map(str::to_string))
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string());
    let mut entries = BTreeMap::new();
    entries.insert(
        PROGRAM.to_string(),
        EntryKind::File {
            source: path,
            mode: 0o755,
        },
    );
    let packed = pack(store.blobs(), entries, 0, shown).map_err(|e| invalid(e.to_string()))?;
    let config = ConfigBuilder::default()
        .entrypoint(vec![format!("/{PROGRAM}")])
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let layers = [LayerRef {
        digest: packed.digest,
        diff_id: packed.diff_id,
        size: packed.size,
    }];
    let history = [HistoryStep::new(
        format!("converted from the wasm artifact {shown} (layer {wasm})"),
        false,
    )];
    let (manifest, config) =
        assemble(config, kind, &created, &layers, &history).map_err(invalid)?;
    Ok((manifest, config, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_artifacts() {
        assert!(is_artifact(CONFIG_V0, &["application/wasm".into()]));
        assert!(is_artifact(
            "application/vnd.oci.image.config.v1+json",
            &["application/vnd.wasm.content.layer.v1+wasm".into()]
        ));
        assert!(!is_artifact(
            "application/vnd.oci.image.config.v1+json",
            &["application/vnd.oci.image.layer.v1.tar+gzip".into()]
        ));
    }
}
