//! The Kubernetes API's credentials: a private CA, the API server's
//! certificate, the admin client certificate and a bearer token.
//!
//! They are made once per state root and kept under `<root>/cluster/pki/`:
//!
//! ```text
//! ca.crt ca.key                 the CA (ECDSA P-256, CN wrun-ca, ten years)
//! apiserver.crt apiserver.key   serverAuth, for 127.0.0.1, ::1, localhost and kubernetes.*
//! admin.crt admin.key           clientAuth, CN wrun-admin, O system:masters
//! token                         32 random bytes, hex
//! .lock                         held while the files are checked or written
//! ```
//!
//! Private keys and the token are written 0600 (on Unix) through a temporary
//! file in the same directory that is synced and then renamed into place;
//! the directory is 0700. Loading checks every file: a leaf certificate that
//! is corrupt, does not match its key, does not chain to the stored CA or is
//! about to expire is reissued (with a warning); a CA that is corrupt or
//! about to expire is replaced together with both leaves. The token is kept
//! unless it is unreadable. Nothing here panics on the files' contents.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SerialNumber,
};
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};

use crate::state::StateRoot;

/// The CA's file names.
pub const CA_CERT_FILE: &str = "ca.crt";
pub const CA_KEY_FILE: &str = "ca.key";
/// The API server's certificate and key.
pub const SERVER_CERT_FILE: &str = "apiserver.crt";
pub const SERVER_KEY_FILE: &str = "apiserver.key";
/// The kubeconfig user's client certificate and key.
pub const CLIENT_CERT_FILE: &str = "admin.crt";
pub const CLIENT_KEY_FILE: &str = "admin.key";
/// The bearer token.
pub const TOKEN_FILE: &str = "token";
const LOCK_FILE: &str = ".lock";

/// The CA's common name.
pub const CA_COMMON_NAME: &str = "wrun-ca";
/// The API server certificate's common name.
pub const SERVER_COMMON_NAME: &str = "wrun-apiserver";
/// The admin user: its common name is the Kubernetes user name, its
/// organisation the group (`system:masters` is cluster-admin).
pub const CLIENT_COMMON_NAME: &str = "wrun-admin";
pub const CLIENT_ORGANIZATION: &str = "system:masters";

