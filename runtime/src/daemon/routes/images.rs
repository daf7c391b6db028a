//! `/images/...` and `/build`: list, inspect, tag, remove, build from a
//! tar context, pull and push. Long operations stream Docker's JSON
//! progress messages.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use tokio::sync::mpsc;

use crate::api::types::{ImageDeleteItem, JsonMessage};
use crate::daemon::error::DaemonError;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::supervisor::Supervisor;
use crate::image::build::BuildOptions;
use crate::image::{ImageStore, Removed};
use crate::state::StateRoot;

/// The most a build context may hold.
const MAX_CONTEXT: usize = 1 << 30;

pub fn list(sup: &Arc<Supervisor>) -> Result<Resp, DaemonError> {
    let images = sup.images().list()?;
    let rows: Vec<_> = images
        .iter()
        .map(|i| crate::api::images::summary(i, -1))
        .collect();
    Ok(http::json(StatusCode::OK, &rows))
}

pub fn inspect(sup: &Arc<Supervisor>, name: &str) -> Result<Resp, DaemonError> {
    let img = sup.images().resolve(name)?;
    Ok(http::json(
        StatusCode::OK,
        &crate::api::images::inspect(&img),
    ))
}

pub fn tag(sup: &Arc<Supervisor>, name: &str, q: &Query) -> Result<Resp, DaemonError> {
    let repo = q.str("repo");
    if repo.is_empty() {
        return Err(DaemonError::bad_request(
            "tag: the repo parameter is required",
        ));
    }
    let target = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    sup.images().tag(name, &target)?;
    Ok(http::empty(StatusCode::CREATED))
}

pub fn remove(sup: &Arc<Supervisor>, name: &str, q: &Query) -> Result<Resp, DaemonError> {
    let force = q.flag("force");
    let image = sup.images().resolve(name)?;
    let users = sup.db().users_of_image(image.id.as_str())?;
    let removed = sup.images().remove(name, force, &users)?;
    let items: Vec<ImageDeleteItem> = removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => ImageDeleteItem {
                untagged: Some(t),
                deleted: None,
            },
            Removed::Deleted(d) => ImageDeleteItem {
                untagged: None,
                deleted: Some(d.to_string()),
            },
        })
        .collect();
    Ok(http::json(StatusCode::OK, &items))
}

/// Sends JSON progress messages into a streamed answer.
#[derive(Clone)]
struct Messages(mpsc::Sender<Bytes>);

impl Messages {
    fn send(&self, m: &JsonMessage) {
        if let Ok(mut line) = serde_json::to_vec(m) {
            line.push(b'\n');
            let _ = self.0.blocking_send(Bytes::from(line));
        }
    }

    fn status(&self, status: String, id: Option<String>) {
        self.send(&JsonMessage {
            status: Some(status),
            id,
            ..Default::default()
        });
    }

    fn error(&self, message: String) {
        self.send(&JsonMessage {
            error: Some(message.clone()),
            error_detail: Some(crate::api::types::ErrorBody {
                message,
                exit_code: None,
            }),
            ..Default::default()
        });
    }
}

/// A build's step output, as `{"stream": ...}` messages.
struct StreamWriter(Messages);

