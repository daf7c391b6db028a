//! The escape suite: `samples/probes` (a real guest) tries each way out
//! of its sandbox and reports what happened; these tests assert that the
//! sandbox held, and check from the host that nothing outside changed:
//! canary files keep their bytes and place, host directories stay empty,
//! host listeners accept nothing. Each escape route also has a control
//! (the same probe where access is granted), so a probe that could not
//! have seen an escape does not pass for one that was contained.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;

use crate::cluster::Cluster;
use crate::support::{Ran, Root, poll};

/// A random token that no image holds.
fn token() -> String {
    let mut raw = [0u8; 16];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").expect("urandom"),
        &mut raw,
    )
    .expect("random");
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

/// Asserts the probe ran to the end and was contained, attempt by attempt.
#[track_caller]
fn contained(ran: &Ran, probe: &str) {
    assert!(
        ran.code == 0
            && !ran.stdout.contains("ESCAPED")
            && ran
                .stdout
                .trim_end()
                .ends_with(&format!("probe {probe}: contained")),
        "probe {probe} (exit {}):\n{}\nstderr:\n{}",
        ran.code,
        ran.stdout,
        ran.stderr
    );
}

/// The attempts of a probe's output whose first word is `outcome`.
fn lines<'a>(ran: &'a Ran, outcome: &str) -> Vec<&'a str> {
    ran.stdout
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(outcome))
        .collect()
}

/// A host file with a secret in it, outside every state root.
struct Canary {
    dir: tempfile::TempDir,
    token: String,
}

impl Canary {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = token();
        std::fs::write(dir.path().join("secret"), format!("secret {token}\n")).expect("canary");
        std::fs::create_dir(dir.path().join("empty")).expect("empty dir");
        Self { dir, token }
    }

    fn file(&self) -> String {
        self.dir.path().join("secret").display().to_string()
    }

    fn empty_dir(&self) -> String {
        self.dir.path().join("empty").display().to_string()
    }

    /// The host side: the secret is where it was, as it was, and the
    /// empty directory is empty.
    #[track_caller]
    fn untouched(&self) {
        let now = std::fs::read_to_string(self.dir.path().join("secret"))
            .expect("the canary is still there");
        assert_eq!(now, format!("secret {}\n", self.token));
        let entries: Vec<_> = std::fs::read_dir(self.dir.path().join("empty"))
            .expect("empty dir")
            .collect();
        assert!(
            entries.is_empty(),
            "files appeared in a host directory: {entries:?}"
        );
        let top: Vec<String> = std::fs::read_dir(self.dir.path())
            .expect("canary dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(top.len(), 2, "the canary dir changed: {top:?}");
    }
}

#[test]
fn host_files_are_out_of_reach_by_every_path_trick() {
    let root = Root::new();
    root.probes();
    let canary = Canary::new();
    // Control: the same probe, with the secret's directory mounted, reads
    // it, so it would have told an escape.
    let mount = format!("{}:/host", canary.dir.path().display());
    let seen = root.wrun(&[
        "run",
        "--rm",
        "-v",
        &mount,
        "probes",
        "read",
        "/host/secret",
        &canary.token,
    ]);
    assert!(
        seen.stdout.contains("ESCAPED read /host/secret"),
        "control: {}",
        seen.stdout
    );

    // In the container's own layers (/tmp), then in a volume (wasmtime's
    // directories), every trick: absolute, `..`, symlinks planted now
    // (absolute, relative, to `/`, climbing, chained, through /proc), hard
    // links, renames.
    let vol = tempfile::tempdir().expect("volume");
    let volume = format!("{}:/data", vol.path().display());
    for env in ["PROBE_DIR=/tmp/probe", "PROBE_DIR=/data/probe"] {
        let ran = root.wrun(&[
            "run",
            "--rm",
            "-v",
            &volume,
            "-e",
            env,
            "probes",
            "read",
            &canary.file(),
            &canary.token,
        ]);
        contained(&ran, "read");
        assert!(lines(&ran, "contained").len() >= 20, "{}", ran.stdout);
        let ran = root.wrun(&[
            "run",
            "--rm",
            "-v",
            &volume,
            "-e",
            env,
            "probes",
            "write",
            &canary.empty_dir(),
        ]);
        contained(&ran, "write");
    }
    canary.untouched();
    // What the volume holds is what the probes planted there, and nothing
    // of the host's.
    assert!(!vol.path().join("probe").join("escaped").exists());
}

