//! `grep`: searches files for lines matching patterns, with the `regex`
//! crate as the engine. POSIX basic (default) and extended (`-E`) regular
//! expressions are translated to its syntax; matching works on bytes, as
//! grep does in the C locale. Exit status: 0 when a line was selected, 1
//! when none was, 2 on errors.

use crate::ctx::{Ctx, errmsg};
use crate::opts;
use regex::bytes::{Regex, RegexBuilder};
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

struct Grep {
    re: Regex,
    invert: bool,
    count: bool,
    files_with: bool,
    files_without: bool,
    quiet: bool,
    only: bool,
    word: bool,
    line_numbers: bool,
    with_name: bool,
    no_messages: bool,
    max: Option<u64>,
    recursive: bool,
    follow: bool,
    /// Set once a line was selected.
    matched: bool,
    /// Set on a file error.
    error: bool,
}

/// Where results and complaints go.
struct Out<'a, 'b> {
    stdout: &'a mut (dyn Write + 'b),
    stderr: &'a mut (dyn Write + 'b),
}

impl<'b> Out<'_, 'b> {
    fn reborrow(&mut self) -> Out<'_, 'b> {
        Out {
            stdout: &mut *self.stdout,
            stderr: &mut *self.stderr,
        }
    }
}

/// Stops the search: `-q` found a match, or output failed.
enum Stop {
    Found,
    Write(io::Error),
}

pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "ivcnlLqsEFGrRowxhHy", "efm") {
        Ok(o) => o,
        Err(msg) => {
            let _ = writeln!(ctx.stderr, "busybox: grep: {msg}");
            return 2;
        }
    };
    let mut operands = opts.operands.clone();
    let mut patterns = Vec::new();
    for (flag, value) in &opts.flags {
        let value = value.as_deref().unwrap_or_default();
        match flag {
            'e' => patterns.extend(value.split('\n').map(str::to_string)),
            'f' => match fs::read(value) {
                Ok(data) => {
                    let text = String::from_utf8_lossy(&data);
                    patterns.extend(text.lines().map(str::to_string));
                }
                Err(e) => {
                    let _ = writeln!(ctx.stderr, "busybox: grep: {value}: {}", errmsg(&e));
                    return 2;
                }
            },
            _ => {}
        }
    }
    if !opts.has('e') && !opts.has('f') {
        if operands.is_empty() {
            let _ = writeln!(ctx.stderr, "busybox: grep: no pattern given");
            return 2;
        }
        let first = operands.remove(0);
        patterns.extend(first.split('\n').map(str::to_string));
    }
    let max = match opts.value('m') {
        None => None,
        Some(m) => match m.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => {
                let _ = writeln!(ctx.stderr, "busybox: grep: invalid max count '{m}'");
                return 2;
            }
        },
    };
    let syntax = if opts.has('F') {
        Syntax::Fixed
    } else if opts.has('E') {
        Syntax::Extended
    } else {
        Syntax::Basic
    };
    let re = match build(
        &patterns,
        syntax,
        opts.has('i') || opts.has('y'),
        opts.has('x'),
    ) {
        Ok(re) => re,
        Err(msg) => {
            let _ = writeln!(ctx.stderr, "busybox: grep: {msg}");
            return 2;
        }
    };
    let recursive = opts.has('r') || opts.has('R');
    let implicit_dot = recursive && operands.is_empty();
    if operands.is_empty() {
        operands.push(if recursive { "." } else { "-" }.to_string());
    }
    let mut grep = Grep {
        re,
        invert: opts.has('v'),
        count: opts.has('c'),
        files_with: opts.has('l'),
        files_without: opts.has('L'),
        quiet: opts.has('q'),
        only: opts.has('o'),
        word: opts.has('w'),
        line_numbers: opts.has('n'),
        with_name: !opts.has('h') && (opts.has('H') || operands.len() > 1 || recursive),
        no_messages: opts.has('s'),
        max,
        recursive,
        follow: opts.has('R'),
        matched: false,
        error: false,
    };
    for name in &operands {
        let out = Out {
            stdout: &mut *ctx.stdout,
            stderr: &mut *ctx.stderr,
        };
        let result = if name == "-" {
            grep.search(&mut *ctx.stdin, out, "(standard input)")
        } else {
            grep.path(out, Path::new(name), name, implicit_dot, true)
        };
        match result {
            Ok(()) => {}
            Err(Stop::Found) => return 0,
            Err(Stop::Write(e)) => {
                let _ = writeln!(ctx.stderr, "busybox: grep: write error: {}", errmsg(&e));
                return 2;
            }
        }
    }
    if let Err(e) = ctx.stdout.flush() {
        let _ = writeln!(ctx.stderr, "busybox: grep: write error: {}", errmsg(&e));
        return 2;
    }
    if grep.error && !(grep.quiet && grep.matched) {
        2
    } else if grep.matched {
        0
    } else {
        1
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Syntax {
    Basic,
    Extended,
    Fixed,
}

/// Compiles the patterns into one regex that matches any of them.
fn build(
    patterns: &[String],
    syntax: Syntax,
    icase: bool,
    whole_line: bool,
) -> Result<Regex, String> {
    let mut alternatives = Vec::with_capacity(patterns.len());
    for p in patterns {
        let translated = match syntax {
            Syntax::Fixed => regex::escape(p),
            Syntax::Basic => translate(p, true).map_err(|m| format!("bad regex '{p}': {m}"))?,
            Syntax::Extended => translate(p, false).map_err(|m| format!("bad regex '{p}': {m}"))?,
        };
        alternatives.push(format!("(?:{translated})"));
    }
    let mut joined = alternatives.join("|");
    if whole_line {
        joined = format!("^(?:{joined})$");
    }
    RegexBuilder::new(&joined)
        .unicode(false)
        .case_insensitive(icase)
        .build()
        .map_err(|e| {
            // The crate's message quotes the pattern over several lines;
            // its last line says what is wrong.
            let text = e.to_string();
            let why = text
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or(text.trim())
                .to_string();
            format!("bad regex '{}': {why}", patterns.join("\\n"))
        })
}

/// Translates a POSIX regular expression into the regex crate's syntax. In
/// a basic one (`basic`), `\( \) \{ \} \| \+ \?` are operators and the bare
/// characters are literal; `*` at the start, `^` not at the start and `$`
/// not at the end are literal too. Bracket expressions take a backslash
/// literally. GNU's `\< \> \b \B \w \W \s \S` are kept.
fn translate(p: &str, basic: bool) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    // At the start of an expression, after `(` or `|` (and `^`).
    let mut at_start = true;
    while i < chars.len() {
        let c = chars[i];
        let start = std::mem::replace(&mut at_start, false);
        match c {
            '\\' => {
                i += 1;
                let Some(&n) = chars.get(i) else {
                    return Err("trailing backslash".to_string());
                };
                match n {
                    '(' | '|' if basic => {
                        out.push(n);
                        at_start = true;
                    }
                    ')' | '}' if basic => out.push(n),
                    '{' if basic => out.push('{'),
                    '+' | '?' if basic && !start => out.push(n),
                    '<' | '>' | 'b' | 'B' | 'w' | 'W' | 's' | 'S' => {
                        out.push('\\');
                        out.push(n);
                    }
                    '1'..='9' => return Err("back-references are not supported".to_string()),
                    other => out.push_str(&regex::escape(&other.to_string())),
                }
            }
            '[' => {
                i = bracket(&chars, i, &mut out)?;
                continue;
            }
            '*' | '+' | '?' if start => out.push_str(&regex::escape(&c.to_string())),
            '*' | '.' => out.push(c),
            '^' if !basic || start => {
                out.push('^');
                at_start = true;
            }
            '$' if !basic || ends_expression(&chars, i + 1) => out.push('$'),
            '(' | '|' if !basic => {
                out.push(c);
                at_start = true;
            }
            ')' | '+' | '?' if !basic => out.push(c),
            '{' if !basic && is_interval(&chars, i + 1) => out.push('{'),
            '}' if !basic && out.contains('{') => out.push('}'),
            _ => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    Ok(out)
}

/// Whether a BRE `$` at `i - 1` is an anchor: at the end, or before `\)`
/// or `\|`.
fn ends_expression(chars: &[char], i: usize) -> bool {
    matches!(chars.get(i..), Some([]) | Some(['\\', ')' | '|', ..]))
}

/// Whether `{` is followed by `N}`, `N,}` or `N,M}` (else it is literal).
fn is_interval(chars: &[char], i: usize) -> bool {
    let rest: String = chars.get(i..).unwrap_or_default().iter().collect();
    let Some((inner, _)) = rest.split_once('}') else {
        return false;
    };
    let (lo, hi) = inner.split_once(',').unwrap_or((inner, "0"));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    !lo.is_empty() && digits(lo) && digits(hi)
}

/// Copies the bracket expression starting at `chars[i] == '['`; returns
/// the index after its `]`.
fn bracket(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, String> {
    let unmatched = || "unmatched [, [^, [:, [., or [=".to_string();
    out.push('[');
    i += 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    // A `]` first is a member, as is a `-` first or last.
    let first = i;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(unmatched());
        };
        match c {
            ']' if i > first => {
                out.push(']');
                return Ok(i + 1);
            }
            '[' if matches!(chars.get(i + 1), Some(':' | '.' | '=')) => {
                let kind = chars[i + 1];
                let close = (i + 2..chars.len().saturating_sub(1))
                    .find(|&j| chars[j] == kind && chars[j + 1] == ']')
                    .ok_or_else(unmatched)?;
                let name: String = chars[i + 2..close].iter().collect();
                if kind == ':' {
                    out.push_str(&format!("[:{name}:]"));
                } else {
                    // Collating symbols and equivalence classes of the C
                    // locale are the characters themselves.
                    for ch in name.chars() {
                        out.push('\\');
                        out.push(ch);
                    }
                }
                i = close + 2;
                continue;
            }
            '-' if i == first || chars.get(i + 1) == Some(&']') => out.push_str("\\-"),
            '-' => out.push('-'),
            c if c.is_ascii_alphanumeric() || !c.is_ascii() => out.push(c),
            c => {
                // Everything else is literal inside brackets here.
                out.push('\\');
                out.push(c);
            }
        }
        i += 1;
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Grep {
    /// The next match in `line` at or after `from` (with `-w`, only one
    /// that is a whole word).
    fn find(&self, line: &[u8], mut from: usize) -> Option<(usize, usize)> {
        while from <= line.len() {
            let m = self.re.find_at(line, from)?;
            let (s, e) = (m.start(), m.end());
            if !self.word {
                return Some((s, e));
            }
            let before = s == 0 || !is_word_byte(line[s - 1]);
            let after = e == line.len() || !is_word_byte(line[e]);
            if before && after {
                return Some((s, e));
            }
            from = s + 1;
        }
        None
    }

    /// Searches `path`: a file, or with `-r` a directory tree.
    fn path(
        &mut self,
        mut out: Out<'_, '_>,
        path: &Path,
        name: &str,
        implicit_dot: bool,
        top: bool,
    ) -> Result<(), Stop> {
        // Symlinks met while recursing are skipped unless -R.
        let meta = if top || self.follow {
            fs::metadata(path)
        } else {
            fs::symlink_metadata(path)
        };
        let meta = match meta {
            Ok(m) => m,
            Err(e) => {
                self.file_error(&mut out, name, &e);
                return Ok(());
            }
        };
        if meta.is_dir() {
            if !self.recursive {
                if !self.no_messages {
                    let _ = writeln!(out.stderr, "busybox: grep: {name}: Is a directory");
                }
                self.error = true;
                return Ok(());
            }
            let mut entries: Vec<_> = match fs::read_dir(path) {
                Ok(rd) => rd.filter_map(Result::ok).map(|e| e.file_name()).collect(),
                Err(e) => {
                    self.file_error(&mut out, name, &e);
                    return Ok(());
                }
            };
            entries.sort();
            for entry in entries {
                let entry = entry.to_string_lossy().into_owned();
                let child_name = if implicit_dot && top {
                    entry.clone()
                } else if name.ends_with('/') {
                    format!("{name}{entry}")
                } else {
                    format!("{name}/{entry}")
                };
                self.path(
                    out.reborrow(),
                    &path.join(&entry),
                    &child_name,
                    false,
                    false,
                )?;
            }
            return Ok(());
        }
        if !meta.is_file() && !top {
            return Ok(());
        }
        match fs::File::open(path) {
            Ok(file) => self.search(&mut BufReader::new(file), out, name),
            Err(e) => {
                self.file_error(&mut out, name, &e);
                Ok(())
            }
        }
    }

    fn file_error(&mut self, out: &mut Out<'_, '_>, name: &str, e: &io::Error) {
        self.error = true;
        if !self.no_messages {
            let _ = writeln!(out.stderr, "busybox: grep: {name}: {}", errmsg(e));
        }
    }

    /// Searches one input.
    fn search(
        &mut self,
        input: &mut dyn BufRead,
        mut out: Out<'_, '_>,
        name: &str,
    ) -> Result<(), Stop> {
        let mut selected = 0u64;
        let mut lineno = 0u64;
        let mut line = Vec::new();
        loop {
            if self.max.is_some_and(|m| selected >= m) {
                break;
            }
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.file_error(&mut out, name, &e);
                    break;
                }
            }
            lineno += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let hit = self.find(text, 0).is_some();
            if hit == self.invert {
                continue;
            }
            selected += 1;
            self.matched = true;
            if self.quiet {
                return Err(Stop::Found);
            }
            if self.files_with || self.files_without {
                break;
            }
            if self.count {
                continue;
            }
            let prefix = self.prefix(name, lineno);
            let out = &mut *out.stdout;
            let result = if self.only && !self.invert {
                let mut from = 0;
                let mut r = Ok(());
                while let Some((s, e)) = self.find(text, from) {
                    if e > s {
                        r = out
                            .write_all(prefix.as_bytes())
                            .and_then(|()| out.write_all(&text[s..e]))
                            .and_then(|()| out.write_all(b"\n"));
                        if r.is_err() {
                            break;
                        }
                    }
                    from = if e > s { e } else { e + 1 };
                }
                r
            } else if self.only {
                Ok(())
            } else {
                out.write_all(prefix.as_bytes())
                    .and_then(|()| out.write_all(text))
                    .and_then(|()| out.write_all(b"\n"))
            };
            result.map_err(Stop::Write)?;
        }
        let out = &mut *out.stdout;
        let result = if self.files_with {
            if selected > 0 {
                writeln!(out, "{name}")
            } else {
                Ok(())
            }
        } else if self.files_without {
            if selected == 0 {
                writeln!(out, "{name}")
            } else {
                Ok(())
            }
        } else if self.count {
            if self.with_name {
                writeln!(out, "{name}:{selected}")
            } else {
                writeln!(out, "{selected}")
            }
        } else {
            Ok(())
        };
        result.map_err(Stop::Write)
    }

    fn prefix(&self, name: &str, lineno: u64) -> String {
        let mut prefix = String::new();
        if self.with_name {
            prefix.push_str(name);
            prefix.push(':');
        }
        if self.line_numbers {
            prefix.push_str(&lineno.to_string());
            prefix.push(':');
        }
        prefix
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::{Env, capture};

    fn grep(args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture(stdin, &Env::new(), |ctx| main(ctx, &args))
    }

    fn out(args: &[&str], stdin: &str) -> String {
        let (code, out, err) = grep(args, stdin);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        out
    }

    const TEXT: &str = "apple pie\nBanana split\ncherry tart\napple-juice\n";

    #[test]
    fn translates_basic_and_extended() {
        let bre = |p| translate(p, true).unwrap();
        assert_eq!(bre(r"a\(b\)*c"), "a(b)*c");
        assert_eq!(bre(r"a\{2,3\}"), "a{2,3}");
        assert_eq!(bre(r"x\|y\+z\?"), "x|y+z?");
        assert_eq!(bre("(a|b)+?{1}"), r"\(a\|b\)\+\?\{1\}");
        assert_eq!(bre("*a"), r"\*a");
        assert_eq!(bre(r"\(*a\)"), r"(\*a)");
        assert_eq!(bre("a^b$c$"), r"a\^b\$c$");
        assert_eq!(bre("^*"), r"^\*");
        assert_eq!(bre(r"[]a\-]"), r"[\]a\\\-]");
        assert_eq!(bre("[[:digit:]x-z]"), "[[:digit:]x-z]");
        assert_eq!(bre(r"\.\*\<w\>"), r"\.\*\<w\>");
        assert_eq!(bre("a.b"), "a.b");
        let ere = |p| translate(p, false).unwrap();
        assert_eq!(ere("(a|b)+c?d{2}"), "(a|b)+c?d{2}");
        assert_eq!(ere(r"\(x\)"), r"\(x\)");
        assert_eq!(ere("a{b"), r"a\{b");
        assert_eq!(ere("^a$|^b$"), "^a$|^b$");
        assert!(translate(r"\(a\)\1", true).is_err());
        assert!(translate("[abc", true).is_err());
        assert!(translate("a\\", true).is_err());
    }

    #[test]
    fn selects_lines() {
        assert_eq!(out(&["apple"], TEXT), "apple pie\napple-juice\n");
        assert_eq!(out(&["-i", "banana"], TEXT), "Banana split\n");
        assert_eq!(out(&["-v", "apple"], TEXT), "Banana split\ncherry tart\n");
        assert_eq!(out(&["-c", "apple"], TEXT), "2\n");
        assert_eq!(out(&["-n", "tart"], TEXT), "3:cherry tart\n");
        assert_eq!(out(&["-o", "a[a-z]"], "banana\n"), "an\nan\n");
        assert_eq!(
            out(&["-w", "apple"], "apple\npineapple\napple-x\n"),
            "apple\napple-x\n"
        );
        assert_eq!(out(&["-x", "apple"], "apple\napple pie\n"), "apple\n");
        assert_eq!(
            out(&["-e", "pie", "-e", "tart"], TEXT),
            "apple pie\ncherry tart\n"
        );
        assert_eq!(out(&["-E", "pie|tart"], TEXT), "apple pie\ncherry tart\n");
        assert_eq!(out(&["pie\\|tart"], TEXT), "apple pie\ncherry tart\n");
        assert_eq!(out(&["pie|tart"], "pie|tart\npie\n"), "pie|tart\n");
        assert_eq!(out(&["-F", "a.b"], "a.b\naxb\n"), "a.b\n");
        assert_eq!(out(&["a.b"], "a.b\naxb\n"), "a.b\naxb\n");
        assert_eq!(out(&["^c.*t$"], TEXT), "cherry tart\n");
        assert_eq!(out(&["-m", "1", "apple"], TEXT), "apple pie\n");
        assert_eq!(out(&[""], "x\n\n"), "x\n\n");
        assert_eq!(out(&["é"], "café\ncafe\n"), "café\n");
        assert_eq!(out(&["-q", "apple"], TEXT), "");
    }

    #[test]
    fn exit_status() {
        assert_eq!(grep(&["zzz"], TEXT), (1, String::new(), String::new()));
        assert_eq!(grep(&["-q", "zzz"], TEXT).0, 1);
        let (code, _, err) = grep(&["a\\(", "-"], "x");
        assert_eq!(code, 2);
        assert!(
            err.starts_with("busybox: grep: bad regex 'a\\(': "),
            "{err}"
        );
        let (code, _, err) = grep(&[], "");
        assert_eq!(
            (code, err.as_str()),
            (2, "busybox: grep: no pattern given\n")
        );
        let (code, _, err) = grep(&["x", "/nonexistent"], "");
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "busybox: grep: /nonexistent: No such file or directory\n"
        );
        assert_eq!(grep(&["-s", "x", "/nonexistent"], "").2, "");
    }

    #[test]
    fn files_and_recursion() {
        let dir = crate::testutil::tempdir("grep");
        fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        fs::write(dir.join("a.txt"), "hello\nworld\n").unwrap();
        fs::write(dir.join("sub/b.txt"), "say hello\n").unwrap();
        fs::write(dir.join("sub/deeper/c.txt"), "nothing\n").unwrap();
        let d = dir.to_str().unwrap();
        let a = format!("{d}/a.txt");
        let b = format!("{d}/sub/b.txt");
        assert_eq!(
            out(&["hello", &a, &b], ""),
            format!("{a}:hello\n{b}:say hello\n")
        );
        assert_eq!(out(&["-h", "hello", &a, &b], ""), "hello\nsay hello\n");
        assert_eq!(out(&["-H", "world", &a], ""), format!("{a}:world\n"));
        assert_eq!(out(&["-l", "hello", &a, &b], ""), format!("{a}\n{b}\n"));
        assert_eq!(out(&["-c", "o", &a, &b], ""), format!("{a}:2\n{b}:1\n"));
        assert_eq!(
            out(&["-r", "hello", d], ""),
            format!("{d}/a.txt:hello\n{d}/sub/b.txt:say hello\n")
        );
        assert_eq!(
            out(&["-rl", "o", d], ""),
            format!("{d}/a.txt\n{d}/sub/b.txt\n{d}/sub/deeper/c.txt\n")
        );
        let (code, _, err) = grep(&["x", d], "");
        assert_eq!(code, 2);
        assert_eq!(err, format!("busybox: grep: {d}: Is a directory\n"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
