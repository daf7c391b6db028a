//! wrun's entries in the kubeconfig that kubectl reads, merged in and taken
//! out as `minikube start` and `minikube delete` do.
//!
//! The file is handled as generic YAML, so every other cluster, user,
//! context, preference and extension, and any field wrun does not know, is
//! kept as it was (comments are not: kubectl drops them too). A file that is
//! not YAML, or whose `clusters`, `users` or `contexts` are not lists, is an
//! error and is left untouched. Writes take kubectl's lock file
//! (`<file>.lock`), go to a temporary file in the same directory that is
//! synced and renamed into place, and are always mode 0600 on Unix.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_yaml_ng::{Mapping, Value};

/// The namespace a new context starts in.
const DEFAULT_NAMESPACE: &str = "default";
/// How long to wait for another writer's lock file to go away.
const LOCK_WAIT: Duration = Duration::from_secs(5);
/// The three lists of named entries, with the key of each entry's body.
const SECTIONS: [(&str, &str); 3] = [
    ("clusters", "cluster"),
    ("users", "user"),
    ("contexts", "context"),
];

/// The kubeconfig kubectl reads by default: the first entry of
/// `$KUBECONFIG`, else `~/.kube/config`.
pub fn default_path() -> Result<PathBuf> {
    if let Some(list) = std::env::var_os("KUBECONFIG")
        && let Some(first) = std::env::split_paths(&list).find(|p| !p.as_os_str().is_empty())
    {
        return Ok(first);
    }
    let home = directories::BaseDirs::new()
        .map(|dirs| dirs.home_dir().to_path_buf())
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .filter(|home| !home.as_os_str().is_empty())
        .ok_or_else(|| anyhow!("no home directory found for the kubeconfig; set KUBECONFIG"))?;
    Ok(home.join(".kube").join("config"))
}

/// One cluster, its user and the context joining them, all named `name`.
#[derive(Clone)]
pub struct Entry {
    /// The name of the cluster, the user and the context (`wrun`).
    pub name: String,
    /// The API's URL, `https://127.0.0.1:PORT`.
    pub server: String,
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The bearer token.
    pub token: String,
    /// The admin client certificate and key, PEM.
    pub client_cert_pem: String,
    pub client_key_pem: String,
    /// The context's namespace. `None` keeps the one the context already
    /// has (`kubectl config set-context --current --namespace=...`), or
    /// `default` for a new context.
    pub namespace: Option<String>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Adds `entry`'s cluster, user and context to the kubeconfig at `path`,
/// replacing any of the same name, and makes the context current. Creates
/// the file (and its directory) if needed.
pub fn merge(path: &Path, entry: &Entry) -> Result<()> {
    if entry.name.is_empty() {
        bail!("kubeconfig {}: an entry needs a name", path.display());
    }
    let path = &resolve(path);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("kubeconfig {}: creating {}", path.display(), dir.display())
        })?;
    }
    let _lock = Lock::acquire(path)?;
    let mut doc = read(path)?.unwrap_or_else(fresh);
    let config = doc.as_mapping_mut().ok_or_else(|| not_a_mapping(path))?;
    for (key, value) in [("apiVersion", "v1"), ("kind", "Config")] {
        if !config.contains_key(key) {
            config.insert(key.into(), value.into());
        }
    }

    let cluster = mapping([
        ("server", entry.server.as_str().into()),
        (
            "certificate-authority-data",
            STANDARD.encode(entry.ca_pem.as_bytes()).into(),
        ),
    ]);
    let user = mapping([
        ("token", entry.token.as_str().into()),
        (
            "client-certificate-data",
            STANDARD.encode(entry.client_cert_pem.as_bytes()).into(),
        ),
        (
            "client-key-data",
            STANDARD.encode(entry.client_key_pem.as_bytes()).into(),
        ),
    ]);
    let mut context = mapping([
        ("cluster", entry.name.as_str().into()),
        ("user", entry.name.as_str().into()),
    ]);
    let namespace = match &entry.namespace {
        Some(namespace) => Value::from(namespace.as_str()),
        None => existing_body(config, "contexts", "context", &entry.name, path)?
            .and_then(|body| body.get("namespace"))
            .filter(|ns| ns.as_str().is_some_and(|s| !s.is_empty()))
            .cloned()
            .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
    };
    context.insert("namespace".into(), namespace);

    for ((section, body_key), body) in SECTIONS.into_iter().zip([cluster, user, context]) {
        put(config, section, body_key, &entry.name, body, path)?;
    }
    config.insert("current-context".into(), entry.name.as_str().into());
    write(path, &doc)
}

