//! Parses the subset of the Dockerfile language that makes sense for wasm images (no RUN: images
//! are assembled from files, never by executing a shell), with Docker's line, quoting and
//! variable-substitution rules, so that existing Dockerfiles build the same way under wrun.

use std::collections::BTreeMap;

use thiserror::Error;

use self::DockerfileError as E;

/// A parsed Dockerfile; the build uses the last stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    pub stages: Vec<Stage>,
}

impl Dockerfile {
    /// The stage the build produces (the last one).
    pub fn final_stage(&self) -> Option<&Stage> {
        self.stages.last()
    }
}

/// One `FROM` and the instructions that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Base image as written, after ARG expansion.
    pub from: String,
    /// Stage name from `AS name`, lowercased.
    pub name: Option<String>,
    /// 1-based line of the FROM instruction.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    pub kind: InstructionKind,
    /// The instruction text with continuations joined, before substitution.
    pub original: String,
}

/// An instruction with flags parsed and variables substituted (except in CMD/ENTRYPOINT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    Copy {
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
        chmod: Option<String>,
        from: Option<String>,
    },
    Add {
        sources: Vec<String>,
        dest: String,
        chown: Option<String>,
        chmod: Option<String>,
    },
    Entrypoint(Command),
    Cmd(Command),
    Env(Vec<(String, String)>),
    Label(Vec<(String, String)>),
    Workdir(String),
    /// Ports as `port[-port]/proto`, the protocol defaulting to tcp.
    Expose(Vec<String>),
    Arg {
        name: String,
        default: Option<String>,
    },
    User(String),
    Volume(Vec<String>),
    StopSignal(String),
}

/// CMD/ENTRYPOINT argument: a JSON string array (exec form) or the raw text (shell form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Exec(Vec<String>),
    Shell(String),
}

/// Why a Dockerfile could not be parsed; the first field is always the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DockerfileError {
    #[error("Dockerfile has no FROM instruction")]
    NoStages,
    #[error("Dockerfile line {0}: unknown instruction {1:?}")]
    UnknownInstruction(usize, String),
    #[error(
        "Dockerfile line {0}: RUN is not supported: wasm images are assembled without running a shell; use COPY/ADD"
    )]
    RunNotSupported(usize),
    #[error("Dockerfile line {0}: {1} is not supported by wrun")]
    NotSupported(usize, String),
    #[error("Dockerfile line {0}: no FROM instruction before {1}")]
    NoFrom(usize, String),
    #[error("Dockerfile line {0}: {1} requires {2}")]
    Arguments(usize, String, &'static str),
    #[error("Dockerfile line {0}: unknown flag --{2} for {1}")]
    UnknownFlag(usize, String, String),
    #[error("Dockerfile line {0}: flag --{1} requires a value")]
    FlagValue(usize, String),
    #[error("Dockerfile line {0}: flag --{1} given twice")]
    DuplicateFlag(usize, String),
    #[error("Dockerfile line {0}: ADD from remote URL {1:?} is not supported; download it first")]
    RemoteAdd(usize, String),
    #[error("Dockerfile line {0}: EXPOSE has invalid port {1:?}")]
    InvalidPort(usize, String),
    #[error("Dockerfile line {0}: {1} expects name=value, got {2:?}")]
    MissingEquals(usize, String, String),
    #[error("Dockerfile line {0}: {1} name must not be empty")]
    EmptyName(usize, String),
    #[error("Dockerfile line {0}: unterminated quote in {1:?}")]
    UnterminatedQuote(usize, String),
    #[error("Dockerfile line {0}: bad substitution in {1:?}")]
    BadSubstitution(usize, String),
    #[error("Dockerfile line {0}: variable {1} is required: {2}")]
    RequiredVariable(usize, String, String),
    #[error("Dockerfile line {0}: invalid stage name {1:?}: must match [a-z][a-z0-9._-]*")]
    InvalidStageName(usize, String),
    #[error("Dockerfile line {0}: stage name {1:?} is already used")]
    DuplicateStageName(usize, String),
    #[error("Dockerfile line {0}: invalid escape directive {1:?}: must be \\ or `")]
    InvalidEscape(usize, String),
    #[error("Dockerfile line {0}: the escape directive is given twice")]
    DuplicateEscape(usize),
}

type Result<T, Err = DockerfileError> = std::result::Result<T, Err>;

/// Parses `text`; `build_args` override the defaults of the ARGs the Dockerfile declares.
pub fn parse(text: &str, build_args: &BTreeMap<String, String>) -> Result<Dockerfile> {
    let (escape, lines) = logical_lines(text)?;
    let (global, scope) = (Scope::default(), Scope::default());
    let mut p = Parser {
        escape,
        build_args,
        global,
        scope,
        stages: vec![],
        stage_envs: vec![],
    };
    for (line, original) in &lines {
        p.instruction(*line, original)?;
    }
    if p.stages.is_empty() {
        return Err(E::NoStages);
    }
    Ok(Dockerfile { stages: p.stages })
}

