//! Virtual networking: published ports, a port table per container,
//! traffic between containers, egress rules, user-defined networks and the
//! names on them, UDP, and port tables freed with their guests.
//!
//! Every connection from the host goes to 127.0.0.1; virtual 10.x addresses
//! are dialled only from inside containers. Host ports are picked free, never
//! fixed.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    Answer, HANG, Ran, Root, api, free_port, http_get, http_get_ok, poll, sample,
};

/// How long a published kubia may take to answer its first request.
const READY: Duration = Duration::from_secs(10);

/// `run --rm ARGS busybox wget -q -O- URL`: one GET from a new container.
fn run_wget(root: &Root, args: &[&str], url: &str) -> Ran {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["busybox", "wget", "-q", "-O-", url]);
    root.wrun(&all)
}

/// A container's full ID.
#[track_caller]
fn id_of(root: &Root, name: &str) -> String {
    let v = root.container(name);
    v["Id"].as_str().expect("Id").to_string()
}

/// A kubia (or kubia-http) container serving on a free host port.
struct Served {
    port: u16,
    id: String,
    /// What it answers: kubia's body with the container's short ID.
    hit: String,
}

/// `run -d --name NAME -p 127.0.0.1:PORT:8080 IMAGE` on a free PORT, and
/// its first answer, checked.
#[track_caller]
fn serve_published(root: &Root, name: &str, image: &str) -> Served {
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = run_d(root, &["--name", name, "-p", &publish, image]);
    let hit = format!("you've hit {}\n", &id[..12]);
    assert_eq!(http_get_ok(port, READY), hit);
    Served { port, id, hit }
}

