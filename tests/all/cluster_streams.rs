//! The streaming pod subresources against the real kubectl: `exec` (over
//! WebSocket with 1.32, over SPDY with the pinned 1.28), `run -i --rm`
//! (attach), `exec -it` in a terminal, and `port-forward` (SPDY tunnelled
//! through WebSocket with 1.32, upgraded SPDY with 1.28). Everything dials
//! 127.0.0.1 only; the only processes stopped are the ones started here.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::support::{HANG, http_get};

/// The real kubectl on PATH (1.32), or a pinned one beside it.
fn kubectl_bin(version: Option<&str>) -> PathBuf {
    let Some(v) = version else {
        return PathBuf::from("kubectl");
    };
    let real = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("find kubectl");
    let real = PathBuf::from(String::from_utf8_lossy(&real.stdout).trim());
    real.parent()
        .expect("kubectl's folder")
        .join(format!("kubectl.{v}"))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "kubectl failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    #[track_caller]
    fn exits(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "kubectl's exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A kubectl command for this cluster.
fn command(c: &Cluster, version: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(kubectl_bin(version));
    cmd.arg("--cache-dir")
        .arg(c.root.path().join("kube").join("cache"))
        .args(args)
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.root.path());
    cmd
}

/// Runs kubectl with `input` on its stdin, within the hang guard.
fn kubectl_in(c: &Cluster, version: Option<&str>, args: &[&str], input: &[u8]) -> Run {
    let mut child = command(c, version, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from a thread, so a large input cannot block on a full pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = wait_output(child, &format!("kubectl {}", args.join(" ")));
    let _ = writer.join();
    out
}

fn kubectl(c: &Cluster, version: Option<&str>, args: &[&str]) -> Run {
    kubectl_in(c, version, args, b"")
}

/// Waits for a child within the hang guard, reading its output as it
/// comes; kills it (by its own handle) if it hangs.
fn wait_output(mut child: Child, what: &str) -> Run {
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let Some(status) = status else {
        panic!("{what} hung\nstdout:\n{stdout}\nstderr:\n{stderr}");
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn wait_ready(c: &Cluster, pods: &[&str]) {
    let mut args = vec!["wait", "--for=condition=Ready", "--timeout=60s"];
    let names: Vec<String> = pods.iter().map(|p| format!("pod/{p}")).collect();
    args.extend(names.iter().map(String::as_str));
    kubectl(c, None, &args).ok();
}

/// kubia and a busybox that sleeps, both Ready.
fn cluster_with_pods() -> Cluster {
    let c = Cluster::start(&["kubia", "busybox"]);
    kubectl(&c, None, &["run", "kubia", "--image=kubia", "--port=8080"]).ok();
    kubectl(
        &c,
        None,
        &["run", "bb", "--image=busybox", "--", "sleep", "100000"],
    )
    .ok();
    wait_ready(&c, &["kubia", "bb"]);
    c
}

#[test]
fn kubectl_exec_runs_in_the_pods_container() {
    let c = cluster_with_pods();
    // Output, over WebSocket (v5.channel.k8s.io).
    let ps = kubectl(&c, None, &["exec", "bb", "--", "ps", "aux"]);
    let ps = ps.ok();
    assert!(ps.contains("sleep 100000"), "{ps}");
    assert!(ps.contains("ps aux"), "{ps}");
    // stdin, closed by the client when its input ends.
    let cat = kubectl_in(
        &c,
        None,
        &["exec", "-i", "bb", "--", "cat"],
        b"hello\nworld\n",
    );
    assert_eq!(cat.ok(), "hello\nworld\n");
    // A larger stdin comes back whole.
    let big: Vec<u8> = (0..400_000u32)
        .flat_map(|i| format!("{i:07}\n").into_bytes())
        .collect();
    let echoed = kubectl_in(&c, None, &["exec", "-i", "bb", "--", "cat"], &big);
    assert!(
        echoed.ok().as_bytes() == big.as_slice(),
        "a large stdin changed"
    );
    // stdout and stderr apart, and the exit code.
    let script = b"echo out\necho err >&2\nexit 3\n";
    let sh = kubectl_in(&c, None, &["exec", "-i", "bb", "--", "sh"], script);
    sh.exits(3);
    assert_eq!(sh.stdout, "out\n");
    assert!(sh.stderr.contains("err\n"), "{}", sh.stderr);
    assert!(
        sh.stderr.contains("command terminated with exit code 3"),
        "{}",
        sh.stderr
    );
    kubectl(&c, None, &["exec", "bb", "--", "sh", "-c", "exit 42"]).exits(42);
    kubectl(&c, None, &["exec", "bb", "--", "true"]).ok();
    // kubia is FROM busybox: ps shows the app. A missing program is a
    // clear error and Docker's 127.
    let ps = kubectl(&c, None, &["exec", "kubia", "--", "ps"]);
    assert!(ps.ok().contains("/app.wasm"), "{}", ps.stdout);
    let missing = kubectl(&c, None, &["exec", "kubia", "--", "bash"]);
    missing.exits(127);
    assert!(
        missing.stderr.contains("executable file not found"),
        "{}",
        missing.stderr
    );
    // Errors before the upgrade are the API server's.
    let no_pod = kubectl(&c, None, &["exec", "nosuchpod", "--", "true"]);
    assert_eq!(no_pod.code, 1);
    assert!(
        no_pod.stderr.contains("pods \"nosuchpod\" not found"),
        "{}",
        no_pod.stderr
    );
    let bad_container = kubectl(&c, None, &["exec", "bb", "-c", "nope", "--", "true"]);
    assert!(
        bad_container
            .stderr
            .contains("container nope is not valid for pod bb"),
        "{}",
        bad_container.stderr
    );
}

#[test]
fn kubectl_exec_shares_the_pods_network() {
    let c = Cluster::start(&["kubia", "busybox"]);
    let pod = "apiVersion: v1
kind: Pod
metadata:
  name: duo
spec:
  containers:
  - name: web
    image: kubia
  - name: shell
    image: busybox
    command: [sleep, '100000']
";
    kubectl_in(&c, None, &["apply", "-f", "-"], pod.as_bytes()).ok();
    wait_ready(&c, &["duo"]);
    // An exec in one container reaches the other's port on localhost.
    let got = kubectl(
        &c,
        None,
        &[
            "exec",
            "duo",
            "-c",
            "shell",
            "--",
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:8080/",
        ],
    );
    assert_eq!(got.ok(), "you've hit duo\n");
}

#[test]
fn kubectl_run_attaches_and_removes_the_pod() {
    let c = Cluster::start(&["busybox"]);
    let args = [
        "run",
        "-i",
        "--rm",
        "--restart=Never",
        "t1",
        "--image=busybox",
        "--",
        "cat",
    ];
    let run = kubectl_in(&c, None, &args, b"hi\n");
    assert!(run.ok().contains("hi\n"), "{}", run.stdout);
    assert!(run.stdout.contains("pod \"t1\" deleted"), "{}", run.stdout);
    // The container's exit code is kubectl's.
    let args = [
        "run",
        "-i",
        "--rm",
        "--restart=Never",
        "t2",
        "--image=busybox",
        "--",
        "sh",
    ];
    let run = kubectl_in(&c, None, &args, b"echo from-sh\nexit 3\n");
    run.exits(3);
    assert!(run.stdout.contains("from-sh"), "{}", run.stdout);
    for pod in ["t1", "t2"] {
        let gone = kubectl(&c, None, &["get", "pod", pod]);
        assert!(gone.stderr.contains("NotFound"), "{pod}: {}", gone.stderr);
    }
}

#[test]
fn kubectl_exec_in_a_terminal() {
    let c = cluster_with_pods();
    // `script` gives kubectl a terminal; what is typed arrives raw (CR for
    // Enter) and the far side echoes and edits lines, as a pty would.
    let kubectl = format!(
        "{} --cache-dir {} exec -it bb -- sh",
        kubectl_bin(None).display(),
        c.root.path().join("kube").join("cache").display()
    );
    let typing = "sleep 2; printf 'echo tty-ok\\r'; sleep 1; printf 'exit 4x\\177\\r'; sleep 5";
    let mut feeder = Command::new("sh")
        .args(["-c", typing])
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh");
    let child = Command::new("script")
        .args(["-q", "-e", "-c", &kubectl, "/dev/null"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.root.path())
        .stdin(feeder.stdout.take().expect("pipe"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script");
    let run = wait_output(child, "kubectl exec -it");
    let _ = feeder.kill();
    let _ = feeder.wait();
    run.exits(4);
    assert!(run.stdout.contains("tty-ok\r\n"), "{:?}", run.stdout);
    // What was typed is echoed, with the erased character rubbed out.
    assert!(run.stdout.contains("echo tty-ok"), "{:?}", run.stdout);
    assert!(run.stdout.contains("exit 4x\x08 \x08"), "{:?}", run.stdout);
}

/// A running `kubectl port-forward` and the local port it listens on.
struct Forward {
    child: Child,
    port: u16,
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_forward(c: &Cluster, version: Option<&str>, target: &str) -> Forward {
    let mut child = command(
        c,
        version,
        &[
            "port-forward",
            "--address",
            "127.0.0.1",
            "pod/kubia",
            target,
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("kubectl port-forward");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut forward = Forward { child, port: 0 };
    // "Forwarding from 127.0.0.1:PORT -> 8080"
    let line = rx.recv_timeout(HANG).expect("kubectl port-forward starts");
    forward.port = line
        .strip_prefix("Forwarding from 127.0.0.1:")
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    forward
}

#[test]
fn kubectl_port_forward_reaches_the_pod() {
    let c = cluster_with_pods();
    for version in [None, Some("1.28")] {
        let fwd = port_forward(&c, version, ":8080");
        // Several connections over one forwarding session.
        for _ in 0..3 {
            let (status, body) = http_get(fwd.port, "/").expect("GET through port-forward");
            assert_eq!(
                (status, body.as_str()),
                (200, "you've hit kubia\n"),
                "{version:?}"
            );
        }
    }
    // A port nothing listens on: the connection is closed, and kubectl
    // reports the error and ends.
    let mut fwd = port_forward(&c, None, ":9999");
    assert!(http_get(fwd.port, "/").is_err());
    let deadline = Instant::now() + HANG;
    while fwd.child.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "kubectl port-forward did not end"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kubectl_1_28_streams_over_spdy() {
    let c = cluster_with_pods();
    let old = Some("1.28");
    let ps = kubectl(&c, old, &["exec", "bb", "--", "ps"]);
    assert!(ps.ok().contains("sleep 100000"), "{}", ps.stdout);
    let cat = kubectl_in(&c, old, &["exec", "-i", "bb", "--", "cat"], b"over spdy\n");
    assert_eq!(cat.ok(), "over spdy\n");
    let code = kubectl(
        &c,
        old,
        &["exec", "bb", "--", "sh", "-c", "echo e >&2; exit 7"],
    );
    code.exits(7);
    assert!(code.stderr.contains("e\n"), "{}", code.stderr);
    kubectl(&c, old, &["exec", "kubia", "--", "bash"]).exits(127);
    let args = [
        "run",
        "-i",
        "--rm",
        "--restart=Never",
        "t3",
        "--image=busybox",
        "--",
        "cat",
    ];
    let run = kubectl_in(&c, old, &args, b"attached over spdy\n");
    assert!(run.ok().contains("attached over spdy"), "{}", run.stdout);
}
