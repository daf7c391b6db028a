//! What a container is created with: the resolved command, environment,
//! working directory, volumes and limits. Stored as JSON in its record.

use serde::{Deserialize, Serialize};

use super::ContainerError;
use crate::net::EgressRule;
use crate::net::publish::PortSpec;

/// The container's configuration, fixed at create time.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The image as the user named it.
    pub image: String,
    /// Entrypoint followed by command: the guest's argv.
    pub argv: Vec<String>,
    /// `KEY=VALUE` strings: the image's Env with `-e` applied.
    pub env: Vec<String>,
    pub workdir: String,
    pub volumes: Vec<VolumeSpec>,
    pub memory: Option<u64>,
    /// How many files its guests may hold open at once (`--ulimit
    /// nofile`); `None` is the default.
    #[serde(default)]
    pub open_files: Option<u64>,
    /// The most its writable layer may hold, in bytes (`--storage-opt
    /// size=`); `None` is no limit.
    #[serde(default)]
    pub storage_size: Option<u64>,
    pub interactive: bool,
    pub tty: bool,
    pub auto_remove: bool,
    /// Close the guest's stdin when the first attached client detaches.
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The entrypoint part of `argv` (the rest is the command), for inspect.
    #[serde(default)]
    pub entrypoint_len: usize,
    /// `bridge`, `host`, `none` or a user-defined network.
    #[serde(default = "default_network")]
    pub network: String,
    /// `-p` mappings, as given (each parses as a [`PortSpec`]).
    #[serde(default)]
    pub ports: Vec<String>,
    /// `-P`: publish every exposed port on a free host port.
    #[serde(default)]
    pub publish_all: bool,
    /// The image's EXPOSEd TCP ports.
    #[serde(default)]
    pub exposed: Vec<u16>,
    /// The image's EXPOSEd UDP ports.
    #[serde(default)]
    pub exposed_udp: Vec<u16>,
    /// `--allow-net` rules (each parses as an [`EgressRule`]).
    #[serde(default)]
    pub allow_net: Vec<String>,
    /// `--port`: where a wasi:http component is served (default: its first
    /// EXPOSEd port, else 8080).
    #[serde(default)]
    pub http_port: Option<u16>,
    /// The container's labels (`io.kubernetes.*` for a pod's containers).
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// More names it answers to on a user-defined network (`--network-alias`,
    /// Compose's service name).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Seconds a stop waits before killing (`--stop-timeout`); kept for
    /// inspect, since a guest stops at once.
    #[serde(default)]
    pub stop_timeout: Option<i64>,
    /// The diff IDs (hex) of its image's layers, bottom first: its root is
    /// them under its own writable layer. Empty for a container made
    /// before that, which has a copy of its image instead.
    #[serde(default)]
    pub layers: Vec<String>,
    /// `--log-opt`s of the json-file log (`max-size`, `max-file`).
    #[serde(default)]
    pub log_opts: std::collections::BTreeMap<String, String>,
}

fn default_network() -> String {
    crate::net::BRIDGE.to_string()
}

/// When the daemon starts a container again after it ends (`--restart`).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// On a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
}

impl RestartPolicy {
    /// Parses Docker's `no`, `always`, `unless-stopped`, `on-failure[:N]`.
    pub fn parse(s: &str) -> Result<Self, ContainerError> {
        let bad = || ContainerError::BadRestartPolicy(s.to_string());
        Ok(match s.split_once(':') {
            Some(("on-failure", n)) => Self::OnFailure {
                max: n.parse().map_err(|_| bad())?,
            },
            Some(_) => return Err(bad()),
            None => match s {
                "" | "no" => Self::No,
                "always" => Self::Always,
                "unless-stopped" => Self::UnlessStopped,
                "on-failure" => Self::OnFailure { max: 0 },
                _ => return Err(bad()),
            },
        })
    }

