//! The real docker CLI as a client of wrun's daemon: `DOCKER_HOST` points
//! at a root's socket and the usual commands work as they do with Docker.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::{Ran, Root, free_port, http_get_ok, sample};

/// A `docker` command aimed at `root`'s daemon, with a config dir of the
/// test's own (`config`) so that the user's settings (contexts,
/// credentials, plugins) stay out. The classic builder is the one wrun
/// serves.
pub fn docker_cmd(root: &Root, config: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new("docker");
    c.args(args)
        .env(
            "DOCKER_HOST",
            format!("unix://{}", root.path().join("wrun.sock").display()),
        )
        .env("DOCKER_CONFIG", config)
        .env("DOCKER_BUILDKIT", "0")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

pub fn spawn_failed(e: std::io::Error) -> ! {
    panic!("the docker CLI is needed for this test (install docker-ce-cli or docker.io): {e}")
}

pub fn ran(out: std::process::Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `docker args` against `root`'s daemon.
pub fn docker(root: &Root, args: &[&str]) -> Ran {
    let config = tempfile::tempdir().expect("tempdir");
    let out = docker_cmd(root, config.path(), args)
        .output()
        .unwrap_or_else(|e| spawn_failed(e));
    ran(out)
}

/// Runs `docker args` with `input` on its stdin.
fn docker_with_input(root: &Root, args: &[&str], input: &str) -> Ran {
    let config = tempfile::tempdir().expect("tempdir");
    let mut child = docker_cmd(root, config.path(), args)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| spawn_failed(e));
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    ran(child.wait_with_output().expect("wait"))
}

/// A root with busybox built and its daemon started (by `wrun ps`).
fn root_with_daemon() -> Root {
    let root = Root::new();
    root.busybox();
    assert_eq!(root.wrun(&["ps", "-q"]).ok(), "");
    root
}

/// `docker version` names wrun as the server; `docker info` counts what
/// the root holds.
#[test]
fn docker_version_and_info() {
    let root = root_with_daemon();
    let wrun_version = root.wrun(&["--version"]);
    let wrun_version = wrun_version.ok().trim().to_string(); // "wrun 0.1.0"
    let v = docker(&root, &["version"]);
    assert!(
        v.ok()
            .lines()
            .any(|l| l.trim() == format!("Server: {wrun_version}")),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("API version:       1.43"), "{}", v.stdout);

    let info = docker(&root, &["info"]);
    let text = info.ok();
    for line in [
        "Containers: 0",
        "Images: 1",
        "Default Runtime: wasmtime",
        "Logging Driver: json-file",
    ] {
        assert!(text.lines().any(|l| l.trim() == line), "{line}:\n{text}");
    }
    assert!(
        text.contains(&format!("Docker Root Dir: {}", root.path().display())),
        "{text}"
    );
}

/// `docker run` in the foreground: output, exit codes, `--rm`.
#[test]
fn docker_run_in_the_foreground() {
    let root = root_with_daemon();
    let r = docker(&root, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(r.ok(), "hi\n");
    assert_eq!(
        docker(&root, &["ps", "-a", "-q"]).ok(),
        "",
        "--rm removed it"
    );

    let r = docker(&root, &["run", "busybox", "sh", "-c", "exit 5"]);
    assert_eq!(r.code, 5, "{r:?}");
    let r = docker(
        &root,
        &[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2",
        ],
    );
    assert_eq!(r.ok(), "out\n");
    assert!(r.stderr.contains("err\n"), "{r:?}");
    // The exited container is there for both clients.
    let listed = docker(&root, &["ps", "-a", "--format", "{{.Status}}"]);
    assert!(listed.ok().starts_with("Exited (5)"), "{}", listed.stdout);
    let ours = root.wrun(&["ps", "-a", "-q"]);
    assert_eq!(ours.ok().lines().count(), 1, "{}", ours.stdout);
}

/// A detached container through its whole life: run, ps, logs, exec,
/// stop, rm.
#[test]
fn docker_detached_container_lifecycle() {
    let root = root_with_daemon();
    let id = docker(
        &root,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "busybox",
            "sh",
            "-c",
            "echo up; sleep 600",
        ],
    );
    let id = id.ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    let ps = docker(&root, &["ps", "--format", "{{.Names}} {{.Status}}"]);
    let lines: Vec<&str> = ps.ok().lines().collect();
    assert_eq!(lines.len(), 1, "{}", ps.stdout);
    assert!(lines[0].starts_with("web Up"), "{}", ps.stdout);
    let ps = docker(&root, &["ps", "-q", "--no-trunc"]);
    assert_eq!(ps.ok().trim(), id);

    let logs = docker(&root, &["logs", "web"]);
    assert!(logs.ok().contains("up\n"), "{logs:?}");

    assert_eq!(
        docker(&root, &["exec", "web", "echo", "inside"]).ok(),
        "inside\n"
    );
    let missing = docker(&root, &["exec", "web", "nosuchprog"]);
    assert_eq!(missing.code, 127, "{missing:?}");
    let host = docker(&root, &["exec", "web", "hostname"]);
    assert_eq!(host.ok(), format!("{}\n", &id[..12]));
    let inspected = docker(
        &root,
        &["inspect", "-f", "{{.State.Running}} {{.Name}}", "web"],
    );
    assert_eq!(inspected.ok(), "true /web\n");

    assert_eq!(docker(&root, &["stop", "web"]).ok(), "web\n");
    let status = docker(&root, &["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(
        status.ok().starts_with("web Exited (137)"),
        "{}",
        status.stdout
    );
    assert_eq!(docker(&root, &["rm", "web"]).ok(), "web\n");
    assert_eq!(docker(&root, &["ps", "-a", "-q"]).ok(), "");
    let gone = docker(&root, &["logs", "web"]);
    assert_ne!(gone.code, 0, "{gone:?}");
    assert!(gone.stderr.contains("No such container: web"), "{gone:?}");
}

/// `docker images`, `tag` and `rmi` act on wrun's image store.
#[test]
fn docker_images_tag_and_rmi() {
    let root = root_with_daemon();
    let id = root.image_id("busybox");
    let short = id.trim_start_matches("sha256:")[..12].to_string();
    let fmt = "{{.Repository}}:{{.Tag}} {{.ID}}";
    let images = docker(&root, &["images", "--format", fmt]);
    assert_eq!(images.ok(), format!("busybox:latest {short}\n"));

    docker(&root, &["tag", "busybox", "mybox:1"]).ok();
    let images = docker(&root, &["images", "--format", fmt]);
    let mut lines: Vec<&str> = images.ok().lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            format!("busybox:latest {short}"),
            format!("mybox:1 {short}")
        ]
    );
    assert_eq!(root.image_id("mybox:1"), id, "wrun sees the new tag");

    let rmi = docker(&root, &["rmi", "mybox:1"]);
    assert_eq!(rmi.ok(), "Untagged: mybox:1\n");
    let images = docker(&root, &["images", "--format", fmt]);
    assert_eq!(images.ok(), format!("busybox:latest {short}\n"));
    assert_eq!(
        root.wrun(&["run", "--rm", "busybox", "echo", "still here"])
            .ok(),
        "still here\n"
    );
}

