//! Tasks per second through a containerd shim's task API, as runwasi's
//! stress test measures them: one shim process, kept up by a long-running
//! task, then `TASKS` tasks each created, started, waited for and deleted.
//! `CLIENTS` clients, each on its own connection, do that one task after
//! another. (runwasi's harness bounds only create-and-start and lets every
//! wait pile up on one connection; runc's shim stalls under that, so the
//! two could not be compared.) Every bundle is written before the clock
//! starts. Any shim that speaks task API v2 can be measured, so
//! `bench/shim.sh` runs it on wrun's and on runc's
//! (`containerd-shim-runc-v2`) in the same run.
//!
//! ```text
//! task_load SHIM CONTAINERD_SOCKET SPEC WORKDIR TASKS CLIENTS -- KEEPER... -- ARGS...
//! ```
//!
//! `SPEC` is an OCI `config.json` whose `root.path` is an absolute rootfs
//! shared by every task; each task's `process.args` becomes `ARGS`, and the
//! long-running task's `KEEPER` (a `sleep`). The shim's events go to the containerd
//! at `CONTAINERD_SOCKET` (its `.ttrpc` socket), which is all the shim
//! needs of it. Prints the tasks per second on stdout.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use containerd_shim::protos::api;
use containerd_shim::protos::shim_async::{Client, TaskClient};
use containerd_shim::protos::ttrpc::r#async::transport::Socket;
use containerd_shim::protos::ttrpc::context;

const NAMESPACE: &str = "task-load";

/// Each call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

type Error = Box<dyn std::error::Error + Send + Sync>;

fn ctx() -> context::Context {
    context::with_timeout(CALL_TIMEOUT.as_nanos() as i64)
}

struct Args {
    shim: PathBuf,
    containerd: String,
    spec: serde_json::Value,
    workdir: PathBuf,
    tasks: usize,
    clients: usize,
    keeper: Vec<String>,
    argv: Vec<String>,
}

fn parse() -> Result<Args, Error> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: task_load SHIM CONTAINERD_SOCKET SPEC WORKDIR TASKS CLIENTS -- KEEPER... -- ARGS...";
    let mut parts = all.split(|a| a == "--");
    let (Some(head), Some(keeper), Some(argv), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(usage.into());
    };
    let [shim, containerd, spec, workdir, tasks, clients] = head else {
        return Err(usage.into());
    };
    if keeper.is_empty() || argv.is_empty() {
        return Err(usage.into());
    }
    let spec = std::fs::read(spec).map_err(|e| format!("{spec}: {e}"))?;
    Ok(Args {
        shim: shim.into(),
        containerd: containerd.clone(),
        spec: serde_json::from_slice(&spec)?,
        workdir: workdir.into(),
        tasks: tasks.parse()?,
        clients: clients.parse::<usize>()?.max(1),
        keeper: keeper.to_vec(),
        argv: argv.to_vec(),
    })
}

/// Writes the bundle of task `id`: the spec with `argv` as its process.
fn bundle(args: &Args, id: &str, argv: &[String]) -> Result<PathBuf, Error> {
    let dir = args.workdir.join(id);
    std::fs::create_dir_all(&dir)?;
    let mut spec = args.spec.clone();
    spec["process"]["args"] = serde_json::json!(argv);
    spec["process"]["terminal"] = serde_json::json!(false);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&spec)?)?;
    Ok(dir)
}

/// A client of the shim at `address`, on a connection of its own.
async fn client(address: &str) -> Result<TaskClient, Error> {
    // A path: ttrpc's own `unix://` would name an abstract socket.
    let path = address.strip_prefix("unix://").unwrap_or(address);
    let stream = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    Ok(TaskClient::new(Client::new(Socket::from(stream))))
}

