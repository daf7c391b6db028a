//! `/containers/{id}/exec` and `/exec/{id}/...`: create, start (hijacked)
//! and inspect exec instances.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use crate::api::stream::{self, StreamKind};
use crate::api::types::{
    ExecCreateRequest, ExecInspect, ExecProcessConfig, ExecStartRequest, IdResponse,
};
use crate::api::{MULTIPLEXED_STREAM, RAW_STREAM};
use crate::daemon::error::DaemonError;
use crate::daemon::exec::ExecConfig;
use crate::daemon::http::{self, Resp};
use crate::daemon::io::{channel_reader, pump_into};
use crate::daemon::supervisor::Supervisor;
use crate::sandbox::{Input, Output, OutputSink, Stdio};

pub async fn create(
    sup: &Arc<Supervisor>,
    id: &str,
    req: Request<Incoming>,
) -> Result<Resp, DaemonError> {
    let body: ExecCreateRequest = http::read_json(req, "exec create").await?;
    let exec = sup.exec_create(
        id,
        ExecConfig {
            argv: body.cmd.unwrap_or_default(),
            env: body.env.unwrap_or_default(),
            workdir: Some(body.working_dir).filter(|w| !w.is_empty()),
            tty: body.tty,
            attach_stdin: body.attach_stdin,
            attach_stdout: body.attach_stdout,
            attach_stderr: body.attach_stderr,
        },
    )?;
    Ok(http::json(
        StatusCode::CREATED,
        &IdResponse {
            id: exec.id.clone(),
        },
    ))
}

pub fn inspect(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let exec = sup.execs.get(id)?;
    let st = exec.state();
    let argv = &exec.config.argv;
    Ok(http::json(
        StatusCode::OK,
        &ExecInspect {
            id: exec.id.clone(),
            running: st.running,
            exit_code: st.exit_code,
            process_config: ExecProcessConfig {
                tty: exec.config.tty,
                entrypoint: argv.first().cloned().unwrap_or_default(),
                arguments: argv.iter().skip(1).cloned().collect(),
            },
            open_stdin: exec.config.attach_stdin,
            open_stdout: exec.config.attach_stdout,
            open_stderr: exec.config.attach_stderr,
            container_id: exec.container_id.clone(),
            pid: st.pid,
        },
    ))
}

/// An exec's output stream, sent to its hijacked connection.
struct ExecSink {
    kind: StreamKind,
    tx: mpsc::UnboundedSender<(StreamKind, Bytes)>,
}

impl OutputSink for ExecSink {
    fn write(&self, data: &[u8]) {
        let _ = self.tx.send((self.kind, Bytes::copy_from_slice(data)));
    }
}

pub async fn start(
    sup: &Arc<Supervisor>,
    id: &str,
    mut req: Request<Incoming>,
) -> Result<Resp, DaemonError> {
    let exec = sup.execs.get(id)?;
    if exec.state().started {
        return Err(DaemonError::Conflict(format!(
            "exec instance {id} has already been started"
        )));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body: ExecStartRequest = http::read_json(req, "exec start").await?;
    if body.detach {
        let sup = sup.clone();
        tokio::spawn(async move {
            let _ = sup.exec_run(&exec, Stdio::default()).await;
        });
        return Ok(http::empty(StatusCode::OK));
    }
    let tty = exec.config.tty;
    let resp = http::upgrade_response(if tty { RAW_STREAM } else { MULTIPLEXED_STREAM });
    let sup = sup.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "exec: the upgrade failed");
                return;
            }
        };
        let (rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = |kind| -> Output {
            Output::Sink(Arc::new(ExecSink {
                kind,
                tx: tx.clone(),
            }))
        };
        let stdin = if exec.config.attach_stdin {
            let (in_tx, in_rx) = mpsc::unbounded_channel::<Bytes>();
            tokio::spawn(pump_into(rd, in_tx));
            Input::Stream(channel_reader(in_rx))
        } else {
            Input::Null
        };
        let stdio = Stdio {
            stdin,
            stdout: if exec.config.attach_stdout {
                sink(StreamKind::Stdout)
            } else {
                Output::Null
            },
            stderr: if exec.config.attach_stderr {
                sink(StreamKind::Stderr)
            } else {
                Output::Null
            },
        };
        let errors = tx.clone();
        drop(tx);
        let run = async {
            if let Err(e) = sup.exec_run(&exec, stdio).await {
                let _ = errors.send((StreamKind::Stderr, Bytes::from(format!("{e}\n"))));
            }
            drop(errors);
        };
        let pump = async {
            while let Some((kind, data)) = rx.recv().await {
                let bytes = stream::encode(tty, kind, &data);
                if wr.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = wr.flush().await;
            let _ = wr.shutdown().await;
        };
        tokio::join!(run, pump);
    });
    Ok(resp)
}