/// `docker build` through the classic builder API builds the same image
/// `wrun build` does, and it runs.
#[test]
fn docker_build_with_the_classic_builder() {
    let root = Root::new();
    assert_eq!(root.wrun(&["ps", "-q"]).ok(), "");
    let ctx = sample("busybox");
    let built = docker(
        &root,
        &["build", "-t", "built:1", ctx.to_str().expect("utf8")],
    );
    let out = built.ok();
    assert!(out.contains("Successfully tagged built:1"), "{out}");
    assert_eq!(
        docker(&root, &["run", "--rm", "built:1", "echo", "ok"]).ok(),
        "ok\n"
    );
    // Builds are deterministic: the CLI's own build gives the same ID.
    let by_docker = root.image_id("built:1");
    root.busybox();
    assert_eq!(root.image_id("busybox"), by_docker);
    let short = &by_docker.trim_start_matches("sha256:")[..12];
    assert!(
        out.contains(&format!("Successfully built {short}")),
        "{out}"
    );
}

/// `docker run -i` and `docker exec -i` pass stdin to the guest.
#[test]
fn docker_run_and_exec_with_stdin() {
    let root = root_with_daemon();
    let r = docker_with_input(&root, &["run", "-i", "--rm", "busybox", "cat"], "hello\n");
    assert_eq!(r.ok(), "hello\n");
    // Without -i the guest's stdin is empty.
    let r = docker_with_input(&root, &["run", "--rm", "busybox", "cat"], "hello\n");
    assert_eq!(r.ok(), "");

    docker(
        &root,
        &["run", "-d", "--name", "s", "busybox", "sleep", "600"],
    )
    .ok();
    let r = docker_with_input(&root, &["exec", "-i", "s", "sh"], "echo hi\nexit 4\n");
    assert_eq!((r.code, r.stdout.as_str()), (4, "hi\n"), "{r:?}");
    docker(&root, &["rm", "-f", "s"]).ok();
    assert_eq!(docker(&root, &["ps", "-a", "-q"]).ok(), "");
}

