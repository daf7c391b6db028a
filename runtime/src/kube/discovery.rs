//! Discovery: what the API server says about itself before a client asks
//! for any object. `/version`, the legacy documents (`/api`, `/apis`,
//! `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`), the aggregated
//! ones (`APIGroupDiscoveryList`, which kubectl ≥ 1.26 asks for first) and
//! the OpenAPI documents kubectl fetches before `apply`.
//!
//! Everything is driven by [`RESOURCES`]: a kind added there is listed here
//! with its subresources, short names and categories.
//!
//! # What kubectl does with OpenAPI
//!
//! Read from kubectl 1.32's sources (`pkg/cmd/util/factory_client_access.go`,
//! `cli-runtime/pkg/resource/query_param_verifier_v3.go`,
//! `kubectl/pkg/cmd/apply/patcher.go`, `kubectl/pkg/explain/v2`) and tried
//! against the real kubectl 1.28 and 1.32:
//!
//! - **Client-side validation** (`apply`/`create` with the default
//!   `--validate=strict`) first asks whether the server validates fields
//!   itself: it looks in the group-version's OpenAPI v3 document for a
//!   `PATCH` operation whose `x-kubernetes-group-version-kind` is the
//!   object's and that has a `fieldValidation` query parameter. Found: no
//!   client-side validation at all (the request's `fieldValidation=Strict`
//!   is trusted). Not found because the document has no such path (or no
//!   document, or no `/openapi/v3`): it falls back to the same question on
//!   OpenAPI v2, which for the minimal v2 document is "unsupported", and then
//!   validates the object against the v2 schemas, where an empty document
//!   has no schema for any kind, so every object passes (only duplicate
//!   keys are still refused). A v2 answer that is not protobuf fails
//!   `apply` outright (`proto: cannot parse invalid wire-format data`).
//! - **Client-side `apply`'s patch** (`OpenAPIV3Patch`, on by default): it
//!   looks for the same `PATCH` operation and, if its request body accepts
//!   `application/strategic-merge-patch+json`, computes the strategic merge
//!   patch from the v3 schemas. With permissive schemas that would lose the
//!   merge keys (`containers` by `name`), so the documents here have no
//!   `PATCH` operation: kubectl then tries v2 (no schema for the kind) and
//!   computes the patch from its compiled-in Go types, the
//!   `$setElementOrder` patches that `kubectl-requests.md` records.
//! - **`kubectl explain`** (v3 by default since 1.27) does not search the
//!   schemas directly: it first finds the resource's collection (or object)
//!   path, `/api/v1/namespaces/{namespace}/pods` or `/api/v1/nodes`, takes
//!   the `x-kubernetes-group-version-kind` of one of its operations, then
//!   the schema in `components.schemas` whose
//!   `x-kubernetes-group-version-kind` list holds that kind. Without the
//!   path it fails with `GVR (/v1, Resource=pods) not found in OpenAPI
//!   schema`.
//!
//! So: `/openapi/v3` lists one document per served group-version, each a
//! valid OpenAPI 3.0 document with, per kind, only the `GET` (`list` and
//! `read`) operations of its collection and object paths, and a permissive
//! schema (`type: object`, `x-kubernetes-preserve-unknown-fields: true`,
//! with `apiVersion`, `kind` and `metadata` described) for the kind and its
//! list, named like the real ones (`io.k8s.api.core.v1.Pod`). Checked with
//! kubectl 1.28 and 1.32: `apply` (create and patch) passes validation and
//! sends strategic merge patches, `explain pods` prints the kind and those
//! three fields. If the API server later honours `fieldValidation` itself,
//! adding each kind's `PATCH` operation with that query parameter (and a
//! request body without the strategic-merge media type) would turn
//! kubectl's client-side validation off in favour of the server's.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256, Sha512};

use super::resources::{RESOURCES, Resource, in_group_version};

/// The Kubernetes version whose API wrun models, `major.minor`.
pub const KUBE_VERSION: &str = "1.33";

/// The aggregated discovery group.
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";

/// The aggregated discovery versions served, preferred first.
const DISCOVERY_VERSIONS: &[&str] = &["v2", "v2beta1"];

/// `v1.33.0-wrun.0.1.0`: the Kubernetes version modelled, then wrun's.
pub fn git_version(wrun_version: &str) -> String {
    format!("v{KUBE_VERSION}.0-wrun.{wrun_version}")
}

