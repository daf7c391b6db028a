//! Container probes, as the kubelet runs them: exec (a command in the
//! container, success on exit 0), httpGet (a GET to the pod's port,
//! success on 200–399) and tcpSocket (a connection that opens), each
//! inside the pod's namespace: the port is looked up in the pod's port
//! table and dialled on the real loopback socket behind it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::daemon::exec::ExecConfig;
use crate::daemon::supervisor::Supervisor;
use crate::net::{Namespace, Proto};
use crate::sandbox::Stdio;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Startup => "Startup",
            Self::Liveness => "Liveness",
            Self::Readiness => "Readiness",
        }
    }
}

#[derive(Debug, Clone)]
enum Action {
    Exec(Vec<String>),
    Http {
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        port: u16,
    },
}

/// One probe of a container, with Kubernetes' defaults.
#[derive(Debug, Clone)]
pub struct Probe {
    pub kind: Kind,
    action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// One probe's result, as the worker hears it.
#[derive(Debug)]
pub struct Outcome {
    pub container: usize,
    /// The supervisor container the probe ran against.
    pub id: String,
    pub kind: Kind,
    /// `Err` holds what failed, as the Unhealthy event says it.
    pub result: Result<(), String>,
}

/// A named or numbered port of the container.
fn port_of(v: &Value, container: &Value) -> Result<u16, String> {
    if let Some(n) = v.as_u64() {
        return u16::try_from(n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("port {n} is out of range"));
    }
    let name = v.as_str().unwrap_or_default();
    if let Ok(n) = name.parse::<u16>() {
        return Ok(n);
    }
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("the container has no port named {name:?}"))
}

fn secs(v: &Value, default: u64) -> Duration {
    Duration::from_secs(v.as_u64().unwrap_or(default))
}

impl Probe {
    /// The container's probe of `kind`, if it has one.
    pub fn of(container: &Value, kind: Kind) -> Result<Option<Self>, String> {
        let field = match kind {
            Kind::Startup => "startupProbe",
            Kind::Liveness => "livenessProbe",
            Kind::Readiness => "readinessProbe",
        };
        let p = &container[field];
        if !p.is_object() {
            return Ok(None);
        }
        let action = if let Some(cmd) = p["exec"]["command"].as_array() {
            let argv: Vec<String> = cmd
                .iter()
                .filter_map(|c| c.as_str().map(str::to_string))
                .collect();
            if argv.is_empty() {
                return Err(format!("{field}: exec has no command"));
            }
            Action::Exec(argv)
        } else if p["httpGet"].is_object() {
            let h = &p["httpGet"];
            if h["scheme"].as_str().is_some_and(|s| s != "HTTP") {
                return Err(format!("{field}: only the HTTP scheme is served"));
            }
            let headers = h["httpHeaders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| {
                    Some((
                        x["name"].as_str()?.to_string(),
                        x["value"].as_str()?.to_string(),
                    ))
                })
                .collect();
            Action::Http {
                port: port_of(&h["port"], container).map_err(|e| format!("{field}: {e}"))?,
                path: h["path"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or("/")
                    .to_string(),
                headers,
            }
        } else if p["tcpSocket"].is_object() {
            Action::Tcp {
                port: port_of(&p["tcpSocket"]["port"], container)
                    .map_err(|e| format!("{field}: {e}"))?,
            }
        } else {
            return Err(format!("{field}: it needs exec, httpGet or tcpSocket"));
        };
        Ok(Some(Self {
            kind,
            action,
            initial_delay: secs(&p["initialDelaySeconds"], 0),
            period: secs(&p["periodSeconds"], 10).max(Duration::from_secs(1)),
            timeout: secs(&p["timeoutSeconds"], 1).max(Duration::from_secs(1)),
            success_threshold: p["successThreshold"].as_u64().unwrap_or(1).max(1) as u32,
            failure_threshold: p["failureThreshold"].as_u64().unwrap_or(3).max(1) as u32,
        }))
    }

