//! `printf FORMAT [ARG]...`: C-style formatting with `%s %b %c %d %i %u %o
//! %x %X %e %f %g %%`, flags, widths and precisions (also `*`), and
//! backslash escapes. The format is reused while arguments remain, as in
//! coreutils.

use crate::ctx::{Ctx, errmsg};

pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let Some((format, operands)) = args.split_first() else {
        return ctx.fail("printf", "missing operand");
    };
    let mut state = Args {
        list: operands,
        pos: 0,
        errors: Vec::new(),
    };
    let mut out = Vec::new();
    let mut status = 0;
    loop {
        let before = state.pos;
        match render(format, &mut state, &mut out) {
            Ok(Flow::Go) => {}
            Ok(Flow::Stop) => break,
            Err(msg) => {
                status = ctx.fail("printf", msg);
                break;
            }
        }
        if state.pos >= operands.len() || state.pos == before {
            break;
        }
    }
    for msg in std::mem::take(&mut state.errors) {
        status = ctx.fail("printf", msg);
    }
    match ctx.stdout.write_all(&out).and_then(|()| ctx.stdout.flush()) {
        Ok(()) => status,
        Err(e) => ctx.fail("printf", format!("write error: {}", errmsg(&e))),
    }
}

/// Whether output goes on after an escape (`\c` stops it all).
enum Flow {
    Go,
    Stop,
}

/// The arguments, consumed by conversions; bad numbers are reported at the
/// end (and count as 0), like coreutils does.
struct Args<'a> {
    list: &'a [String],
    pos: usize,
    errors: Vec<String>,
}

impl Args<'_> {
    fn next(&mut self) -> Option<&str> {
        let arg = self.list.get(self.pos)?;
        self.pos += 1;
        Some(arg)
    }

    fn int(&mut self) -> i64 {
        let Some(arg) = self.next().map(str::to_string) else {
            return 0;
        };
        match parse_int(&arg) {
            Some(n) => n,
            None => {
                self.errors.push(format!("invalid number '{arg}'"));
                0
            }
        }
    }

    fn float(&mut self) -> f64 {
        let Some(arg) = self.next().map(str::to_string) else {
            return 0.0;
        };
        let t = arg.trim();
        if let Some(c) = char_code(t) {
            return c as f64;
        }
        let lower = t.to_ascii_lowercase();
        let plain = lower.trim_start_matches(['+', '-']);
        // Rust also parses "infinity" and "nan", which C does too.
        match t.parse::<f64>() {
            Ok(v) if !plain.is_empty() => v,
            _ => match parse_int(t) {
                Some(n) => n as f64,
                None => {
                    self.errors.push(format!("invalid number '{arg}'"));
                    0.0
                }
            },
        }
    }
}

/// `'c` or `"c`: the code of character c.
fn char_code(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('\'').or_else(|| s.strip_prefix('"'))?;
    rest.chars().next().map(|c| i64::from(u32::from(c)))
}

/// A C integer constant: decimal, `0x` hex or `0` octal, with a sign; or a
/// quoted character.
fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(c) = char_code(t) {
        return Some(c);
    }
    let (neg, digits) = match t.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse::<u64>().ok()?
    } else {
        return None;
    };
    // Wraps like C's strtol for unsigned conversions of big values.
    let value = value as i64;
    Some(if neg { value.wrapping_neg() } else { value })
}

/// Appends the expansion of the escape after a backslash; `chars` is past
/// the backslash. Returns `Flow::Stop` for `\c`.
fn escape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, out: &mut Vec<u8>) -> Flow {
    let Some(c) = chars.next() else {
        out.push(b'\\');
        return Flow::Go;
    };
    let byte = match c {
        'n' => b'\n',
        't' => b'\t',
        'r' => b'\r',
        'a' => 0x07,
        'b' => 0x08,
        'e' => 0x1b,
        'f' => 0x0c,
        'v' => 0x0b,
        '\\' => b'\\',
        '"' => b'"',
        '\'' => b'\'',
        'c' => return Flow::Stop,
        // `\NNN`, or `\0NNN` (the `%b` form): up to three octal digits.
        '0'..='7' => {
            let mut value = c.to_digit(8).unwrap_or(0);
            let max = if c == '0' { 3 } else { 2 };
            for _ in 0..max {
                match chars.peek().and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        value = value * 8 + d;
                        chars.next();
                    }
                    None => break,
                }
            }
            (value & 0xff) as u8
        }
        'x' => {
            let mut value = 0u32;
            let mut n = 0;
            while n < 2 {
                match chars.peek().and_then(|d| d.to_digit(16)) {
                    Some(d) => {
                        value = value * 16 + d;
                        chars.next();
                        n += 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                out.extend_from_slice(b"\\x");
                return Flow::Go;
            }
            (value & 0xff) as u8
        }
        other => {
            out.push(b'\\');
            push_char(out, other);
            return Flow::Go;
        }
    };
    out.push(byte);
    Flow::Go
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

/// `%b`: the argument with its escapes expanded.
fn expand_b(arg: &str, out: &mut Vec<u8>) -> Flow {
    let mut chars = arg.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            push_char(out, c);
        } else if let Flow::Stop = escape(&mut chars, out) {
            return Flow::Stop;
        }
    }
    Flow::Go
}

