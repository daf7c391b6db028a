//! The shell's parser: tokens to a syntax tree of and-or lists of pipelines
//! of commands, which are simple commands or compound ones (`if`, `for`,
//! `while`, `until`, `{ ...; }` and `( ... )`).

use super::lex::{self, RedirOp, Seg, SyntaxError, Tok, Word};

/// A whole script, or a compound command's body: and-or lists run one
/// after another.
pub type Script = Vec<AndOr>;

/// `a && b || c`
#[derive(Debug, Clone, PartialEq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Conn, Pipeline)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Conn {
    And,
    Or,
}

/// `[!] a | b`
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    /// `!`: the status is inverted.
    pub negate: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Simple(Simple),
    /// A compound command with the redirections that follow its end.
    Compound(Compound, Vec<Redir>),
}

/// A simple command: `A=1 cmd arg >file`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Simple {
    pub assigns: Vec<(String, Word)>,
    pub words: Vec<Word>,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Compound {
    /// `if C; then B; [elif C; then B;]... [else B;] fi`
    If {
        arms: Vec<(Script, Script)>,
        otherwise: Option<Script>,
    },
    /// `for NAME [in WORD...]; do B; done` (no `in`: the positional args)
    For {
        var: String,
        words: Option<Vec<Word>>,
        body: Script,
    },
    /// `while C; do B; done`, or `until` when `until` is set.
    Loop {
        until: bool,
        cond: Script,
        body: Script,
    },
    /// `{ B; }`
    Group(Script),
    /// `( B )`: variables and the directory are restored afterwards.
    Subshell(Script),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Redir {
    pub op: RedirOp,
    /// The file operand; `None` for `N>&M`.
    pub target: Option<Word>,
}

/// Parses a complete script.
pub fn parse(src: &str) -> Result<Script, SyntaxError> {
    parse_tokens(lex::lex(src)?)
}

/// Parses already lexed tokens (the body of a `$(...)`).
pub fn parse_tokens(toks: Vec<Tok>) -> Result<Script, SyntaxError> {
    let mut parser = Parser { toks, pos: 0 };
    let script = parser.list(&[])?;
    match parser.peek() {
        None => Ok(script),
        Some(tok) => Err(unexpected(tok)),
    }
}

/// Words that are reserved at the start of a command.
const KEYWORDS: &[&str] = &[
    "if", "then", "elif", "else", "fi", "for", "do", "done", "while", "until", "{", "}", "!",
];

/// The reserved word `tok` spells, if it is one: a single unquoted literal.
fn keyword(tok: &Tok) -> Option<&'static str> {
    let Tok::Word(Word(segs)) = tok else {
        return None;
    };
    let [
        Seg::Lit {
            text,
            quoted: false,
        },
    ] = segs.as_slice()
    else {
        return None;
    };
    KEYWORDS.iter().copied().find(|k| k == text)
}

/// The word `in` of a `for` loop (reserved only there).
fn is_in(tok: &Tok) -> bool {
    matches!(tok, Tok::Word(Word(segs)) if matches!(segs.as_slice(),
        [Seg::Lit { text, quoted: false }] if text == "in"))
}

