//! bollard, the Rust Docker SDK, as a second Docker client of wrun's
//! daemon beside the docker CLI: it dials the root's Unix socket, reads the
//! API version from `/version`, and decodes every answer into the Engine
//! API's generated models, so a missing or mistyped field, or a wrong
//! status code, fails here. Containers with logs, wait, inspect, lists
//! with filters, exec, stats, archives both ways, events, prune, commit,
//! save and load, attach, top, changes, and the errors of bad requests.
//! (bollard 0.21's models are API 1.53's; its `df` model no longer reads a
//! 1.43 answer, so `/system/df` is left to the docker CLI's tests.)

use std::collections::HashMap;
use std::future::Future;
use std::io::Read as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::container::LogOutput;
use bollard::errors::Error;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ChangeType, ContainerConfig, ContainerCreateBody, ContainerInspectResponse,
    ContainerStateStatusEnum, EventMessageTypeEnum,
};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CommitContainerOptionsBuilder,
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder,
    DownloadFromContainerOptionsBuilder, EventsOptionsBuilder, ImportImageOptionsBuilder,
    ListContainersOptionsBuilder, ListImagesOptionsBuilder, LogsOptionsBuilder,
    PruneContainersOptionsBuilder, RemoveContainerOptionsBuilder, RemoveImageOptions,
    RenameContainerOptionsBuilder, RestartContainerOptionsBuilder, StatsOptionsBuilder,
    StopContainerOptionsBuilder, TagImageOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};

use crate::support::{HANG, Root};

/// How long bollard waits for one answer, in seconds (a guard against
/// hangs, as [`HANG`] is).
const TIMEOUT: u64 = 120;

/// A root with busybox built and its daemon started (by `wrun ps`).
fn root_with_daemon() -> Root {
    let root = Root::new();
    root.busybox();
    assert_eq!(root.wrun(&["ps", "-q"]).ok(), "");
    root
}

/// A bollard client on `root`'s socket, settled on the API version that
/// `/version` offers, as with a Docker 24 engine (its own default is
/// newer). Its requests carry no `/v1.NN` prefix whatever the version:
/// bollard joins each absolute path onto its base URL, which drops it.
async fn connect(root: &Root) -> Docker {
    let sock = root.path().join("wrun.sock");
    let docker = Docker::connect_with_unix(
        sock.to_str().expect("utf8 socket path"),
        TIMEOUT,
        API_DEFAULT_VERSION,
    )
    .expect("a bollard client on the socket");
    let docker = docker
        .negotiate_version()
        .await
        .expect("negotiate the API version");
    let v = docker.client_version();
    assert_eq!((v.major_version, v.minor_version), (1, 43), "{v:?}");
    docker
}

