//! `wrun pull`, `push`, `login` and `logout` against a real Docker
//! registry 2.8 (Debian's `docker-registry`), one private registry per
//! test on 127.0.0.1, with and without htpasswd basic auth.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use crate::support::{Ran, Root};

pub(crate) const USER: &str = "me";
pub(crate) const PASSWORD: &str = "s3cret";

/// A `docker-registry serve` process, killed by its PID when dropped.
pub(crate) struct Registry {
    child: Child,
    pub(crate) port: u16,
    pub(crate) dir: tempfile::TempDir,
}

impl Registry {
    pub(crate) fn start(auth: bool) -> Self {
        Self::start_with(|dir, config| {
            if auth {
                Self::add_htpasswd(dir, config);
            }
        })
    }

    /// Starts a registry whose config `extra` may extend (under `http:`
    /// first, so that `  tls:` lines belong there), in the test's own dir.
    pub(crate) fn start_with(extra: impl FnOnce(&Path, &mut String)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        extra(dir.path(), &mut config);
        Self::serve(dir, port, config)
    }

    fn add_htpasswd(dir: &Path, config: &mut String) {
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd is needed (apt-get install apache2-utils)");
        assert!(out.status.success(), "htpasswd failed");
        let file = dir.join("htpasswd");
        std::fs::write(&file, out.stdout).expect("write htpasswd");
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: wrun-test\n    path: {}\n",
            file.display()
        ));
    }

    fn serve(dir: tempfile::TempDir, port: u16, config: String) -> Self {
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is needed (apt-get install docker-registry)");
        let registry = Self { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/v2/", "", &[]).is_none() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps the blob `digest` (`sha256:…`).
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to the registry; `None` when it cannot connect.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, out))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Uploads a blob through the registry API (POST, then PUT to the
/// upload's location); returns its digest.
fn put_blob(reg: &Registry, repo: &str, bytes: &[u8]) -> String {
    let digest = sha256(bytes);
    let (status, out) = http(
        reg.port,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        "",
        &[],
    )
    .expect("start upload");
    assert_eq!(status, 202, "{out}");
    let location = out
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .expect("Location header")
        .trim();
    let path = location
        .strip_prefix(&format!("http://{}", reg.host()))
        .unwrap_or(location);
    let sep = if path.contains('?') { '&' } else { '?' };
    let (status, out) = http(
        reg.port,
        "PUT",
        &format!("{path}{sep}digest={digest}"),
        "application/octet-stream",
        bytes,
    )
    .expect("finish upload");
    assert_eq!(status, 201, "{out}");
    digest
}

fn put_manifest(reg: &Registry, repo: &str, tag: &str, media_type: &str, bytes: &[u8]) -> String {
    let path = format!("/v2/{repo}/manifests/{tag}");
    let (status, out) = http(reg.port, "PUT", &path, media_type, bytes).expect("put manifest");
    assert_eq!(status, 201, "{out}");
    sha256(bytes)
}

/// Pushes a Linux image (config `linux/amd64`, one empty tar layer);
/// returns its manifest's digest and size.
fn push_linux_image(reg: &Registry, repo: &str, tag: &str) -> (String, usize) {
    let layer = vec![0u8; 1024];
    let layer_digest = put_blob(reg, repo, &layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}},"config":{{}}}}"#
    );
    let config_digest = put_blob(reg, repo, config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let digest = put_manifest(
        reg,
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.as_bytes(),
    );
    (digest, manifest.len())
}

