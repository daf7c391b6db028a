//! Registry interoperability with real OCI tools: skopeo copies what
//! `wrun push` wrote, and wrun pulls and runs an image that umoci built and
//! skopeo pushed. Each test has its own docker-registry on 127.0.0.1 and
//! its own state root.

use std::path::Path;

use crate::registry::{Registry, wrun};
use crate::support::{Root, tool, umoci_busybox};

fn read_json(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The file of blob `digest` (`sha256:…`) in the OCI layout `layout`.
fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

#[test]
fn skopeo_copies_what_wrun_pushed() {
    let reg = Registry::start(false);
    let root = Root::new();
    root.kubia();
    let name = format!("{}/me/kubia:v1", reg.host());
    wrun(&root, &["tag", "kubia", &name]).ok();
    wrun(&root, &["push", &name]).ok();
    let id = root.image_id(&name);

    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("layout");
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{name}"),
            &format!("oci:{}:v1", layout.display()),
        ],
    );

    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("index manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(
        manifests[0]["annotations"]["org.opencontainers.image.ref.name"], "v1",
        "{index}"
    );
    let manifest_digest = manifests[0]["digest"].as_str().expect("manifest digest");
    let manifest = read_json(&blob(&layout, manifest_digest));
    assert_eq!(manifest["schemaVersion"], 2, "{manifest}");
    assert_eq!(
        manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json",
        "{manifest}"
    );
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    assert_eq!(config_digest, id, "the config digest is the image ID");

    let layers = manifest["layers"].as_array().expect("layers");
    assert!(!layers.is_empty(), "{manifest}");
    for layer in layers {
        assert_eq!(
            layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
            "{manifest}"
        );
        let digest = layer["digest"].as_str().expect("layer digest");
        let len = std::fs::metadata(blob(&layout, digest))
            .expect("layer blob copied")
            .len();
        assert_eq!(Some(len), layer["size"].as_u64(), "{manifest}");
    }

    let config = read_json(&blob(&layout, config_digest));
    assert_eq!(config["architecture"], "wasm", "{config}");
    assert_eq!(config["os"], "wasip2", "{config}");
    assert_eq!(
        config["config"]["Entrypoint"],
        serde_json::json!(["/app.wasm"]),
        "{config}"
    );
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().map(Vec::len),
        Some(layers.len()),
        "one diff_id per layer: {config}"
    );
    // What wrun reports locally agrees with what skopeo fetched.
    let inspect = root.inspect(&name);
    assert_eq!(inspect["Os"], "wasip2", "{inspect}");
    assert_eq!(inspect["Architecture"], "wasm", "{inspect}");
}

#[test]
fn pulls_and_runs_an_image_built_by_umoci_and_pushed_by_skopeo() {
    let reg = Registry::start(false);
    let root = Root::new();
    let work = tempfile::tempdir().expect("tempdir");
    let image = umoci_busybox(work.path());

    let name = format!("{}/me/hello:v1", reg.host());
    tool(
        "skopeo",
        &[
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{image}"),
            &format!("docker://{name}"),
        ],
    );

    let pulled = wrun(&root, &["pull", &name]);
    let stdout = pulled.ok();
    assert!(
        stdout.starts_with("v1: Pulling from me/hello\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Status: Downloaded newer image for {name}\n")),
        "{stdout}"
    );
    let inspect = root.inspect(&name);
    assert_eq!(inspect["Os"], "wasip1", "{inspect}");
    assert_eq!(inspect["Architecture"], "wasm", "{inspect}");
    assert_eq!(wrun(&root, &["run", "--rm", &name]).ok(), "hi from umoci\n");
    // Arguments replace the image's Cmd, as in Docker.
    assert_eq!(
        wrun(&root, &["run", "--rm", &name, "other", "words"]).ok(),
        "other words\n"
    );
}