#[test]
fn a_symlink_swapped_between_check_and_use_stays_inside() {
    let root = Root::new();
    root.probes();
    let canary = Canary::new();
    let vol = tempfile::tempdir().expect("volume");
    let volume = format!("{}:/data", vol.path().display());
    for dir in ["/tmp/race", "/data/race"] {
        let name = format!("race{}", dir.replace('/', "-"));
        root.wrun(&[
            "run",
            "-d",
            "--name",
            &name,
            "-v",
            &volume,
            "probes",
            "swap-flip",
            dir,
            &canary.file(),
        ])
        .ok();
        let ran = root.wrun(&[
            "exec",
            &name,
            "/bin/probes",
            "swap-read",
            dir,
            &canary.token,
            "3000",
        ]);
        contained(&ran, "swap-read");
        // The swaps really happened while it read: it saw both the file and
        // the refusal of the symlink.
        let summary = lines(&ran, "contained").join("\n");
        let counts: Vec<u64> = summary
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|n| n.parse().ok())
            .collect();
        assert!(
            counts.len() >= 3 && counts[1] > 0 && counts[2] > 0,
            "no race happened: {summary}"
        );
        root.wrun(&["rm", "-f", &name]).ok();
    }
    canary.untouched();
}

#[test]
fn proc_cannot_be_changed() {
    let root = Root::new();
    root.probes();
    let ran = root.wrun(&["run", "--rm", "probes", "proc"]);
    contained(&ran, "proc");
    assert_eq!(lines(&ran, "contained").len(), 8, "{}", ran.stdout);
}

#[test]
fn the_daemons_secrets_and_other_containers_files_are_out_of_reach() {
    // The cluster's CA key and bearer token exist once it started.
    let c = Cluster::start(&[]);
    let root = &c.root;
    root.probes();
    let pki = root.path().join("cluster").join("pki");
    // Another container's file, in its own writable layer.
    let secret = token();
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--entrypoint",
        "sh",
        "probes",
        "-c",
        &format!("echo {secret} > /tmp/secret && sleep 3600"),
    ])
    .ok();
    let victim_id = root.container("victim")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    let victim_file = poll("the victim's file on the host", || {
        let p = root
            .path()
            .join("containers")
            .join(&victim_id)
            .join("upper")
            .join("tmp")
            .join("secret");
        p.exists().then_some(p)
    });
    let key = std::fs::read_to_string(pki.join("ca.key")).expect("ca.key");
    // A line from the middle of the key's PEM: the probe looks for it.
    let key_line = key.lines().nth(1).expect("a PEM body").to_string();
    let bearer = std::fs::read_to_string(pki.join("token")).expect("token");
    let targets: [(&Path, &str); 3] = [
        (&pki.join("ca.key"), &key_line),
        (&pki.join("token"), bearer.trim()),
        (&victim_file, &secret),
    ];
    for (path, needle) in targets {
        let ran = root.wrun(&[
            "run",
            "--rm",
            "probes",
            "read",
            &path.display().to_string(),
            needle,
        ]);
        contained(&ran, "read");
    }
    // Nor through the other container's processes: /proc lists only a
    // container's own.
    let ps = root.wrun(&["run", "--rm", "--entrypoint", "ps", "probes"]);
    assert!(!ps.ok().contains("sleep 3600"), "{}", ps.stdout);
    assert_eq!(
        std::fs::read_to_string(&victim_file)
            .expect("victim file")
            .trim(),
        secret
    );
}

