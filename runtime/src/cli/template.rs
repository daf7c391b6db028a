//! `--format` as the docker CLI takes it: `table` (the verb's own columns),
//! `table TEMPLATE` (a table whose columns the template picks, with
//! Docker's header names), `json` (one JSON object per line), or a Go
//! template rendered once per object (`{{.Names}}`, `{{json .Config}}`).
//!
//! Templates are Go's, through the `gtmpl` crate, with the functions the
//! docker CLI adds: `json`, `join`, `split`, `lower`, `upper`, `title`,
//! `truncate` and `pad`.

use std::collections::HashMap;
use std::io::Write as _;

use anyhow::{Context as _, Result, anyhow, bail};
use gtmpl::{FuncError, Template, Value as Tv};
use serde_json::Value;

/// What `--format` asked for.
#[derive(Debug)]
pub enum Format {
    /// No `--format`, or `table`: the verb's usual output.
    Default,
    /// `table TEMPLATE`: a header row, then one row per object, aligned.
    Table(Compiled),
    /// `json`: each object as compact JSON, one per line.
    Json,
    /// A template rendered for each object, each followed by a newline.
    Template(Compiled),
}

/// A parsed template and its text.
pub struct Compiled {
    template: Template,
    text: String,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "template {:?}", self.text)
    }
}

impl Format {
    /// Parses a `--format` value.
    pub fn parse(raw: Option<&str>) -> Result<Self> {
        let Some(raw) = raw else {
            return Ok(Self::Default);
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed == "table" {
            return Ok(Self::Default);
        }
        if trimmed == "json" {
            return Ok(Self::Json);
        }
        if let Some(rest) = trimmed.strip_prefix("table ") {
            return Ok(Self::Table(compile(rest)?));
        }
        Ok(Self::Template(compile(raw)?))
    }

    /// Whether the verb prints its usual output.
    pub fn is_default(&self) -> bool {
        matches!(self, Self::Default)
    }

    /// Prints `rows` (each a JSON object of the verb's fields) in this
    /// format. `headers` names the table column of each field, as the
    /// docker CLI does (`ID` is `CONTAINER ID` for containers); a field
    /// that is not listed gets its name in capitals. Nothing is printed
    /// for [`Format::Default`]: the verb prints its own table.
    pub fn print(&self, rows: &[Value], headers: &[(&str, &str)]) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match self {
            Self::Default => {}
            Self::Json => {
                for r in rows {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                }
            }
            Self::Template(t) => {
                for r in rows {
                    writeln!(out, "{}", render(t, r, true)?)?;
                }
            }
            Self::Table(t) => {
                let header = header_row(t, headers)?;
                let mut tw = tabwriter::TabWriter::new(out).minwidth(10).padding(3);
                writeln!(tw, "{header}")?;
                for r in rows {
                    writeln!(tw, "{}", render(t, r, true)?)?;
                }
                tw.flush()?;
            }
        }
        Ok(())
    }