/// The names the API server certificate is valid for: the loopback
/// addresses (IP SANs) and the names kubeconfigs and in-cluster clients use.
pub const SERVER_NAMES: &[&str] = &[
    "127.0.0.1",
    "::1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// The one ALPN protocol the API serves.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How long certificates are valid: ten years.
const VALIDITY: u64 = 3652 * 24 * 60 * 60;
/// Certificates that expire sooner than this are renewed on load.
const RENEW_MARGIN: u64 = 30 * 24 * 60 * 60;
/// Certificates are valid from a little before their creation, for clocks
/// that disagree slightly.
const BACKDATE: u64 = 60 * 60;
/// A clock beyond this (about the year 8300) is treated as this, so that
/// date arithmetic can never overflow.
const MAX_NOW: u64 = 200_000_000_000;
/// Bytes of randomness in the token.
const TOKEN_BYTES: usize = 32;

/// Errors making, loading or using the credentials.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cluster credentials {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cluster credentials: generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cluster credentials: {0}")]
    Tls(#[from] rustls::Error),
    #[error("cluster credentials: client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cluster credentials: random number generator: {0}")]
    Random(getrandom::Error),
    #[error("cluster credentials: {0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PkiError + '_ {
    move |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The directory of a state root's credentials, `<root>/cluster/pki`.
pub fn pki_dir(root: &StateRoot) -> PathBuf {
    root.dir().join("cluster").join("pki")
}

/// The API's credentials, as PEM text (and the token as hex).
#[derive(Clone)]
pub struct Pki {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    /// The admin user's client certificate and key.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// The bearer token, 64 hex digits.
    pub token: String,
    client_cert_der: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("ca_pem", &self.ca_pem)
            .field("server_cert_pem", &self.server_cert_pem)
            .field("server_key_pem", &"<redacted>")
            .field("client_cert_pem", &self.client_cert_pem)
            .field("client_key_pem", &"<redacted>")
            .field("token", &"<redacted>")
            .finish()
    }
}

/// The ring crypto provider every TLS configuration here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl Pki {
    /// Loads the credentials in `dir`, creating whatever is missing and
    /// replacing whatever is corrupt, inconsistent or about to expire.
    pub fn load_or_create(dir: &Path) -> Result<Pki, PkiError> {
        ensure_dir(dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let now = now_secs();
        let result = match load_or_create_locked(dir, now, false)? {
            Some(pki) => Ok(pki),
            None => {
                tracing::warn!(
                    dir = %dir.display(),
                    "the stored cluster CA cannot issue certificates that verify against it; \
                     replacing the CA (kubeconfigs must be merged again)"
                );
                load_or_create_locked(dir, now, true)?.ok_or_else(|| {
                    PkiError::Invalid("newly created certificates do not verify".to_string())
                })
            }
        };
        // Dropping the file releases the lock; say so explicitly.
        drop(lock);
        result
    }

    /// A TLS server configuration for the API: the server certificate,
    /// HTTP/1.1 as the only ALPN protocol, and client certificates optional
    /// but, when presented, verified against the CA.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = provider();
        let ca = parse_cert(&self.ca_pem).map_err(|e| PkiError::Invalid(format!("CA: {e}")))?;
        let mut roots = RootCertStore::empty();
        roots.add(ca)?;
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()?;
        let cert = parse_cert(&self.server_cert_pem)
            .map_err(|e| PkiError::Invalid(format!("server certificate: {e}")))?;
        let key = parse_key(&self.server_key_pem)
            .map_err(|e| PkiError::Invalid(format!("server key: {e}")))?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert], key)?;
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(Arc::new(config))
    }

    /// Whether `der` is the admin client certificate. rustls has already
    /// verified any certificate a client presents against the CA; this
    /// tells the admin's apart from any other the CA might sign.
    pub fn is_admin_cert(&self, der: &[u8]) -> bool {
        !self.client_cert_der.is_empty() && der == self.client_cert_der.as_slice()
    }

    /// Whether a connection's peer certificates (rustls's
    /// `peer_certificates()`, after the handshake) are the admin's.
    pub fn peer_is_admin(&self, peer: Option<&[CertificateDer<'_>]>) -> bool {
        peer.and_then(|certs| certs.first())
            .is_some_and(|cert| self.is_admin_cert(cert.as_ref()))
    }

    /// Whether an `Authorization` header value is `Bearer <token>`. The
    /// scheme is case-insensitive, as Kubernetes has it; the token is
    /// compared in constant time.
    pub fn check_token(&self, header: Option<&str>) -> bool {
        let Some(header) = header else {
            return false;
        };
        let Some((scheme, presented)) = header.trim().split_once(' ') else {
            return false;
        };
        if !scheme.eq_ignore_ascii_case("bearer") || self.token.is_empty() {
            return false;
        }
        constant_time_eq(presented.trim().as_bytes(), self.token.as_bytes())
    }
}

/// Compares two secrets without a timing difference that depends on where
/// they differ: both are hashed (which also hides their lengths) and the
/// digests compared with a fold that never stops early.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let a = Sha256::digest(a);
    let b = Sha256::digest(b);
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// The CA as loaded or created.
struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key: KeyPair,
    not_after: u64,
}

/// What loading one item found: a problem worth a warning is `Bad`.
enum Loaded<T> {
    Ok(T),
    Missing,
    Bad(String),
}

