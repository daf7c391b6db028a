//! The applet table and multi-call dispatch: picks the applet from argv[0]
//! (or argv[1] when invoked as `busybox`) and runs it with a [`Ctx`].

mod basic;
mod date;
mod fs;
mod grep;
mod ls;
mod printf;
mod ps;
mod sys;
mod tar;
mod text;

// Networking needs wasi:sockets, which only WASI preview 2 has. Native builds
// keep the applets too so they can be tested on the host.
#[cfg(any(target_env = "p2", not(target_os = "wasi")))]
mod nc;
#[cfg(any(target_env = "p2", not(target_os = "wasi")))]
mod wget;

use crate::ctx::{Ctx, basename};

/// An applet's entry point: arguments exclude the applet name; returns the
/// exit status.
pub type Run = fn(&mut Ctx<'_>, &[String]) -> i32;

const COMMON: &[(&str, Run)] = &[
    ("sh", crate::sh::main),
    ("echo", basic::echo),
    ("cat", fs::cat),
    ("ls", ls::main),
    ("env", basic::env),
    ("hostname", basic::hostname),
    ("pwd", basic::pwd),
    ("mkdir", fs::mkdir),
    ("rm", fs::rm),
    ("sleep", basic::sleep),
    ("true", basic::true_),
    ("false", basic::false_),
    ("ps", ps::main),
    ("touch", fs::touch),
    ("printf", printf::main),
    ("head", text::head),
    ("tail", text::tail),
    ("wc", text::wc),
    ("grep", grep::main),
    ("cut", text::cut),
    ("sort", text::sort),
    ("uniq", text::uniq),
    ("tee", text::tee),
    ("date", date::main),
    ("uname", sys::uname),
    ("id", sys::id),
    ("whoami", sys::whoami),
    ("tar", tar::main),
    ("top", ps::top),
];

#[cfg(any(target_env = "p2", not(target_os = "wasi")))]
const NET: &[(&str, Run)] = &[("wget", wget::main), ("nc", nc::main)];
#[cfg(not(any(target_env = "p2", not(target_os = "wasi"))))]
const NET: &[(&str, Run)] = &[];

/// Names of all applets compiled into this binary, in a stable order.
pub fn names() -> impl Iterator<Item = &'static str> {
    COMMON.iter().chain(NET).map(|(name, _)| *name)
}

/// Finds an applet by name.
pub fn lookup(name: &str) -> Option<Run> {
    COMMON
        .iter()
        .chain(NET)
        .find(|(n, _)| *n == name)
        .map(|(_, run)| *run)
}

/// Runs the program described by a full argv, busybox style.
pub fn multicall(ctx: &mut Ctx<'_>, argv: &[String]) -> i32 {
    let arg0 = argv.first().map(String::as_str).unwrap_or("");
    let name = basename(arg0);
    let name = name.strip_suffix(".wasm").unwrap_or(name);
    if !name.is_empty() && name != "busybox" {
        return run(ctx, name, argv.get(1..).unwrap_or(&[]));
    }
    match argv.get(1).map(String::as_str) {
        None | Some("--list") | Some("--help") => {
            for name in names() {
                if let Err(e) = writeln!(ctx.stdout, "{name}") {
                    return ctx.fail("--list", crate::ctx::errmsg(&e));
                }
            }
            0
        }
        Some(name) => run(ctx, basename(name), &argv[2..]),
    }
}

/// Runs applet `name`, or reports `applet not found` with status 127.
pub fn run(ctx: &mut Ctx<'_>, name: &str, args: &[String]) -> i32 {
    match lookup(name) {
        Some(applet) => applet(ctx, args),
        None => {
            let _ = writeln!(ctx.stderr, "busybox: applet not found: {name}");
            127
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::{Env, capture};

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dispatch_by_argv0_and_argv1() {
        let env = Env::new();
        let (c, out, _) = capture("", &env, |ctx| {
            multicall(ctx, &argv(&["/bin/echo", "a", "b"]))
        });
        assert_eq!((c, out.as_str()), (0, "a b\n"));
        let (c, out, _) = capture("", &env, |ctx| {
            multicall(ctx, &argv(&["busybox.wasm", "echo", "x"]))
        });
        assert_eq!((c, out.as_str()), (0, "x\n"));
        let (c, out, _) = capture("", &env, |ctx| multicall(ctx, &argv(&["", "false"])));
        assert_eq!((c, out.as_str()), (1, ""));
        let (c, _, err) = capture("", &env, |ctx| multicall(ctx, &argv(&["busybox", "nope"])));
        assert_eq!(
            (c, err.as_str()),
            (127, "busybox: applet not found: nope\n")
        );
        let (c, out, _) = capture("", &env, |ctx| multicall(ctx, &argv(&["busybox"])));
        assert_eq!(c, 0);
        assert_eq!(out.lines().collect::<Vec<_>>(), names().collect::<Vec<_>>());
    }

    /// build.sh creates one symlink per applet; its lists must match the table.
    #[test]
    fn build_script_lists_every_applet() {
        let script = include_str!("../../../build.sh");
        let list = |var: &str| -> Vec<String> {
            let line = script
                .lines()
                .find(|l| l.starts_with(&format!("{var}=(")))
                .unwrap_or_default();
            let inner = line.split(['(', ')']).nth(1).unwrap_or_default();
            inner.split_whitespace().map(str::to_string).collect()
        };
        let mut from_script = list("COMMON_APPLETS");
        from_script.extend(list("NET_APPLETS"));
        let ours: Vec<String> = names().map(str::to_string).collect();
        assert_eq!(from_script, ours);
    }
}
