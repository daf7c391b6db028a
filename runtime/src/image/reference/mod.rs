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
mod tests;
