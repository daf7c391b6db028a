//! The CNCF wasm artifact, pushed by a client that is not wrun (PyPI's
//! `oras`): wrun pulls it and runs the wasm as the entrypoint.

use std::process::Command;

use crate::registry::{Registry, wrun};
use crate::support::Root;

/// A WASIp1 program that prints one line, whatever its argv[0].
const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from an artifact\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 23))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// Pushes `wasm` with oras (CI installs it, `.ci/run`) as one layer of
/// `layer_type`; with `cncf_config`, under the CNCF wasm config, else
/// under oras's own empty config.
fn oras_push(reg: &Registry, target: &str, wasm: &[u8], layer_type: &str, cncf_config: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm_path = dir.path().join("hello.wasm");
    std::fs::write(&wasm_path, wasm).expect("write wasm");
    let config_path = dir.path().join("config.json");
    std::fs::write(
        &config_path,
        r#"{"created":"2026-01-01T00:00:00Z","architecture":"wasm","os":"wasip1","layerDigests":[]}"#,
    )
    .expect("write config");
    let script = r#"
import sys
from oras.client import OrasClient
host, target, wasm, config, layer_type = sys.argv[1:6]
client = OrasClient(hostname=host, insecure=True)
extra = {}
if config != "-":
    extra["manifest_config"] = config + ":application/vnd.wasm.config.v0+json"
client.push(target=target, files=[wasm + ":" + layer_type],
            disable_path_validation=True, quiet=True, **extra)
"#;
    let out = Command::new("python3")
        .current_dir(dir.path())
        .args(["-c", script, &reg.host(), target])
        .arg(&wasm_path)
        .arg(if cncf_config {
            config_path.as_os_str()
        } else {
            std::ffi::OsStr::new("-")
        })
        .arg(layer_type)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "oras push failed (pip install oras):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pulls_and_runs_a_cncf_wasm_artifact_pushed_by_oras() {
    let reg = Registry::start(false);
    let target = format!("{}/me/hello:v1", reg.host());
    oras_push(
        &reg,
        &target,
        &wat::parse_str(HELLO).expect("wat"),
        "application/wasm",
        true,
    );
    let root = Root::new();
    wrun(&root, &["pull", &target]).ok();
    let inspect = root.inspect(&target);
    assert_eq!(inspect["Os"], "wasip1");
    assert_eq!(
        inspect["Config"]["Entrypoint"],
        serde_json::json!(["/app.wasm"])
    );
    assert_eq!(
        root.wrun(&["run", "--rm", &target]).ok(),
        "hello from an artifact\n"
    );
    // Converting is deterministic: pulling again changes nothing.
    let again = wrun(&root, &["pull", &target]);
    assert!(
        again.ok().contains("Image is up to date"),
        "{}",
        again.stdout
    );
}

#[test]
fn pulls_the_older_wasm_content_layer_format() {
    let reg = Registry::start(false);
    let target = format!("{}/me/old:v1", reg.host());
    let wasm = wat::parse_str(HELLO).expect("wat");
    oras_push(
        &reg,
        &target,
        &wasm,
        "application/vnd.wasm.content.layer.v1+wasm",
        false,
    );
    let root = Root::new();
    wrun(&root, &["pull", &target]).ok();
    assert_eq!(
        root.wrun(&["run", "--rm", &target]).ok(),
        "hello from an artifact\n"
    );
}

#[test]
fn an_artifact_whose_layer_is_not_wasm_is_refused() {
    let reg = Registry::start(false);
    let target = format!("{}/me/notwasm:v1", reg.host());
    oras_push(
        &reg,
        &target,
        b"\x7fELF\x02\x01\x01 definitely not wasm",
        "application/wasm",
        true,
    );
    let root = Root::new();
    let r = wrun(&root, &["pull", &target]);
    r.fails(1, "not WebAssembly");
    assert_eq!(root.wrun(&["images", "-q"]).ok(), "");
}