/// A running container's virtual IP, as inspect reports it.
#[track_caller]
fn ip_of(root: &Root, name: &str) -> String {
    let v = root.container(name);
    let ip = v["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("no IPAddress: {v:#}"))
        .to_string();
    assert!(ip.parse::<Ipv4Addr>().is_ok(), "{ip:?}");
    ip
}

/// `run -d ARGS`, checked; the new container's full ID.
#[track_caller]
fn run_d(root: &Root, args: &[&str]) -> String {
    let mut all = vec!["run", "-d"];
    all.extend_from_slice(args);
    let id = root.wrun(&all).ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    id
}

/// The daemon's live namespaces (`GET /_wrun/net`).
#[track_caller]
fn namespaces(root: &Root) -> Vec<Value> {
    let Answer { status, body } = api(root, "GET", "/_wrun/net", None);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .clone()
}

/// The bound ports (`proto`: "Tcp" or "Udp") of the namespace `owner`
/// (a full container ID) holds, or `None` when it has none live.
#[track_caller]
fn bound(root: &Root, owner: &str, proto: &str) -> Option<Vec<u64>> {
    let all = namespaces(root);
    let mine: Vec<&Value> = all.iter().filter(|n| n["Owner"] == owner).collect();
    assert!(mine.len() <= 1, "one namespace per container: {all:?}");
    mine.first().map(|n| {
        n[proto]
            .as_array()
            .unwrap_or_else(|| panic!("no {proto} list: {n}"))
            .iter()
            .map(|p| p.as_u64().expect("a port number"))
            .collect()
    })
}

/// Polls until `owner`'s namespace binds exactly `ports` (`None`: until it
/// is gone).
#[track_caller]
fn wait_bound(root: &Root, owner: &str, proto: &str, ports: Option<&[u64]>) {
    poll(&format!("{owner}'s {proto} ports to be {ports:?}"), || {
        (bound(root, owner, proto).as_deref() == ports).then_some(())
    });
}

/// Polls `logs NAME` until its stdout or stderr contains `needle`; both.
#[track_caller]
fn wait_log(root: &Root, name: &str, needle: &str) -> Ran {
    poll(&format!("{needle:?} in {name}'s log"), || {
        let r = root.wrun(&["logs", name]);
        r.ok();
        (r.stdout.contains(needle) || r.stderr.contains(needle)).then_some(r)
    })
}

/// The IPs of kubia's `Received request from IP` log lines, in order.
fn request_sources(logs: &str) -> Vec<String> {
    logs.lines()
        .filter_map(|l| l.strip_prefix("Received request from "))
        .map(str::to_string)
        .collect()
}

/// Builds `kubia-bb`: busybox with the kubia server as its command, so
/// that a container serves 8080 and still has `nc`, `wget` and `sh` for
/// `exec`. Needs `busybox` built first.
fn kubia_bb(root: &Root) {
    let wasm = std::fs::read(sample("kubia").join("kubia.wasm")).expect("kubia.wasm");
    let (_ctx, ran) = root.build_context(
        "kubia-bb",
        "FROM busybox\nCOPY kubia.wasm /kubia.wasm\nCMD [\"/kubia.wasm\"]\n",
        &[("kubia.wasm", &wasm)],
    );
    ran.ok();
}

/// A plain HTTP server on 127.0.0.1 (a free port) answering every request
/// with `hello from host`, counting the requests that reach it. Its thread
/// lives as long as the test binary.
struct HostServer {
    port: u16,
    hits: Arc<AtomicUsize>,
}

impl HostServer {
    fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local_addr").port();
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(HANG));
                // Read the request head, then answer.
                let mut reader = BufReader::new(&conn);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" || line == "\n" {
                        break;
                    }
                    line.clear();
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = conn.write_all(
                    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nhello from host",
                );
            }
        });
        Self { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The daemon's open file descriptors, from /proc (Linux only).
fn daemon_fds(root: &Root) -> usize {
    let pid = std::fs::read_to_string(root.path().join("daemon.lock")).expect("daemon.lock");
    let pid: u32 = pid.trim().parse().expect("daemon.lock holds a PID");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the daemon's /proc/PID/fd")
        .count()
}

/// The same app as a wasi:http component: served in its namespace with a
/// fresh instance per request, its port held only while it runs.
#[test]
fn kubia_http_is_served_per_request() {
    let root = Root::new();
    root.kubia_http();
    let Served { port, id, hit } = serve_published(&root, "kh", "kubia-http");
    assert_eq!(http_get_ok(port, READY), hit);
    let logs = root.wrun(&["logs", "kh"]);
    assert_eq!(logs.ok().matches("Received request for GET /").count(), 2);
    assert_eq!(bound(&root, &id, "Tcp"), Some(vec![8080]));
    root.wrun(&["stop", "kh"]).ok();
    // The namespace goes when the last connection the daemon forwarded
    // into it has wound down, a moment after the guest ends.
    wait_bound(&root, &id, "Tcp", None);
}

/// The walk-through's kubia: published on a free host port, it answers
/// with its hostname, sees the host's requests come from the gateway, and
/// `ps`, `port` and `inspect` show the binding.
#[test]
fn kubia_serves_through_a_published_port() {
    let root = Root::new();
    root.kubia();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = run_d(
        &root,
        &["--name", "kubia-container", "-p", &publish, "kubia"],
    );
    let short = &id[..12];

    let body = http_get_ok(port, READY);
    assert_eq!(body, format!("you've hit {short}\n"));
    // Any path is served the same way, and a second request works too.
    assert_eq!(
        http_get(port, "/some/path").expect("second request"),
        (200, format!("you've hit {short}\n"))
    );

    let logs = wait_log(&root, "kubia-container", "Received request from");
    assert!(
        logs.stdout.starts_with("Kubia server starting...\n"),
        "{logs:?}"
    );
    let sources = request_sources(&logs.stdout);
    assert!(!sources.is_empty(), "{logs:?}");
    assert!(
        sources.iter().all(|s| s == "10.88.0.1"),
        "the host's requests come from the gateway: {logs:?}"
    );

    let ps = root.wrun(&["ps"]);
    let row = ps
        .ok()
        .lines()
        .find(|l| l.ends_with(" kubia-container"))
        .unwrap_or_else(|| panic!("no row: {}", ps.stdout));
    assert!(
        row.contains(&format!("127.0.0.1:{port}->8080/tcp")),
        "{row}"
    );
    let header = ps.stdout.lines().next().expect("header");
    assert!(header.contains("PORTS"), "{header}");

    assert_eq!(
        root.wrun(&["port", "kubia-container"]).ok(),
        format!("8080/tcp -> 127.0.0.1:{port}\n")
    );
    assert_eq!(
        root.wrun(&["port", "kubia-container", "8080"]).ok(),
        format!("127.0.0.1:{port}\n")
    );
    assert_eq!(
        root.wrun(&["port", "kubia-container", "8080/tcp"]).ok(),
        format!("127.0.0.1:{port}\n")
    );
    root.wrun(&["port", "kubia-container", "9999"])
        .fails(125, "9999/tcp");

    let v = root.container("kubia-container");
    let net = &v["NetworkSettings"];
    let ip = net["IPAddress"].as_str().expect("IPAddress");
    assert!(ip.starts_with("10.88."), "{net:#}");
    assert_ne!(ip, "10.88.0.1", "the gateway is not a container's");
    assert_eq!(net["Gateway"], "10.88.0.1", "{net:#}");
    assert_eq!(
        net["Ports"]["8080/tcp"],
        serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": port.to_string()}]),
        "{net:#}"
    );
    assert_eq!(net["Networks"]["bridge"]["IPAddress"], ip, "{net:#}");
    assert_eq!(
        v["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"],
        port.to_string(),
        "{v:#}"
    );
}

/// Reads one HTTP response with a `Content-Length` body: its status line
/// and body.
fn read_response(r: &mut impl std::io::BufRead) -> (String, String) {
    let mut status = String::new();
    r.read_line(&mut status).expect("a status line");
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("a header line");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("a numeric Content-Length");
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).expect("the whole body");
    (
        status.trim_end().to_string(),
        String::from_utf8(body).expect("a UTF-8 body"),
    )
}

