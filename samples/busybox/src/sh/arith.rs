//! Arithmetic expansion, `$((expr))`: signed 64-bit integers with C's
//! operators and precedence, variables by name, and `=`, `+=`, ...

use std::collections::BTreeMap;

/// Evaluates `expr` (already `$`-expanded). Variables are read from and
/// assigned in `vars`.
pub fn eval(expr: &str, vars: &mut BTreeMap<String, String>) -> Result<i64, String> {
    let toks = tokenize(expr)?;
    let mut p = Parser {
        toks: &toks,
        pos: 0,
        vars,
    };
    if toks.is_empty() {
        return Ok(0);
    }
    let value = p.assign()?;
    match p.toks.get(p.pos) {
        None => Ok(value),
        Some(tok) => Err(format!("arithmetic syntax error: unexpected '{tok}'")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(i64),
    Name(String),
    Op(&'static str),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Name(n) => f.write_str(n),
            Tok::Op(op) => f.write_str(op),
        }
    }
}

/// Longest first, so `<<=` wins over `<<` and `<`.
const OPS: &[&str] = &[
    "<<=", ">>=", "**", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "+=", "-=", "*=", "/=",
    "%=", "&=", "|=", "^=", "+", "-", "*", "/", "%", "<", ">", "=", "!", "~", "&", "|", "^", "(",
    ")", "?", ":",
];

fn tokenize(expr: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if c.is_whitespace() {
            rest = &rest[c.len_utf8()..];
        } else if c.is_ascii_digit() {
            let end = rest
                .find(|c: char| !c.is_ascii_alphanumeric())
                .unwrap_or(rest.len());
            toks.push(Tok::Num(number(&rest[..end])?));
            rest = &rest[end..];
        } else if c.is_ascii_alphabetic() || c == '_' {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            toks.push(Tok::Name(rest[..end].to_string()));
            rest = &rest[end..];
        } else if let Some(op) = OPS.iter().find(|op| rest.starts_with(**op)) {
            toks.push(Tok::Op(op));
            rest = &rest[op.len()..];
        } else {
            return Err(format!("arithmetic syntax error: unexpected '{c}'"));
        }
    }
    Ok(toks)
}

/// A decimal, `0x` hexadecimal or `0` octal constant.
fn number(s: &str) -> Result<i64, String> {
    let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(hex, 16)
    } else if s.len() > 1
        && let Some(oct) = s.strip_prefix('0')
    {
        i64::from_str_radix(oct, 8)
    } else {
        s.parse()
    };
    parsed.map_err(|_| format!("arithmetic syntax error: bad number '{s}'"))
}

struct Parser<'a> {
    toks: &'a [Tok],
    pos: usize,
    vars: &'a mut BTreeMap<String, String>,
}

/// Binary operators by precedence level, loosest first.
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<", ">", "<=", ">="],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

impl Parser<'_> {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(op)) => Some(op),
            _ => None,
        }
    }

    fn eat(&mut self, op: &str) -> bool {
        let hit = self.peek_op() == Some(op);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn var(&self, name: &str) -> Result<i64, String> {
        let value = self.vars.get(name).map(|v| v.trim()).unwrap_or_default();
        if value.is_empty() {
            return Ok(0);
        }
        let (neg, digits) = match value.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, value.strip_prefix('+').unwrap_or(value)),
        };
        let n = number(digits).map_err(|_| format!("{name}: bad number '{value}'"))?;
        Ok(if neg { n.wrapping_neg() } else { n })
    }

    /// `NAME = expr`, `NAME += expr`, ... or a conditional expression.
    fn assign(&mut self) -> Result<i64, String> {
        if let (Some(Tok::Name(name)), Some(Tok::Op(op))) =
            (self.toks.get(self.pos), self.toks.get(self.pos + 1))
            && op.ends_with('=')
            && !matches!(*op, "==" | "!=" | "<=" | ">=")
        {
            let (name, op) = (name.clone(), *op);
            self.pos += 2;
            let rhs = self.assign()?;
            let value = if op == "=" {
                rhs
            } else {
                let old = self.var(&name)?;
                apply(&op[..op.len() - 1], old, rhs)?
            };
            self.vars.insert(name, value.to_string());
            return Ok(value);
        }
        self.ternary()
    }

    fn ternary(&mut self) -> Result<i64, String> {
        let cond = self.binary(0)?;
        if !self.eat("?") {
            return Ok(cond);
        }
        let yes = self.assign()?;
        if !self.eat(":") {
            return Err("arithmetic syntax error: expected ':'".to_string());
        }
        let no = self.ternary()?;
        Ok(if cond != 0 { yes } else { no })
    }

    fn binary(&mut self, level: usize) -> Result<i64, String> {
        let Some(ops) = LEVELS.get(level) else {
            return self.unary();
        };
        let mut lhs = self.binary(level + 1)?;
        while let Some(op) = self.peek_op().filter(|op| ops.contains(op)) {
            self.pos += 1;
            let rhs = self.binary(level + 1)?;
            lhs = apply(op, lhs, rhs)?;
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<i64, String> {
        for (op, f) in [
            ("-", i64::wrapping_neg as fn(i64) -> i64),
            ("+", |v| v),
            ("!", |v| i64::from(v == 0)),
            ("~", |v: i64| !v),
        ] {
            if self.eat(op) {
                return self.unary().map(f);
            }
        }
        self.power()
    }

    fn power(&mut self) -> Result<i64, String> {
        let base = self.primary()?;
        if !self.eat("**") {
            return Ok(base);
        }
        let exp = self.unary()?;
        let exp = u32::try_from(exp).map_err(|_| "exponent less than 0".to_string())?;
        Ok(base.wrapping_pow(exp))
    }

    fn primary(&mut self) -> Result<i64, String> {
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Num(n)) => {
                self.pos += 1;
                Ok(n)
            }
            Some(Tok::Name(name)) => {
                self.pos += 1;
                self.var(&name)
            }
            Some(Tok::Op("(")) => {
                self.pos += 1;
                let value = self.assign()?;
                if !self.eat(")") {
                    return Err("arithmetic syntax error: missing ')'".to_string());
                }
                Ok(value)
            }
            Some(tok) => Err(format!("arithmetic syntax error: unexpected '{tok}'")),
            None => Err("arithmetic syntax error: missing operand".to_string()),
        }
    }
}

