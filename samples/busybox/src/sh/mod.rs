//! The `sh` applet: `sh -c STRING`, `sh FILE`, or commands read from stdin
//! line by line (no prompt, so it is as scriptable as it is interactive).
//! It has pipelines, `&&`/`||`, redirections, `if`/`for`/`while`/`until`
//! loops, `{ }` and `( )` groups, `$(...)` and `$((...))`.

mod arith;
mod builtins;
mod exec;
mod expand;
mod lex;
mod parse;
mod test;
#[cfg(test)]
mod tests;

use crate::ctx::{Ctx, errmsg};
use exec::Shell;
use std::io::ErrorKind;

/// `sh [-c STRING [NAME [ARG]...] | FILE [ARG]... | -s]`
pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut command = false;
    let mut from_stdin = false;
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        if first == "--" {
            rest = tail;
            break;
        }
        let Some(letters) = first.strip_prefix('-').filter(|l| !l.is_empty()) else {
            break;
        };
        for c in letters.chars() {
            match c {
                'c' => command = true,
                's' => from_stdin = true,
                'i' => {}
                _ => {
                    let _ = writeln!(ctx.stderr, "sh: illegal option -{c}");
                    return 2;
                }
            }
        }
        rest = tail;
    }
    if command {
        let Some((src, names)) = rest.split_first() else {
            let _ = writeln!(ctx.stderr, "sh: -c requires an argument");
            return 2;
        };
        let mut positional = names.to_vec();
        if positional.is_empty() {
            positional.push("sh".to_string());
        }
        return run_source(ctx, src, positional);
    }
    match rest.split_first() {
        Some((file, script_args)) if !from_stdin => {
            let src = match std::fs::read(file) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) => {
                    let _ = writeln!(ctx.stderr, "sh: can't open '{file}': {}", errmsg(&e));
                    return 127;
                }
            };
            let mut positional = vec![file.clone()];
            positional.extend_from_slice(script_args);
            run_source(ctx, &src, positional)
        }
        _ => {
            let mut positional = vec!["sh".to_string()];
            positional.extend_from_slice(rest);
            run_lines(ctx, positional)
        }
    }
}

/// Parses all of `src` first, then runs it; a syntax error runs nothing.
pub fn run_source(ctx: &mut Ctx<'_>, src: &str, positional: Vec<String>) -> i32 {
    match parse::parse(src) {
        Ok(script) => Shell::new(ctx.env, positional).run(ctx, &script),
        Err(e) => {
            let _ = writeln!(ctx.stderr, "sh: syntax error: {}", e.msg);
            2
        }
    }
}

/// Reads commands from stdin, running each complete line (or group of lines,
/// while quotes or `&&` are left open) as soon as it is read. A syntax error
/// is reported with status 2 and reading continues, as in an interactive shell.
fn run_lines(ctx: &mut Ctx<'_>, positional: Vec<String>) -> i32 {
    let mut shell = Shell::new(ctx.env, positional);
    let mut pending = String::new();
    loop {
        let mut line = Vec::new();
        let eof = match ctx.stdin.read_until(b'\n', &mut line) {
            Ok(n) => n == 0,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = writeln!(ctx.stderr, "sh: read error: {}", errmsg(&e));
                return 1;
            }
        };
        pending.push_str(&String::from_utf8_lossy(&line));
        if !pending.trim().is_empty() {
            match parse::parse(&pending) {
                Ok(script) => {
                    pending.clear();
                    let status = shell.run(ctx, &script);
                    let _ = ctx.stdout.flush();
                    if shell.exit.is_some() {
                        return status;
                    }
                }
                Err(e) if e.incomplete && !eof => continue,
                Err(e) => {
                    pending.clear();
                    let _ = writeln!(ctx.stderr, "sh: syntax error: {}", e.msg);
                    shell.status = 2;
                }
            }
        }
        if eof {
            return shell.status;
        }
    }
}
