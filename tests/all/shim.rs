//! The containerd shim, `containerd-shim-wrun-v1`, driven by a real
//! containerd 1.6 (Debian's, unpacked by `make target/tools/containerd`)
//! through `ctr`: images that `wrun save` wrote are imported and run, with
//! their output, exit codes, stdin, exec and kill.
//!
//! Each test starts its own containerd with root, state and sockets in a
//! temporary directory, and stops it (and the shims it started, found by
//! their `-address`) by PID when it ends. containerd needs root.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Ran, Root, poll_within, repo};

/// Where `make target/tools/containerd` unpacked Debian's containerd.
fn tools() -> PathBuf {
    let dir = repo().join("target/tools/containerd");
    assert!(
        dir.join("usr/bin/containerd").exists(),
        "{} is missing: run `make target/tools/containerd`",
        dir.display()
    );
    dir
}

/// The directory holding `containerd-shim-wrun-v1` (built beside `wrun`).
fn shim_dir() -> PathBuf {
    let wrun = crate::support::wrun_bin();
    let dir = wrun.parent().expect("target dir").to_path_buf();
    assert!(
        dir.join("containerd-shim-wrun-v1").exists(),
        "containerd-shim-wrun-v1 is missing: run `cargo build -p wrun-shim` (or `make e2e`)"
    );
    dir
}

/// One containerd, private to a test.
pub(crate) struct Containerd {
    child: Child,
    pub(crate) dir: tempfile::TempDir,
    path_env: String,
}

const NAMESPACE: &str = "wrun-test";

/// How long a task, an exec or a shim gets to reach the state a test waits
/// for.
const WAIT: Duration = Duration::from_secs(10);

