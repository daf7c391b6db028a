//! Preparing one guest process of a container: its program found in the
//! container's rootfs and loaded, and the capabilities it is granted (the
//! rootfs at `/`, the process table at `/proc`, the container's volumes,
//! environment and limits). The main program (PID 1) and every `exec` go
//! through here, so they see the same container.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use super::ContainerError;
use super::records::{ContainerRecord, Rootfs};
use crate::image::rootfs::{self, DEFAULT_PATH, RootView as _};
use crate::sandbox::proctable::{ProcEntry, ProcTable};
use crate::sandbox::{Mount, ProcessSpec, Program, Sandbox, Stdio};

/// What to run: the container's own command, or an exec's.
#[derive(Debug, Default)]
pub struct ProcessRequest<'a> {
    /// Empty runs the container's command.
    pub argv: &'a [String],
    /// `KEY=VALUE` settings over the container's environment.
    pub env: &'a [String],
    /// Overrides the container's working directory.
    pub workdir: Option<&'a str>,
    /// The parent's container-local PID (0 for PID 1 and execs).
    pub ppid: u32,
    /// The container's sockets, as the daemon set them up for this run.
    pub network: crate::net::NetGrant,
    /// Where this run's guests count their memory and CPU time.
    pub usage: std::sync::Arc<crate::sandbox::Usage>,
}

/// A guest process ready to hand to the sandbox. Its process-table entry
/// lives as long as this value (or the entry taken out of it).
#[derive(Debug)]
pub struct Process {
    pub program_path: String,
    pub program: Program,
    pub spec: ProcessSpec,
    pub entry: ProcEntry,
}

/// What [`find_in_layers`] found in views that had not been written to,
/// by the view's [`Overlay::unwritten_key`](crate::vfs::Overlay::unwritten_key)
/// and the lookup's inputs. Such a view is its image's layers, which never
/// change, so the answer holds for every container of that image.
static UNWRITTEN_LOOKUPS: LazyLock<Mutex<HashMap<String, Located>>> = LazyLock::new(Mutex::default);

/// A program's absolute guest path, and its fixed key if it has one.
type Located = (String, Option<String>);

/// Past this many entries the memo starts over.
const UNWRITTEN_LOOKUPS_MAX: usize = 4096;

/// The program `argv0` names in a layered root, and its
/// [`fixed_key`](rootfs::RootView::fixed_key). A root that has not been
/// written to is the same for every container of its image, so the lookup
/// (a few dozen path walks across the layers) is made once per image.
fn find_in_layers(
    view: &crate::vfs::Overlay,
    argv0: &str,
    path_env: Option<&str>,
    workdir: &str,
) -> Result<Located, rootfs::RootfsError> {
    let memo_key = view
        .unwritten_key()
        .map(|shape| format!("{shape}\0{argv0}\0{}\0{workdir}", path_env.unwrap_or("\0")));
    let memo = || UNWRITTEN_LOOKUPS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(k) = &memo_key
        && let Some(hit) = memo().get(k)
    {
        return Ok(hit.clone());
    }
    let found = rootfs::find_program(view, argv0, path_env, workdir)?;
    let key = view.fixed_key(&found);
    if let Some(k) = memo_key {
        let mut memo = memo();
        if memo.len() >= UNWRITTEN_LOOKUPS_MAX {
            memo.clear();
        }
        memo.insert(k, (found.clone(), key.clone()));
    }
    Ok((found, key))
}

