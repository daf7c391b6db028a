//! Faults injected on purpose: the daemon's database corrupted, or held by
//! another process; a full disk; a build killed midway. Each gets a clear
//! error that names it, nothing is lost or half made, and the daemon never
//! starts from an empty state in its place.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use crate::support::Root;

#[test]
fn a_corrupt_database_is_named_and_never_replaced() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "--name", "kept", "busybox", "true"])
        .ok();
    root.wrun(&["daemon", "stop"]).ok();
    let db = root.path().join("wrun.db");
    // The whole database unreadable (its write-ahead log with it).
    let saved = std::fs::read(&db).expect("wrun.db");
    for side in ["wrun.db-wal", "wrun.db-shm"] {
        let p = root.path().join(side);
        if p.exists() {
            let _ = std::fs::copy(&p, root.path().join(format!("{side}.saved")));
            std::fs::remove_file(&p).expect("remove");
        }
    }
    let garbage: Vec<u8> = (0..saved.len()).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(&db, &garbage).expect("corrupt");

    let ran = root.wrun(&["ps", "-a"]);
    assert_ne!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stderr.contains("metadata database")
            && ran.stderr.contains("wrun.db")
            && ran.stderr.contains("not a database"),
        "the error names the database: {}",
        ran.stderr
    );
    // Left as it was, for the user to restore: not replaced by an empty one.
    assert_eq!(std::fs::read(&db).expect("wrun.db"), garbage);

    // Restored, everything is there again.
    std::fs::write(&db, &saved).expect("restore");
    for side in ["wrun.db-wal", "wrun.db-shm"] {
        let p = root.path().join(format!("{side}.saved"));
        if p.exists() {
            std::fs::rename(&p, root.path().join(side)).expect("restore");
        }
    }
    let names = root.wrun(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.ok().trim(), "kept");
}

#[test]
fn a_locked_database_fails_a_change_clearly_and_stores_nothing() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["run", "--name", "first", "busybox", "true"])
        .ok();
    let db = root.path().join("wrun.db");
    // Another process takes the write lock and holds it until told.
    let mut holder = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1], isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\nsys.stdin.read()")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "locked");

    // Reads still work (the database is in WAL mode); a change waits for
    // its timeout, then says why.
    root.wrun(&["ps", "-a"]).ok();
    let ran = root.wrun(&["run", "--name", "second", "busybox", "true"]);
    assert_ne!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stderr.contains("metadata database") && ran.stderr.contains("locked"),
        "{}",
        ran.stderr
    );

    // The lock let go, the same command works, and nothing was half made.
    drop(holder.stdin.take());
    holder.wait().expect("python3 exits");
    let names = root.wrun(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.ok().trim(), "first");
    root.wrun(&["run", "--name", "second", "busybox", "true"])
        .ok();
}

/// A tmpfs of `size` mounted over a root's directory for the test's life.
/// When dropped (before the root, whose directory it covers, and also when
/// the test failed midway) it stops the root's daemon, then unmounts
/// lazily, so nothing still holding files there can keep it mounted.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(root: &Root, size: &str) -> Self {
        let at = root.path();
        assert!(
            rustix::process::geteuid().is_root(),
            "mounting a small tmpfs needs root (CI runs as root)"
        );
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(ok.success(), "mount a tmpfs on {}", at.display());
        Self(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new(crate::support::wrun_bin())
            .args(["daemon", "stop"])
            .env("WRUN_ROOT", &self.0)
            .output();
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the disk is full.
fn fill(path: &std::path::Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5au8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_all()) {
            assert_eq!(e.raw_os_error(), Some(28), "filled: {e}");
            return;
        }
    }
}

#[test]
fn a_full_disk_fails_clearly_and_nothing_is_half_stored() {
    let root = Root::new();
    let _disk = Tmpfs::mount(&root, "96m");
    root.busybox();
    // Compiled once, so later runs need no cache space.
    root.wrun(&["run", "--name", "before", "busybox", "true"])
        .ok();
    let ctx = tempfile::tempdir().expect("context");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY big /big\n",
    )
    .expect("Dockerfile");
    let big = incompressible(4 << 20);
    std::fs::write(ctx.path().join("big"), &big).expect("big");
    let context = ctx.path().to_str().expect("utf8");

    let filler = root.path().join("filler");
    fill(&filler);
    // A build that cannot store its layer fails, saying why.
    let ran = root.wrun(&["build", "-q", "-t", "big", context]);
    assert_ne!(ran.code, 0, "{ran:?}");
    assert!(
        ran.stderr.contains("No space left on device"),
        "{}",
        ran.stderr
    );
    // A container: made whole, or refused clearly and not listed.
    let chatty = root.wrun(&["run", "--name", "chatty", "busybox", "echo", "hello"]);
    let listed = root.wrun(&["ps", "-a", "--format", "{{.Names}}"]);
    let listed = listed.ok();
    if chatty.code == 0 {
        assert!(listed.contains("chatty"), "{listed}");
    } else {
        assert!(
            chatty.stderr.contains("No space left on device") || chatty.stderr.contains("full"),
            "{}",
            chatty.stderr
        );
        assert!(
            !listed.contains("chatty"),
            "a half-made container: {listed}"
        );
    }
    // The store is as it was: listed, inspected, run.
    let images = root.wrun(&["images", "--format", "{{.Repository}}"]);
    assert!(
        images.ok().contains("busybox") && !images.stdout.contains("big"),
        "{}",
        images.stdout
    );
    assert!(listed.contains("before"), "{listed}");

    // With the space back, the same build succeeds and its image runs.
    std::fs::remove_file(&filler).expect("free");
    root.wrun(&["build", "-q", "-t", "big", context]).ok();
    let ran = root.wrun(&["run", "--rm", "big", "wc", "-c", "/big"]);
    assert!(ran.ok().contains(&big.len().to_string()), "{}", ran.stdout);
    root.wrun(&["daemon", "stop"]).ok();
}