/// One pass of [`Pki::load_or_create`], with the lock held. Returns `None`
/// when a certificate just issued by the stored CA does not verify against
/// it, that is when the CA's key and certificate do not belong together.
fn load_or_create_locked(dir: &Path, now: u64, new_ca: bool) -> Result<Option<Pki>, PkiError> {
    let provider = provider();
    let loaded = if new_ca {
        Loaded::Missing
    } else {
        load_ca(dir, now, &provider)?
    };
    let (ca, fresh) = match loaded {
        Loaded::Ok(ca) => (ca, false),
        Loaded::Missing => (create_ca(dir, now)?, true),
        Loaded::Bad(reason) => {
            tracing::warn!(
                dir = %dir.display(),
                "cluster CA: {reason}; creating a new CA and certificates \
                 (kubeconfigs must be merged again)"
            );
            (create_ca(dir, now)?, true)
        }
    };
    let issuer = Issuer::new(ca_params(now)?, &ca.key);

    let mut leaves = Vec::with_capacity(2);
    for kind in [Leaf::Server, Leaf::Client] {
        let existing = if fresh {
            Loaded::Missing
        } else {
            load_leaf(dir, kind, &ca, now, &provider)?
        };
        let pair = match existing {
            Loaded::Ok(pair) => pair,
            Loaded::Missing => match issue_leaf(dir, kind, &ca, &issuer, now, &provider)? {
                Some(pair) => pair,
                None => return Ok(None),
            },
            Loaded::Bad(reason) => {
                tracing::warn!(
                    dir = %dir.display(),
                    "cluster credentials: {}: {reason}; issuing a new one",
                    kind.cert_file()
                );
                match issue_leaf(dir, kind, &ca, &issuer, now, &provider)? {
                    Some(pair) => pair,
                    None => return Ok(None),
                }
            }
        };
        leaves.push(pair);
    }
    let mut leaves = leaves.into_iter();
    let (Some(server), Some(client)) = (leaves.next(), leaves.next()) else {
        return Err(PkiError::Invalid("missing leaf certificate".to_string()));
    };
    let token = load_or_create_token(dir)?;
    Ok(Some(Pki {
        ca_pem: ca.cert_pem,
        server_cert_pem: server.cert_pem,
        server_key_pem: server.key_pem,
        client_cert_pem: client.cert_pem,
        client_key_pem: client.key_pem,
        token,
        client_cert_der: client.cert_der,
    }))
}

/// The CA's parameters. Also used, with the stored key, as the issuer of
/// leaf certificates: the issuer name and key identifier come from here, so
/// they must describe the stored CA certificate exactly.
fn ca_params(now: u64) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_COMMON_NAME);
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(random_serial()?);
    set_validity(&mut params, now, now.saturating_add(VALIDITY));
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, now: u64, not_after: u64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    let now = now.min(MAX_NOW);
    params.not_before = epoch + Duration::from_secs(now.saturating_sub(BACKDATE));
    params.not_after = epoch + Duration::from_secs(not_after.min(MAX_NOW + VALIDITY));
}

fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(PkiError::Random)?;
    // Positive, and with its top byte non-zero so the encoding is minimal.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&bytes))
}

fn create_ca(dir: &Path, now: u64) -> Result<Ca, PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = ca_params(now)?.self_signed(&key)?;
    let cert_pem = cert.pem();
    // The key first: a crash between the two writes leaves a certificate
    // that does not match its key, which the next load replaces.
    write_atomic(&dir.join(CA_KEY_FILE), key.serialize_pem().as_bytes(), true)?;
    write_atomic(&dir.join(CA_CERT_FILE), cert_pem.as_bytes(), false)?;
    let cert_der = cert.der().clone();
    let not_after = cert_not_after(&cert_der).unwrap_or(now.saturating_add(VALIDITY));
    Ok(Ca {
        cert_pem,
        cert_der,
        key,
        not_after,
    })
}