    /// Prints whole objects (`inspect`, `info`): a template sees each
    /// object as a map, so a missing field prints `<no value>` as Docker's
    /// does; `json` prints each compactly. A table makes no sense here.
    pub fn print_objects(&self, objects: &[Value]) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match self {
            Self::Default => {}
            Self::Json => {
                for o in objects {
                    writeln!(out, "{}", serde_json::to_string(o)?)?;
                }
            }
            Self::Template(t) | Self::Table(t) => {
                for o in objects {
                    writeln!(out, "{}", render(t, o, false)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Compiles a template with Docker's functions. As the docker CLI does, a
/// literal `\t` or `\n` in the text stands for a tab or a newline.
fn compile(text: &str) -> Result<Compiled> {
    let text = text.trim().replace("\\t", "\t").replace("\\n", "\n");
    let mut t = Template::default();
    t.add_funcs(&[
        ("json", json as gtmpl::Func),
        ("join", join),
        ("split", split),
        ("lower", lower),
        ("upper", upper),
        ("title", title),
        ("truncate", truncate),
        ("pad", pad),
    ]);
    t.parse(text.as_str())
        .map_err(|e| anyhow!("invalid --format template {text:?}: {e}"))?;
    Ok(Compiled { template: t, text })
}

/// Renders `t` for one object. Rows (`strict`) are like the docker CLI's
/// Go structs: a field they lack is an error. Objects are maps.
fn render(t: &Compiled, value: &Value, strict: bool) -> Result<String> {
    let ctx = gtmpl::Context::from(to_template(value, strict));
    t.template.render(&ctx).map_err(|e| match e {
        gtmpl::error::ExecError::NoFiledFor(field, _) => {
            anyhow!("--format: can't evaluate field {field}: there is no such field")
        }
        other => anyhow!("--format: {other}"),
    })
}

/// The header row of a `table` template: the template rendered against an
/// object whose every field holds its column's name.
fn header_row(t: &Compiled, headers: &[(&str, &str)]) -> Result<String> {
    let names: HashMap<String, Tv> = headers
        .iter()
        .map(|(field, header)| ((*field).to_string(), Tv::from(*header)))
        .collect();
    let mut with_defaults = names.clone();
    for name in referenced_fields(t) {
        with_defaults
            .entry(name.clone())
            .or_insert_with(|| Tv::from(name.to_uppercase()));
    }
    t.template
        .render(&gtmpl::Context::from(Tv::Map(with_defaults)))
        .context("--format: cannot render the table's header")
}

/// The field names a template's text mentions (`.Names`, `.State`): each
/// identifier after a dot.
fn referenced_fields(t: &Compiled) -> Vec<String> {
    let text = &t.text;
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'.' {
            continue;
        }
        let name: String = text[i + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) {
            out.push(name);
        }
    }
    out
}

/// JSON into a template value: objects become maps (rows' top level an
/// object, whose missing fields are errors), numbers stay integers where
/// they are.
fn to_template(v: &Value, strict_top: bool) -> Tv {
    match v {
        Value::Null => Tv::Nil,
        Value::Bool(b) => Tv::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Tv::from(i),
            (_, Some(u), _) => Tv::from(u),
            (_, _, Some(f)) => Tv::from(f),
            _ => Tv::Nil,
        },
        Value::String(s) => Tv::from(s.as_str()),
        Value::Array(a) => Tv::Array(a.iter().map(|x| to_template(x, false)).collect()),
        Value::Object(o) => {
            let m = o
                .iter()
                .map(|(k, x)| (k.clone(), to_template(x, false)))
                .collect();
            if strict_top {
                Tv::Object(m)
            } else {
                Tv::Map(m)
            }
        }
    }
}

/// A template value back into JSON, for the `json` function.
fn from_template(v: &Tv) -> Value {
    match v {
        Tv::NoValue | Tv::Nil | Tv::Function(_) => Value::Null,
        Tv::Bool(b) => Value::Bool(*b),
        Tv::String(s) => Value::String(s.clone()),
        Tv::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_u64().map(Value::from))
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Null),
        Tv::Array(a) => Value::Array(a.iter().map(from_template).collect()),
        Tv::Object(o) | Tv::Map(o) => {
            // Sorted keys, as Go marshals maps.
            let sorted: std::collections::BTreeMap<_, _> = o.iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, x)| (k.clone(), from_template(x)))
                    .collect(),
            )
        }
    }
}

fn args<const N: usize>(name: &str, a: &[Tv]) -> Result<[Tv; N], FuncError> {
    <[Tv; N]>::try_from(a.to_vec()).map_err(|_| FuncError::ExactlyXArgs(name.into(), N))
}

fn string(name: &str, v: &Tv) -> Result<String, FuncError> {
    match v {
        Tv::String(s) => Ok(s.clone()),
        Tv::Number(n) => Ok(n.to_string()),
        Tv::Bool(b) => Ok(b.to_string()),
        Tv::Nil | Tv::NoValue => Ok(String::new()),
        _ => Err(FuncError::Generic(format!("{name}: expected a string"))),
    }
}

fn integer(name: &str, v: &Tv) -> Result<usize, FuncError> {
    match v {
        Tv::Number(n) => n
            .as_u64()
            .and_then(|u| usize::try_from(u).ok())
            .ok_or_else(|| FuncError::Generic(format!("{name}: expected a count"))),
        _ => Err(FuncError::Generic(format!("{name}: expected a count"))),
    }
}

fn json(a: &[Tv]) -> Result<Tv, FuncError> {
    let [v] = args("json", a)?;
    serde_json::to_string(&from_template(&v))
        .map(Tv::from)
        .map_err(|e| FuncError::Generic(format!("json: {e}")))
}

fn join(a: &[Tv]) -> Result<Tv, FuncError> {
    let [list, sep] = args("join", a)?;
    let sep = string("join", &sep)?;
    let parts = match list {
        Tv::Array(items) => items
            .iter()
            .map(|i| string("join", i))
            .collect::<Result<Vec<_>, _>>()?,
        other => vec![string("join", &other)?],
    };
    Ok(Tv::from(parts.join(&sep)))
}