/// Awaits `f`, failing after [`HANG`] (a guard against hangs, not a
/// measure of speed).
async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// The status code and message of the API's error answer, or a panic
/// naming the call.
#[track_caller]
fn api_error<T: std::fmt::Debug>(what: &str, r: Result<T, Error>) -> (u16, String) {
    match r {
        Err(Error::DockerResponseServerError {
            status_code,
            message,
        }) => (status_code, message),
        other => panic!("{what}: expected an API error, got {other:?}"),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The body of a busybox container running `cmd`, with `labels`.
fn busybox(cmd: &[&str], labels: &[(&str, &str)]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("busybox".into()),
        cmd: Some(strings(cmd)),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

/// Creates the container `name` from `body`; its ID.
async fn create(docker: &Docker, name: &str, body: ContainerCreateBody) -> String {
    let made = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name(name).build()),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
    assert_eq!(made.id.len(), 64, "{made:?}");
    assert!(made.warnings.is_empty(), "{made:?}");
    made.id
}

/// Creates and starts the container `name` running `cmd`; its ID.
async fn run(docker: &Docker, name: &str, cmd: &[&str], labels: &[(&str, &str)]) -> String {
    let id = create(docker, name, busybox(cmd, labels)).await;
    docker
        .start_container(name, None)
        .await
        .unwrap_or_else(|e| panic!("start {name}: {e:?}"));
    id
}

/// Waits for `name` to exit; its exit code. bollard reports a non-zero
/// exit as `DockerContainerWaitError` rather than as the answer.
async fn wait(docker: &Docker, name: &str) -> i64 {
    let mut answers = docker.wait_container(name, None);
    let first = guard(&format!("wait {name}"), answers.next())
        .await
        .unwrap_or_else(|| panic!("wait {name}: no answer"));
    match first {
        Ok(w) => {
            assert!(w.error.is_none(), "{w:?}");
            w.status_code
        }
        Err(Error::DockerContainerWaitError { error, code }) => {
            assert_eq!(error, "", "wait {name}");
            code
        }
        Err(e) => panic!("wait {name}: {e:?}"),
    }
}

/// Drains a stream of output frames: stdout and stderr apart.
async fn demux(
    what: &str,
    frames: impl Stream<Item = Result<LogOutput, Error>>,
) -> (String, String) {
    let frames: Vec<LogOutput> = guard(what, frames.try_collect())
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"));
    let (mut out, mut err) = (String::new(), String::new());
    for f in frames {
        match f {
            LogOutput::StdOut { message } => out.push_str(&String::from_utf8_lossy(&message)),
            LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            other => panic!("{what}: a frame of neither stream: {other:?}"),
        }
    }
    (out, err)
}

/// The logs of `name`, stdout and stderr apart.
async fn logs(docker: &Docker, name: &str, stdout: bool, stderr: bool) -> (String, String) {
    let options = LogsOptionsBuilder::new()
        .stdout(stdout)
        .stderr(stderr)
        .build();
    demux(&format!("logs of {name}"), docker.logs(name, Some(options))).await
}

/// Concatenates a stream of byte chunks, or returns its first error.
async fn try_bytes(
    what: &str,
    chunks: impl Stream<Item = Result<impl AsRef<[u8]>, Error>>,
) -> Result<Vec<u8>, Error> {
    let chunks: Vec<_> = guard(what, chunks.try_collect::<Vec<_>>()).await?;
    Ok(chunks.iter().flat_map(|c| c.as_ref().to_vec()).collect())
}

/// Concatenates a stream of byte chunks.
async fn bytes(what: &str, chunks: impl Stream<Item = Result<impl AsRef<[u8]>, Error>>) -> Vec<u8> {
    try_bytes(what, chunks)
        .await
        .unwrap_or_else(|e| panic!("{what}: {e:?}"))
}

/// The files of a tar: path and contents (as text, lossily), directories
/// with none.
fn untar(data: &[u8]) -> Vec<(String, Option<String>)> {
    let mut archive = tar::Archive::new(data);
    let mut out = Vec::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        let path = entry.path().expect("a path").display().to_string();
        let body = if entry.header().entry_type().is_dir() {
            None
        } else {
            let mut body = Vec::new();
            entry.read_to_end(&mut body).expect("read an entry");
            Some(String::from_utf8_lossy(&body).into_owned())
        };
        out.push((path, body));
    }
    out
}

/// Runs `cmd` in the running container `name` through an attached exec:
/// its stdout, stderr and exit code (from `inspect_exec`).
async fn exec(docker: &Docker, name: &str, cmd: &[&str]) -> (String, String, i64) {
    let made = docker
        .create_exec(
            name,
            CreateExecOptions {
                cmd: Some(cmd.to_vec()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create an exec in {name}: {e:?}"));
    let started = docker
        .start_exec(&made.id, None)
        .await
        .unwrap_or_else(|e| panic!("start exec {cmd:?}: {e:?}"));
    let StartExecResults::Attached { output, .. } = started else {
        panic!("an exec started without detach is attached");
    };
    let (out, err) = demux(&format!("exec {cmd:?}"), output).await;
    let inspected = docker
        .inspect_exec(&made.id)
        .await
        .unwrap_or_else(|e| panic!("inspect exec {cmd:?}: {e:?}"));
    assert_eq!(inspected.id.as_deref(), Some(made.id.as_str()));
    assert_eq!(inspected.running, Some(false), "{inspected:?}");
    let code = inspected.exit_code.expect("an exit code");
    (out, err, code)
}

fn filters(pairs: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    let mut f: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        f.entry(k.to_string()).or_default().push(v.to_string());
    }
    f
}

/// The names of the containers listed with `all` and `filters`, sorted.
async fn names(docker: &Docker, all: bool, f: &[(&str, &str)]) -> Vec<String> {
    let options = ListContainersOptionsBuilder::new()
        .all(all)
        .filters(&filters(f))
        .build();
    let listed = docker
        .list_containers(Some(options))
        .await
        .unwrap_or_else(|e| panic!("list containers (all={all}, {f:?}): {e:?}"));
    let mut names: Vec<String> = listed
        .iter()
        .flat_map(|c| c.names.clone().unwrap_or_default())
        .collect();
    names.sort();
    names
}

/// A container's output, in the right stream, and its exit code through
/// wait and inspect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_runs_a_container_and_reads_its_logs() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let id = run(
        &docker,
        "job",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        &[],
    )
    .await;
    assert_eq!(wait(&docker, "job").await, 3);

    let (out, err) = logs(&docker, "job", true, true).await;
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    let (out, err) = logs(&docker, &id[..12], true, false).await;
    assert_eq!((out.as_str(), err.as_str()), ("out\n", ""));
    let (out, err) = logs(&docker, &id, false, true).await;
    assert_eq!((out.as_str(), err.as_str()), ("", "err\n"));

    let inspected = docker
        .inspect_container("job", None)
        .await
        .expect("inspect");
    assert_eq!(inspected.id.as_deref(), Some(id.as_str()));
    assert_eq!(inspected.name.as_deref(), Some("/job"));
    let state = inspected.state.expect("a state");
    assert_eq!(state.status, Some(ContainerStateStatusEnum::EXITED));
    assert_eq!(state.exit_code, Some(3));
    assert_eq!(state.running, Some(false));
}

/// Create, start, wait, stop and remove, with inspect's state along the
/// way and lists filtered by label and state, with and without `all`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_container_lifecycle_and_lists() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let web = create(
        &docker,
        "web",
        busybox(&["sleep", "600"], &[("app", "bollard"), ("tier", "front")]),
    )
    .await;
    create(&docker, "once", busybox(&["true"], &[("app", "bollard")])).await;
    create(&docker, "other", busybox(&["true"], &[("app", "other")])).await;

    let state = |c: ContainerInspectResponse| c.state.expect("a state");
    let created = state(
        docker
            .inspect_container("web", None)
            .await
            .expect("inspect"),
    );
    assert_eq!(created.status, Some(ContainerStateStatusEnum::CREATED));
    assert_eq!(created.running, Some(false));
    assert_eq!(names(&docker, false, &[]).await, Vec::<String>::new());
    assert_eq!(names(&docker, true, &[]).await, ["/once", "/other", "/web"]);

    docker
        .start_container("web", None)
        .await
        .expect("start web");
    docker
        .start_container("once", None)
        .await
        .expect("start once");
    assert_eq!(wait(&docker, "once").await, 0);
    let running = docker.inspect_container(&web, None).await.expect("inspect");
    let config = running.config.clone().expect("a config");
    assert_eq!(config.image.as_deref(), Some("busybox"));
    assert_eq!(config.cmd, Some(strings(&["sleep", "600"])));
    assert_eq!(
        config
            .labels
            .expect("labels")
            .get("tier")
            .map(String::as_str),
        Some("front")
    );
    let running = state(running);
    assert_eq!(running.status, Some(ContainerStateStatusEnum::RUNNING));
    assert_eq!(running.running, Some(true));
    assert!(running.pid.is_some_and(|p| p > 0), "{running:?}");

    // Running only, unless `all`; label filters as `--filter label=`.
    assert_eq!(names(&docker, false, &[]).await, ["/web"]);
    assert_eq!(
        names(&docker, true, &[("label", "app=bollard")]).await,
        ["/once", "/web"]
    );
    assert_eq!(
        names(&docker, true, &[("label", "app")]).await,
        ["/once", "/other", "/web"]
    );
    assert_eq!(
        names(&docker, false, &[("label", "app=other")]).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(
            &docker,
            true,
            &[("label", "app=bollard"), ("status", "exited")]
        )
        .await,
        ["/once"]
    );
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .filters(&filters(&[("label", "tier=front")]))
                .build(),
        ))
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    let summary = &listed[0];
    assert_eq!(summary.id.as_deref(), Some(web.as_str()));
    assert_eq!(summary.image.as_deref(), Some("busybox"));
    assert_eq!(summary.command.as_deref(), Some("sleep 600"));
    assert!(
        summary
            .status
            .as_deref()
            .is_some_and(|s| s.starts_with("Up")),
        "{summary:?}"
    );

    // A running container is not removed without force.
    let (status, message) = api_error("rm web", docker.remove_container("web", None).await);
    assert_eq!(status, 409, "{message}");
    docker
        .stop_container("web", Some(StopContainerOptionsBuilder::new().t(1).build()))
        .await
        .expect("stop web");
    let stopped = state(
        docker
            .inspect_container("web", None)
            .await
            .expect("inspect"),
    );
    assert_eq!(stopped.status, Some(ContainerStateStatusEnum::EXITED));
    assert_eq!(stopped.running, Some(false));
    assert_eq!(stopped.exit_code, Some(137));

    docker.remove_container("web", None).await.expect("rm web");
    docker
        .remove_container(
            "once",
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .expect("rm -f once");
    assert_eq!(names(&docker, true, &[]).await, ["/other"]);
    let (status, message) = api_error("inspect web", docker.inspect_container("web", None).await);
    assert_eq!(status, 404, "{message}");
}

