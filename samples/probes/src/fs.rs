//! The filesystem probes: a host file read, or a host directory written,
//! by every way of naming it that a guest has: absolute paths, `..`,
//! symlinks and hard links planted at run time, `/proc/*/root`, and a
//! symlink swapped between the sandbox's check and its use.

use std::fs;
use std::io::Write as _;
use std::process::ExitCode;

use crate::Report;

/// Where the probes plant their links: `$PROBE_DIR`, else `/tmp/probe`
/// (a test points it into a volume to try the volume's directories).
fn nest() -> String {
    std::env::var("PROBE_DIR").unwrap_or_else(|_| "/tmp/probe".to_string())
}

/// `..` enough times to climb out of any real path.
fn ups(n: usize) -> String {
    "../".repeat(n)
}

/// Every path by which a guest might name the host's `target`.
fn disguises(target: &str) -> Vec<String> {
    let t = target.trim_start_matches('/');
    vec![
        format!("/{t}"),
        format!("{}/{t}", "/..".repeat(16)),
        format!("{}{t}", ups(32)),
        format!("/tmp/{}{t}", ups(32)),
        format!("/proc/self/root/{t}"),
        format!("/proc/1/root/{t}"),
        format!("/proc/self/cwd/{}{t}", ups(32)),
    ]
}

/// Symlinks planted now, each a way towards `target` (its path, `/`, or
/// straight up): where they are, and the path through them to `target`.
fn planted(target: &str, r: &mut Report) -> Vec<String> {
    let t = target.trim_start_matches('/');
    let nest = nest();
    let _ = fs::remove_dir_all(&nest);
    if let Err(e) = fs::create_dir_all(&nest) {
        r.tried(format!("mkdir {nest}"), e);
        return Vec::new();
    }
    let links = [
        ("abs", format!("/{t}"), String::new()),
        ("rel", format!("{}{t}", ups(32)), String::new()),
        ("root", "/".to_string(), format!("/{t}")),
        (
            "up",
            ups(32).trim_end_matches('/').to_string(),
            format!("/{t}"),
        ),
        ("procroot", "/proc/self/root".to_string(), format!("/{t}")),
    ];
    let mut out = Vec::new();
    for (name, to, rest) in links {
        let at = format!("{nest}/{name}");
        match symlink(&to, &at) {
            Ok(()) => out.push(format!("{at}{rest}")),
            Err(e) => r.contained(format!("symlink {at} -> {to}"), e),
        }
    }
    // A chain: a link to a link that climbs.
    let chain = format!("{nest}/chain");
    if symlink("up", &chain).is_ok() {
        out.push(format!("{chain}/{t}"));
    }
    out
}

pub fn read(target: &str, token: &str) -> Report {
    let mut r = Report::new("read");
    let check = |r: &mut Report, path: &str| match fs::read(path) {
        Ok(bytes) if contains(&bytes, token.as_bytes()) => {
            r.escaped(format!("read {path}"), "the host file's token")
        }
        Ok(bytes) => r.contained(
            format!("read {path}"),
            format!("{} bytes, not the host's", bytes.len()),
        ),
        Err(e) => r.contained(format!("read {path}"), e),
    };
    let mut paths = disguises(target);
    paths.extend(planted(target, &mut r));
    let nest = nest();
    for p in &paths {
        check(&mut r, p);
    }
    // Hard links to the host file, then read through them.
    for (i, src) in disguises(target).iter().chain(paths.iter()).enumerate() {
        let at = format!("{nest}/hard-{i}");
        match fs::hard_link(src, &at) {
            Ok(()) => check(&mut r, &at),
            Err(e) => r.contained(format!("link {src} -> {at}"), e),
        }
    }
    // Moving the host file in (the host checks it is still in place).
    for (i, src) in disguises(target).iter().enumerate() {
        let at = format!("{nest}/moved-{i}");
        match fs::rename(src, &at) {
            Ok(()) => check(&mut r, &at),
            Err(e) => r.contained(format!("rename {src} -> {at}"), e),
        }
    }
    r
}