/// `n` bytes that do not compress (xorshift), quick to make.
fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

/// Asserts that `after` left a layer staged, that the next command deletes
/// it, and that no image named `heavy` shows.
fn nothing_half_built(root: &Root, after: &str) {
    let images = root.swept_after(after, &["images", "--format", "{{.Repository}}"]);
    assert!(
        !images.ok().contains("heavy"),
        "a half-built image after {after}: {}",
        images.stdout
    );
}

#[test]
fn a_build_killed_midway_leaves_nothing_and_the_rerun_completes() {
    let root = Root::new();
    root.busybox();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nCOPY big /big\nCOPY small /small\n",
    )
    .expect("Dockerfile");
    // Incompressible, so that writing its layer takes a while.
    std::fs::write(ctx.path().join("big"), incompressible(48 << 20)).expect("big");
    std::fs::write(ctx.path().join("small"), b"small\n").expect("small");
    let ctx_path = ctx.path().to_str().expect("utf8");

    // `wrun build` builds in its own process: SIGKILL to it while the big
    // layer is being written.
    let mut build = root
        .cmd(&["build", "-t", "heavy", ctx_path])
        .stdout(Stdio::null())
        .spawn()
        .expect("wrun build");
    root.wait_staged();
    build.kill().expect("kill wrun build");
    let _ = build.wait();
    nothing_half_built(&root, "a killed wrun build");

    // `docker build` asks the daemon: kill -9 of the daemon while it
    // writes the layer.
    root.wrun(&["ps"]).ok();
    let config = tempfile::tempdir().expect("tempdir");
    let mut docker =
        crate::docker_cli::docker_cmd(&root, config.path(), &["build", "-t", "heavy", ctx_path])
            .spawn()
            .expect("docker build");
    root.wait_staged();
    root.kill_daemon_hard();
    let _ = docker.kill();
    let _ = docker.wait();
    nothing_half_built(&root, "a daemon killed mid-build");

    // The rerun completes, through the daemon again, and its image runs.
    let built = crate::docker_cli::docker(&root, &["build", "-t", "heavy", ctx_path]);
    assert!(
        built.ok().contains("Successfully tagged heavy"),
        "{}",
        built.stdout
    );
    let ran = root.wrun(&[
        "run",
        "--rm",
        "heavy",
        "sh",
        "-c",
        "cat /small; wc -c < /big",
    ]);
    assert_eq!(
        ran.ok().split_whitespace().collect::<Vec<_>>(),
        ["small", "50331648"]
    );
}

/// The lines of a container's json-file log (and its rotated files) that
/// are not whole JSON entries.
fn torn_log_lines(root: &Root, id: &str) -> Vec<String> {
    // The log and its rotated files sit beside the container's directory.
    let dir = root.path().join("containers");
    let mut torn = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("containers dir").flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{id}-json.log")) {
            continue;
        }
        let text = std::fs::read(entry.path()).expect("log");
        for line in text.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if serde_json::from_slice::<serde_json::Value>(line).is_err() {
                torn.push(String::from_utf8_lossy(line).into_owned());
            }
        }
    }
    torn
}

/// The highest `tick N` in a container's log.
fn last_tick(root: &Root, name: &str) -> u64 {
    root.wrun(&["logs", name])
        .ok()
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.split(' ').next()?.parse().ok())
        .max()
        .unwrap_or(0)
}

