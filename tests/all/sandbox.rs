//! The sandbox's promises: nothing of the host leaks in, stop is prompt,
//! and the compile cache never trusts a bad entry.

use std::time::{Duration, Instant};

use crate::support::{Root, sample};

#[test]
fn the_host_filesystem_is_out_of_reach() {
    let root = Root::new();
    root.busybox();
    // A file only the host has, named by its host path and by climbing.
    let host = tempfile::tempdir().expect("tempdir");
    let secret = host.path().join("secret");
    std::fs::write(&secret, "host-only secret\n").expect("write");
    let abs = secret.to_str().expect("utf8").to_string();
    let climbing = format!("../../../../..{abs}");
    for path in [abs.as_str(), climbing.as_str()] {
        let r = root.wrun(&["run", "--rm", "busybox", "cat", path]);
        assert_ne!(r.code, 0, "{path}: {r:?}");
        assert!(
            !r.stdout.contains("host-only"),
            "{path} leaked the host's file"
        );
    }
    // /etc/passwd is the image's own, however it is reached.
    let image_passwd = std::fs::read_to_string(sample("busybox").join("wasip2/etc/passwd"))
        .expect("the image's passwd");
    for path in ["/etc/passwd", "../../../../etc/passwd", "/../../etc/passwd"] {
        let r = root.wrun(&["run", "--rm", "busybox", "cat", path]);
        assert!(
            r.code != 0 || r.stdout == image_passwd,
            "{path} is not the image's file: {r:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn symlinks_cannot_escape() {
    let root = Root::new();
    let busybox = std::fs::read(sample("busybox").join("wasip2/bin/busybox")).expect("busybox");
    // Symlinks inside the image: absolute, and climbing out with `..`.
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY . /\nENTRYPOINT [\"/busybox\"]\n",
    )
    .expect("write");
    std::fs::write(ctx.path().join("busybox"), &busybox).expect("write");
    std::os::unix::fs::symlink("/etc", ctx.path().join("abs")).expect("symlink");
    std::os::unix::fs::symlink("../../../../../../etc", ctx.path().join("up")).expect("symlink");
    std::os::unix::fs::symlink("busybox", ctx.path().join("inside")).expect("symlink");
    root.wrun(&["build", "-t", "links", ctx.path().to_str().expect("utf8")])
        .ok();
    for path in ["/abs/passwd", "/up/passwd"] {
        let r = root.wrun(&["run", "--rm", "links", "cat", path]);
        assert_ne!(r.code, 0, "{path}: {r:?}");
        assert!(!r.stdout.contains("root:"), "{path} escaped");
    }
    // A relative symlink that stays inside works.
    let ls = root.wrun(&["run", "--rm", "links", "ls", "-l", "/inside"]);
    assert!(ls.ok().contains("inside -> busybox"), "{}", ls.stdout);

    // A symlink planted at run time, in a mounted directory.
    root.busybox();
    let vol = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/etc", vol.path().join("planted")).expect("symlink");
    let v = format!("{}:/data", vol.path().display());
    let r = root.wrun(&[
        "run",
        "--rm",
        "-v",
        &v,
        "busybox",
        "cat",
        "/data/planted/passwd",
    ]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("root:"));
}

/// Starts `args`, waits until its container is running, sends SIGINT, and
/// returns the exit code. The deadline only guards against a hang.
#[cfg(unix)]
fn interrupt(root: &Root, args: &[&str]) -> i32 {
    let mut child = root
        .cmd(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(60);
    while root.wrun(&["ps", "-q"]).ok().trim().is_empty() {
        assert!(Instant::now() < deadline, "container never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "wrun did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_sleeping_guest_and_a_spinning_one() {
    let root = Root::new();
    root.busybox();
    assert_eq!(
        interrupt(
            &root,
            &["run", "--name", "sleeper", "busybox", "sleep", "600"]
        ),
        130
    );
    root.wat_image(
        "spin",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
    );
    assert_eq!(interrupt(&root, &["run", "--name", "spinner", "spin"]), 130);
    let ps = root.wrun(&["ps", "-a"]);
    assert!(
        ps.ok()
            .lines()
            .filter(|l| l.contains("Exited (130)"))
            .count()
            == 2,
        "{}",
        ps.stdout
    );
}

#[test]
fn a_corrupt_compile_cache_entry_is_recompiled() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "--rm", "busybox", "true"]).ok();
    let mut entries = Vec::new();
    for engine in std::fs::read_dir(root.path().join("cache/compiled")).expect("cache") {
        for e in std::fs::read_dir(engine.expect("dir").path()).expect("ls") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "cwasm") {
                entries.push(p);
            }
        }
    }
    assert_eq!(entries.len(), 1, "one compiled program: {entries:?}");
    // The daemon keeps loaded programs in memory; a new one reads the cache.
    root.wrun(&["daemon", "stop"]).ok();
    let mut bytes = std::fs::read(&entries[0]).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&entries[0], &bytes).expect("corrupt");
    assert_eq!(
        root.wrun(&["run", "--rm", "busybox", "echo", "still fine"])
            .ok(),
        "still fine\n"
    );
    assert_ne!(
        std::fs::read(&entries[0]).expect("read"),
        bytes,
        "the bad entry was replaced"
    );
}
