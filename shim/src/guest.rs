//! One guest program of a container: found in the rootfs as `wrun run`
//! finds it (PATH, relative symlinks inside the root only), compiled once
//! per shim, and run by wrun's sandbox with the container's grant.

use std::path::PathBuf;
use std::sync::Arc;

use wrun::image::rootfs;
use wrun::net::{NetGrant, NetMode};
use wrun::sandbox::proctable::{ProcEntry, ProcTable};
use wrun::sandbox::{Exit, Mount, ProcessSpec, Sandbox, Stdio, StopHandle, Usage};

use crate::bundle::ProcessConfig;

/// What a container gives each of its guests.
#[derive(Debug, Clone)]
pub struct Container {
    pub rootfs: PathBuf,
    pub mounts: Vec<Mount>,
    pub procs: ProcTable,
    pub usage: Arc<Usage>,
    pub memory_limit: Option<u64>,
}

/// A guest's program, found in the rootfs and compiled.
#[derive(Clone)]
pub struct Found {
    /// Its path in the container.
    name: String,
    program: wrun::sandbox::Program,
}

/// A guest ready to run: its program compiled and its process entry in
/// the container's table.
pub struct Prepared {
    name: String,
    program: wrun::sandbox::Program,
    spec: ProcessSpec,
    _entry: ProcEntry,
}

/// The process's environment as pairs, and its working directory.
fn env_and_cwd(process: &ProcessConfig) -> (Vec<(String, String)>, String) {
    let cwd = if process.cwd.starts_with('/') {
        process.cwd.clone()
    } else {
        "/".to_string()
    };
    let env = process
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e.clone(), String::new()),
        })
        .collect();
    (env, cwd)
}

/// Finds and compiles `process`'s program: blocking work (reading the
/// rootfs, compiling or mapping cached code), which the task service
/// starts as soon as a process is created, so that it is done (or well
/// under way) by the time containerd asks for the start. Errors are what
/// `ctr` and the kubelet show: the program's name and why it cannot run.
pub fn find(sandbox: &Sandbox, c: &Container, process: &ProcessConfig) -> Result<Found, String> {
    let argv0 = process
        .args
        .first()
        .ok_or("the OCI spec has no process.args: nothing to run")?;
    let (env, cwd) = env_and_cwd(process);
    let path_env = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str());
    let root = rootfs::open(&c.rootfs).map_err(|e| e.to_string())?;
    let path = rootfs::find_program(&root, argv0, path_env, &cwd).map_err(|e| e.to_string())?;
    let bytes = rootfs::read(&root, &path).map_err(|e| e.to_string())?;
    let program = sandbox.load(&path, &bytes).map_err(|e| e.to_string())?;
    Ok(Found {
        name: path,
        program,
    })
}

/// Gives the program `found` for `process` its grant: streams, mounts,
/// environment and an entry in the container's process table.
pub fn prepare(
    c: &Container,
    process: &ProcessConfig,
    found: Found,
    stdio: Stdio,
    ppid: u32,
) -> Prepared {
    let (mut env, cwd) = env_and_cwd(process);
    if !env.iter().any(|(k, _)| k == "PWD") {
        // wasi-libc starts in `/`: the working directory travels as PWD.
        env.push(("PWD".into(), cwd.clone()));
    }
    let mut mounts = vec![Mount {
        host: c.rootfs.clone(),
        guest: "/".into(),
        read_only: false,
    }];
    mounts.extend(c.mounts.iter().cloned());
    let entry = c.procs.spawn(&process.args, ppid);
    Prepared {
        name: found.name,
        program: found.program,
        spec: ProcessSpec {
            argv: process.args.clone(),
            env,
            cwd,
            root: None,
            proc: Some(c.procs.clone()),
            mounts,
            stdio,
            memory_limit: c.memory_limit,
            usage: c.usage.clone(),
            // Under containerd the pod has a real network namespace: the
            // guests use real sockets.
            network: NetGrant {
                mode: NetMode::Host,
                egress: Vec::new(),
            },
            http_port: 8080,
        },
        _entry: entry,
    }
}

impl Prepared {
    /// Runs the guest to its end; returns its exit code (137 when killed,
    /// or out of memory; 134 for a trap). Why it did not simply exit goes
    /// to `notes`, its stderr, as `wrun run` prints it.
    pub async fn run(
        self,
        sandbox: &Sandbox,
        stop: &StopHandle,
        notes: Option<std::fs::File>,
    ) -> i32 {
        let (code, why) = match sandbox
            .run(&self.name, &self.program, self.spec, stop)
            .await
        {
            // Being stopped needs no word: whoever stopped it knows.
            Ok(Exit::Stopped(r)) => (r.exit_code(), None),
            Ok(exit) => (exit.code(), exit.describe()),
            Err(e) => (126, Some(e.to_string())),
        };
        if let Some(why) = why {
            log::info!("{}: {why}", self.name);
            if let Some(mut f) = notes {
                let _ = std::io::Write::write_all(&mut f, format!("{why}\n").as_bytes());
            }
        }
        code
    }
}
