//! Text filters: head, tail, wc, cut, sort, uniq and tee. Each reads its
//! file operands (stdin when none or `-`) and names the file on errors.

use crate::ctx::{CopyError, Ctx, copy, errmsg, inputs, open_input};
use crate::opts;
use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::time::Duration;

/// Why a filter stopped: reading an input (named) or writing the output.
enum Error {
    Read(io::Error),
    Write(io::Error),
}

/// Reports an [`Error`] of `applet` on input `name`: a read error is
/// worth going on with the next input (status 1), a write error is not.
fn report(ctx: &mut Ctx<'_>, applet: &str, name: &str, e: Error) -> Result<i32, i32> {
    match e {
        Error::Read(e) => Ok(ctx.fail(applet, format!("{name}: {}", errmsg(&e)))),
        Error::Write(e) => Err(ctx.fail(applet, format!("write error: {}", errmsg(&e)))),
    }
}

/// Reads one line (with its `\n`, if any) into `buf`; false at end of input.
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>) -> Result<bool, Error> {
    buf.clear();
    loop {
        match input.read_until(b'\n', buf) {
            Ok(n) => return Ok(n > 0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Read(e)),
        }
    }
}

fn read_all(input: &mut dyn Read) -> Result<Vec<u8>, Error> {
    let mut data = Vec::new();
    input.read_to_end(&mut data).map_err(Error::Read)?;
    Ok(data)
}

/// `COUNT[kKmMgG]` with binary multiples.
fn parse_count(s: &str) -> Option<u64> {
    let (digits, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// `-5` is the old spelling of `-n 5` (head and tail).
fn expand_shorthand(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            out.extend_from_slice(&args[i..]);
            break;
        }
        match arg.strip_prefix('-') {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                out.push("-n".to_string());
                out.push(n.to_string());
            }
            _ => out.push(arg.clone()),
        }
    }
    out
}

/// Prints `==> NAME <==` headers between inputs when asked to.
struct Headers {
    on: bool,
    first: bool,
}

impl Headers {
    fn new(opts: &opts::Opts, count: usize) -> Self {
        Headers {
            on: opts.has('v') || (count > 1 && !opts.has('q')),
            first: true,
        }
    }

    fn print(&mut self, out: &mut dyn Write, name: &str) -> Result<(), Error> {
        if self.on {
            let sep = if self.first { "" } else { "\n" };
            let shown = if name == "-" { "standard input" } else { name };
            writeln!(out, "{sep}==> {shown} <==").map_err(Error::Write)?;
        }
        self.first = false;
        Ok(())
    }
}

/// `head [-n N | -c N | -N] [-qv] [FILE]...`
pub fn head(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(&expand_shorthand(args), "qv", "nc") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("head", msg),
    };
    let (bytes, count) = match count_option(&opts) {
        Ok(c) => c,
        Err(bad) => return ctx.fail("head", format!("invalid number '{bad}'")),
    };
    let count = count.map_or(10, |(_, n)| n);
    let files = inputs(&opts.operands);
    let mut headers = Headers::new(&opts, files.len());
    let mut status = 0;
    for name in &files {
        let result = open_input(&mut *ctx.stdin, name)
            .map_err(Error::Read)
            .and_then(|mut input| {
                headers.print(ctx.stdout, name)?;
                if bytes {
                    let mut limited = (&mut input).take(count);
                    return match copy(&mut limited, &mut *ctx.stdout) {
                        Ok(_) => Ok(()),
                        Err(CopyError::Read(e)) => Err(Error::Read(e)),
                        Err(CopyError::Write(e)) => Err(Error::Write(e)),
                    };
                }
                let mut line = Vec::new();
                for _ in 0..count {
                    if !read_line(&mut input, &mut line)? {
                        break;
                    }
                    ctx.stdout.write_all(&line).map_err(Error::Write)?;
                }
                Ok(())
            });
        if let Err(e) = result {
            match report(ctx, "head", name, e) {
                Ok(s) => status = s,
                Err(s) => return s,
            }
        }
    }
    finish(ctx, "head", status)
}

/// `-n N` or `-c N` (the last one given): (bytes?, (from start?, N)).
#[allow(clippy::type_complexity)]
fn count_option(opts: &opts::Opts) -> Result<(bool, Option<(bool, u64)>), String> {
    let Some((letter, value)) = opts
        .flags
        .iter()
        .rev()
        .find(|(f, _)| *f == 'n' || *f == 'c')
    else {
        return Ok((false, None));
    };
    let value = value.as_deref().unwrap_or_default();
    let (from_start, digits) = match value.strip_prefix('+') {
        Some(d) => (true, d),
        None => (false, value.strip_prefix('-').unwrap_or(value)),
    };
    let n = parse_count(digits).ok_or_else(|| value.to_string())?;
    Ok((*letter == 'c', Some((from_start, n))))
}

