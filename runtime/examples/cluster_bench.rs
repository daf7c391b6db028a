//! The cluster benchmarks' measuring half, for `make bench` (bench/cluster.sh
//! drives it). It speaks HTTPS to the cluster's API on 127.0.0.1 with
//! rustls (ring), as a client would, and prints its figures as one JSON
//! object on stdout (milliseconds unless named otherwise).
//!
//! ```text
//! cluster_bench start WRUN SCRATCH RUNS
//!     RUNS times each: a fresh state root under SCRATCH, then `WRUN cluster
//!     start` until a client sees the node Ready, first with the daemon's
//!     own start (no daemon runs), then with a daemon already running
//!     (started, untimed, by `wrun ps`). Each root's daemon is stopped
//!     (`wrun daemon stop`) and the root removed.
//! cluster_bench api KUBECONFIG KUBECTL CACHE_DIR PODS TOTAL WATCHERS ROUNDS
//!     against a running cluster with the kubia image: PODS pods one at a
//!     time and PODS at once, each from its create to Ready as a watch sees
//!     it (and Ready's lastTransitionTime - creationTimestamp); then pods up
//!     to TOTAL, listed as a Table (raw, and by `KUBECTL get pods`); then
//!     WATCHERS watches of one ConfigMap and ROUNDS changes to it, from each
//!     change to its arrival at every watcher; last, 10 more pods one at a
//!     time beside the TOTAL.
//! cluster_bench scale KUBECONFIG RC_MANIFEST RUNS COUNT...
//!     the ReplicationController of RC_MANIFEST created with replicas 0
//!     (or set to 0), one untimed 0 -> 1 -> 0 (kubia compiled), then RUNS
//!     times per COUNT: its `/scale` patched to COUNT, timed from the
//!     PATCH sent to the last of its pods Ready in a watch (and to the
//!     RC's status.readyReplicas = COUNT in another), then patched back
//!     to 0, timed to the last pod's DELETED event (and to
//!     status.replicas = 0). Leaves the RC at 0 replicas.
//! ```

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

/// What kubectl asks for when it prints a list (server-side Tables).
const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
/// A guard against hangs (not a measure): a pod not Ready by then fails
/// the run.
const HANG: Duration = Duration::from_secs(120);
const NS: &str = "/api/v1/namespaces/default";

// --- the API over HTTPS -------------------------------------------------------

/// Where the kubeconfig's current context points, and its credentials.
#[derive(Clone)]
struct Api {
    addr: SocketAddr,
    tls: TlsConnector,
    auth: HeaderValue,
    host: HeaderValue,
}

fn kubeconfig_entry<'a>(
    doc: &'a serde_yaml_ng::Value,
    list: &str,
    name: &str,
) -> Result<&'a serde_yaml_ng::Value> {
    doc[list]
        .as_sequence()
        .into_iter()
        .flatten()
        .find(|e| e["name"].as_str() == Some(name))
        .map(|e| &e[list.trim_end_matches('s')])
        .with_context(|| format!("no {list} entry named {name:?} in the kubeconfig"))
}

impl Api {
    fn from_kubeconfig(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)?;
        let current = doc["current-context"]
            .as_str()
            .context("no current-context in the kubeconfig")?;
        let ctx = kubeconfig_entry(&doc, "contexts", current)?;
        let cluster = kubeconfig_entry(&doc, "clusters", ctx["cluster"].as_str().unwrap_or(""))?;
        let user = kubeconfig_entry(&doc, "users", ctx["user"].as_str().unwrap_or(""))?;
        let server = cluster["server"].as_str().context("no server")?;
        let hostport = server
            .strip_prefix("https://127.0.0.1:")
            .with_context(|| format!("the benchmark dials 127.0.0.1 only, not {server}"))?;
        let port: u16 = hostport.trim_end_matches('/').parse()?;
        let ca_pem = base64::engine::general_purpose::STANDARD.decode(
            cluster["certificate-authority-data"]
                .as_str()
                .context("no certificate-authority-data")?,
        )?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca_pem) {
            roots.add(cert?)?;
        }
        let token = user["token"]
            .as_str()
            .context("no token in the kubeconfig")?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            tls: TlsConnector::from(Arc::new(config)),
            auth: HeaderValue::from_str(&format!("Bearer {token}"))?,
            host: HeaderValue::from_str(&format!("127.0.0.1:{port}"))?,
        })
    }

    /// One keep-alive HTTP/1.1 connection over TLS.
    async fn connect(&self) -> Result<Conn> {
        let tcp = TcpStream::connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
        let tls = self.tls.connect(name, tcp).await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            api: self.clone(),
        })
    }
}

