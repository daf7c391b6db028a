//! Docker-style image references, normalised the way `docker` does it, so that every spelling a
//! user types ("busybox", "library/busybox", "docker.io/busybox:latest") maps to one canonical name.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use thiserror::Error;

/// Registry assumed when a reference does not name one.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Old spelling of the Docker Hub registry, rewritten to [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;
const SHA256_HEX_LEN: usize = 64;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferenceError {
    #[error("invalid reference \"\": reference is empty")]
    Empty,
    #[error("invalid reference {input:?}: contains whitespace or control characters")]
    Whitespace { input: String },
    #[error("invalid reference {input:?}: missing repository name")]
    MissingRepository { input: String },
    #[error("invalid reference {input:?}: repository name must be lowercase")]
    Uppercase { input: String },
    #[error("invalid reference {input:?}: invalid repository path component {component:?}")]
    InvalidComponent { input: String, component: String },
    #[error("invalid reference {input:?}: invalid registry host {registry:?}")]
    InvalidRegistry { input: String, registry: String },
    #[error("invalid reference {input:?}: missing tag after ':'")]
    MissingTag { input: String },
    #[error("invalid reference {input:?}: invalid tag {tag:?}")]
    InvalidTag { input: String, tag: String },
    #[error("invalid reference {input:?}: missing digest after '@'")]
    MissingDigest { input: String },
    #[error(
        "invalid reference {input:?}: invalid digest {digest:?}, expected \"sha256:\" and 64 lowercase hex characters"
    )]
    InvalidDigest { input: String, digest: String },
    #[error(
        "invalid reference {input:?}: unsupported digest algorithm {algorithm:?}, only sha256 is supported"
    )]
    UnsupportedDigestAlgorithm { input: String, algorithm: String },
    #[error(
        "invalid reference {input:?}: repository name is {len} characters long, the limit is 255"
    )]
    NameTooLong { input: String, len: usize },
}

