//! The guest's root filesystem as the layered view (`crate::vfs`):
//! `wasi:filesystem/types` and `/preopens` are added to the component
//! linker a second time, shadowing wasmtime-wasi's own, with a view that
//! serves the container's `/` from its `Overlay` and delegates everything
//! else to wasmtime-wasi:
//! - directories of the view are wrun's descriptors: lookups, listings and
//!   changes (make, remove, rename, link, symlink) go through the overlay,
//!   with its copy-up and whiteouts;
//! - a file opened through the view is a real host file (the lower layer's,
//!   read-only, or the upper layer's after copy-up), handed to
//!   wasmtime-wasi as its own descriptor, so reads, writes and streams are
//!   wasmtime-wasi's;
//! - `/proc` is the container's process table, from memory (`procfs.rs`);
//! - other preopens (volumes) are wasmtime-wasi's directories, untouched.
//!
//! A descriptor handle names a table entry that is either wasmtime-wasi's
//! `Descriptor` or one of wrun's (`ViewDir`, `ProcDesc`); the table checks
//! the type of every access, so a handle can never be read as the wrong
//! one.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::filesystem::{
    Descriptor, File, FsPerms, OpenMode, WasiFilesystemCtx, WasiFilesystemCtxView,
};
use wasmtime_wasi::p2::bindings::filesystem::preopens;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, DescriptorFlags, DescriptorStat, DescriptorType, DirectoryEntry, ErrorCode,
    HostDescriptor, HostDirectoryEntryStream, MetadataHashValue, NewTimestamp, OpenFlags,
    PathFlags,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult, ReaddirIterator};

use super::Usage;
use super::procfs::{self, ProcNode};
use super::proctable::ProcTable;
use super::quota_stream::{self, QuotaStream};
use crate::vfs::{Kind, Overlay, Quota, VPath, VfsError, overlay::Open};

/// A directory of the view, as a guest holds it.
struct ViewDir {
    view: Arc<Overlay>,
    path: VPath,
}

/// A directory or file of `/proc`, as a guest holds it; a file's bytes are
/// taken when it is opened, as Linux renders them then.
struct ProcDesc {
    table: ProcTable,
    node: ProcNode,
    bytes: Arc<[u8]>,
}

/// What a descriptor handle names.
enum Node {
    /// wasmtime-wasi's own: a file, or a volume's directory.
    Host,
    Layers(Arc<Overlay>, VPath),
    Proc(ProcTable, ProcNode, Arc<[u8]>),
}

/// A listing of a directory of the view.
struct ViewListing(std::vec::IntoIter<DirectoryEntry>);

/// What a guest store needs to serve the view: its root, if it has one
/// (without, every preopen is wasmtime-wasi's).
#[derive(Debug)]
pub struct FsState {
    pub root: Option<Arc<Overlay>>,
    /// The container's process table, served at `/proc`.
    pub proc: Option<ProcTable>,
    /// The host files this store's guest holds open, counted against its
    /// container's limit.
    pub files: OpenFiles,
}

/// The descriptors of one guest that hold a host file or directory, by
/// handle, each counted in the container's [`Usage`], with the limit its
/// writes keep to (a file of the writable layer opened for writing, when
/// the container has `--storage-opt size=`). When the guest's store goes
/// (whatever it left open), they are given back.
#[derive(Debug)]
pub struct OpenFiles {
    usage: Arc<Usage>,
    held: Mutex<HashMap<u32, Option<Arc<Quota>>>>,
}

