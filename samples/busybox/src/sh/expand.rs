//! Word expansion for the shell: `$VAR`, `${VAR}`, `$?`, positional
//! parameters, command substitution `$(...)`, arithmetic `$((...))`, and
//! field splitting of unquoted expansions.

use super::exec::Shell;
use super::lex::{Seg, Word};
use super::parse::Script;
use crate::ctx::Ctx;

impl Shell {
    fn lookup(&self, name: &str) -> String {
        match name {
            "?" => self.status.to_string(),
            "#" => self.args.len().saturating_sub(1).to_string(),
            "@" | "*" => self.args.get(1..).unwrap_or_default().join(" "),
            n if n.starts_with(|c: char| c.is_ascii_digit()) => n
                .parse::<usize>()
                .ok()
                .and_then(|i| self.args.get(i).cloned())
                .unwrap_or_default(),
            n => self.vars.get(n).cloned().unwrap_or_default(),
        }
    }

    /// The text a piece of a word stands for, and whether it was quoted.
    fn segment(&mut self, ctx: &mut Ctx<'_>, seg: &Seg) -> Result<(String, bool), String> {
        Ok(match seg {
            Seg::Lit { text, quoted } => (text.clone(), *quoted),
            Seg::Var { name, quoted } => (self.lookup(name), *quoted),
            Seg::Cmd { script, quoted } => (self.substitute(ctx, script), *quoted),
            Seg::Arith { expr, quoted } => {
                let text = self.expand_str(ctx, expr)?;
                let value = super::arith::eval(&text, &mut self.vars)?;
                (value.to_string(), *quoted)
            }
        })
    }

    /// Runs `script` in a subshell and returns its output without the
    /// trailing newlines.
    fn substitute(&mut self, ctx: &mut Ctx<'_>, script: &Script) -> String {
        let mut output = Vec::new();
        let mut sub = Ctx {
            stdin: &mut *ctx.stdin,
            stdout: &mut output,
            stderr: &mut *ctx.stderr,
            env: ctx.env,
        };
        let status = self.subshell(&mut sub, script);
        self.subst_status = Some(status);
        let mut text = String::from_utf8_lossy(&output).into_owned();
        text.truncate(text.trim_end_matches('\n').len());
        text
    }

    /// Expands words into fields: unquoted variables and substitutions are
    /// split on blanks and vanish when empty; quoted parts are kept whole.
    pub fn expand_words(
        &mut self,
        ctx: &mut Ctx<'_>,
        words: &[Word],
    ) -> Result<Vec<String>, String> {
        let mut fields = Vec::new();
        let positional = self.args.get(1..).unwrap_or_default().to_vec();
        for word in words {
            let is_at = |seg: &Seg| matches!(seg, Seg::Var { name, quoted: true } if name == "@");
            // `"$@"` alone, without parameters, is no field at all.
            if positional.is_empty()
                && word.0.iter().any(is_at)
                && word.0.iter().all(|seg| {
                    is_at(seg) || matches!(seg, Seg::Lit { text, quoted: true } if text.is_empty())
                })
            {
                continue;
            }
            let mut cur = String::new();
            let mut started = false;
            for seg in &word.0 {
                if let Seg::Lit { text, quoted } = seg {
                    cur.push_str(text);
                    started |= *quoted || !text.is_empty();
                    continue;
                }
                // `"$@"` is one field per positional parameter.
                if is_at(seg) {
                    for (i, arg) in positional.iter().enumerate() {
                        if i > 0 {
                            fields.push(std::mem::take(&mut cur));
                        }
                        cur.push_str(arg);
                        started = true;
                    }
                    continue;
                }
                let (value, quoted) = self.segment(ctx, seg)?;
                if quoted {
                    cur.push_str(&value);
                    started = true;
                    continue;
                }
                for c in value.chars() {
                    if matches!(c, ' ' | '\t' | '\n') {
                        if started {
                            fields.push(std::mem::take(&mut cur));
                            started = false;
                        }
                    } else {
                        cur.push(c);
                        started = true;
                    }
                }
            }
            if started {
                fields.push(cur);
            }
        }
        Ok(fields)
    }

    /// Expands a word into one string (assignments, redirection targets).
    pub fn expand_str(&mut self, ctx: &mut Ctx<'_>, word: &Word) -> Result<String, String> {
        let mut out = String::new();
        for seg in &word.0 {
            out.push_str(&self.segment(ctx, seg)?.0);
        }
        Ok(out)
    }
}
