//! Services through wrun's service proxy, driven by the real kubectl: a
//! LoadBalancer and a NodePort on 127.0.0.1 spreading connections over
//! three kubia pods in turn, a pod reaching a ClusterIP by the service's
//! names, a connect refused without endpoints, and a LoadBalancer left
//! `<pending>` with a Warning event while its port is taken on the host.
//! The test only ever dials 127.0.0.1.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};

use crate::cluster::Cluster;
use crate::support::{free_port, http_get, poll};

const PODS: [&str; 3] = ["kubia-a", "kubia-b", "kubia-c"];

fn kubia_pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels:
    app: kubia
spec:
  containers:
  - name: kubia
    image: kubia
    ports:
    - containerPort: 8080
"#
    )
}

/// A Service selecting the kubia pods.
fn service(name: &str, kind: &str, port: u16) -> String {
    format!(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: {kind}
  selector:
    app: kubia
  ports:
  - name: http
    port: {port}
    targetPort: 8080
"#
    )
}

fn svc_json(c: &Cluster, name: &str) -> serde_json::Value {
    serde_json::from_str(c.kubectl(&["get", "svc", name, "-o", "json"]).ok()).expect("service JSON")
}

/// How many ready addresses the service's Endpoints list.
fn ready_endpoints(c: &Cluster, svc: &str) -> usize {
    let out = c.kubectl(&["get", "endpoints", svc, "-o", "json"]);
    if out.code != 0 {
        return 0;
    }
    let ep: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    ep["subsets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["addresses"].as_array().map_or(0, Vec::len))
        .sum()
}

/// Waits until the service's Endpoints list every kubia pod. When no
/// endpoints controller has written them after a short while, writes
/// them by hand, as for a service without a selector.
fn ensure_endpoints(c: &Cluster, svc: &str, port_name: &str, ips: &[String]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if ready_endpoints(c, svc) == ips.len() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    if ready_endpoints(c, svc) == 0 {
        let addresses: String = ips.iter().map(|ip| format!("  - ip: {ip}\n")).collect();
        let manifest = format!(
            "apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: {svc}\nsubsets:\n- addresses:\n{addresses}  ports:\n  - name: {port_name}\n    port: 8080\n    protocol: TCP\n"
        );
        c.stdin_kubectl(&["apply", "-f", "-"], &manifest).ok();
    }
    poll(&format!("the endpoints of {svc}"), || {
        (ready_endpoints(c, svc) == ips.len()).then_some(())
    });
}

/// `you've hit <pod>`'s pod, from one GET on 127.0.0.1:`port`.
fn hit(port: u16) -> Option<String> {
    match http_get(port, "/") {
        Ok((200, body)) => body.trim().strip_prefix("you've hit ").map(str::to_string),
        _ => None,
    }
}

#[test]
fn services_spread_connections_over_ready_pods() {
    let c = Cluster::start(&["kubia", "busybox"]);
    let pods: String = PODS.iter().map(|p| kubia_pod(p) + "---\n").collect();
    c.stdin_kubectl(&["apply", "-f", "-"], &pods).ok();
    let lb_port = free_port();
    let services = [
        service("kubia-lb", "LoadBalancer", lb_port),
        service("kubia-np", "NodePort", 8080),
        service("kubia-svc", "ClusterIP", 8080),
    ]
    .join("---\n");
    c.stdin_kubectl(&["apply", "-f", "-"], &services).ok();
    for p in PODS {
        c.wait_ready(p);
    }
    let ips: Vec<String> = PODS
        .iter()
        .map(|p| {
            c.pod_json(p)["status"]["podIP"]
                .as_str()
                .expect("a pod IP")
                .to_string()
        })
        .collect();
    for svc in ["kubia-lb", "kubia-np", "kubia-svc"] {
        ensure_endpoints(&c, svc, "http", &ips);
    }

    // The LoadBalancer's external IP is 127.0.0.1 once it listens.
    let lb = poll("the LoadBalancer's ingress", || {
        let svc = svc_json(&c, "kubia-lb");
        (svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1").then_some(svc)
    });
    let get = c.kubectl(&["get", "svc", "kubia-lb", "--no-headers"]);
    let row: Vec<&str> = get.ok().split_whitespace().collect();
    assert_eq!(row[1], "LoadBalancer", "{}", get.stdout);
    assert_eq!(row[3], "127.0.0.1", "{}", get.stdout);
    assert!(
        row[2].starts_with("10.9") || row[2].starts_with("10.10") || row[2].starts_with("10.11"),
        "a ClusterIP from 10.96.0.0/12: {}",
        get.stdout
    );
    let events = c.kubectl(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=kubia-lb",
    ]);
    assert!(
        events.ok().contains("EnsuredLoadBalancer"),
        "{}",
        events.stdout
    );

    // Nine requests, each on its own connection: each pod answers three.
    poll("the LoadBalancer to answer", || hit(lb_port));
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..9 {
        let pod = hit(lb_port).expect("an answer through the LoadBalancer");
        *counts.entry(pod).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = PODS.iter().map(|p| (p.to_string(), 3)).collect();
    assert_eq!(counts, expected);

    // The LoadBalancer's nodePort, and a NodePort service's.
    let lb_node_port = lb["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a LoadBalancer has a nodePort") as u16;
    let np = svc_json(&c, "kubia-np");
    let node_port = np["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .expect("a nodePort") as u16;
    assert!((30000..=32767).contains(&node_port), "{np}");
    for port in [lb_node_port, node_port] {
        let pod = poll("the nodePort to answer", || hit(port));
        assert!(PODS.contains(&pod.as_str()), "{pod}");
    }

    // A pod reaches the ClusterIP by the service's names, and through an
    // ExternalName service that aliases them; a service without
    // endpoints refuses the connection.
    let nobody = r#"
apiVersion: v1
kind: Service
metadata:
  name: nobody
spec:
  selector:
    app: nobody
  ports:
  - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: kubia-alias
spec:
  type: ExternalName
  externalName: kubia-svc.default.svc.cluster.local
"#;
    c.stdin_kubectl(&["apply", "-f", "-"], nobody).ok();
    let alias = c.kubectl(&["get", "svc", "kubia-alias", "--no-headers"]);
    let row: Vec<&str> = alias.ok().split_whitespace().collect();
    assert_eq!(
        row[1..4],
        [
            "ExternalName",
            "<none>",
            "kubia-svc.default.svc.cluster.local"
        ],
        "{}",
        alias.stdout
    );
    let script = "wget -q -O- http://kubia-svc:8080/ \
        && wget -q -O- http://kubia-svc.default.svc.cluster.local:8080/ \
        && wget -q -O- http://kubia-svc.default:8080/ \
        && wget -q -O- http://kubia-alias:8080/ \
        ; wget -q -O- http://nobody/ || echo nobody refused";
    c.kubectl(&[
        "run",
        "client",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sh",
        "-c",
        script,
    ])
    .ok();
    let phase = poll("the client pod to finish", || {
        let p = c.pod_json("client");
        let phase = p["status"]["phase"].as_str().unwrap_or("").to_string();
        (phase == "Succeeded" || phase == "Failed").then_some(phase)
    });
    let logs = c.kubectl(&["logs", "client"]);
    let logs = logs.ok();
    assert_eq!(phase, "Succeeded", "{logs}");
    assert_eq!(logs.matches("you've hit kubia-").count(), 4, "{logs}");
    assert!(logs.contains("Connection refused"), "{logs}");
    assert!(logs.contains("nobody refused"), "{logs}");
    // kubia saw the client pod's address through the ClusterIP, and the
    // gateway's through the LoadBalancer, as through `-p`.
    let client_ip = c.pod_json("client")["status"]["podIP"]
        .as_str()
        .expect("the client's pod IP")
        .to_string();
    let kubia_logs: String = PODS
        .iter()
        .map(|p| c.kubectl(&["logs", p]).ok().to_string())
        .collect();
    let from = |ip: &str| format!("Received request from {ip}");
    assert_eq!(
        kubia_logs
            .lines()
            .filter(|l| *l == from(&client_ip))
            .count(),
        4,
        "{kubia_logs}"
    );
    assert!(
        kubia_logs.lines().any(|l| l == from("10.244.0.1")),
        "{kubia_logs}"
    );

    // A deleted service's listener closes.
    c.kubectl(&["delete", "svc", "kubia-lb"]).ok();
    poll("the LoadBalancer's port to close", || {
        TcpListener::bind((Ipv4Addr::LOCALHOST, lb_port)).ok()
    });
}

#[test]
fn a_taken_port_leaves_the_load_balancer_pending() {
    let c = Cluster::start(&[]);
    let taken = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    let port = taken.local_addr().expect("local address").port();
    c.stdin_kubectl(
        &["apply", "-f", "-"],
        &service("busy", "LoadBalancer", port),
    )
    .ok();
    let events = poll("the SyncLoadBalancerFailed event", || {
        let out = c.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=busy",
        ]);
        let text = out.ok().to_string();
        text.contains("SyncLoadBalancerFailed").then_some(text)
    });
    assert!(events.contains(&format!("127.0.0.1:{port}")), "{events}");
    assert!(events.contains("Warning"), "{events}");
    let get = c.kubectl(&["get", "svc", "busy", "--no-headers"]);
    let row: Vec<&str> = get.ok().split_whitespace().collect();
    assert_eq!(row[3], "<pending>", "{}", get.stdout);

    // Freed, the port is taken up at the next retry.
    drop(taken);
    poll("the LoadBalancer's ingress", || {
        let svc = svc_json(&c, "busy");
        (svc["status"]["loadBalancer"]["ingress"][0]["ip"] == "127.0.0.1").then_some(())
    });
    let get = c.kubectl(&["get", "svc", "busy", "--no-headers"]);
    assert!(get.ok().contains(" 127.0.0.1 "), "{}", get.stdout);
}