/// kubia serves as node's http server does: a client that connects and
/// says nothing holds no one up, one connection carries several requests
/// (pipelined ones too), and `Connection: close` ends it after the answer.
#[test]
fn kubia_keeps_connections_alive_and_serves_them_together() {
    let root = Root::new();
    root.kubia();
    let Served { port, hit, .. } = serve_published(&root, "ka", "kubia");

    let connect = || {
        let s = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        s.set_read_timeout(Some(HANG)).expect("timeout");
        s
    };
    // Connected first, and silent throughout.
    let silent = connect();
    let mut conn = connect();
    conn.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nHEAD /b HTTP/1.1\r\nHost: t\r\n\r\n")
        .expect("two pipelined requests");
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    assert_eq!(
        read_response(&mut reader),
        ("HTTP/1.1 200 OK".into(), hit.clone())
    );
    // HEAD: the length of the body that GET would send, and no body.
    let mut status = String::new();
    reader.read_line(&mut status).expect("HEAD's status");
    assert_eq!(status, "HTTP/1.1 200 OK\r\n");
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        let mut line = String::new();
        reader.read_line(&mut line).expect("HEAD's headers");
        head.push_str(&line);
    }
    assert!(
        head.contains(&format!("Content-Length: {}\r\n", hit.len())),
        "{head}"
    );

    // The same connection, once more, and then closed by kubia.
    conn.write_all(b"GET /c HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .expect("a third request");
    assert_eq!(
        read_response(&mut reader),
        ("HTTP/1.1 200 OK".into(), hit.clone())
    );
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut rest).expect("the end of the connection");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));

    // A bad request gets a 400 and the connection ends.
    let mut bad = connect();
    bad.write_all(b"NOT HTTP\r\n\r\n").expect("a bad request");
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut bad, &mut answer).expect("the 400");
    assert!(
        answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{answer}"
    );
    drop(silent);

    let logs = wait_log(&root, "ka", "Received request from");
    assert_eq!(request_sources(&logs.stdout).len(), 4, "{logs:?}");
}

/// `-P` publishes the image's EXPOSEd ports on free host ports, which
/// `port` then tells.
#[test]
fn publish_all_picks_free_host_ports() {
    let root = Root::new();
    root.kubia();
    let (_ctx, built) =
        root.build_context("kubia-exposed", "FROM kubia\nEXPOSE 8080 5353/udp\n", &[]);
    built.ok();
    let id = run_d(&root, &["--name", "pa", "-P", "kubia-exposed"]);
    // The UDP port is published too, on a port of its own.
    let udp = root.wrun(&["port", "pa", "5353/udp"]);
    assert!(udp.ok().starts_with("0.0.0.0:"), "{udp:?}");
    let port = root.wrun(&["port", "pa", "8080"]);
    let addr = port.ok().trim().to_string();
    let (_, host_port) = addr
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("not HOST:PORT: {addr:?}"));
    let host_port: u16 = host_port.parse().expect("a port");
    assert_ne!(host_port, 0, "{addr}");
    // Published on every interface, as Docker's -P; this test dials
    // loopback only.
    assert_eq!(
        http_get_ok(host_port, READY),
        format!("you've hit {}\n", &id[..12])
    );
}

/// `restart` stops and starts a published container: each time it serves
/// again on the same host port, which the stopped run must have let go.
#[test]
fn restart_rebinds_the_published_port() {
    let root = Root::new();
    root.kubia();
    let Served { port, hit, .. } = serve_published(&root, "r", "kubia");
    for n in 1..=20 {
        let r = root.wrun(&["restart", "r"]);
        assert_eq!(r.code, 0, "restart #{n}: {r:?}");
        assert_eq!(r.stdout, "r\n");
    }
    assert_eq!(http_get_ok(port, READY), hit);
    assert_eq!(
        root.wrun(&["port", "r"]).ok(),
        format!("8080/tcp -> 127.0.0.1:{port}\n")
    );
}

