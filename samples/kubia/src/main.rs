//! The "kubia" server from Kubernetes in Action as a WASI component: answers
//! every HTTP request on port 8080 with `you've hit <hostname>`, so wrun's
//! service and load-balancing examples can show which replica replied. Like
//! the original node.js server, it serves many connections at once and keeps
//! them alive between requests.
//!
//! The server needs `wasi:sockets`, so it exists on wasm32-wasip2 only;
//! elsewhere the crate builds (for its tests) into a program that says so.

#[cfg(any(test, all(target_os = "wasi", target_env = "p2")))]
mod http;
#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod server;

use std::io::{self, Write as _};

fn main() {
    println!("Kubia server starting...");
    let _ = io::stdout().flush();
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    if let Err(e) = serve(&hostname) {
        eprintln!("kubia: {e}");
        std::process::exit(1);
    }
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
fn serve(hostname: &str) -> Result<(), String> {
    server::run(hostname)
}

#[cfg(not(all(target_os = "wasi", target_env = "p2")))]
fn serve(_hostname: &str) -> Result<(), String> {
    Err("kubia serves over wasi:sockets; build it for wasm32-wasip2".to_string())
}
