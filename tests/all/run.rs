//! `wrun run`: the walk-through's first steps, process semantics, and the
//! container records a run leaves behind.

use crate::support::{Root, sample};

#[test]
fn hello_world_on_both_wasi_versions() {
    let root = Root::new();
    root.busybox().busybox_p1();
    assert_eq!(
        root.wrun(&["run", "busybox", "echo", "Hello world"]).ok(),
        "Hello world\n"
    );
    assert_eq!(
        root.wrun(&["run", "--rm", "busybox:wasip1", "echo", "Hello", "p1"])
            .ok(),
        "Hello p1\n"
    );
}

#[test]
fn exit_codes_are_the_guests() {
    let root = Root::new();
    root.busybox().busybox_p1();
    for image in ["busybox", "busybox:wasip1"] {
        let r = root.wrun(&["run", "--rm", image, "sh", "-c", "echo before; exit 3"]);
        assert_eq!(
            (r.code, r.stdout.as_str()),
            (3, "before\n"),
            "{image}: {r:?}"
        );
        assert_eq!(
            root.wrun(&["run", "--rm", image, "false"]).code,
            1,
            "{image}"
        );
        assert_eq!(
            root.wrun(&["run", "--rm", image, "true"]).code,
            0,
            "{image}"
        );
        // Statuses of 126 and above survive too (WASIp1 hosts often trap on them).
        let high = root.wrun(&["run", "--rm", image, "sh", "-c", "exit 200"]);
        assert_eq!(high.code, 200, "{image}: {high:?}");
        let missing = root.wrun(&["run", "--rm", image, "sh", "-c", "no-such-command"]);
        assert_eq!(missing.code, 127, "{image}: {missing:?}");
    }
}

#[test]
fn shell_sequences_and_redirection_stay_in_the_container() {
    let root = Root::new();
    root.busybox();
    let out = root.wrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /tmp/d && echo saved > /tmp/d/f; cat /tmp/d/f && ls /tmp/d; rm -r /tmp/d; ls /tmp/d || echo gone",
    ]);
    assert_eq!(out.ok(), "saved\nf\ngone\n");
}

#[test]
fn each_container_has_its_own_writable_rootfs() {
    let root = Root::new();
    root.busybox();
    root.wrun(&[
        "run",
        "--name",
        "first",
        "busybox",
        "sh",
        "-c",
        "echo mine > /tmp/note",
    ])
    .ok();
    let second = root.wrun(&["run", "--rm", "busybox", "cat", "/tmp/note"]);
    assert_ne!(
        second.code, 0,
        "a new container must not see another's writes: {second:?}"
    );
    assert!(
        !root
            .path()
            .join("layers")
            .read_dir()
            .expect("layers")
            .any(|e| { e.expect("entry").path().join("tmp/note").exists() })
    );
}

#[test]
fn hostname_env_and_workdir() {
    let root = Root::new();
    root.busybox();
    let out = root.wrun(&["run", "--name", "h", "busybox", "hostname"]);
    let hostname = out.ok().trim().to_string();
    let ps = root.wrun(&["ps", "-a", "-q", "--no-trunc"]);
    assert!(
        ps.ok().starts_with(&hostname),
        "hostname {hostname} is not the short ID: {}",
        ps.stdout
    );
    assert_eq!(hostname.len(), 12);

    let env = root.wrun(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hi",
        "-e",
        "PATH=/bin",
        "busybox",
        "env",
    ]);
    let env = env.ok();
    assert!(env.lines().any(|l| l == "GREETING=hi"), "{env}");
    assert!(
        env.lines().any(|l| l == "PATH=/bin"),
        "-e overrides the image's PATH: {env}"
    );
    assert!(env.lines().any(|l| l.starts_with("HOSTNAME=")), "{env}");

    let pwd = root.wrun(&[
        "run",
        "--rm",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        "pwd; echo x > here; cat /tmp/here",
    ]);
    assert_eq!(pwd.ok(), "/tmp\nx\n");
    root.wrun(&["run", "--rm", "-w", "relative", "busybox", "pwd"])
        .fails(125, "absolute path");
}

#[test]
fn ps_lists_only_this_containers_processes() {
    let root = Root::new();
    root.busybox();
    let out = root.wrun(&["run", "--rm", "busybox", "ps", "aux"]);
    let lines: Vec<&str> = out.ok().lines().collect();
    assert_eq!(lines.len(), 2, "header plus PID 1 only: {lines:?}");
    assert!(lines[0].contains("PID") && lines[0].contains("COMMAND"));
    assert!(
        lines[1].trim_start().starts_with("1 ") && lines[1].ends_with("ps aux"),
        "{lines:?}"
    );
    let status = root.wrun(&["run", "--rm", "busybox", "cat", "/proc/1/status"]);
    assert!(status.ok().contains("Pid:\t1\n"), "{}", status.stdout);
    // /proc is read-only to the guest.
    let write = root.wrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo x > /proc/1/status",
    ]);
    assert_ne!(write.code, 0, "{write:?}");
}