    /// Docker's name for the policy.
    pub fn name(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::UnlessStopped => "unless-stopped",
            Self::OnFailure { .. } => "on-failure",
        }
    }

    pub fn max_retries(self) -> u32 {
        match self {
            Self::OnFailure { max } => max,
            _ => 0,
        }
    }

    /// Whether a container that just exited with `code`, after `restarts`
    /// restarts, is started again. `manual` is true when the user stopped it.
    pub fn restarts_after_exit(self, code: i32, restarts: u32, manual: bool) -> bool {
        if manual {
            return false;
        }
        match self {
            Self::No => false,
            Self::Always | Self::UnlessStopped => true,
            Self::OnFailure { max } => code != 0 && (max == 0 || restarts < max),
        }
    }

    /// Whether the daemon starts the container when it itself starts.
    /// `was_running` is true when the daemon went away under it.
    pub fn restarts_with_daemon(self, was_running: bool, manual: bool) -> bool {
        match self {
            Self::No => false,
            // As Docker: `always` comes back with the daemon even after a
            // manual stop; only `unless-stopped` remembers the stop.
            Self::Always => true,
            Self::UnlessStopped => !manual,
            Self::OnFailure { .. } => was_running,
        }
    }
}

/// The user's part of a container's configuration, before the image's
/// defaults are applied.
#[derive(Debug, Clone, Default)]
pub struct SpecRequest {
    pub image: String,
    /// `None` keeps the image's; `Some([])` or `Some([""])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Empty keeps the image's CMD (unless the entrypoint was replaced).
    pub cmd: Vec<String>,
    /// `KEY=VALUE` settings; a bare `KEY` unsets it.
    pub env: Vec<String>,
    /// Empty keeps the image's WORKDIR.
    pub workdir: String,
    pub volumes: Vec<VolumeSpec>,
    pub memory: Option<u64>,
    pub open_files: Option<u64>,
    pub storage_size: Option<u64>,
    pub interactive: bool,
    pub stdin_once: bool,
    pub tty: bool,
    pub auto_remove: bool,
    pub restart: RestartPolicy,
    /// Empty is the default network.
    pub network: String,
    pub ports: Vec<String>,
    pub publish_all: bool,
    pub allow_net: Vec<String>,
    pub http_port: Option<u16>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub aliases: Vec<String>,
    pub stop_timeout: Option<i64>,
    pub log_opts: std::collections::BTreeMap<String, String>,
}

impl ContainerSpec {
    /// Docker's rules for combining a request with the image's config:
    /// a given entrypoint replaces the image's and drops its CMD; a given
    /// command replaces CMD.
    pub fn resolve(
        req: SpecRequest,
        image: &oci_spec::image::Config,
    ) -> Result<Self, ContainerError> {
        let (entrypoint, cmd) = match req.entrypoint {
            Some(e) => {
                let e: Vec<String> = if e.iter().all(|s| s.is_empty()) {
                    Vec::new()
                } else {
                    e
                };
                (e, req.cmd)
            }
            None => {
                let cmd = if req.cmd.is_empty() {
                    image.cmd().clone().unwrap_or_default()
                } else {
                    req.cmd
                };
                (image.entrypoint().clone().unwrap_or_default(), cmd)
            }
        };
        if auto_remove_conflicts(req.auto_remove, req.restart) {
            return Err(ContainerError::BadRestartPolicy(format!(
                "{}: conflicting options: --restart and --rm",
                req.restart.name()
            )));
        }
        let workdir = if req.workdir.is_empty() {
            image
                .working_dir()
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into())
        } else if !req.workdir.starts_with('/') {
            return Err(ContainerError::BadWorkdir(req.workdir));
        } else {
            crate::image::rootfs::guest_path("/", &req.workdir)
        };
        let env = merge_env(&image.env().clone().unwrap_or_default(), &req.env)?;
        for p in &req.ports {
            PortSpec::parse(p)?;
        }
        for r in &req.allow_net {
            EgressRule::parse(r)?;
        }
        let exposed_of = |proto: &str| {
            let mut ports: Vec<u16> = image
                .exposed_ports()
                .iter()
                .flatten()
                .filter_map(|p| {
                    let (n, pr) = p.split_once('/').unwrap_or((p, "tcp"));
                    (pr == proto).then(|| n.parse::<u16>().ok()).flatten()
                })
                .collect();
            ports.sort_unstable();
            ports.dedup();
            ports
        };
        let (exposed, exposed_udp) = (exposed_of("tcp"), exposed_of("udp"));
        let network = if req.network.is_empty() || req.network == "default" {
            crate::net::BRIDGE.to_string()
        } else {
            req.network
        };
        Ok(Self {
            image: req.image,
            entrypoint_len: entrypoint.len(),
            argv: entrypoint.into_iter().chain(cmd).collect(),
            env,
            workdir,
            volumes: req.volumes,
            memory: req.memory,
            open_files: req.open_files,
            storage_size: req.storage_size,
            interactive: req.interactive,
            tty: req.tty,
            auto_remove: req.auto_remove,
            stdin_once: req.stdin_once,
            restart: req.restart,
            network,
            ports: req.ports,
            publish_all: req.publish_all,
            exposed,
            exposed_udp,
            allow_net: req.allow_net,
            http_port: req.http_port,
            labels: req.labels,
            aliases: req.aliases,
            stop_timeout: req.stop_timeout,
            layers: Vec::new(),
            log_opts: req.log_opts,
        })
    }

    pub fn entrypoint(&self) -> &[String] {
        &self.argv[..self.entrypoint_len.min(self.argv.len())]
    }

    pub fn cmd(&self) -> &[String] {
        &self.argv[self.entrypoint_len.min(self.argv.len())..]
    }
}

