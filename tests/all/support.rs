//! Shared fixtures: the `wrun` binary, a private state root per test, and
//! the sample build contexts.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `wrun` binary built beside this test binary.
pub fn wrun_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/all-<hash> -> target/<profile>/wrun
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(format!("wrun{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p wrun` (or `make e2e`)",
        bin.display()
    );
    bin
}

/// A sample's build context, checked to have been built.
pub fn sample(name: &str) -> PathBuf {
    let dir = repo().join("samples").join(name);
    let probe = match name {
        "busybox" => dir.join("wasip2/bin/busybox"),
        other => dir.join(format!("{other}.wasm")),
    };
    assert!(
        probe.exists(),
        "{} is missing: run `bash samples/build.sh` (or `make e2e`)",
        probe.display()
    );
    dir
}

/// A guest that traps (`unreachable`) as soon as it starts.
pub const TRAP_WAT: &str = r#"(module (memory (export "memory") 1)
  (func $boom unreachable)
  (func (export "_start") call $boom))"#;

/// A guest that grows its memory until something stops it.
pub const MEMORY_BOMB_WAT: &str = r#"(module (memory (export "memory") 1)
  (func (export "_start")
    (loop (drop (memory.grow (i32.const 16))) (br 0))))"#;

/// One test's private wrun state root.
pub struct Root {
    pub dir: tempfile::TempDir,
}

/// The result of one `wrun` invocation.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    fn from(out: Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts failure with `code` and a stderr containing `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
    }
}

/// A root's daemon (started on demand by the first container verb) is
/// stopped with the root, through `wrun daemon stop`: the daemon this test
/// started, and no other.
impl Drop for Root {
    fn drop(&mut self) {
        if self.path().join("wrun.sock").exists() {
            let _ = self.cmd(&["daemon", "stop"]).output();
        }
    }
}

