//! Sizes as Docker's flags and API options give them, and the storage
//! options wrun honours.

use std::collections::BTreeMap;

/// Parses a size as Docker does (`--memory`, `--storage-opt size=`): a
/// number with an optional binary unit `b`, `k`, `m`, `g` or `t`
/// (case-insensitive).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|r| !r.is_empty() && r.ends_with(['k', 'm', 'g', 't']))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| {
        format!("invalid size {s:?}: expected a number with an optional unit (b, k, m, g)")
    })?;
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("invalid size {s:?}: must be positive"));
    }
    match (n * mult as f64) as u64 {
        0 => Err(format!("invalid size {s:?}: less than a byte")),
        bytes => Ok(bytes),
    }
}

/// The writable layer's limit in Docker's `HostConfig.StorageOpt`
/// (`--storage-opt size=120m`); other options are refused by name.
pub fn storage_size(opts: &BTreeMap<String, String>) -> Result<Option<u64>, String> {
    let mut size = None;
    for (k, v) in opts {
        if !k.eq_ignore_ascii_case("size") {
            return Err(format!(
                "storage option {k:?} is not supported: wrun limits only size (the bytes a container's writable layer holds)"
            ));
        }
        size = Some(parse_bytes(v).map_err(|e| format!("storage option size: {e}"))?);
    }
    Ok(size)
}

/// Parses `--storage-opt KEY=VALUE` flags into `HostConfig.StorageOpt`.
pub fn storage_opts(flags: &[String]) -> Result<BTreeMap<String, String>, String> {
    flags
        .iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!(
                "invalid storage option {f:?}: expected KEY=VALUE, e.g. size=100m"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_docker_takes_them() {
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("-1m").is_err());
        assert!(parse_bytes("0.0001b").is_err());
    }

    #[test]
    fn storage_options() {
        let opts = storage_opts(&["size=2m".into()]).expect("parse");
        assert_eq!(storage_size(&opts), Ok(Some(2 << 20)));
        assert_eq!(storage_size(&BTreeMap::new()), Ok(None));
        let other = storage_opts(&["dm.basesize=1g".into()]).expect("parse");
        assert!(
            storage_size(&other)
                .expect_err("refused")
                .contains("\"dm.basesize\"")
        );
        assert!(storage_opts(&["size".into()]).is_err());
        let bad = storage_opts(&["size=huge".into()]).expect("parse");
        assert!(storage_size(&bad).expect_err("refused").contains("huge"));
    }
}
