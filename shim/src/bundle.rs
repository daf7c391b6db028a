//! The OCI bundle containerd hands the shim: `config.json` (the program,
//! its environment, mounts, annotations and memory limit) and the rootfs,
//! which the shim mounts from the mounts in the create request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use containerd_shim::protos::types::mount::Mount as RootfsMount;
use serde::Deserialize;
use wrun::sandbox::Mount;

use crate::files::FileMount;

/// CRI's annotation naming the pod a container belongs to.
pub const SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// CRI's annotation telling a pod's sandbox container from the others.
const CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";

/// What the shim takes from a bundle's `config.json`.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub process: ProcessConfig,
    /// Host directories bound into the container (volumes).
    pub mounts: Vec<Mount>,
    /// Bind mounts of single files, mounted onto the rootfs.
    pub files: Vec<FileMount>,
    pub annotations: BTreeMap<String, String>,
    /// `linux.resources.memory.limit`, in bytes.
    pub memory_limit: Option<u64>,
    /// `root.path`: relative to the bundle (containerd's `rootfs`, where
    /// the shim mounts the snapshot), or absolute (`ctr run --rootfs`).
    root: PathBuf,
}

/// The program to run: from the spec's `process`, or an exec's.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub terminal: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    process: Option<ProcessConfig>,
    root: Option<SpecRoot>,
    mounts: Vec<SpecMount>,
    annotations: BTreeMap<String, String>,
    linux: Option<Linux>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpecRoot {
    path: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpecMount {
    destination: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    source: Option<String>,
    options: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Linux {
    resources: Option<Resources>,
    namespaces: Vec<Namespace>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Namespace {
    #[serde(rename = "type")]
    kind: String,
    path: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Resources {
    memory: Option<Memory>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Memory {
    limit: Option<i64>,
}

impl Bundle {
    /// Reads `dir/config.json`. Errors name the bundle and what is wrong.
    pub fn read(dir: &Path) -> Result<Self, String> {
        let path = dir.join("config.json");
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let spec: Spec = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not an OCI runtime spec: {e}", path.display()))?;
        let mounts = spec.mounts.iter().filter_map(volume).collect::<Vec<_>>();
        let files = spec.mounts.iter().filter_map(file).collect::<Vec<_>>();
        let root = spec
            .root
            .map(|r| r.path)
            .filter(|p| !p.is_empty())
            .map_or_else(|| dir.join("rootfs"), |p| dir.join(p));
        Ok(Self {
            root,
            dir: dir.to_path_buf(),
            process: spec.process.unwrap_or_default(),
            mounts,
            files,
            annotations: spec.annotations,
            memory_limit: spec
                .linux
                .and_then(|l| l.resources)
                .and_then(|r| r.memory)
                .and_then(|m| m.limit)
                .and_then(|l| u64::try_from(l).ok())
                .filter(|l| *l > 0),
        })
    }

    /// The pod's sandbox container, which runs nothing: CRI only needs it
    /// to stay up until the pod is stopped.
    pub fn is_pod_sandbox(&self) -> bool {
        self.annotations.get(CONTAINER_TYPE).map(String::as_str) == Some("sandbox")
    }

    /// The container's root directory (`Path::join` keeps an absolute
    /// `root.path` as it is).
    pub fn rootfs(&self) -> PathBuf {
        self.root.clone()
    }
}

/// The network namespace a bundle's spec names by path (the pod's, made
/// by CNI; or `ctr run --with-ns network:PATH`), if any. Without a path
/// the guests use the shim's own namespace, the node's.
pub fn network_namespace(dir: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(dir.join("config.json")).ok()?;
    let spec: Spec = serde_json::from_slice(&bytes).ok()?;
    spec.linux?
        .namespaces
        .into_iter()
        .find(|n| n.kind == "network")
        .and_then(|n| n.path)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// The pod a bundle's container belongs to, for grouping (its own ID when
/// it is not in a pod). Read in the shim's `start` action, in the bundle.
pub fn grouping(dir: &Path, id: &str) -> String {
    Bundle::read(dir)
        .ok()
        .and_then(|b| b.annotations.get(SANDBOX_ID).cloned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

/// A bind mount of a host directory becomes a preopen. The kernel's own
/// file systems (`proc`, `sysfs`, `devpts`, `tmpfs`, ...) mean nothing to
/// a wasm guest (`/proc` is served from memory): they are left out. A
/// bind of a single file is [`file`]'s.
fn volume(m: &SpecMount) -> Option<Mount> {
    let source = bind_source(m)?;
    if !source.is_dir() {
        return None;
    }
    Some(Mount {
        host: source.to_path_buf(),
        guest: m.destination.clone(),
        read_only: m.options.iter().any(|o| o == "ro"),
    })
}

/// A bind mount of a single host file, which no preopen can express: it
/// is mounted onto the rootfs (`files.rs`).
fn file(m: &SpecMount) -> Option<FileMount> {
    let source = bind_source(m)?;
    if source.is_dir() {
        return None;
    }
    Some(FileMount {
        host: source.to_path_buf(),
        guest: m.destination.clone(),
        read_only: m.options.iter().any(|o| o == "ro"),
    })
}

/// The host path of a bind mount to an absolute destination.
fn bind_source(m: &SpecMount) -> Option<&Path> {
    let is_bind =
        m.kind.as_deref() == Some("bind") || m.options.iter().any(|o| o == "bind" || o == "rbind");
    let source = m.source.as_deref()?;
    (is_bind && m.destination.starts_with('/')).then(|| Path::new(source))
}

/// Mounts what containerd prepared (the snapshotter's bind or overlay
/// mounts) onto the bundle's rootfs.
pub fn mount_rootfs(mounts: &[RootfsMount], rootfs: &Path) -> Result<(), String> {
    for m in mounts {
        containerd_shim::mount::mount_rootfs(
            Some(m.type_.as_str()).filter(|s| !s.is_empty()),
            Some(m.source.as_str()).filter(|s| !s.is_empty()),
            &m.options,
            rootfs,
        )
        .map_err(|e| format!("mount {} on {}: {e}", m.source, rootfs.display()))?;
    }
    Ok(())
}

/// Unmounts the rootfs, and whatever is mounted below it.
pub fn unmount_rootfs(rootfs: &Path) {
    if let Some(p) = rootfs.to_str()
        && let Err(e) = containerd_shim::mount::umount_recursive(Some(p), 0)
    {
        log::warn!("unmount {p}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_shim_needs() {
        let dir = tempfile_dir();
        let vol = dir.join("vol");
        std::fs::create_dir(&vol).expect("mkdir");
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/app.wasm", "-v"], "env": ["A=1"], "cwd": "/srv", "terminal": false},
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/data", "type": "bind", "source": vol, "options": ["rbind", "ro"]},
                {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts", "options": ["rbind"]}
            ],
            "annotations": {"io.kubernetes.cri.container-type": "sandbox", "io.kubernetes.cri.sandbox-id": "pod1"},
            "linux": {"resources": {"memory": {"limit": 67108864}},
                      "namespaces": [{"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"}]}
        });
        std::fs::write(dir.join("config.json"), spec.to_string()).expect("write");
        let b = Bundle::read(&dir).expect("reads");
        assert_eq!(b.process.args, ["/app.wasm", "-v"]);
        assert_eq!(b.process.cwd, "/srv");
        assert_eq!(b.memory_limit, Some(64 << 20));
        assert!(b.is_pod_sandbox());
        assert_eq!(b.mounts.len(), 1, "{:?}", b.mounts);
        assert_eq!(b.mounts[0].guest, "/data");
        assert!(b.mounts[0].read_only);
        assert_eq!(grouping(&dir, "c1"), "pod1");
        assert_eq!(
            network_namespace(&dir),
            Some(PathBuf::from("/var/run/netns/cni-1"))
        );
        std::fs::write(dir.join("config.json"), "{not json").expect("write");
        let e = Bundle::read(&dir).expect_err("refused");
        assert!(e.contains("config.json: not an OCI runtime spec"), "{e}");
        assert_eq!(grouping(&dir, "c1"), "c1");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("wrun-shim-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    }
}
