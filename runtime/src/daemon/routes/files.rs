//! A container's files from outside: `GET /containers/{id}/changes`
//! (`docker diff`, read from its writable layer) and
//! `/containers/{id}/archive` (`docker cp`: HEAD for a path's stat, GET for
//! a tar of it, PUT to unpack a tar into a directory), and
//! `/containers/{id}/export` (the whole root as a tar). All of it goes
//! through the container's layered view, with the guest's own path rules,
//! so nothing reaches outside its root; a copy into a running container is
//! seen by it at once.

use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use tokio::sync::mpsc;

use crate::api::types::ContainerConfig;
use crate::container::{ContainerRecord, Rootfs};
use crate::daemon::error::DaemonError;
use crate::daemon::http::{self, Query, Resp};
use crate::daemon::supervisor::Supervisor;
use crate::vfs::overlay::Open;
use crate::vfs::{Change, Kind, Overlay, VPath, VfsError};

/// The largest tar a `PUT .../archive` may send.
const MAX_ARCHIVE: usize = 1 << 30;

const STAT_HEADER: &str = "x-docker-container-path-stat";

/// The container's view: its running one, or a new one over its layers.
fn view(sup: &Supervisor, id: &str) -> Result<(ContainerRecord, Arc<Overlay>), DaemonError> {
    let (rec, entry) = sup.find(id)?;
    let fs = match entry.live() {
        Some(live) => live.fs.clone(),
        None => crate::container::open_rootfs(sup.root(), &rec)?,
    };
    match fs {
        Rootfs::Layers(v) => Ok((rec, v)),
        Rootfs::Copy(_) => Err(DaemonError::Conflict(format!(
            "container {}: it holds a whole copy of its image (an older wrun made it), \
             which has no writable layer to read; recreate it",
            rec.short_id()
        ))),
    }
}

fn vfs_err(path: &str, e: VfsError) -> DaemonError {
    match e {
        VfsError::NotFound => {
            DaemonError::NotFound(format!("Could not find the file {path} in container"))
        }
        VfsError::NotPermitted => DaemonError::bad_request(format!(
            "{path}: refused: the path or a symlink on it leads outside the container's root"
        )),
        other => DaemonError::bad_request(format!("{path}: {other}")),
    }
}

/// `GET /containers/{id}/changes`.
pub fn changes(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let (_, view) = view(sup, id)?;
    let rows: Vec<serde_json::Value> = view
        .changes()
        .map_err(|e| DaemonError::internal(e.to_string()))?
        .into_iter()
        .map(|(p, c)| {
            let kind = match c {
                Change::Modified => 0,
                Change::Added => 1,
                Change::Deleted => 2,
            };
            serde_json::json!({ "Path": p.to_string(), "Kind": kind })
        })
        .collect();
    Ok(http::json(StatusCode::OK, &rows))
}

fn resolve(view: &Overlay, path: &str) -> Result<VPath, DaemonError> {
    if !path.starts_with('/') {
        return Err(DaemonError::bad_request(format!(
            "path {path:?}: it must be absolute"
        )));
    }
    let rel = path.trim_start_matches('/');
    if rel.is_empty() {
        return Ok(VPath::root());
    }
    // A symlink named last is the link itself, as `docker cp` copies it
    // (`-L` asks for its target by name); with a trailing `/` or `/.` it is
    // the directory it points to.
    let follow = path.ends_with('/') || path.ends_with("/.");
    view.resolve(&VPath::root(), rel, follow)
        .map_err(|e| vfs_err(path, e))
}

