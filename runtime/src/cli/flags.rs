//! `KEY=VALUE` flags that several verbs share: `--label` and `--filter`.

use std::collections::BTreeMap;

use anyhow::{Result, anyhow};

use crate::api::filters::Filters;

/// `--label k=v` (or a bare `k`, an empty value) into a map.
pub fn labels(given: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in given {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        if k.is_empty() {
            return Err(anyhow!("invalid label {l:?}: the key is empty"));
        }
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

/// `--filter k=v` flags as the query parameter `&filters=...` (empty when
/// none were given).
pub fn filters_query(given: &[String]) -> Result<String> {
    if given.is_empty() {
        return Ok(String::new());
    }
    let pairs = given
        .iter()
        .map(|f| {
            f.split_once('=')
                .ok_or_else(|| anyhow!("invalid filter {f:?}: expected KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let json = Filters::from_pairs(pairs).to_json();
    Ok(format!("&filters={}", super::run::encode(&json)))
}