/// A host listener that counts what reaches it.
struct HostPort {
    listener: TcpListener,
}

impl HostPort {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        Self { listener }
    }

    fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    /// How many connections arrived (and were closed) since the last call.
    fn arrived(&self) -> usize {
        let mut n = 0;
        loop {
            match self.listener.accept() {
                Ok(_) => n += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return n,
                Err(e) => panic!("accept: {e}"),
            }
        }
    }
}

/// The port of an `http(s)://127.0.0.1:PORT...` URL.
fn port_of(url: &str) -> String {
    let rest = url.split("127.0.0.1:").nth(1).expect("a 127.0.0.1 URL");
    rest.chars().take_while(char::is_ascii_digit).collect()
}

#[test]
fn the_network_reaches_only_what_is_granted() {
    let c = Cluster::start(&[]);
    let root = &c.root;
    root.probes();
    let api_port = port_of(c.wrun(&["cluster", "status"]).ok());
    let dash_port = port_of(c.wrun(&["dashboard", "--url"]).ok());
    let host = HostPort::new();
    let hp = host.port();

    // The host's loopback, the daemon's own API and dashboard ports, under
    // every name for them: each must meet the container's own loopback or
    // a refusal, and the host's listener must see nothing.
    root.wrun(&["run", "-d", "--name", "peer", "probes", "spin"])
        .ok();
    let gateway = root.container("peer")["NetworkSettings"]["Gateway"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut addrs = vec![
        format!("127.0.0.1:{hp}"),
        format!("localhost:{hp}"),
        format!("[::1]:{hp}"),
        format!("0.0.0.0:{hp}"),
        format!("127.0.0.1:{api_port}"),
        format!("localhost:{api_port}"),
        format!("127.0.0.1:{dash_port}"),
        format!("127.1.2.3:{hp}"),
    ];
    if !gateway.is_empty() {
        addrs.push(format!("{gateway}:{hp}"));
        addrs.push(format!("{gateway}:{api_port}"));
        addrs.push(format!("{gateway}:{dash_port}"));
    }
    let mut args = vec!["run", "--rm", "probes", "connect"];
    args.extend(addrs.iter().map(String::as_str));
    let ran = root.wrun(&args);
    contained(&ran, "connect");
    let tried = lines(&ran, "tried");
    assert_eq!(tried.len(), addrs.len(), "{}", ran.stdout);
    for l in &tried {
        assert!(
            l.contains(": refused"),
            "a connection got through: {l}\n{}",
            ran.stdout
        );
    }
    assert_eq!(host.arrived(), 0, "the host's listener was reached");

    // Control: granted, the same probe reaches the host's port.
    let grant = format!("127.0.0.1:{hp}");
    let ran = root.wrun(&[
        "run",
        "--rm",
        "--allow-net",
        &grant,
        "probes",
        "connect",
        &grant,
    ]);
    assert!(
        ran.ok()
            .contains(&format!("tried connect {grant}: connected")),
        "{}",
        ran.stdout
    );
    poll("the granted connection to arrive", || {
        (host.arrived() == 1).then_some(())
    });

    // Names that resolve to loopback resolve to the container's own.
    let ran = root.wrun(&["run", "--rm", "probes", "resolve", "localhost"]);
    assert!(
        ran.ok().contains("tried resolve localhost: 127.0.0.1"),
        "{}",
        ran.stdout
    );

    // No network: no sockets at all.
    let ran = root.wrun(&[
        "run",
        "--rm",
        "--network",
        "none",
        "probes",
        "connect",
        &grant,
    ]);
    assert!(
        ran.ok()
            .contains(&format!("tried connect {grant}: refused")),
        "{}",
        ran.stdout
    );
    assert_eq!(host.arrived(), 0);
}

#[test]
fn another_networks_containers_are_out_of_reach() {
    let root = Root::new();
    root.kubia();
    root.probes();
    root.wrun(&["network", "create", "blue"]).ok();
    root.wrun(&["network", "create", "green"]).ok();
    root.wrun(&["run", "-d", "--name", "web", "--network", "green", "kubia"])
        .ok();
    let ip = root.container("web")["NetworkSettings"]["Networks"]["green"]["IPAddress"]
        .as_str()
        .expect("web's IP on green")
        .to_string();
    let target = format!("{ip}:8080");
    // Control: on green, both the name and the IP answer (once it listens).
    poll("web to listen on green", || {
        let ran = root.wrun(&[
            "run",
            "--rm",
            "--network",
            "green",
            "probes",
            "connect",
            "web:8080",
            &target,
        ]);
        (lines(&ran, "tried")
            .iter()
            .filter(|l| l.contains("connected"))
            .count()
            == 2)
            .then_some(())
    });
    // From blue, and from the default bridge: neither.
    for net in ["blue", "bridge"] {
        let ran = root.wrun(&[
            "run",
            "--rm",
            "--network",
            net,
            "probes",
            "connect",
            "web:8080",
            &target,
        ]);
        contained(&ran, "connect");
        for l in lines(&ran, "tried") {
            assert!(l.contains(": refused"), "{net} reached green: {l}");
        }
    }
}

/// A guest that recurses without end on wasm's own call stack.
const RECURSION_WAT: &str = r#"(module (memory (export "memory") 1)
  (func $deeper (param i32) (result i32)
    (i32.add (call $deeper (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func (export "_start") (drop (call $deeper (i32.const 0)))))"#;

#[test]
fn a_guest_that_overflows_its_stack_traps_alone() {
    let root = Root::new();
    root.probes();
    root.wat_image("recursion", RECURSION_WAT);
    root.wrun(&["run", "-d", "--name", "bystander", "probes", "spin"])
        .ok();
    // wasm's call stack: wasmtime's guard stops it, and the trap says so,
    // with where in the guest, and not the host's backtrace.
    let ran = root.wrun(&["run", "--name", "deep", "recursion"]);
    assert_eq!(ran.code, 134, "{ran:?}");
    let error = root.container("deep")["State"]["Error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("call stack exhausted"), "{error}");
    assert!(error.contains("more frames"), "{error}");
    assert!(
        !error.contains("tokio") && error.lines().count() <= 8,
        "{error}"
    );
    // A Rust guest's stack lives in its linear memory: running past it is
    // an access outside that memory, stopped the same way.
    let ran = root.wrun(&["run", "--name", "deeper", "probes", "stack"]);
    assert_eq!(ran.code, 134, "{ran:?}");
    let error = root.container("deeper")["State"]["Error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("out of bounds memory access"), "{error}");
    assert_eq!(root.container("bystander")["State"]["Status"], "running");
}

#[test]
fn a_guest_flooding_stdout_is_bounded_by_log_rotation() {
    let root = Root::new();
    root.probes();
    // 256 MiB through a log kept to two files of 1 MiB.
    let ran = root.wrun(&[
        "run",
        "--name",
        "flood",
        "--log-opt",
        "max-size=1m",
        "--log-opt",
        "max-file=2",
        "-d",
        "probes",
        "flood",
        "268435456",
    ]);
    ran.ok();
    poll("the flood to end", || {
        (root.container("flood")["State"]["Status"] == "exited").then_some(())
    });
    assert_eq!(root.container("flood")["State"]["ExitCode"], 0);
    let id = root.container("flood")["Id"]
        .as_str()
        .expect("Id")
        .to_string();
    // The log and its rotated files sit beside the container's directory.
    let dir = root.path().join("containers");
    let logs: u64 = std::fs::read_dir(&dir)
        .expect("containers dir")
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&format!("{id}-json.log"))
        })
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert!(
        logs > 0 && logs <= 3 * 1024 * 1024,
        "the logs hold {logs} bytes"
    );
}

/// A guest that grows its table until the growth is refused, then exits 3
/// (or traps, if the runtime stops it first).
const TABLE_BOMB_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table $t 1 funcref)
  (func (export "_start")
    (loop
      (if (i32.eq (table.grow $t (ref.null func) (i32.const 65536)) (i32.const -1))
        (then (call $exit (i32.const 3))))
      (br 0))))"#;

