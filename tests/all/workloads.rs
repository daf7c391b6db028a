//! ReplicationControllers and ReplicaSets through the real kubectl: the
//! book's kubia-rc.yaml, `kubectl scale` (the /scale subresource), pods
//! replaced when deleted, garbage collection with each propagation policy,
//! the events they emit, bad input, and a daemon killed with -9.

use std::process::Command;

use crate::cluster::Cluster;
use crate::support::{poll, repo};

fn rc_manifest() -> String {
    repo()
        .join("samples/kubia/kubia-rc.yaml")
        .to_string_lossy()
        .into_owned()
}

/// The book's RC (3 kubia pods) exposed as the LoadBalancer `lb` on a
/// free port, once its pods are ready and it answers: the port.
fn kubia_behind_a_load_balancer(c: &Cluster) -> u16 {
    c.kubectl(&["create", "-f", &rc_manifest()]).ok();
    let port = crate::support::free_port();
    c.kubectl(&[
        "expose",
        "rc",
        "kubia",
        "--type=LoadBalancer",
        "--name",
        "lb",
        &format!("--port={port}"),
        "--target-port=8080",
    ])
    .ok();
    c.wait_replicas("rc", "kubia", 3);
    crate::support::http_get_ok(port, std::time::Duration::from_secs(30));
    port
}

fn json(c: &Cluster, args: &[&str]) -> serde_json::Value {
    let out = c.kubectl(args);
    serde_json::from_str(out.ok()).expect("JSON")
}

fn wait_pod_count(c: &Cluster, app: &str, n: usize) -> Vec<String> {
    poll(&format!("{n} {app} pods"), || {
        let all = json(
            c,
            &["get", "pods", "-l", &format!("app={app}"), "-o", "json"],
        );
        let count = all["items"].as_array().map(Vec::len).unwrap_or(0);
        (count == n).then(|| c.live_pods(app))
    })
}