#[cfg(unix)]
fn mode_of(m: &cap_std::fs::Metadata) -> u32 {
    use cap_std::fs::PermissionsExt as _;
    m.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
fn mode_of(m: &cap_std::fs::Metadata) -> u32 {
    if m.is_dir() { 0o755 } else { 0o644 }
}

/// The stat header: base64 of `{name, size, mode, mtime, linkTarget}`,
/// with Go's mode bits for directories and symlinks.
fn stat_header(view: &Overlay, p: &VPath) -> Result<HeaderValue, DaemonError> {
    let shown = p.to_string();
    let m = view.metadata(p).map_err(|e| vfs_err(&shown, e))?;
    let kind = view.locate(p).map(|f| f.kind).unwrap_or(Kind::File);
    let mut mode = mode_of(&m);
    let mut link = String::new();
    match kind {
        Kind::Dir => mode |= 1 << 31,
        Kind::Symlink => {
            mode |= 1 << 27;
            link = view.read_link(p).unwrap_or_default();
        }
        Kind::File => {}
    }
    let mtime = m
        .modified()
        .ok()
        .map(|t| chrono::DateTime::<chrono::Utc>::from(t.into_std()).to_rfc3339())
        .unwrap_or_default();
    let body = serde_json::json!({
        "name": p.name().unwrap_or("/"),
        "size": m.len(),
        "mode": mode,
        "mtime": mtime,
        "linkTarget": link,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.to_string());
    HeaderValue::from_str(&encoded).map_err(DaemonError::internal)
}

/// `HEAD /containers/{id}/archive?path=P`.
pub fn archive_stat(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let (_, view) = view(sup, id)?;
    let p = resolve(&view, q.str("path"))?;
    let mut r = http::empty(StatusCode::OK);
    r.headers_mut().insert(STAT_HEADER, stat_header(&view, &p)?);
    Ok(r)
}

/// Sends what a tar builder writes as the chunks of a streamed answer.
pub(super) struct ChunkWriter(pub(super) mpsc::Sender<Bytes>);

impl std::io::Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn append(
    tar: &mut tar::Builder<ChunkWriter>,
    view: &Overlay,
    p: &VPath,
    name: &str,
) -> std::io::Result<()> {
    let m = view.metadata(p).map_err(std::io::Error::from)?;
    let kind = view
        .locate(p)
        .map(|f| f.kind)
        .ok_or(std::io::ErrorKind::NotFound)?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode_of(&m));
    h.set_mtime(
        m.modified()
            .ok()
            .and_then(|t| t.into_std().duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    match kind {
        Kind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, format!("{name}/"), std::io::empty())?;
            for (child, _) in view.read_dir(p).map_err(std::io::Error::from)? {
                append(tar, view, &p.join(&child), &format!("{name}/{child}"))?;
            }
        }
        Kind::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            let target = view.read_link(p).map_err(std::io::Error::from)?;
            tar.append_link(&mut h, name, target)?;
        }
        Kind::File => {
            let f = view
                .open_file(p, Open::default())
                .map_err(std::io::Error::from)?;
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(m.len());
            tar.append_data(&mut h, name, f)?;
        }
    }
    Ok(())
}

/// `GET /containers/{id}/archive?path=P`: a tar of P, named by its last
/// component.
pub fn archive_get(sup: &Arc<Supervisor>, id: &str, q: &Query) -> Result<Resp, DaemonError> {
    let (_, view) = view(sup, id)?;
    let p = resolve(&view, q.str("path"))?;
    let header = stat_header(&view, &p)?;
    let name = p.name().unwrap_or(".").to_string();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let mut tar = tar::Builder::new(ChunkWriter(tx));
        tar.follow_symlinks(false);
        let done = append(&mut tar, &view, &p, &name).and_then(|()| tar.finish());
        if let Err(e) = done {
            tracing::debug!(path = %p, error = %e, "archive ended early");
        }
    });
    let mut r = http::streamed("application/x-tar", rx);
    r.headers_mut().insert(STAT_HEADER, header);
    Ok(r)
}

/// `GET /containers/{id}/export`: the container's whole root as a tar,
/// its image's files with its own changes applied.
pub fn export(sup: &Arc<Supervisor>, id: &str) -> Result<Resp, DaemonError> {
    let (_, view) = view(sup, id)?;
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let mut tar = tar::Builder::new(ChunkWriter(tx));
        let root = VPath::root();
        let done = view
            .read_dir(&root)
            .map_err(std::io::Error::from)
            .and_then(|names| {
                for (name, _) in names {
                    append(&mut tar, &view, &root.join(&name), &name)?;
                }
                tar.finish()
            });
        if let Err(e) = done {
            tracing::debug!(error = %e, "export ended early");
        }
    });
    Ok(http::streamed("application/x-tar", rx))
}