/// A conversion's flags, width and precision.
#[derive(Default)]
struct Spec {
    left: bool,
    plus: bool,
    space: bool,
    alt: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
}

impl Spec {
    /// Pads `body` (whose sign or prefix is `prefix`) to the width.
    fn pad(&self, prefix: &str, body: &str, zero_ok: bool) -> String {
        let len = prefix.chars().count() + body.chars().count();
        let fill = self.width.saturating_sub(len);
        if self.left {
            format!("{prefix}{body}{}", " ".repeat(fill))
        } else if self.zero && zero_ok {
            format!("{prefix}{}{body}", "0".repeat(fill))
        } else {
            format!("{}{prefix}{body}", " ".repeat(fill))
        }
    }

    fn sign(&self, negative: bool) -> &'static str {
        if negative {
            "-"
        } else if self.plus {
            "+"
        } else if self.space {
            " "
        } else {
            ""
        }
    }
}

/// Renders one pass of `format` into `out`.
fn render(format: &str, args: &mut Args<'_>, out: &mut Vec<u8>) -> Result<Flow, String> {
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Flow::Stop = escape(&mut chars, out) {
                    return Ok(Flow::Stop);
                }
            }
            '%' => {
                if chars.peek() == Some(&'%') {
                    chars.next();
                    out.push(b'%');
                    continue;
                }
                let mut directive = String::from("%");
                let mut spec = Spec::default();
                while let Some(&f) = chars.peek() {
                    match f {
                        '-' => spec.left = true,
                        '+' => spec.plus = true,
                        ' ' => spec.space = true,
                        '#' => spec.alt = true,
                        '0' => spec.zero = true,
                        _ => break,
                    }
                    directive.push(f);
                    chars.next();
                }
                let mut number = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
                                  directive: &mut String|
                 -> Option<usize> {
                    if chars.peek() == Some(&'*') {
                        chars.next();
                        directive.push('*');
                        let n = args.int();
                        if n < 0 {
                            return None;
                        }
                        return Some(usize::try_from(n).unwrap_or(0));
                    }
                    let mut digits = String::new();
                    while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                        digits.push(d);
                        chars.next();
                    }
                    directive.push_str(&digits);
                    Some(digits.parse().unwrap_or(0))
                };
                match number(&mut chars, &mut directive) {
                    Some(w) => spec.width = w,
                    // A negative `*` width means left-justified.
                    None => spec.left = true,
                }
                if chars.peek() == Some(&'.') {
                    chars.next();
                    directive.push('.');
                    spec.precision = number(&mut chars, &mut directive);
                }
                // Length modifiers mean nothing here.
                while chars
                    .peek()
                    .is_some_and(|c| matches!(c, 'h' | 'l' | 'L' | 'q' | 'j' | 'z' | 't'))
                {
                    chars.next();
                }
                let Some(conv) = chars.next() else {
                    return Err(format!("{directive}: missing format character"));
                };
                if let Flow::Stop = convert(conv, &spec, args, out, &directive)? {
                    return Ok(Flow::Stop);
                }
            }
            c => push_char(out, c),
        }
    }
    Ok(Flow::Go)
}