/// Flushes stdout; a failure there is the applet's failure.
fn finish(ctx: &mut Ctx<'_>, applet: &str, status: i32) -> i32 {
    match ctx.stdout.flush() {
        Ok(()) => status,
        Err(e) => ctx.fail(applet, format!("write error: {}", errmsg(&e))),
    }
}

/// `tail [-n [+]N | -c [+]N | -N] [-f] [-s SECONDS] [-qv] [FILE]...`
/// `-f` keeps printing what is appended to a single file, polling for it.
pub fn tail(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(&expand_shorthand(args), "qvfF", "ncs") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("tail", msg),
    };
    let (bytes, count) = match count_option(&opts) {
        Ok(c) => c,
        Err(bad) => return ctx.fail("tail", format!("invalid number '{bad}'")),
    };
    let (from_start, count) = count.unwrap_or((false, 10));
    let interval = match opts.value('s') {
        None => Duration::from_secs(1),
        Some(s) => match s
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
        {
            Some(d) => d,
            None => return ctx.fail("tail", format!("invalid number '{s}'")),
        },
    };
    let files = inputs(&opts.operands);
    let mut headers = Headers::new(&opts, files.len());
    let mut status = 0;
    for name in &files {
        let result = open_input(&mut *ctx.stdin, name)
            .map_err(Error::Read)
            .and_then(|mut input| {
                let data = read_all(&mut input)?;
                let start = if bytes {
                    tail_bytes_start(data.len(), from_start, count)
                } else {
                    tail_lines_start(&data, from_start, count)
                };
                headers.print(ctx.stdout, name)?;
                ctx.stdout
                    .write_all(&data[start..])
                    .and_then(|()| ctx.stdout.flush())
                    .map_err(Error::Write)
            });
        if let Err(e) = result {
            match report(ctx, "tail", name, e) {
                Ok(s) => status = s,
                Err(s) => return s,
            }
        }
    }
    let follow = opts.has('f') || opts.has('F');
    match files.as_slice() {
        [name] if follow && name != "-" && status == 0 => follow_file(ctx, name, interval, None),
        _ => finish(ctx, "tail", status),
    }
}

fn tail_bytes_start(len: usize, from_start: bool, count: u64) -> usize {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if from_start {
        count.saturating_sub(1).min(len)
    } else {
        len.saturating_sub(count)
    }
}

/// Where the last `count` lines of `data` begin (or line `count`, 1-based,
/// with `from_start`).
fn tail_lines_start(data: &[u8], from_start: bool, count: u64) -> usize {
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    if from_start {
        let skip = count.saturating_sub(1);
        if skip == 0 {
            return 0;
        }
        return data
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(skip - 1)
            .map_or(data.len(), |(i, _)| i + 1);
    }
    if count == 0 {
        return data.len();
    }
    // A final newline ends the last line rather than starting another.
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(count - 1)
        .map_or(0, |(i, _)| i + 1)
}

/// `tail -f`: prints what is appended to `name` every `interval`, for
/// ever (or `polls` times, for tests). A file that shrinks was truncated:
/// it is read again from its start.
fn follow_file(ctx: &mut Ctx<'_>, name: &str, interval: Duration, polls: Option<u32>) -> i32 {
    let mut file = match File::open(name) {
        Ok(f) => f,
        Err(e) => return ctx.fail("tail", format!("{name}: {}", errmsg(&e))),
    };
    let mut pos = match file.seek(SeekFrom::End(0)) {
        Ok(p) => p,
        Err(e) => return ctx.fail("tail", format!("{name}: {}", errmsg(&e))),
    };
    let mut round = 0u32;
    while polls.is_none_or(|p| round < p) {
        round += 1;
        std::thread::sleep(interval);
        let len = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => return ctx.fail("tail", format!("{name}: {}", errmsg(&e))),
        };
        if len < pos {
            let _ = writeln!(ctx.stderr, "busybox: tail: {name}: file truncated");
            pos = match file.seek(SeekFrom::Start(0)) {
                Ok(p) => p,
                Err(e) => return ctx.fail("tail", format!("{name}: {}", errmsg(&e))),
            };
        }
        if len == pos {
            continue;
        }
        let data = match read_all(&mut file) {
            Ok(d) => d,
            Err(Error::Read(e) | Error::Write(e)) => {
                return ctx.fail("tail", format!("{name}: {}", errmsg(&e)));
            }
        };
        pos += data.len() as u64;
        if let Err(e) = ctx
            .stdout
            .write_all(&data)
            .and_then(|()| ctx.stdout.flush())
        {
            return ctx.fail("tail", format!("write error: {}", errmsg(&e)));
        }
    }
    0
}

/// Line, word, character and byte counts of one input.
#[derive(Default, Clone, Copy)]
struct Counts {
    lines: u64,
    words: u64,
    chars: u64,
    bytes: u64,
}