impl OpenFiles {
    pub fn new(usage: Arc<Usage>) -> Self {
        Self {
            usage,
            held: Mutex::default(),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Option<Arc<Quota>>>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for OpenFiles {
    fn drop(&mut self) {
        for _ in self.held().drain() {
            self.usage.closed_file();
        }
    }
}

/// wasmtime-wasi's filesystem context and the store's resource table, plus
/// the view.
pub struct FsCtxView<'a> {
    pub ctx: &'a mut WasiFilesystemCtx,
    pub table: &'a mut ResourceTable,
    pub state: &'a FsState,
}

/// Store data that can hand out the shadow's view.
pub trait FsView: Send {
    fn fs_view(&mut self) -> FsCtxView<'_>;
}

struct LayeredFs;

impl HasData for LayeredFs {
    type Data<'a> = FsCtxView<'a>;
}

/// Shadows wasmtime-wasi's filesystem interfaces in `linker`, which must
/// hold them already.
pub fn add_to_linker<T: FsView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    types::add_to_linker::<T, LayeredFs>(linker, T::fs_view)?;
    preopens::add_to_linker::<T, LayeredFs>(linker, T::fs_view)?;
    linker.allow_shadowing(false);
    Ok(())
}

fn code(e: VfsError) -> ErrorCode {
    match e {
        VfsError::NotFound => ErrorCode::NoEntry,
        VfsError::Exists => ErrorCode::Exist,
        VfsError::NotPermitted => ErrorCode::NotPermitted,
        VfsError::NotDirectory => ErrorCode::NotDirectory,
        VfsError::IsDirectory => ErrorCode::IsDirectory,
        VfsError::NotEmpty => ErrorCode::NotEmpty,
        VfsError::Loop => ErrorCode::Loop,
        VfsError::Invalid => ErrorCode::Invalid,
        VfsError::NoSpace => ErrorCode::InsufficientSpace,
        VfsError::Io(e) => ErrorCode::from(e),
    }
}

/// A `/proc` file's bytes from `offset` on (none past its end); a
/// directory there cannot be read.
fn proc_from<'a>(n: &ProcNode, bytes: &'a [u8], offset: types::Filesize) -> FsResult<&'a [u8]> {
    if n.is_dir() {
        return Err(ErrorCode::IsDirectory.into());
    }
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(bytes.len());
    Ok(&bytes[start..])
}

fn fs_err(e: VfsError) -> FsError {
    code(e).into()
}

/// Another handle to the same table entry, typed as `T`.
fn retype<T: 'static, U: 'static>(r: &Resource<T>) -> Resource<U> {
    Resource::new_borrow(r.rep())
}

fn datetime(t: SystemTime) -> Option<wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime> {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).ok()?;
    Some(wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime {
        seconds: d.as_secs(),
        nanoseconds: d.subsec_nanos(),
    })
}

fn new_time(t: NewTimestamp) -> Option<SystemTime> {
    match t {
        NewTimestamp::NoChange => None,
        NewTimestamp::Now => Some(SystemTime::now()),
        NewTimestamp::Timestamp(d) => {
            Some(SystemTime::UNIX_EPOCH + Duration::new(d.seconds, d.nanoseconds.min(999_999_999)))
        }
    }
}

fn descriptor_type(k: Kind) -> DescriptorType {
    match k {
        Kind::File => DescriptorType::RegularFile,
        Kind::Dir => DescriptorType::Directory,
        Kind::Symlink => DescriptorType::SymbolicLink,
    }
}

fn stat_of(m: &cap_std::fs::Metadata) -> DescriptorStat {
    let ft = m.file_type();
    let type_ = if ft.is_dir() {
        DescriptorType::Directory
    } else if ft.is_symlink() {
        DescriptorType::SymbolicLink
    } else {
        DescriptorType::RegularFile
    };
    #[cfg(unix)]
    let link_count = {
        use cap_std::fs::MetadataExt as _;
        m.nlink()
    };
    #[cfg(not(unix))]
    let link_count = 1;
    DescriptorStat {
        type_,
        link_count,
        size: m.len(),
        data_access_timestamp: m.accessed().ok().and_then(|t| datetime(t.into_std())),
        data_modification_timestamp: m.modified().ok().and_then(|t| datetime(t.into_std())),
        status_change_timestamp: None,
    }
}

/// A directory's identity: its view and path (a directory of the view is
/// the same object wherever its layers hold it).
fn dir_hash(view: &Arc<Overlay>, path: &VPath) -> MetadataHashValue {
    let mut a = DefaultHasher::new();
    (Arc::as_ptr(view) as usize, path, 0u8).hash(&mut a);
    let mut b = DefaultHasher::new();
    (Arc::as_ptr(view) as usize, path, 1u8).hash(&mut b);
    MetadataHashValue {
        lower: a.finish(),
        upper: b.finish(),
    }
}

