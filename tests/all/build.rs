//! `wrun build`: Dockerfile semantics, determinism, the build cache, and
//! the OCI image it writes.

use crate::support::{Root, sample};

#[test]
fn builds_the_kubia_sample_like_docker() {
    let root = Root::new();
    root.busybox();
    let ctx = sample("kubia");
    let out = root.wrun(&["build", "-t", "kubia", ctx.to_str().expect("utf8")]);
    let text = out.ok();
    assert!(text.contains("Step 1/3 : FROM busybox"), "{text}");
    assert!(
        text.contains("Step 2/3 : ADD kubia.wasm /app.wasm"),
        "{text}"
    );
    assert!(
        text.contains("Step 3/3 : ENTRYPOINT [\"/app.wasm\"]"),
        "{text}"
    );
    assert!(text.contains("Successfully tagged kubia:latest"), "{text}");
    let v = root.inspect("kubia");
    assert_eq!(v["Architecture"], "wasm");
    assert_eq!(v["Os"], "wasip2", "kubia is a component");
    assert_eq!(v["Config"]["Entrypoint"], serde_json::json!(["/app.wasm"]));
    assert_eq!(v["RepoTags"], serde_json::json!(["kubia:latest"]));
    assert_eq!(
        v["RootFS"]["Layers"].as_array().map(Vec::len),
        Some(2),
        "busybox's layer, then the component"
    );
}

#[test]
fn os_follows_the_entrypoint() {
    let root = Root::new();
    root.busybox().busybox_p1();
    assert_eq!(root.inspect("busybox")["Os"], "wasip2");
    assert_eq!(root.inspect("busybox:wasip1")["Os"], "wasip1");
    assert_eq!(
        root.inspect("busybox")["Config"]["Cmd"],
        serde_json::json!(["sh"])
    );
}

#[test]
fn same_context_same_image_id_and_cache_hits() {
    let a = Root::new();
    let b = Root::new();
    let ctx = sample("busybox");
    let ctx = ctx.to_str().expect("utf8");
    a.wrun(&["build", "-t", "bb", ctx]).ok();
    b.wrun(&["build", "--no-cache", "-t", "bb", ctx]).ok();
    assert_eq!(
        a.image_id("bb"),
        b.image_id("bb"),
        "builds are reproducible across roots"
    );
    let again = a.wrun(&["build", "-t", "bb2", ctx]);
    assert!(again.ok().contains("Using cache"), "{}", again.stdout);
    let fresh = a.wrun(&["build", "--no-cache", "-t", "bb3", ctx]);
    assert!(!fresh.ok().contains("Using cache"));
    assert_eq!(a.image_id("bb2"), a.image_id("bb3"));
}

#[test]
fn copy_forms_globs_workdir_env_and_dockerignore() {
    let root = Root::new();
    let busybox = std::fs::read(sample("busybox").join("wasip2/bin/busybox")).expect("busybox");
    let dockerfile = "\
# a comment
FROM scratch
ARG DEST=/opt
ENV GREETING=\"hello there\" \\
    OTHER=x
COPY busybox.wasm /bin/busybox
COPY conf/*.txt ${DEST}/conf/
COPY tree /srv/
WORKDIR /srv
COPY single.txt renamed.txt
LABEL org.example.kind=test
EXPOSE 8080
ENTRYPOINT [\"/bin/busybox\"]
CMD [\"sh\", \"-c\", \"ls /opt/conf; ls /srv; cat renamed.txt; echo $GREETING\"]
";
    let (_ctx, out) = root.build_context(
        "copies",
        dockerfile,
        &[
            ("busybox.wasm", &busybox),
            ("conf/a.txt", b"a"),
            ("conf/b.txt", b"b"),
            ("conf/c.md", b"c"),
            ("tree/x/y.txt", b"y"),
            ("tree/secret.key", b"k"),
            ("single.txt", b"single\n"),
            (".dockerignore", b"tree/secret.key\n"),
        ],
    );
    out.ok();
    let run = root.wrun(&["run", "--rm", "copies"]);
    assert_eq!(
        run.ok(),
        "a.txt\nb.txt\nrenamed.txt\nx\nsingle\nhello there\n"
    );
    let v = root.inspect("copies");
    assert_eq!(v["Config"]["WorkingDir"], "/srv");
    assert_eq!(v["Config"]["Labels"]["org.example.kind"], "test");
    assert!(v["Config"]["ExposedPorts"]["8080/tcp"].is_object(), "{v}");
}

#[test]
fn shell_form_runs_through_bin_sh() {
    let root = Root::new();
    let busybox = std::fs::read(sample("busybox").join("wasip2/bin/busybox")).expect("busybox");
    let (_ctx, out) = root.build_context(
        "shellform",
        "FROM scratch\nCOPY busybox.wasm /bin/busybox\nCOPY sh /bin/sh\nCMD echo from shell form && exit 5\n",
        &[("busybox.wasm", &busybox), ("sh", &busybox)],
    );
    out.ok();
    assert_eq!(
        root.inspect("shellform")["Config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "echo from shell form && exit 5"])
    );
    let run = root.wrun(&["run", "--rm", "shellform"]);
    assert_eq!((run.code, run.stdout.as_str()), (5, "from shell form\n"));
}

#[test]
fn from_a_local_image_adds_layers() {
    let root = Root::new();
    root.busybox();
    let (_ctx, out) = root.build_context(
        "derived",
        "FROM busybox\nCOPY hello.txt /hello.txt\nCMD [\"cat\", \"/hello.txt\"]\n",
        &[("hello.txt", b"layered\n")],
    );
    out.ok();
    assert_eq!(
        root.inspect("derived")["RootFS"]["Layers"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(root.wrun(&["run", "--rm", "derived"]).ok(), "layered\n");
}