/// An attached exec's two streams and its exit code; an exec's
/// environment and working directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_exec_captures_output_and_exit_code() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    run(&docker, "box", &["sleep", "600"], &[]).await;

    let (out, err, code) = exec(
        &docker,
        "box",
        &["sh", "-c", "echo inside; echo oops >&2; exit 4"],
    )
    .await;
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("inside\n", "oops\n", 4)
    );
    assert_eq!(
        exec(&docker, "box", &["true"]).await,
        (String::new(), String::new(), 0)
    );

    let made = docker
        .create_exec(
            "box",
            CreateExecOptions {
                cmd: Some(vec!["sh", "-c", "echo $GREETING; pwd"]),
                env: Some(vec!["GREETING=hello"]),
                working_dir: Some("/tmp"),
                attach_stdout: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create an exec");
    let StartExecResults::Attached { output, .. } =
        docker.start_exec(&made.id, None).await.expect("start")
    else {
        panic!("attached");
    };
    let (out, _) = demux("exec with env", output).await;
    assert_eq!(out, "hello\n/tmp\n");
    let inspected = docker.inspect_exec(&made.id).await.expect("inspect exec");
    let process = inspected.process_config.expect("a process config");
    assert_eq!(process.entrypoint.as_deref(), Some("sh"));
    assert_eq!(inspected.exit_code, Some(0));

    // No exec in a container that is not running.
    docker
        .stop_container("box", Some(StopContainerOptionsBuilder::new().t(1).build()))
        .await
        .expect("stop");
    let refused = docker
        .create_exec(
            "box",
            CreateExecOptions {
                cmd: Some(vec!["true"]),
                ..Default::default()
            },
        )
        .await;
    let (status, message) = api_error("exec in a stopped container", refused);
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("is not running"), "{message}");
}