/// Reads parser directives, then joins continuation lines and drops comments and blank lines.
fn logical_lines(text: &str) -> Result<(char, Vec<(usize, String)>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (mut escape, mut escape_seen, mut in_directives) = ('\\', false, true);
    let mut lines = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (number, raw) in (1..).zip(text.lines()) {
        let trimmed = raw.trim();
        if in_directives {
            match directive(trimmed) {
                Some((key, _)) if key == "escape" && escape_seen => {
                    return Err(E::DuplicateEscape(number));
                }
                Some((key, value)) if key == "escape" => {
                    escape = match value {
                        "\\" => '\\',
                        "`" => '`',
                        _ => return Err(E::InvalidEscape(number, value.into())),
                    };
                    escape_seen = true;
                    continue;
                }
                Some((key, _)) if key == "syntax" || key == "check" => continue,
                _ => in_directives = false,
            }
        }
        // Comment and blank lines are skipped, also inside a continuation.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let body = raw.trim_end_matches([' ', '\t']).strip_suffix(escape);
        let (start, mut joined) = current.take().unwrap_or((number, String::new()));
        let piece = body.unwrap_or(raw);
        joined.push_str(if joined.is_empty() {
            piece.trim_start()
        } else {
            piece
        });
        match body {
            Some(_) => current = Some((start, joined)),
            None => lines.push((start, joined.trim().to_string())),
        }
    }
    lines.extend(current.map(|(start, joined)| (start, joined.trim().to_string())));
    lines.retain(|(_, l)| !l.is_empty());
    Ok((escape, lines))
}

/// `# key = value` at the top of the file.
fn directive(line: &str) -> Option<(String, &str)> {
    let (key, value) = line.strip_prefix('#')?.split_once('=')?;
    let key = key.trim();
    let valid = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(|c| c.is_ascii_alphanumeric());
    valid.then(|| (key.to_ascii_lowercase(), value.trim()))
}

/// Variables visible to substitution: ENV wins over ARG, as in Docker.
#[derive(Debug, Default, Clone)]
struct Scope {
    env: BTreeMap<String, String>,
    args: BTreeMap<String, Option<String>>,
}

impl Scope {
    fn get(&self, name: &str) -> Option<&str> {
        match self.env.get(name) {
            Some(value) => Some(value),
            None => self.args.get(name).and_then(|v| v.as_deref()),
        }
    }
}

struct Parser<'a> {
    escape: char,
    build_args: &'a BTreeMap<String, String>,
    /// ARGs declared before the first FROM.
    global: Scope,
    /// Variables of the current stage.
    scope: Scope,
    stages: Vec<Stage>,
    /// Final ENV of each finished stage, inherited by `FROM <stage name>`.
    stage_envs: Vec<BTreeMap<String, String>>,
}

const KNOWN: [&str; 14] = [
    "FROM",
    "COPY",
    "ADD",
    "ENTRYPOINT",
    "CMD",
    "ENV",
    "LABEL",
    "WORKDIR",
    "EXPOSE",
    "ARG",
    "USER",
    "VOLUME",
    "STOPSIGNAL",
    "MAINTAINER",
];

