//! Kubernetes resource quantities (`64Mi`, `1G`, `500m`, `1e9`) as bytes.

/// The value of a quantity, rounded up to a whole number; `None` when it
/// is not a quantity.
pub fn parse(q: &str) -> Option<u64> {
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
        ("m", 1e-3),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    if number.is_empty()
        || !number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let bytes = (value * factor).ceil();
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn quantities() {
        assert_eq!(parse("64Mi"), Some(64 << 20));
        assert_eq!(parse("1G"), Some(1_000_000_000));
        assert_eq!(parse("1e3"), Some(1000));
        assert_eq!(parse("1.5Ki"), Some(1536));
        assert_eq!(parse("100"), Some(100));
        assert_eq!(parse("lots"), None);
        assert_eq!(parse(""), None);
        assert_eq!(parse("-1"), None);
        assert_eq!(parse("Mi"), None);
    }
}