struct Conn {
    send: SendRequest<Full<Bytes>>,
    api: Api,
}

impl Conn {
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Response<Incoming>> {
        self.send.ready().await?;
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.api.host.clone())
            .header(AUTHORIZATION, self.api.auth.clone())
            .header(ACCEPT, accept);
        let bytes = match body {
            Some((ct, b)) => {
                req = req.header(CONTENT_TYPE, ct);
                b
            }
            None => Vec::new(),
        };
        Ok(self
            .send
            .send_request(req.body(Full::new(Bytes::from(bytes)))?)
            .await?)
    }

    /// A whole answer: its body, which must come with a 2xx.
    async fn call(
        &mut self,
        method: Method,
        path: &str,
        accept: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Bytes> {
        let what = format!("{method} {path}");
        let resp = self.send(method, path, accept, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        ensure!(
            status.is_success(),
            "{what}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(body)
    }

    async fn json(&mut self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let body = body.map(|b| {
            (
                "application/json",
                serde_json::to_vec(b).unwrap_or_default(),
            )
        });
        let bytes = self.call(method, path, "application/json", body).await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn merge_patch(&mut self, path: &str, patch: &Value) -> Result<Value> {
        let body = Some((
            "application/merge-patch+json",
            serde_json::to_vec(patch).unwrap_or_default(),
        ));
        let bytes = self
            .call(Method::PATCH, path, "application/json", body)
            .await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A watch: its lines as they arrive, each with the time it did.
    async fn watch(mut self, path: &str) -> Result<Lines> {
        let resp = self
            .send(Method::GET, path, "application/json", None)
            .await?;
        ensure!(
            resp.status().is_success(),
            "watch {path}: {}",
            resp.status()
        );
        Ok(Lines {
            body: resp.into_body(),
            buf: Vec::new(),
            _conn: self,
        })
    }
}

struct Lines {
    body: Incoming,
    buf: Vec<u8>,
    _conn: Conn,
}

impl Lines {
    /// The next line, and when the bytes that completed it arrived.
    async fn next(&mut self) -> Result<Option<(Value, Instant)>> {
        let mut at = Instant::now();
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(Some((serde_json::from_slice(&line)?, at)));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    at = Instant::now();
                    if let Ok(data) = frame?.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

// --- figures --------------------------------------------------------------------

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The nearest-rank percentile of `v` (sorted in place).
fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// p50, p90, p99, min, max and the count of a sample.
fn summary(mut v: Vec<f64>) -> Value {
    let n = v.len();
    json!({
        "n": n,
        "p50": pct(&mut v, 50.0),
        "p90": pct(&mut v, 90.0),
        "p99": pct(&mut v, 99.0),
        "min": v.first().copied().unwrap_or(f64::NAN),
        "max": v.last().copied().unwrap_or(f64::NAN),
        "mean": v.iter().sum::<f64>() / n.max(1) as f64,
    })
}

// --- cluster start ----------------------------------------------------------------

fn wrun(bin: &Path, root: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new(bin)
        .args(args)
        .env("WRUN_ROOT", root)
        .env("KUBECONFIG", root.join("kubeconfig"))
        .env_remove("WRUN_LOG")
        .env_remove("WRUN_HOST")
        .env_remove("WRUN_NO_START")
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "wrun {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn node_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// One fresh start: `wrun cluster start` on an empty root until a client
/// sees the node Ready. The times to the command's exit and to Ready.
async fn one_start(bin: &Path, root: &Path, daemon_first: bool) -> Result<(f64, f64)> {
    std::fs::create_dir_all(root)?;
    if daemon_first {
        wrun(bin, root, &["ps", "-q"])?;
    }
    let began = Instant::now();
    wrun(bin, root, &["cluster", "start"])?;
    let exited = began.elapsed();
    let api = Api::from_kubeconfig(&root.join("kubeconfig"))?;
    let mut conn = api.connect().await?;
    loop {
        let node = conn.json(Method::GET, "/api/v1/nodes/wrun", None).await?;
        if node_ready(&node) {
            break;
        }
        ensure!(began.elapsed() < HANG, "the node is not Ready");
    }
    let ready = began.elapsed();
    drop(conn);
    wrun(bin, root, &["daemon", "stop"])?;
    let _ = std::fs::remove_dir_all(root);
    Ok((ms(exited), ms(ready)))
}

async fn starts(bin: PathBuf, scratch: PathBuf, runs: usize) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for (key, daemon_first) in [("with_daemon_start", false), ("daemon_running", true)] {
        // One untimed start first: the binary and its libraries in the page cache.
        one_start(&bin, &scratch.join(format!("{key}-warmup")), daemon_first).await?;
        let (mut exit, mut ready) = (Vec::new(), Vec::new());
        for i in 0..runs {
            let (e, r) = one_start(&bin, &scratch.join(format!("{key}-{i}")), daemon_first).await?;
            exit.push(e);
            ready.push(r);
        }
        out.insert(
            key.to_string(),
            json!({"to_exit": summary(exit), "to_ready": summary(ready)}),
        );
    }
    Ok(Value::Object(out))
}

// --- pods ------------------------------------------------------------------------

fn pod(name: &str, set: &str) -> Value {
    // What `kubectl run NAME --image=kubia --port=8080` sends, plus a label.
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"run": name, "bench": set}},
        "spec": {
            "containers": [{"name": name, "image": "kubia", "ports": [{"containerPort": 8080}]}],
            "restartPolicy": "Always",
            "dnsPolicy": "ClusterFirst",
        },
    })
}

fn ready_condition(p: &Value) -> Option<&Value> {
    p["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// Watches the pods labelled `bench=SET` from `rv`, sending each pod's
/// name once, with when the watch saw it Ready.
async fn ready_watch(
    api: &Api,
    set: &str,
    rv: &str,
) -> Result<mpsc::UnboundedReceiver<(String, Instant)>> {
    let path = format!(
        "{NS}/pods?watch=true&resourceVersion={rv}&labelSelector=bench%3D{set}&timeoutSeconds=3600"
    );
    let mut lines = api.connect().await?.watch(&path).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        while let Ok(Some((ev, at))) = lines.next().await {
            if ev["type"] == "ERROR" {
                eprintln!("cluster_bench: watch error: {ev}");
                return;
            }
            let p = &ev["object"];
            let name = p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if ev["type"] != "BOOKMARK"
                && ready_condition(p).is_some()
                && seen.insert(name.clone())
                && tx.send((name, at)).is_err()
            {
                return;
            }
        }
    });
    Ok(rx)
}

async fn list_rv(conn: &mut Conn, path: &str) -> Result<String> {
    let list = conn.json(Method::GET, path, None).await?;
    list["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_string)
        .context("a list without a resourceVersion")
}

/// Waits for `names` (all of them) to be Ready; when each was.
async fn await_ready(
    rx: &mut mpsc::UnboundedReceiver<(String, Instant)>,
    seen: &mut HashMap<String, Instant>,
    names: &[String],
) -> Result<()> {
    while names.iter().any(|n| !seen.contains_key(n)) {
        let missing = names.iter().filter(|n| !seen.contains_key(*n)).count();
        match tokio::time::timeout(HANG, rx.recv()).await {
            Ok(Some((name, at))) => {
                seen.insert(name, at);
            }
            Ok(None) => bail!("the watch ended with {missing} pods not Ready"),
            Err(_) => bail!("{missing} pods not Ready within {HANG:?}"),
        }
    }
    Ok(())
}

/// The server's own figure, in whole seconds: Ready's lastTransitionTime
/// minus creationTimestamp, for the pods labelled `bench=SET`.
async fn server_side(conn: &mut Conn, set: &str) -> Result<Value> {
    let list = conn
        .json(
            Method::GET,
            &format!("{NS}/pods?labelSelector=bench%3D{set}"),
            None,
        )
        .await?;
    let mut secs = Vec::new();
    for p in list["items"].as_array().into_iter().flatten() {
        let created = p["metadata"]["creationTimestamp"]
            .as_str()
            .context("creationTimestamp")?;
        let ready = ready_condition(p)
            .and_then(|c| c["lastTransitionTime"].as_str())
            .context("a Ready condition's lastTransitionTime")?;
        let d = chrono::DateTime::parse_from_rfc3339(ready)?
            - chrono::DateTime::parse_from_rfc3339(created)?;
        secs.push(d.num_milliseconds() as f64 / 1000.0);
    }
    Ok(summary(secs))
}

/// N pods (labelled `bench=SET`) one after another, each created only
/// once the last is Ready.
async fn pods_one_at_a_time(api: &Api, set: &str, n: usize) -> Result<Value> {
    let mut conn = api.connect().await?;
    let rv = list_rv(&mut conn, &format!("{NS}/pods?limit=1")).await?;
    let mut rx = ready_watch(api, set, &rv).await?;
    let mut seen = HashMap::new();
    let mut lat = Vec::new();
    for i in 0..n {
        let name = format!("{set}-{i}");
        let began = Instant::now();
        conn.json(Method::POST, &format!("{NS}/pods"), Some(&pod(&name, set)))
            .await?;
        await_ready(&mut rx, &mut seen, std::slice::from_ref(&name)).await?;
        lat.push(ms(seen[&name] - began));
    }
    // Whether a pod's start slows as pods accumulate: the median of each
    // tenth of the run, in order.
    let tenths: Vec<f64> = lat
        .chunks(n.div_ceil(10).max(1))
        .map(|c| pct(&mut c.to_vec(), 50.0))
        .collect();
    Ok(json!({
        "client_ms": summary(lat),
        "p50_by_tenth_ms": tenths,
        "server_s": server_side(&mut conn, set).await?,
    }))
}

/// PODS pods at once: CLIENTS connections each create their share back to
/// back; each pod's latency runs from its own create.
async fn pods_at_once(api: &Api, n: usize, clients: usize) -> Result<Value> {
    let mut conn = api.connect().await?;
    let rv = list_rv(&mut conn, &format!("{NS}/pods?limit=1")).await?;
    let mut rx = ready_watch(api, "burst", &rv).await?;
    let started: Arc<Mutex<HashMap<String, (Instant, Instant)>>> = Arc::default();
    let barrier = Arc::new(tokio::sync::Barrier::new(clients));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut conn = api.connect().await?;
        let started = started.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in (c..n).step_by(clients) {
                let name = format!("burst-{i}");
                let began = Instant::now();
                conn.json(
                    Method::POST,
                    &format!("{NS}/pods"),
                    Some(&pod(&name, "burst")),
                )
                .await?;
                let answered = Instant::now();
                started
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(name, (began, answered));
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let names: Vec<String> = (0..n).map(|i| format!("burst-{i}")).collect();
    let mut seen = HashMap::new();
    await_ready(&mut rx, &mut seen, &names).await?;
    let started = started.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let lat: Vec<f64> = names.iter().map(|n| ms(seen[n] - started[n].0)).collect();
    let create: Vec<f64> = started.values().map(|(s, a)| ms(*a - *s)).collect();
    let first = started.values().map(|t| t.0).min().context("no pods")?;
    let last_created = started.values().map(|t| t.1).max().context("no pods")?;
    let last_ready = seen.values().max().copied().context("no pods")?;
    Ok(json!({
        "clients": clients,
        "client_ms": summary(lat),
        "create_answered_ms": summary(create),
        "all_created_ms": ms(last_created - first),
        "all_ready_ms": ms(last_ready - first),
        "server_s": server_side(&mut conn, "burst").await?,
    }))
}

/// Creates pods (untimed) until the namespace holds `total`, and waits
/// for all of them to be Ready.
async fn fill(api: &Api, total: usize, clients: usize) -> Result<usize> {
    let mut conn = api.connect().await?;
    let list = conn.json(Method::GET, &format!("{NS}/pods"), None).await?;
    let have = list["items"].as_array().map_or(0, Vec::len);
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .context("rv")?
        .to_string();
    let n = total.saturating_sub(have);
    let mut rx = ready_watch(api, "fill", &rv).await?;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut conn = api.connect().await?;
        tasks.push(tokio::spawn(async move {
            for i in (c..n).step_by(clients) {
                let name = format!("fill-{i}");
                conn.json(
                    Method::POST,
                    &format!("{NS}/pods"),
                    Some(&pod(&name, "fill")),
                )
                .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let names: Vec<String> = (0..n).map(|i| format!("fill-{i}")).collect();
    await_ready(&mut rx, &mut HashMap::new(), &names).await?;
    Ok(have + n)
}

// --- lists ------------------------------------------------------------------------

/// `GET pods` RUNS times over one keep-alive connection, with `accept`.
async fn timed_lists(api: &Api, accept: &str, rows: usize, runs: usize) -> Result<Value> {
    let mut conn = api.connect().await?;
    let path = format!("{NS}/pods");
    let mut times = Vec::new();
    let mut bytes = 0;
    for i in 0..runs + 2 {
        let began = Instant::now();
        let body = conn.call(Method::GET, &path, accept, None).await?;
        let took = ms(began.elapsed());
        let v: Value = serde_json::from_slice(&body)?;
        let got = v["rows"]
            .as_array()
            .or_else(|| v["items"].as_array())
            .map_or(0, Vec::len);
        ensure!(got == rows, "the list has {got} rows, not {rows}");
        bytes = body.len();
        // Two untimed rounds first.
        if i >= 2 {
            times.push(took);
        }
    }
    Ok(json!({"ms": summary(times), "bytes": bytes}))
}

/// `kubectl get pods` RUNS times (after one untimed run that fills its
/// discovery cache), each checked to print a header and `rows` rows.
fn kubectl_get(
    kubectl: &str,
    kubeconfig: &Path,
    cache: &Path,
    rows: usize,
    runs: usize,
) -> Result<Value> {
    let mut times = Vec::new();
    for i in 0..runs + 1 {
        let began = Instant::now();
        let out = Command::new(kubectl)
            .args(["get", "pods", "--kubeconfig"])
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(cache)
            .stdin(Stdio::null())
            .output()?;
        let took = ms(began.elapsed());
        ensure!(
            out.status.success(),
            "kubectl get pods: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines = out
            .stdout
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        ensure!(
            lines == rows + 1,
            "kubectl printed {lines} lines, not {}",
            rows + 1
        );
        if i >= 1 {
            times.push(took);
        }
    }
    Ok(summary(times))
}

// --- watch fan-out -------------------------------------------------------------------

/// WATCHERS watches of one ConfigMap; ROUNDS changes, each timed from the
/// moment its PATCH is sent to its arrival at every watcher.
async fn fan_out(api: &Api, watchers: usize, rounds: usize) -> Result<Value> {
    let mut conn = api.connect().await?;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fanout"}, "data": {"n": "-1"}});
    let made = conn
        .json(Method::POST, &format!("{NS}/configmaps"), Some(&cm))
        .await?;
    let rv = made["metadata"]["resourceVersion"]
        .as_str()
        .context("rv")?
        .to_string();
    let (tx, mut rx) = mpsc::unbounded_channel::<(usize, i64, Instant)>();
    let path = format!(
        "{NS}/configmaps?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dfanout&timeoutSeconds=3600"
    );
    for w in 0..watchers {
        // Each watch is registered before its answer's headers come back.
        let mut lines = api.connect().await?.watch(&path).await?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(Some((ev, at))) = lines.next().await {
                if ev["type"] != "MODIFIED" {
                    continue;
                }
                let n = ev["object"]["data"]["n"]
                    .as_str()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(-1);
                if tx.send((w, n, at)).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let path = format!("{NS}/configmaps/fanout");
    let (mut all, mut first, mut median_watcher, mut patch_rtt) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds as i64 + 2 {
        let began = Instant::now();
        conn.merge_patch(&path, &json!({"data": {"n": round.to_string()}}))
            .await?;
        patch_rtt.push(ms(began.elapsed()));
        let mut arrivals = Vec::with_capacity(watchers);
        while arrivals.len() < watchers {
            match tokio::time::timeout(HANG, rx.recv()).await {
                Ok(Some((_, n, at))) if n == round => arrivals.push(ms(at - began)),
                Ok(Some(_)) => {}
                Ok(None) => bail!("a watcher ended"),
                Err(_) => bail!(
                    "round {round}: {} of {watchers} watchers got the change",
                    arrivals.len()
                ),
            }
        }
        // Two untimed rounds first.
        if round >= 2 {
            first.push(pct(&mut arrivals, 0.0));
            median_watcher.push(pct(&mut arrivals, 50.0));
            all.push(pct(&mut arrivals, 100.0));
        } else {
            patch_rtt.pop();
        }
    }
    Ok(json!({
        "watchers": watchers,
        "to_all_ms": summary(all),
        "to_first_ms": summary(first),
        "to_median_watcher_ms": summary(median_watcher),
        "patch_round_trip_ms": summary(patch_rtt),
    }))
}

// --- scaling a ReplicationController ------------------------------------------------

/// What the scale runs watch: the RC's pods and the RC itself.
enum Seen {
    Pod(Value, Instant),
    Rc(Value, Instant),
}

/// Watches `path` (a watch URL without its resourceVersion) from `rv`,
/// each event into `tx` as `wrap` makes it, until the task returned is
/// aborted (which closes the watch's connection). A watch the server
/// ends (it cuts off a watcher that falls too far behind) is resumed
/// from the last resourceVersion seen, as client-go's reflectors do;
/// `restarts` counts those.
async fn forward_watch(
    api: &Api,
    path: String,
    rv: String,
    tx: mpsc::UnboundedSender<Seen>,
    wrap: fn(Value, Instant) -> Seen,
    restarts: Arc<AtomicUsize>,
) -> Result<tokio::task::JoinHandle<()>> {
    let url = move |rv: &str| format!("{path}&resourceVersion={rv}");
    let mut lines = api.connect().await?.watch(&url(&rv)).await?;
    let api = api.clone();
    Ok(tokio::spawn(async move {
        let mut rv = rv;
        loop {
            while let Ok(Some((ev, at))) = lines.next().await {
                if ev["type"] == "ERROR" {
                    eprintln!("cluster_bench: watch error: {ev}");
                    return;
                }
                if let Some(v) = ev["object"]["metadata"]["resourceVersion"].as_str() {
                    rv = v.to_string();
                }
                if ev["type"] != "BOOKMARK" && tx.send(wrap(ev, at)).is_err() {
                    return;
                }
            }
            restarts.fetch_add(1, Ordering::Relaxed);
            let again = async { api.connect().await?.watch(&url(&rv)).await };
            match again.await {
                Ok(l) => lines = l,
                Err(e) => {
                    eprintln!("cluster_bench: cannot resume a watch from {rv}: {e:#}");
                    return;
                }
            }
        }
    }))
}

fn terminating_pod(p: &Value) -> bool {
    p["metadata"].get("deletionTimestamp").is_some()
}

/// One scale of the RC `name` (pods labelled `selector`) from `from`
/// pods (all Ready, or none) to `to`, timed from the PATCH sent. Up from
/// 0: to the last pod Ready (and the RC's readyReplicas = `to`); down to
/// 0: to the last of the `from` pods' DELETED (and the RC's replicas = 0).
async fn scale_once(
    api: &Api,
    conn: &mut Conn,
    name: &str,
    selector: &str,
    (from, to): (usize, usize),
) -> Result<Value> {
    let rc_path = format!("{NS}/replicationcontrollers");
    let rv = list_rv(
        conn,
        &format!("{rc_path}?fieldSelector=metadata.name%3D{name}"),
    )
    .await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let restarts: Arc<AtomicUsize> = Arc::default();
    let pod_watch = forward_watch(
        api,
        format!("{NS}/pods?watch=true&labelSelector={selector}&timeoutSeconds=3600"),
        rv.clone(),
        tx.clone(),
        Seen::Pod,
        restarts.clone(),
    )
    .await?;
    let rc_watch = forward_watch(
        api,
        format!("{rc_path}?watch=true&fieldSelector=metadata.name%3D{name}&timeoutSeconds=3600"),
        rv,
        tx,
        Seen::Rc,
        restarts.clone(),
    )
    .await?;
    let began = Instant::now();
    conn.merge_patch(
        &format!("{rc_path}/{name}/scale"),
        &json!({"spec": {"replicas": to}}),
    )
    .await?;
    let answered = ms(began.elapsed());
    let result = scale_events(&mut rx, began, (from, to)).await;
    pod_watch.abort();
    rc_watch.abort();
    let restarts = restarts.load(Ordering::Relaxed);
    if restarts > 0 {
        eprintln!(
            "cluster_bench: scale to {to}: the server ended a watch {restarts} times (resumed)"
        );
    }
    let (added, ready, doomed, gone, rc_done) = result?;
    // The pods that were there: when the first, the median one and the
    // last reached the state the scale waits for.
    let marks = |m: &HashMap<String, f64>| {
        let mut v: Vec<f64> = m.values().copied().collect();
        json!({
            "n": v.len(),
            "first": pct(&mut v, 0.0),
            "half": pct(&mut v, 50.0),
            "last": pct(&mut v, 100.0),
        })
    };
    Ok(if to > 0 {
        json!({
            "to": to,
            "patch_answered_ms": answered,
            "watch_restarts": restarts,
            "all_ready_ms": marks(&ready)["last"],
            "rc_ready_ms": rc_done,
            "added_ms": marks(&added),
            "ready_ms": marks(&ready),
        })
    } else {
        json!({
            "to": to,
            "patch_answered_ms": answered,
            "watch_restarts": restarts,
            "all_gone_ms": marks(&gone)["last"],
            "rc_zero_ms": rc_done,
            "terminating_ms": marks(&doomed),
            "gone_ms": marks(&gone),
        })
    })
}

/// Per pod, when (ms after `began`) it was added, Ready, terminating and
/// gone; and when the RC's status said the scale was done.
type ScaleTimes = (
    HashMap<String, f64>,
    HashMap<String, f64>,
    HashMap<String, f64>,
    HashMap<String, f64>,
    f64,
);

/// Reads the watches' events until the scale from `from` to `to` is done.
async fn scale_events(
    rx: &mut mpsc::UnboundedReceiver<Seen>,
    began: Instant,
    (from, to): (usize, usize),
) -> Result<ScaleTimes> {
    // Pod name -> when it was first seen (ADDED), Ready, terminating, gone.
    let mut added: HashMap<String, f64> = HashMap::new();
    let mut ready: HashMap<String, f64> = HashMap::new();
    let mut doomed: HashMap<String, f64> = HashMap::new();
    let mut gone: HashMap<String, f64> = HashMap::new();
    let mut rc_done: Option<f64> = None;
    let up = to > 0;
    loop {
        let pods_done = if up {
            ready.len() >= to
        } else {
            gone.len() >= from
        };
        if pods_done && rc_done.is_some() {
            break;
        }
        let seen = match tokio::time::timeout_at((began + HANG).into(), rx.recv()).await {
            Ok(Some(seen)) => seen,
            Ok(None) => bail!("a watch ended"),
            Err(_) => bail!(
                "scale to {to}: after {HANG:?}, {} pods added, {} Ready, {} terminating, {} gone; the RC {}",
                added.len(),
                ready.len(),
                doomed.len(),
                gone.len(),
                if rc_done.is_some() {
                    "done"
                } else {
                    "not done"
                }
            ),
        };
        match seen {
            Seen::Pod(ev, at) => {
                let t = ms(at - began);
                let p = &ev["object"];
                let pod = p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if ev["type"] == "ADDED" {
                    added.entry(pod.clone()).or_insert(t);
                }
                if ev["type"] == "DELETED" {
                    doomed.entry(pod.clone()).or_insert(t);
                    gone.entry(pod).or_insert(t);
                } else if terminating_pod(p) {
                    doomed.entry(pod).or_insert(t);
                } else if ready_condition(p).is_some() {
                    ready.entry(pod).or_insert(t);
                }
            }
            Seen::Rc(ev, at) => {
                let st = &ev["object"]["status"];
                let n = |k: &str| st[k].as_u64().unwrap_or(0) as usize;
                let done = if up {
                    n("readyReplicas") == to && n("replicas") == to
                } else {
                    n("replicas") == 0
                };
                if done && rc_done.is_none() {
                    rc_done = Some(ms(at - began));
                }
            }
        }
    }
    Ok((added, ready, doomed, gone, rc_done.unwrap_or(f64::NAN)))
}

async fn scale_bench(args: &[String]) -> Result<Value> {
    let [kubeconfig, manifest, runs, counts @ ..] = args else {
        bail!("usage: cluster_bench scale KUBECONFIG RC_MANIFEST RUNS COUNT...");
    };
    let runs: usize = runs.parse()?;
    let counts: Vec<usize> = counts.iter().map(|c| c.parse()).collect::<Result<_, _>>()?;
    ensure!(!counts.is_empty(), "no COUNT given");
    let api = Api::from_kubeconfig(Path::new(kubeconfig))?;
    let text = std::fs::read_to_string(manifest).with_context(|| manifest.to_string())?;
    let mut rc: Value = serde_yaml_ng::from_str(&text).with_context(|| manifest.to_string())?;
    ensure!(
        rc["kind"] == "ReplicationController",
        "{manifest}: not a ReplicationController"
    );
    rc["spec"]["replicas"] = json!(0);
    let name = rc["metadata"]["name"]
        .as_str()
        .context("no name")?
        .to_string();
    let selector = rc["spec"]["selector"]
        .as_object()
        .context("no spec.selector")?
        .iter()
        .map(|(k, v)| format!("{k}%3D{}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("%2C");
    let mut conn = api.connect().await?;
    let path = format!("{NS}/replicationcontrollers");
    let resp = conn
        .send(
            Method::POST,
            &path,
            "application/json",
            Some(("application/json", serde_json::to_vec(&rc)?)),
        )
        .await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    match status.as_u16() {
        200..=299 => {}
        // There already: set to 0, and wait for its pods to go.
        409 => {
            conn.merge_patch(
                &format!("{path}/{name}/scale"),
                &json!({"spec": {"replicas": 0}}),
            )
            .await?;
        }
        _ => bail!("POST {path}: {status}: {}", String::from_utf8_lossy(&body)),
    }
    let wait_empty = |mut conn: Conn| {
        let selector = selector.clone();
        async move {
            let began = Instant::now();
            loop {
                let list = conn
                    .json(
                        Method::GET,
                        &format!("{NS}/pods?labelSelector={selector}"),
                        None,
                    )
                    .await?;
                if list["items"].as_array().is_none_or(Vec::is_empty) {
                    return anyhow::Ok(conn);
                }
                ensure!(began.elapsed() < HANG, "the RC's pods did not go");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let mut conn = wait_empty(conn).await?;
    // Untimed: kubia compiled and cached, the watches warm.
    eprintln!("cluster_bench: warm-up, {name} 0 -> 1 -> 0");
    scale_once(&api, &mut conn, &name, &selector, (0, 1)).await?;
    scale_once(&api, &mut conn, &name, &selector, (1, 0)).await?;
    let mut out = Vec::new();
    for &count in &counts {
        let (mut ups, mut downs) = (Vec::new(), Vec::new());
        for run in 0..runs {
            eprintln!(
                "cluster_bench: {name} 0 -> {count} -> 0 ({} of {runs})",
                run + 1
            );
            ups.push(scale_once(&api, &mut conn, &name, &selector, (0, count)).await?);
            downs.push(scale_once(&api, &mut conn, &name, &selector, (count, 0)).await?);
            conn = wait_empty(conn).await?;
        }
        let figure =
            |v: &[Value], key: &str| summary(v.iter().filter_map(|r| r[key].as_f64()).collect());
        out.push(json!({
            "count": count,
            "up": {
                "all_ready_ms": figure(&ups, "all_ready_ms"),
                "rc_ready_ms": figure(&ups, "rc_ready_ms"),
                "patch_answered_ms": figure(&ups, "patch_answered_ms"),
                "runs": ups,
            },
            "down": {
                "all_gone_ms": figure(&downs, "all_gone_ms"),
                "rc_zero_ms": figure(&downs, "rc_zero_ms"),
                "patch_answered_ms": figure(&downs, "patch_answered_ms"),
                "runs": downs,
            },
        }));
    }
    Ok(json!({"rc": name, "runs": runs, "scales": out}))
}

// --- main -------------------------------------------------------------------------------

async fn api_bench(args: &[String]) -> Result<Value> {
    let [kubeconfig, kubectl, cache, pods, total, watchers, rounds] = args else {
        bail!("usage: cluster_bench api KUBECONFIG KUBECTL CACHE_DIR PODS TOTAL WATCHERS ROUNDS");
    };
    let (pods, total): (usize, usize) = (pods.parse()?, total.parse()?);
    let (watchers, rounds): (usize, usize) = (watchers.parse()?, rounds.parse()?);
    let kubeconfig = PathBuf::from(kubeconfig);
    let api = Api::from_kubeconfig(&kubeconfig)?;

    // Untimed: one pod first, so kubia's code is compiled and cached.
    eprintln!("cluster_bench: warm-up pod");
    let mut conn = api.connect().await?;
    let rv = list_rv(&mut conn, &format!("{NS}/pods?limit=1")).await?;
    let mut rx = ready_watch(&api, "warmup", &rv).await?;
    conn.json(
        Method::POST,
        &format!("{NS}/pods"),
        Some(&pod("warmup", "warmup")),
    )
    .await?;
    await_ready(&mut rx, &mut HashMap::new(), &["warmup".to_string()]).await?;

    eprintln!("cluster_bench: {pods} pods, one at a time");
    let seq = pods_one_at_a_time(&api, "seq", pods).await?;
    eprintln!("cluster_bench: {pods} pods at once");
    let burst = pods_at_once(&api, pods, 10).await?;
    eprintln!("cluster_bench: up to {total} pods");
    let rows = fill(&api, total, 16).await?;
    eprintln!("cluster_bench: listing {rows} pods");
    let table = timed_lists(&api, TABLE_ACCEPT, rows, 20).await?;
    let plain = timed_lists(&api, "application/json", rows, 20).await?;
    let kubectl = kubectl_get(kubectl, &kubeconfig, Path::new(cache), rows, 10)?;
    eprintln!("cluster_bench: {watchers} watchers, {rounds} changes");
    let fan = fan_out(&api, watchers, rounds).await?;
    eprintln!("cluster_bench: 10 pods, one at a time, beside {rows}");
    let late = pods_one_at_a_time(&api, "late", 10).await?;
    Ok(json!({
        "pods_one_at_a_time": seq,
        "pods_at_once": burst,
        "pods_one_at_a_time_beside_total": late,
        "list": {"rows": rows, "table": table, "json": plain, "kubectl_get_pods_ms": kubectl},
        "watch_fan_out": fan,
    }))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.first().map(String::as_str) {
        Some("start") => {
            let [_, bin, scratch, runs] = args.as_slice() else {
                bail!("usage: cluster_bench start WRUN SCRATCH RUNS");
            };
            starts(bin.into(), scratch.into(), runs.parse()?).await?
        }
        Some("api") => api_bench(&args[1..]).await?,
        Some("scale") => scale_bench(&args[1..]).await?,
        _ => return Err(anyhow!("usage: cluster_bench start|api|scale ...")),
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