impl Write for StreamWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.send(&JsonMessage {
            stream: Some(String::from_utf8_lossy(buf).into_owned()),
            ..Default::default()
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `work` on its own thread (registry and build code block, and some
/// of it runs its own async runtime) and streams its messages.
fn stream_job(work: impl FnOnce(Messages) + Send + 'static) -> Resp {
    let (tx, rx) = mpsc::channel(64);
    let messages = Messages(tx);
    std::thread::spawn(move || work(messages));
    http::streamed("application/json", rx)
}

/// Extracts a build context tar (optionally gzip-compressed) into `dir`.
/// The tar crate refuses entries that would land outside `dir`.
fn extract_context(body: &[u8], dir: &std::path::Path) -> Result<(), String> {
    let reader: Box<dyn std::io::Read> = if body.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    archive
        .unpack(dir)
        .map_err(|e| format!("the build context is not a valid tar archive: {e}"))
}

pub async fn build(sup: &Arc<Supervisor>, req: Request<Incoming>) -> Result<Resp, DaemonError> {
    let q = Query::parse(req.uri().query());
    if let Some(remote) = q.get("remote").filter(|r| !r.is_empty()) {
        return Err(DaemonError::bad_request(format!(
            "remote build contexts ({remote}) are not supported: send the context as a tar"
        )));
    }
    let build_args: std::collections::BTreeMap<String, String> = match q
        .get("buildargs")
        .filter(|b| !b.is_empty())
    {
        None => Default::default(),
        Some(raw) => {
            let map: std::collections::BTreeMap<String, Option<String>> = serde_json::from_str(raw)
                .map_err(|e| DaemonError::bad_request(format!("invalid buildargs {raw:?}: {e}")))?;
            map.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect()
        }
    };
    let tags: Vec<String> = q.all("t").into_iter().map(str::to_string).collect();
    let dockerfile = q
        .get("dockerfile")
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let quiet = q.flag("q");
    let no_cache = q.flag("nocache");
    let body = http::read_body(req, MAX_CONTEXT).await?;
    let root: StateRoot = sup.root().clone();
    Ok(stream_job(move |messages| {
        let ctx = match tempfile::tempdir_in(root.tmp_dir()) {
            Ok(d) => d,
            Err(e) => {
                return messages.error(format!("build: cannot make a context directory: {e}"));
            }
        };
        if let Err(e) = extract_context(&body, ctx.path()) {
            return messages.error(e);
        }
        let dockerfile = match dockerfile {
            Some(d) => match crate::image::build::context::clean(&d) {
                Some(rel) => Some(ctx.path().join(rel)),
                None => {
                    return messages.error(format!(
                        "the Dockerfile path {d:?} leads outside the build context"
                    ));
                }
            },
            None => None,
        };
        let opts = BuildOptions {
            context: ctx.path().to_path_buf(),
            dockerfile,
            tags,
            build_args,
            no_cache,
        };
        let mut store = match ImageStore::open(&root) {
            Ok(s) => s,
            Err(e) => return messages.error(e.to_string()),
        };
        let mut out: Box<dyn Write> = if quiet {
            Box::new(std::io::sink())
        } else {
            Box::new(StreamWriter(messages.clone()))
        };
        match crate::image::build::build(&mut store, &opts, &mut out) {
            Ok(id) => {
                messages.send(&JsonMessage {
                    aux: Some(serde_json::json!({ "ID": id.to_string() })),
                    ..Default::default()
                });
                // A quiet build's only output is the image ID.
                if quiet {
                    messages.send(&JsonMessage {
                        stream: Some(format!("{id}\n")),
                        ..Default::default()
                    });
                }
            }
            Err(e) => messages.error(e.to_string()),
        }
    }))
}

/// `POST /images/create?fromImage=NAME&tag=TAG`: a pull.
pub fn create(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    if q.get("fromSrc").is_some_and(|s| !s.is_empty()) {
        return Err(DaemonError::bad_request(
            "importing a root filesystem (fromSrc) is not supported: use wrun load",
        ));
    }
    let from = q.str("fromImage");
    if from.is_empty() {
        return Err(DaemonError::bad_request(
            "images/create: fromImage is required",
        ));
    }
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) if t.starts_with("sha256:") => format!("{from}@{t}"),
        Some(t) => format!("{from}:{t}"),
        None => from.to_string(),
    };
    let root = sup.root().clone();
    Ok(stream_job(move |messages| {
        let mut store = match ImageStore::open(&root) {
            Ok(s) => s,
            Err(e) => return messages.error(e.to_string()),
        };
        use crate::registry::pull::Event;
        let m = messages.clone();
        let progress: crate::registry::pull::Progress = Arc::new(move |e| match e {
            Event::Pulling { what, repository } => {
                m.status(format!("Pulling from {repository}"), Some(what))
            }
            Event::Exists(d) => m.status("Already exists".into(), Some(d.short().into())),
            Event::Started { layer, .. } => {
                m.status("Pulling fs layer".into(), Some(layer.short().into()))
            }
            Event::Progress { .. } => {}
            Event::Complete(d) => m.status("Pull complete".into(), Some(d.short().into())),
        });
        match crate::registry::pull::pull(&mut store, &name, progress) {
            Ok(p) => {
                messages.status(format!("Digest: {}", p.manifest_digest), None);
                let shown = p.reference.familiar();
                messages.status(
                    if p.up_to_date {
                        format!("Status: Image is up to date for {shown}")
                    } else {
                        format!("Status: Downloaded newer image for {shown}")
                    },
                    None,
                );
            }
            Err(e) => messages.error(e.to_string()),
        }
    }))
}

/// `POST /images/{name}/push?tag=TAG`.
pub fn push(sup: &Arc<Supervisor>, name: &str, q: &Query) -> Result<Resp, DaemonError> {
    let name = match q.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{name}:{t}"),
        None => name.to_string(),
    };
    // Fail before streaming when the image is not here at all.
    sup.images().resolve(&name)?;
    let root = sup.root().clone();
    Ok(stream_job(move |messages| {
        let store = match ImageStore::open(&root) {
            Ok(s) => s,
            Err(e) => return messages.error(e.to_string()),
        };
        use crate::registry::push::Event;
        let m = messages.clone();
        let progress: crate::registry::push::Progress = Arc::new(move |e| match e {
            Event::Repository(r) => m.status(format!("The push refers to repository [{r}]"), None),
            Event::Exists(d) => m.status("Layer already exists".into(), Some(d.short().into())),
            Event::Pushed(d) => m.status("Pushed".into(), Some(d.short().into())),
        });
        match crate::registry::push::push(&store, &name, progress) {
            Ok(p) => messages.status(
                format!("{}: digest: {} size: {}", p.tag, p.digest, p.size),
                None,
            ),
            Err(e) => messages.error(e.to_string()),
        }
    }))
}
