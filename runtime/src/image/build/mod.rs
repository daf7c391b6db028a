//! `wrun build`: turning a Dockerfile and a context into an OCI image.
//!
//! Each COPY/ADD writes one deterministic layer; every other instruction
//! only edits the config. A COPY's layer is cached under a key made of the
//! previous step's key, the instruction, and the paths, modes and contents
//! of its inputs. `created` is `SOURCE_DATE_EPOCH` or the Unix epoch, so the
//! same context always gives the same image ID (as ko and Bazel do).

mod cache;
pub mod context;
mod copy;

use cache::{cache_key, cached_layer, remember_layer};

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use oci_spec::image::{Config, ConfigBuilder};

use super::assemble::{HistoryStep, LayerRef, assemble};
use super::digest::Digest;
use super::dockerfile::{self, Command, InstructionKind};
use super::store::{ImageStore, NewImage};
use super::wasm::WasmKind;
use super::{ImageError, layer, rootfs};
use context::Context;

/// Errors specific to building. Each names what it is about.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("build context {}: {source}", path.display())]
    Context {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("Dockerfile {}: {source}", path.display())]
    Dockerfile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(".dockerignore line {line}: {message}")]
    Ignore { line: usize, message: String },
    #[error("COPY source {0:?} is outside the build context")]
    OutsideContext(String),
    #[error("COPY source {0:?}: file not found in build context or excluded by .dockerignore")]
    NoMatch(String),
    #[error("COPY source {source_path:?}: {message}")]
    BadSource {
        source_path: String,
        message: String,
    },
    #[error("Dockerfile line {line}: {message}")]
    Unsupported { line: usize, message: String },
    #[error("FROM {name}: {source}")]
    Base {
        name: String,
        #[source]
        source: Box<ImageError>,
    },
    #[error("build: {0}")]
    Other(String),
}

/// What to build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// Defaults to `<context>/Dockerfile`.
    pub dockerfile: Option<PathBuf>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub no_cache: bool,
}

/// A layer of the image being built.
#[derive(Debug, Clone)]
struct Layer {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    tar_size: u64,
}

/// Builds an image, writing Docker-style step output to `out`. Returns the
/// image ID.
pub fn build(
    store: &mut ImageStore,
    opts: &BuildOptions,
    out: &mut dyn Write,
) -> Result<Digest, ImageError> {
    // Garbage collection stays away from the blobs written until commit.
    let _lease = store.lease()?;
    let tags = opts
        .tags
        .iter()
        .map(|t| store.parse_reference(t))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Context::open(&opts.context)?;
    let df_path = opts
        .dockerfile
        .clone()
        .unwrap_or_else(|| ctx.root().join("Dockerfile"));
    let text = std::fs::read_to_string(&df_path).map_err(|source| BuildError::Dockerfile {
        path: df_path.clone(),
        source,
    })?;
    let parsed = dockerfile::parse(&text, &opts.build_args)?;
    let stage = parsed
        .stages
        .last()
        .ok_or_else(|| BuildError::Other(format!("{}: no FROM instruction", df_path.display())))?;
    let steps = 1 + stage.instructions.len();
    let mut step = 1;
    let say = |out: &mut dyn Write, s: String| {
        // Progress output is best effort; a closed pipe must not fail the build.
        let _ = writeln!(out, "{s}");
    };

    say(out, format!("Step {step}/{steps} : FROM {}", stage.from));
    let mut state = State::from_base(store, &stage.from)?;
    say(
        out,
        format!(
            " ---> {}",
            state.base_id.as_ref().map(|d| d.short()).unwrap_or("")
        ),
    );
    let mtime = source_date_epoch();

    for ins in &stage.instructions {
        step += 1;
        say(out, format!("Step {step}/{steps} : {}", ins.original));
        match &ins.kind {
            InstructionKind::Copy { from: Some(_), .. } => {
                return Err(BuildError::Unsupported {
                    line: ins.line,
                    message: "COPY --from (multi-stage builds) is not supported yet".into(),
                }
                .into());
            }
            InstructionKind::Copy {
                sources,
                dest,
                chmod,
                ..
            }
            | InstructionKind::Add {
                sources,
                dest,
                chmod,
                ..
            } => {
                let is_add = matches!(ins.kind, InstructionKind::Add { .. });
                let mode = chmod
                    .as_deref()
                    .map(|m| {
                        u32::from_str_radix(m, 8).map_err(|_| BuildError::Unsupported {
                            line: ins.line,
                            message: format!("--chmod={m}: expected an octal mode"),
                        })
                    })
                    .transpose()?;
                let workdir = state
                    .config
                    .working_dir()
                    .clone()
                    .unwrap_or_else(|| "/".into());
                let staging = store
                    .root()
                    .staging_dir()
                    .and_then(|d| tempfile::Builder::new().prefix("build-").tempdir_in(d))
                    .map_err(|source| BuildError::Context {
                        path: store.root().tmp_dir(),
                        source,
                    })?;
                let entries =
                    copy::plan(&ctx, sources, dest, &workdir, mode, is_add, staging.path())?;
                let key = cache_key(&state.cache_key, &ins.original, &entries)?;
                let cached = if opts.no_cache {
                    None
                } else {
                    cached_layer(store, &key)?
                };
                let layer = match cached {
                    Some(layer) => {
                        say(out, " ---> Using cache".into());
                        layer
                    }
                    None => {
                        let packed =
                            layer::pack::pack(store.blobs(), entries, mtime, &ins.original)?;
                        let layer = Layer {
                            digest: packed.digest,
                            diff_id: packed.diff_id,
                            size: packed.size,
                            tar_size: packed.tar_size,
                        };
                        remember_layer(store, &key, &layer)?;
                        layer
                    }
                };
                say(out, format!(" ---> {}", layer.digest.short()));
                state.cache_key = key;
                state.layers.push(layer);
                state
                    .history
                    .push(HistoryStep::new(ins.original.clone(), false));
                continue;
            }
            other => {
                apply_config(&mut state.config, other, &mut state.cmd_set_here);
            }
        }
        // A config-only step writes no layer, so there is no new ID to show.
        state
            .history
            .push(HistoryStep::new(ins.original.clone(), true));
    }

    let os = state.detect_os(store)?;
    let (manifest, config, size) = state.finish(os, mtime)?;
    let first = tags.first();
    let id = store.commit(NewImage {
        manifest: &manifest,
        config: &config,
        size,
        tag: first,
    })?;
    for t in tags.iter().skip(1) {
        store.tag(id.as_str(), &t.to_string())?;
    }
    say(out, format!("Successfully built {}", id.short()));
    for t in &tags {
        say(out, format!("Successfully tagged {}", t.familiar()));
    }
    Ok(id)
}

