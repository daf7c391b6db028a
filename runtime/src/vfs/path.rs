//! Guest paths in the layered view, and resolving them with the rootfs
//! rules of ARCHITECTURE.md: a relative symlink is followed while it stays
//! beneath the directory the lookup started from, an absolute one is
//! refused, `..` may not climb above that directory, and at most 40 links
//! are followed. These are the rules cap-std applies to a preopen, so the
//! guest sees the same answers it saw when its rootfs was a copy.

use std::collections::VecDeque;
use std::fmt;

use super::{Kind, VfsError, VfsResult};

/// How many symlinks one lookup may follow, as Linux's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;

/// A path in the view: its components from the root, none of them `.`,
/// `..` or empty. The root is the empty path.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VPath(Vec<String>);

impl VPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// A path from components the caller knows to be plain names.
    pub fn from_names<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// Parses an absolute guest path such as a mount point (`/data/x`),
    /// without following anything: `.` and empty parts are dropped and `..`
    /// climbs (never above the root).
    pub fn parse_lexical(path: &str) -> Self {
        let mut out = Vec::new();
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    out.pop();
                }
                n => out.push(n.to_string()),
            }
        }
        Self(out)
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn name(&self) -> Option<&str> {
        self.0.last().map(String::as_str)
    }

    pub fn parent(&self) -> Option<VPath> {
        let (_, rest) = self.0.split_last()?;
        Some(Self(rest.to_vec()))
    }

    pub fn join(&self, name: &str) -> VPath {
        let mut v = self.0.clone();
        v.push(name.to_string());
        Self(v)
    }

    pub fn starts_with(&self, other: &VPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The path relative to the root, `/`-separated, as a layer's `Dir`
    /// takes it (`.` for the root).
    pub fn rel(&self) -> String {
        if self.0.is_empty() {
            ".".into()
        } else {
            self.0.join("/")
        }
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0.join("/"))
    }
}

/// What resolution needs to know of the tree.
pub trait Tree {
    /// The kind of what is at `p` (symlinks not followed), if anything.
    fn kind(&self, p: &VPath) -> Option<Kind>;
    /// The target of the symlink at `p`.
    fn link(&self, p: &VPath) -> VfsResult<String>;
}

/// A name a guest may give: not empty, no `/`, no NUL, not `.` or `..`.
pub fn check_name(name: &str) -> VfsResult<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(VfsError::Invalid);
    }
    Ok(())
}

/// Resolves `path`, relative to the directory `base`, to a path in the
/// view. Symlinks in the middle are always followed; the last one only if
/// `follow` (or the path ends in `/`). The last component need not exist,
/// so that callers can create it; every earlier one must be a directory.
pub fn resolve(tree: &impl Tree, base: &VPath, path: &str, follow: bool) -> VfsResult<VPath> {
    if path.is_empty() {
        return Err(VfsError::NotFound);
    }
    if path.starts_with('/') {
        return Err(VfsError::NotPermitted);
    }
    if path.contains('\0') {
        return Err(VfsError::Invalid);
    }
    let floor = base.len();
    let mut stack = base.0.clone();
    let mut pending: VecDeque<String> = split(path);
    let mut slash = path.ends_with('/');
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            if stack.len() == floor {
                return Err(VfsError::NotPermitted);
            }
            stack.pop();
            continue;
        }
        let last = pending.is_empty();
        stack.push(c);
        let here = VPath(stack.clone());
        match tree.kind(&here) {
            Some(Kind::Symlink) if !last || follow || slash => {
                hops += 1;
                if hops > MAX_LINKS {
                    return Err(VfsError::Loop);
                }
                let target = tree.link(&here)?;
                if target.starts_with('/') {
                    return Err(VfsError::NotPermitted);
                }
                if target.is_empty() {
                    return Err(VfsError::NotFound);
                }
                stack.pop();
                if last {
                    slash |= target.ends_with('/');
                }
                for part in split(&target).into_iter().rev() {
                    pending.push_front(part);
                }
            }
            Some(Kind::Dir) => {}
            Some(_) if !last => return Err(VfsError::NotDirectory),
            Some(_) => {}
            None if !last => return Err(VfsError::NotFound),
            None => {}
        }
    }
    let out = VPath(stack);
    if slash && out.len() > floor && matches!(tree.kind(&out), Some(k) if k != Kind::Dir) {
        return Err(VfsError::NotDirectory);
    }
    Ok(out)
}

