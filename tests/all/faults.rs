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
