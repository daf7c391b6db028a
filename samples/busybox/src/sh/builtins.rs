//! The shell's builtins: commands that change the shell itself (`cd`,
//! `exit`, `export`, `break`, `read`, ...) and `test`/`[`, which scripts run
//! so often that a builtin is the natural place for it.

use super::exec::{Flow, Shell};
use super::lex;
use crate::ctx::{Ctx, errmsg};
use std::io::ErrorKind;

impl Shell {
    /// Runs `name` if it is a builtin; `None` otherwise.
    pub(super) fn builtin(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        args: &[String],
    ) -> Option<i32> {
        Some(match name {
            "exit" => self.builtin_exit(ctx, args),
            "cd" => self.builtin_cd(ctx, args),
            "export" => self.builtin_export(ctx, args),
            "break" => self.builtin_loop(ctx, "break", args),
            "continue" => self.builtin_loop(ctx, "continue", args),
            "read" => self.builtin_read(ctx, args),
            "shift" => self.builtin_shift(ctx, args),
            "unset" => self.builtin_unset(ctx, args),
            "set" => self.builtin_set(ctx, args),
            ":" => 0,
            "test" => builtin_test(ctx, "test", args),
            "[" => match args.split_last() {
                Some((last, rest)) if last == "]" => builtin_test(ctx, "[", rest),
                _ => {
                    let _ = writeln!(ctx.stderr, "sh: [: missing ]");
                    2
                }
            },
            _ => return None,
        })
    }

    fn builtin_exit(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        let code = match args.first() {
            None => self.status,
            Some(arg) => match arg.parse::<i64>() {
                // Like other shells, only the low 8 bits survive.
                Ok(n) => i32::try_from(n.rem_euclid(256)).unwrap_or(255),
                Err(_) => {
                    let _ = writeln!(ctx.stderr, "sh: exit: Illegal number: {arg}");
                    2
                }
            },
        };
        self.exit = Some(code);
        code
    }

    fn builtin_cd(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        let dir = match args.first().map(String::as_str) {
            Some("-") => self.vars.get("OLDPWD").cloned().unwrap_or_default(),
            Some(dir) => dir.to_string(),
            None => self
                .vars
                .get("HOME")
                .filter(|h| !h.is_empty())
                .cloned()
                .unwrap_or_else(|| "/".to_string()),
        };
        if let Err(e) = std::env::set_current_dir(&dir) {
            let _ = writeln!(ctx.stderr, "sh: cd: can't cd to {dir}: {}", errmsg(&e));
            return 1;
        }
        let new = std::env::current_dir()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or(dir);
        if let Some(old) = self.vars.insert("PWD".to_string(), new) {
            self.vars.insert("OLDPWD".to_string(), old);
        }
        0
    }