#[test]
fn replication_controllers_scale_heal_and_collect_their_pods() {
    let c = Cluster::start(&["kubia"]);
    c.kubectl(&["create", "-f", &rc_manifest()]).ok();
    c.wait_replicas("rc", "kubia", 3);
    let table_out = c.kubectl(&["get", "rc"]);
    let table = table_out.ok();
    let header = table_out.row(0);
    assert_eq!(
        header,
        ["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
        "{table}"
    );
    let row = table_out.row(1);
    assert_eq!(&row[..4], ["kubia", "3", "3", "3"], "{table}");
    let pods = c.live_pods("kubia");
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter()
            .all(|p| p.starts_with("kubia-") && p.len() == 11),
        "{pods:?}"
    );
    let pod = json(&c, &["get", "pod", &pods[0], "-o", "json"]);
    assert_eq!(
        pod["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
    assert_eq!(pod["metadata"]["ownerReferences"][0]["controller"], true);

    c.kubectl(&["scale", "rc", "kubia", "--replicas=5"]).ok();
    c.wait_replicas("rc", "kubia", 5);
    c.kubectl(&["scale", "rc", "kubia", "--replicas=2"]).ok();
    c.wait_replicas("rc", "kubia", 2);
    let two = wait_pod_count(&c, "kubia", 2);
    // A deleted pod is replaced.
    c.kubectl(&["delete", "pod", &two[0]]).ok();
    let healed = poll("a replacement pod", || {
        let now = c.live_pods("kubia");
        (now.len() == 2 && !now.contains(&two[0])).then_some(now)
    });
    assert!(healed.contains(&two[1]), "{healed:?}");
    c.wait_replicas("rc", "kubia", 2);
    let described = c.kubectl(&["describe", "rc", "kubia"]);
    let described = described.ok();
    assert!(
        described.contains("SuccessfulCreate") && described.contains("SuccessfulDelete"),
        "{described}"
    );
    let scale = json(
        &c,
        &[
            "get",
            "--raw",
            "/api/v1/namespaces/default/replicationcontrollers/kubia/scale",
        ],
    );
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 2);
    assert_eq!(scale["status"]["selector"], "app=kubia");

    // Deleting the RC (background propagation, kubectl's default) takes
    // its pods with it.
    c.kubectl(&["delete", "rc", "kubia"]).ok();
    wait_pod_count(&c, "kubia", 0);
}

#[test]
fn replica_sets_and_each_propagation_policy() {
    let c = Cluster::start(&["kubia"]);
    let rs = |name: &str, app: &str, replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {app}\n  template:\n    metadata:\n      labels:\n        app: {app}\n    spec:\n      containers:\n      - name: kubia\n        image: kubia\n        ports:\n        - containerPort: 8080\n"
        )
    };
    c.stdin_kubectl(&["apply", "-f", "-"], &rs("orphaned", "one", 2))
        .ok();
    c.stdin_kubectl(&["apply", "-f", "-"], &rs("foreground", "two", 2))
        .ok();
    c.wait_replicas("rs", "orphaned", 2);
    c.wait_replicas("replicasets.apps", "foreground", 2);
    c.kubectl(&["scale", "rs", "orphaned", "--replicas=3"]).ok();
    c.wait_replicas("rs", "orphaned", 3);
    let wide = c.kubectl(&["get", "rs", "-o", "wide"]);
    assert!(wide.ok().contains("app=one"), "{}", wide.stdout);

    // Orphan: the ReplicaSet goes, its pods stay, without an owner.
    c.kubectl(&["delete", "rs", "orphaned", "--cascade=orphan"])
        .ok();
    c.kubectl(&["get", "rs", "orphaned"]).fails("NotFound");
    let kept = c.live_pods("one");
    assert_eq!(kept.len(), 3, "{kept:?}");
    for p in &kept {
        let pod = json(&c, &["get", "pod", p, "-o", "json"]);
        let refs = pod["metadata"]["ownerReferences"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        assert_eq!(refs, 0, "{pod}");
    }
    // A new ReplicaSet with the same selector adopts them.
    c.stdin_kubectl(&["apply", "-f", "-"], &rs("adopter", "one", 3))
        .ok();
    c.wait_replicas("rs", "adopter", 3);
    let after = c.live_pods("one");
    assert_eq!(after.len(), 3, "adopted, not replaced: {after:?}");
    assert!(kept.iter().all(|p| after.contains(p)), "{kept:?} {after:?}");

    // Foreground: the pods go first, then the ReplicaSet.
    c.kubectl(&["delete", "rs", "foreground", "--cascade=foreground"])
        .ok();
    c.kubectl(&["get", "rs", "foreground"]).fails("NotFound");
    wait_pod_count(&c, "two", 0);
}

#[test]
fn bad_workloads_are_refused_and_nothing_is_stored() {
    let c = Cluster::start(&[]);
    let mismatch = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: bad\nspec:\n  replicas: 1\n  selector:\n    app: one\n  template:\n    metadata:\n      labels:\n        app: two\n    spec:\n      containers:\n      - name: c\n        image: kubia\n";
    c.stdin_kubectl(&["apply", "-f", "-"], mismatch)
        .fails("`selector` does not match template `labels`");
    let negative = mismatch
        .replace("replicas: 1", "replicas: -1")
        .replace("app: two", "app: one");
    c.stdin_kubectl(&["apply", "-f", "-"], &negative)
        .fails("must be greater than or equal to 0");
    let never = mismatch.replace("app: two", "app: one").replace(
        "      containers:",
        "      restartPolicy: Never\n      containers:",
    );
    c.stdin_kubectl(&["apply", "-f", "-"], &never)
        .fails("Unsupported value: \"Never\"");
    c.kubectl(&["get", "rc", "bad"]).fails("NotFound");
    // A negative scale is refused by the server too.
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &mismatch
            .replace("app: two", "app: one")
            .replace("image: kubia", "image: nothing-here"),
    )
    .ok();
    let patched = Command::new("kubectl")
        .arg("--cache-dir")
        .arg(&c.cache)
        .args([
            "patch",
            "rc",
            "bad",
            "--subresource=scale",
            "--type=merge",
            "-p",
            r#"{"spec":{"replicas":-3}}"#,
        ])
        .env("KUBECONFIG", &c.kubeconfig)
        .output()
        .expect("kubectl");
    assert!(!patched.status.success());
    assert!(
        String::from_utf8_lossy(&patched.stderr).contains("must be greater than or equal to 0"),
        "{patched:?}"
    );
}