fn split(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A tree in memory: path → kind, and links' targets.
    struct Mem(BTreeMap<String, (Kind, String)>);

    impl Tree for Mem {
        fn kind(&self, p: &VPath) -> Option<Kind> {
            if p.is_root() {
                return Some(Kind::Dir);
            }
            self.0.get(&p.rel()).map(|(k, _)| *k)
        }
        fn link(&self, p: &VPath) -> VfsResult<String> {
            Ok(self.0.get(&p.rel()).ok_or(VfsError::NotFound)?.1.clone())
        }
    }

    fn tree() -> Mem {
        let mut m = BTreeMap::new();
        for (p, k, t) in [
            ("bin", Kind::Dir, ""),
            ("bin/busybox", Kind::File, ""),
            ("bin/sh", Kind::Symlink, "busybox"),
            ("etc", Kind::Dir, ""),
            ("etc/passwd", Kind::File, ""),
            ("abs", Kind::Symlink, "/etc"),
            ("up", Kind::Symlink, "../.."),
            ("loop", Kind::Symlink, "loop"),
            ("dirlink", Kind::Symlink, "etc/"),
            ("rel", Kind::Symlink, "bin/../etc"),
        ] {
            m.insert(p.to_string(), (k, t.to_string()));
        }
        Mem(m)
    }

    fn r(path: &str, follow: bool) -> VfsResult<String> {
        resolve(&tree(), &VPath::root(), path, follow).map(|p| p.to_string())
    }

    #[test]
    fn relative_links_inside_the_root_are_followed() {
        assert_eq!(r("bin/sh", true).expect("ok"), "/bin/busybox");
        assert_eq!(r("bin/sh", false).expect("ok"), "/bin/sh");
        assert_eq!(r("rel/passwd", false).expect("ok"), "/etc/passwd");
        assert_eq!(r("dirlink/passwd", false).expect("ok"), "/etc/passwd");
        assert_eq!(r("./bin//busybox", false).expect("ok"), "/bin/busybox");
        assert_eq!(r("bin/../etc/passwd", false).expect("ok"), "/etc/passwd");
        assert_eq!(r("etc/new", false).expect("ok"), "/etc/new");
    }

    #[test]
    fn escapes_are_refused() {
        assert!(matches!(r("abs", true), Err(VfsError::NotPermitted)));
        assert!(matches!(
            r("abs/passwd", false),
            Err(VfsError::NotPermitted)
        ));
        assert!(matches!(r("up", true), Err(VfsError::NotPermitted)));
        assert!(matches!(r("..", false), Err(VfsError::NotPermitted)));
        assert!(matches!(r("/etc", false), Err(VfsError::NotPermitted)));
        assert!(matches!(r("loop", true), Err(VfsError::Loop)));
        // From /bin, `..` may not climb above /bin, as cap-std's `Dir`.
        let bin = VPath::from_names(["bin"]);
        assert!(matches!(
            resolve(&tree(), &bin, "../etc", false),
            Err(VfsError::NotPermitted)
        ));
    }

    #[test]
    fn missing_and_wrong_kinds_are_named() {
        assert!(matches!(r("nope/x", false), Err(VfsError::NotFound)));
        assert!(matches!(
            r("etc/passwd/x", false),
            Err(VfsError::NotDirectory)
        ));
        assert!(matches!(
            r("etc/passwd/", false),
            Err(VfsError::NotDirectory)
        ));
        assert!(matches!(r("", false), Err(VfsError::NotFound)));
        assert!(matches!(r("a\0b", false), Err(VfsError::Invalid)));
        assert!(check_name(".wh.x").is_ok());
        assert!(check_name("a/b").is_err() && check_name("..").is_err());
    }

    #[test]
    fn lexical_paths_for_mount_points() {
        assert_eq!(
            VPath::parse_lexical("/data//x/./y/..").to_string(),
            "/data/x"
        );
        assert_eq!(VPath::parse_lexical("/../..").to_string(), "/");
    }
}
