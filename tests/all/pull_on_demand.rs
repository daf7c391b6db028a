//! Verbs that need an image pull it when it is missing: `run` (with
//! `--pull=always|missing|never`) and `build` (its FROM image).

use crate::registry::{Registry, wrun};
use crate::support::Root;

/// Pushes busybox to `reg` from a throwaway root; returns its name there.
fn publish_busybox(reg: &Registry) -> String {
    let publisher = Root::new();
    publisher.busybox();
    let name = format!("{}/me/busybox:v1", reg.host());
    publisher.wrun(&["tag", "busybox", &name]).ok();
    wrun(&publisher, &["push", &name]).ok();
    name
}

#[test]
fn run_pulls_a_missing_image() {
    let reg = Registry::start(false);
    let name = publish_busybox(&reg);
    let root = Root::new();
    root.wrun(&["run", "--rm", "--pull=never", &name, "true"])
        .fails(125, "--pull=never");
    let r = wrun(&root, &["run", "--rm", &name, "echo", "pulled on demand"]);
    assert_eq!(
        r.ok(),
        "pulled on demand\n",
        "pull progress must not reach stdout"
    );
    assert!(r.stderr.contains("Unable to find image"), "{}", r.stderr);
    assert!(
        r.stderr.contains("Status: Downloaded newer image"),
        "{}",
        r.stderr
    );
    let again = wrun(&root, &["run", "--rm", &name, "true"]);
    assert!(
        !again.stderr.contains("Pulling"),
        "present images are not pulled: {}",
        again.stderr
    );
    let always = wrun(&root, &["run", "--rm", "--pull=always", &name, "true"]);
    assert!(
        always.stderr.contains("Image is up to date"),
        "{}",
        always.stderr
    );
}

#[test]
fn build_pulls_its_missing_base() {
    let reg = Registry::start(false);
    let name = publish_busybox(&reg);
    let root = Root::new();
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {name}\nCOPY note.txt /note.txt\nCMD [\"cat\", \"/note.txt\"]\n"),
    )
    .expect("write");
    std::fs::write(ctx.path().join("note.txt"), "on top of a pulled base\n").expect("write");
    wrun(
        &root,
        &["build", "-t", "derived", ctx.path().to_str().expect("utf8")],
    )
    .ok();
    assert_eq!(
        root.wrun(&["run", "--rm", "derived"]).ok(),
        "on top of a pulled base\n"
    );
}