    /// Runs the probe every period until the task is aborted, reporting
    /// each result.
    pub fn spawn(
        self,
        container: usize,
        id: String,
        sup: Arc<Supervisor>,
        ns: Arc<Namespace>,
        tx: mpsc::UnboundedSender<Outcome>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            tokio::time::sleep(self.initial_delay).await;
            loop {
                let result =
                    match tokio::time::timeout(self.timeout, self.check(&sup, &id, &ns)).await {
                        Ok(r) => r,
                        Err(_) => Err(format!(
                            "timeout: the probe took longer than {}s",
                            self.timeout.as_secs()
                        )),
                    };
                let sent = tx.send(Outcome {
                    container,
                    id: id.clone(),
                    kind: self.kind,
                    result,
                });
                if sent.is_err() {
                    return;
                }
                tokio::time::sleep(self.period).await;
            }
        })
    }

    async fn check(&self, sup: &Arc<Supervisor>, id: &str, ns: &Namespace) -> Result<(), String> {
        match &self.action {
            Action::Exec(argv) => exec(sup, id, argv, self.timeout).await,
            Action::Tcp { port } => {
                let addr = real(ns, *port)?;
                TcpStream::connect(addr)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("dial tcp {}:{port}: {e}", ns.ip()))
            }
            Action::Http {
                port,
                path,
                headers,
            } => http(ns, *port, path, headers).await,
        }
    }
}

/// The real socket behind the pod's `port`, or the error a dial gets.
fn real(ns: &Namespace, port: u16) -> Result<std::net::SocketAddr, String> {
    ns.lookup(Proto::Tcp, port)
        .ok_or_else(|| format!("dial tcp {}:{port}: connect: connection refused", ns.ip()))
}

async fn exec(
    sup: &Arc<Supervisor>,
    id: &str,
    argv: &[String],
    timeout: Duration,
) -> Result<(), String> {
    let config = ExecConfig {
        argv: argv.to_vec(),
        ..ExecConfig::default()
    };
    let instance = sup.exec_create(id, config).map_err(|e| e.to_string())?;
    let run = sup.exec_run(&instance, Stdio::default());
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(code)) => Err(format!("command {argv:?} exited with {code}")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => {
            instance.kill();
            Err(format!("command {argv:?} timed out"))
        }
    }
}

async fn http(
    ns: &Namespace,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let url = format!("http://{}:{port}{path}", ns.ip());
    let addr = real(ns, port).map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut conn = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}:{port}\r\nUser-Agent: kube-probe/{}\r\nAccept: */*\r\nConnection: close\r\n",
        ns.ip(),
        crate::kube::discovery::KUBE_VERSION
    );
    for (k, v) in headers {
        if !k.contains(['\r', '\n']) && !v.contains(['\r', '\n']) {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("\r\n");
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("Get \"{url}\": {e}"))?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = conn
            .read(&mut buf)
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let code = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("Get \"{url}\": malformed HTTP response"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("HTTP probe failed with statuscode: {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn probes_parse_with_defaults_and_named_ports() {
        let c = json!({"name": "a", "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"port": "http", "path": "/healthz"}, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 8080}},
            "startupProbe": {"exec": {"command": []}}});
        let r = Probe::of(&c, Kind::Readiness)
            .expect("valid")
            .expect("some");
        assert_eq!(r.period, Duration::from_secs(2));
        assert_eq!(r.failure_threshold, 3);
        assert!(matches!(r.action, Action::Http { port: 8080, .. }));
        assert!(Probe::of(&c, Kind::Liveness).expect("valid").is_some());
        assert!(Probe::of(&c, Kind::Startup).is_err());
        let bad = json!({"readinessProbe": {"httpGet": {"port": "nope"}}});
        assert!(Probe::of(&bad, Kind::Readiness).is_err());
        assert!(
            Probe::of(&json!({}), Kind::Readiness)
                .expect("none")
                .is_none()
        );
    }
}
