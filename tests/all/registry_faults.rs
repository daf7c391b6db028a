//! A real registry (docker-registry 2.8) behind a proxy that breaks what
//! it forwards, as networks and misbehaving registries do: a blob cut off
//! midway, a Content-Length that lies either way, and blobs redirected to
//! another host (as registries send them to object storage). A pull
//! through a fault fails with a clear error and leaves nothing behind; a
//! rerun without the fault completes; credentials never follow a redirect
//! to another host. And pulls and pushes killed midway: nothing shows half
//! done, what the killed process staged is swept, and a rerun completes.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::registry::{PASSWORD, Registry, USER, busybox_for, http, wrun};
use crate::support::Root;

/// What the proxy does to a blob's GET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Forwarded as it came.
    None,
    /// Half the body, then the connection is closed.
    Cut,
    /// A Content-Length 1000 bytes longer than the body, then closed.
    LongLength,
    /// A Content-Length 7 bytes shorter, and only that many bytes.
    ShortLength,
    /// A 307 to the blob host at this port.
    Redirect(u16),
    /// Half the body, then nothing more until the proxy goes: a transfer
    /// in progress, for as long as the test needs one.
    Stall,
    /// A blob's upload (its PUT or PATCH) taken in whole, and then no
    /// answer until the proxy goes: a push in progress.
    StallUpload,
}

/// An HTTP message's head (up to the blank line) and its body length.
struct Head {
    text: String,
    length: Option<usize>,
}

/// Reads one message head from `s`.
fn read_head(s: &mut TcpStream) -> Option<Head> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => raw.push(byte[0]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let length = text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse().ok())
            .flatten()
    });
    Some(Head { text, length })
}