/// `wrun` with no docker config of the user's leaking in.
pub(crate) fn wrun(root: &Root, args: &[&str]) -> Ran {
    let out = root
        .cmd(args)
        .env("DOCKER_CONFIG", root.path().join("no-docker-config"))
        .env_remove("WRUN_INSECURE_REGISTRIES")
        .output()
        .expect("spawn wrun");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Builds busybox, names it for `reg`, and returns the name and image ID.
pub(crate) fn busybox_for(root: &Root, reg: &Registry) -> (String, String) {
    root.busybox();
    let name = format!("{}/me/busybox", reg.host());
    wrun(root, &["tag", "busybox", &name]).ok();
    (name, root.image_id("busybox"))
}

fn no_images(root: &Root) {
    let out = wrun(root, &["images", "-q"]);
    assert_eq!(out.ok().trim(), "", "images were stored");
}

fn image_count(root: &Root) -> usize {
    wrun(root, &["images", "-q"]).ok().lines().count()
}

#[test]
fn push_remove_pull_run_round_trip() {
    let reg = Registry::start(false);
    let root = Root::new();
    let (name, id) = busybox_for(&root, &reg);
    let out = wrun(&root, &["push", &name]);
    let stdout = out.ok();
    assert!(
        stdout.starts_with(&format!("The push refers to repository [{name}]\n")),
        "{stdout}"
    );
    assert!(stdout.contains(": Pushed\n"), "{stdout}");
    assert!(stdout.contains("latest: digest: sha256:"), "{stdout}");
    // A second push finds every layer there.
    let again = wrun(&root, &["push", &name]);
    assert!(
        again.ok().contains(": Layer already exists\n"),
        "{}",
        again.stdout
    );

    wrun(&root, &["rmi", "busybox", &name]).ok();
    no_images(&root);
    let pulled = wrun(&root, &["pull", &name]);
    let stdout = pulled.ok();
    assert!(
        stdout.starts_with("latest: Pulling from me/busybox\n"),
        "{stdout}"
    );
    // The layer blob outlives `rmi`, so it is not downloaded again.
    assert!(stdout.contains(": Already exists\n"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "Status: Downloaded newer image for {name}:latest\n"
        )),
        "{stdout}"
    );
    assert_eq!(
        root.image_id(&name),
        id,
        "the pulled image ID is the pushed one"
    );
    assert_eq!(
        wrun(&root, &["run", "--rm", &name, "echo", "hi"]).ok(),
        "hi\n"
    );

    // A fresh root pulls the same image, every layer downloaded.
    let other = Root::new();
    let fresh = wrun(&other, &["pull", &name]);
    assert!(fresh.ok().contains(": Pull complete\n"), "{}", fresh.stdout);
    assert_eq!(other.image_id(&name), id);
    assert_eq!(
        wrun(&other, &["pull", "-q", &name]).ok(),
        format!("{name}:latest\n")
    );
}

#[test]
fn second_pull_is_up_to_date_and_downloads_nothing() {
    let reg = Registry::start(false);
    let root = Root::new();
    let (name, _) = busybox_for(&root, &reg);
    wrun(&root, &["push", &name]).ok();
    let out = wrun(&root, &["pull", &name]);
    let stdout = out.ok();
    assert!(
        stdout.contains(&format!("Status: Image is up to date for {name}:latest")),
        "{stdout}"
    );
    assert!(!stdout.contains("Pull complete"), "{stdout}");
}

#[test]
fn basic_auth_needs_a_login_with_the_right_password() {
    let reg = Registry::start(true);
    let root = Root::new();
    let (name, id) = busybox_for(&root, &reg);
    let host = reg.host();

    wrun(&root, &["push", &name]).fails(1, &format!("push {name}:latest: unauthorized"));
    wrun(&root, &["push", &name]).fails(1, &format!("wrun login {host}"));

    wrun(&root, &["login", &host, "-u", USER, "-p", "wrong"]).fails(
        1,
        &format!("login {host}: unauthorized: wrong username or password"),
    );
    assert!(
        !root.path().join("auth.json").exists(),
        "a wrong password was saved"
    );

    let ok = wrun(&root, &["login", &host, "-u", USER, "-p", PASSWORD]);
    assert_eq!(ok.ok(), "Login Succeeded\n");
    let auth = root.path().join("auth.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&auth)
            .expect("auth.json")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "auth.json must be private");
    }
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&auth).expect("read auth.json")).expect("JSON");
    assert!(saved["auths"][&host]["auth"].is_string(), "{saved}");

    wrun(&root, &["push", &name]).ok();
    wrun(&root, &["rmi", "busybox", &name]).ok();
    wrun(&root, &["pull", &name]).ok();
    assert_eq!(root.image_id(&name), id);

    assert_eq!(
        wrun(&root, &["logout", &host]).ok(),
        format!("Removing login credentials for {host}\n")
    );
    let other = Root::new();
    wrun(&other, &["pull", &name]).fails(1, &format!("pull {name}:latest: unauthorized"));
    no_images(&other);
}

