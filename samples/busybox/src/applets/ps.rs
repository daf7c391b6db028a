//! `ps` and `top`: list processes from the synthetic `/proc` that wrun
//! provides (`/proc/<pid>/cmdline` and `/proc/<pid>/status`), formatted
//! like busybox.

use super::date::{Stamp, Tm, strftime};
use crate::ctx::{Ctx, errmsg};
use crate::opts;
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

const PROC_ROOT: &str = "/proc";

/// One process as read from `/proc/<pid>`.
#[derive(Debug, PartialEq)]
pub struct Proc {
    pub pid: u64,
    pub ppid: Option<u64>,
    pub name: String,
    /// The one-letter state (`R`, `S`, ...) from `State:`.
    pub state: String,
    pub args: Vec<String>,
}

impl Proc {
    /// The COMMAND column: argv joined by spaces, or `[name]` without argv.
    pub fn command(&self) -> String {
        if self.args.is_empty() {
            format!("[{}]", self.name)
        } else {
            self.args.join(" ")
        }
    }
}

/// Options such as `aux` or `-ef` are accepted and ignored.
pub fn main(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    run(ctx, Path::new(PROC_ROOT))
}

pub fn run(ctx: &mut Ctx<'_>, root: &Path) -> i32 {
    let procs = match read_procs(root) {
        Ok(p) => p,
        Err(e) => {
            return ctx.fail(
                "ps",
                format!("cannot read {}: {}", root.display(), errmsg(&e)),
            );
        }
    };
    match print(ctx.stdout, &procs) {
        Ok(()) => 0,
        Err(e) => ctx.fail("ps", format!("write error: {}", errmsg(&e))),
    }
}

pub fn print(out: &mut dyn Write, procs: &[Proc]) -> io::Result<()> {
    writeln!(out, "PID   USER     TIME  COMMAND")?;
    for p in procs {
        writeln!(
            out,
            "{:>5} {:<8} {:>5} {}",
            p.pid,
            "root",
            "0:00",
            p.command()
        )?;
    }
    out.flush()
}

/// Reads every numeric directory of `root`, sorted by pid. Processes whose
/// files vanish or cannot be read are skipped, as they may have exited.
pub fn read_procs(root: &Path) -> io::Result<Vec<Proc>> {
    let mut procs = Vec::new();
    for entry in fs::read_dir(root)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(parse_pid) else {
            continue;
        };
        if let Some(p) = read_proc(&entry.path(), pid) {
            procs.push(p);
        }
    }
    procs.sort_by_key(|p| p.pid);
    Ok(procs)
}

fn parse_pid(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn read_proc(dir: &Path, pid: u64) -> Option<Proc> {
    let cmdline = fs::read(dir.join("cmdline")).ok();
    let status = fs::read(dir.join("status")).ok();
    if cmdline.is_none() && status.is_none() {
        return None;
    }
    let args = cmdline.as_deref().map(parse_cmdline).unwrap_or_default();
    let status = String::from_utf8_lossy(status.as_deref().unwrap_or_default());
    let field = |key: &str| {
        status.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let name = field("Name")
        .filter(|n| !n.is_empty())
        .or_else(|| args.first().map(|a| crate::ctx::basename(a).to_string()))
        .unwrap_or_else(|| "?".to_string());
    let ppid = field("PPid").and_then(|p| parse_pid(&p));
    let state = field("State")
        .and_then(|s| s.chars().next())
        .unwrap_or('R')
        .to_string();
    Some(Proc {
        pid,
        ppid,
        name,
        state,
        args,
    })
}

/// `top [-b] [-d SECONDS] [-n ITERATIONS]`: prints the process table every
/// `-d` seconds (3 by default), `-n` times or until it is interrupted or
/// killed. On a terminal (and without `-b`) each round clears the screen;
/// otherwise rounds follow each other, separated by a blank line.
pub fn top(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "bHSi", "dnp") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("top", msg),
    };
    let delay = match opts.value('d') {
        None => Duration::from_secs(3),
        Some(d) => match d
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite())
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
        {
            Some(d) => d,
            None => return ctx.fail("top", format!("invalid number '{d}'")),
        },
    };
    let rounds = match opts.value('n') {
        None => None,
        Some(n) => match n.parse::<u64>() {
            Ok(n) if n > 0 => Some(n),
            _ => return ctx.fail("top", format!("invalid number '{n}'")),
        },
    };
    let clear = !opts.has('b') && io::stdout().is_terminal();
    run_top(ctx, Path::new(PROC_ROOT), delay, rounds, clear)
}