/// A host port already taken fails the start with a message naming the
/// address; the container is not left running and the port's owner keeps
/// it.
#[test]
fn a_taken_host_port_fails_the_start() {
    let root = Root::new();
    root.kubia();
    let holder = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = holder.local_addr().expect("local_addr").port();
    let publish = format!("127.0.0.1:{port}:8080");
    let r = root.wrun(&["run", "-d", "--name", "clash", "-p", &publish, "kubia"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}")), "{r:?}");
    assert!(r.stderr.contains("in use"), "{r:?}");
    let running = root.wrun(&["ps", "-q"]);
    assert_eq!(running.ok(), "", "nothing is left running");
    let v = root.container("clash");
    assert_eq!(v["State"]["Running"], false, "{v:#}");
    assert_ne!(v["State"]["Status"], "running", "{v:#}");
    // The port is still the test's own.
    holder.set_nonblocking(true).expect("nonblocking");
    let _client = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    poll("the holder to see the connection", || holder.accept().ok());
    // Once the port is free the same container starts and serves.
    drop(holder);
    root.wrun(&["start", "clash"]).ok();
    let id = id_of(&root, "clash");
    assert_eq!(
        http_get_ok(port, READY),
        format!("you've hit {}\n", &id[..12])
    );
}

/// Two containers both bind 8080, each in its own port table, each
/// published on its own host port; within one table a second bind of a
/// bound port fails, and an exec's listener shows up in the table and
/// leaves it when the exec ends.
#[test]
fn each_container_has_its_own_port_table() {
    let root = Root::new();
    root.busybox().kubia();
    kubia_bb(&root);
    let (p1, p2) = (free_port(), free_port());
    let a = run_d(
        &root,
        &[
            "--name",
            "a",
            "-p",
            &format!("127.0.0.1:{p1}:8080"),
            "kubia",
        ],
    );
    let b = run_d(
        &root,
        &[
            "--name",
            "b",
            "-p",
            &format!("127.0.0.1:{p2}:8080"),
            "kubia-bb",
        ],
    );
    assert_eq!(http_get_ok(p1, READY), format!("you've hit {}\n", &a[..12]));
    assert_eq!(http_get_ok(p2, READY), format!("you've hit {}\n", &b[..12]));
    assert_ne!(ip_of(&root, "a"), ip_of(&root, "b"));
    wait_bound(&root, &a, "Tcp", Some(&[8080]));
    wait_bound(&root, &b, "Tcp", Some(&[8080]));

    // kubia holds 8080 in b: a second listener there is refused.
    let r = root.wrun(&["exec", "b", "nc", "-l", "-p", "8080"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("can't listen on port 8080") && r.stderr.contains("in use"),
        "{r:?}"
    );
    // UDP has a table of its own: 8080/udp is free.
    let r = root.wrun(&["exec", "b", "nc", "-v", "-l", "-u", "-w", "1", "-p", "8080"]);
    assert!(r.stderr.contains("listening on 0.0.0.0:8080\n"), "{r:?}");
    assert!(r.stderr.contains("timed out"), "{r:?}");

    // A listener of an exec joins the table ...
    root.wrun(&["exec", "-d", "b", "nc", "-v", "-l", "-p", "9000"])
        .ok();
    wait_bound(&root, &b, "Tcp", Some(&[8080, 9000]));
    assert_eq!(bound(&root, &a, "Tcp"), Some(vec![8080]));
    // ... serves the container's own connections ...
    assert_eq!(
        root.wrun(&["exec", "b", "sh", "-c", "echo hi | nc -v 127.0.0.1 9000"])
            .ok(),
        ""
    );
    // ... and leaves the table when the exec ends.
    wait_bound(&root, &b, "Tcp", Some(&[8080]));
    // Both still serve.
    assert_eq!(http_get_ok(p1, READY), format!("you've hit {}\n", &a[..12]));
    assert_eq!(http_get_ok(p2, READY), format!("you've hit {}\n", &b[..12]));
}

/// A guest's listener reports the address it asked for (the wildcard and
/// its port), not the real socket behind it.
#[test]
fn listeners_see_their_virtual_local_address() {
    let root = Root::new();
    root.busybox();
    let r = root.wrun(&[
        "run", "--rm", "busybox", "nc", "-v", "-l", "-p", "9000", "-w", "1",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("listening on 0.0.0.0:9000\n"), "{r:?}");
    assert!(
        r.stderr
            .contains("busybox: nc: accept failed on port 9000: timed out"),
        "{r:?}"
    );
    let r = root.wrun(&[
        "run", "--rm", "busybox", "nc", "-v", "-l", "-u", "-p", "9001", "-w", "1",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.starts_with("listening on 0.0.0.0:9001\n"), "{r:?}");
}

/// From inside containers, another container's virtual IP reaches its
/// ports (and kubia sees the caller's virtual IP), while 127.0.0.1 is each
/// container's own.
#[test]
fn containers_reach_each_other_by_ip() {
    let root = Root::new();
    root.busybox().kubia();
    let k = run_d(&root, &["--name", "k", "kubia"]);
    wait_bound(&root, &k, "Tcp", Some(&[8080]));
    let kip = ip_of(&root, "k");
    let url = format!("http://{kip}:8080/");
    let hit = format!("you've hit {}\n", &k[..12]);

    assert_eq!(run_wget(&root, &[], &url).ok(), hit);
    let logs = wait_log(&root, "k", "Received request from");
    let sources = request_sources(&logs.stdout);
    assert_eq!(sources.len(), 1, "{logs:?}");
    assert!(sources[0].starts_with("10.88."), "{logs:?}");
    assert_ne!(sources[0], "10.88.0.1", "not the gateway: {logs:?}");
    assert_ne!(sources[0], kip, "not kubia itself: {logs:?}");

    // From a container whose IP is known: kubia sees exactly that IP, and
    // the client sees kubia's virtual address as its peer.
    root.wrun(&["run", "-d", "--name", "client", "busybox", "sleep", "600"])
        .ok();
    let cip = ip_of(&root, "client");
    assert_ne!(cip, kip);
    assert_eq!(
        root.wrun(&["exec", "client", "wget", "-q", "-O-", &url])
            .ok(),
        hit
    );
    let logs = wait_log(&root, "k", &format!("Received request from {cip}\n"));
    assert_eq!(request_sources(&logs.stdout).len(), 2, "{logs:?}");
    let r = root.wrun(&["exec", "client", "nc", "-v", &kip, "8080"]);
    assert_eq!(r.stderr, format!("connected to {kip}:8080\n"), "{r:?}");

    // 127.0.0.1 is the caller's own namespace, where nothing is on 8080.
    let r = run_wget(&root, &[], "http://127.0.0.1:8080/");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("127.0.0.1:8080") && r.stderr.contains("Connection refused"),
        "{r:?}"
    );
    let r = root.wrun(&[
        "exec",
        "client",
        "wget",
        "-q",
        "-O-",
        "http://localhost:8080/",
    ]);
    assert!(r.stderr.contains("Connection refused"), "{r:?}");
    // A port kubia does not bind is refused too.
    let r = root.wrun(&[
        "exec",
        "client",
        "wget",
        "-q",
        "-O-",
        &format!("http://{kip}:8081/"),
    ]);
    assert!(r.stderr.contains("Connection refused"), "{r:?}");
    assert_eq!(request_sources(&root.wrun(&["logs", "k"]).stdout).len(), 2);
}

/// Outside addresses, the host's loopback included, are refused unless
/// `--allow-net` names them (with its port, if it has one); `--network
/// host` has real sockets and `--network none` none at all.
#[test]
fn egress_needs_allow_net() {
    let root = Root::new();
    root.busybox();
    kubia_bb(&root);
    let server = HostServer::start();
    let y = server.port;
    let url = format!("http://127.0.0.1:{y}/");
    let wget = |extra: &[&str]| run_wget(&root, extra, &url);
    let refused = |r: Ran| {
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr
                .contains(&format!("can't connect to remote host (127.0.0.1:{y})")),
            "{r:?}"
        );
    };

    let r = wget(&[]);
    assert!(r.stderr.contains("Connection refused"), "{r:?}");
    refused(r);
    assert_eq!(server.hits(), 0);

    let rule = format!("127.0.0.1:{y}");
    assert_eq!(wget(&["--allow-net", &rule]).ok(), "hello from host");
    assert_eq!(server.hits(), 1);

    let mut other = free_port();
    while other == y {
        other = free_port();
    }
    let r = wget(&["--allow-net", &format!("127.0.0.1:{other}")]);
    assert!(r.stderr.contains("Connection refused"), "{r:?}");
    refused(r);
    assert_eq!(server.hits(), 1);

    // A host without a port allows all of its ports; names work as rules.
    assert_eq!(wget(&["--allow-net", "127.0.0.1"]).ok(), "hello from host");
    let by_name = format!("http://localhost:{y}/");
    assert_eq!(
        run_wget(&root, &["--allow-net", &format!("localhost:{y}")], &by_name).ok(),
        "hello from host"
    );
    assert_eq!(server.hits(), 3);

    assert_eq!(wget(&["--network", "host"]).ok(), "hello from host");
    assert_eq!(server.hits(), 4);

    refused(wget(&["--network", "none"]));
    refused(wget(&["--network", "none", "--allow-net", &rule]));
    assert_eq!(server.hits(), 4);

    // The container's own port comes first: with a listener of its own on
    // port Y, 127.0.0.1:Y is that listener even though the rule allows the
    // host's.
    let own = run_d(&root, &["--name", "own", "--allow-net", &rule, "kubia-bb"]);
    root.wrun(&["exec", "-d", "own", "nc", "-l", "-p", &y.to_string()])
        .ok();
    let mut ports = [8080, u64::from(y)];
    ports.sort_unstable();
    wait_bound(&root, &own, "Tcp", Some(&ports));
    let r = root.wrun(&[
        "exec",
        "own",
        "sh",
        "-c",
        &format!("echo mine | nc 127.0.0.1 {y}"),
    ]);
    assert_eq!(r.ok(), "", "the own listener answers nothing");
    wait_bound(&root, &own, "Tcp", Some(&[8080]));
    assert_eq!(server.hits(), 4, "the host server was not reached");
    // With nothing of its own there, the rule lets it out.
    assert_eq!(
        root.wrun(&["exec", "own", "wget", "-q", "-O-", &url]).ok(),
        "hello from host"
    );
    assert_eq!(server.hits(), 5);
}

/// On a user-defined network containers find each other by name and
/// short ID; on the default bridge names do not resolve. A network in use
/// cannot be removed.
#[test]
fn user_defined_networks_resolve_names() {
    let root = Root::new();
    root.busybox().kubia();
    let net_id = root
        .wrun(&["network", "create", "app"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(net_id.len(), 64, "{net_id}");
    let ls = root.wrun(&["network", "ls"]);
    let row = ls
        .ok()
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("app"))
        .unwrap_or_else(|| panic!("app is not listed:\n{}", ls.stdout));
    assert!(row.starts_with(&net_id[..12]), "{row}");
    let subnet = row.split_whitespace().last().expect("SUBNET");
    assert!(subnet.starts_with("10.89."), "{row}");

    let web = run_d(&root, &["--network", "app", "--name", "web", "kubia"]);
    wait_bound(&root, &web, "Tcp", Some(&[8080]));
    let v = root.container("web");
    let ip = v["NetworkSettings"]["Networks"]["app"]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("web is not on app: {v:#}"));
    assert!(ip.starts_with("10.89."), "{v:#}");
    assert_eq!(v["NetworkSettings"]["IPAddress"], ip, "{v:#}");
    assert_eq!(v["HostConfig"]["NetworkMode"], "app", "{v:#}");
    let hit = format!("you've hit {}\n", &web[..12]);

    let on_app = |url: &str| run_wget(&root, &["--network", "app"], url);
    assert_eq!(on_app("http://web:8080/").ok(), hit);
    assert_eq!(on_app(&format!("http://{}:8080/", &web[..12])).ok(), hit);
    assert_eq!(on_app(&format!("http://{ip}:8080/")).ok(), hit);

    // The default bridge resolves no container names ...
    let r = run_wget(&root, &[], "http://web:8080/");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("(web:8080)") && r.stderr.contains("lookup"),
        "{r:?}"
    );
    // ... and does not reach another network's addresses.
    let r = run_wget(&root, &[], &format!("http://{ip}:8080/"));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("Connection refused"), "{r:?}");

    // A rename takes effect at once, as in Docker: the new name resolves
    // and the old one no longer does.
    root.wrun(&["rename", "web", "front"]).ok();
    assert_eq!(on_app("http://front:8080/").ok(), hit);
    let r = on_app("http://web:8080/");
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("lookup"), "{r:?}");
    let aliases = &root.container("front")["NetworkSettings"]["Networks"]["app"]["Aliases"];
    assert_eq!(
        aliases,
        &serde_json::json!([&web[..12], "front"]),
        "{aliases}"
    );

    let r = root.wrun(&["network", "rm", "app"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("network app") && r.stderr.contains("front"),
        "{r:?}"
    );
    root.wrun(&["rm", "-f", "front"]).ok();
    assert_eq!(root.wrun(&["network", "rm", "app"]).ok(), "app\n");
    let ls = root.wrun(&["network", "ls"]);
    assert!(
        !ls.ok()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("app")),
        "{}",
        ls.stdout
    );
}

