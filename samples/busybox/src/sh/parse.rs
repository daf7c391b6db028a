//! The shell's parser: tokens to a syntax tree of and-or lists of pipelines
//! of simple commands.

use super::lex::{self, RedirOp, Seg, SyntaxError, Tok, Word};

/// A whole script: and-or lists run one after another.
pub type Script = Vec<AndOr>;

/// `a && b || c`
#[derive(Debug, PartialEq)]
pub struct AndOr {
    pub first: Pipeline,
    pub rest: Vec<(Conn, Pipeline)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Conn {
    And,
    Or,
}

/// `a | b`
pub type Pipeline = Vec<Command>;

/// A simple command: `A=1 cmd arg >file`.
#[derive(Debug, PartialEq, Default)]
pub struct Command {
    pub assigns: Vec<(String, Word)>,
    pub words: Vec<Word>,
    pub redirs: Vec<Redir>,
}

#[derive(Debug, PartialEq)]
pub struct Redir {
    pub op: RedirOp,
    /// The file operand; `None` for `N>&M`.
    pub target: Option<Word>,
}

/// Parses a complete script.
pub fn parse(src: &str) -> Result<Script, SyntaxError> {
    let toks = lex::lex(src)?;
    Parser { toks, pos: 0 }.script()
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn skip_newlines(&mut self) {
        while self.peek() == Some(&Tok::Newline) {
            self.pos += 1;
        }
    }

    fn script(&mut self) -> Result<Script, SyntaxError> {
        let mut script = Vec::new();
        loop {
            self.skip_newlines();
            if self.peek().is_none() {
                return Ok(script);
            }
            script.push(self.and_or()?);
            match self.peek() {
                None => return Ok(script),
                Some(Tok::Semi | Tok::Newline) => self.pos += 1,
                Some(tok) => return Err(SyntaxError::new(format!("unexpected {tok}"))),
            }
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
        let mut cmds = vec![self.command()?];
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            self.continuation("|")?;
            cmds.push(self.command()?);
        }
        Ok(cmds)
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
        let mut cmd = Command::default();
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
                    cmd.redirs.push(Redir { op, target });
                }
                _ => break,
            }
        }
        if cmd.assigns.is_empty() && cmd.words.is_empty() && cmd.redirs.is_empty() {
            return Err(match self.peek() {
                Some(tok) => SyntaxError::new(format!("unexpected {tok}")),
                None => SyntaxError::new("unexpected end of input"),
            });
        }
        Ok(cmd)
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
    let mut chars = name.chars();
    if !chars.next().is_some_and(lex::is_name_start) || !chars.all(lex::is_name_char) {
        return None;
    }
    let mut segs = vec![Seg::Lit {
        text: value.to_string(),
        quoted: false,
    }];
    segs.extend(word.0[1..].iter().cloned());
    Some((name.to_string(), Word(segs)))
}