fn split(a: &[Tv]) -> Result<Tv, FuncError> {
    let [s, sep] = args("split", a)?;
    let (s, sep) = (string("split", &s)?, string("split", &sep)?);
    Ok(Tv::Array(s.split(sep.as_str()).map(Tv::from).collect()))
}

fn lower(a: &[Tv]) -> Result<Tv, FuncError> {
    let [s] = args("lower", a)?;
    Ok(Tv::from(string("lower", &s)?.to_lowercase()))
}

fn upper(a: &[Tv]) -> Result<Tv, FuncError> {
    let [s] = args("upper", a)?;
    Ok(Tv::from(string("upper", &s)?.to_uppercase()))
}

fn title(a: &[Tv]) -> Result<Tv, FuncError> {
    let [s] = args("title", a)?;
    let s = string("title", &s)?;
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    Ok(Tv::from(out))
}

fn truncate(a: &[Tv]) -> Result<Tv, FuncError> {
    let [s, n] = args("truncate", a)?;
    let (s, n) = (string("truncate", &s)?, integer("truncate", &n)?);
    Ok(Tv::from(s.chars().take(n).collect::<String>()))
}

fn pad(a: &[Tv]) -> Result<Tv, FuncError> {
    let [s, left, right] = args("pad", a)?;
    let s = string("pad", &s)?;
    let (left, right) = (integer("pad", &left)?, integer("pad", &right)?);
    Ok(Tv::from(format!(
        "{}{s}{}",
        " ".repeat(left),
        " ".repeat(right)
    )))
}

/// The cells of a verb's own table: the named `columns` of each row of
/// `--format` fields, so that both outputs come from the same rows.
pub fn cells(rows: &[Value], columns: &[&str]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| r[*c].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .collect()
}

/// `--format` and `--quiet` together are the docker CLI's error too.
pub fn refuse_quiet_with_format(quiet: bool, format: &Format) -> Result<()> {
    if quiet && !format.is_default() {
        bail!("--quiet and --format cannot be used together");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(format: &str, v: Value) -> String {
        let Format::Template(t) = Format::parse(Some(format)).expect("parses") else {
            panic!("not a template: {format}");
        };
        render(&t, &v, false).expect("renders")
    }

    #[test]
    fn fields_and_functions() {
        let v = json!({"Names": "web", "State": {"Status": "running", "Pid": 7},
                       "Config": {"Cmd": ["sh", "-c", "x"], "Labels": {"a": "b"}}});
        assert_eq!(one("{{.Names}}", v.clone()), "web");
        assert_eq!(
            one("{{.State.Status}} {{.State.Pid}}", v.clone()),
            "running 7"
        );
        assert_eq!(one("{{json .Config.Cmd}}", v.clone()), r#"["sh","-c","x"]"#);
        assert_eq!(one("{{join .Config.Cmd \" \"}}", v.clone()), "sh -c x");
        assert_eq!(one("{{index .Config.Labels \"a\"}}", v.clone()), "b");
        assert_eq!(
            one("{{upper .Names}}\\t{{len .Config.Cmd}}", v.clone()),
            "WEB\t3"
        );
        assert_eq!(one("{{.Missing}}", v.clone()), "<no value>");
        assert_eq!(one("{{range .Config.Cmd}}[{{.}}]{{end}}", v), "[sh][-c][x]");
    }

    #[test]
    fn rows_are_strict_and_tables_get_headers() {
        let Format::Table(t) =
            Format::parse(Some("table {{.ID}}\\t{{.Names}}\\t{{.Extra}}")).expect("parses")
        else {
            panic!("not a table");
        };
        let h = header_row(&t, &[("ID", "CONTAINER ID"), ("Names", "NAMES")]).expect("header");
        assert_eq!(h, "CONTAINER ID\tNAMES\tEXTRA");
        let e = render(&t, &json!({"ID": "1", "Names": "n"}), true).expect_err("strict");
        assert!(e.to_string().contains("Extra"), "{e}");
    }

    #[test]
    fn formats_parse() {
        assert!(Format::parse(None).expect("none").is_default());
        assert!(Format::parse(Some("table")).expect("table").is_default());
        assert!(matches!(Format::parse(Some("json")), Ok(Format::Json)));
        let e = Format::parse(Some("{{.Names")).expect_err("bad template");
        assert!(e.to_string().contains("invalid --format"), "{e}");
    }
}
