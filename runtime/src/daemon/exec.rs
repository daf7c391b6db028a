//! `exec`: more guest programs inside a running container. Each runs in the
//! container's rootfs with its environment and volumes, gets the next
//! container-local PID, and is stopped with the container.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::DaemonError;
use super::supervisor::Supervisor;
use crate::container::{ProcessRequest, prepare};
use crate::sandbox::{Stdio, StopHandle, StopReason};

/// What an exec runs, fixed at create time.
#[derive(Debug, Clone, Default)]
pub struct ExecConfig {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
}

/// Where an exec is in its life.
#[derive(Debug, Clone, Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: u32,
}

/// One exec instance.
#[derive(Debug)]
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    state: Mutex<ExecState>,
    stop: StopHandle,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ExecInstance {
    pub fn state(&self) -> ExecState {
        lock(&self.state).clone()
    }

    /// Ends the exec's guest (a probe that ran past its timeout).
    pub fn kill(&self) {
        self.stop.stop(StopReason::Killed);
    }
}

/// The daemon's exec instances, by ID.
#[derive(Debug, Default)]
pub struct Execs {
    map: Mutex<HashMap<String, Arc<ExecInstance>>>,
}

impl Execs {
    pub fn get(&self, id: &str) -> Result<Arc<ExecInstance>, DaemonError> {
        lock(&self.map)
            .get(id)
            .cloned()
            .ok_or_else(|| DaemonError::NotFound(format!("No such exec instance: {id}")))
    }

    pub fn forget_container(&self, container_id: &str) {
        lock(&self.map).retain(|_, e| e.container_id != container_id);
    }

    pub fn stop_all(&self) {
        for e in lock(&self.map).values() {
            e.stop.stop(StopReason::Killed);
        }
    }
}

impl Supervisor {
    /// Records an exec instance in a running container.
    pub fn exec_create(
        &self,
        name_or_id: &str,
        config: ExecConfig,
    ) -> Result<Arc<ExecInstance>, DaemonError> {
        let (rec, entry) = self.find(name_or_id)?;
        if entry.live().is_none() {
            return Err(DaemonError::Conflict(format!(
                "container {} is not running",
                rec.short_id()
            )));
        }
        if config.argv.is_empty() {
            return Err(DaemonError::bad_request("no exec command specified"));
        }
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(DaemonError::internal)?;
        let exec = Arc::new(ExecInstance {
            id: hex::encode(raw),
            container_id: rec.id.clone(),
            config,
            state: Mutex::new(ExecState::default()),
            stop: StopHandle::new(),
        });
        lock(&self.execs.map).insert(exec.id.clone(), exec.clone());
        self.events.publish(
            Self::container_event_of(
                &rec,
                &format!("exec_create: {}", exec.config.argv.join(" ")),
            )
            .with("execID", exec.id.clone()),
        );
        Ok(exec)
    }

    /// Runs an exec instance to its end and returns its exit code. It is
    /// stopped when the container stops.
    pub async fn exec_run(&self, exec: &ExecInstance, stdio: Stdio) -> Result<i32, DaemonError> {
        {
            let mut st = lock(&exec.state);
            if st.started {
                return Err(DaemonError::Conflict(format!(
                    "exec instance {} has already been started",
                    exec.id
                )));
            }
            st.started = true;
        }
        let (rec, entry) = self.find(&exec.container_id)?;
        let Some(live) = entry.live() else {
            return Err(DaemonError::Conflict(format!(
                "container {} is not running",
                rec.short_id()
            )));
        };
        let process = tokio::task::block_in_place(|| {
            prepare(
                self.sandbox(),
                &live.fs,
                &live.procs,
                &rec,
                ProcessRequest {
                    argv: &exec.config.argv,
                    env: &exec.config.env,
                    workdir: exec.config.workdir.as_deref(),
                    ppid: 0,
                    network: live.net.grant.clone(),
                    usage: live.usage.clone(),
                },
                stdio,
            )
        });
        let die = |code: i32| {
            self.events.publish(
                Self::container_event_of(&rec, "exec_die")
                    .with("execID", exec.id.clone())
                    .with("exitCode", code.to_string()),
            );
        };
        let process = match process {
            Ok(p) => p,
            Err(e) => {
                let code = e.exit_code();
                lock(&exec.state).exit_code = Some(code);
                die(code);
                return Err(e.into());
            }
        };
        self.events.publish(
            Self::container_event_of(&rec, &format!("exec_start: {}", exec.config.argv.join(" ")))
                .with("execID", exec.id.clone()),
        );
        {
            let mut st = lock(&exec.state);
            st.running = true;
            st.pid = process.entry.pid();
        }
        // Stopped by its own handle or the container's, whichever first.
        let container_stop = live.stop.clone();
        let own = exec.stop.clone();
        let link = tokio::spawn(async move {
            let reason = container_stop.stopped().await;
            own.stop(reason);
        });
        let result = self
            .sandbox()
            .run(
                &process.program_path,
                &process.program,
                process.spec,
                &exec.stop,
            )
            .await;
        link.abort();
        drop(process.entry);
        let code = match &result {
            Ok(exit) => exit.code(),
            Err(_) => 126,
        };
        {
            let mut st = lock(&exec.state);
            st.running = false;
            st.exit_code = Some(code);
        }
        die(code);
        result.map_err(|e| DaemonError::bad_request(format!("exec {}: {e}", exec.id)))?;
        Ok(code)
    }
}