/// `POST /commit?container=ID&repo=R&tag=T&comment=C`: a new image from
/// the container's image and its writable layer, with its configuration
/// (command, environment, working directory, labels).
/// `POST /commit`: an image from a container's writable layer. Its
/// config is the container's, then the body's fields that are set (a
/// container `Config`, as Docker takes it), then the `changes` (Dockerfile
/// instructions, as `docker commit --change` sends them).
pub async fn commit(
    sup: &Arc<Supervisor>,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, DaemonError> {
    let id = q.str("container");
    if id.is_empty() {
        return Err(DaemonError::bad_request(
            "commit: the container parameter is required",
        ));
    }
    let body: ContainerConfig = http::read_json(req, "commit").await?;
    // Checks the container has layers to commit, and that it exists.
    let (rec, _) = view(sup, id)?;
    let base = sup.images().resolve(&rec.image_id)?;
    let tag = match (q.get("repo").filter(|r| !r.is_empty()), q.get("tag")) {
        (None, _) => None,
        (Some(repo), Some(t)) if !t.is_empty() => Some(format!("{repo}:{t}")),
        (Some(repo), _) => Some(repo.to_string()),
    };
    let tag = tag.map(|t| sup.images().parse_reference(&t)).transpose()?;
    let spec = &rec.spec;
    let mut config = base.config.config().clone().unwrap_or_default();
    config.set_env(Some(spec.env.clone()));
    config.set_entrypoint(Some(spec.entrypoint().to_vec()).filter(|e| !e.is_empty()));
    config.set_cmd(Some(spec.cmd().to_vec()).filter(|c| !c.is_empty()));
    config.set_working_dir(Some(spec.workdir.clone()));
    let mut labels = config.labels().clone().unwrap_or_default();
    labels.extend(spec.labels.clone());
    config.set_labels(Some(labels));
    merge_body(&mut config, body);
    apply_changes(&mut config, &q.all("changes"))?;
    let step = crate::image::assemble::HistoryStep {
        created_by: spec
            .entrypoint()
            .iter()
            .chain(spec.cmd())
            .cloned()
            .collect::<Vec<_>>()
            .join(" "),
        empty_layer: false,
        comment: q.str("comment").to_string(),
    };
    let layer = crate::container::container_dir(sup.root(), &rec.id).join("upper");
    let image_id = crate::image::commit::commit(
        &mut sup.images(),
        crate::image::commit::Commit {
            base: &base,
            layer: &layer,
            config,
            step,
            tag: tag.as_ref(),
        },
    )?;
    sup.events.publish(
        Supervisor::container_event_of(&rec, "commit").with("comment", image_id.to_string()),
    );
    Ok(http::json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": image_id.to_string() }),
    ))
}

/// The fields of a commit's body `Config` that are set replace the
/// container's; its labels are added.
fn merge_body(config: &mut oci_spec::image::Config, body: ContainerConfig) {
    if let Some(cmd) = body.cmd.filter(|c| !c.is_empty()) {
        config.set_cmd(Some(cmd));
    }
    if let Some(ep) = body.entrypoint.filter(|e| !e.is_empty()) {
        config.set_entrypoint(Some(ep));
    }
    if let Some(env) = body.env.filter(|e| !e.is_empty()) {
        config.set_env(Some(env));
    }
    if !body.working_dir.is_empty() {
        config.set_working_dir(Some(body.working_dir));
    }
    if !body.user.is_empty() {
        config.set_user(Some(body.user));
    }
    if let Some(l) = body.labels.filter(|l| !l.is_empty()) {
        let mut labels = config.labels().clone().unwrap_or_default();
        labels.extend(l);
        config.set_labels(Some(labels));
    }
    if let Some(ports) = body.exposed_ports.filter(|p| !p.is_empty()) {
        let mut all = config.exposed_ports().clone().unwrap_or_default();
        for p in ports.into_keys() {
            if !all.contains(&p) {
                all.push(p);
            }
        }
        all.sort();
        config.set_exposed_ports(Some(all));
    }
}

