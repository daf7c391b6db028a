//! The build context: the directory a build reads from, with
//! `.dockerignore` applied and every source path kept inside it.

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use walkdir::WalkDir;

use super::BuildError;

/// One file, directory or symlink of the context that a COPY source named.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path relative to the context root, `/`-separated.
    pub rel: String,
    pub host: PathBuf,
    pub is_dir: bool,
}

/// A build context directory and its ignore rules.
#[derive(Debug)]
pub struct Context {
    root: PathBuf,
    /// `.dockerignore` patterns in order; `true` excludes, `false` re-includes.
    rules: Vec<(GlobMatcher, bool)>,
}

impl Context {
    pub fn open(root: &Path) -> Result<Self, BuildError> {
        let root = root.canonicalize().map_err(|source| BuildError::Context {
            path: root.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(BuildError::Context {
                path: root,
                source: std::io::Error::other("not a directory"),
            });
        }
        let mut rules = Vec::new();
        let ignore_path = root.join(".dockerignore");
        if let Ok(text) = std::fs::read_to_string(&ignore_path) {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (exclude, pattern) = match line.strip_prefix('!') {
                    Some(p) => (false, p.trim()),
                    None => (true, line),
                };
                let cleaned = clean(pattern).unwrap_or_default();
                if cleaned.is_empty() {
                    continue;
                }
                let glob = GlobBuilder::new(&cleaned)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| BuildError::Ignore {
                        line: n + 1,
                        message: e.to_string(),
                    })?;
                rules.push((glob.compile_matcher(), exclude));
            }
        }
        Ok(Self { root, rules })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `.dockerignore` excludes `rel`, itself or through a parent.
    pub fn is_ignored(&self, rel: &str) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let mut excluded = false;
        for (glob, exclude) in &self.rules {
            let mut prefix = String::new();
            let mut hit = false;
            for part in rel.split('/') {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                if glob.is_match(&prefix) {
                    hit = true;
                    break;
                }
            }
            if hit {
                excluded = *exclude;
            }
        }
        excluded
    }

    /// Expands one COPY/ADD source (a path or a glob) into context entries.
    pub fn resolve(&self, src: &str) -> Result<Vec<Source>, BuildError> {
        let rel = clean(src).ok_or_else(|| BuildError::OutsideContext(src.to_string()))?;
        if rel.contains(['*', '?', '[']) {
            let glob = GlobBuilder::new(&rel)
                .literal_separator(true)
                .build()
                .map_err(|e| BuildError::BadSource {
                    source_path: src.to_string(),
                    message: e.to_string(),
                })?
                .compile_matcher();
            let mut out = Vec::new();
            for (rel, host, is_dir) in self.walk(&self.root)? {
                if glob.is_match(&rel) {
                    out.push(Source { rel, host, is_dir });
                }
            }
            if out.is_empty() {
                return Err(BuildError::NoMatch(src.to_string()));
            }
            return Ok(out);
        }
        if !rel.is_empty() && self.is_ignored(&rel) {
            return Err(BuildError::NoMatch(src.to_string()));
        }
        let host = self.root.join(&rel);
        let meta =
            std::fs::symlink_metadata(&host).map_err(|_| BuildError::NoMatch(src.to_string()))?;
        let host = if meta.file_type().is_symlink() {
            // A source that is itself a symlink is followed, but only within
            // the context.
            let real = host
                .canonicalize()
                .map_err(|_| BuildError::NoMatch(src.to_string()))?;
            if !real.starts_with(&self.root) {
                return Err(BuildError::OutsideContext(src.to_string()));
            }
            real
        } else {
            host
        };
        Ok(vec![Source {
            is_dir: host.is_dir(),
            rel,
            host,
        }])
    }

    /// Every entry under `dir` (not following symlinks) that is not ignored,
    /// as (context-relative path, host path, is_dir), sorted.
    pub fn walk(&self, dir: &Path) -> Result<Vec<(String, PathBuf, bool)>, BuildError> {
        let mut out = Vec::new();
        let mut it = WalkDir::new(dir)
            .min_depth(1)
            .sort_by_file_name()
            .follow_links(false)
            .into_iter();
        while let Some(entry) = it.next() {
            let entry = entry.map_err(|e| BuildError::Context {
                path: e
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| dir.to_path_buf()),
                source: std::io::Error::other(e),
            })?;
            let rel = entry
                .path()
                .strip_prefix(&self.root)
                .unwrap_or(entry.path())
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let is_dir = entry.file_type().is_dir();
            if self.is_ignored(&rel) {
                if is_dir {
                    it.skip_current_dir();
                }
                continue;
            }
            out.push((rel, entry.path().to_path_buf(), is_dir));
        }
        Ok(out)
    }
}

/// Cleans a context path lexically: drops `.`, resolves `..`, treats a
/// leading `/` as the context root. `None` when it climbs above the root.
pub fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_paths_inside() {
        assert_eq!(clean("./a/../b/").as_deref(), Some("b"));
        assert_eq!(clean("/x/y").as_deref(), Some("x/y"));
        assert_eq!(clean("."), Some(String::new()));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
    }

    #[test]
    fn dockerignore_with_exceptions_and_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(".dockerignore"),
            "# c\nsrc\n*.md\n!KEEP.md\n",
        )
        .expect("write");
        let ctx = Context::open(dir.path()).expect("open");
        assert!(ctx.is_ignored("src"));
        assert!(ctx.is_ignored("src/main.rs"));
        assert!(ctx.is_ignored("README.md"));
        assert!(!ctx.is_ignored("KEEP.md"));
        assert!(!ctx.is_ignored("app.wasm"));
        assert!(!ctx.is_ignored("docs/README.md"), "* does not cross /");
    }

    #[test]
    fn sources_resolve_and_refuse_escape() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.wasm"), "x").expect("write");
        std::fs::write(dir.path().join("b.wasm"), "x").expect("write");
        std::fs::write(dir.path().join("c.txt"), "x").expect("write");
        let ctx = Context::open(dir.path()).expect("open");
        let got: Vec<_> = ctx
            .resolve("*.wasm")
            .expect("glob")
            .into_iter()
            .map(|s| s.rel)
            .collect();
        assert_eq!(got, ["a.wasm", "b.wasm"]);
        assert!(matches!(
            ctx.resolve("../etc/passwd"),
            Err(BuildError::OutsideContext(_))
        ));
        assert!(matches!(ctx.resolve("nope"), Err(BuildError::NoMatch(_))));
    }
}
