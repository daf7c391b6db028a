//! Label and field selectors: the `labelSelector` and `fieldSelector` query
//! parameters of lists, watches and deletecollection, with the syntax,
//! validation and error texts of the Kubernetes API server; and label
//! selectors from `metav1.LabelSelector`, as controllers' `spec.selector`.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as MetaLabelSelector;
use serde_json::Value;

use super::status::KubeError;

// ---------------------------------------------------------------------------
// Label selectors
// ---------------------------------------------------------------------------

/// How a requirement relates a label to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOp {
    /// `k=v`, `k==v`, `k in (a,b)`: the label is set to one of the values.
    In,
    /// `k!=v`, `k notin (a,b)`: the label is unset or set to none of the values.
    NotIn,
    /// `k`: the label is set.
    Exists,
    /// `!k`: the label is unset.
    DoesNotExist,
    /// `k>5`: the label is set to an integer greater than the value.
    GreaterThan,
    /// `k<5`: the label is set to an integer less than the value.
    LessThan,
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: LabelOp,
    /// Sorted and without duplicates; empty for `Exists`/`DoesNotExist`.
    pub values: Vec<String>,
    /// Whether the requirement was written with `=`/`==`/`!=` rather than
    /// `in`/`notin` (only how it is printed).
    exact: bool,
}

