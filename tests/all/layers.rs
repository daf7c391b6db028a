//! A container's root is its image's layers, shared, under a writable layer
//! of its own: a container that only reads writes nothing to disk, and one
//! that writes holds only what it wrote, which no other container sees.

use std::path::{Path, PathBuf};

use crate::support::Root;

fn upper(root: &Root, name: &str) -> PathBuf {
    let id = root.container(name)["Id"]
        .as_str()
        .expect("an Id")
        .to_string();
    root.path().join("containers").join(id).join("upper")
}

/// Every path under `dir`, relative and sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walk(dir, dir);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        out.push(p.strip_prefix(base).expect("under").display().to_string());
        if e.file_type().expect("type").is_dir() {
            out.extend(walk(base, &p));
        }
    }
    out
}

#[test]
fn a_container_that_only_reads_has_no_writable_layer() {
    let root = Root::new();
    root.busybox();
    let out = root.wrun(&[
        "run",
        "--name",
        "reader",
        "busybox",
        "sh",
        "-c",
        "ls /bin; cat /bin/sh; ls -la /; echo read >&2",
    ]);
    out.ok();
    assert_eq!(out.stderr, "read\n");
    assert!(
        !upper(&root, "reader").exists(),
        "a reader made its writable layer"
    );
}

/// A root with two busybox containers, `a` and `b`, running `sleep`.
fn two_sleepers() -> Root {
    let root = Root::new();
    root.busybox();
    for name in ["a", "b"] {
        root.wrun(&["run", "-d", "--name", name, "busybox", "sleep", "3600"])
            .ok();
    }
    root
}

#[test]
fn writes_stay_in_their_container_and_survive_a_restart() {
    let root = two_sleepers();
    root.wrun(&[
        "exec",
        "a",
        "sh",
        "-c",
        "echo mine > /etc-note; mkdir -p /srv/www; echo page > /srv/www/index; rm /bin/ls",
    ])
    .ok();
    assert_eq!(root.wrun(&["exec", "a", "cat", "/etc-note"]).ok(), "mine\n");
    // Beneath a mount point is the mounted filesystem's, even by `..`.
    root.wrun(&["exec", "a", "sh", "-c", "echo x > /srv/../proc/planted"])
        .fails(1, "");
    root.wrun(&["exec", "a", "ls", "/"]).fails(127, "not found");
    // b sees its image, untouched: no note, and its own ls.
    root.wrun(&["exec", "b", "cat", "/etc-note"])
        .fails(1, "No such file");
    assert!(
        root.wrun(&["exec", "b", "ls", "/bin"])
            .ok()
            .contains("busybox")
    );
    assert!(!upper(&root, "b").exists());
    // a's writable layer holds what it wrote and a whiteout, nothing more.
    assert_eq!(
        tree(&upper(&root, "a")),
        [
            "bin",
            "bin/.wh.ls",
            "etc-note",
            "srv",
            "srv/www",
            "srv/www/index"
        ]
    );
    // Kept across a stop and a start, and gone with the container.
    root.wrun(&["stop", "a"]).ok();
    root.wrun(&["start", "a"]).ok();
    assert_eq!(
        root.wrun(&["exec", "a", "cat", "/srv/www/index"]).ok(),
        "page\n"
    );
    let dir = upper(&root, "a");
    root.wrun(&["rm", "-f", "a", "b"]).ok();
    assert!(!dir.exists(), "{} outlived its container", dir.display());
}

#[test]
fn a_program_a_container_overwrites_is_the_one_it_runs() {
    let root = two_sleepers();
    // Both have started busybox from the image's layer, which the daemon
    // then finds without reading it again. a overwrites its copy.
    root.wrun(&["exec", "a", "true"]).ok();
    root.wrun(&["exec", "a", "sh", "-c", "echo not-wasm > /bin/busybox"])
        .ok();
    let ran = root.wrun(&["exec", "a", "true"]);
    assert_ne!(ran.code, 0, "a ran the image's busybox: {ran:?}");
    assert!(
        ran.stderr
            .contains("/bin/true: cannot run a file of some other kind"),
        "{ran:?}"
    );
    // b still runs the image's.
    root.wrun(&["exec", "b", "true"]).ok();
    root.wrun(&["rm", "-f", "a", "b"]).ok();
}
