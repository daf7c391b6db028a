//! The network probes: connections and lookups, each reported as it went.
//! Whether a connection should have worked is the test's to say (it knows
//! what it granted); the probe says what happened.

use std::net::{TcpStream, ToSocketAddrs};

use crate::Report;

pub fn connect(addrs: &[&str]) -> Report {
    let mut r = Report::new("connect");
    for a in addrs {
        let resolved = match a.to_socket_addrs() {
            Ok(mut it) => it.next(),
            Err(e) => {
                r.tried(
                    format!("connect {a}"),
                    format!("refused: cannot resolve: {e}"),
                );
                continue;
            }
        };
        let Some(sa) = resolved else {
            r.tried(format!("connect {a}"), "refused: no address");
            continue;
        };
        match TcpStream::connect(sa) {
            Ok(s) => {
                let peer = s.peer_addr().map(|p| p.to_string()).unwrap_or_default();
                r.tried(format!("connect {a}"), format!("connected to {peer}"));
            }
            Err(e) => r.tried(format!("connect {a}"), format!("refused: {e}")),
        }
    }
    r
}

pub fn resolve(names: &[&str]) -> Report {
    let mut r = Report::new("resolve");
    for n in names {
        match (*n, 80).to_socket_addrs() {
            Ok(it) => {
                let ips: Vec<String> = it.map(|a| a.ip().to_string()).collect();
                r.tried(format!("resolve {n}"), ips.join(","));
            }
            Err(e) => r.tried(format!("resolve {n}"), format!("failed: {e}")),
        }
    }
    r
}
