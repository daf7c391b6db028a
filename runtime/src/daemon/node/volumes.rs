//! A pod's volumes on the host: emptyDir and the files of configMap and
//! secret volumes under `<root>/pods/<uid>/volumes/<name>`, hostPath as
//! given; and each container's volumeMounts as the sandbox's mounts.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::cluster::store::Store;
use crate::container::VolumeSpec;
use crate::kube::resources::by_plural;

/// The directory that holds a pod's own files.
pub fn pod_dir(root: &Path, uid: &str) -> PathBuf {
    root.join("pods").join(uid)
}

/// A relative path that stays inside its directory.
fn safe_relative(p: &str) -> bool {
    let path = Path::new(p);
    !p.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)], mode_hint: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (rel, data) in files {
        if !safe_relative(rel) {
            return Err(format!(
                "{mode_hint} item path {rel:?} must be relative and must not contain '..'"
            ));
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Files to write: a relative path and its bytes.
type Files = Vec<(String, Vec<u8>)>;

/// The files of a configMap or secret volume: every key, or the listed
/// items at their paths.
fn source_files(
    store: &Store,
    namespace: &str,
    plural: &str,
    source: &Value,
) -> Result<Option<Files>, String> {
    let res = by_plural("", "v1", plural).ok_or_else(|| format!("no {plural} resource"))?;
    let name_field = if plural == "secrets" {
        "secretName"
    } else {
        "name"
    };
    let name = source[name_field].as_str().unwrap_or_default();
    let optional = source["optional"].as_bool().unwrap_or(false);
    let kind = if plural == "secrets" {
        "secret"
    } else {
        "configmap"
    };
    let obj = match store.try_get(res, Some(namespace), name) {
        Ok(Some(o)) => o,
        Ok(None) if optional => return Ok(Some(Vec::new())),
        Ok(None) => return Err(format!("{kind} \"{name}\" not found")),
        Err(e) => return Err(e.to_string()),
    };
    let mut data: HashMap<String, Vec<u8>> = HashMap::new();
    for (k, v) in obj["data"].as_object().into_iter().flatten() {
        let text = v.as_str().unwrap_or_default();
        let bytes = if plural == "secrets" {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("secret \"{name}\" key {k}: {e}"))?
        } else {
            text.as_bytes().to_vec()
        };
        data.insert(k.clone(), bytes);
    }
    for (k, v) in obj["binaryData"].as_object().into_iter().flatten() {
        if let Ok(b) =
            base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap_or_default())
        {
            data.insert(k.clone(), b);
        }
    }
    let files = match source["items"].as_array() {
        Some(items) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                let key = item["key"].as_str().unwrap_or_default();
                let path = item["path"].as_str().unwrap_or(key);
                match data.get(key) {
                    Some(d) => out.push((path.to_string(), d.clone())),
                    None if optional => {}
                    None => return Err(format!("{kind} \"{name}\" has no key {key}")),
                }
            }
            out
        }
        _ => data.into_iter().collect(),
    };
    Ok(Some(files))
}

/// Makes every volume of the pod; returns each volume's host directory.
pub fn prepare(
    root: &Path,
    store: &Store,
    pod: &Value,
) -> Result<HashMap<String, PathBuf>, String> {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default");
    let base = pod_dir(root, uid).join("volumes");
    let mut out = HashMap::new();
    for v in pod["spec"]["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_string();
        if !safe_relative(&name) {
            return Err(format!("volume name {name:?} is not valid"));
        }
        let dir = base.join(&name);
        let host = if v["emptyDir"].is_object() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("volume {name}: {e}"))?;
            dir
        } else if v["configMap"].is_object() || v["secret"].is_object() {
            let (plural, source) = if v["configMap"].is_object() {
                ("configmaps", &v["configMap"])
            } else {
                ("secrets", &v["secret"])
            };
            let files = source_files(store, namespace, plural, source)
                .map_err(|e| format!("volume {name}: {e}"))?
                .unwrap_or_default();
            let _ = std::fs::remove_dir_all(&dir);
            write_files(&dir, &files, &format!("volume {name}"))?;
            dir
        } else if let Some(path) = v["hostPath"]["path"].as_str() {
            let p = PathBuf::from(path);
            let kind = v["hostPath"]["type"].as_str().unwrap_or("");
            if !p.is_absolute() {
                return Err(format!("volume {name}: hostPath {path:?} must be absolute"));
            }
            match kind {
                "DirectoryOrCreate" => {
                    std::fs::create_dir_all(&p).map_err(|e| format!("volume {name}: {e}"))?;
                }
                "" | "Directory" => {
                    if !p.is_dir() {
                        return Err(format!("volume {name}: hostPath {path} is not a directory"));
                    }
                }
                other => {
                    return Err(format!(
                        "volume {name}: hostPath type {other} is not supported: wrun mounts directories (Directory, DirectoryOrCreate)"
                    ));
                }
            }
            p
        } else {
            let kinds: Vec<&str> = v
                .as_object()
                .map(|o| {
                    o.keys()
                        .map(String::as_str)
                        .filter(|k| *k != "name")
                        .collect()
                })
                .unwrap_or_default();
            return Err(format!(
                "volume {name}: {} volumes are not supported: wrun serves emptyDir, hostPath, configMap and secret",
                kinds.join(",")
            ));
        };
        out.insert(name, host);
    }
    Ok(out)
}

/// A container's volumeMounts as sandbox mounts.
pub fn mounts(
    container: &Value,
    volumes: &HashMap<String, PathBuf>,
) -> Result<Vec<VolumeSpec>, String> {
    let mut out = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let name = m["name"].as_str().unwrap_or_default();
        let Some(host) = volumes.get(name) else {
            return Err(format!("volumeMount {name}: no such volume"));
        };
        let mut host = host.clone();
        if let Some(sub) = m["subPath"].as_str().filter(|s| !s.is_empty()) {
            if !safe_relative(sub) {
                return Err(format!(
                    "volumeMount {name}: subPath {sub:?} must be relative and must not contain '..'"
                ));
            }
            host = host.join(sub);
            std::fs::create_dir_all(&host).map_err(|e| format!("volumeMount {name}: {e}"))?;
        }
        let guest = m["mountPath"].as_str().unwrap_or_default();
        if !guest.starts_with('/') {
            return Err(format!(
                "volumeMount {name}: mountPath {guest:?} must be absolute"
            ));
        }
        out.push(VolumeSpec {
            host,
            guest: guest.to_string(),
            read_only: m["readOnly"].as_bool().unwrap_or(false),
        });
    }
    Ok(out)
}
