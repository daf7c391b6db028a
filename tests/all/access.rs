//! Who may talk to the daemon, and where its secrets are: the Docker
//! socket admits only its owner (another user, `nobody`, is refused by the
//! socket's own mode), and the cluster's keys and token are private files
//! that never show up in logs, `info` or `inspect`. (The Kubernetes API's
//! refusals are in `cluster.rs`, the dashboard's in `dashboard.rs`.)

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::cluster::Cluster;
use crate::support::Root;

/// Connects to a Unix socket as user and group 65534 (`nobody`), with
/// Debian's Python (a user's own, such as pyenv's, may be out of nobody's
/// reach); Python's error when refused.
fn connect_as_nobody(sock: &std::path::Path) -> Result<(), String> {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["/usr/bin/python3", "-c"])
        .arg("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint('connected')")
        .arg(sock)
        .output()
        .expect("setpriv (util-linux) and python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && stdout.contains("connected") {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn the_docker_socket_admits_only_its_owner() {
    assert!(
        rustix::process::geteuid().is_root(),
        "this test switches to user nobody, which needs root (CI runs as root)"
    );
    let root = Root::new();
    root.wrun(&["ps"]).ok();
    let sock = root.path().join("wrun.sock");
    // Only the socket's own mode stands in the way: the state root is
    // opened to everyone for the test.
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mode = std::fs::metadata(&sock)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let refused = connect_as_nobody(&sock).expect_err("nobody connected to the Docker socket");
    assert!(refused.contains("PermissionError"), "{refused}");
    // Control: with the mode opened, the same client connects, so the
    // refusal above was the mode's.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    connect_as_nobody(&sock).expect("nobody connects to a socket open to all");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    root.wrun(&["ps"]).ok();
}

#[test]
fn the_clusters_secrets_are_private_and_never_printed() {
    let c = Cluster::start(&["busybox"]);
    let root = &c.root;
    let pki = root.path().join("cluster").join("pki");
    let dir_mode = std::fs::metadata(&pki).expect("pki").permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700, "the pki directory");
    let mut secrets = Vec::new();
    for name in ["ca.key", "apiserver.key", "admin.key", "token"] {
        let path = pki.join(name);
        let mode = std::fs::metadata(&path).expect(name).permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{name}");
        let text = std::fs::read_to_string(&path).expect(name);
        // A key's body lines, or the token.
        secrets.extend(
            text.lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 16)
                .map(str::to_string),
        );
    }
    assert!(secrets.len() >= 4, "{secrets:?}");

    // Things that print what the daemon knows: none holds a secret.
    root.wrun(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "60"])
        .ok();
    c.kubectl(&["run", "pod", "--image=busybox", "--", "sleep", "60"])
        .ok();
    let mut printed = vec![
        root.wrun(&["info"]).ok().to_string(),
        root.wrun(&["inspect", "sleeper"]).ok().to_string(),
        root.wrun(&["ps", "-a", "--no-trunc"]).ok().to_string(),
        c.kubectl(&["get", "pods", "-A", "-o", "yaml"])
            .ok()
            .to_string(),
        c.kubectl(&["get", "events", "-A", "-o", "yaml"])
            .ok()
            .to_string(),
    ];
    if let Ok(log) = std::fs::read_to_string(root.path().join("daemon.log")) {
        printed.push(log);
    }
    for text in &printed {
        for s in &secrets {
            assert!(!text.contains(s.as_str()), "a secret was printed:\n{text}");
        }
    }
}