/// `/version`, as `version.Info`, for wrun at `wrun_version`
/// (`env!("CARGO_PKG_VERSION")`).
pub fn version(wrun_version: &str) -> Value {
    let (major, minor) = KUBE_VERSION.split_once('.').unwrap_or((KUBE_VERSION, ""));
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": git_version(wrun_version),
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": platform(),
    })
}

/// `linux/amd64`, as Go names the platform.
fn platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("{os}/{arch}")
}

/// `/api`: the legacy core group's versions. `server_address` is the
/// `host:port` clients reach the API server at.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{
            "clientCIDR": "0.0.0.0/0",
            "serverAddress": server_address,
        }],
    })
}

/// The named groups with their versions, preferred (first listed in
/// [`RESOURCES`]) first.
fn named_groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => {
                if !versions.contains(&r.version) {
                    versions.push(r.version);
                }
            }
            None => out.push((r.group, vec![r.version])),
        }
    }
    out
}

/// The core group's versions (only `v1` today, but driven by the table).
fn core_group_versions() -> Vec<&'static str> {
    let mut versions: Vec<&'static str> = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group.is_empty()) {
        if !versions.contains(&r.version) {
            versions.push(r.version);
        }
    }
    versions
}

fn api_group(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    let mut group = json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
    });
    if let Some(preferred) = versions.first() {
        group["preferredVersion"] = gv(preferred);
    }
    group
}

/// `/apis`: the named groups, as an `APIGroupList`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = named_groups()
        .iter()
        .map(|(name, versions)| api_group(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: one named group, as an `APIGroup`; `None` for a group
/// not served.
pub fn group(name: &str) -> Option<Value> {
    let groups = named_groups();
    let (name, versions) = groups.iter().find(|(g, _)| *g == name)?;
    let mut g = api_group(name, versions);
    if let Some(obj) = g.as_object_mut() {
        obj.insert("kind".into(), json!("APIGroup"));
        obj.insert("apiVersion".into(), json!("v1"));
    }
    Some(g)
}

/// What a subresource answers with and allows.
struct Sub {
    /// `None`: the parent's group and version.
    group_version: Option<(&'static str, &'static str)>,
    kind: &'static str,
    verbs: &'static [&'static str],
}

const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const CREATE_GET: &[&str] = &["create", "get"];

/// The kind and verbs of `res`'s subresource `sub`, as the real API server
/// lists them.
fn subresource(res: &Resource, sub: &str) -> Sub {
    let own = |verbs| Sub {
        group_version: None,
        kind: res.kind,
        verbs,
    };
    let other = |kind, verbs| Sub {
        group_version: None,
        kind,
        verbs,
    };
    match sub {
        "status" | "ephemeralcontainers" | "resize" => own(GET_PATCH_UPDATE),
        "log" => own(&["get"]),
        "finalize" => own(&["update"]),
        "exec" => other("PodExecOptions", CREATE_GET),
        "attach" => other("PodAttachOptions", CREATE_GET),
        "portforward" => other("PodPortForwardOptions", CREATE_GET),
        "binding" => other("Binding", &["create"]),
        "proxy" => other(
            match res.kind {
                "Node" => "NodeProxyOptions",
                "Service" => "ServiceProxyOptions",
                _ => "PodProxyOptions",
            },
            &["create", "delete", "get", "patch", "update"],
        ),
        "scale" => Sub {
            group_version: Some(("autoscaling", "v1")),
            kind: "Scale",
            verbs: GET_PATCH_UPDATE,
        },
        "eviction" => Sub {
            group_version: Some(("policy", "v1")),
            kind: "Eviction",
            verbs: &["create"],
        },
        "token" => Sub {
            group_version: Some(("authentication.k8s.io", "v1")),
            kind: "TokenRequest",
            verbs: &["create"],
        },
        _ => own(GET_PATCH_UPDATE),
    }
}

/// A resource's subresources, in the order the real server lists them
/// (alphabetical).
fn sorted_subresources(res: &Resource) -> Vec<&'static str> {
    let mut subs: Vec<&'static str> = res.subresources.to_vec();
    subs.sort_unstable();
    subs.dedup();
    subs
}