fn auto_remove_conflicts(auto_remove: bool, restart: RestartPolicy) -> bool {
    auto_remove && restart != RestartPolicy::No
}

/// A `-v HOST:GUEST[:ro]` bind of a host directory.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeSpec {
    pub host: std::path::PathBuf,
    pub guest: String,
    pub read_only: bool,
}

impl VolumeSpec {
    /// Parses `HOST:GUEST[:ro|rw]`. A relative host path is taken from `cwd`.
    pub fn parse(spec: &str, cwd: &std::path::Path) -> Result<Self, ContainerError> {
        let bad = |message: &str| ContainerError::BadVolume {
            spec: spec.to_string(),
            message: message.to_string(),
        };
        // A Windows host path has a drive colon of its own: `C:\data:/data`.
        let (host, rest) = match spec.as_bytes() {
            [d, b':', b'\\' | b'/', ..] if d.is_ascii_alphabetic() => {
                let i = spec[2..]
                    .find(':')
                    .map(|i| i + 2)
                    .ok_or_else(|| bad("expected HOST:GUEST"))?;
                (&spec[..i], &spec[i + 1..])
            }
            _ => spec
                .split_once(':')
                .ok_or_else(|| bad("expected HOST:GUEST[:ro]"))?,
        };
        let (guest, mode) = match rest.rsplit_once(':') {
            Some((g, m)) => (g, Some(m)),
            None => (rest, None),
        };
        let read_only = match mode {
            None | Some("rw") => false,
            Some("ro") => true,
            Some(other) => return Err(bad(&format!("unknown mode {other:?}; use ro or rw"))),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(bad("expected HOST:GUEST[:ro]"));
        }
        let host_path = std::path::Path::new(host);
        if !host_path.is_absolute() && !host.starts_with('.') {
            return Err(bad(
                "named volumes are not supported; give an absolute host path or one starting with .",
            ));
        }
        if !guest.starts_with('/') {
            return Err(bad("the container path must be absolute"));
        }
        let guest = crate::image::rootfs::guest_path("/", guest);
        if guest == "/" {
            return Err(bad("cannot mount over the container's root"));
        }
        if guest == "/proc" || guest.starts_with("/proc/") {
            return Err(bad(
                "/proc is wrun's process table and cannot be mounted over",
            ));
        }
        Ok(Self {
            host: cwd.join(host_path),
            guest,
            read_only,
        })
    }
}