/// The image as it is being assembled.
struct State {
    base_id: Option<Digest>,
    base_size: u64,
    base_created: Vec<HistoryStep>,
    config: Config,
    layers: Vec<Layer>,
    /// One step per instruction of this build.
    history: Vec<HistoryStep>,
    cache_key: String,
    cmd_set_here: bool,
}

impl State {
    fn from_base(store: &ImageStore, from: &str) -> Result<Self, ImageError> {
        let empty = ConfigBuilder::default()
            .build()
            .map_err(|e| BuildError::Other(e.to_string()))?;
        if from.eq_ignore_ascii_case("scratch") {
            return Ok(Self {
                base_id: None,
                base_size: 0,
                base_created: Vec::new(),
                config: empty,
                layers: Vec::new(),
                history: Vec::new(),
                cache_key: "scratch".into(),
                cmd_set_here: false,
            });
        }
        let base = store.resolve(from).map_err(|e| BuildError::Base {
            name: from.to_string(),
            source: Box::new(e),
        })?;
        let diff_ids = base.diff_ids()?;
        let layers = base
            .manifest
            .layers()
            .iter()
            .zip(diff_ids)
            .map(|(d, diff_id)| {
                Ok(Layer {
                    digest: Digest::parse(d.digest().as_ref())
                        .map_err(|e| BuildError::Other(e.to_string()))?,
                    diff_id,
                    size: d.size(),
                    tar_size: 0,
                })
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        let history = base.history_lines();
        Ok(Self {
            cache_key: base.id.to_string(),
            base_id: Some(base.id.clone()),
            base_size: base.size,
            base_created: history,
            config: base.config.config().clone().unwrap_or(empty),
            layers,
            history: Vec::new(),
            cmd_set_here: false,
        })
    }

    /// Resolves the program the image would run and reads its header, to
    /// record `wasip1` or `wasip2` as the image's os.
    fn detect_os(&self, store: &ImageStore) -> Result<WasmKind, ImageError> {
        let argv: Vec<String> = self
            .config
            .entrypoint()
            .iter()
            .flatten()
            .chain(self.config.cmd().iter().flatten())
            .cloned()
            .collect();
        let Some(argv0) = argv.first() else {
            return Ok(WasmKind::Other("no entrypoint"));
        };
        let dirs = self
            .layers
            .iter()
            .map(|l| store.unpacked_layer(&l.digest, &l.diff_id))
            .collect::<Result<Vec<_>, _>>()?;
        let staging = store
            .root()
            .staging_dir()
            .and_then(|d| tempfile::Builder::new().prefix("probe-").tempdir_in(d))
            .map_err(|source| BuildError::Context {
                path: store.root().tmp_dir(),
                source,
            })?;
        layer::compose::compose(&dirs, staging.path())?;
        let root = rootfs::open(staging.path()).map_err(|e| BuildError::Other(e.to_string()))?;
        let path_env = self
            .config
            .env()
            .iter()
            .flatten()
            .find_map(|e| e.strip_prefix("PATH="));
        let cwd = self
            .config
            .working_dir()
            .clone()
            .unwrap_or_else(|| "/".into());
        let kind = rootfs::find_program(&root, argv0, path_env, &cwd)
            .and_then(|p| rootfs::read(&root, &p))
            .map(|bytes| WasmKind::sniff(&bytes))
            .unwrap_or(WasmKind::Other("entrypoint not found"));
        Ok(kind)
    }

    /// Serialises config and manifest. Returns (manifest, config, size).
    fn finish(self, kind: WasmKind, mtime: u64) -> Result<(Vec<u8>, Vec<u8>, u64), ImageError> {
        let created = DateTime::<Utc>::from_timestamp(mtime as i64, 0)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let history: Vec<HistoryStep> = self
            .base_created
            .iter()
            .chain(&self.history)
            .cloned()
            .collect();
        let layers: Vec<LayerRef> = self
            .layers
            .iter()
            .map(|l| LayerRef {
                digest: l.digest.clone(),
                diff_id: l.diff_id.clone(),
                size: l.size,
            })
            .collect();
        let (manifest, config) =
            assemble(self.config, kind, &created, &layers, &history).map_err(BuildError::Other)?;
        let size = self.base_size + self.layers.iter().map(|l| l.tar_size).sum::<u64>();
        Ok((manifest, config, size))
    }
}

fn argv(c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => vec!["/bin/sh".into(), "-c".into(), s.clone()],
    }
}

/// `SOURCE_DATE_EPOCH` if set (the reproducible-builds convention), else 0.
fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether `path` is a tar archive that ADD should unpack.
pub(crate) fn looks_like_tar(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 512];
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let n = f.read(&mut head).unwrap_or(0);
    match layer::Compression::sniff(&head[..n]) {
        layer::Compression::Gzip | layer::Compression::Zstd => true,
        layer::Compression::None => n >= 262 && &head[257..262] == b"ustar",
    }
}

