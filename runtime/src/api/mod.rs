//! The Docker Engine API as wrun speaks it: the JSON bodies and the
//! multiplexed stream framing, shared by the daemon (server) and the `wrun`
//! CLI (client).
//!
//! **Architecture Invariant:** the Docker wire format is defined here and
//! nowhere else. Domain types (`ContainerRecord`, `Image`) do not derive
//! Docker's JSON; the daemon converts them into these types.

pub mod filters;
pub mod images;
pub mod ports;
pub mod stream;
pub mod types;
pub mod units;

/// The API version wrun implements; clients may use any version up to it.
pub const API_VERSION: &str = "1.43";
/// The oldest API version wrun accepts in a versioned path.
pub const MIN_API_VERSION: &str = "1.24";

/// Media types of a hijacked connection.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Strips an optional `/v1.NN` prefix from a request path, as Docker's
/// router does. Returns the version (if any) and the rest of the path.
pub fn split_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        let numeric = !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && version.contains('.');
        if numeric {
            let tail = &rest[end..];
            return (Some(version), if tail.is_empty() { "/" } else { tail });
        }
    }
    (None, path)
}

/// Whether `version` (e.g. "1.41") is no newer than what wrun implements.
pub fn version_supported(version: &str) -> bool {
    fn parse(v: &str) -> Option<(u32, u32)> {
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    }
    match (parse(version), parse(API_VERSION), parse(MIN_API_VERSION)) {
        (Some(v), Some(max), Some(min)) => v <= max && v >= min,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_split() {
        assert_eq!(
            split_version("/v1.43/containers/json"),
            (Some("1.43"), "/containers/json")
        );
        assert_eq!(split_version("/_ping"), (None, "/_ping"));
        assert_eq!(split_version("/v1.41"), (Some("1.41"), "/"));
        assert_eq!(split_version("/version"), (None, "/version"));
        assert!(version_supported("1.41"));
        assert!(!version_supported("1.99"));
        assert!(!version_supported("x"));
    }
}