fn load_ca(dir: &Path, now: u64, provider: &CryptoProvider) -> Result<Loaded<Ca>, PkiError> {
    let cert_path = dir.join(CA_CERT_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    let (cert_pem, key_pem) = match (read_text(&cert_path)?, read_text(&key_path)?) {
        (Loaded::Missing, Loaded::Missing) => return Ok(Loaded::Missing),
        (Loaded::Ok(cert), Loaded::Ok(key)) => (cert, key),
        (Loaded::Bad(reason), _) => return Ok(Loaded::Bad(format!("{CA_CERT_FILE}: {reason}"))),
        (_, Loaded::Bad(reason)) => return Ok(Loaded::Bad(format!("{CA_KEY_FILE}: {reason}"))),
        (Loaded::Missing, _) => return Ok(Loaded::Bad(format!("{CA_CERT_FILE} is missing"))),
        (_, Loaded::Missing) => return Ok(Loaded::Bad(format!("{CA_KEY_FILE} is missing"))),
    };
    tighten(&key_path);
    let cert_der = match parse_cert(&cert_pem) {
        Ok(der) => der,
        Err(e) => return Ok(Loaded::Bad(format!("{CA_CERT_FILE}: {e}"))),
    };
    let key = match KeyPair::from_pem(&key_pem) {
        Ok(key) => key,
        Err(e) => return Ok(Loaded::Bad(format!("{CA_KEY_FILE}: {e}"))),
    };
    if let Err(e) = keys_match(&cert_der, &key_pem, provider) {
        return Ok(Loaded::Bad(e));
    }
    let Some(not_after) = cert_not_after(&cert_der) else {
        return Ok(Loaded::Bad(format!(
            "{CA_CERT_FILE}: cannot read its expiry date"
        )));
    };
    if not_after < now.saturating_add(RENEW_MARGIN) {
        return Ok(Loaded::Bad(format!(
            "{CA_CERT_FILE} has expired or expires within 30 days"
        )));
    }
    Ok(Loaded::Ok(Ca {
        cert_pem,
        cert_der,
        key,
        not_after,
    }))
}

#[derive(Clone, Copy, Debug)]
enum Leaf {
    Server,
    Client,
}

impl Leaf {
    fn cert_file(self) -> &'static str {
        match self {
            Leaf::Server => SERVER_CERT_FILE,
            Leaf::Client => CLIENT_CERT_FILE,
        }
    }

    fn key_file(self) -> &'static str {
        match self {
            Leaf::Server => SERVER_KEY_FILE,
            Leaf::Client => CLIENT_KEY_FILE,
        }
    }

    fn params(self, now: u64, ca_not_after: u64) -> Result<CertificateParams, PkiError> {
        let mut params = match self {
            Leaf::Server => {
                let names: Vec<String> = SERVER_NAMES.iter().map(|s| s.to_string()).collect();
                let mut params = CertificateParams::new(names)?;
                let mut name = DistinguishedName::new();
                name.push(DnType::CommonName, SERVER_COMMON_NAME);
                params.distinguished_name = name;
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params
            }
            Leaf::Client => {
                let mut params = CertificateParams::new(Vec::<String>::new())?;
                let mut name = DistinguishedName::new();
                name.push(DnType::OrganizationName, CLIENT_ORGANIZATION);
                name.push(DnType::CommonName, CLIENT_COMMON_NAME);
                params.distinguished_name = name;
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
                params
            }
        };
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial()?);
        let not_after = ca_not_after.min(now.saturating_add(VALIDITY));
        set_validity(&mut params, now, not_after);
        Ok(params)
    }

    /// Checks that `cert` is valid now (and for a while yet), chains to
    /// the CA and is fit for its purpose.
    fn verify(
        self,
        cert: &CertificateDer<'_>,
        ca: &CertificateDer<'static>,
        now: u64,
        provider: &Arc<CryptoProvider>,
    ) -> Result<(), String> {
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone()).map_err(|e| format!("CA: {e}"))?;
        let roots = Arc::new(roots);
        let time = UnixTime::since_unix_epoch(Duration::from_secs(now));
        match self {
            Leaf::Server => {
                let verifier =
                    WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
                        .build()
                        .map_err(|e| e.to_string())?;
                for name in SERVER_NAMES {
                    let server_name =
                        ServerName::try_from(*name).map_err(|e| format!("{name}: {e}"))?;
                    verifier
                        .verify_server_cert(cert, &[], &server_name, &[], time)
                        .map_err(|e| format!("not valid for {name}: {e}"))?;
                }
            }
            Leaf::Client => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots, Arc::clone(provider))
                        .build()
                        .map_err(|e| e.to_string())?;
                verifier
                    .verify_client_cert(cert, &[], time)
                    .map_err(|e| e.to_string())?;
            }
        }
        match cert_not_after(cert) {
            Some(not_after) if not_after >= now.saturating_add(RENEW_MARGIN) => Ok(()),
            Some(_) => Err("expires within 30 days".to_string()),
            None => Err("cannot read its expiry date".to_string()),
        }
    }
}

/// A leaf certificate and its key.
struct LeafPair {
    cert_pem: String,
    key_pem: String,
    cert_der: Vec<u8>,
}