impl Parser<'_> {
    fn instruction(&mut self, line: usize, original: &str) -> Result<()> {
        let (word, rest) = split_first_word(original);
        let keyword = word.to_ascii_uppercase();
        let kw = keyword.as_str();
        match kw {
            "RUN" => return Err(E::RunNotSupported(line)),
            "HEALTHCHECK" | "ONBUILD" | "SHELL" => return Err(E::NotSupported(line, keyword)),
            "FROM" => return self.from(line, rest),
            "ARG" if self.stages.is_empty() => return self.args(line, rest, true).map(drop),
            _ if !KNOWN.contains(&kw) => return Err(E::UnknownInstruction(line, word.into())),
            _ if self.stages.is_empty() => return Err(E::NoFrom(line, keyword)),
            _ if rest.is_empty() => {
                return Err(E::Arguments(line, keyword, "at least one argument"));
            }
            _ => {}
        }
        let kinds = match kw {
            "COPY" | "ADD" => vec![self.copy(line, kw, rest)?],
            "CMD" => vec![InstructionKind::Cmd(command(rest))],
            "ENTRYPOINT" => vec![InstructionKind::Entrypoint(command(rest))],
            "ENV" => {
                let pairs = self.pairs(line, kw, rest)?;
                self.scope.env.extend(pairs.iter().cloned());
                vec![InstructionKind::Env(pairs)]
            }
            "LABEL" => vec![InstructionKind::Label(self.pairs(line, kw, rest)?)],
            "MAINTAINER" => {
                vec![InstructionKind::Label(vec![(
                    "maintainer".into(),
                    rest.into(),
                )])]
            }
            "ARG" => self.args(line, rest, false)?,
            "EXPOSE" => {
                let mut ports = Vec::new();
                for word in split_words(rest, self.escape) {
                    for spec in self.expand(line, &word, true)?.split_whitespace() {
                        let port = expose_port(spec);
                        ports.push(port.ok_or_else(|| E::InvalidPort(line, spec.into()))?);
                    }
                }
                vec![InstructionKind::Expose(ports)]
            }
            "VOLUME" => {
                let paths = self.list(line, rest)?;
                if paths.iter().any(String::is_empty) {
                    return Err(E::Arguments(line, keyword, "non-empty paths"));
                }
                vec![InstructionKind::Volume(paths)]
            }
            _ => {
                let value = self.expand(line, rest, true)?;
                if value.is_empty() {
                    return Err(E::Arguments(line, keyword, "a non-empty value"));
                }
                vec![match kw {
                    "WORKDIR" => InstructionKind::Workdir(value),
                    "USER" => InstructionKind::User(value),
                    _ => InstructionKind::StopSignal(value),
                }]
            }
        };
        let stage = self.stages.last_mut().ok_or(E::NoFrom(line, keyword))?;
        for kind in kinds {
            let original = original.to_string();
            stage.instructions.push(Instruction {
                line,
                kind,
                original,
            });
        }
        Ok(())
    }

    /// `FROM [--platform=...] image [AS name]`; only global ARGs are visible here.
    fn from(&mut self, line: usize, rest: &str) -> Result<()> {
        let (_platform, rest) = self.flags(line, "FROM", rest, &["platform"])?;
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (image, name) = match words.as_slice() {
            [image] => (*image, None),
            [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (*image, Some(*name)),
            _ => {
                return Err(E::Arguments(
                    line,
                    "FROM".into(),
                    "an image and optionally AS name",
                ));
            }
        };
        let from = expand_in(&self.global, self.escape, line, image, true)?;
        if from.is_empty() {
            return Err(E::Arguments(line, "FROM".into(), "a non-empty image name"));
        }
        let name = name.map(str::to_ascii_lowercase);
        if let Some(name) = &name {
            let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid {
                return Err(E::InvalidStageName(line, name.clone()));
            }
            if self.stages.iter().any(|s| s.name.as_ref() == Some(name)) {
                return Err(E::DuplicateStageName(line, name.clone()));
            }
        }
        if !self.stages.is_empty() {
            self.stage_envs.push(std::mem::take(&mut self.scope.env));
        }
        let mut finished = self.stages.iter().zip(&self.stage_envs).rev();
        let base = finished.find(|(s, _)| s.name.as_deref() == Some(from.as_str()));
        let env = base.map(|(_, env)| env.clone()).unwrap_or_default();
        self.scope = Scope {
            env,
            args: BTreeMap::new(),
        };
        self.stages.push(Stage {
            from,
            name,
            line,
            instructions: vec![],
        });
        Ok(())
    }

    /// `ARG name[=default] ...`; before the first FROM they are global. A stage's `ARG name`
    /// without default takes the global value; build args override both.
    fn args(&mut self, line: usize, rest: &str, global: bool) -> Result<Vec<InstructionKind>> {
        let mut kinds = Vec::new();
        for word in split_words(rest, self.escape) {
            let scope = if global { &self.global } else { &self.scope };
            let (name, default) = match word.split_once('=') {
                Some((name, raw)) => (name, Some(expand_in(scope, self.escape, line, raw, true)?)),
                None => (word.as_str(), None),
            };
            if name.is_empty() {
                return Err(E::EmptyName(line, "ARG".into()));
            }
            let inherited = self
                .global
                .args
                .get(name)
                .cloned()
                .flatten()
                .filter(|_| !global);
            let value = self
                .build_args
                .get(name)
                .cloned()
                .or(default.clone())
                .or(inherited);
            let scope = if global {
                &mut self.global
            } else {
                &mut self.scope
            };
            scope.args.insert(name.to_string(), value);
            kinds.push(InstructionKind::Arg {
                name: name.to_string(),
                default,
            });
        }
        if kinds.is_empty() {
            return Err(E::Arguments(line, "ARG".into(), "at least one argument"));
        }
        Ok(kinds)
    }

    fn copy(&self, line: usize, kw: &str, rest: &str) -> Result<InstructionKind> {
        let allowed: &[&str] = match kw {
            "COPY" => &["chown", "chmod", "from", "link"],
            _ => &["chown", "chmod", "link"],
        };
        let (mut flags, rest) = self.flags(line, kw, rest, allowed)?;
        let words = self.list(line, rest)?;
        let Some((dest, sources)) = words.split_last().filter(|(_, s)| !s.is_empty()) else {
            return Err(E::Arguments(line, kw.into(), "at least two arguments"));
        };
        let (sources, dest) = (sources.to_vec(), dest.clone());
        let (chown, chmod) = (flags.remove("chown"), flags.remove("chmod"));
        if kw == "COPY" {
            let from = flags.remove("from");
            return Ok(InstructionKind::Copy {
                sources,
                dest,
                chown,
                chmod,
                from,
            });
        }
        let remote = |s: &&String| {
            let lower = s.to_ascii_lowercase();
            lower.starts_with("http://") || lower.starts_with("https://")
        };
        match sources.iter().find(remote) {
            Some(url) => Err(E::RemoteAdd(line, url.clone())),
            None => Ok(InstructionKind::Add {
                sources,
                dest,
                chown,
                chmod,
            }),
        }
    }

    /// Leading `--name=value` flags, values expanded; `--link` is accepted and dropped.
    fn flags<'t>(
        &self,
        line: usize,
        kw: &str,
        mut rest: &'t str,
        allowed: &[&str],
    ) -> Result<(BTreeMap<String, String>, &'t str)> {
        let mut flags = BTreeMap::new();
        let mut seen = Vec::new();
        while let Some(after) = rest.strip_prefix("--") {
            let (flag, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
            rest = tail.trim_start();
            if flag.is_empty() {
                break;
            }
            let (name, value) = flag
                .split_once('=')
                .map_or((flag, None), |(n, v)| (n, Some(v)));
            if !allowed.contains(&name) {
                return Err(E::UnknownFlag(line, kw.into(), name.into()));
            }
            if seen.contains(&name) {
                return Err(E::DuplicateFlag(line, name.into()));
            }
            seen.push(name);
            match value.filter(|v| !v.is_empty()) {
                _ if name == "link" => None,
                Some(value) => flags.insert(name.into(), self.expand(line, value, true)?),
                None => return Err(E::FlagValue(line, name.into())),
            };
        }
        Ok((flags, rest))
    }

    /// A JSON string array (expanded, no quote removal) or whitespace-separated shell words.
    fn list(&self, line: usize, rest: &str) -> Result<Vec<String>> {
        match json_array(rest) {
            Some(items) => items.iter().map(|w| self.expand(line, w, false)).collect(),
            None => {
                let words = split_words(rest, self.escape);
                words.iter().map(|w| self.expand(line, w, true)).collect()
            }
        }
    }

    /// `KEY=VALUE ...` or the legacy `KEY value with spaces`, all expanded with the variables in
    /// effect before the instruction.
    fn pairs(&self, line: usize, kw: &str, rest: &str) -> Result<Vec<(String, String)>> {
        let words = split_words(rest, self.escape);
        let mut raw = Vec::new();
        if words.first().is_some_and(|w| !w.contains('=')) {
            let (key, value) = split_first_word(rest);
            if value.is_empty() {
                return Err(E::MissingEquals(line, kw.into(), key.into()));
            }
            raw.push((key, value));
        } else {
            for word in &words {
                let pair = word.split_once('=');
                raw.push(pair.ok_or_else(|| E::MissingEquals(line, kw.into(), word.clone()))?);
            }
        }
        let mut pairs = Vec::new();
        for (key, value) in raw {
            let key = self.expand(line, key, true)?;
            if key.is_empty() {
                return Err(E::EmptyName(line, kw.into()));
            }
            pairs.push((key, self.expand(line, value, true)?));
        }
        Ok(pairs)
    }

    fn expand(&self, line: usize, text: &str, quotes: bool) -> Result<String> {
        expand_in(&self.scope, self.escape, line, text, quotes)
    }
}