#[test]
fn a_guest_that_grows_its_table_is_stopped_alone() {
    let root = Root::new();
    root.probes();
    root.wat_image("tables", TABLE_BOMB_WAT);
    root.wrun(&["run", "-d", "--name", "bystander", "probes", "spin"])
        .ok();
    let ran = root.wrun(&["run", "--name", "tables", "tables"]);
    assert_ne!(ran.code, 0, "{}", ran.stdout);
    let state = &root.container("tables")["State"];
    // Either the growth was refused (exit 3) or the guest trapped with a
    // named reason; never a crash of the daemon.
    assert!(
        state["ExitCode"] == 3 || state["Error"].as_str().is_some_and(|e| !e.is_empty()),
        "{state}"
    );
    assert_eq!(root.container("bystander")["State"]["Status"], "running");
}

#[test]
fn an_exec_storm_leaves_the_daemon_serving() {
    let root = Root::new();
    root.probes();
    root.wrun(&["run", "-d", "--name", "target", "probes", "spin"])
        .ok();
    let storm: Vec<_> = (0..48)
        .map(|i| {
            let mut cmd = root.cmd(&["exec", "target", "sh", "-c", &format!("echo exec-{i}")]);
            cmd.stdout(std::process::Stdio::piped());
            cmd.spawn().expect("spawn exec")
        })
        .collect();
    let mut answered = 0;
    for (i, child) in storm.into_iter().enumerate() {
        let out = child.wait_with_output().expect("exec");
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                format!("exec-{i}")
            );
            answered += 1;
        }
    }
    assert_eq!(answered, 48, "every exec ran");
    // The container and the daemon are as they were.
    assert_eq!(root.container("target")["State"]["Status"], "running");
    root.wrun(&["exec", "target", "true"]).ok();
}