#[test]
fn stdin_is_passed_with_dash_i() {
    use std::io::Write;
    let root = Root::new();
    root.busybox();
    let mut child = root
        .cmd(&["run", "--rm", "-i", "busybox", "cat"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"through stdin\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    // Without -i, stdin is empty, as in Docker.
    assert_eq!(root.wrun(&["run", "--rm", "busybox", "cat"]).ok(), "");
}

#[test]
fn volumes_read_write_and_read_only() {
    let root = Root::new();
    root.busybox();
    let host = tempfile::tempdir().expect("tempdir");
    std::fs::write(host.path().join("in.txt"), "from host\n").expect("write");
    let rw = format!("{}:/data", host.path().display());
    let out = root.wrun(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "busybox",
        "sh",
        "-c",
        "cat /data/in.txt; echo back > /data/out.txt",
    ]);
    assert_eq!(out.ok(), "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out.txt")).expect("out"),
        "back\n"
    );

    let ro = format!("{}:/data:ro", host.path().display());
    let out = root.wrun(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "echo no > /data/denied.txt",
    ]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(!host.path().join("denied.txt").exists());
    root.wrun(&["run", "--rm", "-v", "data:/data", "busybox", "true"])
        .fails(125, "named volumes");
}

#[test]
fn rm_and_name_conflicts() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "--name", "kubia-container", "busybox", "true"])
        .ok();
    root.wrun(&["run", "--name", "kubia-container", "busybox", "true"])
        .fails(125, "is already in use");
    let ps = root.wrun(&["ps", "-a"]);
    let line = ps
        .ok()
        .lines()
        .find(|l| l.contains("kubia-container"))
        .expect("listed")
        .to_string();
    assert!(line.contains("Exited (0)"), "{line}");
    assert!(
        root.wrun(&["ps"]).ok().lines().count() == 1,
        "nothing is running"
    );
    root.wrun(&["rm", "kubia-container"]).ok();
    assert!(!root.wrun(&["ps", "-a"]).ok().contains("kubia-container"));
    root.wrun(&["rm", "kubia-container"])
        .fails(1, "No such container");
    // --rm leaves nothing behind: no record, no directory, no log.
    assert_eq!(
        root.wrun(&["run", "--rm", "busybox", "echo", "logged"])
            .ok(),
        "logged\n"
    );
    assert_eq!(root.wrun(&["ps", "-a", "-q"]).ok(), "");
    assert_eq!(
        std::fs::read_dir(root.path().join("containers"))
            .expect("ls")
            .count(),
        0
    );
}

#[test]
fn kubia_starts() {
    let root = Root::new();
    root.kubia();
    // A server: it starts, binds 8080 in its namespace and keeps running
    // (tests/all/net.rs serves it).
    root.wrun(&["run", "-d", "--name", "k", "kubia"]).ok();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let logs = root.wrun(&["logs", "k"]);
        if logs.ok().starts_with("Kubia server starting...\n") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{logs:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let ps = root.wrun(&["ps", "-q"]);
    assert!(!ps.ok().trim().is_empty(), "kubia keeps running");
    root.wrun(&["rm", "-f", "k"]).ok();
}

#[test]
fn two_processes_share_a_root_safely() {
    let root = Root::new();
    let ctx = sample("busybox");
    let ctx = ctx.to_str().expect("utf8");
    let mut children: Vec<_> = (0..4)
        .map(|i| {
            let tag = format!("busybox:par{i}");
            root.cmd(&["build", "-q", "-t", &tag, ctx])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let ids: Vec<String> = children
        .drain(..)
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "same context, same ID: {ids:?}"
    );
    let runs: Vec<_> = (0..4)
        .map(|i| {
            root.cmd(&["run", "--rm", &format!("busybox:par{i}"), "echo", "ok"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for r in runs {
        let out = r.wait_with_output().expect("wait");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n");
    }
}

#[test]
fn entrypoint_override_drops_the_images_cmd() {
    let root = Root::new();
    root.busybox();
    assert_eq!(
        root.wrun(&["run", "--rm", "--entrypoint", "echo", "busybox"])
            .ok(),
        "\n"
    );
    assert_eq!(
        root.wrun(&[
            "run",
            "--rm",
            "--entrypoint",
            "/bin/echo",
            "busybox",
            "a",
            "b"
        ])
        .ok(),
        "a b\n"
    );
    root.wrun(&["run", "--rm", "--entrypoint", "nope", "busybox"])
        .fails(127, "executable file not found");
}
