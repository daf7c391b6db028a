//! The Kubernetes half against the real kubectl: `wrun cluster start`, the
//! kubeconfig it writes, discovery, pods running kubia, their status,
//! logs and networking, Table printing, writes and bad input, and a
//! daemon killed with -9. kubectl only ever dials 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{Root, poll};

/// The real kubectl on PATH (v1.32), or a pinned one beside it.
fn kubectl_bin(version: Option<&str>) -> PathBuf {
    let on_path = PathBuf::from("kubectl");
    let Some(v) = version else { return on_path };
    let real = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("find kubectl");
    let real = PathBuf::from(String::from_utf8_lossy(&real.stdout).trim());
    real.parent()
        .expect("kubectl's folder")
        .join(format!("kubectl.{v}"))
}

/// A state root with the cluster started and a kubeconfig of its own.
pub(crate) struct Cluster {
    pub(crate) root: Root,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) cache: PathBuf,
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub(crate) fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "kubectl failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// The words of line `n` of a successful run's output (0 is a
    /// table's header).
    #[track_caller]
    pub(crate) fn row(&self, n: usize) -> Vec<&str> {
        self.ok()
            .lines()
            .nth(n)
            .unwrap_or("")
            .split_whitespace()
            .collect()
    }

    #[track_caller]
    pub(crate) fn fails(&self, needle: &str) {
        assert_ne!(
            self.code, 0,
            "kubectl should fail\nstdout:\n{}",
            self.stdout
        );
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
    }
}

impl Cluster {
    pub(crate) fn start(images: &[&str]) -> Self {
        let root = Root::new();
        for image in images {
            match *image {
                "kubia" => {
                    root.kubia();
                }
                "busybox" => {
                    root.busybox();
                }
                other => panic!("no sample image {other}"),
            }
        }
        let kubeconfig = root.path().join("kube").join("config");
        let cache = root.path().join("kube").join("cache");
        let out = root
            .cmd(&["cluster", "start"])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("wrun cluster start");
        let out = Out::from(out);
        assert!(
            out.ok().contains("kubectl is now configured"),
            "{}",
            out.stdout
        );
        Self {
            root,
            kubeconfig,
            cache,
        }
    }

    /// `wrun` in this cluster's root, with its kubeconfig.
    pub(crate) fn wrun(&self, args: &[&str]) -> Out {
        let out = self
            .root
            .cmd(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run wrun");
        Out::from(out)
    }

    pub(crate) fn kubectl_with(&self, version: Option<&str>, args: &[&str]) -> Out {
        let out = Command::new(kubectl_bin(version))
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.root.path())
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        Out::from(out)
    }

    pub(crate) fn kubectl(&self, args: &[&str]) -> Out {
        self.kubectl_with(None, args)
    }

    pub(crate) fn stdin_kubectl(&self, args: &[&str], input: &str) -> Out {
        use std::io::Write as _;
        let mut child = Command::new("kubectl")
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.root.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        Out::from(child.wait_with_output().expect("kubectl output"))
    }

    pub(crate) fn wait_ready(&self, pod: &str) {
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("pod/{pod}"),
            "--timeout=60s",
        ])
        .ok();
    }

    /// The names of the pods with label app=`app` that are not being
    /// deleted.
    pub(crate) fn live_pods(&self, app: &str) -> Vec<String> {
        let out = self.kubectl(&["get", "pods", "-l", &format!("app={app}"), "-o", "json"]);
        let list: serde_json::Value = serde_json::from_str(out.ok()).expect("JSON");
        list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"].get("deletionTimestamp").is_none())
            .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }

    /// Waits until `kind/name` has `n` replicas, all ready.
    pub(crate) fn wait_replicas(&self, kind: &str, name: &str, n: i64) {
        poll(&format!("{kind}/{name} to have {n} ready"), || {
            let out = self.kubectl(&["get", kind, name, "-o", "json"]);
            let o: serde_json::Value = serde_json::from_str(out.ok()).expect("JSON");
            let ready = o["status"]["readyReplicas"].as_i64().unwrap_or(0);
            let current = o["status"]["replicas"].as_i64().unwrap_or(0);
            (ready == n && current == n).then_some(())
        });
    }

    pub(crate) fn pod_json(&self, pod: &str) -> serde_json::Value {
        let out = self.kubectl(&["get", "pod", pod, "-o", "json"]);
        serde_json::from_str(out.ok()).expect("pod JSON")
    }
}

fn kubeconfig_text(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read kubeconfig")
}

/// `2m` → 2, `1Mi` → 1: a `kubectl top` figure's number.
fn top_figure(s: &str) -> u64 {
    s.trim_end_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap_or_else(|_| panic!("a figure: {s:?}"))
}

