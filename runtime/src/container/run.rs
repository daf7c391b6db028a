//! Running a container's main program (PID 1) through the sandbox.

use super::ContainerError;
use super::records::{ContainerRecord, Containers};
use crate::image::rootfs::{self, DEFAULT_PATH};
use crate::sandbox::proctable::ProcTable;
use crate::sandbox::{Exit, Mount, ProcessSpec, Sandbox, Stdio, StopHandle};

/// The streams a run is attached to.
#[derive(Debug, Default)]
pub struct RunIo {
    pub stdio: Stdio,
}

/// Starts the container's program and waits for it to end (or for `stop`),
/// recording the state changes and the exit code.
pub async fn run(
    sandbox: &Sandbox,
    containers: &mut Containers,
    rec: &ContainerRecord,
    io: RunIo,
    stop: &StopHandle,
) -> Result<Exit, ContainerError> {
    let short = rec.short_id().to_string();
    let spec = &rec.spec;
    let argv0 = spec
        .argv
        .first()
        .ok_or_else(|| ContainerError::NoCommand { id: short.clone() })?;
    let rootfs_dir = containers.rootfs(&rec.id);
    let exec_err = |source| ContainerError::Exec {
        id: short.clone(),
        source,
    };
    let root = rootfs::open(&rootfs_dir).map_err(exec_err)?;
    let path_env = spec.env.iter().find_map(|e| e.strip_prefix("PATH="));
    let program_path =
        rootfs::find_program(&root, argv0, path_env, &spec.workdir).map_err(exec_err)?;
    let bytes = rootfs::read(&root, &program_path).map_err(exec_err)?;
    let sandbox_err = |source| ContainerError::Sandbox {
        id: short.clone(),
        source,
    };
    let program = sandbox.load(&program_path, &bytes).map_err(sandbox_err)?;

    let procs =
        ProcTable::new(containers.proc_dir(&rec.id)).map_err(|e| ContainerError::Rootfs {
            id: short.clone(),
            message: format!("cannot create the process table: {e}"),
        })?;
    let mut mounts = vec![
        Mount {
            host: rootfs_dir,
            guest: "/".into(),
            read_only: false,
        },
        Mount {
            host: procs.dir().to_path_buf(),
            guest: "/proc".into(),
            read_only: true,
        },
    ];
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
    let env = process_env(&spec.env, &short, &spec.workdir);

    let _pid1 = procs
        .spawn(&spec.argv, 0)
        .map_err(|e| ContainerError::Rootfs {
            id: short.clone(),
            message: format!("cannot write the process table: {e}"),
        })?;
    let process = ProcessSpec {
        argv: spec.argv.clone(),
        env,
        cwd: spec.workdir.clone(),
        mounts,
        stdio: io.stdio,
        memory_limit: spec.memory,
    };
    containers.mark_running(&rec.id)?;
    let result = sandbox.run(&program_path, &program, process, stop).await;
    let (code, error) = match &result {
        Ok(exit) => (exit.code(), exit.describe()),
        Err(e) => (128, Some(e.to_string())),
    };
    containers.mark_exited(&rec.id, code, error.as_deref())?;
    result.map_err(sandbox_err)
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