#[test]
fn replication_controllers_come_back_after_the_daemon_is_killed() {
    let c = Cluster::start(&["kubia"]);
    let port = kubia_behind_a_load_balancer(&c);
    let before = c.live_pods("kubia");
    c.root.kill_daemon_hard();
    c.root.wrun(&["ps"]).ok();
    c.wait_replicas("rc", "kubia", 3);
    let after = c.live_pods("kubia");
    assert_eq!(before, after, "the same pods run again");
    // The load balancer answers again, from the pods that run again.
    let body = crate::support::http_get_ok(port, std::time::Duration::from_secs(30));
    assert!(after.iter().any(|p| body.contains(p.as_str())), "{body}");
}

/// The seed's walk-through: the book's RC, `kubectl expose` as a
/// LoadBalancer, `get services`, curls that hit each pod in turn, `scale`,
/// `get pods -o wide`, and a deleted pod replaced while the service keeps
/// answering. With the pinned kubectl 1.28 too.
fn the_seed_flow(version: Option<&str>) {
    let c = Cluster::start(&["kubia"]);
    let k = |args: &[&str]| c.kubectl_with(version, args);
    k(&["create", "-f", &rc_manifest()]).ok();
    // The book exposes port 8080; tests run side by side, so each takes a
    // free host port for the load balancer.
    let port = crate::support::free_port();
    k(&[
        "expose",
        "rc",
        "kubia",
        "--type=LoadBalancer",
        "--name",
        "kubia-http",
        &format!("--port={port}"),
        "--target-port=8080",
    ])
    .ok();
    c.wait_replicas("rc", "kubia", 3);
    let services = poll("the load balancer's external IP", || {
        let out = k(&["get", "services"]);
        out.stdout
            .lines()
            .find(|l| l.starts_with("kubia-http") && l.contains("127.0.0.1"))
            .map(str::to_string)
    });
    let cols: Vec<&str> = services.split_whitespace().collect();
    assert_eq!(cols[1], "LoadBalancer", "{services}");
    assert!(
        cols[2].starts_with("10.9") || cols[2].starts_with("10.1"),
        "ClusterIP: {services}"
    );
    assert_eq!(cols[3], "127.0.0.1", "{services}");
    assert!(
        cols[4].starts_with(&format!("{port}:3")) && cols[4].ends_with("/TCP"),
        "{services}"
    );
    let endpoints = poll("three endpoints", || {
        let out = k(&["get", "endpoints", "kubia-http", "--no-headers"]);
        (out.stdout.matches("10.244.").count() == 3).then_some(out.stdout)
    });
    assert!(endpoints.contains(":8080"), "{endpoints}");
    let slices = k(&[
        "get",
        "endpointslices",
        "-l",
        "kubernetes.io/service-name=kubia-http",
        "-o",
        "jsonpath={.items[*].endpoints[*].addresses[0]}",
    ]);
    assert_eq!(
        slices.ok().split_whitespace().count(),
        3,
        "{}",
        slices.stdout
    );

    // Round-robin: nine requests, three to each pod.
    let hits = |n: usize| -> std::collections::BTreeMap<String, usize> {
        let mut seen = std::collections::BTreeMap::new();
        for _ in 0..n {
            let body = crate::support::http_get_ok(port, std::time::Duration::from_secs(30));
            let pod = body.trim().trim_start_matches("you've hit ").to_string();
            *seen.entry(pod).or_insert(0) += 1;
        }
        seen
    };
    let seen = hits(9);
    let pods = c.live_pods("kubia");
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.values().all(|n| *n == 3), "{seen:?}");
    assert!(seen.keys().all(|p| pods.contains(p)), "{seen:?} {pods:?}");

    k(&["scale", "rc", "kubia", "--replicas=5"]).ok();
    c.wait_replicas("rc", "kubia", 5);
    let rc = k(&["get", "rc", "kubia", "--no-headers"]);
    let row: Vec<&str> = rc.ok().split_whitespace().collect();
    assert_eq!(&row[..4], ["kubia", "5", "5", "5"], "{}", rc.stdout);
    // The table shows three and "+ 2 more...", as Kubernetes prints it.
    poll("five endpoints", || {
        let out = k(&[
            "get",
            "endpoints",
            "kubia-http",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ]);
        (out.stdout.split_whitespace().count() == 5).then_some(())
    });
    let seen = hits(10);
    assert_eq!(seen.len(), 5, "{seen:?}");
    let wide = k(&["get", "pods", "-o", "wide"]);
    assert_eq!(wide.ok().matches(" 10.244.").count(), 5, "{}", wide.stdout);

    // A deleted pod is replaced; the service answers throughout.
    let victim = c.live_pods("kubia")[0].clone();
    k(&["delete", "pod", &victim]).ok();
    for _ in 0..5 {
        let body = crate::support::http_get_ok(port, std::time::Duration::from_secs(30));
        assert!(!body.contains(&victim), "{body}");
    }
    c.wait_replicas("rc", "kubia", 5);
    assert!(!c.live_pods("kubia").contains(&victim));
    let described = k(&["describe", "svc", "kubia-http"]);
    assert!(
        described.ok().contains("Endpoints:"),
        "{}",
        described.stdout
    );
}