#[test]
fn kubectl_top_reads_the_guests_memory_and_cpu() {
    let c = Cluster::start(&["kubia"]);
    c.kubectl(&[
        "run",
        "kubia",
        "--image=kubia",
        "--port=8080",
        "-l",
        "app=kubia",
    ])
    .ok();
    c.wait_ready("kubia");
    let pods = poll("kubectl top pods", || {
        let out = c.kubectl(&["top", "pods", "-l", "app=kubia"]);
        (out.code == 0).then_some(out)
    });
    assert_eq!(
        pods.row(0),
        ["NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{}",
        pods.stdout
    );
    let row = pods.row(1);
    assert_eq!(row[0], "kubia", "{}", pods.stdout);
    // kubia's linear memory: at least a wasm page, reported in Mi.
    assert!(
        row[2].ends_with("Mi") && top_figure(row[2]) >= 1,
        "{}",
        pods.stdout
    );
    top_figure(row[1]);
    let containers = c.kubectl(&["top", "pod", "kubia", "--containers"]);
    assert_eq!(
        containers.row(1)[..2],
        ["kubia", "kubia"],
        "{}",
        containers.stdout
    );
    let nodes = c.kubectl(&["top", "nodes"]);
    let node = nodes.row(1);
    assert_eq!(node[0], "wrun", "{}", nodes.stdout);
    assert!(
        top_figure(node[3]) >= top_figure(row[2]),
        "{}",
        nodes.stdout
    );
    // Metrics are computed, never stored: writes are refused.
    c.kubectl(&[
        "delete",
        "--raw",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/kubia",
    ])
    .fails("MethodNotAllowed");
}

#[test]
fn kubectl_runs_kubia_as_a_pod() {
    let c = Cluster::start(&["kubia", "busybox"]);
    // The kubeconfig is private, and names the cluster.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&c.kubeconfig)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(kubeconfig_text(&c.kubeconfig).contains("current-context: wrun"));
    let info = c.kubectl(&["cluster-info"]);
    assert!(info.ok().contains("https://127.0.0.1:"), "{}", info.stdout);
    let version = c.kubectl(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(version.ok()).expect("version JSON");
    assert_eq!(v["serverVersion"]["major"], "1");
    let resources = c.kubectl(&["api-resources", "--no-headers"]);
    let pods_line = resources
        .ok()
        .lines()
        .find(|l| l.starts_with("pods "))
        .expect("pods in api-resources")
        .to_string();
    assert!(
        pods_line.contains(" po ") && pods_line.contains("Pod"),
        "{pods_line}"
    );
    let versions = c.kubectl(&["api-versions"]);
    assert!(
        versions.ok().lines().any(|l| l == "v1"),
        "{}",
        versions.stdout
    );
    let nodes = c.kubectl(&["get", "nodes"]);
    let nodes = nodes.ok();
    assert!(nodes.starts_with("NAME"), "{nodes}");
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("wrun ") && l.contains(" Ready ")),
        "{nodes}"
    );
    let node: serde_json::Value =
        serde_json::from_str(c.kubectl(&["get", "node", "wrun", "-o", "json"]).ok()).expect("node");
    assert!(
        node["status"]["nodeInfo"]["containerRuntimeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("wrun://")),
        "{node}"
    );

    c.kubectl(&["run", "kubia", "--image=kubia", "--port=8080"])
        .ok();
    c.wait_ready("kubia");
    let pods_out = c.kubectl(&["get", "pods"]);
    let pods = pods_out.ok();
    let header = pods_out.row(0);
    assert_eq!(
        header,
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{pods}"
    );
    let row = pods_out.row(1);
    assert_eq!(&row[..4], ["kubia", "1/1", "Running", "0"], "{pods}");
    let wide = c.kubectl(&["get", "pods", "-o", "wide"]);
    let wide = wide.ok();
    assert!(
        wide.lines().next().unwrap_or("").contains("NOMINATED NODE"),
        "{wide}"
    );
    assert!(
        wide.contains(" 10.244.") && wide.contains(" wrun "),
        "{wide}"
    );
    let pod = c.pod_json("kubia");
    let ip = pod["status"]["podIP"].as_str().expect("pod IP").to_string();
    assert_eq!(pod["metadata"]["labels"]["run"], "kubia");
    assert_eq!(pod["status"]["containerStatuses"][0]["ready"], true);

    // The pod's container is a wrun container, with the shim's name.
    let ps = c.root.wrun(&["ps"]);
    assert!(
        ps.ok().contains("k8s_kubia_kubia_default_"),
        "{}",
        ps.stdout
    );
    let logs = c.kubectl(&["logs", "kubia"]);
    assert!(
        logs.ok().contains("Kubia server starting"),
        "{}",
        logs.stdout
    );

    // Another pod reaches kubia by its pod IP, and kubia sees its name.
    let url = format!("http://{ip}:8080/");
    c.kubectl(&[
        "run",
        "client",
        "--image=busybox",
        "--restart=Never",
        "--",
        "wget",
        "-q",
        "-O-",
        &url,
    ])
    .ok();
    let phase = poll("the client pod to finish", || {
        let p = c.pod_json("client");
        let phase = p["status"]["phase"].as_str().unwrap_or("").to_string();
        (phase == "Succeeded" || phase == "Failed").then_some(phase)
    });
    let client_logs = c.kubectl(&["logs", "client"]);
    assert_eq!(phase, "Succeeded", "{}", client_logs.stdout);
    assert!(
        client_logs.ok().contains("you've hit kubia"),
        "{}",
        client_logs.stdout
    );
    let pods = c.kubectl(&["get", "pod", "client", "--no-headers"]);
    assert!(pods.ok().contains("Completed"), "{}", pods.stdout);

    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=kubia",
    ]);
    let events = events.ok();
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(events.contains(reason), "{reason} in {events}");
    }
    let described = c.kubectl(&["describe", "pod", "kubia"]);
    assert!(
        described.ok().contains("Started container kubia"),
        "{}",
        described.stdout
    );

    c.kubectl(&["delete", "pod", "kubia", "--wait=true"]).ok();
    c.kubectl(&["get", "pod", "kubia"]).fails("NotFound");
    let ps = c.root.wrun(&["ps", "-a"]);
    assert!(!ps.ok().contains("k8s_kubia_kubia_"), "{}", ps.stdout);
}