/// One sample of a running container's memory and CPU; a stopped
/// container's sample is zeros, as Docker answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_stats_of_running_and_stopped_containers() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let id = run(&docker, "sleeper", &["sleep", "30"], &[]).await;

    let one = |one_shot: bool| {
        StatsOptionsBuilder::new()
            .stream(false)
            .one_shot(one_shot)
            .build()
    };
    // The guest's memory counts once it is instantiated, a moment after
    // the start (readiness, not speed).
    let deadline = Instant::now() + HANG;
    let (s, memory) = loop {
        let samples: Vec<_> = guard(
            "one-shot stats",
            docker
                .stats("sleeper", Some(one(true)))
                .try_collect::<Vec<_>>(),
        )
        .await
        .expect("one-shot stats");
        assert_eq!(samples.len(), 1, "{samples:?}");
        let s = samples[0].clone();
        let memory = s.memory_stats.clone().expect("memory stats");
        if memory.usage.is_some_and(|u| u > 0) {
            break (s, memory);
        }
        assert!(Instant::now() < deadline, "no memory counted: {memory:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(s.id.as_deref(), Some(id.as_str()));
    assert_eq!(s.name.as_deref(), Some("/sleeper"));
    assert!(
        memory.limit.is_some_and(|l| l >= memory.usage.unwrap_or(0)),
        "{memory:?}"
    );
    let pids = s.pids_stats.clone().expect("pids stats");
    assert_eq!(pids.current, Some(1), "{pids:?}");
    assert!(
        s.read.as_deref().is_some_and(|r| !r.starts_with("0001")),
        "{s:?}"
    );

    // Without one-shot, a second sample fills precpu_stats.
    let samples: Vec<_> = guard(
        "stats",
        docker
            .stats("sleeper", Some(one(false)))
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("stats");
    let s = &samples[0];
    let cpu = s.cpu_stats.clone().expect("cpu stats");
    let precpu = s.precpu_stats.clone().expect("precpu stats");
    assert!(cpu.system_cpu_usage > precpu.system_cpu_usage, "{s:?}");
    assert!(cpu.online_cpus.is_some_and(|n| n > 0), "{cpu:?}");

    docker
        .stop_container(
            "sleeper",
            Some(StopContainerOptionsBuilder::new().t(1).build()),
        )
        .await
        .expect("stop");
    let samples: Vec<_> = guard(
        "stats of a stopped container",
        docker
            .stats("sleeper", Some(one(false)))
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("stats of a stopped container");
    let s = &samples[0];
    assert_eq!(s.id.as_deref(), Some(id.as_str()));
    assert_eq!(s.read.as_deref(), Some("0001-01-01T00:00:00Z"), "{s:?}");
    let memory = s.memory_stats.clone().unwrap_or_default();
    assert_eq!(memory.usage.unwrap_or(0), 0, "{memory:?}");
    let pids = s.pids_stats.clone().unwrap_or_default();
    assert_eq!(pids.current.unwrap_or(0), 0, "{pids:?}");
}

/// A tar uploaded into a running container is there at once for an exec;
/// a directory downloaded comes back as a tar of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_archive_both_ways() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    run(&docker, "box", &["sleep", "600"], &[]).await;

    let mut tar = tar::Builder::new(Vec::new());
    for (path, body) in [
        ("hello.txt", "from bollard\n"),
        ("sub/inner.txt", "deeper\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, body.as_bytes())
            .expect("append");
    }
    let tar = tar.into_inner().expect("a tar");
    docker
        .upload_to_container(
            "box",
            Some(UploadToContainerOptionsBuilder::new().path("/tmp").build()),
            bollard::body_full(tar.into()),
        )
        .await
        .expect("upload");
    let (out, _, code) = exec(
        &docker,
        "box",
        &["cat", "/tmp/hello.txt", "/tmp/sub/inner.txt"],
    )
    .await;
    assert_eq!((out.as_str(), code), ("from bollard\ndeeper\n", 0));

    let (_, _, code) = exec(
        &docker,
        "box",
        &["sh", "-c", "echo made inside > /tmp/sub/made.txt"],
    )
    .await;
    assert_eq!(code, 0);
    let data = bytes(
        "download /tmp/sub",
        docker.download_from_container(
            "box",
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path("/tmp/sub")
                    .build(),
            ),
        ),
    )
    .await;
    let mut files = untar(&data);
    files.sort();
    let want = |p: &str, b: Option<&str>| (p.to_string(), b.map(str::to_string));
    assert_eq!(
        files,
        [
            want("sub/", None),
            want("sub/inner.txt", Some("deeper\n")),
            want("sub/made.txt", Some("made inside\n")),
        ]
    );

    let info = docker
        .get_container_archive_info(
            "box",
            Some(
                ContainerArchiveInfoOptionsBuilder::new()
                    .path("/tmp/hello.txt")
                    .build(),
            ),
        )
        .await
        .expect("archive info");
    assert_eq!((info.name.as_str(), info.size), ("hello.txt", 13));

    let missing = try_bytes(
        "download /nowhere",
        docker.download_from_container(
            "box",
            Some(
                DownloadFromContainerOptionsBuilder::new()
                    .path("/nowhere")
                    .build(),
            ),
        ),
    )
    .await;
    let (status, message) = api_error("download /nowhere", missing);
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("/nowhere"), "{message}");
}

/// Events filtered by type from a `since`: a container's create, start,
/// die and stop, in order, and nothing of the image tagged meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_events_of_a_container() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        .to_string();
    let options = EventsOptionsBuilder::new()
        .since(&since)
        .filters(&filters(&[("type", "container")]))
        .build();
    let mut events = Box::pin(docker.events(Some(options)));

    let id = run(&docker, "watched", &["sleep", "600"], &[("app", "events")]).await;
    docker
        .tag_image(
            "busybox",
            Some(TagImageOptionsBuilder::new().repo("retagged").build()),
        )
        .await
        .expect("tag");
    docker
        .stop_container(
            "watched",
            Some(StopContainerOptionsBuilder::new().t(0).build()),
        )
        .await
        .expect("stop");

    let mut actions = Vec::new();
    while !actions.iter().any(|a| a == "stop") {
        let ev = guard("the next event", events.next())
            .await
            .expect("the stream goes on")
            .expect("an event");
        assert_eq!(ev.typ, Some(EventMessageTypeEnum::CONTAINER), "{ev:?}");
        let actor = ev.actor.clone().expect("an actor");
        assert_eq!(actor.id.as_deref(), Some(id.as_str()), "{ev:?}");
        let attributes = actor.attributes.expect("attributes");
        assert_eq!(attributes.get("name").map(String::as_str), Some("watched"));
        assert_eq!(attributes.get("image").map(String::as_str), Some("busybox"));
        assert_eq!(attributes.get("app").map(String::as_str), Some("events"));
        assert!(
            ev.time.is_some_and(|t| t >= since.parse().expect("secs")),
            "{ev:?}"
        );
        actions.push(ev.action.expect("an action"));
    }
    let seen: Vec<&str> = actions
        .iter()
        .map(String::as_str)
        .filter(|a| ["create", "start", "die", "stop"].contains(a))
        .collect();
    assert_eq!(seen, ["create", "start", "die", "stop"], "{actions:?}");
}

