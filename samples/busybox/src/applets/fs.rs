//! File applets that read or change the file system: cat, mkdir and rm.
//! (`ls` has its own module because of its formatting.)

use crate::ctx::{CopyError, Ctx, copy, errmsg};
use crate::opts;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// `cat [FILE|-]...`: concatenates files (stdin when none or `-`).
pub fn cat(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "u", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("cat", msg),
    };
    let mut operands = opts.operands;
    if operands.is_empty() {
        operands.push("-".to_string());
    }
    let mut status = 0;
    for name in &operands {
        let result = if name == "-" {
            copy(&mut *ctx.stdin, &mut *ctx.stdout)
        } else {
            match fs::File::open(name) {
                Ok(mut file) => copy(&mut file, &mut *ctx.stdout),
                Err(e) => Err(CopyError::Read(e)),
            }
        };
        match result {
            Ok(_) => {}
            Err(CopyError::Read(e)) => {
                status = ctx.fail("cat", format!("{name}: {}", errmsg(&e)));
            }
            Err(CopyError::Write(e)) => {
                return ctx.fail("cat", format!("write error: {}", errmsg(&e)));
            }
        }
    }
    status
}

/// `mkdir [-p] [-m MODE] DIR...` (the mode is accepted and ignored: WASI has
/// no permission bits).
pub fn mkdir(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "p", "m") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("mkdir", msg),
    };
    if opts.operands.is_empty() {
        return ctx.fail("mkdir", "missing operand");
    }
    // Modes are checked for typos, then ignored.
    if let Some(mode) = opts.value('m')
        && (mode.is_empty() || !mode.bytes().all(|b| (b'0'..=b'7').contains(&b)))
    {
        return ctx.fail("mkdir", format!("invalid mode '{mode}'"));
    }
    let parents = opts.has('p');
    let mut status = 0;
    for dir in &opts.operands {
        let result = if parents {
            fs::create_dir_all(dir)
        } else {
            fs::create_dir(dir)
        };
        if let Err(e) = result {
            status = ctx.fail(
                "mkdir",
                format!("can't create directory '{dir}': {}", errmsg(&e)),
            );
        }
    }
    status
}

/// `rm [-rRf] PATH...`
pub fn rm(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "rRfi", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("rm", msg),
    };
    let recursive = opts.has('r') || opts.has('R');
    let force = opts.has('f');
    if opts.operands.is_empty() && !force {
        return ctx.fail("rm", "missing operand");
    }
    let mut status = 0;
    for name in &opts.operands {
        if is_dot_or_root(name) {
            status = ctx.fail("rm", format!("refusing to remove '{name}'"));
            continue;
        }
        let meta = match fs::symlink_metadata(name) {
            Ok(m) => m,
            Err(e) if force && e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                status = ctx.fail("rm", format!("can't remove '{name}': {}", errmsg(&e)));
                continue;
            }
        };
        let result = if meta.is_dir() {
            if !recursive {
                status = ctx.fail("rm", format!("'{name}' is a directory"));
                continue;
            }
            fs::remove_dir_all(name)
        } else {
            fs::remove_file(name)
        };
        if let Err(e) = result {
            status = ctx.fail("rm", format!("can't remove '{name}': {}", errmsg(&e)));
        }
    }
    status
}

/// `.`, `..` and `/` (however spelled) are never removed.
fn is_dot_or_root(name: &str) -> bool {
    let t = name.trim_end_matches('/');
    (t.is_empty() && !name.is_empty())
        || Path::new(t).file_name().is_none()
        || t == "."
        || t.ends_with("/.")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::{Env, capture};

    fn run(f: super::super::Run, args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture(stdin, &Env::new(), |ctx| f(ctx, &args))
    }

    #[test]
    fn mkdir_cat_rm_roundtrip() {
        let dir = crate::testutil::tempdir("fs");
        let d = dir.join("a/b");
        let ds = d.to_str().unwrap();
        assert_eq!(run(mkdir, &[ds], "").0, 1);
        assert_eq!(run(mkdir, &["-p", "-m", "755", ds], "").0, 0);
        assert_eq!(run(mkdir, &["-p", ds], "").0, 0);
        assert_eq!(run(mkdir, &["-m", "u+x", ds], "").0, 1);
        let (c, _, err) = run(mkdir, &[ds], "");
        assert_eq!(c, 1);
        assert!(
            err.starts_with("busybox: mkdir: can't create directory '"),
            "{err}"
        );
        let f = d.join("f");
        fs::write(&f, "hello\n").unwrap();
        let fs_ = f.to_str().unwrap();
        assert_eq!(run(cat, &[fs_, "-", fs_], "in\n").1, "hello\nin\nhello\n");
        assert_eq!(run(cat, &[], "x").1, "x");
        let (c, out, err) = run(cat, &["/nonexistent/x", fs_], "");
        assert_eq!((c, out.as_str()), (1, "hello\n"));
        assert!(err.starts_with("busybox: cat: /nonexistent/x: "), "{err}");
        let top = dir.join("a");
        let top = top.to_str().unwrap();
        let (c, _, err) = run(rm, &[top], "");
        assert_eq!(c, 1);
        assert!(err.contains("is a directory"), "{err}");
        assert_eq!(run(rm, &["-rf", top], "").0, 0);
        assert!(!dir.join("a").exists());
        assert_eq!(run(rm, &["-f", top], "").0, 0);
        assert_eq!(run(rm, &[top], "").0, 1);
        for bad in [".", "..", "/", "x/..", "x/./", "//"] {
            assert!(is_dot_or_root(bad), "{bad}");
        }
        assert!(!is_dot_or_root("x/.y"));
        assert!(!is_dot_or_root("a") && !is_dot_or_root("a/b/"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