fn proc_stat(n: ProcNode, bytes: &[u8]) -> DescriptorStat {
    DescriptorStat {
        type_: if n.is_dir() {
            DescriptorType::Directory
        } else {
            DescriptorType::RegularFile
        },
        link_count: 1,
        size: if n.is_dir() { 0 } else { bytes.len() as u64 },
        data_access_timestamp: None,
        data_modification_timestamp: None,
        status_change_timestamp: None,
    }
}

fn proc_hash(n: ProcNode) -> MetadataHashValue {
    let mut a = DefaultHasher::new();
    ("proc", n, 0u8).hash(&mut a);
    let mut b = DefaultHasher::new();
    ("proc", n, 1u8).hash(&mut b);
    MetadataHashValue {
        lower: a.finish(),
        upper: b.finish(),
    }
}

impl FsCtxView<'_> {
    fn wasi(&mut self) -> WasiFilesystemCtxView<'_> {
        WasiFilesystemCtxView {
            ctx: self.ctx,
            table: self.table,
        }
    }

    /// What `fd` names.
    fn node(&self, fd: &Resource<Descriptor>) -> Node {
        if let Ok(d) = self.table.get(&retype::<_, ViewDir>(fd)) {
            return Node::Layers(d.view.clone(), d.path.clone());
        }
        if let Ok(p) = self.table.get(&retype::<_, ProcDesc>(fd)) {
            return Node::Proc(p.table.clone(), p.node, p.bytes.clone());
        }
        Node::Host
    }

    /// The view's directory behind `fd`, if it is one.
    fn dir(&self, fd: &Resource<Descriptor>) -> Option<(Arc<Overlay>, VPath)> {
        match self.node(fd) {
            Node::Layers(v, p) => Some((v, p)),
            _ => None,
        }
    }

    fn push_proc(&mut self, table: ProcTable, node: ProcNode) -> FsResult<Resource<Descriptor>> {
        let bytes: Arc<[u8]> = if node.is_dir() {
            Arc::from(Vec::new())
        } else {
            Arc::from(procfs::content(&table, node).ok_or(ErrorCode::NoEntry)?)
        };
        let r = self.table.push(ProcDesc { table, node, bytes })?;
        Ok(Resource::new_own(r.rep()))
    }

    fn push_dir(&mut self, view: Arc<Overlay>, path: VPath) -> FsResult<Resource<Descriptor>> {
        let r = self.table.push(ViewDir { view, path })?;
        Ok(Resource::new_own(r.rep()))
    }

    /// A host file, as wasmtime-wasi's descriptor.
    fn push_file(&mut self, file: std::fs::File, write: bool) -> FsResult<Resource<Descriptor>> {
        let (perms, mode) = if write {
            (FsPerms::ReadWrite, OpenMode::READ | OpenMode::WRITE)
        } else {
            (FsPerms::ReadOnly, OpenMode::READ)
        };
        Ok(self
            .table
            .push(Descriptor::File(File::new(file, perms, mode, false)))?)
    }

    /// Counts a host file or directory about to be opened; past the
    /// container's limit (`--ulimit nofile`) the open is refused with
    /// `quota` (EDQUOT: WASI's error codes have no EMFILE), and nothing is
    /// opened.
    fn opening(&self) -> FsResult<()> {
        if self.state.files.usage.opening_file() {
            Ok(())
        } else {
            Err(ErrorCode::Quota.into())
        }
    }

    /// Settles the count of an open: kept for the new descriptor (whose
    /// writes keep to `quota`), given back if the open failed.
    fn opened(
        &mut self,
        opened: FsResult<Resource<Descriptor>>,
        quota: Option<Arc<Quota>>,
    ) -> FsResult<Resource<Descriptor>> {
        match &opened {
            Ok(r) => {
                self.state.files.held().insert(r.rep(), quota);
            }
            Err(_) => self.state.files.usage.closed_file(),
        }
        opened
    }
}