fn load_leaf(
    dir: &Path,
    kind: Leaf,
    ca: &Ca,
    now: u64,
    provider: &Arc<CryptoProvider>,
) -> Result<Loaded<LeafPair>, PkiError> {
    let cert_path = dir.join(kind.cert_file());
    let key_path = dir.join(kind.key_file());
    let (cert_pem, key_pem) = match (read_text(&cert_path)?, read_text(&key_path)?) {
        (Loaded::Missing, Loaded::Missing) => return Ok(Loaded::Missing),
        (Loaded::Ok(cert), Loaded::Ok(key)) => (cert, key),
        (Loaded::Bad(reason), _) | (_, Loaded::Bad(reason)) => return Ok(Loaded::Bad(reason)),
        (Loaded::Missing, _) => return Ok(Loaded::Bad("the certificate is missing".into())),
        (_, Loaded::Missing) => {
            return Ok(Loaded::Bad(format!("{} is missing", kind.key_file())));
        }
    };
    tighten(&key_path);
    let cert_der = match parse_cert(&cert_pem) {
        Ok(der) => der,
        Err(e) => return Ok(Loaded::Bad(e)),
    };
    if let Err(e) = keys_match(&cert_der, &key_pem, provider) {
        return Ok(Loaded::Bad(e));
    }
    if let Err(e) = kind.verify(&cert_der, &ca.cert_der, now, provider) {
        return Ok(Loaded::Bad(e));
    }
    Ok(Loaded::Ok(LeafPair {
        cert_pem,
        key_pem,
        cert_der: cert_der.to_vec(),
    }))
}

/// Issues and stores a new leaf. Returns `None` if the new certificate does
/// not verify against the CA: the CA's key is not the certificate's.
fn issue_leaf(
    dir: &Path,
    kind: Leaf,
    ca: &Ca,
    issuer: &Issuer<'_, &KeyPair>,
    now: u64,
    provider: &Arc<CryptoProvider>,
) -> Result<Option<LeafPair>, PkiError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let cert = kind.params(now, ca.not_after)?.signed_by(&key, issuer)?;
    if let Err(e) = kind.verify(cert.der(), &ca.cert_der, now, provider) {
        tracing::debug!("new {} does not verify: {e}", kind.cert_file());
        return Ok(None);
    }
    let pair = LeafPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        cert_der: cert.der().to_vec(),
    };
    write_atomic(&dir.join(kind.key_file()), pair.key_pem.as_bytes(), true)?;
    write_atomic(&dir.join(kind.cert_file()), pair.cert_pem.as_bytes(), false)?;
    Ok(Some(pair))
}

fn load_or_create_token(dir: &Path) -> Result<String, PkiError> {
    let path = dir.join(TOKEN_FILE);
    match read_text(&path)? {
        Loaded::Ok(text) => {
            let token = text.trim();
            if token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit()) {
                tighten(&path);
                return Ok(token.to_ascii_lowercase());
            }
            tracing::warn!(
                path = %path.display(),
                "cluster token is not {} hex digits; creating a new one \
                 (kubeconfigs must be merged again)",
                TOKEN_BYTES * 2
            );
        }
        Loaded::Bad(reason) => {
            tracing::warn!(
                path = %path.display(),
                "cluster token: {reason}; creating a new one (kubeconfigs must be merged again)"
            );
        }
        Loaded::Missing => {}
    }
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(PkiError::Random)?;
    let token = hex::encode(bytes);
    write_atomic(&path, format!("{token}\n").as_bytes(), true)?;
    Ok(token)
}

/// Parses the first certificate of a PEM text.
fn parse_cert(pem: &str) -> Result<CertificateDer<'static>, String> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| format!("not a PEM certificate: {e}"))
}

/// Parses the first private key of a PEM text.
fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("not a PEM private key: {e}"))
}

/// Checks that `key_pem` is the private key of `cert`.
fn keys_match(
    cert: &CertificateDer<'static>,
    key_pem: &str,
    provider: &CryptoProvider,
) -> Result<(), String> {
    let key = parse_key(key_pem)?;
    let certified = CertifiedKey::from_der(vec![cert.clone()], key, provider)
        .map_err(|e| format!("key and certificate do not belong together: {e}"))?;
    certified
        .keys_match()
        .map_err(|e| format!("key and certificate do not belong together: {e}"))
}

