//! The shell's lexer: turns source text into words (with quoting and `$`
//! expansions kept apart for later), operators and redirections. Command
//! substitutions (`$(...)`, backquotes) are parsed here, as nested scripts.

use super::parse::{self, Script};
use std::fmt;
use std::rc::Rc;

/// A piece of a word. Quoted pieces are never field-split; unquoted
/// variables are.
#[derive(Debug, Clone, PartialEq)]
pub enum Seg {
    Lit {
        text: String,
        quoted: bool,
    },
    Var {
        name: String,
        quoted: bool,
    },
    /// `$(script)` or `` `script` ``: replaced by the script's output.
    Cmd {
        script: Rc<Script>,
        quoted: bool,
    },
    /// `$((expr))`: the expression may itself hold `$` expansions.
    Arith {
        expr: Word,
        quoted: bool,
    },
}

/// One shell word before expansion.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Word(pub Vec<Seg>);

/// Redirection operators; the numbers are file descriptors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RedirOp {
    /// `N> file`
    Out(u32),
    /// `N>> file`
    Append(u32),
    /// `N< file`
    In(u32),
    /// `N>&M`
    Dup(u32, u32),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Word(Word),
    Redir(RedirOp),
    Semi,
    Newline,
    And,
    Or,
    Pipe,
    LParen,
    RParen,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(_) => f.write_str("word"),
            Tok::Redir(_) => f.write_str("redirection"),
            Tok::Semi => f.write_str("';'"),
            Tok::Newline => f.write_str("newline"),
            Tok::And => f.write_str("'&&'"),
            Tok::Or => f.write_str("'||'"),
            Tok::Pipe => f.write_str("'|'"),
            Tok::LParen => f.write_str("'('"),
            Tok::RParen => f.write_str("')'"),
        }
    }
}

/// A syntax error. `incomplete` marks input that may become valid when more
/// lines follow (open quotes, trailing `&&`), which the line reader uses.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub msg: String,
    pub incomplete: bool,
}

impl SyntaxError {
    pub fn new(msg: impl Into<String>) -> Self {
        SyntaxError {
            msg: msg.into(),
            incomplete: false,
        }
    }

    pub fn incomplete(msg: impl Into<String>) -> Self {
        SyntaxError {
            msg: msg.into(),
            incomplete: true,
        }
    }
}

pub fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

const SPECIAL_VARS: &str = "?#@*";

