//! `wrun images`, `tag`, `rmi` and `image inspect`.

use crate::support::Root;

#[test]
fn images_lists_tags_with_docker_columns() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["tag", "busybox", "127.0.0.1:5000/me/busybox:v1"])
        .ok();
    let out = root.wrun(&["images"]);
    let text = out.ok();
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    for col in ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"] {
        assert!(header.contains(col), "{header}");
    }
    let id = root.image_id("busybox");
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter()
            .any(|r| r.starts_with("busybox ") && r.contains("latest") && r.contains(short)),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("127.0.0.1:5000/me/busybox ")
                && r.contains("v1")
                && r.contains(short)),
        "{rows:?}"
    );
    assert_eq!(
        root.image_id("127.0.0.1:5000/me/busybox:v1"),
        id,
        "both names show the same ID"
    );
    assert_eq!(root.image_id(short), id, "a short ID resolves");
    assert_eq!(root.wrun(&["images", "-q"]).ok().trim(), short);
}

#[test]
fn rmi_untags_then_deletes_and_respects_containers() {
    let root = Root::new();
    root.busybox();
    root.wrun(&["tag", "busybox", "other"]).ok();
    let out = root.wrun(&["rmi", "other"]);
    assert_eq!(out.ok(), "Untagged: other:latest\n");
    root.wrun(&["run", "--name", "user", "busybox", "true"])
        .ok();
    root.wrun(&["rmi", "busybox"]).fails(1, "container");
    assert!(
        root.wrun(&["images"]).ok().contains("busybox"),
        "refused rmi keeps the image"
    );
    let forced = root.wrun(&["rmi", "-f", "busybox"]);
    assert!(forced.ok().contains("Deleted: sha256:"), "{forced:?}");
    assert_eq!(root.wrun(&["images", "-q"]).ok(), "");
    root.wrun(&["rmi", "busybox"]).fails(1, "image not found");
}

#[test]
fn inspect_unknown_image_is_an_error() {
    let root = Root::new();
    let out = root.wrun(&["image", "inspect", "nothing-here"]);
    out.fails(125, "nothing-here");
    assert_eq!(out.stdout.trim(), "[]");
}

#[test]
fn images_digests_shows_the_manifest_digest() {
    let root = Root::new();
    root.busybox();
    let digest = root.inspect("busybox")["Descriptor"]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let out = root.wrun(&["images", "--digests"]);
    let text = out.ok();
    assert!(
        text.lines().next().is_some_and(|h| h.contains("DIGEST")),
        "{text}"
    );
    assert!(text.contains(&digest), "{text}");
    // Pull by that digest resolves locally to the same image.
    assert_eq!(
        root.image_id(&format!("busybox@{digest}")),
        root.image_id("busybox")
    );
}
