//! The on-disk compile cache.
//!
//! Compiled code lives at `<cache>/<engine hash>/<sha256 of the wasm>.cwasm`
//! (a WASIp1 module's converted component at `<sha256>.<conversion>.cwasm`),
//! beside a `.sha256` file holding the digest of the compiled bytes. The
//! engine hash is `Engine::precompile_compatibility_hash`, so a wasmtime
//! upgrade or a config change never loads old code. An entry is used only
//! when its bytes match the recorded digest; a stale, torn or tampered entry
//! is recompiled and replaced, never trusted.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use super::SandboxError;
use crate::image::Digest;
use crate::image::wasm::WasmKind;

#[derive(Debug)]
pub struct CompileCache {
    dir: PathBuf,
    /// Where entries are written before they are moved in; the cache's
    /// own directory when `None`.
    staging: Option<PathBuf>,
}

impl CompileCache {
    pub fn new(engine: &Engine, base: &Path, staging: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir: base.join(format!("{:016x}", h.finish())),
            staging,
        }
    }

    pub fn load_or_compile(
        &self,
        engine: &Engine,
        name: &str,
        digest: &Digest,
        kind: WasmKind,
        bytes: &[u8],
    ) -> Result<Component, SandboxError> {
        let stem = match kind {
            WasmKind::Module => format!("{}.{}", digest.hex(), super::adapt::VERSION),
            _ => digest.hex().to_string(),
        };
        let code = self.dir.join(format!("{stem}.cwasm"));
        let sum = self.dir.join(format!("{stem}.sha256"));
        if let Some(component) = self.load(engine, &code, &sum) {
            return Ok(component);
        }
        let compile_err = |e: wasmtime::Error| SandboxError::Compile {
            program: name.to_string(),
            message: format!("{e:#}"),
        };
        let converted;
        let bytes = match kind {
            WasmKind::Module => {
                converted = super::adapt::module_to_command(name, bytes)?;
                &converted[..]
            }
            _ => bytes,
        };
        let c = Component::new(engine, bytes).map_err(compile_err)?;
        let serialized = c.serialize().map_err(compile_err)?;
        if let Err(e) = self.store(&code, &sum, &serialized) {
            // The cache is an optimisation: a read-only or full disk must not
            // stop the guest from running.
            tracing::warn!(error = %e, path = %code.display(), "cannot write the compile cache");
        }
        Ok(c)
    }

    fn load(&self, engine: &Engine, code: &Path, sum: &Path) -> Option<Component> {
        let recorded = std::fs::read_to_string(sum).ok()?;
        let file = std::fs::File::open(code).ok()?;
        let (actual, _) =
            Digest::of_reader(std::io::BufReader::with_capacity(1 << 20, file)).ok()?;
        if recorded.trim() != actual.as_str() {
            tracing::info!(path = %code.display(), "compile cache entry does not match its digest; recompiling");
            return None;
        }
        // SAFETY: `deserialize_file` trusts its input to be wasmtime's own
        // output. The file was written by `store` below, under the state
        // root, and its digest matches the one recorded when it was written,
        // so it is that output, unmodified. wasmtime still checks the engine
        // compatibility header and refuses a mismatch.
        let loaded = unsafe { Component::deserialize_file(engine, code) };
        match loaded {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::info!(error = %e, path = %code.display(), "compile cache entry unusable; recompiling");
                None
            }
        }
    }

    fn store(&self, code: &Path, sum: &Path, serialized: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let staging = self.staging.as_deref().unwrap_or(&self.dir);
        let digest = Digest::of(serialized);
        let mut tmp = tempfile::NamedTempFile::new_in(staging)?;
        tmp.write_all(serialized)?;
        tmp.as_file().sync_all()?;
        tmp.persist(code).map_err(|e| e.error)?;
        let mut tmp = tempfile::NamedTempFile::new_in(staging)?;
        tmp.write_all(digest.as_str().as_bytes())?;
        tmp.persist(sum).map_err(|e| e.error)?;
        Ok(())
    }
}
