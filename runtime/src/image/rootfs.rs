//! Finding files inside a rootfs with the same rules the guest lives by.
//!
//! Every lookup goes through a `cap_std::fs::Dir` opened on the rootfs, so
//! wrun itself resolves symlinks exactly as a guest would: relative links
//! that stay inside are followed; absolute links and any path that climbs
//! out with `..` are refused.

use std::io;

use cap_std::fs::Dir;

/// The `PATH` used when an image sets none: Docker's default.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors finding a program in a rootfs.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("exec: {0:?}: executable file not found in $PATH")]
    NotInPath(String),
    #[error("exec: {0:?}: no such file or directory")]
    NotFound(String),
    #[error("exec: {0:?}: is a directory")]
    IsDir(String),
    #[error("{path:?}: refused: the path or a symlink on it leads outside the container's rootfs")]
    Escapes { path: String },
    #[error("{path:?}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Opens a rootfs directory as a capability.
pub fn open(root: &std::path::Path) -> Result<Dir, RootfsError> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(|source| RootfsError::Io {
        path: root.display().to_string(),
        source,
    })
}

/// Normalises a guest path lexically against `cwd`, clamping `..` at `/`
/// as the kernel does at a root. Returns an absolute guest path.
pub fn guest_path(cwd: &str, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{}", cwd.trim_end_matches('/'), path)
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A container's root as wrun looks things up in it: a directory (a copy
/// of the image) or the layered view of its image.
pub trait RootView {
    /// The metadata of `path` (absolute), symlinks followed.
    fn stat(&self, path: &str) -> io::Result<bool>;
    /// The bytes of the file at `path` (absolute), symlinks followed.
    fn read_file(&self, path: &str) -> io::Result<Vec<u8>>;
    /// A name for the file at `path` (absolute, symlinks followed) that
    /// holds only while its bytes cannot change: a file of an image's
    /// read-only layer. `None` for anything a container may write.
    fn fixed_key(&self, _path: &str) -> Option<String> {
        None
    }
}

impl RootView for Dir {
    fn stat(&self, path: &str) -> io::Result<bool> {
        self.metadata(rel(path)).map(|m| m.is_dir())
    }

    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        self.read(rel(path))
    }
}

impl RootView for crate::vfs::Overlay {
    fn stat(&self, path: &str) -> io::Result<bool> {
        let root = crate::vfs::VPath::root();
        let p = self
            .resolve(&root, rel(path), true)
            .map_err(io::Error::from)?;
        let f = self
            .locate(&p)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(f.kind == crate::vfs::Kind::Dir)
    }

    fn read_file(&self, path: &str) -> io::Result<Vec<u8>> {
        let root = crate::vfs::VPath::root();
        let p = self
            .resolve(&root, rel(path), true)
            .map_err(io::Error::from)?;
        let mut f = self
            .open_file(&p, crate::vfs::overlay::Open::default())
            .map_err(io::Error::from)?;
        let mut out = Vec::new();
        io::Read::read_to_end(&mut f, &mut out)?;
        Ok(out)
    }

    fn fixed_key(&self, path: &str) -> Option<String> {
        let p = self
            .resolve(&crate::vfs::VPath::root(), rel(path), true)
            .ok()?;
        let layer = self.lower_source(&p)?;
        Some(format!("{}\0{p}", layer.display()))
    }
}

/// Finds the program `argv0` names: a path if it has a `/`, else the first
/// match on `path_env`. Returns its absolute guest path.
pub fn find_program(
    root: &impl RootView,
    argv0: &str,
    path_env: Option<&str>,
    cwd: &str,
) -> Result<String, RootfsError> {
    if argv0.is_empty() {
        return Err(RootfsError::NotFound(String::new()));
    }
    if argv0.contains('/') {
        let path = guest_path(cwd, argv0);
        return match check_file(root, &path)? {
            Found::File => Ok(path),
            Found::Dir => Err(RootfsError::IsDir(argv0.to_string())),
            Found::Missing => Err(RootfsError::NotFound(argv0.to_string())),
        };
    }
    for dir in path_env
        .unwrap_or(DEFAULT_PATH)
        .split(':')
        .filter(|d| !d.is_empty())
    {
        let path = guest_path(cwd, &format!("{dir}/{argv0}"));
        if let Found::File = check_file(root, &path)? {
            return Ok(path);
        }
    }
    Err(RootfsError::NotInPath(argv0.to_string()))
}

/// Reads a file by absolute guest path.
pub fn read(root: &impl RootView, path: &str) -> Result<Vec<u8>, RootfsError> {
    root.read_file(path).map_err(|e| classify(path, e))
}

enum Found {
    File,
    Dir,
    Missing,
}

fn check_file(root: &impl RootView, path: &str) -> Result<Found, RootfsError> {
    match root.stat(path) {
        Ok(true) => Ok(Found::Dir),
        Ok(_) => Ok(Found::File),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(e) => match classify(path, e) {
            // A dangling or looping link, or a non-directory on the way.
            RootfsError::Io { .. } => Ok(Found::Missing),
            other => Err(other),
        },
    }
}

fn rel(path: &str) -> &str {
    let r = path.trim_start_matches('/');
    if r.is_empty() { "." } else { r }
}

fn classify(path: &str, e: io::Error) -> RootfsError {
    if e.kind() == io::ErrorKind::PermissionDenied && e.to_string().contains("outside") {
        RootfsError::Escapes {
            path: path.to_string(),
        }
    } else if e.kind() == io::ErrorKind::NotFound {
        RootfsError::NotFound(path.to_string())
    } else {
        RootfsError::Io {
            path: path.to_string(),
            source: e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_clamp_at_root() {
        assert_eq!(guest_path("/", "bin/sh"), "/bin/sh");
        assert_eq!(guest_path("/app", "../../../x"), "/x");
        assert_eq!(guest_path("/a/b", "./c"), "/a/b/c");
    }

    #[cfg(unix)]
    #[test]
    fn path_search_follows_relative_links_and_refuses_escapes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("bin")).expect("mkdir");
        std::fs::write(dir.path().join("bin/busybox"), b"\0asm").expect("write");
        std::os::unix::fs::symlink("busybox", dir.path().join("bin/sh")).expect("link");
        std::os::unix::fs::symlink("/bin/busybox", dir.path().join("bin/abs")).expect("link");
        std::os::unix::fs::symlink("../../../../etc/passwd", dir.path().join("bin/up"))
            .expect("link");
        let root = open(dir.path()).expect("open");
        assert_eq!(
            find_program(&root, "sh", Some("/bin"), "/").expect("sh"),
            "/bin/sh"
        );
        assert_eq!(read(&root, "/bin/sh").expect("read"), b"\0asm");
        assert!(matches!(
            find_program(&root, "nope", Some("/bin"), "/"),
            Err(RootfsError::NotInPath(_))
        ));
        assert!(matches!(
            find_program(&root, "/bin/abs", None, "/"),
            Err(RootfsError::Escapes { .. })
        ));
        assert!(matches!(
            find_program(&root, "/bin/up", None, "/"),
            Err(RootfsError::Escapes { .. })
        ));
        assert!(matches!(
            find_program(&root, "/bin", None, "/"),
            Err(RootfsError::IsDir(_))
        ));
    }
}