/// The `storageVersionHash` the real server lists: the first 8 bytes of
/// SHA-256 of `group/version/kind`, in base64.
fn storage_version_hash(res: &Resource) -> String {
    let digest = Sha256::digest(format!("{}/{}/{}", res.group, res.version, res.kind).as_bytes());
    STANDARD.encode(digest.get(..8).unwrap_or_default())
}

/// `/api/<version>` (group `""`) or `/apis/<group>/<version>`: an
/// `APIResourceList` with each resource, then each of its subresources as
/// `pods/status`. `None` for a group-version not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let resources = in_group_version(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut list = Vec::new();
    for r in resources {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        entry["storageVersionHash"] = json!(storage_version_hash(r));
        list.push(entry);
        for sub in sorted_subresources(r) {
            let s = subresource(r, sub);
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, sub),
                "singularName": "",
                "namespaced": r.namespaced,
            });
            if let Some((g, v)) = s.group_version {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            entry["kind"] = json!(s.kind);
            entry["verbs"] = json!(s.verbs);
            list.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": list,
    }))
}

/// Which aggregated discovery version (`"v2"` or `"v2beta1"`) an `Accept`
/// header asks for, or `None` when the legacy documents (plain JSON) are
/// wanted or nothing served is acceptable.
///
/// The media ranges are taken by quality, then in the order given (as the
/// API server's negotiation does, with wildcards after exact types of the
/// same quality): the first one that can be served decides. One naming
/// `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io` with a served `v` gives
/// that version; plain `application/json` (or `*/*`) gives the legacy
/// document; anything else (protobuf, another `as=`, an unknown discovery
/// version) is skipped.
pub fn negotiate(accept: &str) -> Option<&'static str> {
    // (quality, is a wildcard, answer) for each range that can be served.
    let mut candidates: Vec<(f64, bool, Option<&'static str>)> = Vec::new();
    for clause in accept.split(',') {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let (mut g, mut v, mut r#as, mut q) = (None, None, None, 1.0_f64);
        let mut other_params = false;
        for p in parts {
            let Some((key, val)) = p.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let val = val.trim().trim_matches('"').to_string();
            match key.as_str() {
                "g" => g = Some(val),
                "v" => v = Some(val),
                "as" => r#as = Some(val),
                "q" => q = val.parse::<f64>().unwrap_or(0.0),
                "charset" | "pretty" | "stream" => {}
                _ => other_params = true,
            }
        }
        if q <= 0.0 || q.is_nan() {
            continue;
        }
        let wildcard = media == "*/*" || media == "application/*";
        if media != "application/json" && !wildcard {
            continue;
        }
        let answer = match (r#as.as_deref(), g.as_deref(), v.as_deref()) {
            (None, None, None) if !other_params => None,
            (Some("APIGroupDiscoveryList"), Some(DISCOVERY_GROUP), Some(ver)) if !wildcard => {
                match DISCOVERY_VERSIONS.iter().find(|d| **d == ver) {
                    Some(d) => Some(*d),
                    None => continue,
                }
            }
            _ => continue,
        };
        candidates.push((q, wildcard, answer));
    }
    // Stable: equal ranges keep the header's order.
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    candidates.first().and_then(|c| c.2)
}

/// The `Content-Type` of an aggregated discovery answer in `version`
/// (`"v2"`, `"v2beta1"` or `"apidiscovery.k8s.io/v2"`).
pub fn content_type(version: &str) -> String {
    let v = version.rsplit('/').next().unwrap_or(version);
    format!("application/json;g={DISCOVERY_GROUP};v={v};as=APIGroupDiscoveryList")
}

/// The `apiVersion` of an aggregated document, from `"v2"` or
/// `"apidiscovery.k8s.io/v2"`.
fn discovery_api_version(version: &str) -> String {
    if version.contains('/') {
        version.to_string()
    } else {
        format!("{DISCOVERY_GROUP}/{version}")
    }
}

fn response_kind(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One resource as `APIResourceDiscovery`.
fn resource_discovery(r: &Resource) -> Value {
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": response_kind(r.group, r.version, r.kind),
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs(),
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    let subs: Vec<Value> = sorted_subresources(r)
        .into_iter()
        .map(|sub| {
            let s = subresource(r, sub);
            let (g, v) = s.group_version.unwrap_or((r.group, r.version));
            json!({
                "subresource": sub,
                "responseKind": response_kind(g, v, s.kind),
                "verbs": s.verbs,
            })
        })
        .collect();
    if !subs.is_empty() {
        entry["subresources"] = Value::Array(subs);
    }
    entry
}

/// One group (`""` for the core one) as `APIGroupDiscovery`, its versions
/// in preference order.
fn group_discovery(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources: Vec<Value> = in_group_version(group, v)
                .into_iter()
                .map(resource_discovery)
                .collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let mut metadata = Map::new();
    if !group.is_empty() {
        metadata.insert("name".into(), json!(group));
    }
    metadata.insert("creationTimestamp".into(), Value::Null);
    json!({"metadata": metadata, "versions": versions})
}

/// The aggregated discovery document: for the core group (`/api`) when
/// `core`, else for the named groups (`/apis`), as an
/// `APIGroupDiscoveryList` of `version` (`"v2"`, `"v2beta1"`, or the full
/// `"apidiscovery.k8s.io/v2"`), what [`negotiate`] returned. Serve it with
/// [`content_type`].
pub fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = if core {
        vec![group_discovery("", &core_group_versions())]
    } else {
        named_groups()
            .iter()
            .map(|(g, versions)| group_discovery(g, versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": discovery_api_version(version),
        "metadata": {},
        "items": items,
    })
}

/// `/openapi/v2` (and `/swagger-2.0.0.pb-v1`): the smallest Swagger
/// document, `swagger: "2.0"` and nothing else, in protobuf (field 1,
/// string `"2.0"`). Serve as `application/octet-stream`: kubectl's
/// client-side validation then finds no schema for any kind and lets every
/// object through.
pub fn openapi_v2_protobuf() -> &'static [u8] {
    b"\x0a\x032.0"
}

/// Every served group-version as the OpenAPI v3 root names it: `api/v1`,
/// `apis/apps/v1`.
fn openapi_v3_group_versions() -> Vec<(&'static str, &'static str, String)> {
    let mut out: Vec<(&'static str, &'static str, String)> = Vec::new();
    for r in RESOURCES {
        if out.iter().any(|(g, v, _)| *g == r.group && *v == r.version) {
            continue;
        }
        let path = if r.group.is_empty() {
            format!("api/{}", r.version)
        } else {
            format!("apis/{}/{}", r.group, r.version)
        };
        out.push((r.group, r.version, path));
    }
    out
}

/// `/openapi/v3`: each group-version's document, by path, with a hash of
/// its content in the URL (clients cache by URL).
pub fn openapi_v3_root() -> Value {
    let mut paths = Map::new();
    for (group, version, path) in openapi_v3_group_versions() {
        let Some(doc) = openapi_v3_group_version(group, version) else {
            continue;
        };
        let hash = hex::encode_upper(Sha512::digest(doc.to_string().as_bytes()));
        paths.insert(
            path.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// The OpenAPI schema name of a kind: `io.k8s.api.core.v1.Pod`,
/// `io.k8s.api.apps.v1.Deployment`, `io.k8s.api.networking.v1.Ingress`.
fn schema_name(r: &Resource) -> String {
    let package = if r.group.is_empty() {
        "core"
    } else {
        r.group.split('.').next().unwrap_or(r.group)
    };
    format!("io.k8s.api.{package}.{}.{}", r.version, r.kind)
}

/// A path parameter (`{namespace}`, `{name}`).
fn path_parameter(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": {"type": "string", "uniqueItems": true},
    })
}

/// The `GET` operation of a collection (`list`) or of one object (`read`),
/// as the real document names and tags them. Only `GET`: see the module's
/// documentation for why there is no `PATCH`.
fn get_operation(r: &Resource, action: &str, response_schema: &str) -> Value {
    let group_word = if r.group.is_empty() {
        "Core".to_string()
    } else {
        r.group
            .split('.')
            .next()
            .unwrap_or(r.group)
            .split('-')
            .map(capitalised)
            .collect()
    };
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let version_word = capitalised(r.version);
    let description = if action == "list" {
        format!("list or watch objects of kind {}", r.kind)
    } else {
        format!("read the specified {}", r.kind)
    };
    json!({
        "description": description,
        "operationId": format!("{action}{group_word}{version_word}{scope}{}", r.kind),
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{response_schema}")}}},
            },
        },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "kind": r.kind, "version": r.version},
    })
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `/openapi/v3/api/v1`, `/openapi/v3/apis/<group>/<version>`: a valid
/// OpenAPI 3.0 document with, for each kind served there, the `GET` of its
/// collection and of one object (which is how `kubectl explain` finds the
/// kind), and a permissive schema for the kind and its list carrying their
/// `x-kubernetes-group-version-kind` (see the module's documentation for
/// why). `None` for a group-version not served.
pub fn openapi_v3_group_version(group: &str, version: &str) -> Option<Value> {
    let resources = in_group_version(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut schemas = Map::new();
    let mut paths = Map::new();
    let gvk = |kind: &str| json!([{"group": group, "kind": kind, "version": version}]);
    for r in resources {
        let name = schema_name(r);
        let list_name = format!("{name}List");
        let common = json!({
            "apiVersion": {
                "description": "The versioned schema of this representation of an object.",
                "type": "string",
            },
            "kind": {
                "description": "The REST resource this object represents.",
                "type": "string",
            },
        });
        let mut properties = common.clone();
        properties["metadata"] = json!({
            "description": "Standard object's metadata.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        });
        schemas.insert(
            name.clone(),
            json!({
                "description": format!("A {} ({}). wrun does not describe its fields.", r.kind, r.api_version()),
                "type": "object",
                "properties": properties,
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": gvk(r.kind),
            }),
        );
        let mut list_properties = common;
        list_properties["items"] = json!({
            "description": format!("The {} objects.", r.kind),
            "type": "array",
            "items": {"$ref": format!("#/components/schemas/{name}")},
        });
        list_properties["metadata"] = json!({
            "description": "Standard list metadata.",
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        });
        schemas.insert(
            list_name.clone(),
            json!({
                "description": format!("A list of {}.", r.kind),
                "type": "object",
                "required": ["items"],
                "properties": list_properties,
                "x-kubernetes-group-version-kind": gvk(&format!("{}List", r.kind)),
            }),
        );

        let namespace = path_parameter(
            "namespace",
            "object name and auth scope, such as for teams and projects",
        );
        let collection = if r.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}",
                r.group_version_path(),
                r.plural
            )
        } else {
            format!("{}/{}", r.group_version_path(), r.plural)
        };
        let mut collection_item = json!({"get": get_operation(r, "list", &list_name)});
        let mut object_parameters =
            vec![path_parameter("name", &format!("name of the {}", r.kind))];
        if r.namespaced {
            collection_item["parameters"] = json!([namespace.clone()]);
            object_parameters.push(namespace);
        }
        paths.insert(collection.clone(), collection_item);
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({"get": get_operation(r, "read", &name), "parameters": object_parameters}),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{KUBE_VERSION}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_kubernetes_and_wrun() {
        let v = version("0.1.0");
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "33");
        assert_eq!(v["gitVersion"], "v1.33.0-wrun.0.1.0");
        assert!(v["platform"].as_str().is_some_and(|p| p.contains('/')));
        for field in [
            "gitCommit",
            "gitTreeState",
            "buildDate",
            "goVersion",
            "compiler",
        ] {
            assert!(v[field].is_string(), "{field}");
        }
    }

    #[test]
    fn legacy_core() {
        let api = core_versions("127.0.0.1:6443");
        assert_eq!(api["kind"], "APIVersions");
        assert_eq!(api["versions"], json!(["v1"]));
        assert_eq!(
            api["serverAddressByClientCIDRs"][0]["serverAddress"],
            "127.0.0.1:6443"
        );
        let list = resource_list("", "v1").expect("core v1");
        assert_eq!(list["kind"], "APIResourceList");
        assert_eq!(list["groupVersion"], "v1");
        let resources = list["resources"].as_array().expect("resources");
        let find = |name: &str| {
            resources
                .iter()
                .find(|r| r["name"] == name)
                .unwrap_or_else(|| panic!("{name} listed"))
        };
        let pods = find("pods");
        assert_eq!(pods["kind"], "Pod");
        assert_eq!(pods["singularName"], "pod");
        assert_eq!(pods["namespaced"], true);
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        assert_eq!(pods["storageVersionHash"], "xPOwRZ+Yhw8=");
        assert!(
            pods["verbs"]
                .as_array()
                .is_some_and(|v| v.contains(&json!("watch")))
        );
        assert_eq!(find("namespaces")["storageVersionHash"], "Q3oi5N2YM8M=");
        assert_eq!(find("namespaces")["namespaced"], false);
        assert!(find("secrets").get("shortNames").is_none());

        let status = find("pods/status");
        assert_eq!(status["kind"], "Pod");
        assert_eq!(status["singularName"], "");
        assert_eq!(status["verbs"], json!(["get", "patch", "update"]));
        assert!(status.get("storageVersionHash").is_none());
        assert_eq!(find("pods/log")["verbs"], json!(["get"]));
        assert_eq!(find("pods/exec")["kind"], "PodExecOptions");
        assert_eq!(find("pods/exec")["verbs"], json!(["create", "get"]));
        assert_eq!(find("pods/attach")["kind"], "PodAttachOptions");
        assert_eq!(find("pods/portforward")["kind"], "PodPortForwardOptions");
        assert_eq!(find("namespaces/status")["kind"], "Namespace");
        assert_eq!(find("nodes/status")["namespaced"], false);

        // Each resource is followed by its subresources, alphabetically.
        let names: Vec<&str> = resources
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        let at = |n: &str| names.iter().position(|x| *x == n).unwrap_or(usize::MAX);
        assert!(at("pods") < at("pods/attach"));
        assert!(at("pods/attach") < at("pods/exec"));
        assert!(at("pods/portforward") < at("pods/status"));
        assert!(resource_list("", "v2").is_none());
        assert!(resource_list("apps", "v1beta1").is_none());
    }

    #[test]
    fn scale_subresource_is_autoscaling() {
        let rc = Resource {
            group: "",
            version: "v1",
            kind: "ReplicationController",
            plural: "replicationcontrollers",
            singular: "replicationcontroller",
            namespaced: true,
            short_names: &["rc"],
            categories: &["all"],
            subresources: &["status", "scale"],
            computed: false,
        };
        let s = subresource(&rc, "scale");
        assert_eq!(s.group_version, Some(("autoscaling", "v1")));
        assert_eq!(s.kind, "Scale");
        assert_eq!(s.verbs, &["get", "patch", "update"]);
        let d = resource_discovery(&rc);
        assert_eq!(d["scope"], "Namespaced");
        assert_eq!(d["subresources"][0]["subresource"], "scale");
        assert_eq!(
            d["subresources"][0]["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert_eq!(d["subresources"][1]["subresource"], "status");
        assert_eq!(
            d["subresources"][1]["responseKind"]["kind"],
            "ReplicationController"
        );
    }

    #[test]
    fn groups_follow_the_table() {
        let list = group_list();
        assert_eq!(list["kind"], "APIGroupList");
        let groups = list["groups"].as_array().expect("groups");
        assert_eq!(groups.len(), named_groups().len());
        for (name, versions) in named_groups() {
            let g = group(name).expect("served group");
            assert_eq!(g["kind"], "APIGroup");
            assert_eq!(g["preferredVersion"]["version"], versions[0]);
            assert!(resource_list(name, versions[0]).is_some());
        }
        assert!(group("nonexistent.example.com").is_none());
        assert!(group("").is_none());
    }

    #[test]
    fn aggregated_core() {
        let doc = aggregated(true, "v2");
        assert_eq!(doc["kind"], "APIGroupDiscoveryList");
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let items = doc["items"].as_array().expect("items");
        assert_eq!(items.len(), 1);
        assert!(items[0]["metadata"].get("name").is_none());
        let v1 = &items[0]["versions"][0];
        assert_eq!(v1["version"], "v1");
        assert_eq!(v1["freshness"], "Current");
        let resources = v1["resources"].as_array().expect("resources");
        let pods = resources
            .iter()
            .find(|r| r["resource"] == "pods")
            .expect("pods");
        assert_eq!(
            pods["responseKind"],
            json!({"group": "", "version": "v1", "kind": "Pod"})
        );
        assert_eq!(pods["scope"], "Namespaced");
        assert_eq!(pods["singularResource"], "pod");
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["categories"], json!(["all"]));
        let subs: Vec<&str> = pods["subresources"]
            .as_array()
            .expect("subresources")
            .iter()
            .filter_map(|s| s["subresource"].as_str())
            .collect();
        assert_eq!(subs, ["attach", "exec", "log", "portforward", "status"]);
        let exec = &pods["subresources"][1];
        assert_eq!(exec["responseKind"]["kind"], "PodExecOptions");
        assert_eq!(exec["verbs"], json!(["create", "get"]));
        let nodes = resources
            .iter()
            .find(|r| r["resource"] == "nodes")
            .expect("nodes");
        assert_eq!(nodes["scope"], "Cluster");
        let secrets = resources
            .iter()
            .find(|r| r["resource"] == "secrets")
            .expect("secrets");
        assert!(secrets.get("subresources").is_none());
        assert!(secrets.get("shortNames").is_none());

        let beta = aggregated(false, "apidiscovery.k8s.io/v2beta1");
        assert_eq!(beta["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(
            beta["items"].as_array().map(Vec::len),
            Some(named_groups().len())
        );
    }

    #[test]
    fn negotiation() {
        let kubectl_132 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(kubectl_132), Some("v2"));
        let kubectl_128 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(negotiate(kubectl_128), Some("v2beta1"));
        assert_eq!(negotiate("application/json"), None);
        assert_eq!(negotiate(""), None);
        assert_eq!(negotiate("*/*"), None);
        // Order decides between two acceptable ranges.
        assert_eq!(
            negotiate(
                "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            None
        );
        // Then quality.
        assert_eq!(
            negotiate(
                "application/json;q=0.5, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            ),
            Some("v2")
        );
        // Protobuf and unknown versions are skipped.
        assert_eq!(
            negotiate(
                "application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            ),
            Some("v2beta1")
        );
        // Spaces, case and quotes.
        assert_eq!(
            negotiate(
                " Application/JSON ; g=\"apidiscovery.k8s.io\" ; v=v2 ; as=APIGroupDiscoveryList"
            ),
            Some("v2")
        );
        // A Table is not discovery; garbage does not panic.
        assert_eq!(
            negotiate("application/json;as=Table;v=v1;g=meta.k8s.io"),
            None
        );
        assert_eq!(negotiate(";;,,=;q=;,application/json;q=abc"), None);
        assert_eq!(
            content_type("v2"),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        assert_eq!(
            content_type("apidiscovery.k8s.io/v2beta1"),
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
        );
    }

    #[test]
    fn openapi() {
        assert_eq!(openapi_v2_protobuf(), &[0x0a, 0x03, 0x32, 0x2e, 0x30]);
        let root = openapi_v3_root();
        let url = root["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .expect("api/v1 listed");
        assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
        assert_eq!(
            root["paths"].as_object().map(|p| p.len()),
            Some(openapi_v3_group_versions().len())
        );
        let doc = openapi_v3_group_version("", "v1").expect("core v1");
        assert_eq!(doc["openapi"], "3.0.0");
        // GET operations only: kubectl's apply looks for a PATCH one.
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.values().all(|p| p.get("patch").is_none()));
        let list = &paths["/api/v1/namespaces/{namespace}/pods"]["get"];
        assert_eq!(list["x-kubernetes-action"], "list");
        assert_eq!(list["operationId"], "listCoreV1NamespacedPod");
        assert_eq!(
            list["x-kubernetes-group-version-kind"],
            json!({"group": "", "kind": "Pod", "version": "v1"})
        );
        let read = &paths["/api/v1/nodes/{name}"]["get"];
        assert_eq!(read["operationId"], "readCoreV1Node");
        assert_eq!(
            read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Node"
        );
        assert_eq!(
            doc["components"]["schemas"]["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"]
                [0]["kind"],
            "PodList"
        );
        let pod = &doc["components"]["schemas"]["io.k8s.api.core.v1.Pod"];
        assert_eq!(pod["type"], "object");
        assert_eq!(pod["x-kubernetes-preserve-unknown-fields"], true);
        assert_eq!(
            pod["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "Pod", "version": "v1"}])
        );
        assert!(openapi_v3_group_version("", "v9").is_none());
        let deployment = Resource {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            plural: "deployments",
            singular: "deployment",
            namespaced: true,
            short_names: &["deploy"],
            categories: &["all"],
            subresources: &["scale", "status"],
            computed: false,
        };
        assert_eq!(schema_name(&deployment), "io.k8s.api.apps.v1.Deployment");
    }
}
