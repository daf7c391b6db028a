//! Word expansion for the shell: `$VAR`, `${VAR}`, `$?`, positional
//! parameters, and field splitting of unquoted expansions.

use super::exec::Shell;
use super::lex::{Seg, Word};

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

    /// Expands words into fields: unquoted variables are split on blanks and
    /// vanish when empty; quoted parts are kept whole.
    pub fn expand_words(&self, words: &[Word]) -> Vec<String> {
        let mut fields = Vec::new();
        for word in words {
            let mut cur = String::new();
            let mut started = false;
            for seg in &word.0 {
                match seg {
                    Seg::Lit { text, quoted } => {
                        cur.push_str(text);
                        started |= *quoted || !text.is_empty();
                    }
                    Seg::Var { name, quoted: true } => {
                        cur.push_str(&self.lookup(name));
                        started = true;
                    }
                    Seg::Var {
                        name,
                        quoted: false,
                    } => {
                        for c in self.lookup(name).chars() {
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
                }
            }
            if started {
                fields.push(cur);
            }
        }
        fields
    }

    /// Expands a word into one string (assignments, redirection targets).
    pub fn expand_str(&self, word: &Word) -> String {
        word.0
            .iter()
            .map(|seg| match seg {
                Seg::Lit { text, .. } => text.clone(),
                Seg::Var { name, .. } => self.lookup(name),
            })
            .collect()
    }
}
