//! What `exec` and `attach` do once the client is connected: an exec is
//! a second guest in the container's current run, made as `wrun exec`
//! makes one (so it shares the pod's network namespace); an attach joins
//! the run's own stdin and output. With `tty`, typing goes through the
//! line discipline and output gets CR LF.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::remotecmd::{Chan, Io, Job, Outcome, Wanted};
use crate::api::stream::StreamKind;
use crate::daemon::exec::ExecConfig;
use crate::daemon::io::{Chunk, channel_reader};
use crate::daemon::kube::Api;
use crate::daemon::supervisor::{Entry, Supervisor};
use crate::kube::KubeError;
use crate::sandbox::{Input, Output, OutputSink, Stdio};
use crate::tty;

/// A guest's output stream, sent to the session (with a terminal's CR LF).
struct ChanSink {
    chan: Chan,
    tty: bool,
    out: mpsc::UnboundedSender<(Chan, Bytes)>,
}

impl OutputSink for ChanSink {
    fn write(&self, data: &[u8]) {
        let data = if self.tty {
            tty::onlcr(data)
        } else {
            Bytes::copy_from_slice(data)
        };
        let _ = self.out.send((self.chan, data));
    }
}

/// The client's stdin as a guest reads it: through the line discipline
/// with a terminal.
fn typed(
    stdin: mpsc::UnboundedReceiver<Bytes>,
    tty: bool,
    out: &mpsc::UnboundedSender<(Chan, Bytes)>,
    interrupt: &CancellationToken,
) -> mpsc::UnboundedReceiver<Bytes> {
    if !tty {
        return stdin;
    }
    let echo = out.clone();
    tty::cook(
        stdin,
        move |b| {
            let _ = echo.send((Chan::Stdout, b));
        },
        interrupt.clone(),
    )
}

pub fn exec_job(sup: Arc<Supervisor>, container: String, argv: Vec<String>, wanted: Wanted) -> Job {
    Box::new(move |io| Box::pin(run_exec(sup, container, argv, wanted, io)))
}

async fn run_exec(
    sup: Arc<Supervisor>,
    container: String,
    argv: Vec<String>,
    wanted: Wanted,
    io: Io,
) -> Outcome {
    let Io { stdin, out, gone } = io;
    let config = ExecConfig {
        argv: argv.clone(),
        env: Vec::new(),
        workdir: None,
        tty: wanted.tty,
        attach_stdin: stdin.is_some(),
        attach_stdout: wanted.stdout,
        attach_stderr: wanted.stderr,
    };
    let exec = match sup.exec_create(&container, config) {
        Ok(e) => e,
        Err(e) => return Outcome::Error(e.to_string()),
    };
    let interrupt = CancellationToken::new();
    let stdin = match stdin {
        Some(rx) => Input::Stream(channel_reader(typed(rx, wanted.tty, &out, &interrupt))),
        None => Input::Null,
    };
    let sink = |chan| -> Output {
        Output::Sink(Arc::new(ChanSink {
            chan,
            tty: wanted.tty,
            out: out.clone(),
        }))
    };
    let stdio = Stdio {
        stdin,
        stdout: sink(Chan::Stdout),
        stderr: sink(Chan::Stderr),
    };
    let run = sup.exec_run(&exec, stdio);
    tokio::pin!(run);
    let mut interrupted = false;
    let result = tokio::select! {
        r = &mut run => r,
        () = gone.cancelled() => {
            exec.kill();
            run.await
        }
        () = interrupt.cancelled() => {
            interrupted = true;
            exec.kill();
            run.await
        }
    };
    let command = format!("[{}]", argv.join(" "));
    let exit = |code: i32| Outcome::Exit {
        code,
        message: format!(
            "command terminated with non-zero exit code: error executing command {command}, exit code {code}"
        ),
    };
    match result {
        _ if interrupted => exit(130),
        Ok(0) => Outcome::Success,
        Ok(code) => exit(code),
        Err(e) => {
            // The program could not be run: say why where the user looks,
            // and end with Docker's code for it (127 not found, 126 not
            // runnable).
            let code = exec.state().exit_code.filter(|c| *c != 0).unwrap_or(126);
            let message = e.to_string();
            let _ = out.send((Chan::Stderr, Bytes::from(format!("{message}\n"))));
            Outcome::Exit { code, message }
        }
    }
}

pub fn attach_job(
    api: &Api,
    pod: &Value,
    container: &str,
    id: &str,
    entry: Arc<Entry>,
    wanted: Wanted,
) -> Result<Job, KubeError> {
    let spec = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["name"] == container)
        .cloned()
        .unwrap_or(Value::Null);
    let open_stdin = spec["stdin"].as_bool().unwrap_or(false);
    let once = spec["stdinOnce"].as_bool().unwrap_or(false);
    // Subscribe now, then check the run is still going: if it ends from
    // here on, the subscription ends with it.
    let (_, output) = entry.io.subscribe_at();
    let (_, entry) = api
        .sup
        .find(id)
        .map_err(|e| KubeError::internal(e.to_string()))?;
    if entry.live().is_none() {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        return Err(KubeError::bad_request(format!(
            "container {container} in pod {name} is not running"
        )));
    }
    let guest_stdin = (wanted.stdin && open_stdin)
        .then(|| entry.io.attach_stdin(once))
        .flatten();
    Ok(Box::new(move |io| {
        Box::pin(run_attach(output, guest_stdin, wanted, io))
    }))
}

async fn run_attach(
    mut output: mpsc::UnboundedReceiver<Chunk>,
    guest_stdin: Option<mpsc::UnboundedSender<Bytes>>,
    wanted: Wanted,
    io: Io,
) -> Outcome {
    let Io { stdin, out, gone } = io;
    if let (Some(rx), Some(tx)) = (stdin, guest_stdin) {
        // ^C does not end the container: an interactive shell ignores it.
        let mut rx = typed(rx, wanted.tty, &out, &CancellationToken::new());
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                if tx.send(b).is_err() {
                    break;
                }
            }
        });
    }
    loop {
        let chunk = tokio::select! {
            c = output.recv() => c,
            () = gone.cancelled() => None,
        };
        let Some((kind, data)) = chunk else {
            break;
        };
        let chan = match kind {
            StreamKind::Stdout => Chan::Stdout,
            StreamKind::Stderr => Chan::Stderr,
            _ => continue,
        };
        let data = if wanted.tty { tty::onlcr(&data) } else { data };
        if out.send((chan, data)).is_err() {
            break;
        }
    }
    Outcome::Success
}