fn convert(
    conv: char,
    spec: &Spec,
    args: &mut Args<'_>,
    out: &mut Vec<u8>,
    directive: &str,
) -> Result<Flow, String> {
    let text = match conv {
        's' => {
            let arg = args.next().unwrap_or_default();
            let shown: String = match spec.precision {
                Some(p) => arg.chars().take(p).collect(),
                None => arg.to_string(),
            };
            spec.pad("", &shown, false)
        }
        'b' => {
            let arg = args.next().unwrap_or_default().to_string();
            let mut expanded = Vec::new();
            let flow = expand_b(&arg, &mut expanded);
            // Padding counts characters; bytes that are not UTF-8 go out as
            // they are.
            let len = String::from_utf8_lossy(&expanded).chars().count();
            let fill = spec.width.saturating_sub(len);
            if !spec.left {
                out.extend(std::iter::repeat_n(b' ', fill));
            }
            out.extend_from_slice(&expanded);
            if spec.left {
                out.extend(std::iter::repeat_n(b' ', fill));
            }
            return Ok(flow);
        }
        'c' => {
            let arg = args.next().unwrap_or_default();
            let first: String = arg.chars().take(1).collect();
            spec.pad("", &first, false)
        }
        'd' | 'i' => {
            let n = args.int();
            let digits = with_precision(n.unsigned_abs().to_string(), spec.precision);
            spec.pad(spec.sign(n < 0), &digits, spec.precision.is_none())
        }
        'u' | 'o' | 'x' | 'X' => {
            let n = args.int() as u64;
            let digits = match conv {
                'u' => n.to_string(),
                'o' => format!("{n:o}"),
                'x' => format!("{n:x}"),
                _ => format!("{n:X}"),
            };
            let mut digits = with_precision(digits, spec.precision);
            let mut prefix = "";
            if spec.alt && n != 0 {
                match conv {
                    'o' if !digits.starts_with('0') => digits.insert(0, '0'),
                    'x' => prefix = "0x",
                    'X' => prefix = "0X",
                    _ => {}
                }
            }
            spec.pad(prefix, &digits, spec.precision.is_none())
        }
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => {
            let v = args.float();
            let body = float(v.abs(), conv, spec);
            let finite = v.is_finite();
            spec.pad(
                spec.sign(v.is_sign_negative() && !v.is_nan()),
                &body,
                finite,
            )
        }
        _ => return Err(format!("{directive}{conv}: invalid directive")),
    };
    out.extend_from_slice(text.as_bytes());
    Ok(Flow::Go)
}

/// Pads integer digits with zeros to `precision` digits.
fn with_precision(digits: String, precision: Option<usize>) -> String {
    match precision {
        Some(0) if digits == "0" => String::new(),
        Some(p) if p > digits.len() => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    }
}

/// Formats a non-negative float for `%f`, `%e` or `%g`.
fn float(v: f64, conv: char, spec: &Spec) -> String {
    let upper = conv.is_ascii_uppercase();
    if !v.is_finite() {
        let s = if v.is_nan() { "nan" } else { "inf" };
        return if upper {
            s.to_uppercase()
        } else {
            s.to_string()
        };
    }
    let prec = spec.precision.unwrap_or(6);
    let s = match conv.to_ascii_lowercase() {
        'f' => {
            let s = format!("{v:.prec$}");
            if spec.alt && prec == 0 { s + "." } else { s }
        }
        'e' => exp_form(v, prec, spec.alt),
        _ => {
            let p = prec.max(1);
            let exp = exponent(v, p - 1);
            let s = if exp < -4 || exp >= p as i32 {
                exp_form(v, p - 1, spec.alt)
            } else {
                let decimals = usize::try_from(p as i32 - 1 - exp).unwrap_or(0);
                format!("{v:.decimals$}")
            };
            if spec.alt { s } else { strip_zeros(&s) }
        }
    };
    if upper { s.to_uppercase() } else { s }
}

/// The decimal exponent of `v` once rounded to `prec` decimals in e-form.
fn exponent(v: f64, prec: usize) -> i32 {
    let s = format!("{v:.prec$e}");
    s.rsplit_once('e')
        .and_then(|(_, e)| e.parse().ok())
        .unwrap_or(0)
}

/// `d.ddde+XX`, as C prints it.
fn exp_form(v: f64, prec: usize, alt: bool) -> String {
    let s = format!("{v:.prec$e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let dot = if alt && prec == 0 { "." } else { "" };
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}{dot}e{sign}{:02}", exp.unsigned_abs())
}

