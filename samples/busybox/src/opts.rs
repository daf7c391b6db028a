//! A tiny getopt: splits an applet's arguments into single-letter options
//! (combinable, `-lp 80` or `-l -p80`) and operands, so applets share one parser.

/// Parsed command line: options in order of appearance, then operands.
#[derive(Debug, Default)]
pub struct Opts {
    pub flags: Vec<(char, Option<String>)>,
    pub operands: Vec<String>,
}

impl Opts {
    /// Whether option `c` was given.
    pub fn has(&self, c: char) -> bool {
        self.flags.iter().any(|(f, _)| *f == c)
    }

    /// The value of the last occurrence of option `c`.
    pub fn value(&self, c: char) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| *f == c)
            .and_then(|(_, v)| v.as_deref())
    }
}

/// Parses `args`. `flags` lists the options without a value, `valued` those
/// that take one. Options may appear anywhere before `--`; `-` alone is an
/// operand. Errors are messages ready to be printed after the applet name.
pub fn parse(args: &[String], flags: &str, valued: &str) -> Result<Opts, String> {
    let mut opts = Opts::default();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            opts.operands.extend(iter.cloned());
            break;
        }
        let Some(letters) = arg.strip_prefix('-').filter(|l| !l.is_empty()) else {
            opts.operands.push(arg.clone());
            continue;
        };
        for (i, c) in letters.char_indices() {
            if valued.contains(c) {
                let rest = &letters[i + c.len_utf8()..];
                let value = if rest.is_empty() {
                    iter.next()
                        .cloned()
                        .ok_or_else(|| format!("option requires an argument -- '{c}'"))?
                } else {
                    rest.to_string()
                };
                opts.flags.push((c, Some(value)));
                break;
            } else if flags.contains(c) {
                opts.flags.push((c, None));
            } else {
                return Err(format!("unrecognized option '-{c}'"));
            }
        }
    }
    Ok(opts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn combined_and_valued() {
        let o = parse(&v(&["-lp", "80", "x", "-a", "--", "-b"]), "la", "p").unwrap();
        assert!(o.has('l') && o.has('a'));
        assert_eq!(o.value('p'), Some("80"));
        assert_eq!(o.operands, v(&["x", "-b"]));
        let o = parse(&v(&["-O-", "-"]), "", "O").unwrap();
        assert_eq!(o.value('O'), Some("-"));
        assert_eq!(o.operands, v(&["-"]));
    }

    #[test]
    fn errors() {
        assert!(parse(&v(&["-x"]), "l", "").is_err());
        assert!(parse(&v(&["-p"]), "", "p").is_err());
    }
}
