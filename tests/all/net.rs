//! Networking end to end: published ports, virtual namespaces, egress
//! rules, user-defined networks and wasi:http serving. Every connection the
//! tests make goes to 127.0.0.1; virtual IPs are dialled only from inside
//! containers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{Root, sample};

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// GETs `/` from 127.0.0.1:`port`, retrying until an answer comes or the
/// deadline passes; returns the body.
fn get(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let req = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let mut resp = String::new();
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_to_string(&mut resp).is_ok()
                && let Some((_, body)) = resp.split_once("\r\n\r\n")
            {
                return body.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no answer on 127.0.0.1:{port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn build(root: &Root, name: &str) {
    let ctx = sample(name);
    root.wrun(&["build", "-q", "-t", name, ctx.to_str().expect("utf8")])
        .ok();
}

/// The daemon's namespaces, from `GET /_wrun/net`.
fn tables(root: &Root) -> serde_json::Value {
    let sock = root.path().join("wrun.sock");
    let mut s = std::os::unix::net::UnixStream::connect(&sock).expect("connect");
    s.write_all(b"GET /_wrun/net HTTP/1.1\r\nHost: wrun\r\nConnection: close\r\n\r\n")
        .expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    // The body may be chunked: take the JSON array inside.
    let start = body.find('[').expect("json array");
    let end = body.rfind(']').expect("json array");
    serde_json::from_str(&body[start..=end]).expect("json")
}

fn owns_port(tables: &serde_json::Value, id: &str, port: u64) -> bool {
    tables.as_array().expect("array").iter().any(|ns| {
        ns["Owner"] == id
            && ns["Tcp"]
                .as_array()
                .is_some_and(|p| p.iter().any(|v| v.as_u64() == Some(port)))
    })
}

#[test]
fn kubia_is_served_on_a_published_port() {
    let root = Root::new();
    build(&root, "kubia");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = root
        .wrun(&[
            "run",
            "-d",
            "--name",
            "kubia-container",
            "-p",
            &publish,
            "kubia",
        ])
        .ok()
        .trim()
        .to_string();
    let short = &id[..12];
    assert_eq!(get(port), format!("you've hit {short}\n"));
    let logs = root.wrun(&["logs", "kubia-container"]);
    let out = logs.ok();
    assert!(out.contains("Kubia server starting..."), "{out}");
    assert!(out.contains("Received request from 10.88.0.1"), "{out}");
    let ps = root.wrun(&["ps"]);
    assert!(
        ps.ok().contains(&format!("127.0.0.1:{port}->8080/tcp")),
        "{}",
        ps.stdout
    );
    let mapping = root.wrun(&["port", "kubia-container"]);
    assert_eq!(mapping.ok().trim(), format!("8080/tcp -> 127.0.0.1:{port}"));
    let inspect: serde_json::Value =
        serde_json::from_str(root.wrun(&["inspect", "kubia-container"]).ok()).expect("json");
    let ip = inspect[0]["NetworkSettings"]["IPAddress"]
        .as_str()
        .expect("ip");
    assert!(ip.starts_with("10.88."), "{ip}");

    // A second kubia binds 8080 too, in its own namespace.
    let port2 = free_port();
    let publish2 = format!("127.0.0.1:{port2}:8080");
    let id2 = root
        .wrun(&["run", "-d", "-p", &publish2, "kubia"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(get(port2), format!("you've hit {}\n", &id2[..12]));

    // From inside another container, the first one's virtual IP answers.
    build(&root, "busybox");
    let url = format!("http://{ip}:8080/");
    let body = root.wrun(&["run", "--rm", "busybox", "wget", "-q", "-O-", &url]);
    assert_eq!(body.ok(), format!("you've hit {short}\n"));
    // ... and the guest saw a container's address, not the gateway.
    let logs = root.wrun(&["logs", "kubia-container"]);
    let last = logs.ok().lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("Received request from 10.88.") && !last.ends_with("10.88.0.1"),
        "{last}"
    );
}

#[test]
fn kubia_http_is_served_per_request() {
    let root = Root::new();
    build(&root, "kubia-http");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = root
        .wrun(&["run", "-d", "--name", "kh", "-p", &publish, "kubia-http"])
        .ok()
        .trim()
        .to_string();
    assert_eq!(get(port), format!("you've hit {}\n", &id[..12]));
    assert_eq!(get(port), format!("you've hit {}\n", &id[..12]));
    let logs = root.wrun(&["logs", "kh"]);
    assert_eq!(logs.ok().matches("Received request for GET /").count(), 2);
    // Its port is in the container's table while it runs, and gone after.
    assert!(owns_port(&tables(&root), &id, 8080));
    root.wrun(&["stop", "kh"]).ok();
    assert!(!owns_port(&tables(&root), &id, 8080));
}

#[test]
fn a_busy_host_port_fails_the_run() {
    let root = Root::new();
    build(&root, "kubia");
    let held = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = held.local_addr().expect("addr").port();
    let publish = format!("127.0.0.1:{port}:8080");
    let ran = root.wrun(&["run", "-d", "--name", "k", "-p", &publish, "kubia"]);
    assert_ne!(ran.code, 0);
    assert!(
        ran.stderr.contains(&format!("127.0.0.1:{port}")),
        "{}",
        ran.stderr
    );
    assert_eq!(root.wrun(&["ps", "-q"]).ok().trim(), "", "nothing running");
}

#[test]
fn port_tables_are_freed_when_a_guest_is_killed() {
    let root = Root::new();
    build(&root, "kubia");
    let id = root.wrun(&["run", "-d", "kubia"]).ok().trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !owns_port(&tables(&root), &id, 8080) {
        assert!(Instant::now() < deadline, "kubia never bound 8080");
        std::thread::sleep(Duration::from_millis(20));
    }
    root.wrun(&["kill", &id]).ok();
    let t = tables(&root);
    assert!(
        !t.as_array()
            .expect("array")
            .iter()
            .any(|ns| ns["Owner"] == id.as_str()),
        "{t}"
    );
}

#[test]
fn egress_is_refused_unless_granted() {
    let root = Root::new();
    build(&root, "busybox");
    let server = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = server.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in server.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = c.read(&mut buf);
            let _ = c.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\nhello from host");
        }
    });
    let url = format!("http://127.0.0.1:{port}/");
    let refused = root.wrun(&["run", "--rm", "busybox", "wget", "-q", "-O-", &url]);
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.to_lowercase().contains("refused"),
        "{}",
        refused.stderr
    );
    let rule = format!("127.0.0.1:{port}");
    let allowed = root.wrun(&[
        "run",
        "--rm",
        "--allow-net",
        &rule,
        "busybox",
        "wget",
        "-q",
        "-O-",
        &url,
    ]);
    assert_eq!(allowed.ok(), "hello from host");
    let other = format!("127.0.0.1:{}", free_port());
    let wrong = root.wrun(&[
        "run",
        "--rm",
        "--allow-net",
        &other,
        "busybox",
        "wget",
        "-q",
        "-O-",
        &url,
    ]);
    assert_ne!(wrong.code, 0);
    let host = root.wrun(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "wget",
        "-q",
        "-O-",
        &url,
    ]);
    assert_eq!(host.ok(), "hello from host");
    let none = root.wrun(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "wget",
        "-q",
        "-O-",
        &url,
    ]);
    assert_ne!(none.code, 0);
}