/// Removes the cluster, user and context named `name` from the kubeconfig
/// at `path`, and unsets `current-context` if it was that context. Returns
/// whether anything changed; a missing file is `Ok(false)`.
pub fn remove(path: &Path, name: &str) -> Result<bool> {
    let path = &resolve(path);
    if !path.exists() {
        return Ok(false);
    }
    let _lock = Lock::acquire(path)?;
    let Some(mut doc) = read(path)? else {
        return Ok(false);
    };
    let config = doc.as_mapping_mut().ok_or_else(|| not_a_mapping(path))?;
    let mut changed = false;
    for (section, _) in SECTIONS {
        let Some(list) = list_mut(config, section, path)? else {
            continue;
        };
        let before = list.len();
        list.retain(|item| item_name(item) != Some(name));
        changed |= list.len() != before;
    }
    if config.get("current-context").and_then(Value::as_str) == Some(name) {
        config.insert("current-context".into(), "".into());
        changed = true;
    }
    if changed {
        write(path, &doc)?;
    }
    Ok(changed)
}

/// A new, empty kubeconfig.
fn fresh() -> Value {
    Value::Mapping(mapping([
        ("apiVersion", "v1".into()),
        ("kind", "Config".into()),
        ("preferences", Value::Mapping(Mapping::new())),
    ]))
}

fn mapping<const N: usize>(pairs: [(&str, Value); N]) -> Mapping {
    pairs
        .into_iter()
        .map(|(key, value)| (Value::from(key), value))
        .collect()
}

fn not_a_mapping(path: &Path) -> anyhow::Error {
    anyhow!(
        "kubeconfig {}: not a kubeconfig (the document is not a mapping); left unchanged",
        path.display()
    )
}

/// Follows a symbolic link, so that the file it points to is rewritten
/// rather than the link replaced by a file (kubectl writes through links).
fn resolve(path: &Path) -> PathBuf {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

/// Reads and parses the file: `None` if it is missing, empty or holds only
/// comments.
fn read(path: &Path) -> Result<Option<Value>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
            anyhow!(
                "kubeconfig {}: not UTF-8 text; left unchanged",
                path.display()
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("kubeconfig {}: reading", path.display()));
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let doc: Value = serde_yaml_ng::from_str(&text).with_context(|| {
        format!(
            "kubeconfig {}: not valid YAML; left unchanged",
            path.display()
        )
    })?;
    Ok(match doc {
        Value::Null => None,
        doc => Some(doc),
    })
}

/// The list under `section`, created if absent (or null); an error if it
/// is something other than a list.
fn list_mut<'a>(
    config: &'a mut Mapping,
    section: &str,
    path: &Path,
) -> Result<Option<&'a mut Vec<Value>>> {
    match config.get_mut(section) {
        None => Ok(None),
        Some(value) => {
            if value.is_null() {
                *value = Value::Sequence(Vec::new());
            }
            match value {
                Value::Sequence(list) => Ok(Some(list)),
                _ => bail!(
                    "kubeconfig {}: `{section}` is not a list; left unchanged",
                    path.display()
                ),
            }
        }
    }
}