/// Applies `-e` settings to an image's environment. `KEY=VALUE` sets;
/// a bare `KEY` unsets. (The client resolves a bare `-e KEY` from its own
/// environment first, as Docker's does: the daemon's is never leaked.)
pub fn merge_env(image_env: &[String], settings: &[String]) -> Result<Vec<String>, ContainerError> {
    let mut env: Vec<String> = image_env.to_vec();
    for s in settings {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (s.clone(), None),
        };
        if key.is_empty() || key.contains('\0') {
            return Err(ContainerError::BadEnv(s.clone()));
        }
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(key.as_str()));
        if let Some(v) = value {
            env.push(format!("{key}={v}"));
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn volumes_parse() {
        let v = VolumeSpec::parse("/data:/mnt/data:ro", Path::new("/cwd")).expect("parse");
        assert_eq!(
            (v.host.as_path(), v.guest.as_str(), v.read_only),
            (Path::new("/data"), "/mnt/data", true)
        );
        let v = VolumeSpec::parse("./d:/d", Path::new("/cwd")).expect("parse");
        assert_eq!(v.host, Path::new("/cwd/./d"));
        for bad in [
            "data:/d", "/d", "/d:rel", "/d:/x:rx", "/d:/", "/d:/proc", ":/x",
        ] {
            assert!(VolumeSpec::parse(bad, Path::new("/")).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_merges() {
        let env = merge_env(
            &["PATH=/bin".into(), "A=1".into()],
            &["A=2".into(), "B=3".into()],
        )
        .expect("merge");
        assert_eq!(env, ["PATH=/bin", "A=2", "B=3"]);
        assert!(merge_env(&[], &["=x".into()]).is_err());
    }

    #[test]
    fn restart_policies_parse_and_decide() {
        assert_eq!(RestartPolicy::parse("no").expect("no"), RestartPolicy::No);
        assert_eq!(
            RestartPolicy::parse("on-failure:3").expect("n"),
            RestartPolicy::OnFailure { max: 3 }
        );
        assert_eq!(
            RestartPolicy::parse("on-failure").expect("n"),
            RestartPolicy::OnFailure { max: 0 }
        );
        for bad in ["sometimes", "on-failure:x", "always:2"] {
            assert!(RestartPolicy::parse(bad).is_err(), "{bad}");
        }
        let p = RestartPolicy::OnFailure { max: 2 };
        assert!(p.restarts_after_exit(1, 1, false));
        assert!(!p.restarts_after_exit(1, 2, false));
        assert!(!p.restarts_after_exit(0, 0, false));
        assert!(!RestartPolicy::Always.restarts_after_exit(0, 0, true));
        assert!(RestartPolicy::UnlessStopped.restarts_with_daemon(false, false));
        assert!(!RestartPolicy::UnlessStopped.restarts_with_daemon(true, true));
    }

    #[test]
    fn specs_follow_dockers_entrypoint_rules() {
        let mut cfg = oci_spec::image::Config::default();
        cfg.set_entrypoint(Some(vec!["/app.wasm".into()]));
        cfg.set_cmd(Some(vec!["serve".into()]));
        let req = |entrypoint: Option<Vec<String>>, cmd: &[&str]| SpecRequest {
            image: "x".into(),
            entrypoint,
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        let s = ContainerSpec::resolve(req(None, &[]), &cfg).expect("spec");
        assert_eq!(
            (s.argv.as_slice(), s.entrypoint_len),
            (&["/app.wasm".to_string(), "serve".into()][..], 1)
        );
        let s = ContainerSpec::resolve(req(None, &["x"]), &cfg).expect("spec");
        assert_eq!(s.argv, ["/app.wasm", "x"]);
        let s = ContainerSpec::resolve(req(Some(vec!["sh".into()]), &[]), &cfg).expect("spec");
        assert_eq!(s.argv, ["sh"]);
        let s =
            ContainerSpec::resolve(req(Some(vec![String::new()]), &["ls"]), &cfg).expect("spec");
        assert_eq!(
            (s.argv.as_slice(), s.cmd()),
            (&["ls".to_string()][..], &["ls".to_string()][..])
        );
    }
}