/// `docker run -p` publishes a port that serves on the host (dialled on
/// 127.0.0.1 only), `docker port` and `docker inspect` tell the binding,
/// and `docker network create/ls/rm` manage networks whose containers find
/// each other by name.
#[test]
fn docker_publishes_ports_and_manages_networks() {
    let root = root_with_daemon();
    root.kubia();
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let id = docker(
        &root,
        &["run", "-d", "--name", "k", "-p", &publish, "kubia"],
    );
    let id = id.ok().trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    let body = http_get_ok(port, std::time::Duration::from_secs(10));
    assert_eq!(body, format!("you've hit {}\n", &id[..12]));

    assert_eq!(
        docker(&root, &["port", "k"]).ok(),
        format!("8080/tcp -> 127.0.0.1:{port}\n")
    );
    assert_eq!(
        docker(&root, &["port", "k", "8080"]).ok(),
        format!("127.0.0.1:{port}\n")
    );
    let ps = docker(&root, &["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(ps.ok(), format!("k 127.0.0.1:{port}->8080/tcp\n"));
    let ip = docker(
        &root,
        &["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "k"],
    );
    assert!(ip.ok().starts_with("10.88."), "{}", ip.stdout);

    let net = docker(&root, &["network", "create", "dnet"]);
    let net_id = net.ok().trim().to_string();
    assert_eq!(net_id.len(), 64, "{net_id}");
    let ls = docker(
        &root,
        &["network", "ls", "--format", "{{.Name}} {{.Driver}}"],
    );
    let mut lines: Vec<&str> = ls.ok().lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["bridge bridge", "dnet bridge", "host host", "none null"],
        "{}",
        ls.stdout
    );
    let subnet = docker(
        &root,
        &[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            "dnet",
        ],
    );
    assert!(subnet.ok().starts_with("10.89."), "{}", subnet.stdout);

    let web = docker(
        &root,
        &["run", "-d", "--network", "dnet", "--name", "web", "kubia"],
    );
    let web = web.ok().trim().to_string();
    let r = docker(
        &root,
        &[
            "run",
            "--rm",
            "--network",
            "dnet",
            "busybox",
            "wget",
            "-q",
            "-O-",
            "http://web:8080/",
        ],
    );
    assert_eq!(r.ok(), format!("you've hit {}\n", &web[..12]));

    let busy = docker(&root, &["network", "rm", "dnet"]);
    assert_ne!(busy.code, 0, "{busy:?}");
    assert!(busy.stderr.contains("dnet"), "{busy:?}");
    assert_eq!(docker(&root, &["rm", "-f", "web"]).ok(), "web\n");
    assert_eq!(docker(&root, &["network", "rm", "dnet"]).ok(), "dnet\n");
    let ls = docker(&root, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(!ls.ok().lines().any(|l| l == "dnet"), "{}", ls.stdout);
    // (A run on the removed network is left to `wrun`'s own tests: the
    // daemon answers 404, as Docker's does, and the docker CLI takes any
    // 404 to mean a missing image and would try to pull from docker.io.)
}

/// `docker events` replays what happened between `--since` and `--until`;
/// `docker stats --no-stream` shows a running guest's memory; `docker
/// system df` counts images and containers; `container prune` and `image
/// prune -a` remove what nothing runs, and an unknown filter is refused.
#[test]
fn docker_events_stats_df_and_prune() {
    let root = root_with_daemon();
    root.kubia();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    docker(&root, &["run", "--name", "e1", "busybox", "true"]).ok();
    // By full ID: a name or ID prefix matches loosely, as in Docker.
    let e1 = docker(&root, &["inspect", "-f", "{{.Id}}", "e1"]);
    let e1 = e1.ok().trim().to_string();
    docker(&root, &["run", "-d", "--name", "k", "kubia"]).ok();
    docker(&root, &["tag", "busybox", "junk:1"]).ok();
    // Now, to the second after: the replay ends there.
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1)
    .to_string();
    let events = docker(
        &root,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            &format!("container={e1}"),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    assert_eq!(
        events.ok(),
        "container create e1\ncontainer start e1\ncontainer die e1\n"
    );
    let tagged = docker(
        &root,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=image",
            "--format",
            "{{.Action}} {{.Actor.Attributes.name}}",
        ],
    );
    assert!(tagged.ok().contains("tag junk:1"), "{}", tagged.stdout);

    let stats = docker(
        &root,
        &[
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}} {{.MemUsage}} {{.PIDs}}",
            "k",
        ],
    );
    let row = stats.ok().trim().to_string();
    let mem: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(mem.first(), Some(&"k"), "{row}");
    assert!(mem[1].ends_with("MiB") || mem[1].ends_with("KiB"), "{row}");
    assert_ne!(mem[1], "0B", "{row}");
    assert_eq!(mem.last(), Some(&"1"), "{row}");

    let df = docker(
        &root,
        &[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ],
    );
    let df = df.ok();
    assert!(df.contains("Images 2 2"), "{df}");
    assert!(df.contains("Containers 2 1"), "{df}");

    let pruned = docker(&root, &["container", "prune", "-f"]);
    let out = pruned.ok();
    assert!(out.contains("Total reclaimed space"), "{out}");
    let left = docker(&root, &["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(left.ok(), "k\n");

    let pruned = docker(&root, &["image", "prune", "-a", "-f"]);
    let out = pruned.ok();
    assert!(
        out.contains("untagged: junk:1") && out.contains("deleted: sha256:"),
        "{out}"
    );
    let images = docker(&root, &["images", "--format", "{{.Repository}}"]);
    assert_eq!(
        images.ok(),
        "kubia\n",
        "the running container's image stays"
    );

    let bad = docker(&root, &["ps", "--filter", "colour=red"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("\"colour\""), "{}", bad.stderr);
    docker(&root, &["rm", "-f", "k"]).ok();
}

/// `docker cp` both ways through the container's layered view (a copy in
/// is seen by the running container at once), `docker diff` from its
/// writable layer, and an archive whose entry climbs out of the target
/// directory refused whole, with nothing written.
#[test]
fn docker_cp_both_ways_and_diff() {
    let root = root_with_daemon();
    docker(
        &root,
        &["run", "-d", "--name", "c", "busybox", "sleep", "3600"],
    )
    .ok();
    let src = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(src.path().join("site/css")).expect("mkdir");
    std::fs::write(src.path().join("site/index.html"), "hello").expect("write");
    std::fs::write(src.path().join("site/css/a.css"), "body{}").expect("write");
    let site = src.path().join("site");
    docker(&root, &["cp", site.to_str().expect("utf8"), "c:/srv"]).ok();
    assert_eq!(
        root.wrun(&["exec", "c", "cat", "/srv/index.html", "/srv/css/a.css"])
            .ok(),
        "hellobody{}"
    );
    root.wrun(&[
        "exec",
        "c",
        "sh",
        "-c",
        "echo made inside > /srv/inside; rm /bin/ls",
    ])
    .ok();

    let out = tempfile::tempdir().expect("tempdir");
    let dest = out.path().join("copy");
    docker(&root, &["cp", "c:/srv", dest.to_str().expect("utf8")]).ok();
    assert_eq!(
        std::fs::read_to_string(dest.join("inside")).expect("read"),
        "made inside\n"
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("css/a.css")).expect("read"),
        "body{}"
    );
    // A symlink is copied as itself.
    let sh = out.path().join("sh");
    docker(&root, &["cp", "c:/bin/sh", sh.to_str().expect("utf8")]).ok();
    assert_eq!(
        std::fs::read_link(&sh).expect("a link").to_str(),
        Some("busybox")
    );

    let diff = docker(&root, &["diff", "c"]);
    assert_eq!(
        diff.ok(),
        "C /bin\nD /bin/ls\nA /srv\nA /srv/css\nA /srv/css/a.css\nA /srv/index.html\nA /srv/inside\n"
    );

    let missing = docker(
        &root,
        &["cp", "c:/nope", out.path().to_str().expect("utf8")],
    );
    assert_ne!(missing.code, 0);
    assert!(missing.stderr.contains("/nope"), "{}", missing.stderr);

    // Through the API: a tar whose entry leaves the directory.
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in [("ok", &b"fine"[..]), ("../../escaped", &b"bad"[..])] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..`; a hostile client would not.
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        tar.append(&h, data).expect("append");
    }
    let body = tar.into_inner().expect("tar");
    let answer = crate::support::api_bytes(&root, "PUT", "/containers/c/archive?path=/srv", &body);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("../../escaped"), "{}", answer.body);
    root.wrun(&["exec", "c", "cat", "/srv/ok"])
        .fails(1, "No such file");
    root.wrun(&["exec", "c", "cat", "/escaped"])
        .fails(1, "No such file");
    docker(&root, &["rm", "-f", "c"]).ok();
}

/// `docker commit` makes an image of the container's image plus its
/// writable layer (a delete included), which runs; `docker export` tars
/// the whole root with the changes applied; a commit of a missing
/// container is a 404 that names it.
#[test]
fn docker_commit_then_run_and_export() {
    let root = root_with_daemon();
    docker(
        &root,
        &["run", "-d", "--name", "c", "busybox", "sleep", "3600"],
    )
    .ok();
    root.wrun(&["exec", "c", "sh", "-c", "echo kept > /note; rm /bin/ls"])
        .ok();
    let id = docker(&root, &["commit", "-m", "a note", "c", "noted:1"]);
    assert!(id.ok().trim().starts_with("sha256:"), "{}", id.stdout);
    assert_eq!(
        docker(&root, &["run", "--rm", "noted:1", "cat", "/note"]).ok(),
        "kept\n"
    );
    let gone = docker(&root, &["run", "--rm", "noted:1", "ls", "/"]);
    assert_eq!(gone.code, 127, "{gone:?}");
    // The container's configuration is the image's.
    let cmd = docker(
        &root,
        &["image", "inspect", "-f", "{{json .Config.Cmd}}", "noted:1"],
    );
    assert_eq!(cmd.ok().trim(), r#"["sleep","3600"]"#);
    let comment = docker(
        &root,
        &["image", "inspect", "-f", "{{.Comment}}", "noted:1"],
    );
    assert_eq!(comment.ok().trim(), "a note");
    let history = docker(
        &root,
        &[
            "history",
            "--format",
            "{{.CreatedBy}}|{{.Comment}}",
            "noted:1",
        ],
    );
    assert_eq!(history.ok().lines().next(), Some("sleep 3600|a note"));

    // --change applies Dockerfile instructions to the committed config;
    // one that needs files is refused, naming it.
    docker(
        &root,
        &[
            "commit",
            "--change",
            "ENV MODE=committed",
            "--change",
            r#"CMD ["sh", "-c", "echo $MODE"]"#,
            "c",
            "changed:1",
        ],
    )
    .ok();
    assert_eq!(
        docker(&root, &["run", "--rm", "changed:1"]).ok(),
        "committed\n"
    );
    let refused = docker(&root, &["commit", "--change", "COPY a /b", "c", "x:2"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("COPY a /b"), "{}", refused.stderr);

    let exported = docker_cmd(
        &root,
        tempfile::tempdir().expect("tempdir").path(),
        &["export", "c"],
    )
    .output()
    .unwrap_or_else(|e| spawn_failed(e));
    assert!(exported.status.success());
    let mut names = Vec::new();
    for e in tar::Archive::new(&exported.stdout[..])
        .entries()
        .expect("a tar")
    {
        let e = e.expect("an entry");
        names.push(e.path().expect("a path").display().to_string());
    }
    assert!(names.iter().any(|n| n == "note"), "{names:?}");
    assert!(names.iter().any(|n| n == "bin/busybox"), "{names:?}");
    assert!(!names.iter().any(|n| n == "bin/ls"), "{names:?}");

    let missing = docker(&root, &["commit", "nosuch", "x:1"]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("No such container: nosuch"),
        "{}",
        missing.stderr
    );
    docker(&root, &["rm", "-f", "c"]).ok();
}

/// `docker save` and `docker load` through the API: an image saved,
/// removed and loaded back runs; an archive that is not one is refused and
/// leaves the store as it was.
#[test]
fn docker_save_and_load_through_the_api() {
    let root = root_with_daemon();
    let dir = tempfile::tempdir().expect("tempdir");
    let tar = dir.path().join("busybox.tar");
    docker(
        &root,
        &["save", "-o", tar.to_str().expect("utf8"), "busybox"],
    )
    .ok();
    docker(&root, &["rmi", "busybox"]).ok();
    let loaded = docker(&root, &["load", "-i", tar.to_str().expect("utf8")]);
    assert!(
        loaded.ok().contains("Loaded image: busybox:latest"),
        "{}",
        loaded.stdout
    );
    assert_eq!(
        docker(&root, &["run", "--rm", "busybox", "echo", "back"]).ok(),
        "back\n"
    );
    let junk = dir.path().join("junk.tar");
    std::fs::write(&junk, vec![7u8; 4096]).expect("write");
    let refused = docker(&root, &["load", "-i", junk.to_str().expect("utf8")]);
    assert_ne!(refused.code, 0);
    assert!(
        refused.stderr.contains("uploaded archive"),
        "{}",
        refused.stderr
    );
    let images = docker(&root, &["images", "--format", "{{.Repository}}"]);
    assert_eq!(images.ok(), "busybox\n");
}
