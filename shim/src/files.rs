//! Bind mounts of single files (`/etc/hosts`, `/etc/resolv.conf`,
//! `/dev/termination-log` and a ConfigMap key's `subPath`, which the
//! kubelet gives every pod). A preopen can only be a directory, so the
//! file is bind-mounted by the kernel onto its place in the rootfs before
//! any guest runs; the guests reach it through the rootfs's preopen.
//!
//! The place is resolved inside the rootfs, never out of it: the parents
//! with `RESOLVE_IN_ROOT` (a symlink there is followed as the container
//! would follow it), missing ones created; the file itself must be a file
//! or absent (then an empty one is made), not a symlink. The mount goes
//! onto the opened file descriptor, so no path is looked up twice.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

/// One file to bind: `host` onto `guest`, an absolute path in the rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMount {
    pub host: PathBuf,
    pub guest: String,
    pub read_only: bool,
}

/// Mounts each of `files` in `rootfs`; returns where they were mounted,
/// for [`unmount`]. On an error nothing stays mounted.
pub fn mount(files: &[FileMount], rootfs: &Path) -> Result<Vec<PathBuf>, String> {
    let mut done = Vec::new();
    for f in files {
        match mount_one(f, rootfs) {
            Ok(at) => done.push(at),
            Err(e) => {
                unmount(&done);
                return Err(format!(
                    "bind mount of {} on {}: {e}",
                    f.host.display(),
                    f.guest
                ));
            }
        }
    }
    Ok(done)
}

/// Lets go of what [`mount`] mounted.
pub fn unmount(mounted: &[PathBuf]) {
    for at in mounted.iter().rev() {
        if let Err(e) = rustix::mount::unmount(at, UnmountFlags::DETACH) {
            log::warn!("unmount {}: {e}", at.display());
        }
    }
}

fn mount_one(f: &FileMount, rootfs: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(&f.host).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("the source is not a file".into());
    }
    let parts: Vec<&str> = f
        .guest
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some((name, parents)) = parts.split_last() else {
        return Err("the destination is the root".into());
    };
    if parts.contains(&"..") {
        return Err("the destination has `..` in it".into());
    }
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", rootfs.display()))?;
    let parent = parent_dir(&root, parents)?;
    let target = rustix::fs::openat2(
        &parent,
        *name,
        OFlags::RDONLY | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::from_raw_mode(0o644),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
    )
    .map_err(|e| match e {
        Errno::LOOP => "it is a symlink in the image".to_string(),
        Errno::ISDIR => "it is a directory in the image".to_string(),
        e => e.to_string(),
    })?;
    if !rustix::fs::fstat(&target)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
        .unwrap_or(false)
    {
        return Err("it is not a regular file in the image".into());
    }
    let on = fd_path(&target);
    rustix::mount::mount_bind(&f.host, &on).map_err(|e| e.to_string())?;
    // Where it is now, as this process sees it: the mount is on top of
    // that path, and nothing runs in the container yet to change it.
    let at = std::fs::read_link(&on).map_err(|e| e.to_string())?;
    if f.read_only
        && let Err(e) = rustix::mount::mount_remount(&at, MountFlags::BIND | MountFlags::RDONLY, "")
    {
        unmount(std::slice::from_ref(&at));
        return Err(format!("making it read-only: {e}"));
    }
    Ok(at)
}

/// The directory `parents` names under `root`, resolved as the container
/// would see it (symlinks stay inside `root`); missing ones are made.
fn parent_dir(root: &OwnedFd, parents: &[&str]) -> Result<OwnedFd, String> {
    let dir_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut dir = rustix::io::dup(root).map_err(|e| e.to_string())?;
    for (i, part) in parents.iter().enumerate() {
        let prefix = parents[..=i].join("/");
        let open = |at: &OwnedFd| {
            rustix::fs::openat2(
                at,
                prefix.as_str(),
                dir_flags,
                Mode::empty(),
                ResolveFlags::IN_ROOT,
            )
        };
        dir = match open(root) {
            Ok(d) => d,
            Err(Errno::NOENT) => {
                // `dir` is the prefix's parent, already inside the root.
                match rustix::fs::mkdirat(&dir, *part, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(format!("making /{prefix}: {e}")),
                }
                open(root).map_err(|e| format!("/{prefix}: {e}"))?
            }
            Err(Errno::NOTDIR) => return Err(format!("/{prefix} is not a directory")),
            Err(e) => return Err(format!("/{prefix}: {e}")),
        };
    }
    Ok(dir)
}

fn fd_path(fd: &impl AsFd) -> PathBuf {
    use std::os::fd::AsRawFd as _;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}
