//! Finding the daemon, and starting it in the background when none is
//! running, so that a new user never has to think about it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{Client, ClientError};
use crate::transport::Address;

/// How long a freshly started daemon has to answer.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a start whose daemon found another one holding the root waits
/// for that one to answer (it may be another client's start, a moment ahead).
const RACE_GRACE: Duration = Duration::from_secs(5);

/// Whether a missing daemon is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPolicy {
    Start,
    /// `--no-start`: fail instead.
    NoStart,
}

/// A client of the daemon at `address`, starting one for `root` when none
/// answers (and the address is the root's own).
pub async fn connect_or_start(
    root: &Path,
    address: &Address,
    policy: StartPolicy,
) -> Result<Client, ClientError> {
    let client = Client::new(address.clone());
    // A socket that accepts a connection has a daemon behind it: the first
    // real request is the check (a full ping would cost a round trip).
    if crate::transport::connect(address).await.is_ok() {
        return Ok(client);
    }
    if policy == StartPolicy::NoStart {
        // Reproduce the connection error for the message.
        client.call(hyper::Method::GET, "/_ping").await?;
        return Ok(client);
    }
    let mut child = spawn_daemon(root, address)?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut exited_at = None;
    loop {
        if client.ping().await {
            return Ok(client);
        }
        if let Ok(Some(status)) = child.try_wait()
            && !client.ping().await
        {
            // Another client may have started one at the same time: that
            // one holds the lock and will answer shortly. When none holds
            // it, nothing will answer: say why at once. One that holds it
            // and still does not answer after a while serves this root at
            // another address.
            let since = *exited_at.get_or_insert_with(Instant::now);
            if Instant::now() > deadline || !daemon_running(root) || since.elapsed() > RACE_GRACE {
                return Err(ClientError::Start(format!(
                    "the daemon exited with {status}{}; see {}",
                    last_error(root)
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default(),
                    root.join("daemon.log").display()
                )));
            }
        }
        if Instant::now() > deadline {
            return Err(ClientError::Start(format!(
                "no answer at {address} after {START_TIMEOUT:?}; see {}",
                root.join("daemon.log").display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Whether a daemon holds the root's lock (it is running, or starting).
fn daemon_running(root: &Path) -> bool {
    match std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("daemon.lock"))
    {
        // Taken here, the lock is let go when the file is dropped.
        Ok(f) => f.try_lock().is_err(),
        Err(_) => false,
    }
}

/// The last error the daemon wrote to its log (`wrun: ...`), if any.
fn last_error(root: &Path) -> Option<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    /// How much of the log's end is read.
    const TAIL: u64 = 16 * 1024;
    let mut log = std::fs::File::open(root.join("daemon.log")).ok()?;
    let len = log.metadata().ok()?.len();
    log.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut tail = Vec::new();
    log.read_to_end(&mut tail).ok()?;
    String::from_utf8_lossy(&tail)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("wrun: "))
        .map(str::to_string)
}

/// Starts `wrun daemon` detached from this process and its terminal, with
/// its output in `<root>/daemon.log`.
fn spawn_daemon(root: &Path, address: &Address) -> Result<std::process::Child, ClientError> {
    let exe = std::env::current_exe()
        .map_err(|e| ClientError::Start(format!("cannot find the wrun binary: {e}")))?;
    let log_path = root.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| ClientError::Start(format!("{}: {e}", log_path.display())))?;
    let log2 = log
        .try_clone()
        .map_err(|e| ClientError::Start(e.to_string()))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("--root")
        .arg(root)
        .arg("daemon")
        .arg("--host")
        .arg(address.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group: a Ctrl-C aimed at this command does not
        // reach the daemon.
        cmd.process_group(0);
    }
    cmd.spawn()
        .map_err(|e| ClientError::Start(format!("cannot run wrun daemon: {e}")))
}
