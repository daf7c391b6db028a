//! Variable substitution in Dockerfile words: `$VAR`, `${VAR}` and the
//! `${VAR:-default}` family, with the escape character honoured.

use super::{DockerfileError, DockerfileError as E, Result, Scope};

pub(super) fn expand_in(
    scope: &Scope,
    escape: char,
    line: usize,
    text: &str,
    quotes: bool,
) -> Result<String> {
    let chars = text.chars().collect();
    Lexer {
        chars,
        pos: 0,
        depth: 0,
        text,
        escape,
        scope,
        line,
        quotes,
    }
    .word(None)
}

const MAX_NESTING: usize = 32;

/// Shell-style word processing: quote removal (when `quotes`), escapes and `$` substitution.
struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    /// Nesting of `${NAME:-...}` words, bounded to keep recursion shallow.
    depth: usize,
    text: &'a str,
    escape: char,
    scope: &'a Scope,
    line: usize,
    quotes: bool,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        self.pos += usize::from(c.is_some());
        c
    }

    fn bad_substitution(&self) -> DockerfileError {
        E::BadSubstitution(self.line, self.text.into())
    }

    fn unterminated(&self) -> DockerfileError {
        E::UnterminatedQuote(self.line, self.text.into())
    }

    /// Processes up to (not including) `stop`, or to the end of the input.
    fn word(&mut self, stop: Option<char>) -> Result<String> {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                return Ok(out);
            }
            self.pos += 1;
            match c {
                '\'' if self.quotes => loop {
                    match self.next().ok_or_else(|| self.unterminated())? {
                        '\'' => break,
                        c => out.push(c),
                    }
                },
                '"' if self.quotes => loop {
                    match self.next().ok_or_else(|| self.unterminated())? {
                        '"' => break,
                        '$' => out.push_str(&self.dollar()?),
                        c if c == self.escape => match self.next() {
                            Some(n) if n == '"' || n == '$' || n == self.escape => out.push(n),
                            Some(n) => out.extend([c, n]),
                            None => return Err(self.unterminated()),
                        },
                        c => out.push(c),
                    }
                },
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => match self.next() {
                    Some('$') => out.push('$'),
                    Some(n) if self.quotes => out.push(n),
                    Some(n) => out.extend([c, n]),
                    None => {}
                },
                c => out.push(c),
            }
        }
        match stop {
            Some(_) => Err(self.bad_substitution()),
            None => Ok(out),
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            name.push(c);
            self.pos += 1;
        }
        name
    }

    /// After a `$`: `NAME`, `{NAME}`, `{NAME:-w}`, `{NAME-w}`, `{NAME:+w}`, `{NAME+w}`,
    /// `{NAME:?w}` or `{NAME?w}`; anything else leaves the `$` literal.
    fn dollar(&mut self) -> Result<String> {
        match self.peek() {
            Some('{') => self.pos += 1,
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.name();
                return Ok(self.scope.get(&name).unwrap_or_default().to_string());
            }
            _ => return Ok("$".to_string()),
        }
        let name = self.name();
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(self.bad_substitution());
        }
        let value = self.scope.get(&name);
        let colon = self.peek() == Some(':');
        self.pos += usize::from(colon);
        let op = self.next();
        if op == Some('}') && !colon {
            return Ok(value.unwrap_or_default().to_string());
        }
        if !matches!(op, Some('-' | '+' | '?')) {
            return Err(self.bad_substitution());
        }
        if self.depth >= MAX_NESTING {
            return Err(self.bad_substitution());
        }
        self.depth += 1;
        let word = self.word(Some('}'))?;
        self.depth -= 1;
        self.pos += 1;
        // With a colon, an empty value counts as unset.
        Ok(match (op, value.filter(|v| !colon || !v.is_empty())) {
            (Some('-'), None) | (Some('+'), Some(_)) => word,
            (Some('+'), None) => String::new(),
            (_, Some(v)) => v.to_string(),
            (_, None) if word.is_empty() => {
                return Err(E::RequiredVariable(self.line, name, "not set".into()));
            }
            (_, None) => return Err(E::RequiredVariable(self.line, name, word)),
        })
    }
}