/// `docker commit --change`: each a Dockerfile instruction that changes
/// the config only. Anything else is refused, naming it.
fn apply_changes(
    config: &mut oci_spec::image::Config,
    changes: &[&str],
) -> Result<(), DaemonError> {
    let changes: Vec<&str> = changes
        .iter()
        .flat_map(|c| c.lines())
        .filter(|c| !c.trim().is_empty())
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    let text = format!("FROM scratch\n{}\n", changes.join("\n"));
    let parsed = crate::image::dockerfile::parse(&text, &Default::default()).map_err(|e| {
        DaemonError::bad_request(format!("commit --change {:?}: {e}", changes.join("; ")))
    })?;
    let stage = parsed
        .final_stage()
        .ok_or_else(|| DaemonError::bad_request("commit --change: nothing to apply"))?;
    let mut cmd_set_here = false;
    for ins in &stage.instructions {
        if !crate::image::build::apply_config(config, &ins.kind, &mut cmd_set_here) {
            return Err(DaemonError::bad_request(format!(
                "commit --change {:?}: only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR and STOPSIGNAL change a committed image",
                ins.original
            )));
        }
    }
    Ok(())
}

/// One entry of an archive to unpack, checked before anything is written.
enum Item {
    Dir(VPath),
    File(VPath, Vec<u8>),
    Symlink(VPath, String),
    Link(VPath, VPath),
}

/// The entry names of a tar, below `dir`: relative, and never above it.
fn place(dir: &VPath, name: &str) -> Result<VPath, String> {
    let mut p = dir.clone();
    let mut depth = 0usize;
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." if depth == 0 => return Err("it climbs out of the directory with ..".into()),
            ".." => {
                depth -= 1;
                p = p.parent().unwrap_or_default();
            }
            n => {
                crate::vfs::path::check_name(n).map_err(|e| e.to_string())?;
                depth += 1;
                p = p.join(n);
            }
        }
    }
    Ok(p)
}

fn read_items(body: &[u8], dir: &VPath) -> Result<Vec<Item>, String> {
    let reader: Box<dyn std::io::Read> = if body.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut archive = tar::Archive::new(reader);
    let mut items = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("not a valid tar archive: {e}"))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        if name.starts_with('/') {
            return Err(format!("entry {name:?}: an absolute path"));
        }
        let at = place(dir, &name).map_err(|e| format!("entry {name:?}: {e}"))?;
        let kind = entry.header().entry_type();
        let item = match kind {
            tar::EntryType::Directory => Item::Dir(at),
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut data = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut data)
                    .map_err(|e| format!("entry {name:?}: {e}"))?;
                Item::File(at, data)
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().replace('\\', "/"))
                    .ok_or_else(|| format!("entry {name:?}: a symlink without a target"))?;
                Item::Symlink(at, target)
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|t| t.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("entry {name:?}: a hard link without a target"))?;
                let to = place(dir, &target).map_err(|e| format!("entry {name:?}: {e}"))?;
                Item::Link(at, to)
            }
            // Metadata entries (pax headers are read by the tar crate).
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
            other => {
                return Err(format!(
                    "entry {name:?}: {other:?} entries cannot be copied into a container"
                ));
            }
        };
        items.push(item);
    }
    Ok(items)
}

/// Makes the directories from `dir` down to `p` that are missing.
fn make_dirs(view: &Overlay, p: &VPath) -> Result<(), VfsError> {
    let mut cur = VPath::root();
    for n in p.names() {
        cur = cur.join(n);
        match view.locate(&cur).map(|f| f.kind) {
            Some(Kind::Dir) => {}
            Some(_) => return Err(VfsError::NotDirectory),
            None => view.create_dir(&cur)?,
        }
    }
    Ok(())
}

