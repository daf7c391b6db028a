//! File applets that read or change the file system: cat, mkdir, rm and
//! touch. (`ls` has its own module because of its formatting.)

use super::date::{Stamp, Tm, days_from_civil, parse_date};
use crate::ctx::{CopyError, Ctx, copy, errmsg};
use crate::opts;
use std::fs::{self, FileTimes, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

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

/// `touch [-c] [-am] [-d DATE | -t STAMP | -r FILE] FILE...`: creates
/// missing files (not with `-c`) and sets the times of existing ones.
pub fn touch(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "camf", "dtr") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("touch", msg),
    };
    if opts.operands.is_empty() {
        return ctx.fail("touch", "missing file operand");
    }
    let time = if let Some(d) = opts.value('d') {
        match parse_date(d, Stamp::now()).and_then(Stamp::to_system) {
            Some(t) => t,
            None => return ctx.fail("touch", format!("invalid date '{d}'")),
        }
    } else if let Some(t) = opts.value('t') {
        match parse_touch_stamp(t, Stamp::now()).and_then(Stamp::to_system) {
            Some(t) => t,
            None => return ctx.fail("touch", format!("invalid date format '{t}'")),
        }
    } else if let Some(r) = opts.value('r') {
        match fs::metadata(r).and_then(|m| m.modified()) {
            Ok(t) => t,
            Err(e) => {
                return ctx.fail(
                    "touch",
                    format!("failed to get attributes of '{r}': {}", errmsg(&e)),
                );
            }
        }
    } else {
        SystemTime::now()
    };
    // -a or -m alone set only that time.
    let (access, modify) = match (opts.has('a'), opts.has('m')) {
        (true, false) => (true, false),
        (false, true) => (false, true),
        _ => (true, true),
    };
    let mut times = FileTimes::new();
    if access {
        times = times.set_accessed(time);
    }
    if modify {
        times = times.set_modified(time);
    }
    let mut status = 0;
    for name in &opts.operands {
        let file = match fs::metadata(name) {
            Err(e) if e.kind() == ErrorKind::NotFound && opts.has('c') => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(name),
            Err(e) => Err(e),
            // Directories cannot be opened for writing; other files are
            // opened so when they can, as some systems require it.
            Ok(m) if m.is_dir() => fs::File::open(name),
            Ok(_) => OpenOptions::new()
                .write(true)
                .open(name)
                .or_else(|_| fs::File::open(name)),
        };
        if let Err(e) = file.and_then(|f| f.set_times(times)) {
            status = ctx.fail("touch", format!("cannot touch '{name}': {}", errmsg(&e)));
        }
    }
    status
}

/// `touch -t [[CC]YY]MMDDhhmm[.ss]` (UTC).
fn parse_touch_stamp(s: &str, now: Stamp) -> Option<Stamp> {
    let (main, secs) = match s.split_once('.') {
        Some((m, sec)) if sec.len() == 2 => (m, sec.parse::<u32>().ok()?),
        Some(_) => return None,
        None => (s, 0),
    };
    if !main.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('+') {
        return None;
    }
    let num = |from: usize| -> Option<u32> { main.get(from..from + 2)?.parse().ok() };
    let (year, rest) = match main.len() {
        8 => (Tm::from_stamp(now).year, 0),
        10 => {
            let yy = i64::from(num(0)?);
            (if yy >= 69 { 1900 + yy } else { 2000 + yy }, 2)
        }
        12 => (main.get(..4)?.parse().ok()?, 4),
        _ => return None,
    };
    let (month, day, hour, min) = (num(rest)?, num(rest + 2)?, num(rest + 4)?, num(rest + 6)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || secs > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(Stamp {
        secs: days * 86_400 + i64::from(hour * 3600 + min * 60 + secs),
        nanos: 0,
    })
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

    #[test]
    fn touch_creates_and_sets_times() {
        let dir = crate::testutil::tempdir("touch");
        let f = dir.join("new");
        let fs_ = f.to_str().unwrap();
        assert_eq!(
            run(touch, &["-c", fs_], ""),
            (0, String::new(), String::new())
        );
        assert!(!f.exists());
        assert_eq!(run(touch, &[fs_], "").0, 0);
        assert_eq!(fs::read(&f).unwrap(), b"");
        fs::write(&f, "keep").unwrap();
        assert_eq!(run(touch, &["-d", "@1000000000", fs_], "").0, 0);
        let mtime = |p: &Path| Stamp::from_system(fs::metadata(p).unwrap().modified().unwrap());
        assert_eq!(mtime(&f).secs, 1_000_000_000);
        assert_eq!(fs::read(&f).unwrap(), b"keep");
        assert_eq!(run(touch, &["-t", "200001021530.05", fs_], "").0, 0);
        assert_eq!(mtime(&f).secs, 946_827_005);
        let d = dir.to_str().unwrap();
        assert_eq!(run(touch, &["-d", "2001-09-09 01:46:40", d], "").0, 0);
        assert_eq!(mtime(&dir).secs, 1_000_000_000);
        let other = dir.join("other");
        let os = other.to_str().unwrap();
        assert_eq!(run(touch, &["-r", fs_, os], "").0, 0);
        assert_eq!(mtime(&other).secs, 946_827_005);
        let (code, _, err) = run(touch, &["-d", "bogus", fs_], "");
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: touch: invalid date 'bogus'\n")
        );
        let (code, _, err) = run(touch, &["/nonexistent/dir/f"], "");
        assert_eq!(code, 1);
        assert!(
            err.starts_with("busybox: touch: cannot touch '/nonexistent/dir/f': "),
            "{err}"
        );
        assert_eq!(
            run(touch, &[], "").2,
            "busybox: touch: missing file operand\n"
        );
        assert_eq!(
            parse_touch_stamp("01021530", Stamp { secs: 0, nanos: 0 }).map(|s| s.secs),
            Some(86_400 + 15 * 3600 + 30 * 60)
        );
        for bad in ["1", "0013010000", "2000010100.1", "x0010100"] {
            assert_eq!(parse_touch_stamp(bad, Stamp::now()), None, "{bad}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