fn unexpected(tok: &Tok) -> SyntaxError {
    match keyword(tok) {
        Some(kw) => SyntaxError::new(format!("unexpected '{kw}'")),
        None => SyntaxError::new(format!("unexpected {tok}")),
    }
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn peek_keyword(&self) -> Option<&'static str> {
        self.peek().and_then(keyword)
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.pos += 1;
        }
    }

    /// Parses and-or lists separated by `;` or newlines, stopping before
    /// end of input, a `)` or one of the reserved words `terms` in command
    /// position; the caller checks what stopped it.
    fn list(&mut self, terms: &[&str]) -> Result<Script, SyntaxError> {
        let mut script = Vec::new();
        loop {
            self.skip_newlines();
            match self.peek() {
                None | Some(Tok::RParen) => break,
                Some(tok) if keyword(tok).is_some_and(|k| terms.contains(&k)) => break,
                Some(_) => {}
            }
            script.push(self.and_or()?);
            match self.peek() {
                Some(Tok::Semi | Tok::Newline) => self.pos += 1,
                _ => break,
            }
        }
        Ok(script)
    }

    /// A compound command's non-empty body, ended by one of `terms`, which
    /// is consumed and returned.
    fn body(&mut self, terms: &[&'static str]) -> Result<(Script, &'static str), SyntaxError> {
        let script = self.list(terms)?;
        let end = self.expect(terms)?;
        if script.is_empty() {
            return Err(SyntaxError::new(format!("unexpected '{end}'")));
        }
        Ok((script, end))
    }

    /// Consumes one of the reserved words `terms`; end of input is
    /// incomplete (more lines may bring it).
    fn expect(&mut self, terms: &[&'static str]) -> Result<&'static str, SyntaxError> {
        match self.peek() {
            None => Err(SyntaxError::incomplete(format!(
                "unexpected end of input (expecting '{}')",
                terms.first().copied().unwrap_or_default()
            ))),
            Some(tok) => match keyword(tok).filter(|k| terms.contains(k)) {
                Some(kw) => {
                    self.pos += 1;
                    Ok(kw)
                }
                None => Err(unexpected(tok)),
            },
        }
    }

    fn and_or(&mut self) -> Result<AndOr, SyntaxError> {
        let first = self.pipeline()?;
        let mut rest = Vec::new();
        loop {
            let conn = match self.peek() {
                Some(Tok::And) => Conn::And,
                Some(Tok::Or) => Conn::Or,
                _ => return Ok(AndOr { first, rest }),
            };
            self.pos += 1;
            self.continuation(if conn == Conn::And { "&&" } else { "||" })?;
            rest.push((conn, self.pipeline()?));
        }
    }

    fn pipeline(&mut self) -> Result<Pipeline, SyntaxError> {
        let negate = self.peek_keyword() == Some("!");
        if negate {
            self.pos += 1;
        }
        let mut cmds = vec![self.command()?];
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            self.continuation("|")?;
            cmds.push(self.command()?);
        }
        Ok(Pipeline { negate, cmds })
    }

    /// After a binary operator, newlines may follow and input may not end.
    fn continuation(&mut self, op: &str) -> Result<(), SyntaxError> {
        self.skip_newlines();
        if self.peek().is_none() {
            return Err(SyntaxError::incomplete(format!(
                "unexpected end of input after '{op}'"
            )));
        }
        Ok(())
    }

    fn command(&mut self) -> Result<Command, SyntaxError> {
        let compound = match self.peek_keyword() {
            Some("if") => self.if_clause()?,
            Some("for") => self.for_clause()?,
            Some(kw @ ("while" | "until")) => {
                self.pos += 1;
                let (cond, _) = self.body(&["do"])?;
                let (body, _) = self.body(&["done"])?;
                Compound::Loop {
                    until: kw == "until",
                    cond,
                    body,
                }
            }
            Some("{") => {
                self.pos += 1;
                Compound::Group(self.body(&["}"])?.0)
            }
            Some(kw @ ("then" | "elif" | "else" | "fi" | "do" | "done" | "}" | "!")) => {
                return Err(SyntaxError::new(format!("unexpected '{kw}'")));
            }
            _ if self.peek() == Some(&Tok::LParen) => {
                self.pos += 1;
                let script = self.list(&[])?;
                match self.peek() {
                    Some(Tok::RParen) if !script.is_empty() => self.pos += 1,
                    Some(tok) => return Err(unexpected(tok)),
                    None => return Err(SyntaxError::incomplete("unterminated '('")),
                }
                Compound::Subshell(script)
            }
            _ => return self.simple().map(Command::Simple),
        };
        let mut redirs = Vec::new();
        while let Some(Tok::Redir(op)) = self.peek().cloned() {
            self.pos += 1;
            redirs.push(self.redir(op)?);
        }
        Ok(Command::Compound(compound, redirs))
    }

    fn if_clause(&mut self) -> Result<Compound, SyntaxError> {
        self.pos += 1; // `if`
        let mut arms = Vec::new();
        let mut otherwise = None;
        loop {
            let (cond, _) = self.body(&["then"])?;
            let (then, end) = self.body(&["fi", "elif", "else"])?;
            arms.push((cond, then));
            match end {
                "elif" => continue,
                "else" => {
                    otherwise = Some(self.body(&["fi"])?.0);
                    break;
                }
                _ => break,
            }
        }
        Ok(Compound::If { arms, otherwise })
    }

    fn for_clause(&mut self) -> Result<Compound, SyntaxError> {
        self.pos += 1; // `for`
        let var = match self.peek() {
            Some(Tok::Word(Word(segs))) => match segs.as_slice() {
                [
                    Seg::Lit {
                        text,
                        quoted: false,
                    },
                ] if valid_name(text) => text.clone(),
                _ => return Err(SyntaxError::new("bad for loop variable")),
            },
            Some(tok) => return Err(unexpected(tok)),
            None => {
                return Err(SyntaxError::incomplete(
                    "unexpected end of input after 'for'",
                ));
            }
        };
        self.pos += 1;
        self.skip_newlines();
        let mut words = None;
        if self.peek().is_some_and(is_in) {
            self.pos += 1;
            let mut list = Vec::new();
            while let Some(Tok::Word(w)) = self.peek() {
                list.push(w.clone());
                self.pos += 1;
            }
            match self.peek() {
                Some(Tok::Semi | Tok::Newline) => self.pos += 1,
                Some(tok) => return Err(unexpected(tok)),
                None => {
                    return Err(SyntaxError::incomplete(
                        "unexpected end of input (expecting 'do')",
                    ));
                }
            }
            words = Some(list);
        } else if self.peek() == Some(&Tok::Semi) {
            self.pos += 1;
        }
        self.skip_newlines();
        self.expect(&["do"])?;
        let (body, _) = self.body(&["done"])?;
        Ok(Compound::For { var, words, body })
    }

    fn simple(&mut self) -> Result<Simple, SyntaxError> {
        let mut cmd = Simple::default();
        loop {
            match self.peek().cloned() {
                Some(Tok::Word(word)) => {
                    self.pos += 1;
                    match assignment(&word) {
                        Some(assign) if cmd.words.is_empty() => cmd.assigns.push(assign),
                        _ => cmd.words.push(word),
                    }
                }
                Some(Tok::Redir(op)) => {
                    self.pos += 1;
                    cmd.redirs.push(self.redir(op)?);
                }
                _ => break,
            }
        }
        if cmd.assigns.is_empty() && cmd.words.is_empty() && cmd.redirs.is_empty() {
            return Err(match self.peek() {
                Some(tok) => unexpected(tok),
                None => SyntaxError::new("unexpected end of input"),
            });
        }
        Ok(cmd)
    }

    /// The operand of redirection `op` (already consumed).
    fn redir(&mut self, op: RedirOp) -> Result<Redir, SyntaxError> {
        let target = match op {
            RedirOp::Dup(..) => None,
            _ => match self.peek() {
                Some(Tok::Word(w)) => {
                    let w = w.clone();
                    self.pos += 1;
                    Some(w)
                }
                _ => {
                    return Err(SyntaxError::new(format!(
                        "missing file name after '{}'",
                        op_text(op)
                    )));
                }
            },
        };
        Ok(Redir { op, target })
    }
}

fn op_text(op: RedirOp) -> String {
    match op {
        RedirOp::Out(1) => ">".into(),
        RedirOp::Append(1) => ">>".into(),
        RedirOp::In(0) => "<".into(),
        RedirOp::Out(fd) => format!("{fd}>"),
        RedirOp::Append(fd) => format!("{fd}>>"),
        RedirOp::In(fd) => format!("{fd}<"),
        RedirOp::Dup(fd, to) => format!("{fd}>&{to}"),
    }
}

/// A shell variable name: a letter or `_`, then letters, digits and `_`.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(lex::is_name_start) && chars.all(lex::is_name_char)
}

/// `NAME=value` (NAME unquoted) splits into the name and the value word.
fn assignment(word: &Word) -> Option<(String, Word)> {
    let Some(Seg::Lit {
        text,
        quoted: false,
    }) = word.0.first()
    else {
        return None;
    };
    let (name, value) = text.split_once('=')?;
    if !valid_name(name) {
        return None;
    }
    let mut segs = vec![Seg::Lit {
        text: value.to_string(),
        quoted: false,
    }];
    segs.extend(word.0[1..].iter().cloned());
    Some((name.to_string(), Word(segs)))
}