/// Prune removes the containers that are not running, and only those its
/// label filter picks, reporting their IDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_prunes_stopped_containers() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let a = run(&docker, "done-a", &["true"], &[("prune", "yes")]).await;
    let b = run(&docker, "done-b", &["true"], &[("prune", "yes")]).await;
    let kept = run(&docker, "done-kept", &["true"], &[("prune", "no")]).await;
    let never = create(
        &docker,
        "never-started",
        busybox(&["true"], &[("prune", "yes")]),
    )
    .await;
    run(&docker, "up", &["sleep", "600"], &[("prune", "yes")]).await;
    for name in ["done-a", "done-b", "done-kept"] {
        assert_eq!(wait(&docker, name).await, 0);
    }

    let pruned = docker
        .prune_containers(Some(
            PruneContainersOptionsBuilder::new()
                .filters(&filters(&[("label", "prune=yes")]))
                .build(),
        ))
        .await
        .expect("prune");
    let mut deleted = pruned.containers_deleted.clone().expect("deleted IDs");
    deleted.sort();
    let mut want = vec![a, b, never];
    want.sort();
    assert_eq!(deleted, want, "{pruned:?}");
    assert!(pruned.space_reclaimed.is_some(), "{pruned:?}");
    assert_eq!(names(&docker, true, &[]).await, ["/done-kept", "/up"]);

    let pruned = docker.prune_containers(None).await.expect("prune all");
    assert_eq!(pruned.containers_deleted, Some(vec![kept]), "{pruned:?}");
    let pruned = docker.prune_containers(None).await.expect("prune nothing");
    assert!(
        pruned.containers_deleted.unwrap_or_default().is_empty(),
        "nothing left to prune"
    );
    assert_eq!(names(&docker, true, &[]).await, ["/up"]);
}