impl Requirement {
    /// Whether a set of labels satisfies the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            LabelOp::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            LabelOp::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            LabelOp::Exists => value.is_some(),
            LabelOp::DoesNotExist => value.is_none(),
            LabelOp::GreaterThan | LabelOp::LessThan => {
                let (Some(have), Some(want)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == LabelOp::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.values.first().map(String::as_str).unwrap_or("");
        match self.op {
            LabelOp::Exists => write!(f, "{}", self.key),
            LabelOp::DoesNotExist => write!(f, "!{}", self.key),
            LabelOp::GreaterThan => write!(f, "{}>{first}", self.key),
            LabelOp::LessThan => write!(f, "{}<{first}", self.key),
            LabelOp::In if self.exact && self.values.len() == 1 => {
                write!(f, "{}={first}", self.key)
            }
            LabelOp::NotIn if self.exact && self.values.len() == 1 => {
                write!(f, "{}!={first}", self.key)
            }
            LabelOp::In => write!(f, "{} in ({})", self.key, self.values.join(",")),
            LabelOp::NotIn => write!(f, "{} notin ({})", self.key, self.values.join(",")),
        }
    }
}

/// A label selector: requirements that must all hold. The empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses the `labelSelector` query parameter:
    /// `app=kubia,tier!=db,env in (prod,qa),!canary,release`.
    pub fn parse(s: &str) -> Result<LabelSelector, KubeError> {
        let requirements = Parser {
            tokens: lex(s),
            pos: 0,
        }
        .parse()
        .map_err(KubeError::BadRequest)?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// The selector of a `metav1.LabelSelector` (a controller's
    /// `spec.selector`): `matchLabels` and `matchExpressions` ANDed. An
    /// empty selector matches everything; a controller whose selector is
    /// null (absent) selects nothing, which the caller decides.
    pub fn from_meta(sel: &MetaLabelSelector) -> Result<Self, KubeError> {
        let mut requirements = Vec::new();
        for (key, value) in sel.match_labels.iter().flatten() {
            validate_key(key).map_err(|e| bad_selector(&e))?;
            validate_value(key, 0, value).map_err(|e| bad_selector(&e))?;
            requirements.push(Requirement {
                key: key.clone(),
                op: LabelOp::In,
                values: vec![value.clone()],
                exact: true,
            });
        }
        for (i, expr) in sel.match_expressions.iter().flatten().enumerate() {
            let op = match expr.operator.as_str() {
                "In" => LabelOp::In,
                "NotIn" => LabelOp::NotIn,
                "Exists" => LabelOp::Exists,
                "DoesNotExist" => LabelOp::DoesNotExist,
                other => {
                    return Err(bad_selector(&format!(
                        "matchExpressions[{i}].operator: \"{other}\" is not a valid label \
                         selector operator (supported: In, NotIn, Exists, DoesNotExist)"
                    )));
                }
            };
            let values: Vec<String> = expr.values.clone().unwrap_or_default();
            let requirement = new_requirement(&expr.key, op, values, false)
                .map_err(|e| bad_selector(&format!("matchExpressions[{i}]: {e}")))?;
            requirements.push(requirement);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        // The API server keeps requirements sorted by key.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirements (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether the object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.is_empty() || self.matches(&labels_of(obj))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// The `metadata.labels` of an object; labels whose values are not strings
/// are left out.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn bad_selector(msg: &str) -> KubeError {
    KubeError::BadRequest(format!("invalid label selector: {msg}"))
}

fn new_requirement(
    key: &str,
    op: LabelOp,
    mut values: Vec<String>,
    exact: bool,
) -> Result<Requirement, String> {
    validate_key(key)?;
    match op {
        LabelOp::In | LabelOp::NotIn => {
            if values.is_empty() {
                return Err(format!(
                    "values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty (key \"{key}\")"
                ));
            }
        }
        LabelOp::Exists | LabelOp::DoesNotExist => {
            if !values.is_empty() {
                return Err(format!(
                    "values: Invalid value: {values:?}: values set must be empty for exists and does not exist (key \"{key}\")"
                ));
            }
        }
        LabelOp::GreaterThan | LabelOp::LessThan => {
            let [v] = values.as_slice() else {
                return Err(format!(
                    "values: Invalid value: {values:?}: for 'Gt', 'Lt' operators, exactly one value is required (key \"{key}\")"
                ));
            };
            if v.parse::<i64>().is_err() {
                return Err(format!(
                    "values[0]: Invalid value: \"{v}\": for 'Gt', 'Lt' operators, the value must be an integer (key \"{key}\")"
                ));
            }
        }
    }
    for (i, v) in values.iter().enumerate() {
        validate_value(key, i, v)?;
    }
    values.sort();
    values.dedup();
    Ok(Requirement {
        key: key.to_string(),
        op,
        values,
        exact,
    })
}

const NAME_FMT: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', \
     and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  \
     or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const VALUE_FMT: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character \
     (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is \
     '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

const PREFIX_FMT: &str = "prefix part a lowercase RFC 1123 subdomain must consist of lower \
     case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric \
     character (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// A lowercase RFC 1123 subdomain of at most 253 characters.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            match (b.first(), b.last()) {
                (Some(first), Some(last)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && b.iter()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                }
                _ => false,
            }
        })
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at
/// most 63 characters.
fn validate_key(key: &str) -> Result<(), String> {
    let invalid = |why: &str| format!("key: Invalid value: \"{key}\": {why}");
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            if name.contains('/') {
                return Err(invalid(
                    "a qualified name must consist of alphanumeric characters, '-', '_' or '.', \
                     and must start and end with an alphanumeric character with an optional DNS \
                     subdomain prefix and '/' (e.g. 'example.com/MyName')",
                ));
            }
            if prefix.is_empty() {
                return Err(invalid("prefix part must be non-empty"));
            }
            if !is_dns_subdomain(prefix) {
                return Err(invalid(PREFIX_FMT));
            }
            name
        }
        None => key,
    };
    if name.is_empty() {
        return Err(invalid("name part must be non-empty"));
    }
    if name.len() > 63 {
        return Err(invalid("name part must be no more than 63 bytes"));
    }
    if !is_label_name(name) {
        return Err(invalid(NAME_FMT));
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the name alphabet.
fn validate_value(key: &str, index: usize, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err(format!(
            "values[{index}][{key}]: Invalid value: \"{value}\": must be no more than 63 bytes"
        ));
    }
    if !is_label_name(value) {
        return Err(format!(
            "values[{index}][{key}]: Invalid value: \"{value}\": {VALUE_FMT}"
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A key or value; `in` and `notin` are identifiers too, and the
    /// parser reads them as operators where one is expected.
    Ident(String),
    Not,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn text(&self) -> &str {
        match self {
            Token::Ident(s) => s,
            Token::Not => "!",
            Token::Eq => "=",
            Token::DoubleEq => "==",
            Token::NotEq => "!=",
            Token::Gt => ">",
            Token::Lt => "<",
            Token::Open => "(",
            Token::Close => ")",
            Token::Comma => ",",
            Token::End => "",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        if is_special(c) {
            chars.next();
            let next = chars.peek().copied();
            let token = match (c, next) {
                ('!', Some('=')) => {
                    chars.next();
                    Token::NotEq
                }
                ('=', Some('=')) => {
                    chars.next();
                    Token::DoubleEq
                }
                ('!', _) => Token::Not,
                ('=', _) => Token::Eq,
                ('>', _) => Token::Gt,
                ('<', _) => Token::Lt,
                ('(', _) => Token::Open,
                (')', _) => Token::Close,
                _ => Token::Comma,
            };
            tokens.push(token);
            continue;
        }
        let mut ident = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || is_special(c) {
                break;
            }
            ident.push(c);
            chars.next();
        }
        tokens.push(Token::Ident(ident));
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Token::End => return Ok(out),
                Token::Ident(_) | Token::Not => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    out.push(r);
                    match self.next() {
                        Token::End => return Ok(out),
                        Token::Comma => match self.peek() {
                            Token::Ident(_) | Token::Not => {}
                            t => {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.text()
                                ));
                            }
                        },
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.text()
                            ));
                        }
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.text()
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut negated = false;
        let mut tok = self.next();
        if tok == Token::Not {
            negated = true;
            tok = self.next();
        }
        let Token::Ident(key) = tok else {
            return Err(format!("found '{}', expected: identifier", tok.text()));
        };
        validate_key(&key)?;
        if matches!(self.peek(), Token::End | Token::Comma) {
            let op = if negated {
                LabelOp::DoesNotExist
            } else {
                LabelOp::Exists
            };
            return new_requirement(&key, op, Vec::new(), false);
        }
        if negated {
            // `!k` takes no operator: what follows is reported by the caller
            // as it expects `,` or the end.
            return new_requirement(&key, LabelOp::DoesNotExist, Vec::new(), false);
        }
        let op_tok = self.next();
        let (op, exact) = match &op_tok {
            Token::Ident(s) if s == "in" => (LabelOp::In, false),
            Token::Ident(s) if s == "notin" => (LabelOp::NotIn, false),
            Token::Eq | Token::DoubleEq => (LabelOp::In, true),
            Token::NotEq => (LabelOp::NotIn, true),
            Token::Gt => (LabelOp::GreaterThan, true),
            Token::Lt => (LabelOp::LessThan, true),
            t => {
                return Err(format!(
                    "found '{}', expected: {BINARY_OPERATORS}",
                    t.text()
                ));
            }
        };
        let values = if exact {
            self.exact_value()?
        } else {
            self.value_list()?
        };
        new_requirement(&key, op, values, exact)
    }

    /// The value after `=`, `==`, `!=`, `>`, `<`: one identifier, or
    /// nothing (the empty value).
    fn exact_value(&mut self) -> Result<Vec<String>, String> {
        match self.peek() {
            Token::End | Token::Comma => Ok(vec![String::new()]),
            _ => match self.next() {
                Token::Ident(v) => Ok(vec![v]),
                t => Err(format!("found '{}', expected: identifier", t.text())),
            },
        }
    }

    /// `(a,b,c)`; empty entries stand for the empty value.
    fn value_list(&mut self) -> Result<Vec<String>, String> {
        let t = self.next();
        if t != Token::Open {
            return Err(format!("found '{}', expected: '('", t.text()));
        }
        let mut values = Vec::new();
        // Whether the last thing read was a value (rather than `(` or `,`).
        let mut after_value = false;
        loop {
            match self.next() {
                Token::Ident(v) if !after_value => {
                    values.push(v);
                    after_value = true;
                }
                Token::Comma => {
                    if !after_value {
                        values.push(String::new());
                    }
                    after_value = false;
                }
                Token::Close => {
                    if !after_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                t if after_value => {
                    return Err(format!("found '{}', expected: ',' or ')'", t.text()));
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        t.text()
                    ));
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Field selectors
// ---------------------------------------------------------------------------

/// `=`/`==` or `!=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOp {
    Equals,
    NotEquals,
}

/// One term of a field selector: `status.phase!=Running`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub op: FieldOp,
    /// Unescaped.
    pub value: String,
}

/// A field selector: terms that must all hold. The empty selector matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// The fields every kind can be selected by.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// The fields a kind can be selected by besides the common ones.
fn kind_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Pod" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "Event" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "Secret" => &["type"],
        "Namespace" => &["status.phase"],
        "Node" => &["spec.unschedulable"],
        "ReplicationController" | "ReplicaSet" => &["status.replicas"],
        "Job" => &["status.successful"],
        "Service" => &["spec.clusterIP", "spec.type"],
        _ => &[],
    }
}