/// The daemon's threads named `name` (their `comm`): for each, the CPU
/// time it has used (user and system, in clock ticks) and its nice value.
fn threads_named(pid: &str, name: &str) -> Vec<(u64, i64)> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the daemon's threads");
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // The fields after the command's closing parenthesis, from the
            // third (state) on: utime is the 14th, stime the 15th, nice
            // the 19th.
            let (_, rest) = stat.rsplit_once(") ")?;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
            Some((ticks, f.get(16)?.parse().ok()?))
        })
        .collect()
}

#[test]
fn spinning_guests_compute_on_lower_priority_threads_and_the_rest_is_served() {
    let root = Root::new();
    root.probes().kubia();
    let port = crate::support::free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    root.wrun(&["run", "-d", "--name", "web", "-p", &publish, "kubia"])
        .ok();
    crate::support::http_get_ok(port, std::time::Duration::from_secs(60));
    let pid = root.daemon_pid();
    let computed = |name: &str| threads_named(&pid, name).iter().map(|t| t.0).sum::<u64>();
    let before = computed("wrun-compute");

    // Twice as many spinners as this machine has cores: they move to the
    // compute threads, which the OS runs at a lower priority than the
    // threads that serve the API, the published ports and the guests that
    // wait.
    let spinners = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    for i in 0..spinners {
        let name = format!("spinner-{i}");
        root.wrun(&["run", "-d", "--name", &name, "probes", "spin"])
            .ok();
    }
    poll("the spinners to compute on the compute threads", || {
        // Two seconds of CPU (at 100 ticks a second).
        (computed("wrun-compute") >= before + 200).then_some(())
    });
    let compute = threads_named(&pid, "wrun-compute");
    assert!(
        !compute.is_empty() && compute.iter().all(|t| t.1 == 10),
        "compute threads at nice 10: {compute:?}"
    );
    let serving = threads_named(&pid, "wrun-daemon");
    assert!(
        !serving.is_empty() && serving.iter().all(|t| t.1 == 0),
        "serving threads at nice 0: {serving:?}"
    );

    // Meanwhile the other container answers every request, and the API
    // answers too.
    for _ in 0..20 {
        let (status, body) = crate::support::http_get(port, "/").expect("kubia");
        assert_eq!(status, 200, "{body}");
    }
    let listed = root.wrun(&["ps", "-q"]);
    assert_eq!(listed.ok().lines().count(), spinners + 1);
    let mut rm = vec!["rm", "-f"];
    let names: Vec<String> = (0..spinners).map(|i| format!("spinner-{i}")).collect();
    rm.extend(names.iter().map(String::as_str));
    root.wrun(&rm).ok();
}