/// A committed container's file is in the image it makes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_commits_a_container() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    run(
        &docker,
        "writer",
        &["sh", "-c", "echo committed > /tmp/note.txt"],
        &[],
    )
    .await;
    assert_eq!(wait(&docker, "writer").await, 0);

    let made = docker
        .commit_container(
            CommitContainerOptionsBuilder::new()
                .container("writer")
                .repo("noted")
                .tag("v1")
                .comment("from bollard")
                .build(),
            ContainerConfig::default(),
        )
        .await
        .expect("commit");
    assert!(made.id.starts_with("sha256:"), "{made:?}");
    let image = docker.inspect_image("noted:v1").await.expect("inspect");
    assert_eq!(image.id.as_deref(), Some(made.id.as_str()));
    assert_eq!(image.repo_tags, Some(strings(&["noted:v1"])));
    let history = docker.image_history("noted:v1").await.expect("history");
    assert_eq!(history[0].id, made.id);
    // The newest step is the commit: the container's command made it, and
    // the message is its comment, as Docker records them.
    let step = &history[0];
    assert_eq!(step.comment, "from bollard", "{step:?}");
    assert!(step.created_by.contains("/tmp/note.txt"), "{step:?}");
    assert_eq!(image.comment.as_deref(), Some("from bollard"));

    let body = ContainerCreateBody {
        image: Some("noted:v1".into()),
        cmd: Some(strings(&["cat", "/tmp/note.txt"])),
        ..Default::default()
    };
    create(&docker, "from-commit", body).await;
    docker
        .start_container("from-commit", None)
        .await
        .expect("start");
    assert_eq!(wait(&docker, "from-commit").await, 0);
    let (out, _) = logs(&docker, "from-commit", true, true).await;
    assert_eq!(out, "committed\n");
    // The base image never had the file.
    run(&docker, "reader", &["cat", "/tmp/note.txt"], &[]).await;
    assert_eq!(wait(&docker, "reader").await, 1);
}