impl Root {
    /// Kills this root's daemon with SIGKILL, by the PID in `daemon.lock` (the
    /// daemon this test started, and no other), and waits until it is gone.
    /// The PID of this root's daemon, from its lock file, checked against
    /// the process's command line.
    pub fn daemon_pid(&self) -> String {
        let lock = self.path().join("daemon.lock");
        let pid = std::fs::read_to_string(&lock).expect("daemon.lock");
        let pid = pid.trim().to_string();
        assert!(pid.parse::<u32>().is_ok(), "daemon.lock holds {pid:?}");
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            assert!(
                cmdline.contains("daemon") && cmdline.contains(&*self.path().to_string_lossy()),
                "PID {pid} is not this root's daemon: {cmdline}"
            );
        }
        pid
    }

    pub fn kill_daemon_hard(&self) {
        let lock = self.path().join("daemon.lock");
        let pid = self.daemon_pid();
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        // The OS releases the daemon's lock when the process is gone.
        poll("the killed daemon to release its lock", || {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&lock)
                .expect("open lock");
            f.try_lock().is_ok().then_some(())
        });
    }

    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The files staged under `<root>/tmp` (what a transfer, a build or an
    /// unpack writes before renaming it into place), but for the owning
    /// processes' lock files.
    pub fn staged_files(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(self.path().join("tmp"))
            .min_depth(1)
            .into_iter()
            .flatten()
            .filter(|e| !e.file_type().is_dir())
            .filter(|e| !(e.depth() == 1 && e.file_name().to_string_lossy().ends_with(".lock")))
            .map(|e| e.into_path())
            .collect()
    }

    /// Waits until a file is being written straight in a process's
    /// staging directory (`tmp/own-…/`), with bytes in it: a blob or a
    /// layer on its way into the store.
    pub fn wait_staged(&self) {
        let tmp = self.path().join("tmp");
        poll("a blob or a layer to be staged", || {
            self.staged_files()
                .iter()
                .any(|f| {
                    f.parent().and_then(|p| p.parent()) == Some(&tmp)
                        && std::fs::metadata(f).is_ok_and(|m| m.len() > 0)
                })
                .then_some(())
        });
    }

    /// Asserts that a process killed `after` its work began left files
    /// staged, then runs `wrun args` (which opens the state root, and so
    /// sweeps them) and asserts that nothing is left staged and every blob
    /// is whole. Returns what the command printed.
    #[track_caller]
    pub fn swept_after(&self, after: &str, args: &[&str]) -> Ran {
        assert!(
            !self.staged_files().is_empty(),
            "{after} left nothing staged, so the sweep proves nothing"
        );
        let ran = self.wrun(args);
        self.assert_nothing_staged(after);
        self.assert_blobs_whole(after);
        ran
    }

    #[track_caller]
    pub fn assert_nothing_staged(&self, after: &str) {
        assert_eq!(
            self.staged_files(),
            Vec::<PathBuf>::new(),
            "staged files outlived {after}"
        );
    }

    /// Asserts that every stored blob hashes to its name.
    #[track_caller]
    pub fn assert_blobs_whole(&self, after: &str) {
        use sha2::Digest as _;
        let blobs = self.path().join("blobs").join("sha256");
        for entry in std::fs::read_dir(&blobs).into_iter().flatten().flatten() {
            let bytes = std::fs::read(entry.path()).expect("blob");
            let hex = hex::encode(sha2::Sha256::digest(&bytes));
            assert_eq!(
                entry.file_name().to_string_lossy(),
                hex,
                "a blob that is not whole after {after}"
            );
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(wrun_bin());
        c.args(args)
            .env("WRUN_ROOT", self.path())
            .env_remove("WRUN_LOG")
            .env_remove("WRUN_HOST")
            .env_remove("WRUN_NO_START")
            .env_remove("SOURCE_DATE_EPOCH")
            .stdin(Stdio::null());
        c
    }

    pub fn wrun(&self, args: &[&str]) -> Ran {
        Ran::from(self.cmd(args).output().expect("spawn wrun"))
    }

    /// Runs `wrun args` with `input` on its stdin, then closed.
    pub fn wrun_with_input(&self, args: &[&str], input: impl AsRef<[u8]>) -> Ran {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wrun");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_ref()).expect("write stdin");
        drop(stdin);
        Ran::from(child.wait_with_output().expect("wait"))
    }

    /// Builds `busybox:latest` (WASIp2) into this root.
    pub fn busybox(&self) -> &Self {
        let ctx = sample("busybox");
        self.wrun(&["build", "-q", "-t", "busybox", ctx.to_str().expect("utf8")])
            .ok();
        self
    }

    /// Builds `kubia:latest` (a WASIp2 HTTP server on 0.0.0.0:8080 that
    /// answers `you've hit <HOSTNAME>`, on top of busybox) into this root.
    pub fn kubia(&self) -> &Self {
        // kubia is built FROM busybox, which must be in the store first.
        self.busybox();
        let ctx = sample("kubia");
        self.wrun(&["build", "-q", "-t", "kubia", ctx.to_str().expect("utf8")])
            .ok();
        self
    }

    /// Builds `kubia-http:latest` (kubia as a wasi:http component, served
    /// with an instance per request) into this root.
    pub fn kubia_http(&self) -> &Self {
        let ctx = sample("kubia-http");
        self.wrun(&[
            "build",
            "-q",
            "-t",
            "kubia-http",
            ctx.to_str().expect("utf8"),
        ])
        .ok();
        self
    }

    /// Builds `probes:latest` (the escape suite's guest, on top of
    /// busybox) into this root.
    pub fn probes(&self) -> &Self {
        self.busybox();
        let ctx = sample("probes");
        self.wrun(&["build", "-q", "-t", "probes", ctx.to_str().expect("utf8")])
            .ok();
        self
    }

    /// Builds `busybox:wasip1` (a core module) into this root.
    pub fn busybox_p1(&self) -> &Self {
        let ctx = sample("busybox");
        self.wrun(&[
            "build",
            "-q",
            "-t",
            "busybox:wasip1",
            "--build-arg",
            "TARGET=wasip1",
            ctx.to_str().expect("utf8"),
        ])
        .ok();
        self
    }

    /// Builds an image from a context made of `files` (path, bytes) plus a
    /// Dockerfile, returning the `wrun build` result.
    pub fn build_context(
        &self,
        tag: &str,
        dockerfile: &str,
        files: &[(&str, &[u8])],
    ) -> (tempfile::TempDir, Ran) {
        let ctx = tempfile::tempdir().expect("tempdir");
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        for (path, bytes) in files {
            let p = ctx.path().join(path);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("mkdir");
            }
            std::fs::write(p, bytes).expect("write");
        }
        let ran = self.wrun(&["build", "-t", tag, ctx.path().to_str().expect("utf8")]);
        (ctx, ran)
    }

    /// Builds an image holding one wasm module compiled from `wat`, as its
    /// entrypoint.
    pub fn wat_image(&self, tag: &str, wat: &str) {
        let wasm = wat::parse_str(wat).expect("valid wat");
        let (_ctx, ran) = self.build_context(
            tag,
            "FROM scratch\nCOPY prog.wasm /prog.wasm\nENTRYPOINT [\"/prog.wasm\"]\n",
            &[("prog.wasm", &wasm)],
        );
        ran.ok();
    }

    /// `wrun inspect NAME` of a container, checked to be a one-element
    /// JSON array; its element.
    #[track_caller]
    pub fn container(&self, name: &str) -> serde_json::Value {
        let r = self.wrun(&["inspect", name]);
        let v: serde_json::Value = serde_json::from_str(r.ok()).expect("inspect prints JSON");
        let items = v.as_array().expect("inspect prints an array");
        assert_eq!(items.len(), 1, "{v:#}");
        items[0].clone()
    }

    /// The image ID `wrun image inspect` reports for `name`.
    pub fn image_id(&self, name: &str) -> String {
        let v = self.inspect(name);
        v["Id"].as_str().expect("Id").to_string()
    }

    pub fn inspect(&self, name: &str) -> serde_json::Value {
        let out = self.wrun(&["image", "inspect", name]);
        let v: serde_json::Value = serde_json::from_str(out.ok()).expect("inspect JSON");
        v[0].clone()
    }
}