/// Splits `src` into tokens.
pub fn lex(src: &str) -> Result<Vec<Tok>, SyntaxError> {
    Lexer {
        chars: src.chars().collect(),
        pos: 0,
    }
    .run()
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn run(mut self) -> Result<Vec<Tok>, SyntaxError> {
        self.tokens(false)
    }

    /// Lexes tokens up to the end of input or, when `nested` (inside `$(`),
    /// up to and including the `)` that closes it.
    fn tokens(&mut self, nested: bool) -> Result<Vec<Tok>, SyntaxError> {
        let mut toks = Vec::new();
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' => self.pos += 1,
                '\\' if self.peek_at(1) == Some('\n') => {
                    self.pos += 2;
                    if self.peek().is_none() {
                        return Err(SyntaxError::incomplete("unexpected end of input"));
                    }
                }
                '\n' => {
                    self.pos += 1;
                    toks.push(Tok::Newline);
                }
                '#' => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                ';' => {
                    self.pos += 1;
                    if self.peek() == Some(';') {
                        return Err(SyntaxError::new("unexpected ';;'"));
                    }
                    toks.push(Tok::Semi);
                }
                '&' => {
                    self.pos += 1;
                    if !self.eat('&') {
                        return Err(SyntaxError::new("background jobs ('&') are not supported"));
                    }
                    toks.push(Tok::And);
                }
                '|' => {
                    self.pos += 1;
                    toks.push(if self.eat('|') { Tok::Or } else { Tok::Pipe });
                }
                '(' => {
                    self.pos += 1;
                    depth += 1;
                    toks.push(Tok::LParen);
                }
                ')' => {
                    self.pos += 1;
                    if nested && depth == 0 {
                        return Ok(toks);
                    }
                    depth = depth.saturating_sub(1);
                    toks.push(Tok::RParen);
                }
                '<' | '>' => toks.push(Tok::Redir(self.redir(None)?)),
                d if d.is_ascii_digit() && matches!(self.peek_at(1), Some('<' | '>')) => {
                    self.pos += 1;
                    let fd = d.to_digit(10).unwrap_or(0);
                    toks.push(Tok::Redir(self.redir(Some(fd))?));
                }
                _ => toks.push(Tok::Word(self.word()?)),
            }
        }
        if nested {
            return Err(SyntaxError::incomplete("unterminated '$('"));
        }
        Ok(toks)
    }

    /// Lexes `<`, `>`, `>>`, `>|` or `>&N` at the cursor.
    fn redir(&mut self, fd: Option<u32>) -> Result<RedirOp, SyntaxError> {
        if self.eat('<') {
            if self.peek() == Some('&') {
                return Err(SyntaxError::new("'<&' is not supported"));
            }
            return Ok(RedirOp::In(fd.unwrap_or(0)));
        }
        self.pos += 1; // '>'
        let fd = fd.unwrap_or(1);
        if self.eat('>') {
            return Ok(RedirOp::Append(fd));
        }
        if self.eat('&') {
            return match self.bump() {
                Some(c)
                    if c.is_ascii_digit() && !self.peek().is_some_and(|c| c.is_ascii_digit()) =>
                {
                    Ok(RedirOp::Dup(fd, c.to_digit(10).unwrap_or(0)))
                }
                _ => Err(SyntaxError::new("bad file descriptor after '>&'")),
            };
        }
        self.eat('|');
        Ok(RedirOp::Out(fd))
    }

    fn word(&mut self) -> Result<Word, SyntaxError> {
        let mut segs = Vec::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\r' | '\n' | ';' | '&' | '|' | '<' | '>' | '(' | ')' => break,
                '\'' => {
                    self.pos += 1;
                    let mut text = String::new();
                    loop {
                        match self.bump() {
                            Some('\'') => break,
                            Some(c) => text.push(c),
                            None => {
                                return Err(SyntaxError::incomplete("unterminated single quote"));
                            }
                        }
                    }
                    push_lit(&mut segs, &text, true);
                }
                '"' => {
                    self.pos += 1;
                    self.double_quoted(&mut segs)?;
                }
                '\\' => {
                    self.pos += 1;
                    match self.bump() {
                        Some('\n') if self.peek().is_none() => {
                            return Err(SyntaxError::incomplete("unexpected end of input"));
                        }
                        Some('\n') => {}
                        Some(c) => push_lit(&mut segs, &c.to_string(), true),
                        None => push_lit(&mut segs, "\\", true),
                    }
                }
                '$' => {
                    self.pos += 1;
                    self.dollar(&mut segs, false)?;
                }
                '`' => {
                    self.pos += 1;
                    self.backquoted(&mut segs, false)?;
                }
                c => {
                    self.pos += 1;
                    push_lit(&mut segs, &c.to_string(), false);
                }
            }
        }
        Ok(Word(segs))
    }

    fn double_quoted(&mut self, segs: &mut Vec<Seg>) -> Result<(), SyntaxError> {
        // An empty "" must still produce a (quoted, empty) piece.
        push_lit(segs, "", true);
        loop {
            match self.bump() {
                None => return Err(SyntaxError::incomplete("unterminated double quote")),
                Some('"') => return Ok(()),
                Some('\\') => match self.bump() {
                    Some(c @ ('$' | '`' | '"' | '\\')) => push_lit(segs, &c.to_string(), true),
                    Some('\n') => {}
                    Some(c) => push_lit(segs, &format!("\\{c}"), true),
                    None => return Err(SyntaxError::incomplete("unterminated double quote")),
                },
                Some('$') => self.dollar(segs, true)?,
                Some('`') => self.backquoted(segs, true)?,
                Some(c) => push_lit(segs, &c.to_string(), true),
            }
        }
    }

    /// Lexes what follows a `$` (already consumed).
    fn dollar(&mut self, segs: &mut Vec<Seg>, quoted: bool) -> Result<(), SyntaxError> {
        let name = match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut name = String::new();
                loop {
                    match self.bump() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(SyntaxError::new("unterminated '${'")),
                    }
                }
                if !valid_var_name(&name) {
                    return Err(SyntaxError::new(format!("bad substitution '${{{name}}}'")));
                }
                name
            }
            Some('(') if self.peek_at(1) == Some('(') => {
                self.pos += 2;
                let expr = self.arithmetic()?;
                segs.push(Seg::Arith { expr, quoted });
                return Ok(());
            }
            Some('(') => {
                self.pos += 1;
                let toks = self.tokens(true)?;
                let script = parse::parse_tokens(toks)?;
                segs.push(Seg::Cmd {
                    script: Rc::new(script),
                    quoted,
                });
                return Ok(());
            }
            Some(c) if SPECIAL_VARS.contains(c) || c.is_ascii_digit() => {
                self.pos += 1;
                c.to_string()
            }
            Some(c) if is_name_start(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|&c| is_name_char(c)) {
                    name.push(c);
                    self.pos += 1;
                }
                name
            }
            _ => {
                push_lit(segs, "$", quoted);
                return Ok(());
            }
        };
        segs.push(Seg::Var { name, quoted });
        Ok(())
    }
}

