//! `ls [-laAd1] [PATH]...`: lists files and directories, busybox style. WASI
//! has no permission bits, owners or link counts, so on WASI those columns
//! are synthesized (wasm modules show as executable).

use crate::ctx::{Ctx, errmsg};
use crate::opts;
use std::fs::{self, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

struct Flags {
    long: bool,
    all: bool,
    almost_all: bool,
    dir_itself: bool,
}

struct Entry {
    name: String,
    path: PathBuf,
}

pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "laAd1", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("ls", msg),
    };
    let flags = Flags {
        long: opts.has('l'),
        all: opts.has('a'),
        almost_all: opts.has('A'),
        dir_itself: opts.has('d'),
    };
    let mut operands = opts.operands;
    if operands.is_empty() {
        operands.push(".".to_string());
    }
    operands.sort();
    let mut status = 0;
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for name in &operands {
        // `-l` shows a symlink given on the command line, not its target.
        let meta = if flags.long || flags.dir_itself {
            fs::symlink_metadata(name)
        } else {
            fs::metadata(name).or_else(|_| fs::symlink_metadata(name))
        };
        match meta {
            Ok(m) if m.is_dir() && !flags.dir_itself => dirs.push(name.clone()),
            Ok(_) => files.push(Entry {
                name: name.clone(),
                path: PathBuf::from(name),
            }),
            Err(e) => status = ctx.fail("ls", format!("{name}: {}", errmsg(&e))),
        }
    }
    let result = (|| -> io::Result<()> {
        let headers = operands.len() > 1;
        let mut first = files.is_empty();
        print_entries(ctx.stdout, &files, &flags)?;
        for dir in &dirs {
            if !first {
                writeln!(ctx.stdout)?;
            }
            first = false;
            if headers {
                writeln!(ctx.stdout, "{dir}:")?;
            }
            match read_dir(Path::new(dir), &flags) {
                Ok(entries) => print_entries(ctx.stdout, &entries, &flags)?,
                Err(e) => status = ctx.fail("ls", format!("can't open '{dir}': {}", errmsg(&e))),
            }
        }
        ctx.stdout.flush()
    })();
    match result {
        Ok(()) => status,
        Err(e) => ctx.fail("ls", format!("write error: {}", errmsg(&e))),
    }
}

fn read_dir(dir: &Path, flags: &Flags) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    if flags.all {
        for dot in [".", ".."] {
            entries.push(Entry {
                name: dot.to_string(),
                path: dir.join(dot),
            });
        }
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && !flags.all && !flags.almost_all {
            continue;
        }
        entries.push(Entry {
            path: entry.path(),
            name,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

fn print_entries(out: &mut dyn Write, entries: &[Entry], flags: &Flags) -> io::Result<()> {
    for entry in entries {
        if !flags.long {
            writeln!(out, "{}", entry.name)?;
            continue;
        }
        match fs::symlink_metadata(&entry.path) {
            Ok(meta) => writeln!(out, "{}", long_line(entry, &meta))?,
            // `..` of a preopened WASI root may be unreachable: show a stub.
            Err(_) => writeln!(
                out,
                "?????????? {:>4} {:<8} {:<8} {:>9} {:>12} {}",
                "?", "?", "?", "?", "?", entry.name
            )?,
        }
    }
    Ok(())
}

fn long_line(entry: &Entry, meta: &Metadata) -> String {
    let (nlink, user, group) = owner(meta);
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let mut line = format!(
        "{} {nlink:>4} {user:<8} {group:<8} {:>9} {} {}",
        mode_string(&entry.path, meta),
        meta.len(),
        format_time(mtime, now),
        entry.name
    );
    if meta.file_type().is_symlink() {
        let target = fs::read_link(&entry.path)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "?".to_string());
        line.push_str(" -> ");
        line.push_str(&target);
    }
    line
}

#[cfg(unix)]
fn owner(meta: &Metadata) -> (u64, String, String) {
    use std::os::unix::fs::MetadataExt;
    (meta.nlink(), meta.uid().to_string(), meta.gid().to_string())
}

#[cfg(not(unix))]
fn owner(_: &Metadata) -> (u64, String, String) {
    (1, "root".to_string(), "root".to_string())
}

/// `drwxr-xr-x` and friends.
pub fn mode_string(path: &Path, meta: &Metadata) -> String {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        'd'
    } else if ft.is_symlink() {
        'l'
    } else if ft.is_file() {
        '-'
    } else {
        special_kind(&ft)
    };
    let bits = permission_bits(path, meta);
    let mut s = String::with_capacity(10);
    s.push(kind);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if bits & (0o400 >> i) != 0 { c } else { '-' });
    }
    s
}