/// The body (`cluster`, `user` or `context`) of the entry named `name`.
fn existing_body<'a>(
    config: &'a Mapping,
    section: &str,
    body_key: &str,
    name: &str,
    path: &Path,
) -> Result<Option<&'a Mapping>> {
    match config.get(section) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Sequence(list)) => Ok(list
            .iter()
            .find(|item| item_name(item) == Some(name))
            .and_then(|item| item.get(body_key))
            .and_then(Value::as_mapping)),
        Some(_) => bail!(
            "kubeconfig {}: `{section}` is not a list; left unchanged",
            path.display()
        ),
    }
}

fn item_name(item: &Value) -> Option<&str> {
    item.get("name").and_then(Value::as_str)
}

/// Replaces the body of the entry named `name` in `section` (keeping the
/// entry's place in the list and the body's `extensions`), or appends a
/// new entry.
fn put(
    config: &mut Mapping,
    section: &str,
    body_key: &str,
    name: &str,
    mut body: Mapping,
    path: &Path,
) -> Result<()> {
    if !config.contains_key(section) {
        config.insert(section.into(), Value::Sequence(Vec::new()));
    }
    let Some(list) = list_mut(config, section, path)? else {
        bail!("kubeconfig {}: cannot add `{section}`", path.display());
    };
    // Only the first entry of that name counts for kubectl; drop any others.
    let mut seen = false;
    list.retain(|item| {
        if item_name(item) != Some(name) {
            return true;
        }
        let keep = !seen;
        seen = true;
        keep
    });
    match list.iter_mut().find(|item| item_name(item) == Some(name)) {
        Some(Value::Mapping(item)) => {
            if let Some(extensions) = item
                .get(body_key)
                .and_then(|old| old.get("extensions"))
                .cloned()
            {
                body.insert("extensions".into(), extensions);
            }
            item.insert(body_key.into(), Value::Mapping(body));
        }
        _ => list.push(Value::Mapping(mapping([
            ("name", name.into()),
            (body_key, Value::Mapping(body)),
        ]))),
    }
    Ok(())
}

