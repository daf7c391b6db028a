//! `test` expressions: file tests, string and integer comparisons, `!`,
//! `-a`, `-o` and parentheses.

use std::fs;

/// Evaluates `args` as a test expression.
pub fn eval(args: &[String]) -> Result<bool, String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // POSIX fixes the meaning of short expressions by their length, so that
    // `[ "$x" = -n ]` or `[ -n ]` work whatever the operands look like.
    match args.as_slice() {
        [] => Ok(false),
        [s] => Ok(!s.is_empty()),
        ["!", s] => Ok(s.is_empty()),
        [a, op, b] if is_binary(op) => binary(a, op, b),
        ["!", rest @ ..] if rest.len() == 2 || rest.len() == 3 => eval_owned(rest).map(|v| !v),
        ["(", inner, ")"] => Ok(!inner.is_empty()),
        _ => {
            let mut p = Parser {
                args: &args,
                pos: 0,
            };
            let value = p.or()?;
            match p.args.get(p.pos) {
                None => Ok(value),
                Some(extra) => Err(format!("{extra}: unexpected operator")),
            }
        }
    }
}

fn eval_owned(args: &[&str]) -> Result<bool, String> {
    let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    eval(&owned)
}

fn is_binary(op: &str) -> bool {
    matches!(
        op,
        "=" | "=="
            | "!="
            | "<"
            | ">"
            | "-eq"
            | "-ne"
            | "-lt"
            | "-le"
            | "-gt"
            | "-ge"
            | "-ef"
            | "-nt"
            | "-ot"
    )
}

struct Parser<'a> {
    args: &'a [&'a str],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let arg = self.args.get(self.pos).copied();
        if arg.is_some() {
            self.pos += 1;
        }
        arg
    }

    fn peek(&self, n: usize) -> Option<&'a str> {
        self.args.get(self.pos + n).copied()
    }

    fn or(&mut self) -> Result<bool, String> {
        let mut value = self.and()?;
        while self.peek(0) == Some("-o") {
            self.pos += 1;
            // Both sides are evaluated: file tests have no side effects.
            let rhs = self.and()?;
            value = value || rhs;
        }
        Ok(value)
    }

    fn and(&mut self) -> Result<bool, String> {
        let mut value = self.not()?;
        while self.peek(0) == Some("-a") {
            self.pos += 1;
            let rhs = self.not()?;
            value = value && rhs;
        }
        Ok(value)
    }

    fn not(&mut self) -> Result<bool, String> {
        if self.peek(0) == Some("!") && self.peek(1).is_some() {
            self.pos += 1;
            return self.not().map(|v| !v);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<bool, String> {
        let Some(first) = self.next() else {
            return Err("argument expected".to_string());
        };
        if let Some(op) = self.peek(0).filter(|op| is_binary(op))
            && self.peek(1).is_some()
        {
            self.pos += 1;
            let rhs = self.next().unwrap_or_default();
            return binary(first, op, rhs);
        }
        if first == "(" {
            let value = self.or()?;
            return match self.next() {
                Some(")") => Ok(value),
                _ => Err("missing )".to_string()),
            };
        }
        if first.len() == 2 && first.starts_with('-') && first != "-a" && first != "-o" {
            if let Some(operand) = self.next() {
                return unary(first, operand);
            }
            // A lone `-f` is just a non-empty string.
            return Ok(true);
        }
        Ok(!first.is_empty())
    }
}

fn unary(op: &str, operand: &str) -> Result<bool, String> {
    let meta = || fs::metadata(operand).ok();
    Ok(match op {
        "-n" => !operand.is_empty(),
        "-z" => operand.is_empty(),
        "-e" => meta().is_some(),
        "-f" => meta().is_some_and(|m| m.is_file()),
        "-d" => meta().is_some_and(|m| m.is_dir()),
        "-s" => meta().is_some_and(|m| m.len() > 0),
        "-L" | "-h" => fs::symlink_metadata(operand).is_ok_and(|m| m.file_type().is_symlink()),
        // WASI has no permission bits: what exists is readable and so on.
        "-r" | "-w" | "-x" => meta().is_some(),
        "-p" | "-S" | "-b" | "-c" | "-t" => false,
        _ => return Err(format!("{op}: unknown operand")),
    })
}

fn binary(a: &str, op: &str, b: &str) -> Result<bool, String> {
    let int = |s: &str| -> Result<i64, String> {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("{s}: bad number"))
    };
    let mtime = |s: &str| fs::metadata(s).and_then(|m| m.modified()).ok();
    Ok(match op {
        "=" | "==" => a == b,
        "!=" => a != b,
        "<" => a < b,
        ">" => a > b,
        "-eq" => int(a)? == int(b)?,
        "-ne" => int(a)? != int(b)?,
        "-lt" => int(a)? < int(b)?,
        "-le" => int(a)? <= int(b)?,
        "-gt" => int(a)? > int(b)?,
        "-ge" => int(a)? >= int(b)?,
        "-nt" => matches!((mtime(a), mtime(b)), (Some(x), Some(y)) if x > y),
        "-ot" => matches!((mtime(a), mtime(b)), (Some(x), Some(y)) if x < y),
        "-ef" => match (fs::canonicalize(a), fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
        _ => return Err(format!("{op}: unknown operand")),
    })
}