/// Applies a config-only instruction (`CMD`, `ENTRYPOINT`, `ENV`, `LABEL`,
/// `WORKDIR`, `EXPOSE`, `USER`, `VOLUME`, `STOPSIGNAL`; `ARG` changes
/// nothing) to `cfg`, as a build step does and as `docker commit --change`
/// does. `cmd_set_here` records a `CMD` among these steps, which an
/// `ENTRYPOINT` then keeps. Returns false for an instruction that needs
/// files (`COPY`, `ADD`), which it leaves alone.
pub fn apply_config(cfg: &mut Config, kind: &InstructionKind, cmd_set_here: &mut bool) -> bool {
    match kind {
        InstructionKind::Copy { .. } | InstructionKind::Add { .. } => return false,
        InstructionKind::Entrypoint(c) => {
            cfg.set_entrypoint(Some(argv(c)));
            if !*cmd_set_here {
                cfg.set_cmd(None);
            }
        }
        InstructionKind::Cmd(c) => {
            cfg.set_cmd(Some(argv(c)));
            *cmd_set_here = true;
        }
        InstructionKind::Env(pairs) => {
            let mut env = cfg.env().clone().unwrap_or_default();
            for (k, v) in pairs {
                env.retain(|e| e.split_once('=').map(|(ek, _)| ek) != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            cfg.set_env(Some(env));
        }
        InstructionKind::Label(pairs) => {
            let mut labels = cfg.labels().clone().unwrap_or_default();
            labels.extend(pairs.iter().cloned());
            cfg.set_labels(Some(labels));
        }
        InstructionKind::Workdir(dir) => {
            let cwd = cfg.working_dir().clone().unwrap_or_else(|| "/".into());
            cfg.set_working_dir(Some(rootfs::guest_path(&cwd, dir)));
        }
        InstructionKind::Expose(ports) => {
            let mut all = cfg.exposed_ports().clone().unwrap_or_default();
            for p in ports {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
            all.sort();
            cfg.set_exposed_ports(Some(all));
        }
        InstructionKind::Arg { .. } => {}
        InstructionKind::User(u) => {
            cfg.set_user(Some(u.clone()));
        }
        InstructionKind::Volume(v) => {
            let mut all = cfg.volumes().clone().unwrap_or_default();
            all.extend(v.iter().cloned());
            cfg.set_volumes(Some(all));
        }
        InstructionKind::StopSignal(s) => {
            cfg.set_stop_signal(Some(s.clone()));
        }
    }
    true
}