fn count(input: &mut dyn Read) -> Result<Counts, Error> {
    let mut c = Counts::default();
    let mut in_word = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(c),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Read(e)),
        };
        c.bytes += n as u64;
        for &b in &buf[..n] {
            if b == b'\n' {
                c.lines += 1;
            }
            // UTF-8 continuation bytes do not start a character.
            if b & 0xc0 != 0x80 {
                c.chars += 1;
            }
            let space = matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
            if !space && !in_word {
                c.words += 1;
            }
            in_word = !space;
        }
    }
}

/// `wc [-lwcm] [FILE]...`: with several files, a `total` line follows.
pub fn wc(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "lwcm", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("wc", msg),
    };
    let mut cols: Vec<fn(&Counts) -> u64> = Vec::new();
    let all = !"lwmc".chars().any(|c| opts.has(c));
    if all || opts.has('l') {
        cols.push(|c| c.lines);
    }
    if all || opts.has('w') {
        cols.push(|c| c.words);
    }
    if opts.has('m') {
        cols.push(|c| c.chars);
    }
    if all || opts.has('c') {
        cols.push(|c| c.bytes);
    }
    let files = inputs(&opts.operands);
    let mut status = 0;
    let mut rows: Vec<(Counts, Option<&str>)> = Vec::new();
    let mut total = Counts::default();
    for name in &files {
        let result = open_input(&mut *ctx.stdin, name)
            .map_err(Error::Read)
            .and_then(|mut input| count(&mut input));
        match result {
            Ok(c) => {
                total.lines += c.lines;
                total.words += c.words;
                total.chars += c.chars;
                total.bytes += c.bytes;
                rows.push((
                    c,
                    (name != "-" || !opts.operands.is_empty()).then_some(name.as_str()),
                ));
            }
            Err(e) => {
                if let Err(s) = report(ctx, "wc", name, e) {
                    return s;
                }
                status = 1;
            }
        }
    }
    if files.len() > 1 {
        rows.push((total, Some("total")));
    }
    // One number alone is not padded; columns are as wide as the widest
    // number, at least 7 for stdin (whose size is unknown up front).
    let widest = rows
        .iter()
        .flat_map(|(c, _)| cols.iter().map(move |col| col(c)))
        .max()
        .unwrap_or(0)
        .to_string()
        .len();
    let width = if cols.len() == 1 && rows.len() == 1 {
        0
    } else if files.iter().any(|f| f == "-") {
        widest.max(7)
    } else {
        widest
    };
    let result = rows.iter().try_for_each(|(c, name)| {
        let nums: Vec<String> = cols
            .iter()
            .map(|col| format!("{:>width$}", col(c)))
            .collect();
        match name {
            Some(name) => writeln!(ctx.stdout, "{} {name}", nums.join(" ")),
            None => writeln!(ctx.stdout, "{}", nums.join(" ")),
        }
    });
    match result {
        Ok(()) => finish(ctx, "wc", status),
        Err(e) => ctx.fail("wc", format!("write error: {}", errmsg(&e))),
    }
}

/// A list of 1-based positions: `N`, `N-M`, `N-`, `-M`, comma-separated.
fn parse_list(list: &str) -> Option<Vec<(usize, usize)>> {
    let mut ranges = Vec::new();
    for part in list.split(',') {
        let num = |s: &str| -> Option<usize> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            s.parse().ok().filter(|&n| n > 0)
        };
        let range = match part.split_once('-') {
            None => {
                let n = num(part)?;
                (n, n)
            }
            Some(("", "")) => return None,
            Some(("", hi)) => (1, num(hi)?),
            Some((lo, "")) => (num(lo)?, usize::MAX),
            Some((lo, hi)) => (num(lo)?, num(hi)?),
        };
        if range.0 > range.1 {
            return None;
        }
        ranges.push(range);
    }
    Some(ranges)
}

fn selected(ranges: &[(usize, usize)], pos: usize) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= pos && pos <= hi)
}