impl FsCtxView<'_> {
    /// The limit `fd`'s writes keep to, with its host file, if it has one.
    fn quota_of(&self, fd: &Resource<Descriptor>) -> Option<(Arc<Quota>, Arc<std::fs::File>)> {
        let quota = self.state.files.held().get(&fd.rep())?.clone()?;
        match self.table.get(fd).ok()? {
            Descriptor::File(f) => Some((quota, f.file.clone())),
            Descriptor::Dir(_) => None,
        }
    }

    /// A stream of wasmtime-wasi's on `fd` (writing at `offset`, or at the
    /// end when `None`), kept to `fd`'s limit if it has one.
    fn limited(
        &mut self,
        fd: &Resource<Descriptor>,
        stream: Resource<DynOutputStream>,
        offset: Option<u64>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let Some((quota, file)) = self.quota_of(fd) else {
            return Ok(stream);
        };
        let inner = self.table.delete(stream)?;
        let wrapped: DynOutputStream = Box::new(QuotaStream::new(inner, file, offset, quota));
        Ok(self.table.push(wrapped)?)
    }
}

impl preopens::Host for FsCtxView<'_> {
    fn get_directories(&mut self) -> wasmtime::Result<Vec<(Resource<Descriptor>, String)>> {
        let mut dirs = preopens::Host::get_directories(&mut self.wasi())?;
        if let Some(root) = self.state.root.clone() {
            let r = self.table.push(ViewDir {
                view: root,
                path: VPath::root(),
            })?;
            dirs.insert(0, (Resource::new_own(r.rep()), "/".to_string()));
        }
        if let Some(table) = self.state.proc.clone() {
            let r = self.table.push(ProcDesc {
                table,
                node: ProcNode::Root,
                bytes: Arc::from(Vec::new()),
            })?;
            dirs.push((Resource::new_own(r.rep()), "/proc".to_string()));
        }
        Ok(dirs)
    }
}

impl types::Host for FsCtxView<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.wasi(), err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.wasi(), err)
    }
}

