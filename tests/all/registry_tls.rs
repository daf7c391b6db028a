//! Registries as public ones serve images: over HTTPS, with a CA the test
//! makes and wrun trusts through `certs.d/<host:port>/ca.crt` under its
//! state root (as Docker's `certs.d`), and with bearer tokens from a token
//! server (the `WWW-Authenticate: Bearer realm=…` dance of ghcr.io and
//! Docker Hub). The registry is the real docker-registry 2.8; the token
//! server is the test's own, signing ES256 tokens with a key whose
//! certificate the registry trusts.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    PublicKeyData as _, SanType,
};
use sha2::{Digest as _, Sha256};

use crate::registry::{PASSWORD, Registry, USER, busybox_for, wrun};
use crate::support::Root;

const SERVICE: &str = "wrun-test-registry";
const ISSUER: &str = "wrun-test-token-issuer";

/// A CA made for one test, and a server certificate for 127.0.0.1 that it
/// signed, written as PEM files into `dir`.
struct Pki {
    ca_pem: String,
}

impl Pki {
    fn make(dir: &Path) -> Self {
        let ca_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "wrun test CA");
        let ca_cert = ca.clone().self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca, &ca_key);

        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("server key");
        let mut server = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        server
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
        let cert = server.signed_by(&key, &issuer).expect("server cert");
        std::fs::write(dir.join("server.crt"), cert.pem()).expect("write cert");
        std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write key");
        Self {
            ca_pem: ca_cert.pem(),
        }
    }

    /// The registry config lines that serve TLS with the server cert.
    fn tls_config(dir: &Path) -> String {
        format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            dir.join("server.crt").display(),
            dir.join("server.key").display()
        )
    }

    /// Makes `root` trust this CA for `host`, as Docker's certs.d does.
    fn trust(&self, root: &Root, host: &str) {
        let dir = root.path().join("certs.d").join(host);
        std::fs::create_dir_all(&dir).expect("certs.d");
        std::fs::write(dir.join("ca.crt"), &self.ca_pem).expect("ca.crt");
    }
}

#[test]
fn https_registry_needs_its_ca_in_certs_d() {
    let mut pki = None;
    let reg = Registry::start_with(|dir, config| {
        pki = Some(Pki::make(dir));
        config.push_str(&Pki::tls_config(dir));
    });
    let pki = pki.expect("pki");
    let root = Root::new();
    let (name, id) = busybox_for(&root, &reg);

    // No CA given: wrun speaks plain HTTP to a loopback registry, as
    // Docker does, and the refusal says how to trust the registry's CA.
    let out = wrun(&root, &["push", &name]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&reg.host())
            && out
                .stderr
                .contains(&format!("certs.d/{}/ca.crt", reg.host())),
        "{}",
        out.stderr
    );

    // A CA that did not sign the registry's certificate: a TLS refusal.
    let stranger = tempfile::tempdir().expect("tempdir");
    Pki::make(stranger.path()).trust(&root, &reg.host());
    let out = wrun(&root, &["push", &name]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(&reg.host()) && out.stderr.to_lowercase().contains("certificate"),
        "{}",
        out.stderr
    );

    // With the CA under certs.d/<host:port>/, push goes over HTTPS.
    pki.trust(&root, &reg.host());
    let pushed = wrun(&root, &["push", &name]);
    assert!(
        pushed.ok().contains("latest: digest: sha256:"),
        "{pushed:?}"
    );

    // Another machine (root) with the same trust pulls and runs it.
    let other = Root::new();
    pki.trust(&other, &reg.host());
    wrun(&other, &["pull", &name]).ok();
    assert_eq!(other.image_id(&name), id);
    let ran = wrun(&other, &["run", "--rm", &name, "echo", "over tls"]);
    assert_eq!(ran.ok(), "over tls\n");

    // A file under certs.d that is not a certificate is named.
    let bad = Root::new();
    let dir = bad.path().join("certs.d").join(reg.host());
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("ca.crt"), "not a certificate").expect("write");
    wrun(&bad, &["pull", &name]).fails(1, "ca.crt is not a PEM certificate");
}

/// What the token server hands out, and counts.
#[derive(Default)]
struct Policy {
    /// Tokens issued so far.
    issued: AtomicUsize,
    /// Requests refused for a wrong password.
    refused: AtomicUsize,
    /// Issue the next token already expired (past the registry's leeway).
    stale_next: AtomicBool,
}