/// A parsed, normalised image reference: `registry/repository[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `s`, assuming [`DEFAULT_REGISTRY`] when no registry is named.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        Self::parse_with_default_registry(s, DEFAULT_REGISTRY)
    }

    /// Parses `s`, assuming `default_registry` when no registry is named.
    pub fn parse_with_default_registry(
        s: &str,
        default_registry: &str,
    ) -> Result<Reference, ReferenceError> {
        let input = || s.to_string();
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ReferenceError::Whitespace { input: input() });
        }
        let (name_and_tag, digest) = match s.split_once('@') {
            Some((_, "")) => return Err(ReferenceError::MissingDigest { input: input() }),
            Some((name, digest)) => {
                check_digest(s, digest)?;
                (name, Some(digest.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match name_and_tag.rsplit_once(':') {
            Some((_, "")) => return Err(ReferenceError::MissingTag { input: input() }),
            Some((name, tag)) if !tag.contains('/') => {
                if !valid_tag(tag) {
                    return Err(ReferenceError::InvalidTag {
                        input: input(),
                        tag: tag.to_string(),
                    });
                }
                (name, Some(tag.to_string()))
            }
            _ => (name_and_tag, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::MissingRepository { input: input() });
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first, rest)
            }
            _ => (default_registry, name),
        };
        if !valid_registry(registry) {
            return Err(ReferenceError::InvalidRegistry {
                input: input(),
                registry: registry.to_string(),
            });
        }
        let registry = if registry == LEGACY_DEFAULT_REGISTRY {
            DEFAULT_REGISTRY
        } else {
            registry
        };
        if path.is_empty() {
            return Err(ReferenceError::MissingRepository { input: input() });
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase { input: input() });
        }
        if let Some(bad) = path.split('/').find(|c| !valid_component(c)) {
            return Err(ReferenceError::InvalidComponent {
                input: input(),
                component: bad.to_string(),
            });
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let len = registry.len() + 1 + repository.len();
        if len > MAX_NAME_LEN {
            return Err(ReferenceError::NameTooLong {
                input: input(),
                len,
            });
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// Registry host, e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path within the registry, e.g. `library/busybox`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Tag; `latest` unless another tag or only a digest was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// Digest such as `sha256:…`, if the reference pins one.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Canonical name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with `tag` (validated); a digest, if any, is kept.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                input: format!("{}:{tag}", self.familiar_repository()),
                tag: tag.to_string(),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// Short form as docker prints it: `busybox:latest`, `127.0.0.1:5000/me/kubia:v1`.
    pub fn familiar(&self) -> String {
        let mut out = self.familiar_repository();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }

    /// Short repository as `docker images` shows it: `busybox`, `me/kubia`, `ghcr.io/me/kubia`.
    pub fn familiar_repository(&self) -> String {
        if self.registry != DEFAULT_REGISTRY {
            return format!("{}/{}", self.registry, self.repository);
        }
        match self.repository.strip_prefix("library/") {
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.repository.clone(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let edges_ok = component.chars().next().is_some_and(alnum)
        && component.chars().next_back().is_some_and(alnum);
    edges_ok
        && component
            .split(alnum)
            .filter(|sep| !sep.is_empty())
            .all(|sep| matches!(sep, "." | "_" | "__") || sep.chars().all(|c| c == '-'))
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    tag.len() <= MAX_TAG_LEN
        && tag.chars().next().is_some_and(word)
        && tag.chars().all(|c| word(c) || c == '.' || c == '-')
}

/// `host[:port]` where host is a dotted sequence of DNS labels (covers IPv4) or `[ipv6]`.
fn valid_registry(registry: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        (ip.parse::<Ipv6Addr>().is_ok(), port)
    } else {
        let (host, port) = match registry.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        (host.split('.').all(valid_label), port)
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

fn valid_label(label: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    label.chars().next().is_some_and(alnum)
        && label.chars().next_back().is_some_and(alnum)
        && label.chars().all(|c| alnum(c) || c == '-')
}

fn check_digest(input: &str, digest: &str) -> Result<(), ReferenceError> {
    let invalid = || ReferenceError::InvalidDigest {
        input: input.to_string(),
        digest: digest.to_string(),
    };
    let (algorithm, hex) = digest.split_once(':').ok_or_else(invalid)?;
    if algorithm != "sha256" {
        let plausible = algorithm
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && algorithm
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '.'));
        return Err(if plausible {
            ReferenceError::UnsupportedDigestAlgorithm {
                input: input.to_string(),
                algorithm: algorithm.to_string(),
            }
        } else {
            invalid()
        });
    }
    let hex_ok = hex.len() == SHA256_HEX_LEN
        && hex
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if hex_ok { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn ok(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> ReferenceError {
        match Reference::parse(s) {
            Ok(r) => panic!("{s:?} should fail, got {r}"),
            Err(e) => e,
        }
    }

    #[track_caller]
    fn check(s: &str, canonical: &str, familiar: &str, familiar_repo: &str) {
        let r = ok(s);
        assert_eq!(r.to_string(), canonical, "canonical of {s:?}");
        assert_eq!(r.familiar(), familiar, "familiar of {s:?}");
        assert_eq!(
            r.familiar_repository(),
            familiar_repo,
            "familiar repo of {s:?}"
        );
        // The canonical and familiar forms parse back to the same reference.
        assert_eq!(ok(canonical), r);
        assert_eq!(ok(familiar), r);
    }

    #[test]
    fn docker_hub_short_names() {
        let short = "docker.io/library/busybox:latest";
        check("busybox", short, "busybox:latest", "busybox");
        check("library/busybox", short, "busybox:latest", "busybox");
        check("docker.io/busybox", short, "busybox:latest", "busybox");
        check(
            "index.docker.io/library/busybox",
            short,
            "busybox:latest",
            "busybox",
        );
        check(
            "busybox:1.36",
            "docker.io/library/busybox:1.36",
            "busybox:1.36",
            "busybox",
        );
        check(
            "me/kubia:v1",
            "docker.io/me/kubia:v1",
            "me/kubia:v1",
            "me/kubia",
        );
        check(
            "library/a/b",
            "docker.io/library/a/b:latest",
            "library/a/b:latest",
            "library/a/b",
        );
        let r = ok("busybox");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/busybox");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.name(), "docker.io/library/busybox");
    }

    #[test]
    fn other_registries() {
        check(
            "ghcr.io/me/kubia:v1",
            "ghcr.io/me/kubia:v1",
            "ghcr.io/me/kubia:v1",
            "ghcr.io/me/kubia",
        );
        check(
            "127.0.0.1:5000/me/kubia",
            "127.0.0.1:5000/me/kubia:latest",
            "127.0.0.1:5000/me/kubia:latest",
            "127.0.0.1:5000/me/kubia",
        );
        check(
            "localhost/kubia",
            "localhost/kubia:latest",
            "localhost/kubia:latest",
            "localhost/kubia",
        );
        check(
            "localhost:5000/a/b/c:t",
            "localhost:5000/a/b/c:t",
            "localhost:5000/a/b/c:t",
            "localhost:5000/a/b/c",
        );
        check(
            "[::1]:5000/x",
            "[::1]:5000/x:latest",
            "[::1]:5000/x:latest",
            "[::1]:5000/x",
        );
        check("[::1]/x", "[::1]/x:latest", "[::1]/x:latest", "[::1]/x");
        let r = ok("Registry.Example.com/a");
        assert_eq!(r.registry(), "Registry.Example.com");
        // Without a '.', ':' or "localhost" the first component is part of the repository.
        assert_eq!(ok("myhost/app").registry(), "docker.io");
        assert_eq!(ok("myhost/app").repository(), "myhost/app");
        // "name:port" without a slash is a name and a tag, as in docker.
        assert_eq!(
            ok("localhost:5000").to_string(),
            "docker.io/library/localhost:5000"
        );
    }

    #[test]
    fn digests() {
        let r = ok(&format!("busybox@sha256:{HEX}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox@sha256:{HEX}")
        );
        assert_eq!(r.familiar(), format!("busybox@sha256:{HEX}"));
        let r = ok(&format!("busybox:1.0@sha256:{HEX}"));
        assert_eq!(r.tag(), Some("1.0"));
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/busybox:1.0@sha256:{HEX}")
        );
        assert_eq!(r.familiar(), format!("busybox:1.0@sha256:{HEX}"));
        let r = ok(&format!("localhost:5000/x@sha256:{HEX}"));
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.tag(), None);
    }

    #[test]
    fn custom_default_registry() {
        let r = Reference::parse_with_default_registry("kubia", "127.0.0.1:5000").expect("parses");
        assert_eq!(r.to_string(), "127.0.0.1:5000/kubia:latest");
        let r =
            Reference::parse_with_default_registry("ghcr.io/a", "127.0.0.1:5000").expect("parses");
        assert_eq!(r.registry(), "ghcr.io");
        let r = Reference::parse_with_default_registry("kubia", "index.docker.io").expect("parses");
        assert_eq!(r.to_string(), "docker.io/library/kubia:latest");
        assert!(matches!(
            Reference::parse_with_default_registry("kubia", "bad host"),
            Err(ReferenceError::InvalidRegistry { .. })
        ));
    }

    #[test]
    fn with_tag_and_from_str() {
        let r: Reference = "me/kubia:v1".parse().expect("parses");
        let t = r.with_tag("v2").expect("valid tag");
        assert_eq!(t.to_string(), "docker.io/me/kubia:v2");
        assert_eq!(
            r.with_tag("bad tag").expect_err("invalid").to_string(),
            "invalid reference \"me/kubia:bad tag\": invalid tag \"bad tag\""
        );
        assert!(r.with_tag(".x").is_err());
        assert!(r.with_tag(&"a".repeat(129)).is_err());
        assert!(r.with_tag(&"a".repeat(128)).is_ok());
        let d = ok(&format!("busybox@sha256:{HEX}"))
            .with_tag("1")
            .expect("valid");
        assert_eq!(d.familiar(), format!("busybox:1@sha256:{HEX}"));
    }

    #[test]
    fn component_grammar() {
        for good in [
            "a",
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a1.b2-c3__d4",
            "0",
        ] {
            assert!(valid_component(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a..b", "a___b", "a._b", ".a", "a!", "é"] {
            assert!(!valid_component(bad), "{bad}");
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            err("Foo").to_string(),
            "invalid reference \"Foo\": repository name must be lowercase"
        );
        assert_eq!(
            err("").to_string(),
            "invalid reference \"\": reference is empty"
        );
        assert_eq!(
            err("busybox:").to_string(),
            "invalid reference \"busybox:\": missing tag after ':'"
        );
        assert_eq!(
            err("busybox@").to_string(),
            "invalid reference \"busybox@\": missing digest after '@'"
        );
        assert!(err("busy box").to_string().contains("whitespace"));
        assert!(matches!(err("::"), ReferenceError::MissingTag { .. }));
        assert!(matches!(
            err(":tag"),
            ReferenceError::MissingRepository { .. }
        ));
        assert!(matches!(
            err("ghcr.io/"),
            ReferenceError::MissingRepository { .. }
        ));
        assert!(matches!(
            err("a//b"),
            ReferenceError::InvalidComponent { .. }
        ));
        assert!(matches!(err("a/"), ReferenceError::InvalidComponent { .. }));
        assert!(matches!(err("/a"), ReferenceError::InvalidComponent { .. }));
        assert!(matches!(err("-a"), ReferenceError::InvalidComponent { .. }));
        assert!(matches!(
            err("a:b:c"),
            ReferenceError::InvalidComponent { .. }
        ));
        assert!(matches!(err("a:-x"), ReferenceError::InvalidTag { .. }));
        assert!(matches!(
            err("a:x/y"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("ghcr.io/Me/x"),
            ReferenceError::Uppercase { .. }
        ));
        assert!(matches!(
            err("a_.b/x"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("-a.b/x"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("host:99999/x"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("host:/x"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("[::1/x"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("[zz]:1/x"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("[::1]x/y"),
            ReferenceError::InvalidRegistry { .. }
        ));
        assert!(matches!(
            err("a@sha256:abc"),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(err("a@abc"), ReferenceError::InvalidDigest { .. }));
        assert!(matches!(
            err(&format!("a@sha256:{}", HEX.to_uppercase())),
            ReferenceError::InvalidDigest { .. }
        ));
        assert!(matches!(
            err(&format!("a@sha256:{HEX}@sha256:{HEX}")),
            ReferenceError::InvalidDigest { .. }
        ));
        let e = err(&format!("a@sha512:{HEX}"));
        assert!(matches!(
            e,
            ReferenceError::UnsupportedDigestAlgorithm { .. }
        ));
        assert!(e.to_string().contains("\"sha512\""), "{e}");
        let long = format!("a/{}", "b".repeat(250));
        assert!(matches!(err(&long), ReferenceError::NameTooLong { .. }));
        assert!(Reference::parse(&"b".repeat(200)).is_ok());
    }

    #[test]
    fn garbage_never_panics() {
        let alphabet: Vec<char> = "aZ09./:@-_[]% \téx".chars().collect();
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let len = (seed >> 59) as usize;
            let s: String = (0..len)
                .map(|i| {
                    let idx = (seed >> ((i * 5) % 60)) as usize % alphabet.len();
                    alphabet.get(idx).copied().unwrap_or('a')
                })
                .collect();
            if let Ok(r) = Reference::parse(&s) {
                assert_eq!(ok(&r.to_string()), r, "round trip of {s:?}");
            }
        }
    }
}
