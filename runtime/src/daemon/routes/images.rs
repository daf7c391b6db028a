//! `/images/...` and `/build`: list, inspect, tag, remove, build from a
//! tar context, pull and push. Long operations stream Docker's JSON
//! progress messages.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use tokio::sync::mpsc;

use crate::api::filters::Filters;
use crate::api::types::{ImageDeleteItem, JsonMessage};
use crate::daemon::error::DaemonError;
use crate::daemon::events::{self, Event};
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::supervisor::Supervisor;
use crate::image::build::BuildOptions;
use crate::image::{ImageStore, Removed};
use crate::state::StateRoot;

/// The most a build context may hold.
const MAX_CONTEXT: usize = 1 << 30;

/// The filters `GET /images/json` takes.
const IMAGE_FILTERS: &[&str] = &["before", "dangling", "label", "reference", "since", "until"];

/// Whether a `reference` filter (a glob such as `busybox`, `kubia:*` or
/// `*/app`) matches a tag, as Docker matches it: against the familiar name
/// with its tag, or without.
fn reference_matches(pattern: &globset::GlobMatcher, tag: &crate::image::Reference) -> bool {
    pattern.is_match(tag.familiar()) || pattern.is_match(tag.familiar_repository())
}

/// `GET /images/json`, and the rows `/system/df` and prunes work on: each
/// image with its config's labels, filtered.
pub(super) fn filtered(
    sup: &Supervisor,
    f: &Filters,
) -> Result<Vec<crate::api::types::ImageSummary>, DaemonError> {
    let images = sup.images().list()?;
    let patterns = f
        .values("reference")
        .iter()
        .map(|p| {
            globset::GlobBuilder::new(p)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher())
                .map_err(|e| {
                    DaemonError::bad_request(format!("invalid filter reference={p:?}: {e}"))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created_of = |key: &str| -> Result<Option<i64>, DaemonError> {
        match f.values(key).last() {
            None => Ok(None),
            Some(v) => {
                let img = sup.images().resolve(v)?;
                Ok(Some(
                    img.config
                        .created()
                        .as_deref()
                        .and_then(|c| {
                            chrono::DateTime::parse_from_rfc3339(c)
                                .ok()
                                .map(|t| t.timestamp())
                        })
                        .unwrap_or(0),
                ))
            }
        }
    };
    let before = created_of("before")?;
    let since = created_of("since")?;
    let until = match f.values("until").last() {
        None => None,
        Some(v) => Some(super::disk::until_time(v)?.timestamp()),
    };
    let dangling = f.bool("dangling")?;
    let mut out = Vec::new();
    for i in &images {
        let mut row = crate::api::images::summary(i, -1);
        if let Ok(img) = sup.images().resolve(i.id.as_str()) {
            row.labels = img
                .config
                .config()
                .as_ref()
                .and_then(|c| c.labels().clone())
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        // The tags a reference filter matched: Docker lists only those.
        let matched: Vec<_> = i
            .tags
            .iter()
            .filter(|t| patterns.iter().any(|p| reference_matches(p, t)))
            .collect();
        let keep = (patterns.is_empty() || !matched.is_empty())
            && dangling.is_none_or(|d| d == i.tags.is_empty())
            && f.labels_match(&row.labels)
            && before.is_none_or(|b| row.created < b)
            && since.is_none_or(|s| row.created > s)
            && until.is_none_or(|u| row.created < u);
        if keep {
            if !patterns.is_empty() {
                row.repo_tags = matched.iter().map(|t| t.familiar()).collect();
                row.repo_digests.retain(|d| {
                    matched
                        .iter()
                        .any(|t| d.starts_with(&format!("{}@", t.familiar_repository())))
                });
            }
            out.push(row);
        }
    }
    Ok(out)
}

pub fn list(sup: &Arc<Supervisor>, q: &Query) -> Result<Resp, DaemonError> {
    let f = Filters::parse(q.get("filters"), "images", IMAGE_FILTERS)?;
    Ok(http::json(StatusCode::OK, &filtered(sup, &f)?))
}

/// `GET /images/{name}/history`.
pub fn history(sup: &Arc<Supervisor>, name: &str) -> Result<Resp, DaemonError> {
    let img = sup.images().resolve(name)?;
    Ok(http::json(
        StatusCode::OK,
        &crate::api::images::history(&img),
    ))
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
    let id = sup.images().resolve(name)?.id.to_string();
    let tagged = sup.images().tag(name, &target)?;
    sup.events
        .publish(Event::new("image", "tag", id).with("name", tagged.familiar()));
    Ok(http::empty(StatusCode::CREATED))
}

/// What a removal did, as Docker answers it, each step published as an
/// event (`untag`, `delete`) of the image `id`.
pub(super) fn removed_items(
    sup: &Supervisor,
    id: &str,
    removed: Vec<Removed>,
) -> Vec<ImageDeleteItem> {
    removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => {
                sup.events
                    .publish(Event::new("image", "untag", id).with("name", t.clone()));
                ImageDeleteItem {
                    untagged: Some(t),
                    deleted: None,
                }
            }
            Removed::Deleted(d) => {
                sup.events.publish(
                    Event::new("image", "delete", d.to_string()).with("name", d.to_string()),
                );
                ImageDeleteItem {
                    untagged: None,
                    deleted: Some(d.to_string()),
                }
            }
        })
        .collect()
}

pub fn remove(sup: &Arc<Supervisor>, name: &str, q: &Query) -> Result<Resp, DaemonError> {
    let force = q.flag("force");
    let image = sup.images().resolve(name)?;
    let users = sup.db().users_of_image(image.id.as_str())?;
    let removed = sup.images().remove(name, force, &users)?;
    let items = removed_items(sup, &image.id.to_string(), removed);
    Ok(http::json(StatusCode::OK, &items))
}

/// Sends JSON progress messages into a streamed answer.
#[derive(Clone)]
struct Messages(mpsc::Sender<Bytes>);

impl Messages {
    /// Sends one message. The job's own thread waits for room; a progress
    /// callback from inside a runtime (a pull's download tasks) cannot
    /// block there, so its line is dropped when the answer's buffer is
    /// full (the next one says as much).
    fn send(&self, m: &JsonMessage) {
        if let Ok(mut line) = serde_json::to_vec(m) {
            line.push(b'\n');
            let line = Bytes::from(line);
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = self.0.try_send(line);
            } else {
                let _ = self.0.blocking_send(line);
            }
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
    let sup = sup.clone();
    Ok(stream_job(move |messages| {
        let ctx = match root.staging_dir().and_then(tempfile::tempdir_in) {
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
            tags: tags.clone(),
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
                for t in &tags {
                    sup.events.publish(
                        Event::new("image", "tag", id.to_string()).with("name", t.clone()),
                    );
                }
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
    let sup = sup.clone();
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
                sup.events.publish(
                    events::Event::new("image", "pull", shown.clone()).with("name", shown.clone()),
                );
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
    let sup = sup.clone();
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
            Ok(p) => {
                sup.events.publish(
                    events::Event::new("image", "push", name.clone()).with("name", name.clone()),
                );
                messages.status(
                    format!("{}: digest: {} size: {}", p.tag, p.digest, p.size),
                    None,
                )
            }
            Err(e) => messages.error(e.to_string()),
        }
    }))
}

/// `GET /images/get?names=A&names=B` (and `/images/{name}/get`): the
/// images as one OCI image-layout tar (with Docker's `manifest.json`), as
/// `docker save` writes it.
pub fn get(sup: &Arc<Supervisor>, names: Vec<String>) -> Result<Resp, DaemonError> {
    if names.is_empty() {
        return Err(DaemonError::bad_request(
            "images/get: name at least one image",
        ));
    }
    for n in &names {
        sup.images().resolve(n)?;
    }
    let root = sup.root().clone();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let saved = ImageStore::open(&root).and_then(|store| {
            crate::image::layout::save(&store, &names, super::files::ChunkWriter(tx))
        });
        if let Err(e) = saved {
            tracing::debug!(error = %e, "image save ended early");
        }
    });
    Ok(http::streamed("application/x-tar", rx))
}

/// The largest archive `POST /images/load` takes.
const MAX_LOAD: usize = 4 << 30;

/// `POST /images/load`: an image-layout or `docker save` tar into the
/// store, every blob verified before it enters; answered with Docker's
/// progress messages.
pub async fn load(sup: &Arc<Supervisor>, req: Request<Incoming>) -> Result<Resp, DaemonError> {
    let body = http::read_body(req, MAX_LOAD).await?;
    let root = sup.root().clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let mut store = ImageStore::open(&root)?;
        crate::image::layout::load(&mut store, &body[..], "the uploaded archive")
    })
    .await
    .map_err(DaemonError::internal)??;
    let mut out = Vec::new();
    for image in loaded {
        let mut lines = Vec::new();
        if image.names.is_empty() {
            lines.push(format!("Loaded image ID: {}\n", image.id));
        }
        for n in &image.names {
            lines.push(format!("Loaded image: {}\n", n.familiar()));
            sup.events.publish(
                Event::new("image", "load", image.id.to_string()).with("name", n.familiar()),
            );
        }
        for l in lines {
            let msg = JsonMessage {
                stream: Some(l),
                ..Default::default()
            };
            if let Ok(mut line) = serde_json::to_vec(&msg) {
                line.push(b'\n');
                out.extend(line);
            }
        }
    }
    let mut r = hyper::Response::new(http::full(out));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}
