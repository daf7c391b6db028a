//! Registry credentials: wrun's own `auth.json` (mode 0600, docker's
//! `{"auths": {host: {"auth": base64(user:pass)}}}` shape), falling back to
//! the `auths` of docker's config so a user logged in with docker needs
//! nothing more; and `login`, which checks credentials before saving them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use oci_client::RegistryOperation;
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use serde::{Deserialize, Serialize};

use super::{RegistryError, client_for, describe};
use crate::state::StateRoot;

/// The file under the state root holding wrun's saved credentials.
pub const AUTH_FILE: &str = "auth.json";

/// Docker Hub's credentials are keyed by its historical index URL.
const DOCKER_HUB_KEYS: &[&str] = &[
    "https://index.docker.io/v1/",
    "index.docker.io",
    "docker.io",
];

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
}

fn auth_path(root: &StateRoot) -> PathBuf {
    root.dir().join(AUTH_FILE)
}

fn file_error(path: &Path, message: impl ToString) -> RegistryError {
    RegistryError::AuthFile {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn read(path: &Path) -> Result<AuthFile, RegistryError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| file_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(file_error(path, e)),
    }
}

/// Writes `file` to a temporary file (0600 from creation) and renames it
/// over `path`, so readers never see half a file nor a moment of 0644.
fn write(path: &Path, file: &AuthFile) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| file_error(path, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-")
        .tempfile_in(dir)
        .map_err(|e| file_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| file_error(path, e))?;
    }
    std::io::Write::write_all(&mut tmp, &bytes).map_err(|e| file_error(path, e))?;
    tmp.as_file().sync_all().map_err(|e| file_error(path, e))?;
    tmp.persist(path).map_err(|e| file_error(path, e.error))?;
    Ok(())
}

fn encode(user: &str, password: &str) -> String {
    STANDARD.encode(format!("{user}:{password}"))
}

fn decode(entry: &AuthEntry) -> Option<(String, String)> {
    let raw = STANDARD.decode(entry.auth.as_deref()?.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The keys a registry's credentials may be saved under.
fn keys(registry: &str) -> Vec<String> {
    if DOCKER_HUB_KEYS.contains(&registry) {
        DOCKER_HUB_KEYS.iter().map(|k| k.to_string()).collect()
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

fn lookup_in(file: &AuthFile, registry: &str) -> Option<(String, String)> {
    keys(registry)
        .iter()
        .find_map(|k| file.auths.get(k).and_then(decode))
}

/// Docker's config file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
fn docker_config() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    directories::BaseDirs::new().map(|b| b.home_dir().join(".docker").join("config.json"))
}

/// The credentials to use for `registry`: wrun's own, else docker's, else
/// anonymous. An unreadable docker config is ignored (it is not ours).
pub fn credentials(root: &StateRoot, registry: &str) -> Result<RegistryAuth, RegistryError> {
    if let Some((u, p)) = lookup_in(&read(&auth_path(root))?, registry) {
        return Ok(RegistryAuth::Basic(u, p));
    }
    let docker = docker_config().and_then(|p| read(&p).ok());
    Ok(match docker.and_then(|f| lookup_in(&f, registry)) {
        Some((u, p)) => RegistryAuth::Basic(u, p),
        None => RegistryAuth::Anonymous,
    })
}

/// The key wrun saves a registry's credentials under.
fn save_key(registry: &str) -> String {
    if DOCKER_HUB_KEYS.contains(&registry) {
        DOCKER_HUB_KEYS[0].to_string()
    } else {
        registry.to_string()
    }
}

/// Checks `user`/`password` against `registry`, then saves them.
pub fn login(
    root: &StateRoot,
    registry: &str,
    user: &str,
    password: &str,
) -> Result<(), RegistryError> {
    let rt = super::runtime("login", registry)?;
    rt.block_on(verify(root, registry, user, password))?;
    let path = auth_path(root);
    let mut file = read(&path)?;
    file.auths.insert(
        save_key(registry),
        AuthEntry {
            auth: Some(encode(user, password)),
        },
    );
    write(&path, &file)
}

/// Removes saved credentials; returns whether there were any.
pub fn logout(root: &StateRoot, registry: &str) -> Result<bool, RegistryError> {
    let path = auth_path(root);
    let mut file = read(&path)?;
    let mut removed = false;
    for k in keys(registry) {
        removed |= file.auths.remove(&k).is_some();
    }
    if removed {
        write(&path, &file)?;
    }
    Ok(removed)
}

/// An authenticated request: a token fetch where the registry hands out
/// bearer tokens (it checks the password), else a manifest read with basic
/// auth, where 401 means the password is wrong and "not found" means it
/// is right.
async fn verify(
    root: &StateRoot,
    registry: &str,
    user: &str,
    password: &str,
) -> Result<(), RegistryError> {
    let client = client_for(root, registry)?;
    let probe = oci_client::Reference::with_tag(
        registry.to_string(),
        "wrun-login-check".to_string(),
        "latest".to_string(),
    );
    let creds = RegistryAuth::Basic(user.to_string(), password.to_string());
    let wrong = || RegistryError::WrongCredentials {
        registry: registry.to_string(),
    };
    let remote = |e: &OciDistributionError| RegistryError::Remote {
        action: "login",
        name: registry.to_string(),
        message: describe(e, registry),
    };
    match client.auth(&probe, &creds, RegistryOperation::Pull).await {
        Ok(Some(_token)) => return Ok(()),
        Ok(None) => {}
        Err(OciDistributionError::AuthenticationFailure(_)) => return Err(wrong()),
        Err(e) => return Err(remote(&e)),
    }
    match client
        .pull_manifest_raw(&probe, &creds, &[super::pull::ACCEPT[0]])
        .await
    {
        Ok(_) => Ok(()),
        Err(OciDistributionError::UnauthorizedError { .. }) => Err(wrong()),
        Err(OciDistributionError::RegistryError { envelope, .. })
            if envelope
                .errors
                .iter()
                .any(|e| format!("{:?}", e.code).eq_ignore_ascii_case("unauthorized")) =>
        {
            Err(wrong())
        }
        Err(OciDistributionError::RegistryError { .. })
        | Err(OciDistributionError::ImageManifestNotFoundError(_)) => Ok(()),
        Err(OciDistributionError::ServerError { code: 404, .. }) => Ok(()),
        Err(e) => Err(remote(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_credentials_with_colons() {
        let entry = AuthEntry {
            auth: Some(encode("me", "pa:ss")),
        };
        assert_eq!(decode(&entry), Some(("me".into(), "pa:ss".into())));
    }

    #[test]
    fn docker_hub_has_its_historical_key() {
        let mut file = AuthFile::default();
        file.auths.insert(
            "https://index.docker.io/v1/".into(),
            AuthEntry {
                auth: Some(encode("u", "p")),
            },
        );
        assert_eq!(
            lookup_in(&file, "docker.io"),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(lookup_in(&file, "ghcr.io"), None);
    }
}
