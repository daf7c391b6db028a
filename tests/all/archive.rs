//! `wrun save` and `wrun load`: OCI image-layout archives that skopeo and
//! umoci, real tools of the OCI ecosystem, read and write.

use crate::support::{Root, tool, umoci_busybox};

#[test]
fn save_then_load_into_another_root() {
    let a = Root::new();
    a.busybox();
    let archive = a.path().join("busybox.tar");
    let archive_s = archive.to_str().expect("utf8");
    a.wrun(&["save", "-o", archive_s, "busybox"]).ok();
    let b = Root::new();
    assert_eq!(
        b.wrun(&["load", "-i", archive_s]).ok(),
        "Loaded image: busybox:latest\n"
    );
    assert_eq!(a.image_id("busybox"), b.image_id("busybox"));
    assert_eq!(
        b.wrun(&["run", "--rm", "busybox", "echo", "moved"]).ok(),
        "moved\n"
    );
}

#[test]
fn skopeo_reads_what_wrun_saves() {
    let root = Root::new();
    root.kubia();
    let archive = root.path().join("kubia.tar");
    root.wrun(&["save", "-o", archive.to_str().expect("utf8"), "kubia"])
        .ok();
    let out = root.path().join("copied");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci-archive:{}", archive.display()),
            &format!("dir:{}", out.display()),
        ],
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).expect("manifest"))
            .expect("json");
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    assert_eq!(config_digest, root.image_id("kubia"));
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join(&config_digest["sha256:".len()..])).expect("config"),
    )
    .expect("json");
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("wasm"), Some("wasip2"))
    );
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app.wasm"])
    );
}

#[test]
fn loads_and_runs_an_image_built_by_umoci() {
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let image = umoci_busybox(work.path());
    let archive = work.path().join("hello.tar");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci:{image}"),
            &format!(
                "oci-archive:{}:docker.io/library/hello:latest",
                archive.display()
            ),
        ],
    );
    let loaded = root.wrun(&["load", "-i", archive.to_str().expect("utf8")]);
    assert_eq!(loaded.ok(), "Loaded image: hello:latest\n");
    assert_eq!(root.wrun(&["run", "--rm", "hello"]).ok(), "hi from umoci\n");
}

#[test]
fn a_tampered_archive_stores_nothing() {
    let a = Root::new();
    a.busybox();
    let archive = a.path().join("busybox.tar");
    a.wrun(&["save", "-o", archive.to_str().expect("utf8"), "busybox"])
        .ok();
    // Flip one byte inside the largest blob: the busybox layer.
    let mut bytes = std::fs::read(&archive).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&archive, &bytes).expect("tamper");
    let b = Root::new();
    b.wrun(&["load", "-i", archive.to_str().expect("utf8")])
        .fails(125, "does not match its digest");
    assert_eq!(b.wrun(&["images", "-q"]).ok(), "");
    b.wrun(&["load", "-i", "/nonexistent.tar"])
        .fails(125, "/nonexistent.tar");
    let garbage = b.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all").expect("write");
    b.wrun(&["load", "-i", garbage.to_str().expect("utf8")])
        .fails(125, "garbage.tar");
}
