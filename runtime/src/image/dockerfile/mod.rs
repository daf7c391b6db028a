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

mod expand;

use expand::expand_in;

#[cfg(test)]
mod tests;