/// An image saved to bytes, removed, and loaded back is the same image
/// under the same tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_saves_and_loads_an_image() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let before = docker.inspect_image("busybox").await.expect("inspect");
    let id = before.id.clone().expect("an ID");

    let saved = bytes("save busybox", docker.export_image("busybox")).await;
    let files: Vec<String> = untar(&saved).into_iter().map(|(p, _)| p).collect();
    for name in ["index.json", "manifest.json", "oci-layout"] {
        assert!(files.iter().any(|f| f == name), "{name} in {files:?}");
    }

    let removed = docker
        .remove_image("busybox", None::<RemoveImageOptions>, None)
        .await
        .expect("rmi");
    assert!(
        removed
            .iter()
            .any(|r| r.untagged.as_deref() == Some("busybox:latest")),
        "{removed:?}"
    );
    assert!(
        removed
            .iter()
            .any(|r| r.deleted.as_deref() == Some(id.as_str())),
        "{removed:?}"
    );
    let (status, message) = api_error("inspect busybox", docker.inspect_image("busybox").await);
    assert_eq!(status, 404, "{message}");

    let loaded: Vec<_> = guard(
        "load",
        docker
            .import_image(
                ImportImageOptionsBuilder::new().quiet(true).build(),
                bollard::body_full(saved.into()),
                None,
            )
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("load");
    let said: String = loaded.iter().filter_map(|b| b.stream.clone()).collect();
    assert!(said.contains("Loaded image: busybox:latest"), "{loaded:?}");

    let after = docker.inspect_image("busybox").await.expect("inspect");
    assert_eq!(after.id, before.id);
    assert_eq!(after.repo_tags, Some(strings(&["busybox:latest"])));
    let listed = docker
        .list_images(Some(
            ListImagesOptionsBuilder::new()
                .filters(&filters(&[("reference", "busybox")]))
                .build(),
        ))
        .await
        .expect("images");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, id);
}

/// Bad requests answer with Docker's status codes and a message that
/// names what was wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_bad_requests() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    let (status, message) = api_error(
        "inspect a missing container",
        docker.inspect_container("nosuch", None).await,
    );
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("No such container: nosuch"), "{message}");

    let (status, message) = api_error(
        "commit a missing container",
        docker
            .commit_container(
                CommitContainerOptionsBuilder::new()
                    .container("nosuch")
                    .repo("never")
                    .build(),
                ContainerConfig::default(),
            )
            .await,
    );
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("nosuch"), "{message}");

    let (status, message) = api_error(
        "start a missing container",
        docker.start_container("nosuch", None).await,
    );
    assert_eq!(status, 404, "{message}");
    let (status, message) = api_error(
        "create from a missing image",
        docker
            .create_container(
                None,
                ContainerCreateBody {
                    image: Some("nosuchimage:1".into()),
                    ..Default::default()
                },
            )
            .await,
    );
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("nosuchimage"), "{message}");

    create(&docker, "taken", busybox(&["true"], &[])).await;
    let (status, message) = api_error(
        "create a taken name",
        docker
            .create_container(
                Some(CreateContainerOptionsBuilder::new().name("taken").build()),
                busybox(&["true"], &[]),
            )
            .await,
    );
    assert_eq!(status, 409, "{message}");
    assert!(message.contains("taken"), "{message}");
}