impl Lexer {
    /// Lexes a `` `...` `` substitution (the opening quote consumed): inside,
    /// a backslash quotes only `$`, `` ` `` and itself; the text is a script.
    fn backquoted(&mut self, segs: &mut Vec<Seg>, quoted: bool) -> Result<(), SyntaxError> {
        let mut src = String::new();
        loop {
            match self.bump() {
                None => return Err(SyntaxError::incomplete("unterminated '`'")),
                Some('`') => break,
                Some('\\') => match self.bump() {
                    Some(c @ ('$' | '`' | '\\')) => src.push(c),
                    Some(c) => {
                        src.push('\\');
                        src.push(c);
                    }
                    None => return Err(SyntaxError::incomplete("unterminated '`'")),
                },
                Some(c) => src.push(c),
            }
        }
        let script = parse::parse(&src)?;
        segs.push(Seg::Cmd {
            script: Rc::new(script),
            quoted,
        });
        Ok(())
    }

    /// Lexes the body of `$((...))` (the `$((` consumed) up to the closing
    /// `))`. The text is literal but for `$` expansions and backquotes.
    fn arithmetic(&mut self) -> Result<Word, SyntaxError> {
        let mut raw = String::new();
        let mut depth = 0usize;
        loop {
            match self.bump() {
                None => return Err(SyntaxError::incomplete("unterminated '$(('")),
                Some('(') => {
                    depth += 1;
                    raw.push('(');
                }
                Some(')') if depth == 0 => {
                    if self.eat(')') {
                        break;
                    }
                    return Err(SyntaxError::new("missing ')' in arithmetic expansion"));
                }
                Some(')') => {
                    depth -= 1;
                    raw.push(')');
                }
                Some(c) => raw.push(c),
            }
        }
        let mut inner = Lexer {
            chars: raw.chars().collect(),
            pos: 0,
        };
        let mut segs = vec![Seg::Lit {
            text: String::new(),
            quoted: true,
        }];
        while let Some(c) = inner.bump() {
            match c {
                '$' => inner.dollar(&mut segs, true)?,
                '`' => inner.backquoted(&mut segs, true)?,
                c => push_lit(&mut segs, &c.to_string(), true),
            }
        }
        Ok(Word(segs))
    }
}

/// Names allowed inside `${...}`: identifiers, positional numbers, specials.
fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if is_name_start(c) => chars.all(is_name_char),
        Some(c) if c.is_ascii_digit() => chars.all(|c| c.is_ascii_digit()),
        Some(c) if SPECIAL_VARS.contains(c) => name.len() == 1,
        _ => false,
    }
}

/// Appends literal text, merging with the previous literal of the same kind.
fn push_lit(segs: &mut Vec<Seg>, s: &str, quoted: bool) {
    if let Some(Seg::Lit { text, quoted: q }) = segs.last_mut()
        && *q == quoted
    {
        text.push_str(s);
        return;
    }
    segs.push(Seg::Lit {
        text: s.to_string(),
        quoted,
    });
}
