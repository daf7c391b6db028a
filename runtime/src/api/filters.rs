//! Docker's `filters` query parameter: a JSON map from a filter's name to
//! its values, `{"label": ["a=b"], "status": ["running"]}` (older clients
//! send `{"label": {"a=b": true}}`). Each resource accepts its own names;
//! an unknown one is an error that names it and lists the accepted ones.
//!
//! The values of one name are alternatives (any may match), except for
//! `label`, where every value must match, as Docker does.

use std::collections::BTreeMap;

/// The parsed `filters` of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(BTreeMap<String, Vec<String>>);

/// Why a `filters` parameter was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("invalid filters {raw:?}: {message}")]
    Syntax { raw: String, message: String },
    #[error("invalid filter {name:?} for {what}: wrun filters {what} by {accepted}")]
    Unknown {
        name: String,
        what: String,
        accepted: String,
    },
    #[error("invalid filter {name}={value:?}: {message}")]
    Value {
        name: String,
        value: String,
        message: String,
    },
}

impl Filters {
    /// Parses `raw` (the decoded query value; empty means no filters) and
    /// checks every name against `accepted`, for the resource `what`.
    pub fn parse(raw: Option<&str>, what: &str, accepted: &[&str]) -> Result<Self, FilterError> {
        let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(Self::default());
        };
        let syntax = |message: String| FilterError::Syntax {
            raw: raw.to_string(),
            message,
        };
        let map: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(raw).map_err(|e| syntax(e.to_string()))?;
        let mut out = BTreeMap::new();
        for (name, v) in map {
            if !accepted.contains(&name.as_str()) {
                return Err(FilterError::Unknown {
                    name,
                    what: what.to_string(),
                    accepted: accepted.join(", "),
                });
            }
            let values: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .into_iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => Ok(s),
                        other => Err(syntax(format!("{name}: {other} is not a string"))),
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::Object(o) => o
                    .into_iter()
                    .filter(|(_, on)| on.as_bool() != Some(false))
                    .map(|(k, _)| k)
                    .collect(),
                serde_json::Value::String(s) => vec![s],
                other => return Err(syntax(format!("{name}: {other} is not a list"))),
            };
            out.insert(name, values);
        }
        Ok(Self(out))
    }

    /// Builds filters from `(name, value)` pairs, as the CLI's `--filter`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            out.entry(k.to_string()).or_default().push(v.to_string());
        }
        Self(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The values given for `name` (none if it was not given).
    pub fn values(&self, name: &str) -> &[String] {
        self.0.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The JSON form, as a query parameter carries it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// True if `name` was not given, or `pred` holds for one of its values.
    pub fn any(&self, name: &str, pred: impl Fn(&str) -> bool) -> bool {
        match self.0.get(name) {
            None => true,
            Some(vs) => vs.iter().any(|v| pred(v)),
        }
    }

    /// True if every `label` value (`key`, `key=value` or `key!=value`)
    /// holds for `labels`.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels_match_named("label", labels)
    }

    /// As [`Filters::labels_match`], for a filter of another name (such as
    /// `label!` or the events' `label`).
    pub fn labels_match_named(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.values(name).iter().all(|v| label_holds(v, labels))
    }

    /// The values of `name` as regular expressions (Docker reads the
    /// `name` filter so), naming a value that is not one.
    pub fn regexes(&self, name: &str) -> Result<Vec<regex::Regex>, FilterError> {
        self.values(name)
            .iter()
            .map(|v| {
                regex::Regex::new(v).map_err(|e| FilterError::Value {
                    name: name.to_string(),
                    value: v.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// Parses a boolean filter (`dangling=true`), naming it when the value
    /// is not a boolean.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, FilterError> {
        let Some(v) = self.values(name).last() else {
            return Ok(None);
        };
        match v.as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(FilterError::Value {
                name: name.to_string(),
                value: v.clone(),
                message: "expected true or false".into(),
            }),
        }
    }
}

/// Whether one label condition holds: `key` (present), `key=value` or
/// `key!=value`.
pub fn label_holds(cond: &str, labels: &BTreeMap<String, String>) -> bool {
    if let Some((k, v)) = cond.split_once("!=") {
        return labels.get(k).is_none_or(|have| have != v);
    }
    match cond.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
        None => labels.contains_key(cond),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn both_shapes_parse() {
        let a =
            Filters::parse(Some(r#"{"label":["a=b"]}"#), "containers", &["label"]).expect("valid");
        let b = Filters::parse(Some(r#"{"label":{"a=b":true}}"#), "containers", &["label"])
            .expect("valid");
        assert_eq!(a, b);
        assert_eq!(a.values("label"), ["a=b"]);
        assert!(Filters::parse(None, "x", &[]).expect("valid").is_empty());
        assert!(
            Filters::parse(Some(""), "x", &[])
                .expect("valid")
                .is_empty()
        );
    }

    #[test]
    fn unknown_names_and_bad_json_are_named() {
        let e = Filters::parse(
            Some(r#"{"colour":["red"]}"#),
            "containers",
            &["label", "name"],
        )
        .expect_err("refused")
        .to_string();
        assert!(e.contains("\"colour\"") && e.contains("label, name"), "{e}");
        let e = Filters::parse(Some("{nope"), "containers", &["label"])
            .expect_err("refused")
            .to_string();
        assert!(e.contains("{nope"), "{e}");
        let e = Filters::parse(Some(r#"{"label":[3]}"#), "containers", &["label"])
            .expect_err("refused")
            .to_string();
        assert!(e.contains("not a string"), "{e}");
    }

    #[test]
    fn every_label_must_hold() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let f = Filters::parse(
            Some(r#"{"label":["app=web","tier"]}"#),
            "containers",
            &["label"],
        )
        .expect("valid");
        assert!(f.labels_match(&l));
        let f = Filters::parse(
            Some(r#"{"label":["app=web","tier=back"]}"#),
            "containers",
            &["label"],
        )
        .expect("valid");
        assert!(!f.labels_match(&l));
        assert!(label_holds("app!=db", &l));
        assert!(!label_holds("app!=web", &l));
        assert!(label_holds("other!=x", &l));
        assert!(!label_holds("other", &l));
        // A value may itself hold `=`.
        assert!(label_holds("k=a=b", &labels(&[("k", "a=b")])));
    }

    #[test]
    fn name_filters_are_regexes_and_bad_ones_are_named() {
        let f = Filters::parse(Some(r#"{"name":["^web-[0-9]$"]}"#), "c", &["name"]).expect("valid");
        assert!(f.regexes("name").expect("regex")[0].is_match("web-1"));
        let f = Filters::parse(Some(r#"{"name":["(oops"]}"#), "c", &["name"]).expect("valid");
        let e = f.regexes("name").expect_err("refused").to_string();
        assert!(e.contains("name=\"(oops\""), "{e}");
    }

    #[test]
    fn booleans_are_checked() {
        let f = Filters::parse(Some(r#"{"dangling":["yes"]}"#), "images", &["dangling"])
            .expect("valid");
        assert!(
            f.bool("dangling")
                .expect_err("refused")
                .to_string()
                .contains("dangling")
        );
        let f = Filters::parse(Some(r#"{"dangling":["true"]}"#), "images", &["dangling"])
            .expect("valid");
        assert_eq!(f.bool("dangling").expect("valid"), Some(true));
    }
}
