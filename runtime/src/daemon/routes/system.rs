//! `/_ping`, `/version`, `/info`, and wrun's own `/_wrun/shutdown`.

use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};

use crate::api::types::{Component, InfoResponse, Platform, VersionResponse};
use crate::api::{API_VERSION, MIN_API_VERSION};
use crate::daemon::error::DaemonError;
use crate::daemon::http::{self, Resp};
use crate::daemon::supervisor::Supervisor;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The OS a client should assume for paths and defaults.
fn os_type() -> &'static str {
    if cfg!(windows) { "windows" } else { "linux" }
}

/// `_ping`: "OK" plus the headers clients negotiate with. `Builder-Version`
/// 1 tells the docker CLI to use the classic builder API, which wrun serves.
pub fn ping(head: bool) -> Resp {
    let mut r = if head {
        http::empty(StatusCode::OK)
    } else {
        let mut r = http::empty(StatusCode::OK);
        *r.body_mut() = http::full("OK");
        r
    };
    let h = r.headers_mut();
    for (k, v) in [
        ("api-version", API_VERSION),
        ("builder-version", "1"),
        ("docker-experimental", "false"),
        ("ostype", os_type()),
        ("server", "wrun"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub fn version() -> Resp {
    let mut details = std::collections::BTreeMap::new();
    details.insert("ApiVersion".to_string(), API_VERSION.to_string());
    details.insert("MinAPIVersion".to_string(), MIN_API_VERSION.to_string());
    for (k, v) in [
        ("Os", os_type()),
        ("Arch", std::env::consts::ARCH),
        ("GoVersion", "none (Rust)"),
        ("GitCommit", "-"),
        ("KernelVersion", "-"),
        ("BuildTime", "-"),
        ("Experimental", "false"),
    ] {
        details.insert(k.to_string(), v.to_string());
    }
    http::json(
        StatusCode::OK,
        &VersionResponse {
            platform: Platform {
                name: format!("wrun {VERSION}"),
            },
            components: vec![Component {
                name: "Engine".into(),
                version: VERSION.into(),
                details,
            }],
            version: VERSION.into(),
            api_version: API_VERSION.into(),
            min_api_version: MIN_API_VERSION.into(),
            git_commit: String::new(),
            go_version: "none (wrun is written in Rust)".into(),
            os: os_type().into(),
            arch: std::env::consts::ARCH.into(),
            kernel_version: String::new(),
            build_time: String::new(),
        },
    )
}

pub fn info(sup: &Arc<Supervisor>, host: &str) -> Result<Resp, DaemonError> {
    let records = sup.db().list()?;
    let mut running = 0;
    for r in &records {
        let s = sup.entry(&r.id).status();
        if s.running || s.restarting {
            running += 1;
        }
    }
    let images = sup.images().list()?.len();
    let mut runtimes = std::collections::BTreeMap::new();
    runtimes.insert(
        "wasmtime".to_string(),
        serde_json::json!({ "path": "(built in)" }),
    );
    Ok(http::json(
        StatusCode::OK,
        &InfoResponse {
            id: format!("wrun:{}", sup.root().dir().display()),
            containers: records.len(),
            containers_running: running,
            containers_paused: 0,
            containers_stopped: records.len() - running,
            images,
            driver: "wrun".into(),
            logging_driver: "json-file".into(),
            name: "wrun".into(),
            server_version: VERSION.into(),
            operating_system: format!("wrun {VERSION} (WebAssembly, WASI)"),
            os_type: os_type().into(),
            architecture: std::env::consts::ARCH.into(),
            ncpu: crate::host::cpus(),
            mem_total: crate::host::memory_bytes().unwrap_or(0),
            docker_root_dir: sup.root().dir().display().to_string(),
            kernel_version: crate::host::kernel_version(),
            default_runtime: "wasmtime".into(),
            runtimes,
            security_options: vec!["name=wasi-capabilities".into()],
            warnings: Vec::new(),
            debug: tracing::enabled!(tracing::Level::DEBUG),
            experimental_build: false,
            live_restore_enabled: false,
            // `--memory` is enforced on the guest's linear memory.
            memory_limit: true,
            swap_limit: false,
            index_server_address: "https://index.docker.io/v1/".into(),
            system_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            swarm: crate::api::types::SwarmInfo {
                local_node_state: "inactive".into(),
                ..Default::default()
            },
            wrun_host: host.to_string(),
        },
    ))
}
