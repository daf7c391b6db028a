//! Registries: pulling images into the store, pushing them out, and the
//! credentials both use. The wire protocol is `oci-client`'s; what is wrun's
//! own is the choice of platform, the digest checks on the way into the
//! store, and errors that name the image and the registry.

pub mod artifact;
pub mod auth;
pub mod pull;
pub mod push;

use std::path::PathBuf;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, RegistryOperation};

use crate::image::blobs::BlobError;
use crate::image::{ImageError, Reference};
use crate::state::StateRoot;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error, or could not be reached.
    #[error("{action} {name}: {message}")]
    Remote {
        action: &'static str,
        name: String,
        message: String,
    },
    #[error("login {registry}: unauthorized: wrong username or password")]
    WrongCredentials { registry: String },
    #[error("pull {name}: no wasm platform in the index (found {found})")]
    NoWasmPlatform { name: String, found: String },
    #[error("pull {name}: the image is for {platform}, not wasm; wrun runs only wasm images")]
    NotWasm { name: String, platform: String },
    #[error("pull {name}: unsupported manifest media type {media_type:?}")]
    UnsupportedManifest { name: String, media_type: String },
    #[error("{action} {name}: invalid {what}: {message}")]
    Invalid {
        action: &'static str,
        name: String,
        what: &'static str,
        message: String,
    },
    #[error("{action} {name}: {source}")]
    Blob {
        action: &'static str,
        name: String,
        #[source]
        source: BlobError,
    },
    #[error("{action} {name}: {source}")]
    Image {
        action: &'static str,
        name: String,
        /// Boxed: image errors are large and this one is rare.
        #[source]
        source: Box<ImageError>,
    },
    #[error("credentials file {path}: {message}")]
    AuthFile { path: String, message: String },
    #[error("{action} {name}: {message}")]
    Runtime {
        action: &'static str,
        name: String,
        message: String,
    },
}

/// Hosts reached over plain HTTP without being listed, as in Docker:
/// loopback only, so nothing leaves the machine unencrypted by default.
pub fn is_insecure(registry: &str) -> bool {
    let host = host_of(registry);
    if host == "localhost" || host == "::1" {
        return true;
    }
    if host
        .parse::<std::net::Ipv4Addr>()
        .is_ok_and(|ip| ip.is_loopback())
    {
        return true;
    }
    std::env::var("WRUN_INSECURE_REGISTRIES")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .any(|h| !h.is_empty() && (h == registry || h == host))
        })
        .unwrap_or(false)
}

/// The host of `host[:port]` or `[v6][:port]`, without brackets.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// The directory whose `<host:port>/*.crt` files are extra CAs that a
/// registry's certificate may chain to, as Docker's `certs.d`.
pub fn certs_dir(root: &StateRoot) -> PathBuf {
    root.dir().join("certs.d")
}

/// The CA certificates trusted for `registry` (PEM files named `*.crt`
/// under `certs.d/<registry>/`), in a stable order. A missing directory
/// means none; an unreadable one is an error that names it.
fn registry_cas(root: &StateRoot, registry: &str) -> Result<Vec<Certificate>, RegistryError> {
    // A registry name never climbs out of certs.d: it is host[:port].
    if registry.is_empty() || registry.contains(['/', '\\']) || registry.starts_with('.') {
        return Ok(Vec::new());
    }
    let dir = certs_dir(root).join(registry);
    let unreadable = |e: std::io::Error| RegistryError::Runtime {
        action: "trust",
        name: registry.to_string(),
        message: format!("cannot read {}: {e}", dir.display()),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(unreadable(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|x| x == "crt") {
            files.push(path);
        }
    }
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let data = std::fs::read(&f).map_err(unreadable)?;
        if !String::from_utf8_lossy(&data).contains("-----BEGIN CERTIFICATE-----") {
            return Err(RegistryError::Runtime {
                action: "trust",
                name: registry.to_string(),
                message: format!("{} is not a PEM certificate", f.display()),
            });
        }
        out.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data,
        });
    }
    Ok(out)
}

/// A client for one registry. Plain HTTP when that registry is insecure
/// and has no CA of its own under `certs.d`: a CA given for a host says it
/// speaks TLS, loopback or not. Those CAs are trusted beside the system's.
pub fn client_for(root: &StateRoot, registry: &str) -> Result<Client, RegistryError> {
    // reqwest is built without a default rustls provider (aws-lc does not
    // cross-compile for Windows): install ring once. A second install
    // fails harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cas = registry_cas(root, registry)?;
    let protocol = if cas.is_empty() && is_insecure(registry) {
        ClientProtocol::HttpsExcept(vec![registry.to_string()])
    } else {
        ClientProtocol::Https
    };
    Ok(Client::new(ClientConfig {
        protocol,
        platform_resolver: None,
        connect_timeout: Some(std::time::Duration::from_secs(30)),
        extra_root_certificates: cas,
        ..ClientConfig::default()
    }))
}