fn split_first_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

/// Splits on unquoted whitespace, keeping quotes and escapes for the substitution pass.
fn split_words(text: &str, escape: char) -> Vec<String> {
    let (mut words, mut word, mut quote) = (Vec::new(), String::new(), None);
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            _ if c == escape && quote != Some('\'') => {
                word.push(c);
                word.extend(chars.next());
                continue;
            }
            Some(q) if c == q => quote = None,
            None if c.is_whitespace() => {
                words.extend((!word.is_empty()).then(|| std::mem::take(&mut word)));
                continue;
            }
            None if c == '"' || c == '\'' => quote = Some(c),
            _ => {}
        }
        word.push(c);
    }
    words.extend((!word.is_empty()).then_some(word));
    words
}

fn json_array(text: &str) -> Option<Vec<String>> {
    let text = text.trim();
    text.starts_with('[')
        .then(|| serde_json::from_str(text).ok())
        .flatten()
}

fn command(rest: &str) -> Command {
    json_array(rest).map_or_else(|| Command::Shell(rest.into()), Command::Exec)
}

/// `port[-port][/proto]` → `port[-port]/proto`, or None if invalid.
fn expose_port(spec: &str) -> Option<String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    let port = |p: &str| {
        let n = p.parse::<u16>().ok().filter(|n| *n > 0);
        n.filter(|_| p.chars().all(|c| c.is_ascii_digit()))
    };
    let ok = match ports.split_once('-') {
        Some((lo, hi)) => port(lo).zip(port(hi)).is_some_and(|(lo, hi)| lo <= hi),
        None => port(ports).is_some(),
    };
    let ok = ok && matches!(proto.as_str(), "tcp" | "udp" | "sctp");
    ok.then(|| format!("{ports}/{proto}"))
}