fn unpack(view: &Overlay, items: Vec<Item>) -> Result<(), (String, VfsError)> {
    let at = |p: &VPath, e| (p.to_string(), e);
    // The files' bytes must fit the writable layer's quota together, or
    // nothing is written.
    let files: Vec<(&VPath, u64)> = items
        .iter()
        .filter_map(|i| match i {
            Item::File(p, data) => Some((p, data.len() as u64)),
            _ => None,
        })
        .collect();
    if !view.fits(&files) {
        let total: u64 = files.iter().map(|f| f.1).sum();
        return Err((
            format!("the archive's {total} bytes of files"),
            VfsError::NoSpace,
        ));
    }
    for item in items {
        match item {
            Item::Dir(p) => make_dirs(view, &p).map_err(|e| at(&p, e))?,
            Item::File(p, data) => {
                if let Some(parent) = p.parent() {
                    make_dirs(view, &parent).map_err(|e| at(&p, e))?;
                }
                if view.locate(&p).map(|f| f.kind) == Some(Kind::Symlink) {
                    view.remove_file(&p).map_err(|e| at(&p, e))?;
                }
                view.write_whole(&p, &data).map_err(|e| at(&p, e))?;
            }
            Item::Symlink(p, target) => {
                if let Some(parent) = p.parent() {
                    make_dirs(view, &parent).map_err(|e| at(&p, e))?;
                }
                if view.locate(&p).is_some_and(|f| f.kind != Kind::Dir) {
                    view.remove_file(&p).map_err(|e| at(&p, e))?;
                }
                view.symlink(&target, &p).map_err(|e| at(&p, e))?;
            }
            Item::Link(p, to) => {
                if view.locate(&p).is_some_and(|f| f.kind != Kind::Dir) {
                    view.remove_file(&p).map_err(|e| at(&p, e))?;
                }
                view.hard_link(&to, &p).map_err(|e| at(&p, e))?;
            }
        }
    }
    Ok(())
}

/// `PUT /containers/{id}/archive?path=DIR`: unpacks a tar into the
/// directory DIR. Every entry is checked first: one that would land
/// outside DIR refuses the whole archive, and nothing is written.
pub async fn archive_put(
    sup: &Arc<Supervisor>,
    id: &str,
    req: Request<Incoming>,
) -> Result<Resp, DaemonError> {
    let q = Query::parse(req.uri().query());
    let path = q.str("path").to_string();
    let (rec, view) = view(sup, id)?;
    let dir = resolve(&view, &path)?;
    match view.locate(&dir).map(|f| f.kind) {
        Some(Kind::Dir) => {}
        Some(_) => {
            return Err(DaemonError::bad_request(format!(
                "extraction point {path} is not a directory"
            )));
        }
        None => {
            return Err(DaemonError::NotFound(format!(
                "Could not find the file {path} in container {}",
                rec.short_id()
            )));
        }
    }
    let body = http::read_body(req, MAX_ARCHIVE).await?;
    let items = read_items(&body, &dir)
        .map_err(|e| DaemonError::bad_request(format!("copy to {path}: {e}")))?;
    let v = view.clone();
    let limit = view.quota().map(|q| q.limit()).unwrap_or_default();
    tokio::task::spawn_blocking(move || unpack(&v, items))
        .await
        .map_err(DaemonError::internal)?
        .map_err(|(p, e)| match e {
            VfsError::NoSpace => DaemonError::bad_request(format!(
                "copy to {path} in container {}: {p}: no space left on device: \
                 its writable layer is limited to {limit} bytes (--storage-opt size)",
                rec.short_id()
            )),
            e => vfs_err(&p, e),
        })?;
    sup.events
        .publish(Supervisor::container_event_of(&rec, "extract-to-dir").with("path", path));
    Ok(http::empty(StatusCode::OK))
}