#[test]
fn objects_selectors_patches_and_bad_input() {
    let c = Cluster::start(&[]);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels:\n    app: demo\ndata:\n  greeting: hello\n";
    c.stdin_kubectl(&["apply", "-f", "-"], cm).ok();
    let changed = cm.replace("hello", "hi");
    let applied = c.stdin_kubectl(&["apply", "-f", "-"], &changed);
    assert!(applied.ok().contains("configured"), "{}", applied.stdout);
    let data = c.kubectl(&["get", "cm", "settings", "-o", "jsonpath={.data.greeting}"]);
    assert_eq!(data.ok(), "hi");
    let ssa = cm.replace("settings", "server-side");
    c.stdin_kubectl(&["apply", "--server-side", "-f", "-"], &ssa)
        .ok();
    c.stdin_kubectl(
        &["apply", "--server-side", "-f", "-"],
        &ssa.replace("hello", "again"),
    )
    .ok();
    let data = c.kubectl(&[
        "get",
        "configmap",
        "server-side",
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    assert_eq!(data.ok(), "again");
    // A field another manager set conflicts, as in Kubernetes.
    c.stdin_kubectl(
        &["apply", "--server-side", "-f", "-"],
        &cm.replace("hello", "mine"),
    )
    .fails("conflict");
    c.stdin_kubectl(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: \"1\"\n",
    )
    .ok();
    c.kubectl(&["label", "cm", "other", "tier=back"]).ok();
    c.kubectl(&["annotate", "cm", "other", "note=x"]).ok();
    let names = c.kubectl(&["get", "cm", "-l", "tier=back", "-o", "name"]);
    assert_eq!(names.ok().trim(), "configmap/other");
    let names = c.kubectl(&["get", "cm", "-l", "app in (demo),tier!=front", "-o", "name"]);
    assert_eq!(
        names.ok().trim(),
        "configmap/server-side\nconfigmap/settings"
    );
    let names = c.kubectl(&[
        "get",
        "cm",
        "--field-selector",
        "metadata.name=other",
        "-o",
        "name",
    ]);
    assert_eq!(names.ok().trim(), "configmap/other");
    let cols = c.kubectl(&[
        "get",
        "cm",
        "other",
        "-o",
        "custom-columns=N:.metadata.name,A:.data.a",
        "--no-headers",
    ]);
    assert_eq!(
        cols.ok().split_whitespace().collect::<Vec<_>>(),
        ["other", "1"]
    );
    c.kubectl(&[
        "patch",
        "cm",
        "other",
        "--type=merge",
        "-p",
        r#"{"data":{"b":"2"}}"#,
    ])
    .ok();
    c.kubectl(&[
        "patch",
        "cm",
        "other",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/data/a","value":"3"}]"#,
    ])
    .ok();
    c.kubectl(&["patch", "cm", "other", "-p", r#"{"data":{"c":"4"}}"#])
        .ok();
    let data: serde_json::Value =
        serde_json::from_str(c.kubectl(&["get", "cm", "other", "-o", "json"]).ok()).expect("cm");
    assert_eq!(
        data["data"],
        serde_json::json!({"a": "3", "b": "2", "c": "4"})
    );
    assert_eq!(data["metadata"]["labels"]["tier"], "back");
    let shown = c.kubectl(&["get", "cm", "other", "--show-labels"]);
    assert!(shown.ok().contains("tier=back"), "{}", shown.stdout);
    let all_ns = c.kubectl(&["get", "sa", "-A"]);
    assert!(all_ns.ok().contains("kube-system"), "{}", all_ns.stdout);

    // Bad input: each gets a clear error, and nothing is stored.
    c.stdin_kubectl(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    )
    .fails("metadata.name");
    c.kubectl(&["get", "cm", "-l", "a in (b"])
        .fails("unable to parse");
    c.kubectl(&["get", "cm", "--field-selector", "spec.nope=1"])
        .fails("field label not supported");
    c.kubectl(&[
        "patch",
        "cm",
        "other",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/data/a","value":"9"}]"#,
    ])
    .fails("");
    c.kubectl(&["patch", "cm", "other", "--type=merge", "-p", "{not json"])
        .fails("");
    let typo = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: typo\nspec:\n  containers:\n  - name: a\n    imagee: kubia\n";
    c.stdin_kubectl(&["apply", "-f", "-"], typo).fails("imagee");
    c.kubectl(&["get", "pod", "typo"]).fails("NotFound");
    c.kubectl(&["delete", "namespace", "default"])
        .fails("forbidden");

    // A client that does not trust wrun's CA is refused.
    let server = c.kubectl(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let server = server.ok().to_string();
    let untrusting = Command::new("kubectl")
        .args([
            "get",
            "pods",
            "--kubeconfig",
            "/dev/null",
            "--server",
            &server,
            "--token",
            "x",
        ])
        .arg("--cache-dir")
        .arg(&c.cache)
        .output()
        .expect("kubectl");
    let untrusting = Out::from(untrusting);
    untrusting.fails("certificate");
    // One that trusts it but brings a wrong token gets 401.
    let wrong = Command::new("kubectl")
        .arg("--cache-dir")
        .arg(&c.cache)
        .args([
            "get",
            "cm",
            "--kubeconfig",
            "/dev/null",
            "--server",
            &server,
        ])
        .args(["--insecure-skip-tls-verify", "--token", "wrong"])
        .output()
        .expect("kubectl");
    Out::from(wrong).fails("Unauthorized");
    // kubectl's typed generators send protobuf.
    c.kubectl(&["create", "namespace", "made"]).ok();
    c.kubectl(&[
        "create",
        "configmap",
        "generated",
        "-n",
        "made",
        "--from-literal=k=v",
    ])
    .ok();
    c.kubectl(&[
        "create",
        "secret",
        "generic",
        "hidden",
        "-n",
        "made",
        "--from-literal=pw=s3",
    ])
    .ok();
    c.kubectl(&["create", "serviceaccount", "robot", "-n", "made"])
        .ok();
    let v = c.kubectl(&[
        "get",
        "cm",
        "generated",
        "-n",
        "made",
        "-o",
        "jsonpath={.data.k}",
    ]);
    assert_eq!(v.ok(), "v");
    let t = c.kubectl(&[
        "get",
        "secret",
        "hidden",
        "-n",
        "made",
        "-o",
        "jsonpath={.type} {.data.pw}",
    ]);
    assert_eq!(t.ok(), "Opaque czM=");
    c.kubectl(&["get", "sa", "robot", "-n", "made"]).ok();
    c.kubectl(&["create", "deployment", "d", "--image=kubia"])
        .fails("send JSON or YAML");
    // Pages: kubectl's --chunk-size follows `continue`; the raw answer
    // carries the token.
    let chunked = c.kubectl(&["get", "cm", "--chunk-size=1", "-o", "name"]);
    assert_eq!(chunked.ok().lines().count(), 3, "{}", chunked.stdout);
    let page: serde_json::Value = serde_json::from_str(
        c.kubectl(&[
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?limit=1",
        ])
        .ok(),
    )
    .expect("page");
    let token = page["metadata"]["continue"].as_str().expect("continue");
    assert_eq!(page["metadata"]["remainingItemCount"], 2);
    let rest: serde_json::Value = serde_json::from_str(
        c.kubectl(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/configmaps?limit=5&continue={token}"),
        ])
        .ok(),
    )
    .expect("second page");
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(2));
    // dryRun=All answers and stores nothing.
    c.stdin_kubectl(
        &["apply", "--dry-run=server", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dry\n",
    )
    .ok();
    c.kubectl(&["get", "cm", "dry"]).fails("NotFound");
    // A stale resourceVersion is a conflict.
    let stale = c.kubectl(&["get", "cm", "other", "-o", "json"]);
    let mut stale: serde_json::Value = serde_json::from_str(stale.ok()).expect("cm");
    c.kubectl(&["label", "cm", "other", "bump=1"]).ok();
    stale["data"]["a"] = serde_json::json!("stale");
    c.stdin_kubectl(&["replace", "-f", "-"], &stale.to_string())
        .fails("the object has been modified");
    // deletecollection with a selector.
    c.kubectl(&[
        "delete",
        "--raw",
        "/api/v1/namespaces/default/configmaps?labelSelector=app%3Ddemo",
    ])
    .ok();
    let left = c.kubectl(&["get", "cm", "-o", "name"]);
    assert_eq!(left.ok().trim(), "configmap/other");
    let data = c.kubectl(&["get", "cm", "other", "-o", "jsonpath={.data.a}"]);
    assert_eq!(data.ok(), "3");
}

#[test]
fn the_pinned_kubectl_1_28_works_too() {
    let c = Cluster::start(&["kubia"]);
    let v = Some("1.28");
    c.kubectl_with(v, &["run", "kubia", "--image=kubia", "--port=8080"])
        .ok();
    c.kubectl_with(
        v,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/kubia",
            "--timeout=60s",
        ],
    )
    .ok();
    let pods = c.kubectl_with(v, &["get", "pods", "-o", "wide"]);
    let pods = pods.ok();
    assert!(
        pods.contains("Running") && pods.contains("10.244."),
        "{pods}"
    );
    let logs = c.kubectl_with(v, &["logs", "kubia", "--tail=1"]);
    assert!(!logs.ok().is_empty());
    c.kubectl_with(v, &["delete", "pod", "kubia"]).ok();
}

#[test]
fn pods_come_back_after_the_daemon_is_killed() {
    let c = Cluster::start(&["kubia"]);
    c.kubectl(&["run", "kubia", "--image=kubia", "--port=8080"])
        .ok();
    c.wait_ready("kubia");
    let uid = c.pod_json("kubia")["metadata"]["uid"]
        .as_str()
        .expect("uid")
        .to_string();
    c.root.kill_daemon_hard();
    // Any container verb starts the daemon again; the cluster comes back
    // on with it, and so does the pod.
    c.root.wrun(&["ps"]).ok();
    let pod = poll("the pod to run again", || {
        let out = c.kubectl(&["get", "pod", "kubia", "-o", "json"]);
        if out.code != 0 {
            return None;
        }
        let p: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        (p["status"]["containerStatuses"][0]["ready"] == true).then_some(p)
    });
    assert_eq!(pod["metadata"]["uid"], uid.as_str());
    let cms = c.kubectl(&["get", "ns", "-o", "name"]);
    assert!(cms.ok().contains("namespace/kube-system"));
    // Starting a running cluster again changes nothing; asking it for
    // another port is refused.
    let again = c.wrun(&["cluster", "start"]);
    assert!(again.ok().contains("is running"), "{}", again.stdout);
    let moved = c.wrun(&["cluster", "start", "--api-port", "1"]);
    assert!(
        moved.code != 0 && moved.stderr.contains("already running on port"),
        "{}",
        moved.stderr
    );
    // Stopping the cluster stops the pod and keeps it.
    c.root.wrun(&["cluster", "stop"]).ok();
    let ps = c.root.wrun(&["ps", "-a"]);
    assert!(!ps.ok().contains("k8s_kubia"), "{}", ps.stdout);
    let status = c.root.wrun(&["cluster", "status"]);
    assert!(
        status.stdout.contains("Stopped") && status.stdout.contains("pods: 1"),
        "{}",
        status.stdout
    );
}

#[test]
fn pods_get_env_volumes_init_containers_and_probes() {
    let c = Cluster::start(&["kubia", "busybox"]);
    let manifest = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  greeting: hello
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: s3cret
---
apiVersion: v1
kind: Pod
metadata:
  name: features
spec:
  restartPolicy: Never
  volumes:
  - name: work
    emptyDir: {}
  - name: config
    configMap:
      name: settings
  initContainers:
  - name: prepare
    image: busybox
    command: ["sh", "-c", "echo prepared > /work/init.txt"]
    volumeMounts:
    - name: work
      mountPath: /work
  containers:
  - name: main
    image: busybox
    workingDir: /work
    command: ["sh", "-c"]
    args: ["cat init.txt; cat /config/greeting; echo; echo name=$MY_NAME ip=$MY_IP greeting=$GREETING password=$PASSWORD combined=$COMBINED host=$HOSTNAME"]
    env:
    - name: MY_NAME
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: MY_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: settings, key: greeting}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: creds, key: password}}
    - name: COMBINED
      value: "$(GREETING)-world"
    volumeMounts:
    - name: work
      mountPath: /work
    - name: config
      mountPath: /config
      readOnly: true
"#;
    c.stdin_kubectl(&["apply", "-f", "-"], manifest).ok();
    let pod = poll("the features pod to finish", || {
        let p = c.pod_json("features");
        matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed")).then_some(p)
    });
    let logs = c.kubectl(&["logs", "features"]);
    assert_eq!(pod["status"]["phase"], "Succeeded", "{}", logs.stdout);
    let ip = pod["status"]["podIP"].as_str().expect("pod IP");
    let logs = logs.ok();
    assert!(logs.contains("prepared\nhello\n"), "{logs}");
    let expected = format!(
        "name=features ip={ip} greeting=hello password=s3cret combined=hello-world host=features"
    );
    assert!(logs.contains(&expected), "{logs}");
    assert_eq!(
        pod["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
        "Completed"
    );
    let init_logs = c.kubectl(&["logs", "features", "-c", "prepare"]);
    init_logs.ok();

    // A missing ConfigMap key holds the container with a clear reason.
    let broken = r#"
apiVersion: v1
kind: Pod
metadata:
  name: broken
spec:
  containers:
  - name: main
    image: busybox
    command: ["sleep", "3600"]
    env:
    - name: X
      valueFrom: {configMapKeyRef: {name: settings, key: nope}}
"#;
    c.stdin_kubectl(&["apply", "-f", "-"], broken).ok();
    poll("the config error", || {
        let out = c.kubectl(&["get", "pod", "broken", "--no-headers"]);
        out.stdout
            .contains("CreateContainerConfigError")
            .then_some(())
    });

    // A readiness probe decides readiness; a failing liveness probe
    // restarts the container, with the kubelet's events.
    let probed = r#"
apiVersion: v1
kind: Pod
metadata:
  name: probed
spec:
  containers:
  - name: web
    image: kubia
    ports:
    - {name: http, containerPort: 8080}
    readinessProbe:
      httpGet: {path: /, port: http}
      periodSeconds: 1
  - name: sick
    image: busybox
    command: ["sleep", "3600"]
    livenessProbe:
      exec:
        command: ["cat", "/nonexistent"]
      periodSeconds: 1
      failureThreshold: 1
"#;
    c.stdin_kubectl(&["apply", "-f", "-"], probed).ok();
    let pod = poll("the liveness probe to restart a container", || {
        let p = c.pod_json("probed");
        let statuses = p["status"]["containerStatuses"].as_array()?.clone();
        let web = statuses.iter().find(|s| s["name"] == "web")?;
        let sick = statuses.iter().find(|s| s["name"] == "sick")?;
        (web["ready"] == true && sick["restartCount"].as_u64()? >= 1).then_some(p)
    });
    assert_eq!(pod["status"]["phase"], "Running");
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=probed",
    ]);
    let events = events.ok();
    assert!(events.contains("Liveness probe failed"), "{events}");
    assert!(
        events.contains("failed liveness probe, will be restarted"),
        "{events}"
    );
}