#[test]
fn the_seed_walk_through_with_kubectl() {
    the_seed_flow(None);
}

#[test]
fn the_seed_walk_through_with_kubectl_1_28() {
    the_seed_flow(Some("1.28"));
}

fn deployment(name: &str, image: &str, replicas: u32, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  strategy:\n    type: {strategy}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n        ports:\n        - containerPort: 8080\n"
    )
}

#[test]
fn deployments_roll_out_roll_back_and_keep_their_history() {
    let c = Cluster::start(&["kubia", "busybox"]);
    // kubia-http is the same server as a wasi:http component.
    c.root
        .wrun(&[
            "build",
            "-q",
            "-t",
            "kubia-http",
            &crate::support::sample("kubia-http").to_string_lossy(),
        ])
        .ok();
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &deployment("web", "kubia", 3, "RollingUpdate"),
    )
    .ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .ok();
    let table = c.kubectl(&["get", "deploy", "web", "--no-headers"]);
    let row: Vec<&str> = table.ok().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "3/3", "3", "3"], "{}", table.stdout);
    let rs = c.kubectl(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(rs.ok().lines().count(), 1, "{}", rs.stdout);

    // A new image rolls out as a second ReplicaSet; the first is kept at 0.
    c.kubectl(&["set", "image", "deployment/web", "web=kubia-http"])
        .ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .ok();
    let d = json(&c, &["get", "deploy", "web", "-o", "json"]);
    assert_eq!(d["status"]["updatedReplicas"], 3, "{d}");
    assert_eq!(d["status"]["availableReplicas"], 3, "{d}");
    let sets = json(&c, &["get", "rs", "-l", "app=web", "-o", "json"]);
    let sets = sets["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(sets.len(), 2, "{sets:?}");
    let images: Vec<(String, i64)> = sets
        .iter()
        .map(|s| {
            (
                s["spec"]["template"]["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                s["spec"]["replicas"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert!(
        images.contains(&("kubia".into(), 0)) && images.contains(&("kubia-http".into(), 3)),
        "{images:?}"
    );
    let history = c.kubectl(&["rollout", "history", "deployment/web"]);
    assert!(
        history.ok().contains('1') && history.stdout.contains('2'),
        "{}",
        history.stdout
    );
    let events = c.kubectl(&["describe", "deploy", "web"]);
    assert!(
        events.ok().contains("ScalingReplicaSet"),
        "{}",
        events.stdout
    );

    // Undo goes back to the first template, as revision 3.
    c.kubectl(&["rollout", "undo", "deployment/web"]).ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .ok();
    let image = c.kubectl(&[
        "get",
        "deploy",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image.ok(), "kubia");
    let sets = c.kubectl(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(
        sets.ok().lines().count(),
        2,
        "the old ReplicaSet is reused: {}",
        sets.stdout
    );

    // Restart makes new pods; pause and resume; scale through /scale.
    let before = c.live_pods("web");
    c.kubectl(&["rollout", "restart", "deployment/web"]).ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .ok();
    poll("fresh pods after the restart", || {
        let now = c.live_pods("web");
        (now.len() == 3 && now.iter().all(|p| !before.contains(p))).then_some(())
    });
    c.kubectl(&["rollout", "pause", "deployment/web"]).ok();
    c.kubectl(&["scale", "deployment", "web", "--replicas=4"])
        .ok();
    poll("four pods while paused", || {
        (c.live_pods("web").len() == 4).then_some(())
    });
    c.kubectl(&["rollout", "resume", "deployment/web"]).ok();
    c.kubectl(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .ok();

    // Recreate: the old pods go before the new ones start.
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &deployment("batchy", "kubia", 2, "Recreate"),
    )
    .ok();
    c.kubectl(&["rollout", "status", "deployment/batchy", "--timeout=60s"])
        .ok();
    c.kubectl(&["set", "image", "deployment/batchy", "web=kubia-http"])
        .ok();
    c.kubectl(&["rollout", "status", "deployment/batchy", "--timeout=60s"])
        .ok();
    let image = c.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=batchy",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ]);
    assert_eq!(
        image.ok().split_whitespace().collect::<Vec<_>>(),
        ["kubia-http", "kubia-http"]
    );

    // Deleting the Deployment takes its ReplicaSets and pods.
    c.kubectl(&["delete", "deployment", "web"]).ok();
    poll("the web pods to go", || {
        let all = json(&c, &["get", "pods", "-l", "app=web", "-o", "json"]);
        all["items"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
    let sets = c.kubectl(&["get", "rs", "-l", "app=web", "-o", "name"]);
    assert_eq!(sets.ok().trim(), "");
}

#[test]
fn jobs_complete_fail_and_are_waited_for() {
    let c = Cluster::start(&["busybox"]);
    let job = |name: &str, cmd: &str, completions: u32, parallelism: u32, backoff: u32| {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n  completions: {completions}\n  parallelism: {parallelism}\n  backoffLimit: {backoff}\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: main\n        image: busybox\n        command: [\"sh\", \"-c\", \"{cmd}\"]\n"
        )
    };
    c.stdin_kubectl(&["apply", "-f", "-"], &job("count", "echo done", 3, 2, 1))
        .ok();
    c.kubectl(&[
        "wait",
        "--for=condition=complete",
        "job/count",
        "--timeout=60s",
    ])
    .ok();
    let j = json(&c, &["get", "job", "count", "-o", "json"]);
    assert_eq!(j["status"]["succeeded"], 3, "{j}");
    assert!(j["status"]["completionTime"].is_string(), "{j}");
    let table = c.kubectl(&["get", "jobs", "--no-headers"]);
    assert!(table.ok().contains("3/3"), "{}", table.stdout);
    let logs = c.kubectl(&["logs", "job/count"]);
    assert!(logs.ok().contains("done"), "{}", logs.stdout);

    c.stdin_kubectl(&["apply", "-f", "-"], &job("doomed", "exit 1", 1, 1, 0))
        .ok();
    c.kubectl(&[
        "wait",
        "--for=condition=failed",
        "job/doomed",
        "--timeout=60s",
    ])
    .ok();
    let j = json(&c, &["get", "job", "doomed", "-o", "json"]);
    assert_eq!(j["status"]["failed"], 1, "{j}");
    let reason = j["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Failed")
        .map(|c| c["reason"].clone());
    assert_eq!(
        reason,
        Some(serde_json::json!("BackoffLimitExceeded")),
        "{j}"
    );

    // A Job whose pods restart Always is refused.
    let always =
        job("bad", "true", 1, 1, 1).replace("restartPolicy: Never", "restartPolicy: Always");
    c.stdin_kubectl(&["apply", "-f", "-"], &always)
        .fails("Unsupported value: \"Always\"");
    // Deleting a Job takes its pods.
    c.kubectl(&["delete", "job", "count"]).ok();
    poll("the count pods to go", || {
        let all = json(&c, &["get", "pods", "-o", "json"]);
        let left = all["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| {
                p["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("count-"))
            })
            .count();
        (left == 0).then_some(())
    });
}

/// Runs wrk for `secs` seconds against 127.0.0.1:`port`, one new
/// connection per request; returns its report.
fn wrk(port: u16, secs: u32) -> std::process::Child {
    Command::new("wrk")
        .args(["-t1", "-c8", &format!("-d{secs}s"), "--timeout", "30s"])
        .args(["-H", "Connection: close"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wrk is needed (apt-get install wrk)")
}

#[track_caller]
fn no_failures(child: std::process::Child) {
    let out = child.wait_with_output().expect("wrk");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(!report.contains("Socket errors"), "{report}");
    assert!(!report.contains("Non-2xx"), "{report}");
    let requests: u64 = report
        .lines()
        .find_map(|l| {
            l.trim()
                .split_once(" requests in ")
                .map(|(n, _)| n.trim().to_string())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(requests > 100, "{report}");
}

#[test]
fn scaling_and_rolling_updates_under_load_drop_no_request() {
    let c = Cluster::start(&["kubia"]);
    c.root
        .wrun(&[
            "build",
            "-q",
            "-t",
            "kubia-http",
            &crate::support::sample("kubia-http").to_string_lossy(),
        ])
        .ok();
    let port = kubia_behind_a_load_balancer(&c);
    // 3 → 10 → 1 under load.
    let load = wrk(port, 6);
    std::thread::sleep(std::time::Duration::from_millis(500));
    c.kubectl(&["scale", "rc", "kubia", "--replicas=10"]).ok();
    c.wait_replicas("rc", "kubia", 10);
    c.kubectl(&["scale", "rc", "kubia", "--replicas=1"]).ok();
    c.wait_replicas("rc", "kubia", 1);
    no_failures(load);

    // A rolling update from kubia to kubia-http under load.
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &deployment("roll", "kubia", 3, "RollingUpdate"),
    )
    .ok();
    let port = crate::support::free_port();
    c.kubectl(&[
        "expose",
        "deployment",
        "roll",
        "--type=LoadBalancer",
        &format!("--port={port}"),
        "--target-port=8080",
    ])
    .ok();
    c.kubectl(&["rollout", "status", "deployment/roll", "--timeout=60s"])
        .ok();
    crate::support::http_get_ok(port, std::time::Duration::from_secs(30));
    let load = wrk(port, 6);
    std::thread::sleep(std::time::Duration::from_millis(500));
    c.kubectl(&["set", "image", "deployment/roll", "web=kubia-http"])
        .ok();
    c.kubectl(&["rollout", "status", "deployment/roll", "--timeout=60s"])
        .ok();
    no_failures(load);
}

#[test]
fn bad_services_are_refused_and_nothing_is_stored() {
    let c = Cluster::start(&[]);
    let svc = |name: &str, kind: &str, ports: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: {kind}\n  selector:\n    app: x\n  ports:\n{ports}"
        )
    };
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &svc("np1", "NodePort", "  - port: 80\n    nodePort: 30123\n"),
    )
    .ok();
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &svc("np2", "NodePort", "  - port: 80\n    nodePort: 30123\n"),
    )
    .fails("provided port is already allocated");
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &svc("range", "NodePort", "  - port: 80\n    nodePort: 80\n"),
    )
    .fails("The range of valid ports is 30000-32767");
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &svc("big", "ClusterIP", "  - port: 70000\n"),
    )
    .fails("must be between 1 and 65535");
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &svc("cip", "ClusterIP", "  - port: 80\n    nodePort: 30124\n"),
    )
    .fails("may not be used when `type` is 'ClusterIP'");
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &svc("kind", "Sideways", "  - port: 80\n"),
    )
    .fails("Unsupported value: \"Sideways\"");
    let headless = "apiVersion: v1\nkind: Service\nmetadata:\n  name: headless\nspec:\n  clusterIP: None\n  selector:\n    app: x\n  ports:\n  - port: 80\n";
    c.stdin_kubectl(&["apply", "-f", "-"], headless).ok();
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &headless.replace(
            "  clusterIP: None\n",
            "  clusterIP: None\n  type: NodePort\n",
        ),
    )
    .fails("may not be set when `clusterIP` is `None`");
    let ip = c.kubectl(&["get", "svc", "np1", "-o", "jsonpath={.spec.clusterIP}"]);
    let ip = ip.ok().to_string();
    assert!(ip.starts_with("10.9"), "{ip}");
    c.kubectl(&[
        "patch",
        "svc",
        "np1",
        "--type=merge",
        "-p",
        r#"{"spec":{"clusterIP":"10.96.7.7"}}"#,
    ])
    .fails("field is immutable");
    for name in ["np2", "range", "big", "cip", "kind"] {
        c.kubectl(&["get", "svc", name]).fails("NotFound");
    }
    let kept = c.kubectl(&["get", "svc", "np1", "-o", "jsonpath={.spec.clusterIP}"]);
    assert_eq!(kept.ok(), ip);
}

#[test]
fn min_ready_seconds_delays_availability() {
    let c = Cluster::start(&["kubia"]);
    let rs = "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: patient\nspec:\n  replicas: 1\n  minReadySeconds: 5\n  selector:\n    matchLabels:\n      app: patient\n  template:\n    metadata:\n      labels:\n        app: patient\n    spec:\n      containers:\n      - name: kubia\n        image: kubia\n        ports:\n        - containerPort: 8080\n";
    c.stdin_kubectl(&["apply", "-f", "-"], rs).ok();
    let first = poll("the pod to be ready", || {
        let o = json(&c, &["get", "rs", "patient", "-o", "json"]);
        (o["status"]["readyReplicas"] == 1).then_some(o)
    });
    assert_eq!(
        first["status"]["availableReplicas"], 0,
        "not yet available: {first}"
    );
    poll("the pod to be available", || {
        let o = json(&c, &["get", "rs", "patient", "-o", "json"]);
        (o["status"]["availableReplicas"] == 1).then_some(())
    });
}

#[test]
fn services_with_several_ports_and_named_target_ports() {
    let c = Cluster::start(&["kubia"]);
    let d = deployment("multi", "kubia", 2, "RollingUpdate").replace(
        "        - containerPort: 8080\n",
        "        - containerPort: 8080\n          name: web\n",
    );
    c.stdin_kubectl(&["apply", "-f", "-"], &d).ok();
    c.kubectl(&["rollout", "status", "deployment/multi", "--timeout=60s"])
        .ok();
    let (a, b) = (crate::support::free_port(), crate::support::free_port());
    let svc = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: multi\nspec:\n  type: LoadBalancer\n  selector:\n    app: multi\n  ports:\n  - name: one\n    port: {a}\n    targetPort: web\n  - name: two\n    port: {b}\n    targetPort: 8080\n"
    );
    c.stdin_kubectl(&["apply", "-f", "-"], &svc).ok();
    for port in [a, b] {
        let body = crate::support::http_get_ok(port, std::time::Duration::from_secs(30));
        assert!(body.starts_with("you've hit multi-"), "{body}");
    }
    let ports = c.kubectl(&[
        "get",
        "endpoints",
        "multi",
        "-o",
        "jsonpath={.subsets[0].ports[*].port}",
    ]);
    assert_eq!(
        ports.ok().split_whitespace().collect::<Vec<_>>(),
        ["8080", "8080"]
    );
    // `kubectl expose` of a service makes another one with its selector.
    c.kubectl(&[
        "expose",
        "service",
        "multi",
        "--name",
        "again",
        "--port=9000",
        "--target-port=8080",
    ])
    .ok();
    let sel = c.kubectl(&["get", "svc", "again", "-o", "jsonpath={.spec.selector.app}"]);
    assert_eq!(sel.ok(), "multi");
}