pub fn write(dir: &str) -> Report {
    let mut r = Report::new("write");
    let mut paths: Vec<String> = disguises(dir)
        .into_iter()
        .map(|d| format!("{d}/escaped"))
        .collect();
    paths.extend(
        planted(dir, &mut r)
            .into_iter()
            .map(|p| format!("{p}/escaped")),
    );
    for (i, p) in paths.iter().enumerate() {
        let what = format!("create {p}");
        match fs::File::create(p).and_then(|mut f| f.write_all(b"escaped\n")) {
            Ok(()) => r.tried(
                what,
                "written (inside the container, unless the host sees it)",
            ),
            Err(e) => r.contained(what, e),
        }
        let sub = format!("{}-dir{i}", p);
        match fs::create_dir(&sub) {
            Ok(()) => r.tried(format!("mkdir {sub}"), "made"),
            Err(e) => r.contained(format!("mkdir {sub}"), e),
        }
        let link = format!("{}-link{i}", p);
        match symlink("/", &link) {
            Ok(()) => r.tried(format!("symlink {link}"), "made"),
            Err(e) => r.contained(format!("symlink {link}"), e),
        }
    }
    r
}

/// Swaps `dir/x` between a regular file and a symlink to `target`
/// (absolute, then climbing with `..`), forever, each by an atomic rename.
pub fn swap_flip(dir: &str, target: &str) -> ExitCode {
    if let Err(e) = fs::create_dir_all(dir) {
        eprintln!("mkdir {dir}: {e}");
        return ExitCode::from(1);
    }
    let x = format!("{dir}/x");
    let file = format!("{dir}/x.file");
    let link = format!("{dir}/x.link");
    // The link's target, absolute and climbing (a volume's directories
    // refuse to make an absolute one at all).
    let climbing = format!("{}{}", ups(32), target.trim_start_matches('/'));
    for i in 0u64.. {
        let made = match i % 4 {
            0 | 2 => fs::write(&file, b"inside\n").and_then(|()| fs::rename(&file, &x)),
            step => {
                let _ = fs::remove_file(&link);
                let to = if step == 1 { target } else { climbing.as_str() };
                symlink(to, &link).and_then(|()| fs::rename(&link, &x))
            }
        };
        if let Err(e) = made {
            eprintln!("swap {i}: {e}");
        }
    }
    ExitCode::SUCCESS
}

/// Reads `dir/x` `n` times while `swap-flip` swaps it.
pub fn swap_read(dir: &str, token: &str, n: u64) -> Report {
    let mut r = Report::new("swap-read");
    let x = format!("{dir}/x");
    let (mut inside, mut refused, mut other) = (0u64, 0u64, 0u64);
    for _ in 0..n {
        match fs::read(&x) {
            Ok(b) if contains(&b, token.as_bytes()) => {
                r.escaped(format!("read {x}"), "the host file's token");
                break;
            }
            Ok(b) if b == b"inside\n" => inside += 1,
            Ok(_) => other += 1,
            Err(_) => refused += 1,
        }
    }
    r.contained(
        format!("{n} reads of {x}"),
        format!("{inside} saw the file, {refused} were refused (the symlink), {other} saw something else"),
    );
    r
}

pub fn proc() -> Report {
    let mut r = Report::new("proc");
    let must_fail = |r: &mut Report, what: &str, res: std::io::Result<()>| match res {
        Ok(()) => r.escaped(what, "allowed"),
        Err(e) => r.contained(what, e),
    };
    let write = |p: &str| {
        fs::OpenOptions::new()
            .write(true)
            .open(p)
            .and_then(|mut f| f.write_all(b"x"))
    };
    must_fail(&mut r, "write /proc/1/cmdline", write("/proc/1/cmdline"));
    must_fail(
        &mut r,
        "write /proc/self/status",
        write("/proc/self/status"),
    );
    must_fail(
        &mut r,
        "create /proc/evil",
        fs::File::create("/proc/evil").map(drop),
    );
    must_fail(&mut r, "mkdir /proc/evil", fs::create_dir("/proc/evil"));
    must_fail(
        &mut r,
        "remove /proc/1/cmdline",
        fs::remove_file("/proc/1/cmdline"),
    );
    must_fail(
        &mut r,
        "rename /proc/1 -> /tmp/one",
        fs::rename("/proc/1", "/tmp/one"),
    );
    must_fail(&mut r, "symlink /proc/evil", symlink("/", "/proc/evil"));
    must_fail(
        &mut r,
        "link /proc/1/cmdline -> /tmp/cmdline",
        fs::hard_link("/proc/1/cmdline", "/tmp/cmdline"),
    );
    r
}

/// A symlink at `at` that points to `to` (`std::fs::soft_link` is the
/// stable way to make one on WASI).
fn symlink(to: &str, at: &str) -> std::io::Result<()> {
    #[allow(deprecated)]
    fs::soft_link(to, at)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