#[test]
fn open_files_are_limited_per_container_and_given_back() {
    let root = Root::new();
    root.probes();
    // By default, 1024 (Docker's default soft limit); then a clear refusal
    // (EDQUOT: WASI has no EMFILE), not the daemon's own descriptors.
    let ran = root.wrun(&["run", "--rm", "probes", "fds", "100000"]);
    contained(&ran, "fds");
    assert!(
        ran.stdout
            .contains("contained opened 1024: then refused: Quota exceeded"),
        "{}",
        ran.stdout
    );
    // `--ulimit nofile=N` sets it, and inspect shows it as Docker does.
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--ulimit",
        "nofile=40",
        "probes",
        "spin",
    ])
    .ok();
    let limits = &root.container("holder")["HostConfig"]["Ulimits"];
    assert_eq!(limits[0]["Name"], "nofile");
    assert_eq!(limits[0]["Soft"], 40);
    // Twice in the same container: what a guest left open when it exited
    // is given back.
    for _ in 0..2 {
        let ran = root.wrun(&["exec", "holder", "/bin/probes", "fds", "1000"]);
        assert!(
            ran.stdout.contains("contained opened 40: then refused"),
            "{}",
            ran.stdout
        );
    }
    // Sockets count with files, as a process's do: each is a descriptor of
    // the daemon's. The same limit stops them, with EMFILE ("No file
    // descriptors available", as wasi-libc words it), and what a
    // guest left open is given back.
    for _ in 0..2 {
        let ran = root.wrun(&["exec", "holder", "/bin/probes", "sockets", "1000"]);
        assert!(
            ran.stdout
                .contains("contained opened 40: then refused: No file descriptors available"),
            "{}",
            ran.stdout
        );
    }
    let ran = root.wrun(&["run", "--rm", "probes", "sockets", "100000"]);
    contained(&ran, "sockets");
    assert!(
        ran.stdout.contains("contained opened 1024: then refused"),
        "{}",
        ran.stdout
    );
    // Other containers open files as before.
    let ran = root.wrun(&["run", "--rm", "probes", "fds", "200"]);
    assert!(
        ran.ok().contains("tried opened 200: all of them"),
        "{}",
        ran.stdout
    );
    // A limit that is not one is refused, naming it.
    let bad = root.wrun(&["run", "--rm", "--ulimit", "nproc=5", "probes", "spin"]);
    assert!(bad.code != 0 && bad.stderr.contains("nproc"), "{bad:?}");
    let bad = root.wrun(&["run", "--rm", "--ulimit", "nofile=lots", "probes", "spin"]);
    assert!(bad.code != 0 && bad.stderr.contains("lots"), "{bad:?}");
}

