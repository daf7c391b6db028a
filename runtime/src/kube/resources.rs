//! The resources the API server serves: one table that discovery, routing,
//! Table printing and the store all read, so a kind is added in one place.

/// One served resource (a kind at one group/version).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    /// `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// The plural lower-case name in URLs: `pods`.
    pub plural: &'static str,
    /// The singular lower-case name: `pod`.
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served under `<plural>/<name>/<sub>`.
    pub subresources: &'static [&'static str],
    /// Not stored: computed from what runs when asked (the resource
    /// metrics API), so it is read only.
    pub computed: bool,
}

/// The verbs of a computed resource.
const READ_VERBS: &[&str] = &["get", "list"];

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Resource {
    /// `v1` or `apps/v1`, as `apiVersion` spells it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The verbs served on the resource itself.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.computed { READ_VERBS } else { VERBS }
    }

    /// `pods` or `deployments.apps`, as kubectl names a resource.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The path of a collection (or of one object, with `name`), in
    /// `namespace` when the resource is namespaced and one is given.
    pub fn path(&self, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut p = self.group_version_path();
        if self.namespaced
            && let Some(ns) = namespace
        {
            p.push_str("/namespaces/");
            p.push_str(ns);
        }
        p.push('/');
        p.push_str(self.plural);
        if let Some(n) = name {
            p.push('/');
            p.push_str(n);
        }
        p
    }
}

macro_rules! res {
    ($group:expr, $version:expr, $kind:expr, $plural:expr, $singular:expr, $ns:expr,
     [$($short:expr),*], [$($cat:expr),*], [$($sub:expr),*]) => {
        Resource {
            group: $group,
            version: $version,
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: &[$($short),*],
            categories: &[$($cat),*],
            subresources: &[$($sub),*],
            computed: false,
        }
    };
}

/// The resource metrics API (`metrics.k8s.io/v1beta1`), which
/// metrics-server serves on a real cluster: what `kubectl top` reads.
macro_rules! metrics {
    ($kind:expr, $plural:expr, $singular:expr, $ns:expr) => {
        Resource {
            group: "metrics.k8s.io",
            version: "v1beta1",
            kind: $kind,
            plural: $plural,
            singular: $singular,
            namespaced: $ns,
            short_names: &[],
            categories: &[],
            subresources: &[],
            computed: true,
        }
    };
}

/// Every served resource, in the order discovery lists them. A `static`,
/// not a `const`: one address for each entry, whoever refers to it.
pub static RESOURCES: &[Resource] = &[
    res!(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        false,
        ["ns"],
        [],
        ["status"]
    ),
    res!(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        false,
        ["no"],
        [],
        ["status"]
    ),
    res!(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        true,
        ["po"],
        ["all"],
        ["status", "log", "exec", "attach", "portforward"]
    ),
    res!("", "v1", "Event", "events", "event", true, ["ev"], [], []),
    res!(
        "",
        "v1",
        "Service",
        "services",
        "service",
        true,
        ["svc"],
        ["all"],
        ["status"]
    ),
    res!(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        true,
        ["ep"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        true,
        ["cm"],
        [],
        []
    ),
    res!("", "v1", "Secret", "secrets", "secret", true, [], [], []),
    res!(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        true,
        ["sa"],
        [],
        []
    ),
    res!(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        true,
        ["rc"],
        ["all"],
        ["status", "scale"]
    ),
    res!(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        true,
        ["rs"],
        ["all"],
        ["status", "scale"]
    ),
    res!(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        true,
        ["deploy"],
        ["all"],
        ["status", "scale"]
    ),
    res!(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        true,
        [],
        [],
        []
    ),
    res!(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        true,
        [],
        ["all"],
        ["status"]
    ),
    metrics!("NodeMetrics", "nodes", "nodemetrics", false),
    metrics!("PodMetrics", "pods", "podmetrics", true),
];

/// The API groups served besides the core one, in discovery order, each
/// with its preferred version.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.iter().any(|(g, _)| *g == r.group) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resources of one group/version.
pub fn in_group_version(group: &str, version: &str) -> Vec<&'static Resource> {
    RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

/// The resource at `group`/`version` whose plural is `plural`.
pub fn by_plural(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The resource of an object's `apiVersion` and `kind`.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

/// Namespaces every cluster has; they cannot be deleted.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let pods = by_plural("", "v1", "pods").expect("pods");
        assert_eq!(pods.kind, "Pod");
        assert_eq!(
            pods.path(Some("default"), Some("kubia")),
            "/api/v1/namespaces/default/pods/kubia"
        );
        assert_eq!(by_kind("v1", "Node").map(|r| r.plural), Some("nodes"));
        assert!(by_kind("apps/v1", "Pod").is_none());
        let nodes = by_plural("", "v1", "nodes").expect("nodes");
        assert_eq!(nodes.path(Some("default"), None), "/api/v1/nodes");
    }

    #[test]
    fn short_names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in RESOURCES {
            for s in r.short_names {
                assert!(seen.insert(*s), "{s} twice");
            }
        }
    }
}
