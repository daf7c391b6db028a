//! Faults injected on purpose: the daemon's database corrupted, or held by
//! another process. Each gets a clear error that names it, nothing is
//! lost, and the daemon never starts from an empty state in its place.

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

/// A tmpfs of `size` mounted over a directory for the test's life; lazily
/// unmounted when dropped, so a daemon still holding files there cannot
/// keep it mounted.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Self {
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
    let _disk = Tmpfs::mount(root.path(), "96m");
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
    let big: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
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