    fn builtin_export(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        if args.is_empty() {
            for name in &self.exported {
                if let Some(value) = self.vars.get(name) {
                    let quoted = value.replace('\'', "'\\''");
                    if writeln!(ctx.stdout, "export {name}='{quoted}'").is_err() {
                        return 1;
                    }
                }
            }
            return 0;
        }
        let mut status = 0;
        for arg in args {
            let (name, value) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (arg.as_str(), None),
            };
            let mut chars = name.chars();
            let valid =
                chars.next().is_some_and(lex::is_name_start) && chars.all(lex::is_name_char);
            if !valid {
                let _ = writeln!(ctx.stderr, "sh: export: bad variable name: {name}");
                status = 1;
                continue;
            }
            if let Some(value) = value {
                self.vars.insert(name.to_string(), value.to_string());
            }
            self.exported.insert(name.to_string());
        }
        status
    }

    /// `break [N]` / `continue [N]`: outside a loop they do nothing.
    fn builtin_loop(&mut self, ctx: &mut Ctx<'_>, name: &str, args: &[String]) -> i32 {
        let n = match args.first() {
            None => 1,
            Some(arg) => match arg.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => {
                    let _ = writeln!(ctx.stderr, "sh: {name}: Illegal number: {arg}");
                    return 2;
                }
            },
        };
        if self.loops > 0 {
            let n = n.min(self.loops);
            self.flow = Some(if name == "break" {
                Flow::Break(n)
            } else {
                Flow::Continue(n)
            });
        }
        0
    }

    /// `read [-r] [NAME]...`: reads a line from stdin and splits it on blanks
    /// into the names, the last one taking the rest (`REPLY` without names).
    /// Without `-r`, a backslash quotes the next character and a trailing one
    /// joins the next line. Fails at end of input.
    fn builtin_read(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        let mut raw = false;
        let mut names = Vec::new();
        for arg in args {
            match arg.as_str() {
                "-r" => raw = true,
                a if a.starts_with('-') && names.is_empty() => {
                    let _ = writeln!(ctx.stderr, "sh: read: illegal option {a}");
                    return 2;
                }
                a if super::parse::valid_name(a) => names.push(a.to_string()),
                a => {
                    let _ = writeln!(ctx.stderr, "sh: read: '{a}': not a valid identifier");
                    return 2;
                }
            }
        }
        if names.is_empty() {
            names.push("REPLY".to_string());
        }
        let mut line = String::new();
        let complete = loop {
            let mut buf = Vec::new();
            match ctx.stdin.read_until(b'\n', &mut buf) {
                Ok(0) => break false,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    let _ = writeln!(ctx.stderr, "sh: read: {}", errmsg(&e));
                    return 1;
                }
            }
            let text = String::from_utf8_lossy(&buf);
            let newline = text.ends_with('\n');
            let text = text.strip_suffix('\n').unwrap_or(&text);
            if raw {
                line.push_str(text);
                break newline;
            }
            let mut chars = text.chars();
            let mut joined = false;
            while let Some(c) = chars.next() {
                if c != '\\' {
                    line.push(c);
                    continue;
                }
                match chars.next() {
                    // Quoted blanks must not split: mark them until then.
                    Some(' ' | '\t') => line.push(QUOTED_BLANK),
                    Some(q) => line.push(q),
                    None => joined = newline,
                }
            }
            if !joined {
                break newline;
            }
        };
        let mut fields = split_fields(&line, names.len());
        fields.resize(names.len(), String::new());
        for (name, value) in names.into_iter().zip(fields) {
            let value = value.replace(QUOTED_BLANK, " ");
            self.vars.insert(name, value);
        }
        // Like other shells: a last line without a newline is still stored,
        // but the status says the input ended.
        i32::from(!complete)
    }

    /// `shift [N]`: drops the first N positional parameters.
    fn builtin_shift(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        let n = match args.first().map(|a| a.parse::<usize>()) {
            None => 1,
            Some(Ok(n)) => n,
            Some(Err(_)) => {
                let _ = writeln!(ctx.stderr, "sh: shift: Illegal number: {}", args[0]);
                return 2;
            }
        };
        if n >= self.args.len() && n > 0 {
            let _ = writeln!(ctx.stderr, "sh: shift: can't shift that many");
            return 2;
        }
        self.args.drain(1..=n);
        0
    }

    /// `set [-ex] [+ex] [-o errexit|xtrace] [--] [ARG]...`: shell options,
    /// and new positional parameters when arguments (or `--`) follow.
    /// Without arguments, prints the variables.
    fn builtin_set(&mut self, ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        if args.is_empty() {
            for (name, value) in &self.vars {
                let quoted = value.replace('\'', "'\\''");
                if writeln!(ctx.stdout, "{name}='{quoted}'").is_err() {
                    return 1;
                }
            }
            return 0;
        }
        let mut rest = args;
        while let Some((first, tail)) = rest.split_first() {
            if first == "--" {
                self.set_positional(tail);
                return 0;
            }
            let (on, letters) = match (first.strip_prefix('-'), first.strip_prefix('+')) {
                (Some(l), _) if !l.is_empty() => (true, l),
                (_, Some(l)) if !l.is_empty() => (false, l),
                _ => break,
            };
            if letters == "o" {
                let Some((name, tail)) = tail.split_first() else {
                    let _ = writeln!(ctx.stderr, "sh: set: -o needs an option name");
                    return 2;
                };
                let letter = match name.as_str() {
                    "errexit" => 'e',
                    "xtrace" => 'x',
                    "nounset" | "noglob" | "pipefail" => 'u',
                    other => {
                        let _ = writeln!(ctx.stderr, "sh: set: illegal option -o {other}");
                        return 2;
                    }
                };
                self.set_option(letter, on);
                rest = tail;
                continue;
            }
            for c in letters.chars() {
                if !"exufv".contains(c) {
                    let _ = writeln!(ctx.stderr, "sh: set: illegal option -{c}");
                    return 2;
                }
                self.set_option(c, on);
            }
            rest = tail;
        }
        if !rest.is_empty() {
            self.set_positional(rest);
        }
        0
    }

    /// `-e` and `-x` change how the shell runs; `-u`, `-f` and `-v` are
    /// accepted and have no effect.
    fn set_option(&mut self, letter: char, on: bool) {
        match letter {
            'e' => self.errexit = on,
            'x' => self.xtrace = on,
            _ => {}
        }
    }

    fn set_positional(&mut self, args: &[String]) {
        self.args.truncate(1);
        self.args.extend_from_slice(args);
    }

    /// `unset NAME...`
    fn builtin_unset(&mut self, _ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
        for name in args.iter().filter(|a| !a.starts_with('-')) {
            self.vars.remove(name);
            self.exported.remove(name);
        }
        0
    }
}

/// Stands for a backslash-quoted blank while `read` splits a line.
const QUOTED_BLANK: char = '\u{1}';

/// Splits `line` on blanks into at most `n` fields; the last keeps the rest
/// (without trailing blanks).
fn split_fields(line: &str, n: usize) -> Vec<String> {
    let mut fields = Vec::new();
    let mut rest = line.trim_start_matches([' ', '\t']);
    while !rest.is_empty() {
        if fields.len() + 1 == n {
            fields.push(rest.trim_end_matches([' ', '\t']).to_string());
            break;
        }
        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
        fields.push(rest[..end].to_string());
        rest = rest[end..].trim_start_matches([' ', '\t']);
    }
    fields
}

/// `test EXPR` / `[ EXPR ]`: status 0 when true, 1 when false, 2 on error.
fn builtin_test(ctx: &mut Ctx<'_>, name: &str, args: &[String]) -> i32 {
    match super::test::eval(args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(msg) => {
            let _ = writeln!(ctx.stderr, "sh: {name}: {msg}");
            2
        }
    }
}