/// Runs the shim's `start` action in `dir`; returns the address it serves.
async fn start_shim(args: &Args, dir: &Path, id: &str) -> Result<String, Error> {
    // The serving process writes its log to the bundle's `log` FIFO, as
    // containerd makes it; this program reads it, and drops it.
    let fifo = dir.join("log");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status()?;
    if !made.success() {
        return Err(format!("mkfifo {}: {made}", fifo.display()).into());
    }
    let mut log = tokio::net::unix::pipe::OpenOptions::new().open_receiver(&fifo)?;
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut log, &mut tokio::io::sink()).await;
    });
    let out = tokio::process::Command::new(&args.shim)
        .current_dir(dir)
        .env("TTRPC_ADDRESS", format!("{}.ttrpc", args.containerd))
        .args(["-namespace", NAMESPACE, "-address", &args.containerd])
        .args(["-publish-binary", "/bin/true", "-id", id, "start"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!("{} start: {}", args.shim.display(), out.status).into());
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

async fn create(task: &TaskClient, id: &str, dir: &Path) -> Result<(), Error> {
    let req = api::CreateTaskRequest {
        id: id.to_string(),
        bundle: dir.display().to_string(),
        ..Default::default()
    };
    task.create(ctx(), &req).await?;
    Ok(())
}

async fn start(task: &TaskClient, id: &str) -> Result<(), Error> {
    let req = api::StartRequest {
        id: id.to_string(),
        ..Default::default()
    };
    task.start(ctx(), &req).await?;
    Ok(())
}

async fn wait_and_delete(task: &TaskClient, id: &str) -> Result<u32, Error> {
    let req = api::WaitRequest {
        id: id.to_string(),
        ..Default::default()
    };
    let code = task.wait(ctx(), &req).await?.exit_status;
    let req = api::DeleteRequest {
        id: id.to_string(),
        ..Default::default()
    };
    task.delete(ctx(), &req).await?;
    Ok(code)
}

/// One task: created, started, waited for (it must exit 0) and deleted.
/// A task that fails is killed and deleted, so that nothing of it stays
/// in the shim (runc keeps a stopped container's state otherwise).
async fn one(task: &TaskClient, id: &str, dir: &Path) -> Result<(), Error> {
    let ran = async {
        create(task, id, dir).await?;
        start(task, id).await?;
        match wait_and_delete(task, id).await? {
            0 => Ok(()),
            code => Err(format!("task {id} exited {code}").into()),
        }
    }
    .await;
    if ran.is_err() {
        let kill = api::KillRequest {
            id: id.to_string(),
            signal: 9,
            all: true,
            ..Default::default()
        };
        let _ = task.kill(ctx(), &kill).await;
        let _ = wait_and_delete(task, id).await;
    }
    ran
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("task_load: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Error> {
    let args = parse()?;
    let keeper_id = format!("keeper{}", std::process::id());
    let keeper = bundle(&args, &keeper_id, &args.keeper)?;
    let address = start_shim(&args, &keeper, &keeper_id).await?;
    let task = client(&address).await?;
    let kept = async {
        create(&task, &keeper_id, &keeper).await?;
        start(&task, &keeper_id).await
    }
    .await;
    let shim_pid = task
        .connect(
            ctx(),
            &api::ConnectRequest {
                id: keeper_id.clone(),
                ..Default::default()
            },
        )
        .await
        .map_or(0, |r| r.shim_pid);
    let result = match kept {
        Ok(()) => measure(&args, &address).await,
        Err(e) => Err(format!("the long-running task: {e}").into()),
    };
    // The shim is this program's: end its last task and ask it to go, and
    // kill it by its PID if it does not.
    let kill = api::KillRequest {
        id: keeper_id.clone(),
        signal: 9,
        ..Default::default()
    };
    let _ = task.kill(ctx(), &kill).await;
    let _ = wait_and_delete(&task, &keeper_id).await;
    let _ = task.shutdown(ctx(), &api::ShutdownRequest::default()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    if shim_pid > 0 && Path::new(&format!("/proc/{shim_pid}")).exists() {
        let _ = std::process::Command::new("kill")
            .args(["-9", &shim_pid.to_string()])
            .status();
    }
    let per_second = result?;
    println!("{per_second:.0}");
    Ok(())
}

async fn measure(args: &Args, address: &str) -> Result<f64, Error> {
    // Task IDs carry this process's ID: a shim (runc's) may remember the
    // tasks of an earlier run that was cut short.
    let me = std::process::id();
    let mut queues: Vec<Vec<(String, PathBuf)>> = vec![Vec::new(); args.clients];
    for i in 0..args.tasks {
        let id = format!("t{me}-{i}");
        let dir = bundle(args, &id, &args.argv)?;
        queues[i % args.clients].push((id, dir));
    }
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        clients.push(client(address).await?);
    }
    let began = Instant::now();
    let all: Vec<_> = clients
        .into_iter()
        .zip(queues)
        .map(|(task, queue)| {
            tokio::spawn(async move {
                let mut failed = Vec::new();
                for (id, dir) in queue {
                    if let Err(e) = one(&task, &id, &dir).await {
                        failed.push(e.to_string());
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = Vec::new();
    for h in all {
        match h.await {
            Ok(f) => failed.extend(f),
            Err(e) => failed.push(e.to_string()),
        }
    }
    let elapsed = began.elapsed();
    if let Some(first) = failed.first() {
        return Err(format!(
            "{} of {} tasks failed; the first: {first}",
            failed.len(),
            args.tasks
        )
        .into());
    }
    Ok(args.tasks as f64 / elapsed.as_secs_f64())
}