#[cfg(unix)]
fn special_kind(ft: &fs::FileType) -> char {
    use std::os::unix::fs::FileTypeExt;
    match () {
        _ if ft.is_block_device() => 'b',
        _ if ft.is_char_device() => 'c',
        _ if ft.is_fifo() => 'p',
        _ if ft.is_socket() => 's',
        _ => '?',
    }
}

#[cfg(not(unix))]
fn special_kind(_: &fs::FileType) -> char {
    '?'
}

#[cfg(unix)]
fn permission_bits(_: &Path, meta: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

/// WASI knows no modes (and std reports every file as read-only there):
/// directories and wasm modules get `rwxr-xr-x`, other files `rw-r--r--`,
/// symlinks `rwxrwxrwx`.
#[cfg(not(unix))]
fn permission_bits(path: &Path, meta: &Metadata) -> u32 {
    let ft = meta.file_type();
    if ft.is_symlink() {
        0o777
    } else if ft.is_dir() || (ft.is_file() && is_wasm(path)) {
        0o755
    } else {
        0o644
    }
}

/// Whether the file starts with the wasm magic number.
#[cfg_attr(unix, allow(dead_code))]
fn is_wasm(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == b"\0asm")
}

/// `Jan  2 15:04` for recent times, `Jan  2  2006` for those more than six
/// months old or in the future (UTC: WASI has no time zones).
fn format_time(t: i64, now: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(t.div_euclid(86400));
    let secs = t.rem_euclid(86400);
    let month = MONTHS[(m as usize).saturating_sub(1) % 12];
    let recent = t <= now + 3600 && now - t < 182 * 86400;
    if recent {
        format!("{month} {d:>2} {:02}:{:02}", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{month} {d:>2} {y:>5}")
    }
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let t = 1_709_164_800 + 13 * 3600 + 5 * 60; // 2024-02-29 13:05
        assert_eq!(format_time(t, t + 10), "Feb 29 13:05");
        assert_eq!(format_time(t, t + 365 * 86400), "Feb 29  2024");
    }

    #[test]
    #[cfg(unix)]
    fn lists_sorted_with_modes_and_links() {
        use crate::ctx::{Env, capture};
        let dir = crate::testutil::tempdir("ls");
        fs::write(dir.join("b.txt"), "12345").unwrap();
        fs::write(dir.join(".hidden"), "").unwrap();
        fs::create_dir(dir.join("a")).unwrap();
        std::os::unix::fs::symlink("b.txt", dir.join("c")).unwrap();
        let d = dir.to_str().unwrap().to_string();
        let run = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            capture("", &Env::new(), |ctx| main(ctx, &args))
        };
        let (c, out, _) = run(&[&d]);
        assert_eq!(c, 0);
        assert_eq!(out, "a\nb.txt\nc\n");
        let (_, out, _) = run(&["-a", &d]);
        assert!(out.starts_with(".\n..\n.hidden\na\n"), "{out}");
        let (_, out, _) = run(&["-l", &d]);
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[0].starts_with('d') && lines[0].ends_with(" a"),
            "{out}"
        );
        assert!(
            lines[1].starts_with("-rw") && lines[1].contains(" 5 "),
            "{out}"
        );
        assert!(
            lines[2].starts_with("lrwxrwxrwx") && lines[2].ends_with(" c -> b.txt"),
            "{out}"
        );
        let missing = format!("{d}/missing");
        let (c, out, err) = run(&[&missing, &format!("{d}/b.txt")]);
        assert_eq!((c, out), (1, format!("{d}/b.txt\n")));
        assert_eq!(
            err,
            format!("busybox: ls: {missing}: No such file or directory\n")
        );
        let (_, out, _) = run(&[&d, &format!("{d}/a")]);
        assert_eq!(out, format!("{d}:\na\nb.txt\nc\n\n{d}/a:\n"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