#[test]
fn names_resolve_on_user_defined_networks() {
    let root = Root::new();
    build(&root, "busybox");
    build(&root, "kubia");
    root.wrun(&["network", "create", "app"]).ok();
    root.wrun(&["network", "create", "app"])
        .fails(125, "already exists");
    let ls = root.wrun(&["network", "ls"]);
    assert!(ls.ok().contains("10.89.0.0/16"), "{}", ls.stdout);
    let id = root
        .wrun(&["run", "-d", "--network", "app", "--name", "web", "kubia"])
        .ok()
        .trim()
        .to_string();
    let body = root.wrun(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "wget",
        "-q",
        "-O-",
        "http://web:8080/",
    ]);
    assert_eq!(body.ok(), format!("you've hit {}\n", &id[..12]));
    // Not from the default network, as in Docker.
    let other = root.wrun(&[
        "run",
        "--rm",
        "busybox",
        "wget",
        "-q",
        "-O-",
        "http://web:8080/",
    ]);
    assert_ne!(other.code, 0);
    root.wrun(&["network", "rm", "app"])
        .fails(1, "active endpoints");
    root.wrun(&["rm", "-f", "web"]).ok();
    root.wrun(&["network", "rm", "app"]).ok();
    root.wrun(&["run", "--rm", "--network", "nosuch", "busybox", "true"])
        .fails(125, "network nosuch not found");
}

#[test]
fn bad_network_flags_name_the_value() {
    let root = Root::new();
    build(&root, "busybox");
    for (flag, value) in [
        ("-p", "8080:0"),
        ("-p", "abc"),
        ("-p", "53:53/udp"),
        ("--allow-net", "bad host"),
    ] {
        let ran = root.wrun(&["run", "--rm", flag, value, "busybox", "true"]);
        assert_ne!(ran.code, 0, "{flag} {value}");
        assert!(ran.stderr.contains(value), "{flag} {value}: {}", ran.stderr);
    }
    assert_eq!(root.wrun(&["ps", "-aq"]).ok().trim(), "");
}
