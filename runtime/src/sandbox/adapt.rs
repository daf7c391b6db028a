//! WASIp1 modules become WASIp2 command components, so that every guest
//! runs through one set of host interfaces (`wasi:filesystem`,
//! `wasi:sockets` and the rest, which wrun shadows where it must).
//!
//! The conversion is wasmtime's own: its preview1 command adapter (the
//! release that matches the engine) encoded around the module with
//! wit-component. One thing is changed first. The adapter turns any
//! non-zero `proc_exit` status into a plain failure, while a shell (and
//! Docker) must see the guest's own code: the module's
//! `wasi_snapshot_preview1.proc_exit` import is renamed to wrun's
//! `wrun:process/exit.exit`, which the linker answers by ending the guest
//! with that code.

use std::convert::Infallible;

use wasm_encoder::reencode::{Reencode, utils};
use wasmparser::{Parser, Payload};

use super::SandboxError;

/// The interface that ends a converted guest with its own exit code.
pub const EXIT_INTERFACE: &str = "wrun:process/exit@0.1.0";
const EXIT_WIT: &str = "package wrun:process@0.1.0;

interface exit {
  /// Ends the program with `code`, as WASIp1's proc_exit.
  exit: func(code: u32);
}

world module {
  import exit;
}
";

const P1: &str = "wasi_snapshot_preview1";

/// A tag of the conversion, part of the compile cache's key: a change here
/// or a new adapter must not reuse components converted before.
pub const VERSION: &str = "p1-adapter-48.0.8-exit1";

/// Checks that a core module can be run: it is valid, exports `_start`
/// (the only entry point wrun runs), and imports only WASIp1. `name`
/// names it in errors.
pub fn check_module(name: &str, bytes: &[u8]) -> Result<(), SandboxError> {
    wasmparser::Validator::new()
        .validate_all(bytes)
        .map_err(|e| SandboxError::Compile {
            program: name.to_string(),
            message: e.to_string(),
        })?;
    let mut start = false;
    for payload in Parser::new(0).parse_all(bytes).flatten() {
        match payload {
            Payload::ExportSection(exports) => {
                start |= exports
                    .into_iter()
                    .flatten()
                    .any(|e| e.name == "_start" && e.kind == wasmparser::ExternalKind::Func);
            }
            Payload::ImportSection(imports) => {
                let foreign: Vec<String> = imports
                    .into_imports()
                    .flatten()
                    .filter(|i| i.module != P1)
                    .map(|i| format!("{}::{}", i.module, i.name))
                    .collect();
                if !foreign.is_empty() {
                    return Err(SandboxError::Start {
                        program: name.to_string(),
                        message: format!(
                            "it imports {}, which wrun does not provide (a WASIp1 module may import wasi_snapshot_preview1 only)",
                            foreign.join(", ")
                        ),
                    });
                }
            }
            _ => {}
        }
    }
    if !start {
        return Err(SandboxError::NotCommand {
            program: name.to_string(),
            message: "this module exports no _start function; wrun runs WASI commands".into(),
        });
    }
    Ok(())
}

/// Renames the `proc_exit` import; every other byte of the module stays.
struct ExitRename {
    renamed: bool,
}

impl Reencode for ExitRename {
    type Error = Infallible;

    fn parse_import_section(
        &mut self,
        imports: &mut wasm_encoder::ImportSection,
        section: wasmparser::ImportSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Infallible>> {
        for import in section.into_imports() {
            let mut import = import?;
            if import.module == P1 && import.name == "proc_exit" {
                import.module = EXIT_INTERFACE;
                import.name = "exit";
                self.renamed = true;
            }
            utils::parse_import(self, imports, import)?;
        }
        Ok(())
    }
}

/// The WASIp2 command component for the WASIp1 module in `bytes`. `name`
/// names it in errors.
pub fn module_to_command(name: &str, bytes: &[u8]) -> Result<Vec<u8>, SandboxError> {
    let invalid = |message: String| SandboxError::Compile {
        program: name.to_string(),
        message,
    };
    let mut rename = ExitRename { renamed: false };
    let mut module = wasm_encoder::Module::new();
    rename
        .parse_core_module(&mut module, Parser::new(0), bytes)
        .map_err(|e| invalid(format!("{e}")))?;
    let mut module = module.finish();
    if rename.renamed {
        let mut resolve = wit_parser::Resolve::default();
        let pkg = resolve
            .push_str("wrun-process.wit", EXIT_WIT)
            .map_err(|e| invalid(format!("wrun's exit interface: {e:#}")))?;
        let world = resolve
            .select_world(&[pkg], Some("module"))
            .map_err(|e| invalid(format!("wrun's exit interface: {e:#}")))?;
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
        )
        .map_err(|e| invalid(format!("{e:#}")))?;
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| {
            e.adapter(
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .map_err(|e| invalid(format!("as a WASIp1 command: {e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_becomes_a_command_that_keeps_its_exit_import() {
        let wat = r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start") (call $exit (i32.const 127))))"#;
        let bytes = wat::parse_str(wat).expect("wat");
        check_module("t.wasm", &bytes).expect("runnable");
        let component = module_to_command("t.wasm", &bytes).expect("converted");
        assert!(wasmparser::Parser::is_component(&component));
        let engine = wasmtime::Engine::default();
        let c = wasmtime::component::Component::new(&engine, &component).expect("compiles");
        let ty = c.component_type();
        let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_string()).collect();
        assert!(imports.iter().any(|i| i == EXIT_INTERFACE), "{imports:?}");
        let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_string()).collect();
        assert!(
            exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")),
            "{exports:?}"
        );
    }

    #[test]
    fn a_module_without_start_or_valid_bytes_or_with_other_imports_is_named() {
        let bytes = wat::parse_str("(module (memory (export \"memory\") 1))").expect("wat");
        let e = check_module("nostart.wasm", &bytes).expect_err("refused");
        assert!(e.to_string().contains("no _start"), "{e}");
        let e = check_module("bad.wasm", b"\0asm\x01\0\0\0\x05").expect_err("refused");
        assert!(matches!(e, SandboxError::Compile { .. }), "{e}");
        assert!(e.to_string().contains("bad.wasm"), "{e}");
        let bytes =
            wat::parse_str(r#"(module (import "env" "f" (func)) (func (export "_start")))"#)
                .expect("wat");
        let e = check_module("env.wasm", &bytes).expect_err("refused");
        assert!(
            matches!(e, SandboxError::Start { .. }) && e.to_string().contains("env::f"),
            "{e}"
        );
    }
}