/// `cut -f LIST [-d DELIM] [-s] | -c LIST | -b LIST [FILE]...`
pub fn cut(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "sn", "dfcb") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("cut", msg),
    };
    let modes: Vec<char> = ['f', 'c', 'b']
        .into_iter()
        .filter(|&m| opts.has(m))
        .collect();
    let mode = match modes.as_slice() {
        [m] => *m,
        [] => {
            return ctx.fail(
                "cut",
                "you must specify a list of bytes, characters, or fields",
            );
        }
        _ => return ctx.fail("cut", "only one type of list may be specified"),
    };
    let list = opts.value(mode).unwrap_or_default();
    let Some(ranges) = parse_list(list) else {
        return ctx.fail("cut", format!("invalid list '{list}'"));
    };
    let delim = opts.value('d').unwrap_or("\t");
    if delim.chars().count() != 1 {
        return ctx.fail("cut", "the delimiter must be a single character");
    }
    if mode != 'f' && (opts.has('d') || opts.has('s')) {
        return ctx.fail("cut", "-d and -s only make sense with -f");
    }
    let mut status = 0;
    for name in &inputs(&opts.operands) {
        let result = open_input(&mut *ctx.stdin, name)
            .map_err(Error::Read)
            .and_then(|mut input| {
                let mut line = Vec::new();
                while read_line(&mut input, &mut line)? {
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    let out = match mode {
                        'b' => Some(
                            text.iter()
                                .enumerate()
                                .filter(|(i, _)| selected(&ranges, i + 1))
                                .map(|(_, b)| *b)
                                .collect::<Vec<u8>>(),
                        ),
                        'c' => Some(
                            String::from_utf8_lossy(text)
                                .chars()
                                .enumerate()
                                .filter(|(i, _)| selected(&ranges, i + 1))
                                .map(|(_, c)| c)
                                .collect::<String>()
                                .into_bytes(),
                        ),
                        _ => cut_fields(text, delim.as_bytes(), &ranges, opts.has('s')),
                    };
                    if let Some(out) = out {
                        ctx.stdout
                            .write_all(&out)
                            .and_then(|()| ctx.stdout.write_all(b"\n"))
                            .map_err(Error::Write)?;
                    }
                }
                Ok(())
            });
        if let Err(e) = result {
            match report(ctx, "cut", name, e) {
                Ok(s) => status = s,
                Err(s) => return s,
            }
        }
    }
    finish(ctx, "cut", status)
}

/// The selected fields of `line`, or the line as it is when it has no
/// delimiter (`None` with `-s`).
fn cut_fields(
    line: &[u8],
    delim: &[u8],
    ranges: &[(usize, usize)],
    only_delimited: bool,
) -> Option<Vec<u8>> {
    let fields = split_bytes(line, delim);
    if fields.len() == 1 {
        return (!only_delimited).then(|| line.to_vec());
    }
    let picked: Vec<&[u8]> = fields
        .into_iter()
        .enumerate()
        .filter(|(i, _)| selected(ranges, i + 1))
        .map(|(_, f)| f)
        .collect();
    Some(picked.join(delim))
}

fn split_bytes<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
        parts.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    parts.push(rest);
    parts
}

/// How `sort` compares keys.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Order {
    numeric: bool,
    human: bool,
    fold: bool,
    reverse: bool,
    blanks: bool,
}

impl Order {
    /// Applies ordering letters; false on an unknown one.
    fn set(&mut self, letters: &str) -> bool {
        for c in letters.chars() {
            match c {
                'n' => self.numeric = true,
                'h' => self.human = true,
                'f' => self.fold = true,
                'r' => self.reverse = true,
                'b' => self.blanks = true,
                _ => return false,
            }
        }
        true
    }
}

/// `-k F1[.C1][OPTS][,F2[.C2][OPTS]]`
#[derive(Debug, Clone, PartialEq)]
struct Key {
    start: (usize, usize),
    /// Field and character; character 0 is the end of the field.
    end: Option<(usize, usize)>,
    order: Order,
}

fn parse_key(spec: &str, global: Order) -> Option<Key> {
    let (start, end) = match spec.split_once(',') {
        Some((s, e)) => (s, Some(e)),
        None => (spec, None),
    };
    let mut order = Order::default();
    let mut pos = |s: &str, default_char: usize| -> Option<(usize, usize)> {
        let split = s
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len());
        let (nums, letters) = s.split_at(split);
        if !order.set(letters) {
            return None;
        }
        let (field, ch) = match nums.split_once('.') {
            Some((f, c)) => (f.parse().ok()?, c.parse().ok()?),
            None => (nums.parse().ok()?, default_char),
        };
        (field > 0).then_some((field, ch))
    };
    let start = pos(start, 1)?;
    if start.1 == 0 {
        return None;
    }
    let end = match end {
        Some(e) => Some(pos(e, 0)?),
        None => None,
    };
    // A key with ordering options of its own does not inherit the global ones.
    let order = if order == Order::default() {
        global
    } else {
        order
    };
    Some(Key { start, end, order })
}

/// The byte ranges of a line's fields: with a separator, split at each
/// one; without, each field is a run of blanks and the non-blanks after it.
fn field_spans(line: &str, sep: Option<char>) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    match sep {
        Some(sep) => {
            let mut start = 0;
            for (i, c) in line.char_indices() {
                if c == sep {
                    spans.push((start, i));
                    start = i + c.len_utf8();
                }
            }
            spans.push((start, line.len()));
        }
        None => {
            let bytes = line.as_bytes();
            let mut i = 0;
            while i < bytes.len() {
                let start = i;
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
                while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
                spans.push((start, i));
            }
        }
    }
    spans
}

