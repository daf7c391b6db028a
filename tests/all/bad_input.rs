//! Bad input of every kind gets a clear error naming the object, exits
//! non-zero without a panic, and stores nothing.

use crate::support::Root;

/// Asserts that nothing was tagged and wrun did not panic.
#[track_caller]
fn nothing_stored(root: &Root, ran: &crate::support::Ran) {
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    assert_eq!(
        root.wrun(&["images", "-q"]).ok(),
        "",
        "nothing may be stored"
    );
}

#[test]
fn malformed_dockerfiles_name_the_line() {
    let root = Root::new();
    let (_c, r) = root.build_context(
        "bad",
        "FROM scratch\nCOPY a.txt /a\nFORM scratch\n",
        &[("a.txt", b"a")],
    );
    r.fails(125, "line 3");
    assert!(r.stderr.contains("unknown instruction"), "{}", r.stderr);
    nothing_stored(&root, &r);

    let (_c, r) = root.build_context("bad", "FROM scratch\nENV A=\"unterminated\n", &[]);
    r.fails(125, "line 2");
    nothing_stored(&root, &r);

    let (_c, r) = root.build_context("bad", "COPY a /a\n", &[("a", b"a")]);
    r.fails(125, "line 1");
    nothing_stored(&root, &r);

    let (_c, r) = root.build_context("bad", "FROM scratch\nRUN echo hi\n", &[]);
    r.fails(125, "RUN");
    nothing_stored(&root, &r);
}

#[test]
fn copy_sources_must_stay_in_the_context() {
    let root = Root::new();
    let (_c, r) = root.build_context("bad", "FROM scratch\nCOPY ../outside /x\n", &[]);
    r.fails(125, "outside the build context");
    nothing_stored(&root, &r);
    let (_c, r) = root.build_context("bad", "FROM scratch\nCOPY missing.wasm /x\n", &[]);
    r.fails(125, "missing.wasm");
    nothing_stored(&root, &r);
    // A symlink in the context that leads out of it is not followed.
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret"), "s").expect("write");
    let ctx = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY link /x\n",
    )
    .expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path().join("secret"), ctx.path().join("link"))
        .expect("symlink");
    let r = root.wrun(&["build", "-t", "bad", ctx.path().to_str().expect("utf8")]);
    r.fails(125, "outside the build context");
}

#[test]
fn missing_images() {
    let root = Root::new();
    let r = root.wrun(&["run", "--pull=never", "no-such-image"]);
    r.fails(125, "--pull=never");
    assert!(
        r.stderr
            .contains("Unable to find image 'no-such-image:latest' locally"),
        "{}",
        r.stderr
    );
    // Port 9 on loopback has no registry: the pull fails at once, locally.
    let r = root.wrun(&["run", "127.0.0.1:9/no-such-image"]);
    r.fails(125, "127.0.0.1:9");
    assert!(r.stderr.contains("Unable to find image"), "{}", r.stderr);
    nothing_stored(&root, &r);
    let (_c, r) = root.build_context(
        "x",
        "FROM 127.0.0.1:9/no-such-base\nCOPY a /a\n",
        &[("a", b"a")],
    );
    r.fails(125, "FROM 127.0.0.1:9/no-such-base");
    nothing_stored(&root, &r);
    root.wrun(&["run", "Bad:Ref:x"])
        .fails(125, "invalid reference");
}

#[test]
fn non_wasm_and_corrupt_programs() {
    let root = Root::new();
    let elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0";
    let (_c, r) = root.build_context(
        "elf",
        "FROM scratch\nCOPY app /app\nENTRYPOINT [\"/app\"]\n",
        &[("app", elf)],
    );
    r.ok();
    assert_eq!(root.inspect("elf")["Os"], "wasi");
    root.wrun(&["run", "--rm", "elf"]).fails(126, "ELF");

    let (_c, r) = root.build_context(
        "corrupt",
        "FROM scratch\nCOPY app.wasm /app.wasm\nENTRYPOINT [\"/app.wasm\"]\n",
        &[("app.wasm", b"\0asm\x01\0\0\0\x01\xff\xff\xff garbage")],
    );
    r.ok();
    root.wrun(&["run", "--rm", "corrupt"])
        .fails(126, "invalid WebAssembly");
    root.busybox();
    root.wrun(&["run", "--rm", "busybox", "no-such-applet-file"])
        .fails(127, "not found");
}

