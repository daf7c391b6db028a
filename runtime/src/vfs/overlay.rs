//! The layered view of one container's root: read-only lower layers (an
//! image's unpacked layers, top first, shared with every other container
//! of the image) under a private upper layer that holds only what this
//! container changed.
//!
//! The rules are OCI's and overlayfs's, and the same as
//! `image::layer::compose` applies when it flattens layers:
//! - a name is what the highest layer that has it says it is; a directory
//!   merges the directories of the same name below it, down to the first
//!   layer that holds it as something else or marks it opaque
//!   (`.wh..wh..opq`);
//! - `.wh.NAME` in a layer hides NAME in the layers below it.
//!
//! Writes go to the upper layer only, which is created on the first one:
//! a file of a lower layer is copied up whole before it is opened for
//! writing, its attributes are changed, or it is renamed or linked; a
//! delete of something a lower layer holds leaves a whiteout; a directory
//! made over a whiteout is opaque. Names that begin with `.wh.` are wrun's:
//! a guest can neither see nor make them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata, OpenOptions};

use super::path::{self, Tree, VPath};
use super::{Quota, VfsError, VfsResult};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What an entry is. Anything else a layer may hold (a device node, a
/// FIFO) shows as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// Which layer an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    Upper,
    /// A lower layer, by its position from the top (0 is the highest).
    Lower(usize),
    /// A directory no layer holds: a mount point, or one on the way to it.
    Synthetic,
}

/// An entry found in the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub kind: Kind,
    pub layer: Layer,
}

/// One entry of [`Overlay::changes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Modified,
    Added,
    Deleted,
}

/// How to open a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Open {
    pub write: bool,
    pub create: bool,
    pub exclusive: bool,
    pub truncate: bool,
    pub append: bool,
}

/// One container's view. Reads need no lock; changes are made one at a
/// time.
pub struct Overlay {
    /// Top first.
    lowers: Vec<Dir>,
    /// Where each of `lowers` is on the host.
    lower_paths: Vec<PathBuf>,
    upper_path: PathBuf,
    work_path: PathBuf,
    upper: OnceLock<Dir>,
    work: OnceLock<Dir>,
    /// Directories that exist whatever the layers say: mount points, and
    /// the directories the caller needs (a working directory).
    synthetic: BTreeSet<VPath>,
    /// Mount points: what is beneath them belongs to another filesystem,
    /// so nothing is made or changed there through this view.
    mounts: Vec<VPath>,
    changes: Mutex<()>,
    temp: AtomicU64,
    /// The limit on what the upper layer holds, if the container has one.
    quota: Option<Arc<Quota>>,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overlay")
            .field("lowers", &self.lowers.len())
            .field("upper", &self.upper_path)
            .finish_non_exhaustive()
    }
}

fn kind_of(ft: cap_std::fs::FileType) -> Kind {
    if ft.is_dir() {
        Kind::Dir
    } else if ft.is_symlink() {
        Kind::Symlink
    } else {
        Kind::File
    }
}

fn kind_in(dir: &Dir, p: &VPath) -> Option<Kind> {
    if p.is_root() {
        return Some(Kind::Dir);
    }
    dir.symlink_metadata(p.rel())
        .ok()
        .map(|m| kind_of(m.file_type()))
}

fn exists_in(dir: &Dir, rel: &str) -> bool {
    dir.symlink_metadata(rel).is_ok()
}

fn marker(dir: &VPath, name: &str) -> String {
    dir.join(name).rel()
}

fn whiteout_of(p: &VPath) -> Option<String> {
    let parent = p.parent()?;
    Some(marker(&parent, &format!("{WHITEOUT}{}", p.name()?)))
}

fn io_err(e: io::Error) -> VfsError {
    VfsError::from_io(e)
}

/// The walk down to a path: what is there, and for a directory, the
/// layers whose directories merge into it (top first).
struct Walk<'a> {
    found: Option<Found>,
    dirs: Vec<(Layer, &'a Dir)>,
}