impl Containerd {
    pub(crate) fn start() -> Self {
        assert!(
            rustix::process::geteuid().is_root(),
            "the shim's tests run containerd, which needs root"
        );
        // Under /tmp: the socket paths must stay short.
        let dir = tempfile::Builder::new()
            .prefix("ctrd")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let d = dir.path();
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "docker.io/library/busybox:latest"
    restrict_oom_score_adj = true
    disable_apparmor = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "native"
      default_runtime_name = "wrun"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.wrun]
        runtime_type = "io.containerd.wrun.v1"
    [plugins."io.containerd.grpc.v1.cri".cni]
      conf_dir = "{cni}"
  [plugins."io.containerd.internal.v1.opt"]
    path = "{opt}"
"#,
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
            cni = d.join("cni").display(),
            opt = d.join("opt").display(),
        );
        std::fs::write(d.join("config.toml"), config).expect("config");
        let tools = tools();
        let path_env = format!(
            "{}:{}:{}:{}",
            shim_dir().display(),
            tools.join("usr/bin").display(),
            tools.join("usr/sbin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = std::fs::File::create(d.join("containerd.log")).expect("log");
        let child = Command::new(tools.join("usr/bin/containerd"))
            .arg("--config")
            .arg(d.join("config.toml"))
            .env("PATH", &path_env)
            .env("WRUN_SHIM_CACHE_DIR", d.join("cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd");
        let c = Self {
            child,
            dir,
            path_env,
        };
        poll_within("containerd to start", Duration::from_secs(30), || {
            if c.ctr(&["version"]).status.success() {
                Ok(())
            } else {
                Err(c.log())
            }
        });
        c
    }

    /// Waits until `ctr task ls` shows task `id` in `status`.
    fn await_task(&self, id: &str, status: &str) {
        poll_within(&format!("task {id} to be {status}"), WAIT, || {
            let tasks = self.ran(&["task", "ls"]);
            if tasks
                .ok()
                .lines()
                .any(|l| l.starts_with(id) && l.contains(status))
            {
                Ok(())
            } else {
                Err(tasks.stdout)
            }
        });
    }

    /// Waits until no shim this containerd started is left.
    pub(crate) fn await_no_shims(&self) {
        poll_within("the shims to end", WAIT, || {
            if self.shims().is_empty() {
                Ok(())
            } else {
                Err(self.log())
            }
        });
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    pub(crate) fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(tools().join("usr/bin/ctr"));
        c.arg("--address")
            .arg(self.socket())
            .arg("--namespace")
            .arg(NAMESPACE)
            .args(args)
            .env("PATH", &self.path_env)
            .stdin(Stdio::null());
        c
    }

    pub(crate) fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().expect("run ctr")
    }

    pub(crate) fn ran(&self, args: &[&str]) -> Ran {
        let out = self.ctr(args);
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Imports an archive `wrun save` wrote into containerd namespace `ns`
    /// (CRI's is `k8s.io`).
    pub(crate) fn import_into(&self, ns: &str, archive: &Path) {
        let out = Command::new(tools().join("usr/bin/ctr"))
            .arg("--address")
            .arg(self.socket())
            .args([
                "--namespace",
                ns,
                "images",
                "import",
                "--snapshotter",
                "native",
            ])
            .arg(archive)
            .env("PATH", &self.path_env)
            .output()
            .expect("run ctr");
        assert!(
            out.status.success(),
            "import into {ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Imports an archive `wrun save` wrote.
    pub(crate) fn import(&self, archive: &Path) {
        let out = self.ran(&[
            "images",
            "import",
            "--snapshotter",
            "native",
            archive.to_str().expect("utf8"),
        ]);
        out.ok();
    }

    /// `ctr run` with the wrun runtime; `extra` goes before the image.
    pub(crate) fn run(&self, extra: &[&str], image: &str, id: &str, cmd: &[&str]) -> Ran {
        let mut args = vec![
            "run",
            "--snapshotter",
            "native",
            "--runtime",
            "io.containerd.wrun.v1",
        ];
        args.extend(extra);
        args.push(image);
        args.push(id);
        args.extend(cmd);
        self.ran(&args)
    }

    /// The shims this containerd started: every process whose command
    /// line names this containerd's socket.
    pub(crate) fn shims(&self) -> Vec<u32> {
        let needle = self.socket().display().to_string();
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if pid == self.child.id() {
                continue;
            }
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains("containerd-shim-wrun-v1") && cmdline.contains(&needle) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // The shims outlive containerd and ignore SIGTERM: SIGKILL them,
        // then containerd, all by the PIDs this test started.
        for pid in self.shims() {
            let socket = std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .and_then(|c| {
                    c.split('\0')
                        .find_map(|a| a.strip_prefix("unix://").map(str::to_string))
                });
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            if let Some(s) = socket {
                let _ = std::fs::remove_file(s);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Whatever is still mounted below the test's directory.
        if let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") {
            let base = self.dir.path().display().to_string();
            let mut points: Vec<&str> = mounts
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter(|p| p.starts_with(&base))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = Command::new("umount").arg("-l").arg(p).status();
            }
        }
    }
}

/// busybox built and saved by wrun, as an archive containerd imports.
fn saved_busybox(root: &Root) -> PathBuf {
    root.busybox();
    let archive = root.path().join("busybox.tar");
    root.wrun(&["save", "-o", archive.to_str().expect("utf8"), "busybox"])
        .ok();
    archive
}

const BUSYBOX: &str = "docker.io/library/busybox:latest";

#[test]
fn ctr_runs_wrun_images_through_the_shim() {
    let root = Root::new();
    let archive = saved_busybox(&root);
    let c = Containerd::start();
    c.import(&archive);

    // Output, and the guest's exit code as ctr's.
    let out = c.run(&["--rm"], BUSYBOX, "t1", &["echo", "hi from the shim"]);
    assert_eq!(out.ok(), "hi from the shim\n", "{}", c.log());
    let out = c.run(
        &["--rm"],
        BUSYBOX,
        "t2",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.stdout, "out\n");
    assert!(out.stderr.contains("err\n"), "{out:?}");

    // stdin, without a terminal (ctr run always passes its own).
    let mut child = c
        .ctr_cmd(&[
            "run",
            "--rm",
            "--snapshotter",
            "native",
            "--runtime",
            "io.containerd.wrun.v1",
            BUSYBOX,
            "t3",
            "wc",
            "-l",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"one\ntwo\nthree\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "3\n");

    // A program that is not there: a clear error through containerd.
    let out = c.run(&["--rm"], BUSYBOX, "t4", &["no-such-program"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("no-such-program") && out.stderr.contains("not found"),
        "{out:?}"
    );
    assert!(
        c.shims().is_empty(),
        "a shim stayed behind: {:?}",
        c.shims()
    );
}

#[test]
fn ctr_task_exec_ps_kill_and_delete() {
    let root = Root::new();
    let archive = saved_busybox(&root);
    let c = Containerd::start();
    c.import(&archive);
    c.run(&["-d"], BUSYBOX, "sleeper", &["sleep", "300"]).ok();
    c.await_task("sleeper", "RUNNING");

    // exec: a second guest in the same container, which sees only the
    // container's own guests.
    let ps = c.ran(&["task", "exec", "--exec-id", "e1", "sleeper", "ps", "aux"]);
    let text = ps.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[1].ends_with("sleep 300"), "{text}");
    assert!(lines[2].ends_with("ps aux"), "{text}");
    let code = c.ran(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        "sleeper",
        "sh",
        "-c",
        "exit 5",
    ]);
    assert_eq!(code.code, 5, "{code:?}");

    // ctr task ps lists the guests by their PIDs in the container.
    let tps = c.ran(&["task", "ps", "sleeper"]);
    let text = tps.ok();
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("1 ")),
        "{text}"
    );

    // Bad input: an exec of nothing there, an unknown exec ID.
    let missing = c.ran(&["task", "exec", "--exec-id", "e3", "sleeper", "bash"]);
    assert_ne!(missing.code, 0, "{missing:?}");
    assert!(missing.stderr.contains("bash"), "{missing:?}");
    let unknown = c.ran(&["task", "delete", "--exec-id", "nope", "sleeper"]);
    assert_ne!(unknown.code, 0, "{unknown:?}");
    assert!(unknown.stderr.contains("nope"), "{unknown:?}");

    // kill, then delete.
    c.ran(&["task", "kill", "-s", "SIGKILL", "sleeper"]).ok();
    c.await_task("sleeper", "STOPPED");
    c.ran(&["task", "delete", "sleeper"]).ok();
    c.ran(&["container", "delete", "sleeper"]).ok();
    c.await_no_shims();
}

/// A guest that traps ends with 134 and the trap on its stderr; one that
/// outgrows the OCI spec's memory limit (`ctr run --memory-limit`) ends
/// with 137 and says so.
#[test]
fn traps_and_memory_limits_end_as_they_should() {
    let root = Root::new();
    root.wat_image("trap", crate::support::TRAP_WAT);
    root.wat_image("bomb", crate::support::MEMORY_BOMB_WAT);
    let archive = root.path().join("wasm.tar");
    root.wrun(&[
        "save",
        "-o",
        archive.to_str().expect("utf8"),
        "trap",
        "bomb",
    ])
    .ok();
    let c = Containerd::start();
    c.import(&archive);
    let trap = c.run(&["--rm"], "docker.io/library/trap:latest", "trap1", &[]);
    assert_eq!(trap.code, 134, "{trap:?}");
    assert!(trap.stderr.contains("unreachable"), "{trap:?}");
    let bomb = c.run(
        &["--rm", "--memory-limit", "33554432"],
        "docker.io/library/bomb:latest",
        "bomb1",
        &[],
    );
    assert_eq!(bomb.code, 137, "{bomb:?}");
    assert!(bomb.stderr.contains("out of memory"), "{bomb:?}");
    assert!(
        bomb.stderr.contains("33554432"),
        "names the limit: {bomb:?}"
    );
}

/// A network namespace made for the test (`ip netns add`), deleted when
/// dropped.
struct Netns(String);

impl Netns {
    fn new() -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("wrun-test-{}-{n}", std::process::id());
        let ip = |args: &[&str]| {
            let st = Command::new("ip")
                .args(args)
                .status()
                .expect("ip (iproute2)");
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Self(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// The guests' sockets are in the network namespace the spec names (a
/// pod's, made by CNI; here one the test makes and hands over with
/// `--with-ns`): the shim serving them lives in it, a listener there is
/// reached from the same container and not from the host.
#[test]
fn guests_use_the_network_namespace_the_spec_names() {
    use std::os::unix::fs::MetadataExt as _;
    let root = Root::new();
    let archive = saved_busybox(&root);
    let c = Containerd::start();
    c.import(&archive);
    let ns = Netns::new();
    let port = crate::support::free_port().to_string();
    c.run(
        &["-d", "--with-ns", &format!("network:{}", ns.path())],
        BUSYBOX,
        "listener",
        &["nc", "-l", "-p", &port],
    )
    .ok();
    let shims = c.shims();
    assert_eq!(shims.len(), 1, "{shims:?}");
    let inode = |p: &str| std::fs::metadata(p).expect(p).ino();
    assert_eq!(
        inode(&format!("/proc/{}/ns/net", shims[0])),
        inode(&ns.path()),
        "the shim serves from the spec's namespace"
    );
    // The host's loopback has nothing there...
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().expect("port"))).is_err(),
        "the listener leaked into the host's namespace"
    );
    // ...the namespace's has the listener.
    let mut attempt = 0;
    poll_within("the listener to answer in its namespace", WAIT, || {
        attempt += 1;
        let sent = c.ran(&[
            "task",
            "exec",
            "--exec-id",
            &format!("send-{attempt}"),
            "listener",
            "sh",
            "-c",
            &format!("echo hello | nc 127.0.0.1 {port}"),
        ]);
        if sent.code == 0 {
            Ok(())
        } else {
            Err(format!("{sent:?}"))
        }
    });
    let _ = c.ran(&["task", "kill", "-s", "SIGKILL", "listener"]);
}

/// Bad input through containerd: a program that is not wasm, a rootfs
/// that is not there. Each is a clear error, and no shim stays behind.
#[test]
fn bad_specs_are_clear_errors() {
    let root = Root::new();
    let archive = saved_busybox(&root);
    let c = Containerd::start();
    c.import(&archive);
    let text = c.run(&["--rm"], BUSYBOX, "t1", &["/etc/passwd"]);
    assert_ne!(text.code, 0, "{text:?}");
    assert!(
        text.stderr.contains("/etc/passwd") && text.stderr.contains("WebAssembly"),
        "{text:?}"
    );
    let missing = c.dir.path().join("no-such-rootfs");
    let out = c.ran(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.wrun.v1",
        "--rootfs",
        missing.to_str().expect("utf8"),
        "t2",
        "/app.wasm",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("no-such-rootfs") && out.stderr.contains("missing"),
        "{out:?}"
    );
    c.await_no_shims();
}

/// `ctr run -t` under util-linux's `script`, which gives ctr a terminal;
/// `keys` are typed once the task runs. Returns the exit status and what
/// the terminal showed, with each line's end as `\n` (ctr's raw mode keeps
/// the terminal's own LF to CR LF, so the shim's CR LF shows as CR CR LF;
/// `tty::Onlcr`'s unit test covers that half).
fn at_a_terminal(
    c: &Containerd,
    id: &str,
    argv: &str,
    keys: &[u8],
) -> (std::process::ExitStatus, String) {
    let ctr = format!(
        "{} --address {} --namespace {NAMESPACE} run --rm -t --snapshotter native --runtime io.containerd.wrun.v1 {BUSYBOX} {id} {argv}",
        tools().join("usr/bin/ctr").display(),
        c.socket().display()
    );
    // `timeout`: a guest that never saw its input would wait forever.
    let mut child = Command::new("timeout")
        .args(["60", "script", "-qec", &ctr, "/dev/null"])
        .env("PATH", &c.path_env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    // ctr puts its terminal in raw mode before it starts the task: typed
    // now, the keys reach the shim as they are.
    c.await_task(id, "RUNNING");
    let mut keyboard = child.stdin.take().expect("stdin");
    keyboard.write_all(keys).expect("type");
    let out = child.wait_with_output().expect("wait");
    drop(keyboard);
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    (out.status, text)
}

/// `ctr run -t`: the guest has no pty, so the shim is the terminal's far
/// end: it echoes what is typed (ctr's raw mode does not), hands the guest
/// a line at Enter (CR), and ^C interrupts the guest.
#[test]
fn a_terminal_run_reads_stdin() {
    let root = Root::new();
    let archive = saved_busybox(&root);
    let c = Containerd::start();
    c.import(&archive);

    let (status, text) = at_a_terminal(&c, "tty1", "head -n 1", b"typed at a terminal\r");
    assert!(status.success(), "{status}: {text:?}");
    // The echo, then the guest's copy of the line: once each.
    assert_eq!(text, "typed at a terminal\ntyped at a terminal\n");

    // ^C: the guest ends as interrupted, 128 + SIGINT.
    let (status, text) = at_a_terminal(&c, "tty2", "cat", b"half a line\x03");
    assert_eq!(status.code(), Some(130), "{text:?}");
    assert!(text.contains("half a line^C"), "{text:?}");
    c.await_no_shims();
}

/// Single files bound into a container, as the kubelet binds `/etc/hosts`
/// and a ConfigMap key's `subPath`: no preopen can hold one, so the shim
/// mounts it onto the rootfs. The guest reads it; a read-only one refuses
/// writes; a writable one takes them, into the host's file; a place that
/// is a symlink in the image is refused; nothing stays mounted.
#[test]
fn single_files_are_bind_mounted() {
    let root = Root::new();
    let archive = saved_busybox(&root);
    let c = Containerd::start();
    c.import(&archive);
    let host = c.dir.path().join("files");
    std::fs::create_dir_all(&host).expect("mkdir");
    let greeting = host.join("greeting");
    std::fs::write(&greeting, "hello from the host\n").expect("write");
    let note = host.join("note");
    std::fs::write(&note, "before\n").expect("write");
    let bind = |src: &Path, dst: &str, mode: &str| {
        format!(
            "type=bind,src={},dst={dst},options=rbind:{mode}",
            src.display()
        )
    };

    let ro = bind(&greeting, "/etc/greeting", "ro");
    let out = c.run(
        &["--rm", "--mount", &ro],
        BUSYBOX,
        "f1",
        &["cat", "/etc/greeting"],
    );
    assert_eq!(out.ok(), "hello from the host\n", "{}", c.log());
    let out = c.run(
        &["--rm", "--mount", &ro],
        BUSYBOX,
        "f2",
        &["sh", "-c", "echo changed > /etc/greeting"],
    );
    assert_ne!(out.code, 0, "a read-only file took a write: {out:?}");
    assert_eq!(
        std::fs::read_to_string(&greeting).expect("read"),
        "hello from the host\n"
    );

    // Writable, in a directory the image lacks.
    let rw = bind(&note, "/data/new/note", "rw");
    let out = c.run(
        &["--rm", "--mount", &rw],
        BUSYBOX,
        "f3",
        &[
            "sh",
            "-c",
            "cat /data/new/note; echo after > /data/new/note",
        ],
    );
    assert_eq!(out.ok(), "before\n", "{}", c.log());
    assert_eq!(std::fs::read_to_string(&note).expect("read"), "after\n");

    // A symlink at the destination could point anywhere on the host.
    let rootfs = image_rootfs(&archive, &c.dir.path().join("image"));
    let outside = host.join("outside");
    std::fs::write(&outside, "not the guest's\n").expect("write");
    std::os::unix::fs::symlink(&outside, rootfs.join("etc/link")).expect("symlink");
    let out = c.ctr(&[
        "run",
        "--rm",
        "--runtime",
        "io.containerd.wrun.v1",
        "--mount",
        &bind(&greeting, "/etc/link", "ro"),
        "--rootfs",
        &rootfs.display().to_string(),
        "f4",
        "cat",
        "/etc/link",
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("/etc/link") && said.contains("symlink"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&outside).expect("read"),
        "not the guest's\n"
    );

    c.await_no_shims();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let here = c.dir.path().display().to_string();
    assert!(
        !mounts.lines().any(|l| l.contains(&here)),
        "left mounted: {mounts}"
    );
}

/// Unpacks the image in the OCI archive `archive` (as `wrun save` writes
/// it) under `into`: the layout, then its layers in order into
/// `into/rootfs`, which it returns.
fn image_rootfs(archive: &Path, into: &Path) -> PathBuf {
    let untar = |tar: &Path, dir: &Path| {
        std::fs::create_dir_all(dir).expect("mkdir");
        let out = Command::new("tar")
            .arg("-xf")
            .arg(tar)
            .arg("-C")
            .arg(dir)
            .output()
            .expect("tar");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let layout = into.join("layout");
    untar(archive, &layout);
    let blob = |digest: &str| layout.join("blobs").join(digest.replacen(':', "/", 1));
    let json = |path: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json")
    };
    let index = json(layout.join("index.json"));
    let manifest = json(blob(
        index["manifests"][0]["digest"]
            .as_str()
            .expect("manifest digest"),
    ));
    let rootfs = into.join("rootfs");
    for layer in manifest["layers"].as_array().expect("layers") {
        untar(
            &blob(layer["digest"].as_str().expect("layer digest")),
            &rootfs,
        );
    }
    rootfs
}