#[test]
fn a_full_disk_fails_a_pull_a_commit_and_a_database_write_clearly_and_keeps_logs_whole() {
    // An image to pull, pushed from a root on the ordinary disk.
    let reg = crate::registry::Registry::start(false);
    let pusher = Root::new();
    pusher.busybox();
    let (_ctx, built) = pusher.build_context(
        "big",
        "FROM busybox\nCOPY big /big\n",
        &[("big", &incompressible(4 << 20))],
    );
    built.ok();
    let remote = format!("{}/me/big", reg.host());
    pusher.wrun(&["tag", "big", &remote]).ok();
    pusher.wrun(&["push", &remote]).ok();

    let root = Root::new();
    let _disk = Tmpfs::mount(&root, "96m");
    root.busybox();
    // A container with a change to commit, and one that keeps talking.
    root.wrun(&[
        "run",
        "--name",
        "changed",
        "busybox",
        "sh",
        "-c",
        "cat /bin/busybox > /data",
    ])
    .ok();
    let chatter = root
        .wrun(&[
            "run",
            "-d",
            "--name",
            "chatter",
            "busybox",
            "sh",
            "-c",
            "pad=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz; i=0; while :; do echo \"tick $i $pad$pad\"; i=$((i+1)); sleep 0.02; done",
        ])
        .ok()
        .trim()
        .to_string();
    crate::support::poll("the chatter to log", || {
        (last_tick(&root, "chatter") > 3).then_some(())
    });

    let filler = root.path().join("filler");
    fill(&filler);
    // A pull that cannot store its blobs fails, saying why, and shows
    // nothing.
    let pulled = root
        .cmd(&["pull", &remote])
        .env("DOCKER_CONFIG", root.path().join("no-docker-config"))
        .output()
        .expect("wrun pull");
    let stderr = String::from_utf8_lossy(&pulled.stderr);
    assert!(!pulled.status.success(), "a pull on a full disk succeeded");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    // So does a commit.
    let committed = crate::docker_cli::docker(&root, &["commit", "changed", "snap"]);
    assert_ne!(committed.code, 0, "{committed:?}");
    assert!(
        committed.stderr.contains("No space left on device"),
        "{}",
        committed.stderr
    );
    let images = root.wrun(&["images", "--format", "{{.Repository}}"]);
    assert!(
        !images.ok().contains("big") && !images.stdout.contains("snap"),
        "half-stored images: {}",
        images.stdout
    );
    // A database write that needs new pages (a container with 1 MiB of
    // labels) fails, naming the database, and leaves no container.
    let labelled = serde_json::json!({
        "Image": "busybox",
        "Cmd": ["true"],
        "Labels": (0..16)
            .map(|i| (format!("big{i}"), "x".repeat(64 << 10)))
            .collect::<std::collections::BTreeMap<_, _>>(),
    })
    .to_string();
    let created = crate::support::api(
        &root,
        "POST",
        "/containers/create?name=labelled",
        Some(&labelled),
    );
    assert!(created.status >= 500, "{created:?}");
    assert!(
        created.body.contains("database") && created.body.contains("full"),
        "{}",
        created.body
    );
    let listed = root.wrun(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!listed.ok().contains("labelled"), "{}", listed.stdout);
    // The chatter goes on talking into a full disk, and its log stops
    // growing (what the last page had room for is used up).
    let mut before = last_tick(&root, "chatter");
    crate::support::poll("the log to stop growing", || {
        std::thread::sleep(std::time::Duration::from_millis(400));
        let now = last_tick(&root, "chatter");
        let stopped = now == before;
        before = now;
        stopped.then_some(())
    });
    assert_eq!(
        root.container("chatter")["State"]["Running"],
        true,
        "a full disk stopped a container"
    );

    // With the space back: its log goes on, and is whole entries only;
    // the pull and the commit succeed, and their images run.
    std::fs::remove_file(&filler).expect("free");
    crate::support::poll("the log to go on", || {
        (last_tick(&root, "chatter") > before + 20).then_some(())
    });
    assert_eq!(torn_log_lines(&root, &chatter), Vec::<String>::new());
    root.assert_nothing_staged("a full disk");
    root.assert_blobs_whole("a full disk");
    root.cmd(&["pull", &remote])
        .env("DOCKER_CONFIG", root.path().join("no-docker-config"))
        .output()
        .expect("wrun pull")
        .status
        .success()
        .then_some(())
        .expect("the pull, with space");
    let ran = root.wrun(&["run", "--rm", &remote, "wc", "-c", "/big"]);
    assert!(
        ran.ok().contains(&(4u32 << 20).to_string()),
        "{}",
        ran.stdout
    );
    crate::docker_cli::docker(&root, &["commit", "changed", "snap"]).ok();
    let ran = root.wrun(&["run", "--rm", "snap", "wc", "-c", "/data"]);
    assert!(ran.ok().contains("1010373"), "{}", ran.stdout);
    let created = crate::support::api(
        &root,
        "POST",
        "/containers/create?name=labelled",
        Some(&labelled),
    );
    assert_eq!(created.status, 201, "{created:?}");
    root.wrun(&["rm", "-f", "chatter"]).ok();
    root.wrun(&["daemon", "stop"]).ok();
}