/// A bearer token server on 127.0.0.1, as a registry's auth service:
/// anonymous callers get pull access, `USER` with `PASSWORD` gets what it
/// asks for, a wrong password gets 401.
struct TokenServer {
    port: u16,
    policy: Arc<Policy>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The token signing key and the libtrust key ID the registry knows it by.
struct Signer {
    key: ring::signature::EcdsaKeyPair,
    kid: String,
}

impl TokenServer {
    /// Starts the server; writes the signing key's certificate to
    /// `dir/token.crt` for the registry's `rootcertbundle`.
    fn start(dir: &Path) -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("token key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "wrun test token signer");
        let cert = params.self_signed(&key).expect("token cert");
        std::fs::write(dir.join("token.crt"), cert.pem()).expect("write token.crt");
        let signer = Signer {
            key: ring::signature::EcdsaKeyPair::from_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &key.serialize_der(),
                &ring::rand::SystemRandom::new(),
            )
            .expect("ring key"),
            kid: libtrust_key_id(&key.subject_public_key_info()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let policy = Arc::new(Policy::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (policy, stop) = (policy.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        serve_token(conn, &signer, &policy);
                    }
                }
            })
        };
        Self {
            port,
            policy,
            stop,
            thread: Some(thread),
        }
    }

    /// The registry config lines that send clients here for tokens.
    fn auth_config(&self, dir: &Path) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            self.port,
            dir.join("token.crt").display()
        )
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// libtrust's key ID, which docker-registry 2.8 matches a token's `kid`
/// against: the first 240 bits of the SHA-256 of the public key's DER, in
/// base32, in groups of four joined by colons.
fn libtrust_key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = Sha256::digest(spki_der);
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = String::new();
    for byte in &hash[..30] {
        bits = (bits << 8) | u32::from(*byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            out.push(char::from(ALPHABET[((bits >> count) & 31) as usize]));
        }
    }
    out.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(":")
}

/// Answers one `GET /token?service=…&scope=…` request.
fn serve_token(mut conn: TcpStream, signer: &Signer, policy: &Policy) {
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("");
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let scopes: Vec<String> = query
        .split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .map(percent_decode)
        .collect();
    let user = match headers.get("authorization") {
        None => None,
        Some(h) => {
            let decoded = h
                .strip_prefix("Basic ")
                .and_then(|b| STANDARD.decode(b).ok())
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if decoded != format!("{USER}:{PASSWORD}") {
                policy.refused.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"details":"incorrect username or password"}"#;
                let _ = write!(
                    conn,
                    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                return;
            }
            Some(USER)
        }
    };
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|scope| {
            // repository:<name>:<actions>; the name may hold colons only
            // in a port, which repository names do not have.
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
            let granted: Vec<&str> = actions
                .split(',')
                .filter(|a| user.is_some() || *a == "pull")
                .collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let n = policy.issued.fetch_add(1, Ordering::SeqCst);
    // The registry allows a minute of clock skew: a stale token is older.
    let exp = if policy.stale_next.swap(false, Ordering::SeqCst) {
        now - 600
    } else {
        now + 300
    };
    let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "kid": signer.kid});
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": user.unwrap_or(""),
        "aud": SERVICE,
        "exp": exp,
        "nbf": now - 700,
        "iat": now - 700,
        "jti": format!("token-{n}"),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = signer
        .key
        .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
        .expect("sign");
    let token = format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    );
    let body =
        serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string();
    let _ = write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// ghcr.io's shape: HTTPS, anonymous pulls through a token, pushes after
/// `wrun login`, a wrong password refused, an expired token replaced.
#[test]
fn token_auth_over_https() {
    let mut pki = None;
    let mut tokens = None;
    let reg = Registry::start_with(|dir, config| {
        pki = Some(Pki::make(dir));
        config.push_str(&Pki::tls_config(dir));
        let server = TokenServer::start(dir);
        config.push_str(&server.auth_config(dir));
        tokens = Some(server);
    });
    let (pki, tokens) = (pki.expect("pki"), tokens.expect("token server"));
    let host = reg.host();
    let root = Root::new();
    pki.trust(&root, &host);
    let (name, id) = busybox_for(&root, &reg);

    // Anonymous: the token grants pull only, so the push is refused.
    let out = wrun(&root, &["push", &name]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(&host), "{}", out.stderr);
    assert!(
        tokens.policy.issued.load(Ordering::SeqCst) > 0,
        "no token was asked for"
    );

    // A wrong password: the token server says no, and nothing is saved.
    wrun(&root, &["login", &host, "-u", USER, "-p", "wrong"]).fails(
        1,
        &format!("login {host}: unauthorized: wrong username or password"),
    );
    assert!(tokens.policy.refused.load(Ordering::SeqCst) > 0);
    let saved = std::fs::read_to_string(root.path().join("auth.json")).unwrap_or_default();
    assert!(!saved.contains(&host), "{saved}");

    // Logged in, the push gets a token with push access.
    wrun(&root, &["login", &host, "-u", USER, "-p", PASSWORD]).ok();
    let pushed = wrun(&root, &["push", &name]);
    assert!(
        pushed.ok().contains("latest: digest: sha256:"),
        "{pushed:?}"
    );

    // Anyone may pull, through an anonymous token.
    let anon = Root::new();
    pki.trust(&anon, &host);
    let before = tokens.policy.issued.load(Ordering::SeqCst);
    wrun(&anon, &["pull", &name]).ok();
    assert_eq!(anon.image_id(&name), id);
    assert_eq!(
        tokens.policy.issued.load(Ordering::SeqCst),
        before + 1,
        "a pull takes one token"
    );

    // The token handed out has expired by the time it is used: the
    // registry refuses it, and wrun asks for a new one and goes on.
    wrun(&anon, &["rmi", &name]).ok();
    tokens.policy.stale_next.store(true, Ordering::SeqCst);
    let before = tokens.policy.issued.load(Ordering::SeqCst);
    let again = wrun(&anon, &["pull", &name]);
    again.ok();
    assert_eq!(
        tokens.policy.issued.load(Ordering::SeqCst),
        before + 2,
        "a second token replaced the expired one"
    );
    assert_eq!(anon.image_id(&name), id);
}