/// Finds and loads the program, and builds its grant.
pub fn prepare(
    sandbox: &Sandbox,
    rootfs: &Rootfs,
    procs: &ProcTable,
    rec: &ContainerRecord,
    req: ProcessRequest<'_>,
    stdio: Stdio,
) -> Result<Process, ContainerError> {
    let short = rec.short_id().to_string();
    let spec = &rec.spec;
    let argv: &[String] = if req.argv.is_empty() {
        &spec.argv
    } else {
        req.argv
    };
    let argv0 = argv
        .first()
        .ok_or_else(|| ContainerError::NoCommand { id: short.clone() })?;
    let workdir = req.workdir.unwrap_or(&spec.workdir).to_string();
    let exec_err = |source| ContainerError::Exec {
        id: short.clone(),
        source,
    };
    let env = super::merge_env(&spec.env, req.env)?;
    let path_env = env.iter().find_map(|e| e.strip_prefix("PATH="));
    let sandbox_err = |source| ContainerError::Sandbox {
        id: short.clone(),
        source,
    };
    let (program_path, program) = match rootfs {
        Rootfs::Layers(view) => {
            let (found, key) = find_in_layers(view, argv0, path_env, &workdir).map_err(exec_err)?;
            // A program from the image's read-only layers is read and
            // hashed on its first start only.
            let program = match key.as_deref().and_then(|k| sandbox.fixed(k)) {
                Some(program) => program,
                None => {
                    let bytes = rootfs::read(view.as_ref(), &found).map_err(exec_err)?;
                    match key {
                        Some(key) => sandbox.load_fixed(&found, key, &bytes),
                        None => sandbox.load(&found, &bytes),
                    }
                    .map_err(sandbox_err)?
                }
            };
            (found, program)
        }
        Rootfs::Copy(dir) => {
            let root = rootfs::open(dir).map_err(exec_err)?;
            let found = rootfs::find_program(&root, argv0, path_env, &workdir).map_err(exec_err)?;
            let bytes = rootfs::read(&root, &found).map_err(exec_err)?;
            let program = sandbox.load(&found, &bytes).map_err(sandbox_err)?;
            (found, program)
        }
    };

    let mut mounts = Vec::new();
    let root = match rootfs {
        Rootfs::Layers(view) => Some(view.clone()),
        Rootfs::Copy(dir) => {
            mounts.insert(
                0,
                Mount {
                    host: dir.clone(),
                    guest: "/".into(),
                    read_only: false,
                },
            );
            None
        }
    };
    for v in &spec.volumes {
        if !v.host.exists() {
            std::fs::create_dir_all(&v.host).map_err(|e| ContainerError::BadVolume {
                spec: v.host.display().to_string(),
                message: format!("cannot create the host directory: {e}"),
            })?;
        }
        if !v.host.is_dir() {
            return Err(ContainerError::BadVolume {
                spec: v.host.display().to_string(),
                message: "only directories can be mounted; mount the directory that holds the file"
                    .into(),
            });
        }
        mounts.push(Mount {
            host: v.host.clone(),
            guest: v.guest.clone(),
            read_only: v.read_only,
        });
    }
    let entry = procs.spawn(argv, req.ppid);
    Ok(Process {
        program_path,
        program,
        spec: ProcessSpec {
            argv: argv.to_vec(),
            env: process_env(&env, &short, &workdir),
            cwd: workdir,
            root,
            proc: Some(procs.clone()),
            mounts,
            stdio,
            memory_limit: spec.memory,
            usage: req.usage.clone(),
            network: req.network.clone(),
            http_port: spec
                .http_port
                .or_else(|| spec.exposed.first().copied())
                .unwrap_or(0),
        },
        entry,
    })
}

/// The guest's environment: the container's, plus `HOSTNAME` (the short ID,
/// as in Docker), Docker's default `PATH` when the image sets none, and
/// `PWD`: wasi-libc starts every program in `/`, so the working directory
/// reaches the guest as `PWD` (the convention Go's wasip1 port honours) as
/// well as WASI's initial-cwd.
fn process_env(env: &[String], short_id: &str, workdir: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect();
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.insert(0, ("PATH".into(), DEFAULT_PATH.into()));
    }
    if !out.iter().any(|(k, _)| k == "HOSTNAME") {
        out.push(("HOSTNAME".into(), short_id.to_string()));
    }
    out.retain(|(k, _)| k != "PWD");
    out.push(("PWD".into(), workdir.to_string()));
    out
}