#[test]
fn a_trapping_guest_shows_the_trap() {
    let root = Root::new();
    root.wat_image("trap", crate::support::TRAP_WAT);
    let r = root.wrun(&["run", "--rm", "trap"]);
    r.fails(134, "guest trapped");
    assert!(r.stderr.contains("unreachable"), "{}", r.stderr);
}

#[test]
fn a_memory_bomb_hits_its_limit() {
    let root = Root::new();
    root.wat_image("bomb", crate::support::MEMORY_BOMB_WAT);
    let r = root.wrun(&["run", "--rm", "--memory", "32m", "bomb"]);
    r.fails(137, "out of memory");
    assert!(
        r.stderr.contains("33554432"),
        "names the limit: {}",
        r.stderr
    );
    root.wrun(&["run", "--rm", "--memory", "lots", "bomb"])
        .fails(125, "invalid size");
}

#[test]
fn a_layer_with_traversal_or_absolute_paths_is_refused() {
    let root = Root::new();
    for (name, hostile) in [("dotdot", "../escape.txt"), ("absolute", "/tmp/escape.txt")] {
        let mut header = tar::Header::new_gnu();
        let raw = hostile.as_bytes();
        header.as_old_mut().name[..raw.len()].copy_from_slice(raw);
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        let mut tarball = header.as_bytes().to_vec();
        tarball.extend_from_slice(&[b'x'; 512]);
        tarball.extend_from_slice(&[0; 1024]);
        let (_c, r) = root.build_context(
            name,
            "FROM scratch\nADD evil.tar /\n",
            &[("evil.tar", &tarball)],
        );
        r.fails(125, "evil.tar");
        assert!(r.stderr.contains(hostile), "names the entry: {}", r.stderr);
        nothing_stored(&root, &r);
    }
}

#[test]
fn a_tampered_blob_is_never_trusted() {
    let root = Root::new();
    root.busybox();
    let manifest_digest = root.inspect("busybox")["Descriptor"]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let path = root
        .path()
        .join("blobs/sha256")
        .join(&manifest_digest["sha256:".len()..]);
    // A run first, so the daemon has read and verified the manifest once:
    // what it keeps of it must not outlive a change on disk.
    root.wrun(&["run", "--rm", "busybox", "true"]).ok();
    let mut bytes = std::fs::read(&path).expect("read manifest");
    bytes.push(b' ');
    std::fs::write(&path, bytes).expect("tamper");
    root.wrun(&["run", "--rm", "busybox", "true"])
        .fails(125, "does not match its digest");
}

#[test]
fn a_wasi_http_component_is_served_not_run() {
    let root = Root::new();
    let component = wat::parse_str(
        r#"(component
             (core module $m (func (export "handle")))
             (core instance $i (instantiate $m))
             (func $f (canon lift (core func $i "handle")))
             (instance $h (export "handle" (func $f)))
             (export "wasi:http/incoming-handler@0.2.0" (instance $h)))"#,
    )
    .expect("component wat");
    let (_c, r) = root.build_context(
        "http",
        "FROM scratch\nCOPY handler.wasm /handler.wasm\nENTRYPOINT [\"/handler.wasm\"]\n",
        &[("handler.wasm", &component)],
    );
    r.ok();
    assert_eq!(root.inspect("http")["Os"], "wasip2");
    // Detected as a wasi:http component, so it is served rather than run;
    // with no network to serve on, that is a clear error.
    let r = root.wrun(&["run", "--rm", "--network", "none", "http"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("needs a network"), "{r:?}");
}

#[test]
fn an_unknown_import_is_a_clear_start_error() {
    let root = Root::new();
    root.wat_image(
        "importer",
        r#"(module (import "env" "launch_missiles" (func)) (memory (export "memory") 1)
             (func (export "_start")))"#,
    );
    let r = root.wrun(&["run", "--rm", "importer"]);
    r.fails(125, "cannot start");
    assert!(r.stderr.contains("launch_missiles"), "{}", r.stderr);
}