/// The `oci-client` form of a reference (tag defaults to `latest`).
pub fn oci_reference(r: &Reference) -> oci_client::Reference {
    match r.digest() {
        Some(d) => oci_client::Reference::with_digest(
            r.registry().to_string(),
            r.repository().to_string(),
            d.to_string(),
        ),
        None => oci_client::Reference::with_tag(
            r.registry().to_string(),
            r.repository().to_string(),
            r.tag().unwrap_or("latest").to_string(),
        ),
    }
}

/// Authenticates `client` for `op` on `image` with the saved credentials
/// (anonymous when there are none), fetching a bearer token if the
/// registry uses them.
pub(crate) async fn authenticate(
    client: &Client,
    image: &oci_client::Reference,
    credentials: &RegistryAuth,
    op: RegistryOperation,
    action: &'static str,
    name: &str,
) -> Result<(), RegistryError> {
    client
        .auth(image, credentials, op)
        .await
        .map(|_| ())
        .map_err(|e| remote(action, name, image.registry(), &e))
}

/// Turns an `oci-client` error into wrun's words.
pub(crate) fn remote(
    action: &'static str,
    name: &str,
    registry: &str,
    e: &OciDistributionError,
) -> RegistryError {
    RegistryError::Remote {
        action,
        name: name.to_string(),
        message: describe(e, registry),
    }
}

pub(crate) fn describe(e: &OciDistributionError, registry: &str) -> String {
    let login_hint =
        format!("unauthorized: authentication required (log in with `wrun login {registry}`)");
    match e {
        OciDistributionError::UnauthorizedError { .. } => login_hint,
        OciDistributionError::AuthenticationFailure(_) => {
            "unauthorized: wrong username or password".into()
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let msgs: Vec<String> = envelope
                .errors
                .iter()
                .map(|err| {
                    if err.message.is_empty() {
                        format!("{:?}", err.code).to_lowercase()
                    } else {
                        err.message.to_lowercase()
                    }
                })
                .collect();
            if msgs.iter().any(|m| m.contains("unauthorized")) {
                return login_hint;
            }
            if msgs.is_empty() {
                "registry error".into()
            } else {
                msgs.join("; ")
            }
        }
        OciDistributionError::ServerError { code, message, .. } => {
            let message = message.trim();
            let out = if message.is_empty() {
                format!("registry answered HTTP {code}")
            } else {
                format!("registry answered HTTP {code}: {message}")
            };
            out + &https_hint(*code, registry)
        }
        OciDistributionError::RequestError(err)
            if err.status().is_some_and(|s| s.as_u16() == 401) =>
        {
            login_hint
        }
        OciDistributionError::RequestError(err) if let Some(status) = err.status() => {
            format!("registry answered HTTP {status}") + &https_hint(status.as_u16(), registry)
        }
        OciDistributionError::RequestError(err) => {
            // A body that broke off came from a registry that was reached.
            let mut out = if err.is_body() || err.is_decode() {
                format!("the answer from registry {registry} broke off")
            } else {
                format!("cannot reach registry {registry}")
            };
            if let Some(last) = innermost_cause(err).filter(|m| !m.is_empty()) {
                out.push_str(": ");
                out.push_str(&last);
            }
            out
        }
        other => other.to_string(),
    }
}

/// The message of an error's innermost cause (an I/O error under an HTTP
/// one, say), if it has a cause at all.
pub(crate) fn innermost_cause(e: &dyn std::error::Error) -> Option<String> {
    let mut source = e.source();
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last
}

/// What to add to a 400 from a registry wrun spoke plain HTTP to: a TLS
/// server answers plain HTTP with 400, so say how to trust its CA.
fn https_hint(code: u16, registry: &str) -> String {
    if code != 400 || !is_insecure(registry) {
        return String::new();
    }
    format!(
        " (wrun spoke plain HTTP to it, as to every loopback registry; if it serves HTTPS, \
         put its CA certificate in certs.d/{registry}/ca.crt under wrun's state root)"
    )
}

/// Builds the runtime the registry commands block on.
pub(crate) fn runtime(
    action: &'static str,
    name: &str,
) -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Runtime {
            action,
            name: name.to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_insecure_by_default() {
        assert!(is_insecure("127.0.0.1:5000"));
        assert!(is_insecure("127.3.2.1"));
        assert!(is_insecure("localhost:5000"));
        assert!(is_insecure("[::1]:5000"));
        assert!(!is_insecure("ghcr.io"));
        assert!(!is_insecure("10.0.0.1:5000"));
    }
}