#[test]
fn docker_config_credentials_are_used() {
    let reg = Registry::start(true);
    let root = Root::new();
    let (name, _) = busybox_for(&root, &reg);
    let docker = tempfile::tempdir().expect("tempdir");
    let auth = base64_encode(format!("{USER}:{PASSWORD}").as_bytes());
    std::fs::write(
        docker.path().join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .expect("write docker config");
    let out = root
        .cmd(&["push", &name])
        .env("DOCKER_CONFIG", docker.path())
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn missing_tag_is_a_clear_error() {
    let reg = Registry::start(false);
    let root = Root::new();
    let name = format!("{}/me/nothing:v1", reg.host());
    wrun(&root, &["pull", &name]).fails(1, &format!("pull {name}: manifest unknown"));
    no_images(&root);
}

#[test]
fn registry_down_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let root = Root::new();
    let name = format!("127.0.0.1:{port}/me/busybox:latest");
    wrun(&root, &["pull", &name]).fails(
        1,
        &format!("pull {name}: cannot reach registry 127.0.0.1:{port}"),
    );
    no_images(&root);
}

#[test]
fn tampered_blob_is_refused_and_nothing_is_stored() {
    let reg = Registry::start(false);
    let root = Root::new();
    let (name, _) = busybox_for(&root, &reg);
    wrun(&root, &["push", &name]).ok();
    // The layer blob is the largest blob the registry holds.
    let largest = largest_blob(&reg.dir.path().join("data/docker/registry/v2/blobs/sha256"));
    let data = std::fs::read(&largest).expect("read blob");
    let mut tampered = data.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0xff;
    std::fs::write(&largest, tampered).expect("tamper");
    let digest = format!(
        "sha256:{}",
        largest
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .expect("hex dir")
    );
    assert_eq!(reg.blob_data(&digest), largest);

    let clean = Root::new();
    wrun(&clean, &["pull", &name]).fails(
        1,
        &format!("pull {name}:latest: blob {digest}: content does not match its digest"),
    );
    no_images(&clean);
    // The layer was unpacked as it downloaded; with its blob refused, no
    // tree of it is in place either.
    let layers = clean.path().join("layers");
    let left: Vec<_> = std::fs::read_dir(&layers)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "unpacked layers left: {left:?}");
}

fn largest_blob(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    for prefix in std::fs::read_dir(dir).expect("ls").flatten() {
        for blob in std::fs::read_dir(prefix.path()).expect("ls").flatten() {
            let data = blob.path().join("data");
            let len = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
            if best.as_ref().is_none_or(|(l, _)| len > *l) {
                best = Some((len, data));
            }
        }
    }
    best.expect("a blob").1
}

#[test]
fn linux_image_is_refused_naming_its_platform() {
    let reg = Registry::start(false);
    let root = Root::new();
    push_linux_image(&reg, "me/linux", "v1");
    let name = format!("{}/me/linux:v1", reg.host());
    wrun(&root, &["pull", &name]).fails(1, &format!("pull {name}: the image is for linux/amd64"));
    no_images(&root);
}

#[test]
fn index_without_wasm_is_refused_naming_its_platforms() {
    let reg = Registry::start(false);
    let root = Root::new();
    let (digest, size) = push_linux_image(&reg, "me/multi", "linux");
    let entry = |arch: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{digest}","size":{size},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{},{}]}}"#,
        entry("amd64"),
        entry("arm64")
    );
    put_manifest(
        &reg,
        "me/multi",
        "latest",
        "application/vnd.oci.image.index.v1+json",
        index.as_bytes(),
    );
    let name = format!("{}/me/multi:latest", reg.host());
    wrun(&root, &["pull", &name]).fails(
        1,
        &format!("pull {name}: no wasm platform in the index (found linux/amd64, linux/arm64)"),
    );
    assert_eq!(image_count(&root), 0);
}