/// The value of a field as field selectors compare it: a string, or the
/// empty string when the field is unset.
fn field_value(kind: &str, field: &str, obj: &Value) -> String {
    let at = |path: &[&str]| -> Option<&Value> {
        let mut v = obj;
        for p in path {
            v = v.get(p)?;
        }
        Some(v)
    };
    let text = |path: &[&str]| -> String {
        match at(path) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    // Fields Kubernetes renders from a Go bool or int: unset reads as false/0.
    let boolean = |path: &[&str]| -> String {
        at(path)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string()
    };
    let integer =
        |path: &[&str]| -> String { at(path).and_then(Value::as_i64).unwrap_or(0).to_string() };
    match (kind, field) {
        (_, "metadata.name") => text(&["metadata", "name"]),
        (_, "metadata.namespace") => text(&["metadata", "namespace"]),
        ("Pod", "spec.hostNetwork") => boolean(&["spec", "hostNetwork"]),
        ("Pod", "status.podIP") => {
            let ip = text(&["status", "podIP"]);
            if ip.is_empty() {
                at(&["status", "podIPs"])
                    .and_then(Value::as_array)
                    .and_then(|ips| ips.first())
                    .and_then(|ip| ip.get("ip"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            } else {
                ip
            }
        }
        ("Event", "source") => {
            let component = text(&["source", "component"]);
            if component.is_empty() {
                text(&["reportingComponent"])
            } else {
                component
            }
        }
        ("Node", "spec.unschedulable") => boolean(&["spec", "unschedulable"]),
        ("ReplicationController" | "ReplicaSet", "status.replicas") => {
            integer(&["status", "replicas"])
        }
        ("Job", "status.successful") => integer(&["status", "succeeded"]),
        (_, field) => {
            let path: Vec<&str> = field.split('.').collect();
            text(&path)
        }
    }
}

impl FieldSelector {
    /// Parses the `fieldSelector` query parameter:
    /// `metadata.name=kubia,status.phase!=Running`. In values, `\,`, `\=`
    /// and `\\` stand for `,`, `=` and `\`.
    pub fn parse(s: &str) -> Result<FieldSelector, KubeError> {
        let mut terms = Vec::new();
        for part in split_terms(s) {
            if part.is_empty() {
                continue;
            }
            let Some((field, op, raw)) = split_term(part) else {
                return Err(KubeError::BadRequest(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape(raw).map_err(KubeError::BadRequest)?;
            terms.push(FieldTerm {
                field: field.to_string(),
                op,
                value,
            });
        }
        terms.sort_by(|a, b| a.field.cmp(&b.field).then_with(|| a.value.cmp(&b.value)));
        Ok(FieldSelector { terms })
    }

    /// Whether the selector has no terms (and so matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms, sorted by field.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// Fails with the API server's `field label not supported: <field>` for
    /// the first field the kind cannot be selected by.
    pub fn check_supported(&self, kind: &str) -> Result<(), KubeError> {
        for t in &self.terms {
            let f = t.field.as_str();
            if !COMMON_FIELDS.contains(&f) && !kind_fields(kind).contains(&f) {
                return Err(KubeError::BadRequest(format!(
                    "field label not supported: {f}"
                )));
            }
        }
        Ok(())
    }

    /// Whether an object of `kind` satisfies every term. A field the object
    /// lacks compares as the empty string.
    pub fn matches(&self, kind: &str, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let have = field_value(kind, &t.field, obj);
            match t.op {
                FieldOp::Equals => have == t.value,
                FieldOp::NotEquals => have != t.value,
            }
        })
    }

    /// The name when the selector is exactly `metadata.name=<name>`.
    pub fn single_name(&self) -> Option<&str> {
        match self.terms.as_slice() {
            [t] if t.field == "metadata.name" && t.op == FieldOp::Equals => Some(&t.value),
            _ => None,
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match t.op {
                FieldOp::Equals => "=",
                FieldOp::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", t.field, escape(&t.value))?;
        }
        Ok(())
    }
}

/// Splits at commas that are not escaped with a backslash; escapes stay.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    if s.is_empty() {
        return out;
    }
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            out.push(s.get(start..i).unwrap_or(""));
            start = i + 1;
        }
    }
    out.push(s.get(start..).unwrap_or(""));
    out
}

/// Splits a term at its first operator: `!=`, `==` or `=`.
fn split_term(term: &str) -> Option<(&str, FieldOp, &str)> {
    for (i, _) in term.char_indices() {
        let rest = term.get(i..)?;
        let lhs = term.get(..i)?;
        for (op, field_op) in [
            ("!=", FieldOp::NotEquals),
            ("==", FieldOp::Equals),
            ("=", FieldOp::Equals),
        ] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((lhs, field_op, rhs));
            }
        }
    }
    None
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ));
                }
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {c}"
                ));
            }
            _ => out.push(c),
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".into());
    }
    Ok(out)
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).expect(s)
    }

    fn bad(s: &str) -> String {
        match LabelSelector::parse(s) {
            Err(KubeError::BadRequest(m)) => m,
            other => panic!("{s:?}: expected BadRequest, got {other:?}"),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        for s in ["", "   "] {
            let l = sel(s);
            assert!(l.is_empty());
            assert!(l.matches(&labels(&[])));
            assert!(l.matches(&labels(&[("a", "b")])));
        }
    }

    #[test]
    fn equality_operators() {
        let app = labels(&[("app", "kubia"), ("tier", "web")]);
        assert!(sel("app=kubia").matches(&app));
        assert!(sel("app==kubia").matches(&app));
        assert!(!sel("app=other").matches(&app));
        assert!(sel("app!=other").matches(&app));
        assert!(!sel("app!=kubia").matches(&app));
        // != matches objects without the label.
        assert!(sel("env!=prod").matches(&app));
        assert!(sel("app=kubia,tier=web").matches(&app));
        assert!(!sel("app=kubia,tier=db").matches(&app));
    }

    #[test]
    fn empty_values() {
        assert!(sel("app=").matches(&labels(&[("app", "")])));
        assert!(!sel("app=").matches(&labels(&[])));
        assert!(!sel("app=").matches(&labels(&[("app", "x")])));
        assert!(sel("app in ()").matches(&labels(&[("app", "")])));
        let l = sel("app in (a,)");
        assert_eq!(l.requirements()[0].values, vec!["", "a"]);
    }

    #[test]
    fn set_operators() {
        let prod = labels(&[("env", "prod")]);
        let none = labels(&[]);
        assert!(sel("env in (prod,qa)").matches(&prod));
        assert!(sel("env in(prod)").matches(&prod));
        assert!(sel("env  in  ( qa , prod )").matches(&prod));
        assert!(!sel("env in (qa)").matches(&prod));
        assert!(!sel("env in (prod)").matches(&none));
        assert!(sel("env notin (qa)").matches(&prod));
        assert!(!sel("env notin (qa,prod)").matches(&prod));
        assert!(sel("env notin (qa)").matches(&none));
        // `in` and `notin` are label names too.
        assert!(sel("in=notin").matches(&labels(&[("in", "notin")])));
        assert!(sel("in").matches(&labels(&[("in", "x")])));
    }

    #[test]
    fn existence() {
        let l = labels(&[("canary", "true")]);
        assert!(sel("canary").matches(&l));
        assert!(!sel("!canary").matches(&l));
        assert!(sel("!release").matches(&l));
        assert!(sel(" canary , ! release ").matches(&l));
        assert!(!sel("release").matches(&l));
    }

    #[test]
    fn numeric_comparisons() {
        let l = labels(&[("gen", "5")]);
        assert!(sel("gen>3").matches(&l));
        assert!(!sel("gen>5").matches(&l));
        assert!(sel("gen<6").matches(&l));
        assert!(!sel("gen<2").matches(&labels(&[("gen", "x")])));
        assert!(bad("gen>x").contains("must be an integer"));
    }

    #[test]
    fn prefixed_keys() {
        let l = labels(&[("app.kubernetes.io/name", "web")]);
        assert!(sel("app.kubernetes.io/name=web").matches(&l));
        assert!(sel("example.com/x_y.z-1").matches(&labels(&[("example.com/x_y.z-1", "1")])));
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(
            sel("z=1, a in (c,b), !m,k!=v").to_string(),
            "a in (b,c),k!=v,!m,z=1"
        );
    }

    #[test]
    fn bad_label_selectors() {
        let m = bad("app=kubia,");
        assert!(m.contains("expected: identifier after ','"), "{m}");
        let m = bad("app in kubia");
        assert!(
            m.starts_with("unable to parse requirement: found 'kubia'"),
            "{m}"
        );
        assert!(m.contains("expected: '('"), "{m}");
        let m = bad("app (x)");
        assert!(
            m.contains("found '(', expected: in, notin, =, ==, !=, gt, lt"),
            "{m}"
        );
        let m = bad("app in (a b)");
        assert!(m.contains("found 'b', expected: ',' or ')'"), "{m}");
        let m = bad("app in (a");
        assert!(m.contains("found '', expected: ',' or ')'"), "{m}");
        let m = bad("app in (");
        assert!(m.contains("expected: ',', ')' or identifier"), "{m}");
        let m = bad("=x");
        assert!(
            m.contains("found '=', expected: !, identifier, or 'end of string'"),
            "{m}"
        );
        let m = bad("a=b c");
        assert!(
            m.contains("found 'c', expected: ',' or 'end of string'"),
            "{m}"
        );
        let m = bad("app=a=b");
        assert!(
            m.contains("found '=', expected: ',' or 'end of string'"),
            "{m}"
        );
        let m = bad("!app=x");
        assert!(m.contains("found '='"), "{m}");
        let m = bad("a@b=c");
        assert!(m.contains("key: Invalid value: \"a@b\""), "{m}");
        let m = bad("app=bad@value");
        assert!(m.contains("Invalid value: \"bad@value\""), "{m}");
        assert!(bad(&format!("{}=x", "k".repeat(64))).contains("no more than 63"));
        assert!(bad(&format!("k={}", "v".repeat(64))).contains("no more than 63"));
        assert!(bad("Example.com/x").contains("prefix part"));
        assert!(bad("/x").contains("prefix part must be non-empty"));
        assert!(bad("a/b/c").contains("qualified name"));
        assert!(bad("a/").contains("name part must be non-empty"));
        assert!(bad("-a").contains("name part must consist"));
        assert!(sel("a==").matches(&labels(&[("a", "")])));
        // Nothing panics on odd input.
        for s in [
            "(",
            ")",
            ",",
            "!",
            "!!",
            "a in",
            "a in (",
            "a notin ()",
            "é=ü",
            "a=\u{0}",
        ] {
            let _ = LabelSelector::parse(s);
        }
    }

    #[test]
    fn from_meta_label_selector() {
        let meta = MetaLabelSelector {
            match_labels: Some([("app".to_string(), "kubia".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "env".into(),
                    operator: "In".into(),
                    values: Some(vec!["prod".into(), "qa".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "Exists".into(),
                    values: Some(vec![]),
                },
                LabelSelectorRequirement {
                    key: "zone".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["b".into()]),
                },
            ]),
        };
        let s = LabelSelector::from_meta(&meta).expect("valid");
        assert!(s.matches(&labels(&[("app", "kubia"), ("env", "qa"), ("tier", "x")])));
        assert!(!s.matches(&labels(&[("app", "kubia"), ("env", "dev"), ("tier", "x")])));
        assert!(!s.matches(&labels(&[
            ("app", "kubia"),
            ("env", "qa"),
            ("tier", "x"),
            ("canary", "1")
        ])));
        assert!(!s.matches(&labels(&[("app", "kubia"), ("env", "qa")])));
        assert!(!s.matches(&labels(&[
            ("app", "kubia"),
            ("env", "qa"),
            ("tier", "x"),
            ("zone", "b")
        ])));

        let empty = LabelSelector::from_meta(&MetaLabelSelector::default()).expect("empty");
        assert!(empty.is_empty());
        assert!(empty.matches(&labels(&[("a", "b")])));
    }

    #[test]
    fn from_meta_rejects_bad_expressions() {
        let expr = |op: &str, values: Option<Vec<&str>>| MetaLabelSelector {
            match_labels: None,
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: op.into(),
                values: values.map(|v| v.into_iter().map(String::from).collect()),
            }]),
        };
        let err = |s: MetaLabelSelector| match LabelSelector::from_meta(&s) {
            Err(KubeError::BadRequest(m)) => m,
            other => panic!("expected BadRequest, got {other:?}"),
        };
        assert!(err(expr("In", None)).contains("values set can't be empty"));
        assert!(err(expr("NotIn", Some(vec![]))).contains("values set can't be empty"));
        assert!(err(expr("Exists", Some(vec!["x"]))).contains("must be empty"));
        assert!(err(expr("DoesNotExist", Some(vec!["x"]))).contains("must be empty"));
        assert!(err(expr("Equals", Some(vec!["x"]))).contains("\"Equals\""));
        assert!(err(expr("In", Some(vec!["bad value"]))).contains("bad value"));
        let bad_label = MetaLabelSelector {
            match_labels: Some([("a b".to_string(), "x".to_string())].into()),
            match_expressions: None,
        };
        assert!(err(bad_label).contains("\"a b\""));
    }

    #[test]
    fn labels_of_reads_metadata_labels() {
        let obj = json!({"metadata": {"labels": {"app": "kubia", "n": 1}}});
        assert_eq!(labels_of(&obj), labels(&[("app", "kubia")]));
        assert!(labels_of(&json!({})).is_empty());
        assert!(labels_of(&json!({"metadata": {"labels": null}})).is_empty());
        assert!(labels_of(&json!("x")).is_empty());
        assert!(sel("app=kubia").matches_object(&obj));
    }

    fn fsel(s: &str) -> FieldSelector {
        FieldSelector::parse(s).expect(s)
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "kubia", "namespace": "default"},
            "spec": {"restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default"},
            "status": {"phase": "Running", "podIP": "10.0.0.5"},
        })
    }

    #[test]
    fn field_selector_matches() {
        let p = pod();
        assert!(fsel("metadata.name=kubia").matches("Pod", &p));
        assert!(fsel("metadata.name==kubia").matches("Pod", &p));
        assert!(!fsel("metadata.name!=kubia").matches("Pod", &p));
        assert!(fsel("metadata.namespace=default,status.phase=Running").matches("Pod", &p));
        assert!(!fsel("metadata.namespace=default,status.phase!=Running").matches("Pod", &p));
        assert!(fsel("status.podIP=10.0.0.5").matches("Pod", &p));
        // Unscheduled pods have an empty nodeName.
        assert!(fsel("spec.nodeName=").matches("Pod", &p));
        assert!(!fsel("spec.nodeName!=").matches("Pod", &p));
        assert!(fsel("spec.hostNetwork=false").matches("Pod", &p));
        assert!(fsel("").matches("Pod", &p));
        assert!(fsel("").is_empty());
    }

    #[test]
    fn field_selector_per_kind_fields() {
        let node = json!({"metadata": {"name": "n"}, "spec": {}});
        assert!(fsel("spec.unschedulable=false").matches("Node", &node));
        let cordoned = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert!(fsel("spec.unschedulable=true").matches("Node", &cordoned));
        let rs = json!({"status": {"replicas": 3}});
        assert!(fsel("status.replicas=3").matches("ReplicaSet", &rs));
        assert!(fsel("status.replicas=0").matches("ReplicationController", &json!({})));
        assert!(fsel("status.successful=2").matches("Job", &json!({"status": {"succeeded": 2}})));
        let ev = json!({
            "involvedObject": {"kind": "Pod", "name": "kubia", "namespace": "default"},
            "reason": "Scheduled", "type": "Normal",
            "source": {"component": "default-scheduler"},
            "reportingComponent": "",
        });
        assert!(
            fsel("involvedObject.kind=Pod,involvedObject.name=kubia,reason=Scheduled")
                .matches("Event", &ev)
        );
        assert!(fsel("source=default-scheduler").matches("Event", &ev));
        assert!(fsel("involvedObject.uid=").matches("Event", &ev));
        let ev2 = json!({"reportingComponent": "kubelet"});
        assert!(fsel("source=kubelet").matches("Event", &ev2));
        let secret = json!({"type": "kubernetes.io/tls"});
        assert!(fsel("type=kubernetes.io/tls").matches("Secret", &secret));
        let ns = json!({"metadata": {"name": "x"}, "status": {"phase": "Active"}});
        assert!(fsel("status.phase=Active").matches("Namespace", &ns));
        assert!(fsel("metadata.namespace=").matches("Namespace", &ns));
    }

    #[test]
    fn field_selector_escapes() {
        let f = fsel(r"metadata.name=a\,b\=c\\d");
        assert_eq!(f.terms()[0].value, r"a,b=c\d");
        assert_eq!(f.single_name(), Some(r"a,b=c\d"));
        assert_eq!(f.to_string(), r"metadata.name=a\,b\=c\\d");
        let f = fsel(r"metadata.name=a\,b,status.phase=Running");
        assert_eq!(f.terms().len(), 2);
        let err = |s: &str| match FieldSelector::parse(s) {
            Err(KubeError::BadRequest(m)) => m,
            other => panic!("{s:?}: expected BadRequest, got {other:?}"),
        };
        assert!(err(r"metadata.name=a\x").contains("invalid escape sequence: \\x"));
        assert!(err(r"metadata.name=a\").contains("invalid escape sequence"));
        assert!(err("metadata.name=a=b").contains("unescaped character in value: ="));
        let m = err("metadata.name");
        assert_eq!(
            m,
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
        );
        let m = err("a=b,oops");
        assert!(m.contains("can't understand 'oops'"), "{m}");
    }

    #[test]
    fn field_selector_supported_fields() {
        assert!(fsel("metadata.name=x").check_supported("ConfigMap").is_ok());
        assert!(
            fsel("spec.nodeName=n,status.phase=Running")
                .check_supported("Pod")
                .is_ok()
        );
        assert_eq!(
            fsel("spec.nodeName=n").check_supported("ConfigMap"),
            Err(KubeError::BadRequest(
                "field label not supported: spec.nodeName".into()
            ))
        );
        assert_eq!(
            fsel("metadata.labels=x").check_supported("Pod"),
            Err(KubeError::BadRequest(
                "field label not supported: metadata.labels".into()
            ))
        );
        assert!(fsel("type=Opaque").check_supported("Secret").is_ok());
        assert!(fsel("type=Opaque").check_supported("ConfigMap").is_err());
        assert!(
            fsel("spec.unschedulable=true")
                .check_supported("Node")
                .is_ok()
        );
    }

    #[test]
    fn single_name() {
        assert_eq!(fsel("metadata.name=kubia").single_name(), Some("kubia"));
        assert_eq!(fsel("metadata.name==kubia").single_name(), Some("kubia"));
        assert_eq!(fsel("metadata.name!=kubia").single_name(), None);
        assert_eq!(
            fsel("metadata.name=a,metadata.namespace=b").single_name(),
            None
        );
        assert_eq!(fsel("").single_name(), None);
    }
}
