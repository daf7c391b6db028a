//! `wrun save` and `wrun load`: images as an OCI image-layout tar, the
//! format skopeo (`oci-archive:`), containerd (`ctr images import`) and
//! `docker load` read.
//!
//! ```text
//! oci-layout            {"imageLayoutVersion": "1.0.0"}
//! index.json            one manifest descriptor per saved name, annotated
//!                       with io.containerd.image.name and
//!                       org.opencontainers.image.ref.name
//! manifest.json         the same images in Docker's `docker save` listing
//! blobs/sha256/<hex>    manifests, configs and layers
//! ```
//!
//! Loading checks every blob against its name before it enters the store
//! and commits an image only once all of its blobs are present and valid.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};

use serde_json::{Value, json};

use super::digest::Digest;
use super::store::{ImageStore, NewImage};
use super::{ImageError, Reference, layer, media};

const ANNOTATION_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF: &str = "org.opencontainers.image.ref.name";

/// Writes the images `names` into `out` as one OCI layout tar.
pub fn save(store: &ImageStore, names: &[String], out: impl Write) -> Result<(), ImageError> {
    let mut descriptors = Vec::new();
    let mut docker_manifest = Vec::new();
    let mut blobs: BTreeSet<Digest> = BTreeSet::new();
    for name in names {
        let image = store.resolve(name)?;
        let manifest_bytes = store.blobs().read_verified(&image.manifest_digest)?;
        let reference = store
            .parse_reference(name)
            .ok()
            .filter(|r| r.digest().is_none());
        let mut annotations = serde_json::Map::new();
        let mut repo_tags = Vec::new();
        if let Some(r) = reference.as_ref().filter(|r| image.tags.contains(r)) {
            annotations.insert(ANNOTATION_NAME.into(), json!(r.to_string()));
            annotations.insert(ANNOTATION_REF.into(), json!(r.tag().unwrap_or("latest")));
            repo_tags.push(r.familiar());
        }
        descriptors.push(json!({
            "mediaType": media::OCI_MANIFEST,
            "digest": image.manifest_digest.as_str(),
            "size": manifest_bytes.len(),
            "annotations": annotations,
        }));
        let layers: Vec<Digest> = image
            .manifest
            .layers()
            .iter()
            .map(|l| parse_digest(l.digest().as_ref(), name))
            .collect::<Result<_, _>>()?;
        docker_manifest.push(json!({
            "Config": format!("blobs/sha256/{}", image.id.hex()),
            "RepoTags": repo_tags,
            "Layers": layers.iter().map(|d| format!("blobs/sha256/{}", d.hex())).collect::<Vec<_>>(),
        }));
        blobs.insert(image.manifest_digest.clone());
        blobs.insert(image.id.clone());
        blobs.extend(layers);
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": descriptors,
    });
    let io_err = |e: std::io::Error| ImageError::Invalid {
        name: "save".into(),
        message: e.to_string(),
    };
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    append_bytes(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err)?;
    append_bytes(&mut tar, "index.json", index.to_string().as_bytes()).map_err(io_err)?;
    append_bytes(
        &mut tar,
        "manifest.json",
        Value::Array(docker_manifest).to_string().as_bytes(),
    )
    .map_err(io_err)?;
    append_dir(&mut tar, "blobs/").map_err(io_err)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(io_err)?;
    for d in &blobs {
        let mut file = store.blobs().open(d)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut h = header(len, 0o644, tar::EntryType::Regular);
        tar.append_data(&mut h, format!("blobs/sha256/{}", d.hex()), &mut file)
            .map_err(io_err)?;
    }
    tar.into_inner().map_err(io_err)?.flush().map_err(io_err)?;
    Ok(())
}

/// What `load` brought in: each image ID with the names it got.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub id: Digest,
    pub names: Vec<Reference>,
}