#[test]
fn crash_loops_back_off_and_namespaces_delete_their_contents() {
    let c = Cluster::start(&["busybox"]);
    c.stdin_kubectl(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: scratch\n",
    )
    .ok();
    let crashing = r#"
apiVersion: v1
kind: Pod
metadata:
  name: crasher
  namespace: scratch
spec:
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "echo attempt; exit 3"]
"#;
    c.stdin_kubectl(&["apply", "-f", "-"], crashing).ok();
    let status = poll("CrashLoopBackOff", || {
        let out = c.kubectl(&["get", "pod", "crasher", "-n", "scratch", "-o", "json"]);
        let p: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        let s = p["status"]["containerStatuses"][0].clone();
        (s["state"]["waiting"]["reason"] == "CrashLoopBackOff").then_some(s)
    });
    assert!(
        status["restartCount"].as_u64().unwrap_or(0) >= 1,
        "{status}"
    );
    assert_eq!(status["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(status["lastState"]["terminated"]["reason"], "Error");
    let table = c.kubectl(&["get", "pods", "-n", "scratch", "--no-headers"]);
    assert!(table.ok().contains("CrashLoopBackOff"), "{}", table.stdout);
    let previous = c.kubectl(&["logs", "crasher", "-n", "scratch", "--previous"]);
    assert!(previous.ok().contains("attempt"), "{}", previous.stdout);
    let events = c.kubectl(&["get", "events", "-n", "scratch"]);
    assert!(events.ok().contains("BackOff"), "{}", events.stdout);

    // Deleting the namespace deletes what is in it, then the namespace.
    c.kubectl(&["delete", "namespace", "scratch", "--timeout=60s"])
        .ok();
    c.kubectl(&["get", "namespace", "scratch"])
        .fails("NotFound");
    let ps = c.root.wrun(&["ps", "-a"]);
    assert!(!ps.ok().contains("crasher"), "{}", ps.stdout);
    // Nothing may be created in a namespace that is gone.
    c.stdin_kubectl(&["apply", "-f", "-"], crashing)
        .fails("not found");

    // Going past resources.limits.memory ends the container as OOMKilled.
    c.root.wat_image("bomb", crate::support::MEMORY_BOMB_WAT);
    let bomb = r#"
apiVersion: v1
kind: Pod
metadata:
  name: bomb
spec:
  restartPolicy: Never
  containers:
  - name: bomb
    image: bomb
    resources:
      limits:
        memory: 32Mi
"#;
    c.stdin_kubectl(&["apply", "-f", "-"], bomb).ok();
    let ended = poll("the bomb to be OOMKilled", || {
        let p = c.pod_json("bomb");
        let t = p["status"]["containerStatuses"][0]["state"]["terminated"].clone();
        t.is_object().then_some((p, t))
    });
    assert_eq!(ended.1["reason"], "OOMKilled", "{}", ended.1);
    assert_eq!(ended.1["exitCode"], 137);
    assert_eq!(ended.0["status"]["phase"], "Failed");
    let table = c.kubectl(&["get", "pod", "bomb", "--no-headers"]);
    assert!(table.ok().contains("OOMKilled"), "{}", table.stdout);
}

/// Reads a child's stdout until `needle` shows up; the child is stopped
/// (by its PID, through `Child::kill`) either way.
fn read_until(mut child: std::process::Child, needle: &str) -> String {
    use std::io::Read as _;
    let mut out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            if tx.send(seen.clone()).is_err() {
                break;
            }
        }
    });
    let seen = poll(&format!("{needle:?} in the output"), || {
        let mut last = None;
        while let Ok(s) = rx.try_recv() {
            last = Some(s);
        }
        last.filter(|s| s.contains(needle))
    });
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    seen
}