/// Reads a file as text: `Missing` if it does not exist, `Bad` if it is
/// not UTF-8; other I/O errors are errors.
fn read_text(path: &Path) -> Result<Loaded<String>, PkiError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(match String::from_utf8(bytes) {
            Ok(text) => Loaded::Ok(text),
            Err(_) => Loaded::Bad(format!("{} is not text", path.display())),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Loaded::Missing),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Creates the directory and, on Unix, restricts it to its owner.
fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// Restricts an existing secret file to its owner if it is not already.
#[cfg(unix)]
fn tighten(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
        && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
    {
        tracing::warn!(path = %path.display(), "cannot restrict to mode 0600: {e}");
    }
}

#[cfg(not(unix))]
fn tighten(_path: &Path) {}

/// Writes `bytes` to a temporary file in the same directory (0600 for a
/// secret, 0644 otherwise, from creation on Unix), syncs it and renames it
/// over `path`, so readers see the old file or the new one, never half.
fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), PkiError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".pki-")
        .tempfile_in(dir)
        .map_err(io_err(path))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = if secret { 0o600 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io_err(path))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    tmp.write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    #[cfg(unix)]
    {
        // Make the rename itself durable.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .min(MAX_NOW)
}

/// The end of a certificate's validity, in seconds since the epoch, read
/// from its DER: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE {
/// [0] version OPTIONAL, serialNumber, signature, issuer, validity
/// SEQUENCE { notBefore, notAfter }, ... }, ... }`.
fn cert_not_after(der: &[u8]) -> Option<u64> {
    const SEQUENCE: u8 = 0x30;
    let (tag, cert, _) = der_next(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let (tag, tbs, _) = der_next(cert)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut rest = tbs;
    let (tag, _, after) = der_next(rest)?;
    if tag == 0xa0 {
        rest = after; // the explicit version
    }
    // serialNumber, signature, issuer
    for _ in 0..3 {
        let (_, _, after) = der_next(rest)?;
        rest = after;
    }
    let (tag, validity, _) = der_next(rest)?;
    if tag != SEQUENCE {
        return None;
    }
    let (_, _, validity) = der_next(validity)?; // notBefore
    let (tag, not_after, _) = der_next(validity)?;
    parse_der_time(tag, not_after)
}

/// Splits one DER element off `input`: its tag, its contents and the rest.
fn der_next(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2usize)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let bytes = input.get(2..2 + count)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + count)
    };
    let end = header.checked_add(len)?;
    Some((tag, input.get(header..end)?, input.get(end..)?))
}