fn apply(op: &str, a: i64, b: i64) -> Result<i64, String> {
    Ok(match op {
        "||" => i64::from(a != 0 || b != 0),
        "&&" => i64::from(a != 0 && b != 0),
        "|" => a | b,
        "^" => a ^ b,
        "&" => a & b,
        "==" => i64::from(a == b),
        "!=" => i64::from(a != b),
        "<" => i64::from(a < b),
        ">" => i64::from(a > b),
        "<=" => i64::from(a <= b),
        ">=" => i64::from(a >= b),
        "<<" => a.wrapping_shl(u32::try_from(b & 63).unwrap_or(0)),
        ">>" => a.wrapping_shr(u32::try_from(b & 63).unwrap_or(0)),
        "+" => a.wrapping_add(b),
        "-" => a.wrapping_sub(b),
        "*" => a.wrapping_mul(b),
        "/" | "%" if b == 0 => return Err("division by zero".to_string()),
        "/" => a.wrapping_div(b),
        "%" => a.wrapping_rem(b),
        _ => return Err(format!("arithmetic syntax error: unexpected '{op}'")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(expr: &str) -> Result<i64, String> {
        let mut vars = BTreeMap::new();
        vars.insert("i".to_string(), "4".to_string());
        eval(expr, &mut vars)
    }

    #[test]
    fn precedence_and_operators() {
        assert_eq!(calc("1 + 2 * 3"), Ok(7));
        assert_eq!(calc("(1 + 2) * 3"), Ok(9));
        assert_eq!(calc("i + 1"), Ok(5));
        assert_eq!(calc("-i % 3"), Ok(-1));
        assert_eq!(calc("2 ** 10 >> 2"), Ok(256));
        assert_eq!(calc("i > 3 && i < 5"), Ok(1));
        assert_eq!(calc("!0 + ~0"), Ok(0));
        assert_eq!(calc("0x10 + 010"), Ok(24));
        assert_eq!(calc("i ? 10 : 20"), Ok(10));
        assert_eq!(calc("nope * 2"), Ok(0));
        assert_eq!(calc(""), Ok(0));
    }

    #[test]
    fn assignments() {
        let mut vars = BTreeMap::new();
        assert_eq!(eval("x = 5", &mut vars), Ok(5));
        assert_eq!(eval("x += 2", &mut vars), Ok(7));
        assert_eq!(eval("y = x *= 2", &mut vars), Ok(14));
        assert_eq!(vars.get("y").map(String::as_str), Some("14"));
    }

    #[test]
    fn errors() {
        assert_eq!(calc("1 / 0"), Err("division by zero".to_string()));
        assert!(calc("1 +").is_err());
        assert!(calc("(1").is_err());
        assert!(calc("1 2").is_err());
        assert!(calc("1 @ 2").is_err());
        assert!(calc("09").is_err());
    }
}