/// The head with `name` set to `value` (replaced, or added).
fn with_header(head: &str, name: &str, value: &str) -> String {
    let mut lines: Vec<String> = head
        .trim_end_matches("\r\n\r\n")
        .split("\r\n")
        .filter(|l| {
            l.split_once(':')
                .is_none_or(|(k, _)| !k.eq_ignore_ascii_case(name))
        })
        .map(str::to_string)
        .collect();
    lines.push(format!("{name}: {value}"));
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

/// A proxy in front of the registry, one request per connection: the
/// fault applies to blobs of at least the given size (0: every blob, the
/// config first; more: the layers only).
struct Proxy {
    port: u16,
    fault: Arc<Mutex<(Fault, usize)>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let fault = Arc::new(Mutex::new((Fault::None, 0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, halt) = (fault.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let f = f.clone();
                        std::thread::spawn(move || serve(client, upstream, &f));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Self { port, fault, stop }
    }

    fn set(&self, fault: Fault, min_size: usize) {
        *self.fault.lock().expect("fault") = (fault, min_size);
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Transfers the `Stall` fault holds open now, in every proxy of the test
/// binary (each test waits for its own to grow).
static STALLED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Forwards one request to the registry and its answer back, with the
/// fault applied to a blob's GET.
fn serve(mut client: TcpStream, upstream: u16, fault: &Mutex<(Fault, usize)>) {
    let _ = client.set_nonblocking(false);
    let Some(req) = read_head(&mut client) else {
        return;
    };
    let mut body = vec![0u8; req.length.unwrap_or(0)];
    if client.read_exact(&mut body).is_err() {
        return;
    }
    let request_line = req.text.lines().next().unwrap_or_default().to_string();
    let is_get = request_line.starts_with("GET ");
    let is_blob = request_line.contains("/blobs/sha256:");
    let (fault, min_size) = *fault.lock().expect("fault");
    let is_upload = (request_line.starts_with("PUT ") || request_line.starts_with("PATCH "))
        && request_line.contains("/blobs/uploads/");
    if fault == Fault::StallUpload && is_upload && body.len() >= min_size.max(1) {
        STALLED.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(120));
        return;
    }
    if let (true, true, Fault::Redirect(port)) = (is_get, is_blob, fault) {
        let digest = request_line
            .split("/blobs/")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default();
        let _ = client.write_all(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:{port}/storage/{digest}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        return;
    }
    let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let head = with_header(&req.text, "Connection", "close");
    if up.write_all(head.as_bytes()).is_err() || up.write_all(&body).is_err() {
        return;
    }
    let Some(resp) = read_head(&mut up) else {
        return;
    };
    let mut answer = Vec::new();
    if !request_line.starts_with("HEAD ") {
        let _ = up.read_to_end(&mut answer);
    }
    let head = with_header(&resp.text, "Connection", "close");
    let ok = resp.text.starts_with("HTTP/1.1 200") && answer.len() >= min_size;
    let (head, answer): (String, &[u8]) = match fault {
        Fault::Cut if is_get && is_blob && ok => (head, &answer[..answer.len() / 2]),
        Fault::LongLength if is_get && is_blob && ok => (
            with_header(&head, "Content-Length", &(answer.len() + 1000).to_string()),
            &answer[..],
        ),
        Fault::ShortLength if is_get && is_blob && ok => {
            let n = answer.len().saturating_sub(7);
            (
                with_header(&head, "Content-Length", &n.to_string()),
                &answer[..n],
            )
        }
        Fault::Stall if is_get && is_blob && ok => {
            let _ = client.write_all(head.as_bytes());
            let _ = client.write_all(&answer[..answer.len() / 2]);
            STALLED.fetch_add(1, Ordering::SeqCst);
            // Held open (and silent) for long enough; the test ends it.
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        _ => (head, &answer[..]),
    };
    let _ = client.write_all(head.as_bytes());
    let _ = client.write_all(answer);
    let _ = client.shutdown(Shutdown::Both);
}

/// Where a redirected blob is served from: another host (another port),
/// reading the registry's own storage, and recording each request's head.
struct BlobHost {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl BlobHost {
    fn start(storage: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, halt) = (heads.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let Some(req) = read_head(&mut s) else {
                    continue;
                };
                seen.lock().expect("heads").push(req.text.clone());
                let digest = req
                    .text
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.strip_prefix("/storage/sha256:"))
                    .unwrap_or_default()
                    .to_string();
                let file = storage
                    .join(&digest[..digest.len().min(2)])
                    .join(&digest)
                    .join("data");
                let answer = match std::fs::read(&file) {
                    Ok(bytes) => {
                        let mut a = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            bytes.len()
                        )
                        .into_bytes();
                        a.extend_from_slice(&bytes);
                        a
                    }
                    Err(_) => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = s.write_all(&answer);
            }
        });
        Self { port, heads, stop }
    }
}

impl Drop for BlobHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What the root's stores hold: blobs, and unpacked layers.
fn stored(root: &Root) -> usize {
    let count = |dir: PathBuf| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    count(root.path().join("blobs").join("sha256")) + count(root.path().join("layers"))
}

#[test]
fn a_broken_blob_fails_the_pull_clearly_and_leaves_nothing() {
    let reg = Registry::start(false);
    let proxy = Proxy::start(reg.port);
    let root = Root::new();
    let (name, _) = busybox_for(&root, &reg);
    wrun(&root, &["push", &name]).ok();
    let through = format!("{}/me/busybox", proxy.host());

    // Pulled into a fresh root, through each fault in turn: on the config
    // (the first blob), then on the layers.
    let fresh = Root::new();
    let faults = [Fault::Cut, Fault::LongLength, Fault::ShortLength];
    for (min_size, fault) in [0, 64 * 1024]
        .into_iter()
        .flat_map(|m| faults.iter().map(move |f| (m, *f)))
    {
        // The config is read whole, then checked: a short one is a
        // mismatch. A layer streams: fewer bytes than the manifest says
        // is a transfer that broke off.
        let says = match (fault, min_size) {
            (Fault::ShortLength, 0) => "does not match its digest",
            _ => "broke off",
        };
        proxy.set(fault, min_size);
        let ran = wrun(&fresh, &["pull", &through]);
        assert_ne!(ran.code, 0, "{fault:?} went unnoticed: {ran:?}");
        assert!(
            ran.stderr.contains("blob sha256:") && ran.stderr.contains(says),
            "{fault:?} on blobs of {min_size}+ bytes: the error names the blob and what broke: {}",
            ran.stderr
        );
        let images = wrun(&fresh, &["images", "-q"]);
        assert_eq!(images.ok().trim(), "", "{fault:?} left an image");
        assert_eq!(stored(&fresh), 0, "{fault:?} left a blob or a layer");
    }
    // Without the fault, the same pull completes and runs.
    proxy.set(Fault::None, 0);
    wrun(&fresh, &["pull", &through]).ok();
    let ran = wrun(&fresh, &["run", "--rm", &through, "echo", "whole"]);
    assert_eq!(ran.ok().trim(), "whole");
}

#[test]
fn credentials_do_not_follow_a_redirect_to_another_host() {
    let reg = Registry::start(true);
    let proxy = Proxy::start(reg.port);
    let blobs = BlobHost::start(reg.dir.path().join("data/docker/registry/v2/blobs/sha256"));
    let login = |root: &Root, host: &str| {
        wrun(root, &["login", "-u", USER, "-p", PASSWORD, host]).ok();
    };
    let pusher = Root::new();
    let (name, _) = busybox_for(&pusher, &reg);
    login(&pusher, &reg.host());
    wrun(&pusher, &["push", &name]).ok();

    // Into a fresh root, through the proxy, which sends every blob to the
    // blob host.
    let root = Root::new();
    login(&root, &proxy.host());
    proxy.set(Fault::Redirect(blobs.port), 0);
    let through = format!("{}/me/busybox", proxy.host());
    wrun(&root, &["pull", &through]).ok();
    let heads = blobs.heads.lock().expect("heads").clone();
    assert!(
        heads.len() >= 2,
        "the config and the layers came from the blob host: {heads:?}"
    );
    for h in &heads {
        assert!(
            !h.to_ascii_lowercase().contains("authorization"),
            "credentials went to another host:\n{h}"
        );
    }
    let ran = wrun(&root, &["run", "--rm", &through, "echo", "redirected"]);
    assert_eq!(ran.ok().trim(), "redirected");
}

/// Asserts that a killed process left its transfer staged, and that the
/// next command, opening the state root, deletes it: no image shows in
/// `root`, every stored blob is whole, and nothing is left staged.
fn nothing_half_pulled(root: &Root, after: &str) {
    let images = root.swept_after(after, &["images", "-q"]);
    assert_eq!(images.ok().trim(), "", "a half-pulled image after {after}");
}

/// Waits until a `Stall` transfer more than `before` is being held.
fn wait_stalled(before: usize) {
    crate::support::poll("a layer's transfer to stall", || {
        (STALLED.load(Ordering::SeqCst) > before).then_some(())
    });
}

/// Runs `wrun args` (a pull or a push, which wrun does in its own
/// process) and kills it with SIGKILL once the proxy holds one of its
/// transfers and, if `staged`, once the bytes that came before the stall
/// are in a staged file (the proxy's count goes up as soon as it has
/// sent them, which can be before wrun has read them).
fn kill_when_stalled(root: &Root, args: &[&str], staged: bool) {
    let before = STALLED.load(Ordering::SeqCst);
    let mut child = root
        .cmd(args)
        .env("DOCKER_CONFIG", root.path().join("no-docker-config"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("wrun");
    wait_stalled(before);
    if staged {
        root.wait_staged();
    }
    child.kill().expect("kill wrun");
    let _ = child.wait();
}

#[test]
fn a_pull_killed_midway_leaves_nothing_and_the_rerun_completes() {
    let reg = Registry::start(false);
    let proxy = Proxy::start(reg.port);
    let pusher = Root::new();
    let (name, _) = busybox_for(&pusher, &reg);
    wrun(&pusher, &["push", &name]).ok();
    let through = format!("{}/me/busybox", proxy.host());
    let root = Root::new();
    wrun(&root, &["images"]).ok();
    proxy.set(Fault::Stall, 64 * 1024);

    // `wrun pull` does the pull itself: SIGKILL to it while a layer's
    // transfer hangs halfway.
    kill_when_stalled(&root, &["pull", &through], true);
    nothing_half_pulled(&root, "a killed wrun pull");

    // `docker pull` asks the daemon: kill -9 of the daemon while its
    // transfer hangs.
    let before = STALLED.load(Ordering::SeqCst);
    let mut api = std::os::unix::net::UnixStream::connect(root.path().join("wrun.sock"))
        .expect("the daemon's socket");
    api.write_all(
        format!(
            "POST /images/create?fromImage={through}&tag=latest HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("POST /images/create");
    wait_stalled(before);
    root.wait_staged();
    root.kill_daemon_hard();
    drop(api);
    nothing_half_pulled(&root, "a daemon killed mid-pull");

    // The rerun completes, through the daemon (the real docker CLI), and
    // its image runs.
    proxy.set(Fault::None, 0);
    let pulled = crate::docker_cli::docker(&root, &["pull", &through]);
    assert!(
        pulled.ok().contains("Downloaded newer image"),
        "{}",
        pulled.stdout
    );
    let ran = wrun(&root, &["run", "--rm", &through, "echo", "whole"]);
    assert_eq!(ran.ok().trim(), "whole");
}

/// Whether the registry at `port` lists the tag `latest` in `repo`.
fn tagged(port: u16, repo: &str) -> bool {
    let (status, answer) =
        http(port, "GET", &format!("/v2/{repo}/tags/list"), "", &[]).expect("registry");
    status == 200 && answer.contains("\"latest\"")
}

/// Asserts that the registry at `port` shows no `repo:latest`.
fn nothing_half_pushed(port: u16, repo: &str, after: &str) {
    assert!(!tagged(port, repo), "{repo}:latest shows after {after}");
}

#[test]
fn a_push_killed_midway_shows_nothing_and_the_rerun_completes() {
    let reg = Registry::start(false);
    let proxy = Proxy::start(reg.port);
    let root = Root::new();
    root.busybox();
    let through = format!("{}/me/heavy", proxy.host());
    wrun(&root, &["tag", "busybox", &through]).ok();
    proxy.set(Fault::StallUpload, 64 * 1024);

    // `wrun push` pushes in its own process: SIGKILL to it while a
    // layer's upload waits for its answer.
    kill_when_stalled(&root, &["push", &through], false);
    nothing_half_pushed(reg.port, "me/heavy", "a killed wrun push");

    // `docker push` asks the daemon: kill -9 of the daemon meanwhile.
    wrun(&root, &["ps"]).ok();
    let config = tempfile::tempdir().expect("tempdir");
    let before = STALLED.load(Ordering::SeqCst);
    let mut docker = crate::docker_cli::docker_cmd(&root, config.path(), &["push", &through])
        .spawn()
        .expect("docker push");
    wait_stalled(before);
    root.kill_daemon_hard();
    let _ = docker.kill();
    let _ = docker.wait();
    nothing_half_pushed(reg.port, "me/heavy", "a daemon killed mid-push");
    assert_eq!(
        wrun(&root, &["images", "--format", "{{.Repository}}"])
            .ok()
            .lines()
            .filter(|l| l.ends_with("/me/heavy"))
            .count(),
        1,
        "the pushed image is still there, once"
    );
    root.assert_blobs_whole("a daemon killed mid-push");

    // The rerun completes, through the daemon (the real docker CLI), and
    // another root pulls and runs what it pushed.
    proxy.set(Fault::None, 0);
    let pushed = crate::docker_cli::docker(&root, &["push", &through]);
    assert!(pushed.ok().contains("digest: sha256:"), "{}", pushed.stdout);
    // The control: the check above does see a pushed manifest.
    assert!(tagged(reg.port, "me/heavy"), "the tag, once pushed");
    let other = Root::new();
    let ran = wrun(&other, &["run", "--rm", &through, "echo", "whole"]);
    assert_eq!(ran.ok().trim(), "whole");
}