/// `%g` drops trailing zeros of the fraction (and a bare point).
fn strip_zeros(s: &str) -> String {
    let (num, exp) = match s.find('e') {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let num = if num.contains('.') {
        num.trim_end_matches('0').trim_end_matches('.')
    } else {
        num
    };
    format!("{num}{exp}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx::{Env, capture};

    fn printf(args: &[&str]) -> (i32, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        capture("", &Env::new(), |ctx| main(ctx, &args))
    }

    fn out(args: &[&str]) -> String {
        let (code, out, err) = printf(args);
        assert_eq!((code, err.as_str()), (0, ""), "{args:?}");
        out
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(out(&["hello\\n"]), "hello\n");
        assert_eq!(out(&["%s-%s\\n", "a", "b"]), "a-b\n");
        assert_eq!(
            out(&["[%5s][%-5s][%.2s]", "ab", "cd", "xyz"]),
            "[   ab][cd   ][xy]"
        );
        assert_eq!(out(&["a\\tb\\\\c\\0101\\101\\x41"]), "a\tb\\cAAA");
        assert_eq!(out(&["%%|%c|%c", "xyz", ""]), "%|x|");
        assert_eq!(out(&["%b|", "a\\nb", "\\0101"]), "a\nb|A|");
        assert_eq!(out(&["%b%s", "stop\\chere", "x"]), "stop");
        assert_eq!(out(&["x\\cy"]), "x");
        assert_eq!(out(&["--", "%s", "-n"]), "-n");
        assert_eq!(out(&["%s"]), "");
    }

    #[test]
    fn reuses_the_format() {
        assert_eq!(out(&["%s=%d\\n", "a", "1", "b", "2"]), "a=1\nb=2\n");
        assert_eq!(out(&["<%s>", "1", "2", "3"]), "<1><2><3>");
        assert_eq!(out(&["%s %s\\n", "odd"]), "odd \n");
        assert_eq!(out(&["plain\\n", "ignored"]), "plain\n");
    }

    #[test]
    fn integers() {
        assert_eq!(out(&["%d %i %d", "42", "-7", "0x1f"]), "42 -7 31");
        assert_eq!(
            out(&["[%5d][%-5d][%05d]", "42", "42", "-42"]),
            "[   42][42   ][-0042]"
        );
        assert_eq!(out(&["[%+d][% d][%.3d]", "5", "5", "7"]), "[+5][ 5][007]");
        assert_eq!(
            out(&["%x %X %o %#x %#o", "255", "255", "8", "255", "8"]),
            "ff FF 10 0xff 010"
        );
        assert_eq!(out(&["%u", "-1"]), "18446744073709551615");
        assert_eq!(out(&["%d", "'A"]), "65");
        assert_eq!(out(&["%d", "010"]), "8");
        assert_eq!(out(&["[%*d]", "4", "1"]), "[   1]");
        assert_eq!(out(&["%ld", "3"]), "3");
    }

    #[test]
    fn floats() {
        assert_eq!(out(&["%f", "3.14159"]), "3.141590");
        assert_eq!(
            out(&["%.2f|%8.3f|%-8.1f|", "2.346", "1", "-1.25"]),
            "2.35|   1.000|-1.2    |"
        );
        assert_eq!(out(&["%e", "12345.678"]), "1.234568e+04");
        assert_eq!(out(&["%.1E", "0.00012"]), "1.2E-04");
        assert_eq!(
            out(&["%g %g %g %g", "100000", "1000000", "0.0001", "2.50"]),
            "100000 1e+06 0.0001 2.5"
        );
        assert_eq!(out(&["%g", "0.00001234"]), "1.234e-05");
        assert_eq!(out(&["%05.1f", "2.25"]), "002.2");
        assert_eq!(out(&["%f", "5"]), "5.000000");
    }

    #[test]
    fn errors() {
        let (code, o, err) = printf(&["%d|%d", "12abc", "3"]);
        assert_eq!((code, o.as_str()), (1, "0|3"));
        assert_eq!(err, "busybox: printf: invalid number '12abc'\n");
        let (code, o, err) = printf(&["a%yb"]);
        assert_eq!((code, o.as_str()), (1, "a"));
        assert_eq!(err, "busybox: printf: %y: invalid directive\n");
        let (code, _, err) = printf(&[]);
        assert_eq!(
            (code, err.as_str()),
            (1, "busybox: printf: missing operand\n")
        );
    }
}