/// Serialises `doc` and writes it over `path`: a temporary file in the same
/// directory, mode 0600 from creation on Unix, synced, then renamed.
fn write(path: &Path, doc: &Value) -> Result<()> {
    let text = serde_yaml_ng::to_string(doc)
        .with_context(|| format!("kubeconfig {}: serialising", path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let context = || format!("kubeconfig {}: writing", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".kubeconfig-")
        .tempfile_in(dir)
        .with_context(context)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(context)?;
    }
    tmp.write_all(text.as_bytes()).with_context(context)?;
    tmp.as_file().sync_all().with_context(context)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}

/// kubectl's lock on a kubeconfig: `<file>.lock`, created exclusively and
/// removed when done.
struct Lock {
    path: PathBuf,
}

impl Lock {
    fn acquire(config: &Path) -> Result<Lock> {
        let mut name = config.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let start = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Lock { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if start.elapsed() >= LOCK_WAIT {
                        bail!(
                            "kubeconfig {}: locked by {}; remove it if no kubectl is running",
                            config.display(),
                            path.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "kubeconfig {}: creating the lock file {}",
                            config.display(),
                            path.display()
                        )
                    });
                }
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(server: &str) -> Entry {
        Entry {
            name: "wrun".to_string(),
            server: server.to_string(),
            ca_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".to_string(),
            token: "abc123".to_string(),
            client_cert_pem: "-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n"
                .to_string(),
            client_key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
                .to_string(),
            namespace: None,
        }
    }

    fn load(path: &Path) -> Value {
        let text = std::fs::read_to_string(path).expect("read");
        serde_yaml_ng::from_str(&text).expect("parse")
    }

    fn named<'a>(doc: &'a Value, section: &str, name: &str) -> Vec<&'a Value> {
        doc.get(section)
            .and_then(Value::as_sequence)
            .map(|list| {
                list.iter()
                    .filter(|item| item_name(item) == Some(name))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn text<'a>(value: &'a Value, keys: &[&str]) -> Option<&'a str> {
        let mut value = value;
        for key in keys {
            value = value.get(*key)?;
        }
        value.as_str()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    const EXISTING: &str = r#"
apiVersion: v1
kind: Config
preferences:
  colors: true
clusters:
- name: prod
  cluster:
    server: https://prod.example:6443
    certificate-authority-data: UFJPRA==
    extensions:
    - name: acme
      extension: {x: 1}
users:
- name: prod-admin
  user:
    token: secret
contexts:
- name: prod
  context:
    cluster: prod
    user: prod-admin
    namespace: payments
current-context: prod
extensions:
- name: something
  extension:
    unknown-field: 42
x-unknown-top-level: kept
"#;

    #[test]
    fn merges_into_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join(".kube").join("config");
        merge(&path, &entry("https://127.0.0.1:6443")).expect("merge");
        let doc = load(&path);
        assert_eq!(text(&doc, &["apiVersion"]), Some("v1"));
        assert_eq!(text(&doc, &["kind"]), Some("Config"));
        assert!(doc.get("preferences").is_some_and(Value::is_mapping));
        assert_eq!(text(&doc, &["current-context"]), Some("wrun"));
        let cluster = named(&doc, "clusters", "wrun");
        assert_eq!(cluster.len(), 1);
        assert_eq!(
            text(cluster[0], &["cluster", "server"]),
            Some("https://127.0.0.1:6443")
        );
        let ca = text(cluster[0], &["cluster", "certificate-authority-data"]).expect("ca data");
        assert_eq!(
            STANDARD.decode(ca).expect("base64"),
            entry("").ca_pem.as_bytes()
        );
        let user = named(&doc, "users", "wrun");
        assert_eq!(text(user[0], &["user", "token"]), Some("abc123"));
        let key = text(user[0], &["user", "client-key-data"]).expect("key data");
        assert_eq!(
            STANDARD.decode(key).expect("base64"),
            entry("").client_key_pem.as_bytes()
        );
        assert!(text(user[0], &["user", "client-certificate-data"]).is_some());
        let context = named(&doc, "contexts", "wrun");
        assert_eq!(text(context[0], &["context", "cluster"]), Some("wrun"));
        assert_eq!(text(context[0], &["context", "user"]), Some("wrun"));
        assert_eq!(text(context[0], &["context", "namespace"]), Some("default"));
        assert!(!path.with_extension("lock").exists());
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn merges_into_an_empty_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(&path, "\n# nothing yet\n").expect("write");
        merge(&path, &entry("https://127.0.0.1:1")).expect("merge");
        let doc = load(&path);
        assert_eq!(text(&doc, &["current-context"]), Some("wrun"));
        assert_eq!(text(&doc, &["kind"]), Some("Config"));
    }

    #[test]
    fn keeps_everything_else_and_replaces_rather_than_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(&path, EXISTING).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
        merge(&path, &entry("https://127.0.0.1:1111")).expect("first merge");
        let mut second = entry("https://127.0.0.1:2222");
        second.token = "def456".to_string();
        merge(&path, &second).expect("second merge");

        let doc = load(&path);
        let before: Value = serde_yaml_ng::from_str(EXISTING).expect("parse");
        // Everything of the user's is still there, unchanged.
        for key in ["preferences", "extensions", "x-unknown-top-level"] {
            assert_eq!(doc.get(key), before.get(key), "{key}");
        }
        for (section, name) in [
            ("clusters", "prod"),
            ("users", "prod-admin"),
            ("contexts", "prod"),
        ] {
            assert_eq!(
                named(&doc, section, name),
                named(&before, section, name),
                "{section}"
            );
        }
        // Ours appear once, with the latest values.
        for section in ["clusters", "users", "contexts"] {
            assert_eq!(named(&doc, section, "wrun").len(), 1, "{section}");
        }
        assert_eq!(
            text(named(&doc, "clusters", "wrun")[0], &["cluster", "server"]),
            Some("https://127.0.0.1:2222")
        );
        assert_eq!(
            text(named(&doc, "users", "wrun")[0], &["user", "token"]),
            Some("def456")
        );
        assert_eq!(text(&doc, &["current-context"]), Some("wrun"));
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn keeps_a_chosen_namespace_unless_told_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        let mut first = entry("https://127.0.0.1:1");
        first.namespace = Some("apps".to_string());
        merge(&path, &first).expect("merge");
        merge(&path, &entry("https://127.0.0.1:1")).expect("merge again");
        let doc = load(&path);
        let context = named(&doc, "contexts", "wrun");
        assert_eq!(text(context[0], &["context", "namespace"]), Some("apps"));
    }

    #[test]
    fn removes_our_entries_and_unsets_the_current_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(&path, EXISTING).expect("write");
        merge(&path, &entry("https://127.0.0.1:1")).expect("merge");
        assert!(remove(&path, "wrun").expect("remove"));
        let doc = load(&path);
        for section in ["clusters", "users", "contexts"] {
            assert!(named(&doc, section, "wrun").is_empty(), "{section}");
        }
        assert_eq!(text(&doc, &["current-context"]), Some(""));
        assert_eq!(named(&doc, "contexts", "prod").len(), 1);
        assert_eq!(text(&doc, &["x-unknown-top-level"]), Some("kept"));
        // Nothing left to remove.
        assert!(!remove(&path, "wrun").expect("remove again"));
        // A missing file has nothing to remove.
        assert!(!remove(&dir.path().join("absent"), "wrun").expect("missing"));
    }

    #[test]
    fn removing_keeps_another_current_context() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        merge(&path, &entry("https://127.0.0.1:1")).expect("merge");
        let mut doc = load(&path);
        if let Some(config) = doc.as_mapping_mut() {
            config.insert("current-context".into(), "other".into());
        }
        std::fs::write(&path, serde_yaml_ng::to_string(&doc).expect("yaml")).expect("write");
        assert!(remove(&path, "wrun").expect("remove"));
        assert_eq!(text(&load(&path), &["current-context"]), Some("other"));
    }

    #[test]
    fn bad_files_are_errors_and_left_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (i, bad) in [
            "clusters: [unclosed\n",
            "- just\n- a list\n",
            "apiVersion: v1\nclusters: {name: x}\n",
            "apiVersion: v1\ncontexts: 3\n",
            "apiVersion: v1\nusers: a string\n",
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("config-{i}"));
            std::fs::write(&path, bad).expect("write");
            let err = merge(&path, &entry("https://127.0.0.1:1")).expect_err(bad);
            assert!(
                format!("{err:#}").contains(&path.display().to_string()),
                "{err:#}"
            );
            let err = remove(&path, "wrun").expect_err(bad);
            assert!(
                format!("{err:#}").contains(&path.display().to_string()),
                "{err:#}"
            );
            assert_eq!(std::fs::read_to_string(&path).expect("read"), bad);
        }
        let path = dir.path().join("binary");
        std::fs::write(&path, [0xff, 0xfe, 0x00]).expect("write");
        merge(&path, &entry("https://127.0.0.1:1")).expect_err("binary");
        assert_eq!(std::fs::read(&path).expect("read"), [0xff, 0xfe, 0x00]);
    }

    #[test]
    fn null_sections_are_filled_in() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters: null\nusers:\ncontexts: []\n",
        )
        .expect("write");
        merge(&path, &entry("https://127.0.0.1:1")).expect("merge");
        let doc = load(&path);
        for section in ["clusters", "users", "contexts"] {
            assert_eq!(named(&doc, section, "wrun").len(), 1, "{section}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn writes_through_a_symlink() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("real-config");
        let link = dir.path().join("config");
        std::fs::write(&target, EXISTING).expect("write");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        merge(&link, &entry("https://127.0.0.1:1")).expect("merge");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("metadata")
                .file_type()
                .is_symlink()
        );
        assert_eq!(named(&load(&target), "clusters", "wrun").len(), 1);
    }

    #[test]
    fn default_path_ends_in_kube_config_or_kubeconfig() {
        // Only checks that it answers; the environment decides which.
        let path = default_path().expect("a path");
        assert!(!path.as_os_str().is_empty());
    }
}