fn key_text<'a>(line: &'a str, key: &Key, sep: Option<char>) -> &'a str {
    let spans = field_spans(line, sep);
    let skip_blanks = |mut i: usize, end: usize| {
        while i < end && matches!(line.as_bytes()[i], b' ' | b'\t') {
            i += 1;
        }
        i
    };
    let char_offset = |from: usize, to: usize, n: usize| {
        line[from..to]
            .char_indices()
            .nth(n)
            .map_or(to, |(i, _)| from + i)
    };
    let Some(&(fs, fe)) = spans.get(key.start.0 - 1) else {
        return "";
    };
    let fs = if key.order.blanks {
        skip_blanks(fs, fe)
    } else {
        fs
    };
    let begin = char_offset(fs, fe, key.start.1 - 1);
    let end = match key.end {
        None => line.len(),
        Some((field, ch)) => match spans.get(field - 1) {
            None => line.len(),
            Some(&(_, e)) if ch == 0 => e,
            Some(&(s, e)) => {
                let s = if key.order.blanks {
                    skip_blanks(s, e)
                } else {
                    s
                };
                char_offset(s, e, ch)
            }
        },
    };
    line.get(begin..end.max(begin)).unwrap_or("")
}

/// The leading number of `s` (blanks skipped); 0 when there is none.
fn leading_number(s: &str) -> f64 {
    let s = s.trim_start_matches([' ', '\t']);
    let mut end = 0;
    let bytes = s.as_bytes();
    if bytes.first().is_some_and(|&b| b == b'-' || b == b'+') {
        end = 1;
    }
    let digits_start = end;
    while end < bytes.len() && bytes[end].is_ascii_digit() {
        end += 1;
    }
    if end < bytes.len() && bytes[end] == b'.' {
        end += 1;
        while end < bytes.len() && bytes[end].is_ascii_digit() {
            end += 1;
        }
    }
    if end == digits_start || &s[digits_start..end] == "." {
        return 0.0;
    }
    s[..end].parse().unwrap_or(0.0)
}

/// A number with an optional K, M, G, ... (powers of 1024) suffix.
fn human_number(s: &str) -> f64 {
    let n = leading_number(s);
    let t = s.trim_start_matches([' ', '\t', '-', '+']);
    let rest = t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    let power = match rest.chars().next() {
        Some('K' | 'k') => 1,
        Some('M') => 2,
        Some('G') => 3,
        Some('T') => 4,
        Some('P') => 5,
        Some('E') => 6,
        _ => 0,
    };
    n * 1024f64.powi(power)
}

fn compare_text(a: &str, b: &str, order: Order) -> Ordering {
    let ord = if order.human {
        human_number(a).total_cmp(&human_number(b))
    } else if order.numeric {
        leading_number(a).total_cmp(&leading_number(b))
    } else if order.fold {
        let up = |s: &str| s.to_uppercase();
        up(a).cmp(&up(b))
    } else if order.blanks {
        a.trim_start_matches([' ', '\t'])
            .cmp(b.trim_start_matches([' ', '\t']))
    } else {
        a.cmp(b)
    };
    if order.reverse { ord.reverse() } else { ord }
}

/// `sort [-nhfrbus] [-k KEY]... [-t SEP] [-o FILE] [FILE]...`
pub fn sort(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "nhfrbusm", "kto") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("sort", msg),
    };
    let mut global = Order::default();
    for (flag, _) in &opts.flags {
        global.set(&flag.to_string());
    }
    let sep = match opts.value('t') {
        None => None,
        Some(t) => {
            let mut chars = t.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Some(c),
                _ => return ctx.fail("sort", format!("multi-character tab '{t}'")),
            }
        }
    };
    let mut keys = Vec::new();
    for (flag, value) in &opts.flags {
        if *flag == 'k' {
            let spec = value.as_deref().unwrap_or_default();
            match parse_key(spec, global) {
                Some(k) => keys.push(k),
                None => return ctx.fail("sort", format!("invalid key '{spec}'")),
            }
        }
    }
    let mut lines = Vec::new();
    let mut status = 0;
    for name in &inputs(&opts.operands) {
        let result = open_input(&mut *ctx.stdin, name)
            .map_err(Error::Read)
            .and_then(|mut input| read_all(&mut input));
        match result {
            Ok(data) => {
                let text = String::from_utf8_lossy(&data).into_owned();
                lines.extend(text.lines().map(str::to_string));
            }
            Err(e) => {
                if let Err(s) = report(ctx, "sort", name, e) {
                    return s;
                }
                status = 2;
            }
        }
    }
    let compare_keys = |a: &String, b: &String| -> Ordering {
        if keys.is_empty() {
            return compare_text(a, b, global);
        }
        keys.iter()
            .map(|k| compare_text(key_text(a, k, sep), key_text(b, k, sep), k.order))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    };
    let unique = opts.has('u');
    // Lines equal by their keys are ordered by their whole text, unless -s
    // (stable) or -u (which keeps the first of equal lines).
    let last_resort = !opts.has('s') && !unique;
    lines.sort_by(|a, b| {
        compare_keys(a, b).then_with(|| {
            if last_resort {
                let o = a.cmp(b);
                if global.reverse { o.reverse() } else { o }
            } else {
                Ordering::Equal
            }
        })
    });
    if unique {
        lines.dedup_by(|b, a| compare_keys(a, b).is_eq());
    }
    let mut text = String::new();
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    let written = match opts.value('o') {
        Some(path) => File::create(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| format!("{path}: {}", errmsg(&e))),
        None => ctx
            .stdout
            .write_all(text.as_bytes())
            .and_then(|()| ctx.stdout.flush())
            .map_err(|e| format!("write error: {}", errmsg(&e))),
    };
    match written {
        Ok(()) => status,
        Err(msg) => {
            ctx.fail("sort", msg);
            2
        }
    }
}

