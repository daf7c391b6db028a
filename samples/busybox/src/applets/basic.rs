//! Applets that touch neither files nor the network: echo, env, hostname,
//! pwd, sleep, true and false.

use crate::ctx::{Ctx, Env, basename, errmsg};
use std::io;
use std::time::Duration;

/// `echo [-neE] [ARG]...`: leading option words are only taken while every
/// letter is one of `n`, `e`, `E`; anything else is printed literally.
pub fn echo(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let (mut newline, mut escapes) = (true, false);
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        let Some(letters) = first.strip_prefix('-') else {
            break;
        };
        if letters.is_empty() || !letters.chars().all(|c| "neE".contains(c)) {
            break;
        }
        for c in letters.chars() {
            match c {
                'n' => newline = false,
                'e' => escapes = true,
                _ => escapes = false,
            }
        }
        rest = tail;
    }
    let mut text = rest.join(" ");
    if escapes {
        let (expanded, stop) = unescape(&text);
        text = expanded;
        newline &= !stop;
    }
    if newline {
        text.push('\n');
    }
    match ctx.stdout.write_all(text.as_bytes()) {
        Ok(()) => 0,
        Err(e) => ctx.fail("echo", format!("write error: {}", errmsg(&e))),
    }
}

/// Expands `echo -e` escapes; the flag is true when `\c` cut the output.
fn unescape(s: &str) -> (String, bool) {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('a') => out.push('\x07'),
            Some('b') => out.push('\x08'),
            Some('e') => out.push('\x1b'),
            Some('\\') => out.push('\\'),
            Some('c') => return (out, true),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    (out, false)
}

pub fn true_(_: &mut Ctx<'_>, _: &[String]) -> i32 {
    0
}

pub fn false_(_: &mut Ctx<'_>, _: &[String]) -> i32 {
    1
}

/// `env [-i] [NAME=VALUE]... [APPLET [ARG]...]`: prints the environment, or
/// runs an applet in a modified one.
pub fn env(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut env = ctx.env.clone();
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        if first == "-i" || first == "-" {
            env.clear();
        } else if let Some((k, v)) = first.split_once('=').filter(|(k, _)| !k.is_empty()) {
            env.insert(k.to_string(), v.to_string());
        } else if first.starts_with('-') && first != "--" {
            return ctx.fail("env", format!("unrecognized option '{first}'"));
        } else {
            if first == "--" {
                rest = tail;
            }
            break;
        }
        rest = tail;
    }
    match rest.split_first() {
        None => print_env(ctx, &env),
        Some((cmd, cmd_args)) => {
            let name = basename(cmd);
            let Some(applet) = super::lookup(name) else {
                let _ = writeln!(
                    ctx.stderr,
                    "busybox: env: can't execute '{cmd}': applet not found"
                );
                return 127;
            };
            let mut sub = Ctx {
                stdin: &mut *ctx.stdin,
                stdout: &mut *ctx.stdout,
                stderr: &mut *ctx.stderr,
                env: &env,
            };
            applet(&mut sub, cmd_args)
        }
    }
}

fn print_env(ctx: &mut Ctx<'_>, env: &Env) -> i32 {
    let result: io::Result<()> = env
        .iter()
        .try_for_each(|(k, v)| writeln!(ctx.stdout, "{k}={v}"));
    match result {
        Ok(()) => 0,
        Err(e) => ctx.fail("env", format!("write error: {}", errmsg(&e))),
    }
}

/// `hostname`: the container's name comes from `$HOSTNAME`, WASI has no call
/// for it.
pub fn hostname(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if let Some(name) = args.iter().find(|a| !a.starts_with('-')) {
        return ctx.fail(
            "hostname",
            format!("{name}: setting the hostname is not supported"),
        );
    }
    let name = nodename(ctx);
    match writeln!(ctx.stdout, "{name}") {
        Ok(()) => 0,
        Err(e) => ctx.fail("hostname", format!("write error: {}", errmsg(&e))),
    }
}

/// The host's name for this container: `$HOSTNAME`, or `localhost`.
pub fn nodename(ctx: &Ctx<'_>) -> String {
    ctx.var("HOSTNAME")
        .filter(|h| !h.is_empty())
        .unwrap_or("localhost")
        .to_string()
}

/// `pwd`: the WASI current directory, or `$PWD` if that is unknown.
pub fn pwd(ctx: &mut Ctx<'_>, _: &[String]) -> i32 {
    let dir = match std::env::current_dir() {
        Ok(dir) => dir.to_string_lossy().into_owned(),
        Err(e) => match ctx.var("PWD") {
            Some(pwd) if !pwd.is_empty() => pwd.to_string(),
            _ => return ctx.fail("pwd", format!("getcwd: {}", errmsg(&e))),
        },
    };
    match writeln!(ctx.stdout, "{dir}") {
        Ok(()) => 0,
        Err(e) => ctx.fail("pwd", format!("write error: {}", errmsg(&e))),
    }
}

/// `sleep N[smhd]...`: sleeps for the sum of the durations; fractions allowed.
pub fn sleep(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if args.is_empty() {
        return ctx.fail("sleep", "missing operand");
    }
    let mut total = Duration::ZERO;
    for arg in args {
        match parse_duration(arg) {
            Some(d) => total = total.saturating_add(d),
            None => return ctx.fail("sleep", format!("invalid number '{arg}'")),
        }
    }
    std::thread::sleep(total);
    0
}

fn parse_duration(arg: &str) -> Option<Duration> {
    let (number, unit) = match arg.char_indices().last()? {
        (i, 's') => (&arg[..i], 1.0),
        (i, 'm') => (&arg[..i], 60.0),
        (i, 'h') => (&arg[..i], 3600.0),
        (i, 'd') => (&arg[..i], 86400.0),
        _ => (arg, 1.0),
    };
    // Only plain decimal numbers: no "inf", "nan" or exponents.
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let secs: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(secs * unit).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::capture;

    fn run(f: super::super::Run, args: &[&str], env: &Env) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture("", env, |ctx| f(ctx, &args))
    }

    #[test]
    fn echo_flags() {
        let env = Env::new();
        assert_eq!(run(echo, &["-n", "a", "b"], &env).1, "a b");
        assert_eq!(run(echo, &["-e", "a\\tb\\c", "x"], &env).1, "a\tb");
        assert_eq!(run(echo, &["-x", "-n"], &env).1, "-x -n\n");
        assert_eq!(run(echo, &[], &env).1, "\n");
    }

    #[test]
    fn env_prints_and_runs() {
        let mut env = Env::new();
        env.insert("A".into(), "1".into());
        assert_eq!(run(super::env, &[], &env).1, "A=1\n");
        assert_eq!(run(super::env, &["B=2"], &env).1, "A=1\nB=2\n");
        assert_eq!(run(super::env, &["-i", "C=3"], &env).1, "C=3\n");
        let (c, out, _) = run(super::env, &["-i", "HOSTNAME=h", "hostname"], &env);
        assert_eq!((c, out.as_str()), (0, "h\n"));
        assert_eq!(run(super::env, &["nope"], &env).0, 127);
    }

    #[test]
    fn hostname_fallback() {
        assert_eq!(run(hostname, &[], &Env::new()).1, "localhost\n");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        for bad in ["", "x", "-1", "inf", "1e3", "1.2.3", "s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        let (c, _, err) = run(sleep, &["abc"], &Env::new());
        assert_eq!(
            (c, err.as_str()),
            (1, "busybox: sleep: invalid number 'abc'\n")
        );
    }
}