pub fn run_top(
    ctx: &mut Ctx<'_>,
    root: &Path,
    delay: Duration,
    rounds: Option<u64>,
    clear: bool,
) -> i32 {
    let mut round = 0u64;
    loop {
        let procs = match read_procs(root) {
            Ok(p) => p,
            Err(e) => {
                return ctx.fail(
                    "top",
                    format!("cannot read {}: {}", root.display(), errmsg(&e)),
                );
            }
        };
        let result = (|| -> io::Result<()> {
            if clear {
                write!(ctx.stdout, "\x1b[H\x1b[J")?;
            } else if round > 0 {
                writeln!(ctx.stdout)?;
            }
            let now = strftime(&Tm::from_stamp(Stamp::now()), "%H:%M:%S");
            let count = procs.len();
            let plural = if count == 1 { "" } else { "es" };
            writeln!(ctx.stdout, "top - {now} UTC, {count} process{plural}")?;
            writeln!(ctx.stdout, "  PID  PPID USER     STAT COMMAND")?;
            for p in &procs {
                let ppid = p.ppid.map_or_else(|| "-".to_string(), |p| p.to_string());
                writeln!(
                    ctx.stdout,
                    "{:>5} {:>5} {:<8} {:<4} {}",
                    p.pid,
                    ppid,
                    "root",
                    p.state,
                    p.command()
                )?;
            }
            ctx.stdout.flush()
        })();
        if let Err(e) = result {
            return ctx.fail("top", format!("write error: {}", errmsg(&e)));
        }
        round += 1;
        if rounds.is_some_and(|n| round >= n) {
            return 0;
        }
        std::thread::sleep(delay);
    }
}

/// `a\0b\0` -> ["a", "b"]; a missing trailing NUL is tolerated.
fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::{Env, capture};

    fn add(root: &Path, pid: &str, cmdline: &[u8], name: &str, ppid: u64) {
        let dir = root.join(pid);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cmdline"), cmdline).unwrap();
        let status = format!("Name:\t{name}\nState:\tR (running)\nPid:\t{pid}\nPPid:\t{ppid}\n");
        fs::write(dir.join("status"), status).unwrap();
    }

    #[test]
    fn formats_like_busybox() {
        let root = crate::testutil::tempdir("proc");
        add(&root, "12", b"/bin/sh\0-c\0sleep 5\0", "sh", 1);
        add(&root, "1", b"kubia\0", "kubia", 0);
        add(&root, "100", b"", "kworker", 1);
        add(&root, "7", b"ls\0-l", "ls", 1);
        fs::create_dir_all(root.join("self")).unwrap();
        fs::write(root.join("uptime"), "1.0 1.0\n").unwrap();
        fs::create_dir_all(root.join("55")).unwrap(); // exited: no files
        let (code, out, err) = capture("", &Env::new(), |ctx| run(ctx, &root));
        assert_eq!((code, err.as_str()), (0, ""));
        assert_eq!(
            out,
            "PID   USER     TIME  COMMAND\n\
             \x20   1 root      0:00 kubia\n\
             \x20   7 root      0:00 ls -l\n\
             \x20  12 root      0:00 /bin/sh -c sleep 5\n\
             \x20 100 root      0:00 [kworker]\n"
        );
        let procs = read_procs(&root).unwrap();
        assert_eq!(procs[2].ppid, Some(1));
        assert_eq!(procs[2].name, "sh");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn top_prints_rounds() {
        let root = crate::testutil::tempdir("top");
        add(&root, "1", b"sh\0-c\0top -b\0", "sh", 0);
        add(&root, "2", b"top\0-b\0", "top", 1);
        let (code, out, err) = capture("", &Env::new(), |ctx| {
            run_top(ctx, &root, Duration::from_millis(1), Some(2), false)
        });
        assert_eq!((code, err.as_str()), (0, ""));
        let rounds: Vec<&str> = out.split("\n\n").collect();
        assert_eq!(rounds.len(), 2, "{out}");
        for round in rounds {
            let lines: Vec<&str> = round.lines().collect();
            assert!(lines[0].starts_with("top - ") && lines[0].ends_with(" UTC, 2 processes"));
            assert_eq!(
                &lines[1..],
                [
                    "  PID  PPID USER     STAT COMMAND",
                    "    1     0 root     R    sh -c top -b",
                    "    2     1 root     R    top -b",
                ]
            );
        }
        let (code, _, err) = capture("", &Env::new(), |ctx| {
            top(ctx, &["-d".to_string(), "x".to_string()])
        });
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: top: invalid number 'x'\n")
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_proc_is_an_error() {
        let (code, out, err) = capture("", &Env::new(), |ctx| {
            run(ctx, Path::new("/nonexistent-proc-root"))
        });
        assert_eq!((code, out.as_str()), (1, ""));
        assert_eq!(
            err,
            "busybox: ps: cannot read /nonexistent-proc-root: No such file or directory\n"
        );
    }
}