/// The daemon as bollard sees it (`/_ping`, `/version`, `/info`), and more
/// of a running container: top, changes, streamed stats, rename, restart,
/// attach with the logs so far, and kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_system_and_a_running_container() {
    let root = root_with_daemon();
    let docker = connect(&root).await;
    assert_eq!(docker.ping().await.expect("ping"), "OK");
    let version = docker.version().await.expect("version");
    assert_eq!(version.api_version.as_deref(), Some("1.43"));
    assert_eq!(version.min_api_version.as_deref(), Some("1.24"));

    let id = run(&docker, "box", &["sleep", "600"], &[]).await;
    let info = docker.info().await.expect("info");
    assert_eq!(
        (info.containers, info.containers_running, info.images),
        (Some(1), Some(1), Some(1)),
        "{info:?}"
    );
    assert_eq!(
        info.docker_root_dir.as_deref(),
        root.path().to_str(),
        "{info:?}"
    );

    let top = docker.top_processes("box", None).await.expect("top");
    let titles = top.titles.expect("titles");
    let cmd = titles
        .iter()
        .position(|t| t == "CMD")
        .expect("a CMD column");
    let processes = top.processes.expect("processes");
    assert_eq!(processes.len(), 1, "{processes:?}");
    assert_eq!(processes[0][cmd], "sleep 600");

    let (_, _, code) = exec(&docker, "box", &["sh", "-c", "echo x > /tmp/x"]).await;
    assert_eq!(code, 0);
    let changes = docker.container_changes("box").await.expect("changes");
    let changes: Vec<(String, ChangeType)> = changes
        .unwrap_or_default()
        .into_iter()
        .map(|c| (c.path, c.kind))
        .collect();
    assert!(
        changes.contains(&("/tmp/x".to_string(), ChangeType::_1)),
        "added: {changes:?}"
    );
    assert!(
        changes.contains(&("/tmp".to_string(), ChangeType::_0)),
        "modified: {changes:?}"
    );

    // A stream sends a sample each second, each with the one before.
    let samples: Vec<_> = guard(
        "two streamed samples",
        docker
            .stats("box", Some(StatsOptionsBuilder::new().stream(true).build()))
            .take(2)
            .try_collect::<Vec<_>>(),
    )
    .await
    .expect("streamed stats");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].preread, samples[0].read, "{samples:?}");

    docker
        .rename_container(
            "box",
            RenameContainerOptionsBuilder::new().name("renamed").build(),
        )
        .await
        .expect("rename");
    docker
        .restart_container(
            "renamed",
            Some(RestartContainerOptionsBuilder::new().t(0).build()),
        )
        .await
        .expect("restart");
    let inspected = docker.inspect_container(&id, None).await.expect("inspect");
    assert_eq!(inspected.name.as_deref(), Some("/renamed"));
    let state = inspected.state.expect("a state");
    assert_eq!(state.running, Some(true), "{state:?}");

    run(
        &docker,
        "talker",
        &["sh", "-c", "echo before; sleep 1; echo after"],
        &[],
    )
    .await;
    let attached = docker
        .attach_container(
            "talker",
            Some(
                AttachContainerOptionsBuilder::new()
                    .stdout(true)
                    .stderr(true)
                    .stream(true)
                    .logs(true)
                    .build(),
            ),
        )
        .await
        .expect("attach");
    let (out, err) = demux("attach", attached.output).await;
    assert_eq!((out.as_str(), err.as_str()), ("before\nafter\n", ""));

    docker.kill_container("renamed", None).await.expect("kill");
    assert_eq!(wait(&docker, "renamed").await, 137);
    let (status, message) = api_error(
        "kill a stopped container",
        docker.kill_container("renamed", None).await,
    );
    assert_eq!(status, 409, "{message}");
}