/// The network verbs' other cases: the built-ins, `--subnet`, duplicate
/// and unknown names, bad subnets, and networks outliving the daemon.
#[test]
fn network_verbs_and_their_errors() {
    let root = Root::new();
    root.busybox();
    let ls = root.wrun(&["network", "ls"]);
    let names: Vec<&str> = ls
        .ok()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(names, ["bridge", "host", "none"], "{}", ls.stdout);
    let bridge = root.wrun(&["network", "inspect", "bridge"]);
    let v: Value = serde_json::from_str(bridge.ok()).expect("JSON");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.88.0.0/16", "{v:#}");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Gateway"], "10.88.0.1", "{v:#}");

    root.wrun(&["network", "create", "--subnet", "10.123.0.0/24", "custom"])
        .ok();
    let v: Value =
        serde_json::from_str(root.wrun(&["network", "inspect", "custom"]).ok()).expect("JSON");
    assert_eq!(v[0]["Name"], "custom", "{v:#}");
    assert_eq!(
        v[0]["IPAM"]["Config"][0]["Subnet"], "10.123.0.0/24",
        "{v:#}"
    );
    root.wrun(&[
        "run",
        "-d",
        "--network",
        "custom",
        "--name",
        "c",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let v = root.container("c");
    let ip = v["NetworkSettings"]["Networks"]["custom"]["IPAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(ip.starts_with("10.123.0."), "{v:#}");
    assert_eq!(
        v["NetworkSettings"]["Networks"]["custom"]["Gateway"], "10.123.0.1",
        "{v:#}"
    );
    root.wrun(&["rm", "-f", "c"]).ok();

    root.wrun(&["network", "create", "app"]).ok();
    root.wrun(&["network", "create", "app"])
        .fails(125, "already exists");
    root.wrun(&["network", "create", "--subnet", "nonsense", "bad"])
        .fails(125, "nonsense");
    root.wrun(&["network", "create", "--subnet", "10.88.5.0/24", "bad"])
        .fails(125, "overlaps");
    root.wrun(&["run", "--rm", "--network", "nosuch", "busybox", "true"])
        .fails(125, "network nosuch not found");
    let r = root.wrun(&["network", "rm", "bridge"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("bridge"), "{r:?}");
    let r = root.wrun(&["network", "rm", "nosuch"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("network nosuch not found"), "{r:?}");
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");

    // Networks outlive the daemon, as Docker's do.
    root.wrun(&["daemon", "stop"]).ok();
    let ls = root.wrun(&["network", "ls"]);
    let names: Vec<&str> = ls
        .ok()
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert_eq!(
        names,
        ["app", "bridge", "custom", "host", "none"],
        "{}",
        ls.stdout
    );
}

/// UDP between two containers on a user-defined network: an echo server
/// found by name answers, and sees the sender's virtual IP.
#[test]
fn udp_between_containers() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["network", "create", "app"]).ok();
    let udpd = run_d(
        &root,
        &[
            "--network",
            "app",
            "--name",
            "udpd",
            "busybox",
            "nc",
            "-v",
            "-l",
            "-u",
            "-r",
            "-p",
            "9000",
        ],
    );
    // The datagram must not arrive before the bind.
    wait_bound(&root, &udpd, "Udp", Some(&[9000]));
    assert_eq!(bound(&root, &udpd, "Tcp"), Some(vec![]));
    let r = root.wrun(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "sh",
        "-c",
        "echo ping | nc -u -w 30 udpd 9000",
    ]);
    assert_eq!(r.ok(), "ping\n", "the echo");
    assert_eq!(root.wrun(&["wait", "udpd"]).ok(), "0\n");
    let logs = root.wrun(&["logs", "udpd"]);
    assert_eq!(logs.ok(), "ping\n");
    assert!(
        logs.stderr.starts_with("listening on 0.0.0.0:9000\n"),
        "{logs:?}"
    );
    let from = logs
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("connect from "))
        .unwrap_or_else(|| panic!("no connect line: {logs:?}"));
    assert!(from.starts_with("10.89."), "{logs:?}");
    assert!(!from.starts_with("10.89.0.1:"), "not the gateway: {logs:?}");
}

/// A namespace and its port table live exactly as long as the container
/// runs: `kill` frees them, `start` binds again, `rm -f` frees them.
#[test]
fn port_tables_follow_the_container_lifecycle() {
    let root = Root::new();
    root.kubia();
    let id = run_d(&root, &["--name", "k", "kubia"]);
    wait_bound(&root, &id, "Tcp", Some(&[8080]));
    let ns = namespaces(&root);
    let mine = ns
        .iter()
        .find(|n| n["Owner"] == id.as_str())
        .expect("listed");
    assert_eq!(mine["Network"], "bridge", "{mine}");
    assert_eq!(mine["IPAddress"], ip_of(&root, "k").as_str(), "{mine}");
    assert_eq!(mine["Udp"], serde_json::json!([]), "{mine}");

    root.wrun(&["kill", "k"]).ok();
    wait_bound(&root, &id, "Tcp", None);
    root.wrun(&["start", "k"]).ok();
    wait_bound(&root, &id, "Tcp", Some(&[8080]));
    root.wrun(&["stop", "k"]).ok();
    wait_bound(&root, &id, "Tcp", None);
    root.wrun(&["start", "k"]).ok();
    wait_bound(&root, &id, "Tcp", Some(&[8080]));
    root.wrun(&["rm", "-f", "k"]).ok();
    wait_bound(&root, &id, "Tcp", None);
    assert_eq!(namespaces(&root), Vec::<Value>::new());
}

/// A guest that ends in a trap (here: out of memory just after its bind)
/// frees its ports all the same.
#[test]
fn a_trapped_guest_frees_its_ports() {
    let root = Root::new();
    root.busybox();
    // busybox's initial linear memory, from the out-of-memory message of
    // a limit below it: with exactly that much, busybox starts but cannot
    // grow, so `nc -l -u` binds and then traps allocating its buffer.
    let r = root.wrun(&["run", "--rm", "-m", "64k", "busybox", "true"]);
    assert_eq!(r.code, 137, "{r:?}");
    let initial = r
        .stderr
        .split("the guest asked for ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no size in {r:?}"));
    let limit = initial.to_string();
    let t = run_d(
        &root,
        &["--name", "t", "-m", &limit, "busybox", "sleep", "600"],
    );
    wait_bound(&root, &t, "Udp", Some(&[]));

    let r = root.wrun(&[
        "exec", "t", "nc", "-v", "-l", "-u", "-p", "9000", "-w", "60",
    ]);
    assert!(
        r.stderr.starts_with("listening on 0.0.0.0:9000\n"),
        "it bound first: {r:?}"
    );
    assert_eq!(r.code, 137, "it trapped: {r:?}");
    wait_bound(&root, &t, "Udp", Some(&[]));
    // The port is free to bind again.
    let r = root.wrun(&[
        "exec", "t", "nc", "-v", "-l", "-u", "-p", "9000", "-w", "60",
    ]);
    assert!(
        r.stderr.starts_with("listening on 0.0.0.0:9000\n"),
        "bound again: {r:?}"
    );
    assert_eq!(root.container("t")["State"]["Running"], true);
}

/// 200 start/stop cycles of a published container leave the daemon with
/// no more file descriptors than after a warm-up. Driven through the API
/// directly: 400 CLI processes would only slow the test down.
#[test]
fn start_stop_cycles_leak_no_descriptors() {
    let root = Root::new();
    root.kubia();
    let Served { port, hit, .. } = serve_published(&root, "cycle", "kubia");
    let cycle = |n: usize, get: bool| {
        let Answer { status, body } = api(&root, "POST", "/containers/cycle/start", None);
        assert_eq!(status, 204, "start #{n}: {body}");
        if get {
            assert_eq!(http_get_ok(port, READY), hit);
        }
        let Answer { status, body } = api(&root, "POST", "/containers/cycle/stop", None);
        assert_eq!(status, 204, "stop #{n}: {body}");
    };
    let Answer { status, body } = api(&root, "POST", "/containers/cycle/stop", None);
    assert_eq!(status, 204, "stop: {body}");
    for n in 1..=5 {
        cycle(n, true);
    }
    let warm = daemon_fds(&root);
    for n in 6..=205 {
        cycle(n, n % 50 == 0);
    }
    // Descriptors may be closed a moment after a stop returns; a leak never
    // is.
    let deadline = Instant::now() + HANG;
    loop {
        let now = daemon_fds(&root);
        if now <= warm + 5 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon has {now} descriptors after 200 cycles, {warm} after the warm-up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(namespaces(&root), Vec::<Value>::new());
}

/// A published UDP port: a datagram from the host reaches the guest from
/// the gateway, and the guest's answer comes back to the sender; `ps` and
/// `port` show the mapping.
#[test]
fn udp_ports_are_published() {
    let root = Root::new();
    root.busybox();
    let port = free_port();
    let id = run_d(
        &root,
        &[
            "--name",
            "echo",
            "-p",
            &format!("127.0.0.1:{port}:9000/udp"),
            "busybox",
            "nc",
            "-v",
            "-l",
            "-u",
            "-r",
            "-p",
            "9000",
        ],
    );
    wait_bound(&root, &id, "Udp", Some(&[9000]));
    assert_eq!(
        root.wrun(&["port", "echo", "9000/udp"]).ok(),
        format!("127.0.0.1:{port}\n")
    );
    let ps = root.wrun(&["ps"]);
    assert!(
        ps.ok().contains(&format!("127.0.0.1:{port}->9000/udp")),
        "{}",
        ps.stdout
    );
    let client = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a client socket");
    // UDP promises nothing: a datagram sent while the relay session is
    // being set up on a loaded machine may be dropped, so the ping is sent
    // again until the echo comes (the hang guard still applies).
    client
        .set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .expect("timeout");
    let mut buf = [0u8; 64];
    let (n, from) = poll("the echo", || {
        client
            .send_to(b"ping\n", (Ipv4Addr::LOCALHOST, port))
            .expect("send");
        client.recv_from(&mut buf).ok()
    });
    assert_eq!(&buf[..n], b"ping\n");
    assert_eq!(
        from,
        (Ipv4Addr::LOCALHOST, port).into(),
        "from the published port"
    );

    assert_eq!(root.wrun(&["wait", "echo"]).ok(), "0\n");
    let logs = root.wrun(&["logs", "echo"]);
    assert_eq!(logs.ok(), "ping\n");
    let peer = logs
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("connect from "))
        .unwrap_or_else(|| panic!("no connect line: {logs:?}"));
    assert!(peer.starts_with("10.88.0.1:"), "the gateway: {logs:?}");
    assert_eq!(
        root.container("echo")["HostConfig"]["PortBindings"]["9000/udp"][0]["HostPort"],
        port.to_string()
    );
}

/// Malformed `-p` and `--allow-net` values are refused, naming the value,
/// before anything is created; so are bad port bindings through the API.
#[test]
fn bad_network_input_is_refused() {
    let root = Root::new();
    root.busybox();
    for (flag, value) in [
        ("-p", "8080:0"),
        ("-p", "abc"),
        ("-p", "53:0/udp"),
        ("-p", "127.0.0.1:99999:8080"),
        ("-p", "8080/sctp"),
        ("-p", "nosuchip:8080:80"),
        ("--allow-net", "bad host"),
        ("--allow-net", "127.0.0.1:0"),
        ("--allow-net", ""),
    ] {
        let r = root.wrun(&["run", "--rm", flag, value, "busybox", "true"]);
        assert_eq!(r.code, 125, "{flag} {value:?}: {r:?}");
        assert!(
            r.stderr.contains(&format!("{value:?}")),
            "{flag} {value:?}: {r:?}"
        );
        let r = root.wrun(&["run", "-d", flag, value, "busybox", "sleep", "600"]);
        assert_eq!(r.code, 125, "{flag} {value:?}: {r:?}");
    }
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");

    let body =
        r#"{"Image":"busybox","HostConfig":{"PortBindings":{"8080/tcp":[{"HostPort":"abc"}]}}}"#;
    let a = api(&root, "POST", "/containers/create", Some(body));
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("abc"), "{a:?}");
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");
}

/// One TCP exchange with 127.0.0.1:`port`: sends `line`, closes its side,
/// reads until the other side closes. Retried while nothing accepts (the
/// host port is between two listeners); the client's local port.
fn exchange(port: u16, line: &str) -> u16 {
    use std::io::Read as _;
    poll(&format!("an exchange on port {port}"), || {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let local = c.local_addr().ok()?.port();
        c.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        c.write_all(line.as_bytes()).ok()?;
        c.shutdown(std::net::Shutdown::Write).ok()?;
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).ok()?;
        Some(local)
    })
}

