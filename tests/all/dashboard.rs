//! The dashboard in a real browser: `wrun dashboard --url` prints a login
//! link, and `tests/browser/dashboard.mjs` (the cluster) and `docker.mjs`
//! (the Docker side, the keyboard, light and dark), with playwright-core
//! driving Debian's headless Chromium, use the page as a user would. The
//! state is then checked here with kubectl and wrun, so both sides agree.

use std::process::Command;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::support::{Root, free_port, http_get_ok, repo};

const RC: &str = r#"
apiVersion: v1
kind: ReplicationController
metadata:
  name: kubia
spec:
  replicas: 1
  selector:
    app: kubia
  template:
    metadata:
      labels:
        app: kubia
    spec:
      containers:
      - name: kubia
        image: kubia
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: toolbox
spec:
  containers:
  - name: toolbox
    image: busybox
    command: ["sleep", "3600"]
"#;

/// Runs `tests/browser/SCRIPT LOGIN_URL SCREENSHOT_DIR ARGS...` in node,
/// and asserts it ended with `ok`.
#[track_caller]
fn browser(script: &str, url: &str, args: &[&str]) {
    let shots = repo().join("target").join("dashboard-screenshots");
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let browser_dir = repo().join("tests").join("browser");
    let run = Command::new("node")
        .arg(browser_dir.join(script))
        .arg(url)
        .arg(&shots)
        .args(args)
        .current_dir(&browser_dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("run node tests/browser/{script} (npm ci --prefix tests/browser first): {e}")
        });
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success() && stdout.lines().last() == Some("ok"),
        "the browser test {script} failed (screenshots in {}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        shots.display()
    );
}

#[test]
fn the_dashboard_in_a_browser() {
    let c = Cluster::start(&["kubia", "busybox"]);
    c.stdin_kubectl(&["apply", "-f", "-"], RC).ok();
    let lb_port = free_port().to_string();
    c.kubectl(&[
        "expose",
        "rc",
        "kubia",
        "--type=LoadBalancer",
        "--name=kubia-http",
        &format!("--port={lb_port}"),
        "--target-port=8080",
    ])
    .ok();
    c.wait_ready("toolbox");
    c.wait_replicas("rc", "kubia", 1);
    let before = c.live_pods("kubia");

    let out = c.wrun(&["dashboard", "--url"]);
    let url = out.ok().trim().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.contains("/login?token="),
        "{url}"
    );

    browser("dashboard.mjs", &url, &[&lb_port]);

    // What the page did is what the cluster holds.
    let after = c.live_pods("kubia");
    assert_eq!(after.len(), 3, "{after:?}");
    let deleted: Vec<&String> = before.iter().filter(|p| !after.contains(p)).collect();
    assert!(
        deleted.len() <= 1,
        "at most the deleted pod left: {before:?} {after:?}"
    );
    let web = c.kubectl(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(web.ok(), "2");
    c.kubectl(&["get", "deployment", "broken"])
        .fails("NotFound");
}

#[test]
fn the_dashboards_docker_side_by_keyboard_in_light_and_dark() {
    let root = Root::new();
    root.kubia();
    let web_port = free_port().to_string();
    root.wrun(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{web_port}:8080"),
        "kubia",
    ])
    .ok();
    root.wrun(&["run", "-d", "--name", "shell", "busybox", "sleep", "3600"])
        .ok();
    root.wrun(&["run", "--name", "done", "busybox", "echo", "finished"])
        .ok();
    http_get_ok(web_port.parse().expect("port"), Duration::from_secs(30));

    let url = root.wrun(&["dashboard", "--url"]).ok().trim().to_string();
    assert!(url.contains("/login?token="), "{url}");
    let sock = root.path().join("wrun.sock");
    browser(
        "docker.mjs",
        &url,
        &[sock.to_str().expect("utf8"), &web_port],
    );

    // What the page did is what the daemon holds.
    let names = root
        .wrun(&["ps", "-a", "--format", "{{.Names}}"])
        .ok()
        .to_string();
    let mut names: Vec<&str> = names.lines().collect();
    names.sort_unstable();
    assert_eq!(names, ["done", "shell", "web"]);
    assert_eq!(
        root.image_id("kubia").len(),
        71,
        "kubia was in use and stays"
    );
}