impl HostDescriptor for FsCtxView<'_> {
    async fn advise(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Ok(());
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::BadDescriptor.into());
        }
        HostDescriptor::advise(&mut self.wasi(), fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Ok(());
        }
        if self.dir(&fd).is_some() {
            return Ok(());
        }
        HostDescriptor::sync_data(&mut self.wasi(), fd).await
    }

    async fn get_flags(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorFlags> {
        if let Node::Proc(..) = self.node(&fd) {
            return Ok(DescriptorFlags::READ);
        }
        if self.dir(&fd).is_some() {
            return Ok(DescriptorFlags::READ | DescriptorFlags::MUTATE_DIRECTORY);
        }
        HostDescriptor::get_flags(&mut self.wasi(), fd).await
    }

    async fn get_type(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorType> {
        if let Node::Proc(_, n, _) = self.node(&fd) {
            return Ok(if n.is_dir() {
                DescriptorType::Directory
            } else {
                DescriptorType::RegularFile
            });
        }
        if self.dir(&fd).is_some() {
            return Ok(DescriptorType::Directory);
        }
        HostDescriptor::get_type(&mut self.wasi(), fd).await
    }

    async fn set_size(&mut self, fd: Resource<Descriptor>, size: types::Filesize) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::IsDirectory.into());
        }
        if let Some((quota, file)) = self.quota_of(&fd) {
            let before = file.metadata().map(|m| m.len()).unwrap_or(0);
            if !quota.resize(before, size) {
                return Err(ErrorCode::InsufficientSpace.into());
            }
        }
        HostDescriptor::set_size(&mut self.wasi(), fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<Descriptor>,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        if let Some((view, path)) = self.dir(&fd) {
            return view
                .set_times(&path, new_time(atim), new_time(mtim))
                .map_err(fs_err);
        }
        HostDescriptor::set_times(&mut self.wasi(), fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        if let Node::Proc(_, n, bytes) = self.node(&fd) {
            let rest = proc_from(&n, &bytes, offset)?;
            let take = rest.len().min(usize::try_from(len).unwrap_or(usize::MAX));
            return Ok((rest[..take].to_vec(), take == rest.len()));
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::IsDirectory.into());
        }
        HostDescriptor::read(&mut self.wasi(), fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::BadDescriptor.into());
        }
        if let Some((quota, file)) = self.quota_of(&fd)
            && !quota_stream::admit(&quota, &file, Some(offset), buf.len() as u64)
        {
            return Err(ErrorCode::InsufficientSpace.into());
        }
        HostDescriptor::write(&mut self.wasi(), fd, buf, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<ReaddirIterator>> {
        if let Node::Proc(table, n, _) = self.node(&fd) {
            let entries = procfs::entries(&table, n)?;
            let r = self.table.push(ViewListing(entries.into_iter()))?;
            return Ok(Resource::new_own(r.rep()));
        }
        let Some((view, path)) = self.dir(&fd) else {
            return HostDescriptor::read_directory(&mut self.wasi(), fd).await;
        };
        let entries: Vec<DirectoryEntry> = view
            .read_dir(&path)
            .map_err(fs_err)?
            .into_iter()
            .map(|(name, kind)| DirectoryEntry {
                type_: descriptor_type(kind),
                name,
            })
            .collect();
        let r = self.table.push(ViewListing(entries.into_iter()))?;
        Ok(Resource::new_own(r.rep()))
    }

    async fn sync(&mut self, fd: Resource<Descriptor>) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Ok(());
        }
        if self.dir(&fd).is_some() {
            return Ok(());
        }
        HostDescriptor::sync(&mut self.wasi(), fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::create_directory_at(&mut self.wasi(), fd, path).await;
        };
        let p = view.resolve(&base, &path, false).map_err(fs_err)?;
        view.create_dir(&p).map_err(fs_err)
    }

    async fn stat(&mut self, fd: Resource<Descriptor>) -> FsResult<DescriptorStat> {
        if let Node::Proc(_, n, bytes) = self.node(&fd) {
            return Ok(proc_stat(n, &bytes));
        }
        let Some((view, path)) = self.dir(&fd) else {
            return HostDescriptor::stat(&mut self.wasi(), fd).await;
        };
        Ok(stat_of(&view.metadata(&path).map_err(fs_err)?))
    }

    async fn stat_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
    ) -> FsResult<DescriptorStat> {
        if let Node::Proc(table, n, _) = self.node(&fd) {
            let at = procfs::resolve(&table, n, &path)?;
            let bytes = procfs::content(&table, at).unwrap_or_default();
            return Ok(proc_stat(at, &bytes));
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::stat_at(&mut self.wasi(), fd, flags, path).await;
        };
        let follow = flags.contains(PathFlags::SYMLINK_FOLLOW);
        let p = view.resolve(&base, &path, follow).map_err(fs_err)?;
        Ok(stat_of(&view.metadata(&p).map_err(fs_err)?))
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
        atim: NewTimestamp,
        mtim: NewTimestamp,
    ) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::set_times_at(&mut self.wasi(), fd, flags, path, atim, mtim)
                .await;
        };
        let follow = flags.contains(PathFlags::SYMLINK_FOLLOW);
        let p = view.resolve(&base, &path, follow).map_err(fs_err)?;
        view.set_times(&p, new_time(atim), new_time(mtim))
            .map_err(fs_err)
    }

    async fn link_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_flags: PathFlags,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        if matches!(self.node(&fd), Node::Proc(..)) || matches!(self.node(&new_fd), Node::Proc(..))
        {
            return Err(ErrorCode::ReadOnly.into());
        }
        match (self.dir(&fd), self.dir(&new_fd)) {
            (None, None) => {
                HostDescriptor::link_at(&mut self.wasi(), fd, old_flags, old_path, new_fd, new_path)
                    .await
            }
            (Some((view, base)), Some((other, new_base))) if Arc::ptr_eq(&view, &other) => {
                let follow = old_flags.contains(PathFlags::SYMLINK_FOLLOW);
                let from = view.resolve(&base, &old_path, follow).map_err(fs_err)?;
                let to = view.resolve(&new_base, &new_path, false).map_err(fs_err)?;
                view.hard_link(&from, &to).map_err(fs_err)
            }
            _ => Err(ErrorCode::CrossDevice.into()),
        }
    }

    async fn open_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
        oflags: OpenFlags,
        dflags: DescriptorFlags,
    ) -> FsResult<Resource<Descriptor>> {
        if let Node::Proc(table, n, _) = self.node(&fd) {
            let at = procfs::resolve(&table, n, &path)?;
            if dflags.contains(DescriptorFlags::WRITE)
                || oflags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE)
            {
                return Err(ErrorCode::ReadOnly.into());
            }
            if oflags.contains(OpenFlags::DIRECTORY) && !at.is_dir() {
                return Err(ErrorCode::NotDirectory.into());
            }
            return self.push_proc(table, at);
        }
        let Some((view, base)) = self.dir(&fd) else {
            // A volume's file or directory: a host descriptor.
            self.opening()?;
            let opened =
                HostDescriptor::open_at(&mut self.wasi(), fd, flags, path, oflags, dflags).await;
            return self.opened(opened, None);
        };
        let follow = flags.contains(PathFlags::SYMLINK_FOLLOW);
        let p = view.resolve(&base, &path, follow).map_err(fs_err)?;
        let found = view.locate(&p);
        let create = oflags.contains(OpenFlags::CREATE);
        let exclusive = oflags.contains(OpenFlags::EXCLUSIVE);
        let write = dflags.contains(DescriptorFlags::WRITE);
        let truncate = oflags.contains(OpenFlags::TRUNCATE);
        match found.map(|f| f.kind) {
            Some(Kind::Dir) => {
                if create && exclusive {
                    return Err(ErrorCode::Exist.into());
                }
                if write || truncate {
                    return Err(ErrorCode::IsDirectory.into());
                }
                return self.push_dir(view, p);
            }
            Some(_) if oflags.contains(OpenFlags::DIRECTORY) => {
                return Err(ErrorCode::NotDirectory.into());
            }
            None if oflags.contains(OpenFlags::DIRECTORY) => {
                return Err(ErrorCode::NoEntry.into());
            }
            _ => {}
        }
        let how = Open {
            write,
            create,
            exclusive,
            truncate,
            append: false,
        };
        self.opening()?;
        let opened = view
            .open_file(&p, how)
            .map_err(fs_err)
            .and_then(|file| self.push_file(file, write));
        let quota = view.quota().filter(|_| write).cloned();
        self.opened(opened, quota)
    }

    fn drop(&mut self, fd: Resource<Descriptor>) -> wasmtime::Result<()> {
        if self.state.files.held().remove(&fd.rep()).is_some() {
            self.state.files.usage.closed_file();
        }
        if let Node::Proc(..) = self.node(&fd) {
            self.table.delete(Resource::<ProcDesc>::new_own(fd.rep()))?;
            return Ok(());
        }
        if self.dir(&fd).is_some() {
            self.table.delete(Resource::<ViewDir>::new_own(fd.rep()))?;
            return Ok(());
        }
        HostDescriptor::drop(&mut self.wasi(), fd)
    }

    async fn readlink_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<String> {
        if let Node::Proc(table, n, _) = self.node(&fd) {
            procfs::resolve(&table, n, &path)?;
            return Err(ErrorCode::Invalid.into());
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::readlink_at(&mut self.wasi(), fd, path).await;
        };
        let p = view.resolve(&base, &path, false).map_err(fs_err)?;
        view.read_link(&p).map_err(fs_err)
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<Descriptor>,
        path: String,
    ) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::remove_directory_at(&mut self.wasi(), fd, path).await;
        };
        let p = view.resolve(&base, &path, false).map_err(fs_err)?;
        view.remove_dir(&p).map_err(fs_err)
    }

    async fn rename_at(
        &mut self,
        fd: Resource<Descriptor>,
        old_path: String,
        new_fd: Resource<Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        if matches!(self.node(&fd), Node::Proc(..)) || matches!(self.node(&new_fd), Node::Proc(..))
        {
            return Err(ErrorCode::ReadOnly.into());
        }
        match (self.dir(&fd), self.dir(&new_fd)) {
            (None, None) => {
                HostDescriptor::rename_at(&mut self.wasi(), fd, old_path, new_fd, new_path).await
            }
            (Some((view, base)), Some((other, new_base))) if Arc::ptr_eq(&view, &other) => {
                let from = view.resolve(&base, &old_path, false).map_err(fs_err)?;
                let to = view.resolve(&new_base, &new_path, false).map_err(fs_err)?;
                view.rename(&from, &to).map_err(fs_err)
            }
            _ => Err(ErrorCode::CrossDevice.into()),
        }
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::symlink_at(&mut self.wasi(), fd, src_path, dest_path).await;
        };
        let p = view.resolve(&base, &dest_path, false).map_err(fs_err)?;
        view.symlink(&src_path, &p).map_err(fs_err)
    }

    async fn unlink_file_at(&mut self, fd: Resource<Descriptor>, path: String) -> FsResult<()> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::unlink_file_at(&mut self.wasi(), fd, path).await;
        };
        let p = view.resolve(&base, &path, false).map_err(fs_err)?;
        view.remove_file(&p).map_err(fs_err)
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        if let Node::Proc(_, n, bytes) = self.node(&fd) {
            let pipe: DynInputStream = Box::new(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(
                proc_from(&n, &bytes, offset)?.to_vec(),
            ));
            return Ok(self.table.push(pipe)?);
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::IsDirectory.into());
        }
        HostDescriptor::read_via_stream(&mut self.wasi(), fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let stream = HostDescriptor::write_via_stream(&mut self.wasi(), retype(&fd), offset)?;
        self.limited(&fd, stream, Some(offset))
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        if let Node::Proc(..) = self.node(&fd) {
            return Err(ErrorCode::ReadOnly.into());
        }
        if self.dir(&fd).is_some() {
            return Err(ErrorCode::BadDescriptor.into());
        }
        let stream = HostDescriptor::append_via_stream(&mut self.wasi(), retype(&fd))?;
        self.limited(&fd, stream, None)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<Descriptor>,
        b: Resource<Descriptor>,
    ) -> wasmtime::Result<bool> {
        match (self.node(&a), self.node(&b)) {
            (Node::Proc(_, x, _), Node::Proc(_, y, _)) => return Ok(x == y && x.is_dir()),
            (Node::Proc(..), _) | (_, Node::Proc(..)) => return Ok(false),
            _ => {}
        }
        match (self.dir(&a), self.dir(&b)) {
            (None, None) => HostDescriptor::is_same_object(&mut self.wasi(), a, b).await,
            (Some((va, pa)), Some((vb, pb))) => Ok(Arc::ptr_eq(&va, &vb) && pa == pb),
            _ => Ok(false),
        }
    }

    async fn metadata_hash(&mut self, fd: Resource<Descriptor>) -> FsResult<MetadataHashValue> {
        if let Node::Proc(_, n, _) = self.node(&fd) {
            return Ok(proc_hash(n));
        }
        let Some((view, path)) = self.dir(&fd) else {
            return HostDescriptor::metadata_hash(&mut self.wasi(), fd).await;
        };
        Ok(dir_hash(&view, &path))
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<Descriptor>,
        flags: PathFlags,
        path: String,
    ) -> FsResult<MetadataHashValue> {
        if let Node::Proc(table, n, _) = self.node(&fd) {
            return Ok(proc_hash(procfs::resolve(&table, n, &path)?));
        }
        let Some((view, base)) = self.dir(&fd) else {
            return HostDescriptor::metadata_hash_at(&mut self.wasi(), fd, flags, path).await;
        };
        let follow = flags.contains(PathFlags::SYMLINK_FOLLOW);
        let p = view.resolve(&base, &path, follow).map_err(fs_err)?;
        match view.locate(&p).map(|f| f.kind) {
            None => Err(ErrorCode::NoEntry.into()),
            Some(Kind::File) => {
                // The same value the open file's descriptor gives, as
                // wasmtime-wasi computes it from the host file.
                let file = view.open_file(&p, Open::default()).map_err(fs_err)?;
                let r = self.push_file(file, false)?;
                let hash = HostDescriptor::metadata_hash(&mut self.wasi(), retype(&r)).await;
                self.table.delete(r)?;
                hash
            }
            Some(_) => Ok(dir_hash(&view, &p)),
        }
    }
}

impl HostDirectoryEntryStream for FsCtxView<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<ReaddirIterator>,
    ) -> FsResult<Option<DirectoryEntry>> {
        if let Ok(listing) = self.table.get_mut(&retype::<_, ViewListing>(&stream)) {
            return Ok(listing.0.next());
        }
        HostDirectoryEntryStream::read_directory_entry(&mut self.wasi(), stream).await
    }

    fn drop(&mut self, stream: Resource<ReaddirIterator>) -> wasmtime::Result<()> {
        if self.table.get(&retype::<_, ViewListing>(&stream)).is_ok() {
            self.table
                .delete(Resource::<ViewListing>::new_own(stream.rep()))?;
            return Ok(());
        }
        HostDirectoryEntryStream::drop(&mut self.wasi(), stream)
    }
}
