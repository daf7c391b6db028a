//! Unit tests of reference parsing and normalisation.
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
    let r = Reference::parse_with_default_registry("ghcr.io/a", "127.0.0.1:5000").expect("parses");
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