/// A guest that listens on a published container port takes the host port
/// over: its connections come to it with no copy through the daemon, so it
/// sees the client's own port. When its listener closes, the daemon listens
/// again (holding connections until the next bind), and the next listener
/// takes it over in turn.
#[test]
fn a_published_port_goes_to_the_listening_guest_and_back() {
    let root = Root::new();
    root.busybox();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:9000");
    let id = run_d(
        &root,
        &[
            "--name",
            "twice",
            "-p",
            &publish,
            "busybox",
            "sh",
            "-c",
            "nc -v -l -p 9000; nc -v -l -p 9000; echo done",
        ],
    );
    wait_bound(&root, &id, "Tcp", Some(&[9000]));
    let first = exchange(port, "one\n");
    wait_log(&root, "twice", "one\n");
    exchange(port, "two\n");
    let logs = wait_log(&root, "twice", "done\n");
    assert_eq!(logs.stdout, "one\ntwo\ndone\n", "{logs:?}");
    let peers: Vec<&str> = logs
        .stderr
        .lines()
        .filter_map(|l| l.strip_prefix("connect from "))
        .collect();
    assert_eq!(peers.len(), 2, "{logs:?}");
    assert!(
        peers[0].ends_with(&format!(":{first}")),
        "the first connection was not the client's own: {peers:?}, client port {first}"
    );
    // The guest is gone, and the host port with it once the run ends.
    poll("the container to exit", || {
        (root.container("twice")["State"]["Running"] == Value::Bool(false)).then_some(())
    });
    poll("the host port to close", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
}
