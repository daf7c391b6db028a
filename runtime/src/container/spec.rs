//! What a container is created with: the resolved command, environment,
//! working directory, volumes and limits. Stored as JSON in its record.

use serde::{Deserialize, Serialize};

use super::ContainerError;

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
    pub interactive: bool,
    pub tty: bool,
    pub auto_remove: bool,
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
/// a bare `KEY` copies the host's value, or is dropped if the host has none.
pub fn merge_env(image_env: &[String], settings: &[String]) -> Result<Vec<String>, ContainerError> {
    let mut env: Vec<String> = image_env.to_vec();
    for s in settings {
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (s.clone(), std::env::var(s).ok()),
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
}