/// Runs a real OCI tool (skopeo, umoci), failing clearly when it is missing
/// or fails. `HOME` points at the temp dir so the user's settings stay out.
#[track_caller]
pub fn tool(name: &str, args: &[&str]) -> String {
    let out = Command::new(name)
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap_or_else(|e| panic!("{name} is needed for this test (apt-get install {name}): {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Builds with umoci, under `work`, a `FROM scratch` OCI layout holding the
/// WASIp1 busybox as `/busybox.wasm`, platform wasip1/wasm, whose command
/// prints "hi from umoci". Returns the umoci image reference (`LAYOUT:hello`).
pub fn umoci_busybox(work: &Path) -> String {
    let layout = work.join("layout");
    let bundle = work.join("bundle");
    let utf8 = |p: &Path| p.to_str().expect("utf8 path").to_string();
    let image = format!("{}:hello", layout.display());
    tool("umoci", &["init", "--layout", &utf8(&layout)]);
    tool("umoci", &["new", "--image", &image]);
    tool(
        "umoci",
        &["unpack", "--rootless", "--image", &image, &utf8(&bundle)],
    );
    std::fs::copy(
        sample("busybox").join("wasip1/bin/busybox"),
        bundle.join("rootfs/busybox.wasm"),
    )
    .expect("copy busybox.wasm into the bundle");
    tool("umoci", &["repack", "--image", &image, &utf8(&bundle)]);
    // busybox takes its applet from argv[1] when argv[0] is busybox.wasm.
    tool(
        "umoci",
        &[
            "config",
            "--image",
            &image,
            "--os",
            "wasip1",
            "--architecture",
            "wasm",
            "--config.entrypoint",
            "/busybox.wasm",
            "--config.entrypoint",
            "echo",
            "--config.cmd",
            "hi from umoci",
        ],
    );
    image
}

/// A TCP port on 127.0.0.1 that was free a moment ago: bound on port 0,
/// read and released, so that tests never use fixed host ports.
pub fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// One HTTP/1.1 `GET path` to 127.0.0.1:`port`: the status code and the
/// body. A connection closed without an answer (a published port whose
/// guest has not bound yet) is an error.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    // A guard against hangs, not a measure of speed.
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let raw = String::from_utf8_lossy(&raw);
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad(&format!("no complete answer: {raw:?}")))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad(&format!("bad status line: {head:?}")))?;
    Ok((status, body.to_string()))
}

/// GETs `/` from 127.0.0.1:`port` until it answers 200 OK, failing after
/// `within` (readiness, not speed: a published port closes connections
/// until its guest listens); the body.
#[track_caller]
pub fn http_get_ok(port: u16, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let last = match http_get(port, "/") {
            Ok((200, body)) => return body,
            other => other,
        };
        assert!(
            Instant::now() < deadline,
            "127.0.0.1:{port} did not answer 200 within {within:?}; last: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How long a poll may take before the test calls it a hang. It guards
/// against hangs only; nothing here measures speed with it.
pub const HANG: Duration = Duration::from_secs(60);

/// Calls `f` until it returns `Some`, failing after [`HANG`].
#[track_caller]
pub fn poll<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    poll_within(what, HANG, || f().ok_or_else(String::new))
}

/// Calls `f` until it returns `Ok`, failing after `limit` with `what` and
/// the last `Err` it gave: what it saw instead.
#[track_caller]
pub fn poll_within<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) if seen.is_empty() => {
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
            }
            Err(seen) => {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}: {seen}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One answer of the API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    /// The `message` of Docker's error body.
    #[track_caller]
    pub fn message(&self) -> String {
        self.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("no message in {:?}", self.body))
            .to_string()
    }
}

pub fn connect(root: &Root) -> UnixStream {
    let s = UnixStream::connect(root.path().join("wrun.sock")).expect("connect to the daemon");
    s.set_read_timeout(Some(HANG)).expect("timeout");
    s
}

/// Sends one raw HTTP/1.1 request over the root's socket and reads the
/// whole answer.
pub fn api(root: &Root, method: &str, path: &str, body: Option<&str>) -> Answer {
    send(
        root,
        method,
        path,
        "application/json",
        body.unwrap_or("").as_bytes(),
    )
}

/// As [`api`], with a binary body (a tar).
pub fn api_bytes(root: &Root, method: &str, path: &str, body: &[u8]) -> Answer {
    send(root, method, path, "application/x-tar", body)
}

fn send(root: &Root, method: &str, path: &str, content_type: &str, body: &[u8]) -> Answer {
    let mut s = connect(root);
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: wrun\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send request");
    s.write_all(body).expect("send body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {raw:?}"));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Answer { status, body }
}

/// Decodes a chunked transfer encoding.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = s.split_once("\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if n == 0 {
            return out;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
}