fn expand_in(scope: &Scope, escape: char, line: usize, text: &str, quotes: bool) -> Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use Command::{Exec, Shell};
    use InstructionKind as K;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        map(items).into_iter().collect()
    }

    fn s(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn ok_with(text: &str, build: &[(&str, &str)]) -> Dockerfile {
        parse(text, &map(build)).unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
    }

    /// Kinds of the last stage's instructions.
    fn kinds(text: &str) -> Vec<InstructionKind> {
        let file = ok_with(text, &[]);
        let stage = file.final_stage().expect("a stage");
        stage.instructions.iter().map(|i| i.kind.clone()).collect()
    }

    fn err(text: &str) -> String {
        match parse(text, &BTreeMap::new()) {
            Ok(file) => panic!("{text:?} should fail, got {file:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn copy(sources: &[&str], dest: &str) -> InstructionKind {
        let (chown, chmod, from) = (None, None, None);
        K::Copy {
            sources: s(sources),
            dest: dest.into(),
            chown,
            chmod,
            from,
        }
    }

    #[test]
    fn seed_dockerfile() {
        let file = ok_with(
            "FROM scratch\nADD kubia.wasm /app.wasm\nENTRYPOINT [\"/app.wasm\"]\n",
            &[],
        );
        let [stage] = file.stages.as_slice() else {
            panic!("one stage: {file:?}")
        };
        assert_eq!(
            (stage.from.as_str(), stage.line, stage.name.as_deref()),
            ("scratch", 1, None)
        );
        let [add, entrypoint] = stage.instructions.as_slice() else {
            panic!("{stage:?}")
        };
        assert_eq!(
            (add.line, add.original.as_str()),
            (2, "ADD kubia.wasm /app.wasm")
        );
        let (sources, dest) = (s(&["kubia.wasm"]), "/app.wasm".into());
        assert_eq!(
            add.kind,
            K::Add {
                sources,
                dest,
                chown: None,
                chmod: None
            }
        );
        assert_eq!(entrypoint.kind, K::Entrypoint(Exec(s(&["/app.wasm"]))));
        assert_eq!(entrypoint.line, 3);
    }

    #[test]
    fn busybox_dockerfile_with_and_without_build_arg() {
        let text = "FROM scratch\nARG TARGET=wasip2\nCOPY ${TARGET}/ /\n\
                    ENV PATH=/usr/local/bin:/usr/bin:/bin\nCMD [\"sh\"]";
        let file = ok_with(text, &[]);
        let ins = &file.stages[0].instructions;
        let target = Some("wasip2".to_string());
        assert_eq!(
            ins[0].kind,
            K::Arg {
                name: "TARGET".into(),
                default: target
            }
        );
        assert_eq!(ins[1].kind, copy(&["wasip2/"], "/"));
        assert_eq!(ins[1].original, "COPY ${TARGET}/ /");
        assert_eq!(
            ins[2].kind,
            K::Env(pairs(&[("PATH", "/usr/local/bin:/usr/bin:/bin")]))
        );
        assert_eq!(ins[3].kind, K::Cmd(Exec(s(&["sh"]))));
        let file = ok_with(text, &[("TARGET", "wasip1"), ("UNDECLARED", "x")]);
        assert_eq!(file.stages[0].instructions[1].kind, copy(&["wasip1/"], "/"));
    }

    #[test]
    fn continuations_comments_and_blank_lines() {
        let text = "# a comment\n\n  from   scratch  \nCOPY a \\\n  b \\\n# inside\n\n   \\\n  /dst/\n\n\
                    label a=1\n";
        let file = ok_with(text, &[]);
        let ins = &file.stages[0].instructions;
        assert_eq!(file.stages[0].line, 3);
        assert_eq!(
            (ins[0].line, ins[0].original.as_str()),
            (4, "COPY a   b      /dst/")
        );
        assert_eq!(ins[0].kind, copy(&["a", "b"], "/dst/"));
        assert_eq!(ins[1].line, 11);
        // A continuation running into the end of the file still ends the instruction.
        assert_eq!(kinds("FROM x\nUSER me \\"), vec![K::User("me".into())]);
        assert_eq!(
            kinds("\u{feff}FROM x\r\nUSER a \\\r\n b\r\n"),
            vec![K::User("a  b".into())]
        );
    }

    #[test]
    fn escape_directive() {
        let text = "# syntax=docker/dockerfile:1\n#  Escape = `\nFROM scratch\nCOPY C:\\src `\n  C:\\dst\n\
                    WORKDIR C:\\app\nENV A=`$HOME";
        let ks = kinds(text);
        assert_eq!(ks[0], copy(&["C:\\src"], "C:\\dst"));
        assert_eq!(ks[1], K::Workdir("C:\\app".into()));
        assert_eq!(ks[2], K::Env(pairs(&[("A", "$HOME")])));
        // After an ordinary comment, directives are plain comments.
        assert_eq!(
            kinds("# hello\n# escape=`\nFROM x\nUSER a `\n"),
            vec![K::User("a `".into())]
        );
        let e = err("# escape=x\nFROM a");
        assert_eq!(
            e,
            "Dockerfile line 1: invalid escape directive \"x\": must be \\ or `"
        );
        let e = err("# escape=`\n# escape=\\\nFROM a");
        assert_eq!(e, "Dockerfile line 2: the escape directive is given twice");
    }

    #[test]
    fn env_and_label_forms() {
        let ks = kinds(concat!(
            "FROM x\n",
            "ENV A=1 B=\"two words\" C='$A single' D=\\$A E=$A F=${A}x G=\"q\\\"$A\\x\"\n",
            "ENV G old style  value\n",
            "ENV A=changed H=$A\n",
            "ENV I=$A\n",
            "LABEL \"com.example.key\"=\"v a\" plain=yes\n",
            "LABEL legacy some value\n",
            "MAINTAINER Jane <jane@example.com>\n",
        ));
        let first = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "$A single"),
            ("D", "$A"),
        ];
        let first = [&first[..], &[("E", ""), ("F", "x"), ("G", "q\"\\x")]].concat();
        assert_eq!(ks[0], K::Env(pairs(&first)));
        assert_eq!(ks[1], K::Env(pairs(&[("G", "old style  value")])));
        // Values on one line see the variables from before that line.
        assert_eq!(ks[2], K::Env(pairs(&[("A", "changed"), ("H", "1")])));
        assert_eq!(ks[3], K::Env(pairs(&[("I", "changed")])));
        assert_eq!(
            ks[4],
            K::Label(pairs(&[("com.example.key", "v a"), ("plain", "yes")]))
        );
        assert_eq!(ks[5], K::Label(pairs(&[("legacy", "some value")])));
        assert_eq!(
            ks[6],
            K::Label(pairs(&[("maintainer", "Jane <jane@example.com>")]))
        );
    }

    #[test]
    fn substitution_forms() {
        let file = ok_with(
            concat!(
                "ARG V=img\nFROM $V:${T:-1}\nARG V\nARG E=\nENV S=set\n",
                "WORKDIR /${S}/${U:-dflt}/${S:-no}/${S:+alt}/${U:+no}/${E:-empty}/${E-unset}/${V}\n",
                "USER ${S:-${U:-nested}}\nSTOPSIGNAL \"SIG\"TERM\n",
                "VOLUME [\"/data/$S\", \"/x\"]\nVOLUME /a \"/b c\"\n",
                "EXPOSE 8080 53/UDP 9000-9001 ${P:-80}\nCMD echo $S\nENTRYPOINT [\"run\", \"$S\"]\n",
            ),
            &[],
        );
        assert_eq!(file.stages[0].from, "img:1");
        let ks: Vec<_> = file.stages[0]
            .instructions
            .iter()
            .map(|i| &i.kind)
            .collect();
        assert_eq!(ks[3], &K::Workdir("/set/dflt/set/alt//empty//img".into()));
        assert_eq!(ks[4], &K::User("set".into()));
        assert_eq!(ks[5], &K::StopSignal("SIGTERM".into()));
        assert_eq!(ks[6], &K::Volume(s(&["/data/set", "/x"])));
        assert_eq!(ks[7], &K::Volume(s(&["/a", "/b c"])));
        assert_eq!(
            ks[8],
            &K::Expose(s(&["8080/tcp", "53/udp", "9000-9001/tcp", "80/tcp"]))
        );
        // No substitution in CMD/ENTRYPOINT.
        assert_eq!(ks[9], &K::Cmd(Shell("echo $S".into())));
        assert_eq!(ks[10], &K::Entrypoint(Exec(s(&["run", "$S"]))));
        // Build args override declared defaults, also for global ARGs used in FROM.
        let file = ok_with("ARG V=a\nFROM $V\nARG V\nUSER $V", &[("V", "b")]);
        assert_eq!(file.stages[0].from, "b");
        assert_eq!(file.stages[0].instructions[1].kind, K::User("b".into()));
        // Global ARGs are not visible in a stage unless redeclared; ENV wins over ARG.
        assert_eq!(kinds("ARG V=a\nFROM x\nUSER u$V")[0], K::User("u".into()));
        assert_eq!(
            kinds("FROM x\nARG A=arg\nENV A=env\nUSER $A")[2],
            K::User("env".into())
        );
        let ks = kinds("FROM x\nARG A B=2\nUSER $B$A");
        assert_eq!(
            ks[0],
            K::Arg {
                name: "A".into(),
                default: None
            }
        );
        assert_eq!(ks[2], K::User("2".into()));
    }

    #[test]
    fn shell_and_exec_forms() {
        let cmd = |text: &str| kinds(&format!("FROM x\nCMD {text}")).remove(0);
        assert_eq!(cmd("[\"a\", \"b c\"]"), K::Cmd(Exec(s(&["a", "b c"]))));
        assert_eq!(cmd("[]"), K::Cmd(Exec(vec![])));
        assert_eq!(cmd("[a, b]"), K::Cmd(Shell("[a, b]".into())));
        assert_eq!(cmd("[\"a\", 1]"), K::Cmd(Shell("[\"a\", 1]".into())));
        let ks = kinds("FROM x\nENTRYPOINT /app.wasm --flag");
        assert_eq!(ks[0], K::Entrypoint(Shell("/app.wasm --flag".into())));
        let ks = kinds("FROM x\nCOPY [\"a b\", \"c\", \"/d/\"]\nCOPY \"x y\" '/z'");
        assert_eq!(ks, vec![copy(&["a b", "c"], "/d/"), copy(&["x y"], "/z")]);
    }

    #[test]
    fn copy_flags_and_stages() {
        let text = "FROM a AS Build\nENV K=v\nFROM build as final\n\
                    copy --link --chown=1:$K --chmod=755 --from=build x /y\nadd --chmod=644 f g /h/";
        let file = ok_with(text, &[]);
        assert_eq!(file.stages.len(), 2);
        assert_eq!(file.stages[0].name.as_deref(), Some("build"));
        let last = file.final_stage().expect("stage");
        assert_eq!(
            (last.from.as_str(), last.name.as_deref(), last.line),
            ("build", Some("final"), 3)
        );
        let (chown, chmod, from) = (Some("1:v".into()), Some("755".into()), Some("build".into()));
        let (sources, dest) = (s(&["x"]), "/y".to_string());
        let expected = K::Copy {
            sources,
            dest,
            chown,
            chmod,
            from,
        };
        assert_eq!(last.instructions[0].kind, expected);
        let (sources, dest, chmod) = (s(&["f", "g"]), "/h/".to_string(), Some("644".into()));
        assert_eq!(
            last.instructions[1].kind,
            K::Add {
                sources,
                dest,
                chown: None,
                chmod
            }
        );
        let file = ok_with("FROM --platform=wasi/wasm scratch", &[]);
        assert_eq!(file.stages[0].from, "scratch");
    }

    #[test]
    fn errors_with_line_numbers() {
        let run =
            "RUN is not supported: wasm images are assembled without running a shell; use COPY/ADD";
        let cases: &[(&str, usize, &str)] = &[
            ("FROM x\n\nRUN make", 3, run),
            ("ARG A\nrun x", 2, run),
            ("FROM x\nFORM y", 2, "unknown instruction \"FORM\""),
            ("# c\nCOPY a b", 2, "no FROM instruction before COPY"),
            (
                "FROM x\nHEALTHCHECK NONE",
                2,
                "HEALTHCHECK is not supported by wrun",
            ),
            (
                "FROM x\nonbuild COPY a b",
                2,
                "ONBUILD is not supported by wrun",
            ),
            (
                "FROM x\nSHELL [\"sh\"]",
                2,
                "SHELL is not supported by wrun",
            ),
            (
                "FROM x\nCOPY \\\n  a",
                2,
                "COPY requires at least two arguments",
            ),
            ("FROM x\nADD a", 2, "ADD requires at least two arguments"),
            ("FROM x\nCOPY", 2, "COPY requires at least one argument"),
            (
                "FROM x\nADD https://e.com/a /a",
                2,
                "ADD from remote URL \"https://e.com/a\" is not supported; download it first",
            ),
            (
                "FROM x\nADD HTTP://e.com/a /a",
                2,
                "ADD from remote URL \"HTTP://e.com/a\" is not supported; download it first",
            ),
            ("FROM x\nADD --from=a b c", 2, "unknown flag --from for ADD"),
            (
                "FROM x\nCOPY --bogus a b",
                2,
                "unknown flag --bogus for COPY",
            ),
            (
                "FROM x\nCOPY --chown a b",
                2,
                "flag --chown requires a value",
            ),
            (
                "FROM x\nCOPY --chmod=1 --chmod=2 a b",
                2,
                "flag --chmod given twice",
            ),
            (
                "FROM x\nEXPOSE 80 http",
                2,
                "EXPOSE has invalid port \"http\"",
            ),
            (
                "FROM x\nEXPOSE 70000",
                2,
                "EXPOSE has invalid port \"70000\"",
            ),
            ("FROM x\nEXPOSE +80", 2, "EXPOSE has invalid port \"+80\""),
            ("FROM x\nEXPOSE 0", 2, "EXPOSE has invalid port \"0\""),
            (
                "FROM x\nEXPOSE 80/icmp",
                2,
                "EXPOSE has invalid port \"80/icmp\"",
            ),
            (
                "FROM x\nEXPOSE 90-80",
                2,
                "EXPOSE has invalid port \"90-80\"",
            ),
            (
                "FROM x\nWORKDIR",
                2,
                "WORKDIR requires at least one argument",
            ),
            (
                "FROM x\nWORKDIR $NOPE",
                2,
                "WORKDIR requires a non-empty value",
            ),
            ("FROM x\nUSER \"\"", 2, "USER requires a non-empty value"),
            (
                "FROM x\nENV A=\"open",
                2,
                "unterminated quote in \"\\\"open\"",
            ),
            ("FROM x\nLABEL a='x", 2, "unterminated quote in \"'x\""),
            ("FROM x\nUSER ${A", 2, "bad substitution in \"${A\""),
            (
                "FROM x\nUSER ${A:-${B}",
                2,
                "bad substitution in \"${A:-${B}\"",
            ),
            ("FROM x\nUSER ${}", 2, "bad substitution in \"${}\""),
            ("FROM x\nUSER ${A/b}", 2, "bad substitution in \"${A/b}\""),
            (
                "FROM x\nUSER ${A:?needs A}",
                2,
                "variable A is required: needs A",
            ),
            ("FROM x\nUSER ${A?}", 2, "variable A is required: not set"),
            ("FROM x\nENV A=1 B", 2, "ENV expects name=value, got \"B\""),
            ("FROM x\nENV A", 2, "ENV expects name=value, got \"A\""),
            ("FROM x\nLABEL =v", 2, "LABEL name must not be empty"),
            ("FROM x\nARG =v", 2, "ARG name must not be empty"),
            ("FROM", 1, "FROM requires an image and optionally AS name"),
            (
                "FROM a b",
                1,
                "FROM requires an image and optionally AS name",
            ),
            ("FROM $UNSET", 1, "FROM requires a non-empty image name"),
            (
                "FROM a AS 1x",
                1,
                "invalid stage name \"1x\": must match [a-z][a-z0-9._-]*",
            ),
            (
                "FROM a AS b\n\nFROM c AS B",
                3,
                "stage name \"b\" is already used",
            ),
            ("FROM --os=x a", 1, "unknown flag --os for FROM"),
            (
                "FROM x\nVOLUME [\"\"]",
                2,
                "VOLUME requires non-empty paths",
            ),
        ];
        for (text, line, message) in cases {
            assert_eq!(
                err(text),
                format!("Dockerfile line {line}: {message}"),
                "for {text:?}"
            );
        }
        assert_eq!(err(""), "Dockerfile has no FROM instruction");
        let deep = format!(
            "FROM x\nUSER {}{}",
            "${A:-".repeat(100_000),
            "}".repeat(100_000)
        );
        assert!(err(&deep).starts_with("Dockerfile line 2: bad substitution in "));
        let nested = format!("FROM x\nUSER {}a{}", "${A:-".repeat(30), "}".repeat(30));
        assert_eq!(kinds(&nested), vec![K::User("a".into())]);
        assert_eq!(
            err("ARG A=1\n# only args"),
            "Dockerfile has no FROM instruction"
        );
    }

    #[test]
    fn garbage_never_panics() {
        const PIECES: &[&str] = &[
            "FROM",
            "COPY",
            "ADD",
            "ENV",
            "LABEL",
            "ARG",
            "CMD",
            "EXPOSE",
            "WORKDIR",
            "VOLUME",
            "USER",
            "STOPSIGNAL",
            "ENTRYPOINT",
            "MAINTAINER",
            " ",
            "\n",
            "\\",
            "`",
            "\\\n",
            "#",
            "# escape=`\n",
            "$",
            "${",
            "}",
            ":-",
            ":+",
            ":?",
            "-",
            "+",
            "=",
            "\"",
            "'",
            "[",
            "]",
            "\",\"",
            "--chown=",
            "--from=",
            "--link",
            "--",
            "AS",
            "a",
            "/",
            "80",
            "/udp",
            "é",
            "\r\n",
            "\t",
            "\u{feff}",
            "\0",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let build = map(&[("a", "x y"), ("A", "${")]);
        for round in 0..5_000 {
            let len = (next() % 40) as usize;
            let text = if round % 4 == 0 {
                let bytes: Vec<u8> = (0..len * 3).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                let mut text = String::from(if round % 2 == 0 { "FROM a\n" } else { "" });
                for _ in 0..len {
                    let i = (next() % PIECES.len() as u64) as usize;
                    text.push_str(PIECES.get(i).copied().unwrap_or(""));
                }
                text
            };
            if let Err(e) = parse(&text, &build) {
                assert!(e.to_string().starts_with("Dockerfile "), "{e}");
            }
        }
    }
}