/// Parses a UTCTime (`YYMMDDHHMMSSZ`, tag 0x17) or GeneralizedTime
/// (`YYYYMMDDHHMMSSZ`, tag 0x18) into seconds since the epoch.
fn parse_der_time(tag: u8, text: &[u8]) -> Option<u64> {
    let digits = text.strip_suffix(b"Z")?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        digits
            .get(range)?
            .iter()
            .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let (year, rest) = match (tag, digits.len()) {
        (0x17, 12) => {
            let yy = num(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 14) => (num(0..4)?, 4),
        _ => return None,
    };
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        num(rest..rest + 2)?,
        num(rest + 2..rest + 4)?,
    )?;
    let time = date.and_hms_opt(
        num(rest + 4..rest + 6)?,
        num(rest + 6..rest + 8)?,
        num(rest + 8..rest + 10)?,
    )?;
    u64::try_from(time.and_utc().timestamp()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::{TcpListener, TcpStream};

    fn client_config(
        trusted: &str,
        client_cert: Option<(&str, &str)>,
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots
            .add(parse_cert(trusted).expect("CA parses"))
            .expect("CA added");
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let mut config = match client_cert {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![parse_cert(cert).expect("cert parses")],
                    parse_key(key).expect("key parses"),
                )
                .expect("client auth"),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec(), ALPN_HTTP1.to_vec()];
        Arc::new(config)
    }

    /// What the server saw of one connection attempt.
    #[derive(Debug)]
    struct Seen {
        admin: bool,
        alpn: Option<Vec<u8>>,
    }

    /// Runs one TLS handshake over loopback and exchanges a byte. Returns
    /// the server's view, or the client's error.
    async fn handshake(pki: &Pki, client: Arc<rustls::ClientConfig>) -> Result<Seen, String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config().expect("config"));
        let server_pki = pki.clone();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let (_, conn) = tls.get_ref();
            let seen = Seen {
                admin: server_pki.peer_is_admin(conn.peer_certificates()),
                alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            };
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            tls.write_all(&byte).await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())?;
            Ok::<Seen, String>(seen)
        });
        let connector = tokio_rustls::TlsConnector::from(client);
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("127.0.0.1").expect("name");
        let client_result = async {
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"x").await.map_err(|e| e.to_string())?;
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
            Ok::<(), String>(())
        }
        .await;
        let server_result = server.await.expect("server task");
        client_result?;
        server_result
    }

    #[test]
    fn creates_everything_with_private_modes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("cluster").join("pki");
        let pki = Pki::load_or_create(&pki_dir).expect("create");
        for file in [
            CA_CERT_FILE,
            CA_KEY_FILE,
            SERVER_CERT_FILE,
            SERVER_KEY_FILE,
            CLIENT_CERT_FILE,
            CLIENT_KEY_FILE,
            TOKEN_FILE,
        ] {
            assert!(pki_dir.join(file).is_file(), "{file} missing");
        }
        assert!(pki.ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(pki.server_key_pem.contains("PRIVATE KEY"));
        assert_eq!(pki.token.len(), 64);
        assert!(pki.token.bytes().all(|b| b.is_ascii_hexdigit()));
        // Ten years, give or take the backdating.
        let ca_der = parse_cert(&pki.ca_pem).expect("CA");
        let not_after = cert_not_after(&ca_der).expect("not after");
        let now = now_secs();
        assert!(not_after > now + VALIDITY - 86400 && not_after <= now + VALIDITY + 86400);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode =
                |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
            assert_eq!(mode(&pki_dir), 0o700);
            for file in [CA_KEY_FILE, SERVER_KEY_FILE, CLIENT_KEY_FILE, TOKEN_FILE] {
                assert_eq!(mode(&pki_dir.join(file)), 0o600, "{file}");
            }
            assert_eq!(mode(&pki_dir.join(CA_CERT_FILE)), 0o644);
        }
        // No temporary files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&pki_dir)
            .expect("read dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".pki-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn reload_gives_the_same_material() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(dir.path()).expect("create");
        let second = Pki::load_or_create(dir.path()).expect("reload");
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.server_cert_pem, second.server_cert_pem);
        assert_eq!(first.server_key_pem, second.server_key_pem);
        assert_eq!(first.client_cert_pem, second.client_cert_pem);
        assert_eq!(first.client_key_pem, second.client_key_pem);
        assert_eq!(first.token, second.token);
        let der = parse_cert(&second.client_cert_pem).expect("client cert");
        assert!(second.is_admin_cert(&der));
        assert!(!second.is_admin_cert(&parse_cert(&second.ca_pem).expect("ca")));
    }

    #[test]
    fn corrupt_leaves_are_reissued_under_the_same_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(dir.path()).expect("create");
        std::fs::write(dir.path().join(SERVER_CERT_FILE), "garbage").expect("corrupt");
        std::fs::remove_file(dir.path().join(CLIENT_KEY_FILE)).expect("remove");
        std::fs::write(dir.path().join(TOKEN_FILE), [0xff, 0xfe]).expect("corrupt token");
        let second = Pki::load_or_create(dir.path()).expect("repair");
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_ne!(first.server_cert_pem, second.server_cert_pem);
        assert_ne!(first.client_cert_pem, second.client_cert_pem);
        assert_ne!(first.token, second.token);
        let provider = provider();
        let ca = parse_cert(&second.ca_pem).expect("ca");
        let server = parse_cert(&second.server_cert_pem).expect("server");
        Leaf::Server
            .verify(&server, &ca, now_secs(), &provider)
            .expect("reissued server cert verifies");
    }

    #[test]
    fn leaves_of_another_ca_are_reissued() {
        let ours = tempfile::tempdir().expect("tempdir");
        let theirs = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(ours.path()).expect("create");
        Pki::load_or_create(theirs.path()).expect("create other");
        for file in [SERVER_CERT_FILE, SERVER_KEY_FILE] {
            std::fs::copy(theirs.path().join(file), ours.path().join(file)).expect("copy");
        }
        let second = Pki::load_or_create(ours.path()).expect("repair");
        assert_eq!(first.ca_pem, second.ca_pem);
        let theirs_cert =
            std::fs::read_to_string(theirs.path().join(SERVER_CERT_FILE)).expect("read");
        assert_ne!(second.server_cert_pem, theirs_cert);
        assert_eq!(first.client_cert_pem, second.client_cert_pem);
    }

    #[test]
    fn a_ca_whose_key_does_not_match_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(dir.path()).expect("create");
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
        std::fs::write(dir.path().join(CA_KEY_FILE), other.serialize_pem()).expect("swap");
        let second = Pki::load_or_create(dir.path()).expect("replace");
        assert_ne!(first.ca_pem, second.ca_pem);
        assert_ne!(first.server_cert_pem, second.server_cert_pem);
        assert_eq!(first.token, second.token);
        second.server_config().expect("usable");
    }

    #[test]
    fn a_ca_that_cannot_issue_verifiable_certificates_is_replaced() {
        // A CA certificate whose key matches but whose name is not the one
        // wrun issues under: leaves signed with it never chain.
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Pki::load_or_create(dir.path()).expect("create");
        let key_pem = std::fs::read_to_string(dir.path().join(CA_KEY_FILE)).expect("key");
        let key = KeyPair::from_pem(&key_pem).expect("parse key");
        let mut params = ca_params(now_secs()).expect("params");
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "someone-else");
        params.distinguished_name = name;
        let cert = params.self_signed(&key).expect("self-signed");
        std::fs::write(dir.path().join(CA_CERT_FILE), cert.pem()).expect("swap");
        let second = Pki::load_or_create(dir.path()).expect("replace");
        assert_ne!(second.ca_pem, cert.pem());
        assert_ne!(first.ca_pem, second.ca_pem);
        let third = Pki::load_or_create(dir.path()).expect("reload");
        assert_eq!(second.ca_pem, third.ca_pem);
        assert_eq!(second.client_cert_pem, third.client_cert_pem);
    }

    #[test]
    fn checks_the_bearer_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("create");
        let good = format!("Bearer {}", pki.token);
        assert!(pki.check_token(Some(&good)));
        assert!(pki.check_token(Some(&format!("bearer  {} ", pki.token))));
        assert!(!pki.check_token(None));
        assert!(!pki.check_token(Some("")));
        assert!(!pki.check_token(Some("Bearer")));
        assert!(!pki.check_token(Some("Bearer ")));
        assert!(!pki.check_token(Some(&format!("Basic {}", pki.token))));
        assert!(!pki.check_token(Some(&format!("Bearer {}x", pki.token))));
        assert!(!pki.check_token(Some(&pki.token)));
    }

    #[test]
    fn reads_der_times() {
        assert_eq!(parse_der_time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(
            parse_der_time(0x18, b"20500101000000Z"),
            Some(2_524_608_000)
        );
        assert_eq!(parse_der_time(0x17, b"491231235959Z"), Some(2_524_607_999));
        assert_eq!(parse_der_time(0x17, b"701301000000Z"), None);
        assert_eq!(parse_der_time(0x17, b"70010100000Z"), None);
        assert_eq!(parse_der_time(0x18, b"2050010100000+"), None);
        assert_eq!(cert_not_after(b""), None);
        assert_eq!(cert_not_after(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(cert_not_after(&[0x30, 0x02, 0x30, 0x00]), None);
    }

    #[tokio::test]
    async fn handshakes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::load_or_create(dir.path()).expect("create");

        // Trusting the CA, without a client certificate: connects, not admin.
        let seen = handshake(&pki, client_config(&pki.ca_pem, None))
            .await
            .expect("a client that trusts the CA connects");
        assert!(!seen.admin);
        assert_eq!(seen.alpn.as_deref(), Some(ALPN_HTTP1));

        // With the admin certificate: seen as the admin.
        let seen = handshake(
            &pki,
            client_config(
                &pki.ca_pem,
                Some((&pki.client_cert_pem, &pki.client_key_pem)),
            ),
        )
        .await
        .expect("the admin connects");
        assert!(seen.admin);

        // Not trusting our CA: fails.
        let other_dir = tempfile::tempdir().expect("tempdir");
        let other = Pki::load_or_create(other_dir.path()).expect("other");
        let err = handshake(&pki, client_config(&other.ca_pem, None))
            .await
            .expect_err("a client that does not trust the CA fails");
        assert!(err.contains("invalid peer certificate"), "{err}");

        // A client certificate from another CA is refused.
        handshake(
            &pki,
            client_config(
                &pki.ca_pem,
                Some((&other.client_cert_pem, &other.client_key_pem)),
            ),
        )
        .await
        .expect_err("a foreign client certificate is refused");
    }
}