/// Reads an OCI layout tar into the store. `archive` names it in errors.
pub fn load(
    store: &mut ImageStore,
    input: impl Read,
    archive: &str,
) -> Result<Vec<Loaded>, ImageError> {
    // Garbage collection stays away from the blobs written until commit.
    let _lease = store.lease()?;
    let invalid = |message: String| ImageError::Invalid {
        name: archive.to_string(),
        message,
    };
    let mut tar = tar::Archive::new(input);
    let mut index: Option<Vec<u8>> = None;
    let mut seen: BTreeSet<Digest> = BTreeSet::new();
    for entry in tar
        .entries()
        .map_err(|e| invalid(format!("not a tar archive: {e}")))?
    {
        let mut entry = entry.map_err(|e| invalid(format!("corrupt tar: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| invalid(format!("corrupt tar: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path == "index.json" {
            let mut bytes = Vec::new();
            entry
                .by_ref()
                .take(16 << 20)
                .read_to_end(&mut bytes)
                .map_err(|e| invalid(format!("index.json: {e}")))?;
            index = Some(bytes);
        } else if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            let expected = Digest::from_hex(hex).map_err(|e| invalid(format!("{path}: {e}")))?;
            if !store.blobs().contains(&expected) {
                let mut w = store.blobs().writer()?;
                std::io::copy(&mut entry, &mut w).map_err(|e| invalid(format!("{path}: {e}")))?;
                w.commit(Some(&expected))?;
            }
            seen.insert(expected);
        }
    }
    let index = index.ok_or_else(|| invalid("no index.json: not an OCI image layout".into()))?;
    let index: Value =
        serde_json::from_slice(&index).map_err(|e| invalid(format!("index.json: {e}")))?;
    let manifests = index["manifests"]
        .as_array()
        .ok_or_else(|| invalid("index.json lists no manifests".into()))?;

    let mut loaded: BTreeMap<Digest, Vec<Reference>> = BTreeMap::new();
    for desc in manifests {
        let digest = parse_digest(desc["digest"].as_str().unwrap_or_default(), archive)?;
        if !seen.contains(&digest) {
            return Err(invalid(format!(
                "manifest {digest} is listed in index.json but missing"
            )));
        }
        let manifest = store.blobs().read_verified(&digest)?;
        let parsed: Value = serde_json::from_slice(&manifest)
            .map_err(|e| invalid(format!("manifest {digest}: {e}")))?;
        let config_digest = parse_digest(
            parsed["config"]["digest"].as_str().unwrap_or_default(),
            archive,
        )?;
        let config = store.blobs().read_verified(&config_digest)?;
        let mut size = 0;
        let config_json: Value = serde_json::from_slice(&config)
            .map_err(|e| invalid(format!("config {config_digest}: {e}")))?;
        let diff_ids = config_json["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let layers = parsed["layers"].as_array().cloned().unwrap_or_default();
        if diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "manifest {digest} has {} layers but its config lists {} diff IDs",
                layers.len(),
                diff_ids.len()
            )));
        }
        for (l, diff_id) in layers.iter().zip(&diff_ids) {
            let ld = parse_digest(l["digest"].as_str().unwrap_or_default(), archive)?;
            let diff_id = parse_digest(diff_id.as_str().unwrap_or_default(), archive)?;
            let dir = store.unpacked_layer(&ld, &diff_id)?;
            size += layer::dir_size(&dir);
        }
        // containerd's name annotation, else a ref.name that is a whole
        // reference (skopeo writes one; a bare tag names nothing).
        let name = desc["annotations"][ANNOTATION_NAME]
            .as_str()
            .or_else(|| {
                desc["annotations"][ANNOTATION_REF]
                    .as_str()
                    .filter(|r| r.contains('/'))
            })
            .and_then(|n| store.parse_reference(n).ok());
        let id = store.commit(NewImage {
            manifest: &manifest,
            config: &config,
            size,
            tag: name.as_ref(),
        })?;
        let names = loaded.entry(id).or_default();
        names.extend(name);
    }
    Ok(loaded
        .into_iter()
        .map(|(id, names)| Loaded { id, names })
        .collect())
}

fn parse_digest(s: &str, name: &str) -> Result<Digest, ImageError> {
    Digest::parse(s).map_err(|e| ImageError::Invalid {
        name: name.to_string(),
        message: e.to_string(),
    })
}

fn header(len: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &str,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut h = header(bytes.len() as u64, 0o644, tar::EntryType::Regular);
    tar.append_data(&mut h, path, bytes)
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> std::io::Result<()> {
    let mut h = header(0, 0o755, tar::EntryType::Directory);
    tar.append_data(&mut h, path, std::io::empty())
}