#[test]
fn the_writable_layer_is_limited_by_storage_opt_size() {
    let root = Root::new();
    root.busybox();
    root.busybox_p1();
    // busybox is 1,010,373 bytes: two copies do not fit in 1 MiB, and the
    // write that would pass it fails as on a full disk: ENOSPC. A WASIp1
    // guest (through the preview1 adapter) reads it as such; a WASIp2
    // guest's libc reports any failed stream write as EIO, on a real full
    // disk too (a full tmpfs volume gives the same).
    for (image, error) in [
        ("busybox", "write error: I/O error"),
        ("busybox:wasip1", "No space left on device"),
    ] {
        let ran = root.wrun(&[
            "run",
            "--rm",
            "--storage-opt",
            "size=1m",
            image,
            "sh",
            "-c",
            "cat /bin/busybox /bin/busybox > /big; echo status $?; wc -c < /big",
        ]);
        let out = format!("{}{}", ran.stdout, ran.stderr);
        assert!(out.contains(error), "{image}: {out}");
        assert!(out.contains("status 1"), "{image}: {out}");
        let kept: u64 = ran
            .stdout
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("{image}: {out}"));
        assert!(kept <= 1 << 20, "{image}: {kept} bytes kept past the limit");
    }
    // The limit holds for every process of the container: an exec's
    // writes count with the main guest's, appends and copy-ups included,
    // and what a deletion frees can be written again.
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--storage-opt",
        "size=1500k",
        "busybox",
        "sh",
        "-c",
        "cat /bin/busybox > /first; sleep 3600",
    ])
    .ok();
    // The main guest's copy is whole before the exec appends to it.
    poll("the main guest's /first to be written", || {
        let ran = root.wrun(&["exec", "limited", "sh", "-c", "wc -c < /first"]);
        (ran.stdout.trim() == "1010373").then_some(())
    });
    let inspect = root.container("limited");
    assert_eq!(
        inspect["HostConfig"]["StorageOpt"]["size"], "1536000",
        "{:#}",
        inspect["HostConfig"]
    );
    let ran = root.wrun(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "cat /bin/busybox >> /first; echo append $?; echo x >> /bin/busybox; echo copy-up $?; rm /first; cat /bin/busybox > /second; echo after-rm $?",
    ]);
    let out = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        out.contains("append 1") && out.contains("copy-up 1") && out.contains("after-rm 0"),
        "{out}"
    );
    // `docker cp` into the container is held to the same limit: a file
    // that does not fit is refused whole, naming the limit; one that does
    // is copied, and so is one that replaces a file of its size.
    let host = tempfile::tempdir().expect("tempdir");
    let file = |name: &str, n: usize| {
        let p = host.path().join(name);
        std::fs::write(&p, vec![b'x'; n]).expect("host file");
        p.to_string_lossy().into_owned()
    };
    let refused = crate::docker_cli::docker(&root, &["cp", &file("big", 600_000), "limited:/big"]);
    assert!(
        refused.code != 0 && refused.stderr.contains("no space left on device"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("1536000 bytes"), "{refused:?}");
    crate::docker_cli::docker(&root, &["cp", &file("small", 100_000), "limited:/small"]).ok();
    crate::docker_cli::docker(
        &root,
        &["cp", &file("second", 1_000_000), "limited:/second"],
    )
    .ok();
    let ran = root.wrun(&[
        "exec",
        "limited",
        "sh",
        "-c",
        "ls /big; wc -c < /small; wc -c < /second",
    ]);
    let out = format!("{}{}", ran.stdout, ran.stderr);
    assert!(
        out.contains("/big: No such file") && out.contains("100000") && out.contains("1000000"),
        "{out}"
    );
    // Another container, without a limit, writes as before.
    let ran = root.wrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /bin/busybox /bin/busybox > /big; wc -c < /big",
    ]);
    assert_eq!(ran.ok().trim(), "2020746");
    // Other storage options are refused by name; so is a size that is not one.
    let bad = root.wrun(&[
        "run",
        "--rm",
        "--storage-opt",
        "dm.basesize=1g",
        "busybox",
        "true",
    ]);
    assert!(
        bad.code != 0 && bad.stderr.contains("dm.basesize"),
        "{bad:?}"
    );
    let bad = root.wrun(&[
        "run",
        "--rm",
        "--storage-opt",
        "size=huge",
        "busybox",
        "true",
    ]);
    assert!(bad.code != 0 && bad.stderr.contains("huge"), "{bad:?}");
    root.wrun(&["rm", "-f", "limited"]).ok();
}