/// `uniq [-cdui] [INPUT [OUTPUT]]`: collapses runs of equal lines.
pub fn uniq(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "cdui", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("uniq", msg),
    };
    if opts.operands.len() > 2 {
        return ctx.fail("uniq", format!("extra operand '{}'", opts.operands[2]));
    }
    let input_name = opts.operands.first().map_or("-", String::as_str);
    // `input` may borrow stdin: complaints go straight to stderr.
    let stderr = &mut *ctx.stderr;
    let mut fail = |msg: String| {
        let _ = writeln!(stderr, "busybox: uniq: {msg}");
        1
    };
    let mut input = match open_input(&mut *ctx.stdin, input_name) {
        Ok(i) => i,
        Err(e) => return fail(format!("{input_name}: {}", errmsg(&e))),
    };
    let mut file_out;
    let out: &mut dyn Write = match opts.operands.get(1).filter(|o| *o != "-") {
        Some(path) => match File::create(path) {
            Ok(f) => {
                file_out = io::BufWriter::new(f);
                &mut file_out
            }
            Err(e) => return fail(format!("{path}: {}", errmsg(&e))),
        },
        None => &mut *ctx.stdout,
    };
    let (counts, dups, uniques, fold) =
        (opts.has('c'), opts.has('d'), opts.has('u'), opts.has('i'));
    let same = |a: &[u8], b: &[u8]| {
        if fold {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let emit = |out: &mut dyn Write, line: &[u8], n: u64| -> io::Result<()> {
        if (dups && n < 2) || (uniques && n > 1) {
            return Ok(());
        }
        if counts {
            write!(out, "{n:>7} ")?;
        }
        out.write_all(line)?;
        out.write_all(b"\n")
    };
    let mut current: Option<(Vec<u8>, u64)> = None;
    let mut line = Vec::new();
    let result = (|| -> Result<(), Error> {
        while read_line(&mut input, &mut line)? {
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            match &mut current {
                Some((prev, n)) if same(prev, text) => *n += 1,
                _ => {
                    if let Some((prev, n)) = current.take() {
                        emit(out, &prev, n).map_err(Error::Write)?;
                    }
                    current = Some((text.to_vec(), 1));
                }
            }
        }
        if let Some((prev, n)) = current.take() {
            emit(out, &prev, n).map_err(Error::Write)?;
        }
        out.flush().map_err(Error::Write)
    })();
    match result {
        Ok(()) => 0,
        Err(Error::Read(e)) => fail(format!("{input_name}: {}", errmsg(&e))),
        Err(Error::Write(e)) => fail(format!("write error: {}", errmsg(&e))),
    }
}

/// `tee [-ai] [FILE]...`: copies stdin to stdout and to each file.
pub fn tee(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let opts = match opts::parse(args, "ai", "") {
        Ok(o) => o,
        Err(msg) => return ctx.fail("tee", msg),
    };
    let append = opts.has('a');
    let mut status = 0;
    let mut files: Vec<(&str, File)> = Vec::new();
    for name in &opts.operands {
        let opened = OpenOptions::new()
            .write(true)
            .create(true)
            .append(append)
            .truncate(!append)
            .open(name);
        match opened {
            Ok(f) => files.push((name, f)),
            Err(e) => status = ctx.fail("tee", format!("{name}: {}", errmsg(&e))),
        }
    }
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match ctx.stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return ctx.fail("tee", format!("read error: {}", errmsg(&e))),
        };
        // Output goes out as it comes, so `tee` works in the middle of a
        // long-running pipeline.
        if let Err(e) = ctx
            .stdout
            .write_all(&buf[..n])
            .and_then(|()| ctx.stdout.flush())
        {
            return ctx.fail("tee", format!("write error: {}", errmsg(&e)));
        }
        let mut failed = Vec::new();
        for (i, (name, file)) in files.iter_mut().enumerate() {
            if let Err(e) = file.write_all(&buf[..n]) {
                let _ = writeln!(ctx.stderr, "busybox: tee: {name}: {}", errmsg(&e));
                failed.push(i);
            }
        }
        for i in failed.into_iter().rev() {
            files.remove(i);
            status = 1;
        }
    }
    status
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::{Env, capture};
    use std::fs;

    fn run(f: super::super::Run, args: &[&str], stdin: &str) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture(stdin, &Env::new(), |ctx| f(ctx, &args))
    }

    fn ok(f: super::super::Run, args: &[&str], stdin: &str) -> String {
        let (code, out, err) = run(f, args, stdin);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        out
    }

    const TEN: &str = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n";

    #[test]
    fn head_counts_lines_and_bytes() {
        assert_eq!(ok(head, &[], TEN), "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
        assert_eq!(ok(head, &["-n", "2"], TEN), "1\n2\n");
        assert_eq!(ok(head, &["-3"], TEN), "1\n2\n3\n");
        assert_eq!(ok(head, &["-n2"], "a\nb"), "a\nb");
        assert_eq!(ok(head, &["-c", "3"], "abcdef"), "abc");
        assert_eq!(ok(head, &["-n", "0"], TEN), "");
        let (code, _, err) = run(head, &["-n", "x"], "");
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: head: invalid number 'x'\n")
        );
        let dir = crate::testutil::tempdir("head");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, "a1\na2\n").unwrap();
        fs::write(&b, "b1\n").unwrap();
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(
            ok(head, &["-n", "1", a, b], ""),
            format!("==> {a} <==\na1\n\n==> {b} <==\nb1\n")
        );
        assert_eq!(ok(head, &["-q", "-n1", a, b], ""), "a1\nb1\n");
        let (code, out, err) = run(head, &["/nonexistent/f", b], "");
        assert_eq!(code, 1);
        assert!(out.ends_with("b1\n"), "{out}");
        assert_eq!(
            err,
            "busybox: head: /nonexistent/f: No such file or directory\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tail_counts_from_the_end_or_start() {
        assert_eq!(ok(tail, &["-n", "2"], TEN), "11\n12\n");
        assert_eq!(ok(tail, &["-2"], "a\nb\nc"), "b\nc");
        assert_eq!(ok(tail, &["-n", "+11"], TEN), "11\n12\n");
        assert_eq!(ok(tail, &["-n", "+1"], "a\nb\n"), "a\nb\n");
        assert_eq!(ok(tail, &["-c", "3"], "abcdef"), "def");
        assert_eq!(ok(tail, &["-c", "+3"], "abcdef"), "cdef");
        assert_eq!(ok(tail, &[], TEN), "3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n");
        assert_eq!(ok(tail, &["-n", "5"], "a\n"), "a\n");
        assert_eq!(ok(tail, &["-n", "0"], "a\n"), "");
        assert_eq!(ok(tail, &["-n", "1"], ""), "");
        assert_eq!(ok(tail, &["-n", "1"], "\n\n"), "\n");
    }

    #[test]
    fn tail_follows_a_growing_file() {
        let dir = crate::testutil::tempdir("tail");
        let f = dir.join("log");
        fs::write(&f, "old\n").unwrap();
        let path = f.to_str().unwrap().to_string();
        let writer = {
            let f = f.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(60));
                let mut file = OpenOptions::new().append(true).open(&f).unwrap();
                file.write_all(b"new\n").unwrap();
            })
        };
        let (code, out, _) = capture("", &Env::new(), |ctx| {
            follow_file(ctx, &path, Duration::from_millis(20), Some(15))
        });
        writer.join().unwrap();
        assert_eq!((code, out.as_str()), (0, "new\n"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn wc_counts_and_totals() {
        assert_eq!(ok(wc, &["-l"], "a\nb\n"), "2\n");
        assert_eq!(ok(wc, &[], "one two\nthree\n"), "      2       3      14\n");
        assert_eq!(ok(wc, &["-w"], "  a  b\tc "), "3\n");
        assert_eq!(ok(wc, &["-c"], "héllo"), "6\n");
        assert_eq!(ok(wc, &["-m"], "héllo"), "5\n");
        let dir = crate::testutil::tempdir("wc");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, "x\ny\n").unwrap();
        fs::write(&b, "1 2 3 4 5 6 7 8 9 10\n").unwrap();
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(ok(wc, &["-l", a], ""), format!("2 {a}\n"));
        assert_eq!(
            ok(wc, &[a, b], ""),
            format!(" 2  2  4 {a}\n 1 10 21 {b}\n 3 12 25 total\n")
        );
        let (code, out, err) = run(wc, &["-l", a, "/nonexistent"], "");
        assert_eq!(code, 1);
        assert_eq!(out, format!("2 {a}\n2 total\n"));
        assert_eq!(
            err,
            "busybox: wc: /nonexistent: No such file or directory\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cut_fields_and_characters() {
        let input = "a:b:c\nno delimiter\nd:e\n";
        assert_eq!(ok(cut, &["-d:", "-f2"], input), "b\nno delimiter\ne\n");
        assert_eq!(
            ok(cut, &["-d", ":", "-f", "1,3"], input),
            "a:c\nno delimiter\nd\n"
        );
        assert_eq!(ok(cut, &["-d:", "-f2-", "-s"], input), "b:c\ne\n");
        assert_eq!(ok(cut, &["-d:", "-f-2"], "1:2:3\n"), "1:2\n");
        assert_eq!(ok(cut, &["-f2"], "x\ty\tz\n"), "y\n");
        assert_eq!(ok(cut, &["-c", "2-3"], "héllo\n"), "él\n");
        assert_eq!(ok(cut, &["-b", "1,5-"], "abcdefg\n"), "aefg\n");
        assert_eq!(ok(cut, &["-c1"], "ab"), "a\n");
        for (args, msg) in [
            (&["-f", "0"][..], "invalid list '0'"),
            (&["-f", "3-1"], "invalid list '3-1'"),
            (&["-f", "x"], "invalid list 'x'"),
            (
                &[],
                "you must specify a list of bytes, characters, or fields",
            ),
            (
                &["-d", "ab", "-f1"],
                "the delimiter must be a single character",
            ),
            (&["-c1", "-f1"], "only one type of list may be specified"),
        ] {
            let (code, _, err) = run(cut, args, "");
            assert_eq!(
                (code, err),
                (1, format!("busybox: cut: {msg}\n")),
                "{args:?}"
            );
        }
    }

    #[test]
    fn sort_orders() {
        assert_eq!(ok(sort, &[], "b\na\nc\n"), "a\nb\nc\n");
        assert_eq!(ok(sort, &["-r"], "b\na\nc"), "c\nb\na\n");
        assert_eq!(
            ok(sort, &["-n"], "10\n9\n-1\nx\n2.5\n"),
            "-1\nx\n2.5\n9\n10\n"
        );
        assert_eq!(ok(sort, &["-u"], "b\na\nb\na\n"), "a\nb\n");
        assert_eq!(ok(sort, &["-h"], "1G\n2K\n3M\n5\n"), "5\n2K\n3M\n1G\n");
        assert_eq!(ok(sort, &["-f"], "b\nA\na\nB\n"), "A\na\nB\nb\n");
        let table = "bob 30\nalice 25\ncarol 30\ndave 5\n";
        assert_eq!(
            ok(sort, &["-k2n", "-k1,1r"], table),
            "dave 5\nalice 25\ncarol 30\nbob 30\n"
        );
        assert_eq!(
            ok(sort, &["-k", "2,2", "-n", "-r"], table),
            "carol 30\nbob 30\nalice 25\ndave 5\n"
        );
        assert_eq!(
            ok(sort, &["-t", ":", "-k", "3n"], "a:x:3\nb:y:1\nc:z:2\n"),
            "b:y:1\nc:z:2\na:x:3\n"
        );
        assert_eq!(ok(sort, &["-t:", "-k2.2"], "a:xb\nb:ya\n"), "b:ya\na:xb\n");
        assert_eq!(ok(sort, &["-u", "-k1,1"], "a 2\na 1\nb 0\n"), "a 2\nb 0\n");
        let (code, _, err) = run(sort, &["-k", "0"], "");
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: sort: invalid key '0'\n")
        );
        let (code, _, err) = run(sort, &["/nonexistent"], "");
        assert_eq!(code, 2);
        assert_eq!(
            err,
            "busybox: sort: /nonexistent: No such file or directory\n"
        );
    }

    #[test]
    fn uniq_runs() {
        let input = "a\na\nb\nc\nc\nc\na\n";
        assert_eq!(ok(uniq, &[], input), "a\nb\nc\na\n");
        assert_eq!(
            ok(uniq, &["-c"], input),
            "      2 a\n      1 b\n      3 c\n      1 a\n"
        );
        assert_eq!(ok(uniq, &["-d"], input), "a\nc\n");
        assert_eq!(ok(uniq, &["-u"], input), "b\na\n");
        assert_eq!(ok(uniq, &["-i"], "A\na\nb"), "A\nb\n");
        let (code, _, err) = run(uniq, &["/nonexistent"], "");
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "busybox: uniq: /nonexistent: No such file or directory\n"
        );
    }

    #[test]
    fn tee_copies() {
        let dir = crate::testutil::tempdir("tee");
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&b, "old\n").unwrap();
        let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(ok(tee, &[sa], "x\n"), "x\n");
        assert_eq!(ok(tee, &["-a", sa, sb], "y\n"), "y\n");
        assert_eq!(fs::read_to_string(&a).unwrap(), "x\ny\n");
        assert_eq!(fs::read_to_string(&b).unwrap(), "old\ny\n");
        let (code, out, err) = run(tee, &["/nonexistent/f", sa], "z");
        assert_eq!((code, out.as_str()), (1, "z"));
        assert!(err.starts_with("busybox: tee: /nonexistent/f: "), "{err}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "z");
        fs::remove_dir_all(&dir).unwrap();
    }
}