#[test]
fn kubectl_watches_follows_edits_and_keeps_other_contexts() {
    let root = Root::new();
    root.kubia();
    // The user's own kubeconfig, with a context of theirs.
    let kubeconfig = root.path().join("kube").join("config");
    std::fs::create_dir_all(kubeconfig.parent().expect("dir")).expect("mkdir");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod.example:6443\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: prod\ncurrent-context: prod\nusers:\n- name: prod\n  user:\n    token: abc\n",
    )
    .expect("write kubeconfig");
    let started = root
        .cmd(&["cluster", "start"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("cluster start");
    assert!(started.status.success(), "{started:?}");
    let text = kubeconfig_text(&kubeconfig);
    assert!(text.contains("current-context: wrun"), "{text}");
    assert!(
        text.contains("https://prod.example:6443") && text.contains("token: abc"),
        "{text}"
    );
    let c = Cluster {
        root,
        kubeconfig: kubeconfig.clone(),
        cache: kubeconfig.with_file_name("cache"),
    };
    let watch = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--cache-dir")
            .arg(&c.cache)
            .args(args)
            .env("KUBECONFIG", &c.kubeconfig)
            .env("HOME", c.root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl")
    };
    let watcher = watch(&["get", "pods", "-w"]);
    c.kubectl(&["run", "kubia", "--image=kubia", "--port=8080"])
        .ok();
    let seen = read_until(watcher, "Running");
    assert!(seen.contains("kubia"), "{seen}");
    c.wait_ready("kubia");
    let follower = watch(&["logs", "-f", "kubia", "--timestamps"]);
    let seen = read_until(follower, "Kubia server starting");
    assert!(seen.starts_with("20"), "timestamps first: {seen}");
    let tail = c.kubectl(&["logs", "kubia", "--tail=1", "--since=1h"]);
    assert_eq!(tail.ok().lines().count(), 1, "{}", tail.stdout);

    // `kubectl edit` through an editor that is a sed script.
    c.stdin_kubectl(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edited\ndata:\n  word: before\n",
    )
    .ok();
    let edited = Command::new("kubectl")
        .arg("--cache-dir")
        .arg(&c.cache)
        .args(["edit", "cm", "edited"])
        .env("KUBECONFIG", &c.kubeconfig)
        .env("HOME", c.root.path())
        .env("KUBE_EDITOR", "sed -i s/before/after/")
        .output()
        .expect("kubectl edit");
    assert!(edited.status.success(), "{edited:?}");
    let word = c.kubectl(&["get", "cm", "edited", "-o", "jsonpath={.data.word}"]);
    assert_eq!(word.ok(), "after");
    let yaml = c.kubectl(&["get", "cm", "edited", "-o", "yaml"]);
    assert!(yaml.ok().contains("word: after"), "{}", yaml.stdout);
    let node = c.kubectl(&["describe", "node", "wrun"]);
    assert!(
        node.ok().contains("Container Runtime Version:  wrun://"),
        "{}",
        node.stdout
    );

    // An image no registry has: ErrImagePull, then the back-off.
    c.kubectl(&["run", "ghost", "--image=127.0.0.1:9/none/ghost:v1"])
        .ok();
    poll("ImagePullBackOff", || {
        let out = c.kubectl(&["get", "pod", "ghost", "--no-headers"]);
        out.stdout.contains("ImagePullBackOff").then_some(())
    });
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=ghost",
    ]);
    assert!(
        events.ok().contains("Failed to pull image"),
        "{}",
        events.stdout
    );

    c.kubectl(&["delete", "pod", "kubia", "ghost", "--now"])
        .ok();
    c.kubectl(&["get", "pods", "-o", "name"]).ok();
    let left = c.kubectl(&["get", "pods", "-o", "name"]);
    assert_eq!(left.ok().trim(), "");

    // `cluster delete` removes wrun's entries and nothing else.
    let deleted = c
        .root
        .cmd(&["cluster", "delete"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .expect("cluster delete");
    assert!(deleted.status.success(), "{deleted:?}");
    let text = kubeconfig_text(&kubeconfig);
    assert!(!text.contains("name: wrun"), "{text}");
    assert!(text.contains("name: prod"), "{text}");
}

#[test]
fn images_from_a_registry_follow_the_pull_policy() {
    let reg = crate::registry::Registry::start(false);
    let publisher = Root::new();
    publisher.busybox();
    let name = format!("{}/me/busybox:v1", reg.host());
    publisher.wrun(&["tag", "busybox", &name]).ok();
    crate::registry::wrun(&publisher, &["push", &name]).ok();

    let c = Cluster::start(&[]);
    let pod = |pod: &str, policy: &str, image: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: {policy}\n    command: [\"echo\", \"ran {pod}\"]\n"
        )
    };
    let finished = |name: &str| {
        poll(&format!("{name} to finish"), || {
            let p = c.pod_json(name);
            (p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed")
                .then_some(p["status"]["phase"].clone())
        })
    };
    c.stdin_kubectl(&["apply", "-f", "-"], &pod("pulled", "IfNotPresent", &name))
        .ok();
    assert_eq!(finished("pulled"), "Succeeded");
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=pulled",
    ]);
    assert!(
        events.ok().contains("Successfully pulled image"),
        "{}",
        events.stdout
    );
    assert!(c.kubectl(&["logs", "pulled"]).ok().contains("ran pulled"));

    // The registry goes away: an image the store holds still runs, and a
    // Warning says the pull failed.
    drop(reg);
    c.stdin_kubectl(&["apply", "-f", "-"], &pod("offline", "Always", &name))
        .ok();
    assert_eq!(finished("offline"), "Succeeded");
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=offline",
    ]);
    let events = events.ok();
    assert!(
        events.contains("Warning") && events.contains("using the image already present"),
        "{events}"
    );

    let missing = name.replace("busybox:v1", "missing:v1");
    c.stdin_kubectl(&["apply", "-f", "-"], &pod("never", "Never", &missing))
        .ok();
    poll("ErrImageNeverPull", || {
        let out = c.kubectl(&["get", "pod", "never", "--no-headers"]);
        out.stdout.contains("ErrImageNeverPull").then_some(())
    });
}

/// `kill -9` of the daemon while a scale is under way: when it comes
/// back, the RC converges on exactly its replicas, each pod running once
/// (no pod with two containers of the same name, none left half-made).
#[test]
fn a_scale_interrupted_by_kill_9_converges() {
    let c = Cluster::start(&["kubia"]);
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &std::fs::read_to_string(crate::support::sample("kubia").join("kubia-rc.yaml"))
            .expect("kubia-rc.yaml"),
    )
    .ok();
    c.kubectl(&["scale", "rc", "kubia", "--replicas=24"]).ok();
    // Killed while the controller and the node agent are at work.
    std::thread::sleep(std::time::Duration::from_millis(300));
    c.root.kill_daemon_hard();
    c.root.wrun(&["ps"]).ok();
    c.wait_replicas("rc", "kubia", 24);
    let live = c.live_pods("kubia");
    assert_eq!(live.len(), 24, "{live:?}");
    // Each pod's container runs once in the daemon.
    let ps = c.root.wrun(&["ps", "--format", "{{.Names}}"]);
    for name in &live {
        let running = ps.ok().lines().filter(|l| l.contains(name)).count();
        assert_eq!(
            running, 1,
            "pod {name} runs {running} containers:\n{}",
            ps.stdout
        );
    }
}