impl Overlay {
    /// The view of `lowers` (top first) under the upper layer at `upper`
    /// (made on the first write; `work`, on the same filesystem, stages
    /// copies), with `dirs` and `mount_points` always present as
    /// directories, and nothing changed beneath a mount point.
    pub fn new(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        dirs: &[VPath],
        mount_points: &[VPath],
    ) -> VfsResult<Self> {
        let mut opened = Vec::with_capacity(lowers.len());
        for l in lowers {
            opened.push(Dir::open_ambient_dir(l, ambient_authority()).map_err(io_err)?);
        }
        let mut synthetic = BTreeSet::new();
        for m in dirs.iter().chain(mount_points) {
            let mut p = VPath::root();
            for n in m.names() {
                p = p.join(n);
                synthetic.insert(p.clone());
            }
        }
        let o = Self {
            lowers: opened,
            lower_paths: lowers.to_vec(),
            upper_path: upper.to_path_buf(),
            work_path: work.to_path_buf(),
            upper: OnceLock::new(),
            work: OnceLock::new(),
            synthetic,
            mounts: mount_points.to_vec(),
            changes: Mutex::new(()),
            // Unique per view: two views of one container (a copy into it
            // while it runs is made through its own) never collide.
            temp: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0),
            ),
            quota: None,
        };
        // A container that wrote before (it ran, or the daemon restarted)
        // has its upper layer already.
        if upper.is_dir() {
            let d = Dir::open_ambient_dir(upper, ambient_authority()).map_err(io_err)?;
            let _ = o.upper.set(d);
        }
        Ok(o)
    }

    /// Limits what the upper layer may hold to `limit` bytes
    /// (`--storage-opt size=`); past it, writes fail with
    /// [`VfsError::NoSpace`].
    pub fn with_quota(mut self, limit: u64) -> Self {
        self.quota = Some(Arc::new(Quota::new(limit, &self.upper_path)));
        self
    }

    /// The limit on the upper layer, which writes through descriptors this
    /// view opened must keep to.
    pub fn quota(&self) -> Option<&Arc<Quota>> {
        self.quota.as_ref()
    }

    /// The size of the upper layer's file at `p`, if the bytes are its
    /// alone (no other hard link holds them): what deleting it gives back.
    fn upper_bytes(&self, p: &VPath) -> u64 {
        let Some(upper) = self.upper.get() else {
            return 0;
        };
        match upper.symlink_metadata(p.rel()) {
            Ok(m) if m.is_file() && links(&m) <= 1 => m.len(),
            _ => 0,
        }
    }

    /// Gives back what the upper layer's file at `p` held, once gone.
    fn freed(&self, bytes: u64) {
        if let Some(q) = &self.quota {
            q.release(bytes);
        }
    }

    /// While the container has written nothing, a name for everything a
    /// lookup in this view can find: its layers (which never change once
    /// unpacked), its synthetic directories and its mount points. Views
    /// with the same name resolve every path alike, so what one found may
    /// be reused for another. `None` once there is an upper layer.
    pub fn unwritten_key(&self) -> Option<String> {
        if self.has_upper() {
            return None;
        }
        let mut key = String::new();
        for l in &self.lower_paths {
            key.push_str(&l.to_string_lossy());
            key.push('\0');
        }
        for s in &self.synthetic {
            key.push_str(&format!("dir {s}\0"));
        }
        for m in &self.mounts {
            key.push_str(&format!("mount {m}\0"));
        }
        Some(key)
    }

    /// Whether the container has written anything yet.
    pub fn has_upper(&self) -> bool {
        self.upper.get().is_some()
    }

    fn layers(&self) -> Vec<(Layer, &Dir)> {
        let mut out = Vec::with_capacity(self.lowers.len() + 1);
        if let Some(u) = self.upper.get() {
            out.push((Layer::Upper, u));
        }
        out.extend(
            self.lowers
                .iter()
                .enumerate()
                .map(|(i, d)| (Layer::Lower(i), d)),
        );
        out
    }

    fn walk(&self, p: &VPath) -> Walk<'_> {
        self.walk_from(p, self.layers())
    }

    fn walk_from<'a>(&'a self, p: &VPath, layers: Vec<(Layer, &'a Dir)>) -> Walk<'a> {
        let mut alive = layers;
        let mut cur = VPath::root();
        for (i, name) in p.names().iter().enumerate() {
            let last = i + 1 == p.len();
            let child = cur.join(name);
            if name.starts_with(WHITEOUT) {
                return Walk {
                    found: None,
                    dirs: Vec::new(),
                };
            }
            let mut next = Vec::new();
            let mut other = None;
            for (layer, dir) in &alive {
                if exists_in(dir, &marker(&cur, &format!("{WHITEOUT}{name}"))) {
                    break;
                }
                match kind_in(dir, &child) {
                    None => {}
                    Some(Kind::Dir) => {
                        next.push((*layer, *dir));
                        if exists_in(dir, &marker(&child, OPAQUE)) {
                            break;
                        }
                    }
                    Some(k) => {
                        if next.is_empty() {
                            other = Some(Found {
                                kind: k,
                                layer: *layer,
                            });
                        }
                        break;
                    }
                }
            }
            if let Some(f) = other {
                return Walk {
                    found: last.then_some(f),
                    dirs: Vec::new(),
                };
            }
            if next.is_empty() && !self.synthetic.contains(&child) {
                return Walk {
                    found: None,
                    dirs: Vec::new(),
                };
            }
            alive = next;
            cur = child;
        }
        let layer = alive.first().map(|(l, _)| *l).unwrap_or(Layer::Synthetic);
        Walk {
            found: Some(Found {
                kind: Kind::Dir,
                layer,
            }),
            dirs: alive,
        }
    }

    /// What is at `p`, symlinks not followed.
    pub fn locate(&self, p: &VPath) -> Option<Found> {
        self.walk(p).found
    }

    /// The directory of the read-only lower layer that provides the file
    /// at `p` (symlinks not followed): with `p`, it names bytes that never
    /// change. `None` when the container's own layer holds it.
    pub fn lower_source(&self, p: &VPath) -> Option<&Path> {
        match self.locate(p)? {
            Found {
                kind: Kind::File,
                layer: Layer::Lower(i),
            } => Some(self.lower_paths.get(i)?.as_path()),
            _ => None,
        }
    }

    fn layer_dir(&self, layer: Layer) -> Option<&Dir> {
        match layer {
            Layer::Upper => self.upper.get(),
            Layer::Lower(i) => self.lowers.get(i),
            Layer::Synthetic => None,
        }
    }

    /// Resolves `path` from the directory `base`, as [`path::resolve`].
    pub fn resolve(&self, base: &VPath, path: &str, follow: bool) -> VfsResult<VPath> {
        path::resolve(self, base, path, follow)
    }

    /// The names in the directory `p`, merged over the layers, sorted, with
    /// what each is.
    pub fn read_dir(&self, p: &VPath) -> VfsResult<Vec<(String, Kind)>> {
        let w = self.walk(p);
        match w.found {
            None => return Err(VfsError::NotFound),
            Some(f) if f.kind != Kind::Dir => return Err(VfsError::NotDirectory),
            Some(_) => {}
        }
        let mut seen: BTreeMap<String, Kind> = BTreeMap::new();
        let mut hidden: BTreeSet<String> = BTreeSet::new();
        for (_, dir) in &w.dirs {
            let mut hides = Vec::new();
            for e in dir.read_dir(p.rel()).map_err(io_err)? {
                let e = e.map_err(io_err)?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name == OPAQUE {
                    continue;
                }
                if let Some(v) = name.strip_prefix(WHITEOUT) {
                    hides.push(v.to_string());
                    continue;
                }
                if seen.contains_key(&name) || hidden.contains(&name) {
                    continue;
                }
                let kind = e.file_type().map(kind_of).map_err(io_err)?;
                seen.insert(name, kind);
            }
            // A layer's whiteouts hide the layers below it only.
            hidden.extend(hides);
        }
        for s in &self.synthetic {
            if s.len() == p.len() + 1
                && s.starts_with(p)
                && let Some(n) = s.name()
            {
                seen.entry(n.to_string()).or_insert(Kind::Dir);
            }
        }
        Ok(seen.into_iter().collect())
    }

    /// The metadata of what is at `p` (symlinks not followed).
    pub fn metadata(&self, p: &VPath) -> VfsResult<Metadata> {
        let f = self.locate(p).ok_or(VfsError::NotFound)?;
        match self.layer_dir(f.layer) {
            Some(d) if p.is_root() => d.dir_metadata().map_err(io_err),
            Some(d) => d.symlink_metadata(p.rel()).map_err(io_err),
            // A mount point no layer has: it looks like the root.
            None => self.root_metadata(),
        }
    }

    fn root_metadata(&self) -> VfsResult<Metadata> {
        match self.layers().first() {
            Some((_, d)) => d.dir_metadata().map_err(io_err),
            None => {
                let _g = self.lock();
                self.upper_dir()?.dir_metadata().map_err(io_err)
            }
        }
    }

    /// The target of the symlink at `p`.
    pub fn read_link(&self, p: &VPath) -> VfsResult<String> {
        let f = self.locate(p).ok_or(VfsError::NotFound)?;
        if f.kind != Kind::Symlink {
            return Err(VfsError::Invalid);
        }
        let d = self.layer_dir(f.layer).ok_or(VfsError::Invalid)?;
        let target = d.read_link_contents(p.rel()).map_err(io_err)?;
        Ok(target.to_string_lossy().replace('\\', "/"))
    }

    /// Opens the file at `p` (already resolved). A lower file opened for
    /// writing is copied up first; a missing one is created in the upper
    /// layer when asked.
    pub fn open_file(&self, p: &VPath, how: Open) -> VfsResult<std::fs::File> {
        let found = self.locate(p);
        match found {
            Some(f) if f.kind == Kind::Dir => return Err(VfsError::IsDirectory),
            Some(f) if f.kind == Kind::Symlink => return Err(VfsError::Loop),
            Some(_) if how.create && how.exclusive => return Err(VfsError::Exists),
            Some(f) if f.layer != Layer::Upper && !(how.write || how.truncate) => {
                let d = self.layer_dir(f.layer).ok_or(VfsError::NotFound)?;
                return d.open(p.rel()).map(|f| f.into_std()).map_err(io_err);
            }
            Some(_) => {}
            None if !how.create => return Err(VfsError::NotFound),
            None => {}
        }
        self.changeable(p)?;
        let _g = self.lock();
        let mut opts = OpenOptions::new();
        opts.read(true)
            .write(how.write || how.truncate)
            .append(how.append)
            .truncate(how.truncate);
        let mut truncated = 0;
        match self.locate(p) {
            Some(f) => {
                if f.layer != Layer::Upper {
                    self.copy_up(p, f)?;
                }
                if how.truncate {
                    truncated = self.upper_bytes(p);
                }
            }
            None => {
                let name = p.name().ok_or(VfsError::Exists)?;
                check_guest_name(name)?;
                let parent = p.parent().ok_or(VfsError::Exists)?;
                self.make_room(&parent, name)?;
                opts.create_new(true).write(true);
            }
        }
        let file = self
            .upper_dir()?
            .open_with(p.rel(), &opts)
            .map(|f| f.into_std())
            .map_err(io_err)?;
        self.freed(truncated);
        Ok(file)
    }

    /// Whether writing these whole files, each `(path, bytes)` replacing
    /// what is at its path, stays within the writable layer's quota.
    pub fn fits(&self, files: &[(&VPath, u64)]) -> bool {
        let Some(q) = &self.quota else {
            return true;
        };
        let (mut adds, mut frees) = (0u64, 0u64);
        for (p, n) in files {
            adds = adds.saturating_add(*n);
            frees = frees.saturating_add(self.upper_bytes(p));
        }
        q.used().saturating_sub(frees).saturating_add(adds) <= q.limit()
    }

    /// Writes `data` as the whole of the file at `p` (made, or cut to
    /// nothing first), held to the writable layer's quota: when `data`
    /// would pass it, the file is left as it was and nothing is written.
    pub fn write_whole(&self, p: &VPath, data: &[u8]) -> VfsResult<()> {
        use std::io::Write as _;
        let len = data.len() as u64;
        if !self.fits(&[(p, len)]) {
            return Err(VfsError::NoSpace);
        }
        let how = Open {
            write: true,
            create: true,
            truncate: true,
            ..Open::default()
        };
        let mut file = self.open_file(p, how)?;
        if let Some(q) = &self.quota
            && !q.reserve(len)
        {
            // Another writer took the room meanwhile.
            return Err(VfsError::NoSpace);
        }
        file.write_all(data).map_err(|e| {
            self.freed(len);
            VfsError::Io(e)
        })
    }

    /// Makes the directory `p`.
    pub fn create_dir(&self, p: &VPath) -> VfsResult<()> {
        if self.locate(p).is_some() {
            return Err(VfsError::Exists);
        }
        self.changeable(p)?;
        let name = p.name().ok_or(VfsError::Exists)?;
        check_guest_name(name)?;
        let parent = p.parent().ok_or(VfsError::Exists)?;
        let _g = self.lock();
        let over_whiteout = self.make_room(&parent, name)?;
        let upper = self.upper_dir()?;
        upper.create_dir(p.rel()).map_err(io_err)?;
        if over_whiteout {
            // What the lower layers held here stays hidden.
            upper.write(marker(p, OPAQUE), b"").map_err(io_err)?;
        }
        Ok(())
    }

    /// Removes the file or symlink at `p`.
    pub fn remove_file(&self, p: &VPath) -> VfsResult<()> {
        let f = self.locate(p).ok_or(VfsError::NotFound)?;
        if f.kind == Kind::Dir {
            return Err(VfsError::IsDirectory);
        }
        self.changeable(p)?;
        let _g = self.lock();
        if f.layer == Layer::Upper {
            let bytes = self.upper_bytes(p);
            self.upper_dir()?.remove_file(p.rel()).map_err(io_err)?;
            self.freed(bytes);
        }
        self.hide_lower(p)
    }

    /// Removes the empty directory at `p`.
    pub fn remove_dir(&self, p: &VPath) -> VfsResult<()> {
        let f = self.locate(p).ok_or(VfsError::NotFound)?;
        if f.kind != Kind::Dir {
            return Err(VfsError::NotDirectory);
        }
        if p.is_root() || self.synthetic.contains(p) {
            return Err(VfsError::NotPermitted);
        }
        self.changeable(p)?;
        if !self.read_dir(p)?.is_empty() {
            return Err(VfsError::NotEmpty);
        }
        let _g = self.lock();
        if let Some(u) = self.upper.get()
            && kind_in(u, p) == Some(Kind::Dir)
        {
            // It holds whiteouts and markers only.
            u.remove_dir_all(p.rel()).map_err(io_err)?;
        }
        self.hide_lower(p)
    }

    /// Makes a symlink at `p` that points at `target`, stored as given.
    pub fn symlink(&self, target: &str, p: &VPath) -> VfsResult<()> {
        if self.locate(p).is_some() {
            return Err(VfsError::Exists);
        }
        if target.is_empty() || target.contains('\0') {
            return Err(VfsError::Invalid);
        }
        self.changeable(p)?;
        let name = p.name().ok_or(VfsError::Exists)?;
        check_guest_name(name)?;
        let parent = p.parent().ok_or(VfsError::Exists)?;
        let _g = self.lock();
        self.make_room(&parent, name)?;
        symlink_in(self.upper_dir()?, target, &p.rel()).map_err(io_err)
    }

    /// A hard link at `to` to the file at `from`.
    pub fn hard_link(&self, from: &VPath, to: &VPath) -> VfsResult<()> {
        let f = self.locate(from).ok_or(VfsError::NotFound)?;
        if f.kind == Kind::Dir {
            return Err(VfsError::NotPermitted);
        }
        if self.locate(to).is_some() {
            return Err(VfsError::Exists);
        }
        self.changeable(to)?;
        let name = to.name().ok_or(VfsError::Exists)?;
        check_guest_name(name)?;
        let parent = to.parent().ok_or(VfsError::Exists)?;
        let _g = self.lock();
        if f.layer != Layer::Upper {
            self.copy_up(from, f)?;
        }
        self.make_room(&parent, name)?;
        let upper = self.upper_dir()?;
        upper.hard_link(from.rel(), upper, to.rel()).map_err(io_err)
    }

    /// Renames `from` to `to`, replacing what `to` held as POSIX allows.
    pub fn rename(&self, from: &VPath, to: &VPath) -> VfsResult<()> {
        let f = self.locate(from).ok_or(VfsError::NotFound)?;
        if from == to {
            return Ok(());
        }
        if from.is_root() || self.synthetic.contains(from) || self.synthetic.contains(to) {
            return Err(VfsError::NotPermitted);
        }
        if to.starts_with(from) {
            return Err(VfsError::Invalid);
        }
        self.changeable(from)?;
        self.changeable(to)?;
        let name = to.name().ok_or(VfsError::Exists)?;
        check_guest_name(name)?;
        let parent = to.parent().ok_or(VfsError::Exists)?;
        match self.locate(&parent) {
            Some(p) if p.kind == Kind::Dir => {}
            Some(_) => return Err(VfsError::NotDirectory),
            None => return Err(VfsError::NotFound),
        }
        let target = self.locate(to);
        match (f.kind, target.map(|t| t.kind)) {
            (Kind::Dir, Some(Kind::Dir)) if !self.read_dir(to)?.is_empty() => {
                return Err(VfsError::NotEmpty);
            }
            (Kind::Dir, Some(Kind::Dir)) => {}
            (Kind::Dir, Some(_)) => return Err(VfsError::NotDirectory),
            (_, Some(Kind::Dir)) => return Err(VfsError::IsDirectory),
            _ => {}
        }
        let _g = self.lock();
        // The source, whole, in the upper layer.
        if f.kind == Kind::Dir {
            self.copy_up_tree(from)?;
        } else if f.layer != Layer::Upper {
            self.copy_up(from, f)?;
        }
        let upper = self.upper_dir()?;
        // The target's room: what the upper held there goes, and whatever
        // the lower layers hold there stays hidden by the renamed entry.
        if let Some(t) = target
            && t.layer == Layer::Upper
        {
            let bytes = self.upper_bytes(to);
            match t.kind {
                Kind::Dir => upper.remove_dir_all(to.rel()),
                _ => upper.remove_file(to.rel()),
            }
            .map_err(io_err)?;
            self.freed(bytes);
        }
        self.make_room(&parent, name)?;
        upper.rename(from.rel(), upper, to.rel()).map_err(io_err)?;
        self.hide_lower(from)
    }

    /// Changes the access and modification times of `p`, copying a lower
    /// file up first.
    pub fn set_times(
        &self,
        p: &VPath,
        accessed: Option<std::time::SystemTime>,
        modified: Option<std::time::SystemTime>,
    ) -> VfsResult<()> {
        let f = self.locate(p).ok_or(VfsError::NotFound)?;
        if self.synthetic.contains(p) && f.layer == Layer::Synthetic {
            return Ok(());
        }
        self.changeable(p)?;
        let _g = self.lock();
        match f.kind {
            Kind::Dir => self.ensure_upper_dirs(p)?,
            Kind::Symlink => return Err(VfsError::NotPermitted),
            Kind::File if f.layer != Layer::Upper => self.copy_up(p, f)?,
            Kind::File => {}
        }
        let mut times = std::fs::FileTimes::new();
        if let Some(a) = accessed {
            times = times.set_accessed(a);
        }
        if let Some(m) = modified {
            times = times.set_modified(m);
        }
        let upper = self.upper_dir()?;
        let file = if p.is_root() {
            upper.open(".")
        } else if f.kind == Kind::Dir {
            upper.open_dir(p.rel()).and_then(|d| d.open("."))
        } else {
            upper.open_with(p.rel(), OpenOptions::new().write(true))
        }
        .map_err(io_err)?;
        file.into_std().set_times(times).map_err(io_err)
    }

    /// Refuses a change beneath a mount point.
    fn changeable(&self, p: &VPath) -> VfsResult<()> {
        if self
            .mounts
            .iter()
            .any(|m| p.len() > m.len() && p.starts_with(m))
        {
            return Err(VfsError::NotPermitted);
        }
        Ok(())
    }

    /// What the container changed, as `docker diff` lists it: every path
    /// its writable layer holds, added (no lower layer has it), changed
    /// (one does) or deleted (a whiteout), sorted by path.
    pub fn changes(&self) -> VfsResult<Vec<(VPath, Change)>> {
        let mut out = Vec::new();
        let Some(upper) = self.upper.get() else {
            return Ok(out);
        };
        let lowers: Vec<(Layer, &Dir)> = self
            .lowers
            .iter()
            .enumerate()
            .map(|(i, d)| (Layer::Lower(i), d))
            .collect();
        let mut stack = vec![VPath::root()];
        while let Some(dir) = stack.pop() {
            for e in upper.read_dir(dir.rel()).map_err(io_err)? {
                let e = e.map_err(io_err)?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name == OPAQUE {
                    continue;
                }
                if let Some(gone) = name.strip_prefix(WHITEOUT) {
                    out.push((dir.join(gone), Change::Deleted));
                    continue;
                }
                let p = dir.join(&name);
                let below = self.walk_from(&p, lowers.clone()).found.is_some();
                out.push((
                    p.clone(),
                    if below {
                        Change::Modified
                    } else {
                        Change::Added
                    },
                ));
                if e.file_type().map_err(io_err)?.is_dir() {
                    stack.push(p);
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The upper layer, made now if this is the first write. Callers hold
    /// the change lock.
    fn upper_dir(&self) -> VfsResult<&Dir> {
        if let Some(d) = self.upper.get() {
            return Ok(d);
        }
        std::fs::create_dir_all(&self.upper_path).map_err(io_err)?;
        let d = Dir::open_ambient_dir(&self.upper_path, ambient_authority()).map_err(io_err)?;
        let _ = self.upper.set(d);
        self.upper.get().ok_or(VfsError::Invalid)
    }

    fn work_dir(&self) -> VfsResult<&Dir> {
        if let Some(d) = self.work.get() {
            return Ok(d);
        }
        std::fs::create_dir_all(&self.work_path).map_err(io_err)?;
        let d = Dir::open_ambient_dir(&self.work_path, ambient_authority()).map_err(io_err)?;
        let _ = self.work.set(d);
        self.work.get().ok_or(VfsError::Invalid)
    }

    /// Makes the directory `p` (which the view holds) and its ancestors in
    /// the upper layer.
    fn ensure_upper_dirs(&self, p: &VPath) -> VfsResult<()> {
        let upper = self.upper_dir()?;
        let mut cur = VPath::root();
        for n in p.names() {
            cur = cur.join(n);
            match kind_in(upper, &cur) {
                Some(Kind::Dir) => {}
                Some(_) => return Err(VfsError::NotDirectory),
                None => upper.create_dir(cur.rel()).map_err(io_err)?,
            }
        }
        Ok(())
    }

    /// Readies the upper directory `parent` for a new entry `name`: makes
    /// it, and takes away a whiteout of `name`. Returns whether there was
    /// one (what it hid stays hidden: the caller makes a new directory
    /// opaque).
    fn make_room(&self, parent: &VPath, name: &str) -> VfsResult<bool> {
        self.ensure_upper_dirs(parent)?;
        let upper = self.upper_dir()?;
        let wh = marker(parent, &format!("{WHITEOUT}{name}"));
        if exists_in(upper, &wh) {
            upper.remove_file(&wh).map_err(io_err)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// After `p` left the upper layer: if a lower layer still shows
    /// something there, a whiteout hides it.
    fn hide_lower(&self, p: &VPath) -> VfsResult<()> {
        if self.locate(p).is_none() {
            return Ok(());
        }
        let parent = p.parent().ok_or(VfsError::NotPermitted)?;
        self.ensure_upper_dirs(&parent)?;
        let wh = whiteout_of(p).ok_or(VfsError::NotPermitted)?;
        self.upper_dir()?.write(wh, b"").map_err(io_err)
    }

    /// Copies the lower file or symlink at `p` into the upper layer,
    /// whole, staged in the work directory and renamed into place.
    fn copy_up(&self, p: &VPath, f: Found) -> VfsResult<()> {
        let lower = self.layer_dir(f.layer).ok_or(VfsError::NotFound)?;
        let parent = p.parent().ok_or(VfsError::NotPermitted)?;
        self.ensure_upper_dirs(&parent)?;
        let upper = self.upper_dir()?;
        if f.kind == Kind::Symlink {
            let target = lower.read_link_contents(p.rel()).map_err(io_err)?;
            return symlink_in(upper, &target.to_string_lossy(), &p.rel()).map_err(io_err);
        }
        let work = self.work_dir()?;
        // Unique across processes too: a stale file of a crash never
        // collides with a new copy.
        let tmp = format!(
            "copy-{}-{}",
            std::process::id(),
            self.temp.fetch_add(1, Ordering::Relaxed)
        );
        let mut src = lower.open(p.rel()).map_err(io_err)?;
        let meta = src.metadata().map_err(io_err)?;
        if let Some(q) = &self.quota
            && !q.reserve(meta.len())
        {
            return Err(VfsError::NoSpace);
        }
        let copied = (|| -> io::Result<()> {
            let mut dst = work.create(&tmp)?;
            io::copy(&mut src, &mut dst)?;
            dst.set_permissions(meta.permissions())?;
            if let Ok(m) = meta.modified() {
                let _ = dst
                    .into_std()
                    .set_times(std::fs::FileTimes::new().set_modified(m.into_std()));
            }
            work.rename(&tmp, upper, p.rel())
        })();
        if let Err(e) = copied {
            let _ = work.remove_file(&tmp);
            self.freed(meta.len());
            return Err(io_err(e));
        }
        Ok(())
    }

    /// Copies the directory `p` and everything the view shows under it into
    /// the upper layer, and marks it opaque: it then stands alone, as a
    /// rename needs.
    fn copy_up_tree(&self, p: &VPath) -> VfsResult<()> {
        self.ensure_upper_dirs(p)?;
        for (name, kind) in self.read_dir(p)? {
            let child = p.join(&name);
            if self.synthetic.contains(&child)
                && self.locate(&child).map(|f| f.layer) == Some(Layer::Synthetic)
            {
                continue;
            }
            match kind {
                Kind::Dir => self.copy_up_tree(&child)?,
                _ => {
                    let f = self.locate(&child).ok_or(VfsError::NotFound)?;
                    if f.layer != Layer::Upper {
                        self.copy_up(&child, f)?;
                    }
                }
            }
        }
        let upper = self.upper_dir()?;
        if !exists_in(upper, &marker(p, OPAQUE)) {
            upper.write(marker(p, OPAQUE), b"").map_err(io_err)?;
        }
        Ok(())
    }
}

impl Tree for Overlay {
    fn kind(&self, p: &VPath) -> Option<Kind> {
        self.locate(p).map(|f| f.kind)
    }

    fn link(&self, p: &VPath) -> VfsResult<String> {
        self.read_link(p)
    }
}

#[cfg(unix)]
fn links(m: &cap_std::fs::Metadata) -> u64 {
    use cap_std::fs::MetadataExt;
    m.nlink()
}

#[cfg(not(unix))]
fn links(_m: &cap_std::fs::Metadata) -> u64 {
    1
}

fn check_guest_name(name: &str) -> VfsResult<()> {
    path::check_name(name)?;
    if name.starts_with(WHITEOUT) {
        return Err(VfsError::NotPermitted);
    }
    Ok(())
}

#[cfg(unix)]
fn symlink_in(dir: &Dir, target: &str, link: &str) -> io::Result<()> {
    dir.symlink(target, link)
}

#[cfg(windows)]
fn symlink_in(dir: &Dir, target: &str, link: &str) -> io::Result<()> {
    dir.symlink_file(target, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two lower layers and a place for two containers' upper layers.
    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("tempdir");
            let base = dir.path().join("base");
            let top = dir.path().join("top");
            for d in ["bin", "etc", "gone", "opaque/old", "var/log"] {
                std::fs::create_dir_all(base.join(d)).expect("mkdir");
            }
            std::fs::write(base.join("bin/busybox"), b"elf").expect("write");
            std::fs::write(base.join("etc/passwd"), b"root").expect("write");
            std::fs::write(base.join("etc/hosts"), b"127.0.0.1").expect("write");
            std::fs::write(base.join("gone/file"), b"x").expect("write");
            std::fs::write(base.join("opaque/old/file"), b"x").expect("write");
            std::fs::write(base.join("var/log/a"), b"a").expect("write");
            std::fs::hard_link(base.join("etc/hosts"), base.join("etc/hosts.link")).expect("link");
            #[cfg(unix)]
            {
                std::os::unix::fs::symlink("busybox", base.join("bin/sh")).expect("symlink");
                std::os::unix::fs::symlink("/etc", base.join("abs")).expect("symlink");
            }
            for d in ["etc", "opaque/new"] {
                std::fs::create_dir_all(top.join(d)).expect("mkdir");
            }
            std::fs::write(top.join("etc/passwd"), b"root\nuser").expect("write");
            std::fs::write(top.join(".wh.gone"), b"").expect("write");
            std::fs::write(top.join("opaque/.wh..wh..opq"), b"").expect("write");
            std::fs::write(top.join("etc/.wh.hosts"), b"").expect("write");
            Self { dir }
        }

        fn overlay(&self, name: &str) -> Overlay {
            let d = self.dir.path();
            Overlay::new(
                &[d.join("top"), d.join("base")],
                &d.join(name).join("upper"),
                &d.join(name).join("work"),
                &[VPath::parse_lexical("/app")],
                &[
                    VPath::parse_lexical("/proc"),
                    VPath::parse_lexical("/mnt/data"),
                ],
            )
            .expect("overlay")
        }

        fn upper(&self, name: &str) -> PathBuf {
            self.dir.path().join(name).join("upper")
        }

        fn base(&self, rel: &str) -> PathBuf {
            self.dir.path().join("base").join(rel)
        }
    }

    fn p(s: &str) -> VPath {
        VPath::parse_lexical(s)
    }

    fn read(o: &Overlay, path: &str) -> String {
        let mut f = o.open_file(&p(path), Open::default()).expect("open");
        let mut s = String::new();
        io::Read::read_to_string(&mut f, &mut s).expect("read");
        s
    }

    fn write(o: &Overlay, path: &str, data: &str) {
        let mut f = o
            .open_file(
                &p(path),
                Open {
                    write: true,
                    create: true,
                    truncate: true,
                    ..Open::default()
                },
            )
            .expect("open for writing");
        io::Write::write_all(&mut f, data.as_bytes()).expect("write");
    }

    fn names(o: &Overlay, path: &str) -> Vec<String> {
        o.read_dir(&p(path))
            .expect("read_dir")
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn reading_never_makes_the_upper_layer() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        assert_eq!(read(&o, "/etc/passwd"), "root\nuser");
        let mut root = names(&o, "/");
        root.retain(|n| n != "abs");
        assert_eq!(root, ["app", "bin", "etc", "mnt", "opaque", "proc", "var"]);
        assert_eq!(names(&o, "/etc"), ["hosts.link", "passwd"]);
        assert!(o.metadata(&p("/bin/busybox")).is_ok());
        assert!(o.metadata(&p("/proc")).expect("mount point").is_dir());
        assert!(!fx.upper("a").exists() && !o.has_upper());
    }

    #[test]
    fn whiteouts_and_opaque_directories_of_the_layers_apply() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        assert!(o.locate(&p("/gone")).is_none());
        assert!(o.locate(&p("/gone/file")).is_none());
        assert!(o.locate(&p("/etc/hosts")).is_none());
        assert_eq!(names(&o, "/opaque"), ["new"]);
        assert!(
            o.locate(&p("/.wh.gone")).is_none(),
            "markers are never seen"
        );
    }

    #[test]
    fn a_write_copies_the_file_up_and_leaves_the_layer_alone() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        write(&o, "/bin/busybox", "patched");
        assert_eq!(read(&o, "/bin/busybox"), "patched");
        assert_eq!(std::fs::read(fx.base("bin/busybox")).expect("read"), b"elf");
        assert_eq!(
            std::fs::read(fx.upper("a").join("bin/busybox")).expect("read"),
            b"patched"
        );
        // Only the file and its directory: nothing else was copied.
        let mut listed: Vec<String> = walkdir::WalkDir::new(fx.upper("a"))
            .min_depth(1)
            .into_iter()
            .flatten()
            .map(|e| {
                e.path()
                    .strip_prefix(fx.upper("a"))
                    .expect("under")
                    .display()
                    .to_string()
            })
            .collect();
        listed.sort();
        assert_eq!(listed, ["bin", "bin/busybox"]);
        // An append keeps what was there.
        let mut f = o
            .open_file(
                &p("/etc/passwd"),
                Open {
                    write: true,
                    append: true,
                    ..Open::default()
                },
            )
            .expect("append");
        io::Write::write_all(&mut f, b"\nmore").expect("write");
        drop(f);
        assert_eq!(read(&o, "/etc/passwd"), "root\nuser\nmore");
    }

    #[test]
    fn deletes_leave_whiteouts_and_new_directories_over_them_are_opaque() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        o.remove_file(&p("/var/log/a")).expect("rm");
        assert!(o.locate(&p("/var/log/a")).is_none());
        assert!(names(&o, "/var/log").is_empty());
        assert!(fx.upper("a").join("var/log/.wh.a").exists());
        assert!(fx.base("var/log/a").exists());
        o.remove_dir(&p("/var/log")).expect("rmdir");
        assert_eq!(names(&o, "/var"), Vec::<String>::new());
        assert!(matches!(o.remove_dir(&p("/etc")), Err(VfsError::NotEmpty)));
        // Made again: empty, whatever the layers below held.
        o.create_dir(&p("/var/log")).expect("mkdir");
        assert!(names(&o, "/var/log").is_empty());
        write(&o, "/var/log/a", "new");
        assert_eq!(read(&o, "/var/log/a"), "new");
        // A file made where a whiteout was simply takes its place.
        o.remove_file(&p("/etc/passwd")).expect("rm");
        assert!(matches!(
            o.open_file(&p("/etc/passwd"), Open::default()),
            Err(VfsError::NotFound)
        ));
        write(&o, "/etc/passwd", "again");
        assert_eq!(read(&o, "/etc/passwd"), "again");
        assert!(!fx.upper("a").join("etc/.wh.passwd").exists());
        // Guests cannot make wrun's markers.
        assert!(matches!(
            o.create_dir(&p("/.wh.x")),
            Err(VfsError::NotPermitted)
        ));
    }

    #[test]
    fn changes_list_what_the_writable_layer_holds() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        assert!(o.changes().expect("none").is_empty());
        write(&o, "/etc/passwd", "x");
        write(&o, "/new", "y");
        o.remove_file(&p("/bin/busybox")).expect("rm");
        let got: Vec<(String, Change)> = o
            .changes()
            .expect("changes")
            .into_iter()
            .map(|(p, c)| (p.to_string(), c))
            .collect();
        assert_eq!(
            got,
            [
                ("/bin".to_string(), Change::Modified),
                ("/bin/busybox".to_string(), Change::Deleted),
                ("/etc".to_string(), Change::Modified),
                ("/etc/passwd".to_string(), Change::Modified),
                ("/new".to_string(), Change::Added),
            ]
        );
    }

    #[test]
    fn renames_across_layers() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        // A lower file to a new name.
        o.rename(&p("/etc/passwd"), &p("/etc/passwd.old"))
            .expect("rename file");
        assert!(o.locate(&p("/etc/passwd")).is_none());
        assert_eq!(read(&o, "/etc/passwd.old"), "root\nuser");
        // A lower directory with children, whole.
        o.rename(&p("/var"), &p("/srv")).expect("rename dir");
        assert!(o.locate(&p("/var")).is_none());
        assert_eq!(read(&o, "/srv/log/a"), "a");
        assert_eq!(names(&o, "/srv/log"), ["a"]);
        // Onto an existing lower file: replaced.
        write(&o, "/tmpfile", "mine");
        o.rename(&p("/tmpfile"), &p("/bin/busybox"))
            .expect("replace");
        assert_eq!(read(&o, "/bin/busybox"), "mine");
        assert!(matches!(
            o.rename(&p("/bin"), &p("/etc")),
            Err(VfsError::NotEmpty)
        ));
        assert!(matches!(
            o.rename(&p("/srv"), &p("/srv/x")),
            Err(VfsError::Invalid)
        ));
        assert_eq!(std::fs::read(fx.base("bin/busybox")).expect("read"), b"elf");
    }

    #[test]
    fn hard_links_copy_up_once_and_share_data() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        assert_eq!(read(&o, "/etc/hosts.link"), "127.0.0.1");
        o.hard_link(&p("/etc/passwd"), &p("/etc/pw")).expect("link");
        write(&o, "/etc/pw", "shared");
        assert_eq!(read(&o, "/etc/passwd"), "shared");
        assert!(matches!(
            o.hard_link(&p("/etc"), &p("/e2")),
            Err(VfsError::NotPermitted)
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_resolve_inside_the_root_only() {
        let fx = Fixture::new();
        let o = fx.overlay("a");
        let root = VPath::root();
        assert_eq!(
            o.resolve(&root, "bin/sh", true).expect("sh").to_string(),
            "/bin/busybox"
        );
        assert!(matches!(
            o.resolve(&root, "abs/passwd", true),
            Err(VfsError::NotPermitted)
        ));
        // Planted at run time, in the upper layer: the same rules.
        o.symlink("../../..", &p("/up")).expect("symlink");
        assert!(matches!(
            o.resolve(&root, "up/etc", true),
            Err(VfsError::NotPermitted)
        ));
        o.symlink("etc/passwd", &p("/pw")).expect("symlink");
        assert_eq!(
            o.resolve(&root, "pw", true).expect("pw").to_string(),
            "/etc/passwd"
        );
        assert_eq!(o.read_link(&p("/pw")).expect("readlink"), "etc/passwd");
        // A link into what a whiteout hides finds nothing.
        o.symlink("gone/file", &p("/hidden")).expect("symlink");
        let r = o.resolve(&root, "hidden", true);
        assert!(matches!(r, Err(VfsError::NotFound)), "{r:?}");
    }

    #[test]
    fn two_containers_of_one_image_never_see_each_others_changes() {
        let fx = Fixture::new();
        let a = fx.overlay("a");
        let b = fx.overlay("b");
        write(&a, "/etc/passwd", "a's");
        write(&a, "/only-a", "x");
        a.remove_file(&p("/bin/busybox")).expect("rm");
        assert_eq!(read(&b, "/etc/passwd"), "root\nuser");
        assert!(b.locate(&p("/only-a")).is_none());
        assert_eq!(read(&b, "/bin/busybox"), "elf", "deleted by a, still b's");
        assert!(!b.has_upper());
        // A view made again over the same upper layer sees what was written.
        let a2 = fx.overlay("a");
        assert_eq!(read(&a2, "/etc/passwd"), "a's");
        assert!(a2.locate(&p("/bin/busybox")).is_none());
    }

    #[test]
    fn views_that_have_not_been_written_share_a_key_until_one_writes() {
        let fx = Fixture::new();
        let a = fx.overlay("a");
        let b = fx.overlay("b");
        let key = a.unwritten_key().expect("a has not written");
        assert_eq!(b.unwritten_key().as_ref(), Some(&key));
        // Other mount points can hide other paths: another key.
        let d = fx.dir.path();
        let other = Overlay::new(
            &[d.join("top"), d.join("base")],
            &d.join("c/upper"),
            &d.join("c/work"),
            &[VPath::parse_lexical("/app")],
            &[VPath::parse_lexical("/proc"), VPath::parse_lexical("/bin")],
        )
        .expect("overlay");
        assert_ne!(other.unwritten_key().as_ref(), Some(&key));
        write(&a, "/bin/new", "x");
        assert_eq!(a.unwritten_key(), None, "a wrote");
        assert_eq!(b.unwritten_key().as_ref(), Some(&key));
        // A view opened again over a written upper layer has no key either.
        assert_eq!(fx.overlay("a").unwritten_key(), None);
    }

    #[test]
    fn the_quota_counts_copy_ups_and_gives_back_deletes_renames_and_truncations() {
        let fx = Fixture::new();
        let o = fx.overlay("a").with_quota(10);
        let q = o.quota().expect("quota").clone();
        let open_rw = Open {
            write: true,
            ..Open::default()
        };
        // A copy-up counts the file's bytes: "root\nuser" is 9.
        drop(o.open_file(&p("/etc/passwd"), open_rw).expect("copy up"));
        assert_eq!(q.used(), 9);
        // Past the limit, a copy-up is refused and nothing is copied.
        assert!(matches!(
            o.open_file(&p("/bin/busybox"), open_rw),
            Err(VfsError::NoSpace)
        ));
        assert!(!fx.upper("a").join("bin/busybox").exists());
        assert_eq!(read(&o, "/bin/busybox"), "elf");
        // A truncating open gives the bytes back.
        drop(
            o.open_file(
                &p("/etc/passwd"),
                Open {
                    truncate: true,
                    ..open_rw
                },
            )
            .expect("truncate"),
        );
        assert_eq!(q.used(), 0);
        // So do a delete and a rename over a file.
        drop(o.open_file(&p("/bin/busybox"), open_rw).expect("copy up"));
        assert_eq!(q.used(), 3);
        o.remove_file(&p("/bin/busybox")).expect("rm");
        assert_eq!(q.used(), 0);
        drop(o.open_file(&p("/var/log/a"), open_rw).expect("copy up"));
        drop(
            o.open_file(&p("/etc/hosts.link"), open_rw)
                .expect("copy up"),
        );
        assert_eq!(q.used(), 10);
        o.rename(&p("/var/log/a"), &p("/etc/hosts.link"))
            .expect("rename");
        assert_eq!(q.used(), 1);
        // Another view of the same container starts from what is there.
        let again = fx.overlay("a").with_quota(10);
        assert_eq!(again.quota().expect("quota").used(), 1);
    }

    #[test]
    fn whole_writes_fit_the_quota_or_change_nothing() {
        let fx = Fixture::new();
        let o = fx.overlay("a").with_quota(10);
        let q = o.quota().expect("quota").clone();
        o.write_whole(&p("/new"), b"123456").expect("fits");
        assert_eq!(q.used(), 6);
        // Too big: refused, and the file keeps its bytes.
        assert!(matches!(
            o.write_whole(&p("/new2"), b"12345"),
            Err(VfsError::NoSpace)
        ));
        assert!(o.locate(&p("/new2")).is_none());
        // Replacing a file counts only the difference.
        assert!(o.fits(&[(&p("/new"), 10)]));
        assert!(!o.fits(&[(&p("/new"), 10), (&p("/other"), 1)]));
        o.write_whole(&p("/new"), b"0123456789").expect("replaces");
        assert_eq!(q.used(), 10);
        assert_eq!(read(&o, "/new"), "0123456789");
        assert!(matches!(
            o.write_whole(&p("/new"), b"0123456789a"),
            Err(VfsError::NoSpace)
        ));
        assert_eq!(read(&o, "/new"), "0123456789");
    }
}
