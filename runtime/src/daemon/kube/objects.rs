//! The generic verbs on every resource: get, list, watch, create, update,
//! patch, delete and deletecollection, with Table printing, selectors,
//! paging, dryRun and field validation. Kind-specific rules come from
//! `cluster::admission`; pod subresources from `pods.rs`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};

use super::Api;
use crate::cluster::admission;
use crate::cluster::store::now;
use crate::daemon::http::{self, Query, Resp};
use crate::kube::selector::{FieldSelector, LabelSelector};
use crate::kube::{KubeError, Resource, decode, patch, table};

/// The most an object body may hold (etcd's limit is 1.5 MiB).
const MAX_BODY: usize = 3 << 20;

/// What a resource path names.
#[derive(Debug)]
pub struct Target {
    pub res: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub sub: Option<String>,
    /// The legacy `/watch/` path prefix.
    pub watch_prefix: bool,
}

pub fn json(status: StatusCode, value: &Value) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut r = http::empty(status);
    *r.body_mut() = http::full(body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn error(e: &KubeError) -> Resp {
    let status = StatusCode::from_u16(e.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &e.to_status())
}

/// Which Table version the Accept header asks for, if any.
pub fn table_version(accept: &str) -> Option<&'static str> {
    table::negotiate(accept)
}

/// The request's options that every verb reads.
#[derive(Clone)]
struct Opts {
    dry_run: bool,
    field_manager: Option<String>,
    /// `Strict`, `Warn` (the default) or `Ignore`.
    field_validation: String,
}

impl Opts {
    fn parse(q: &Query) -> Result<Self, KubeError> {
        let dry_run = match q.all("dryRun").as_slice() {
            [] => false,
            v if v.iter().all(|d| *d == "All") => true,
            v => {
                return Err(KubeError::bad_request(format!(
                    "invalid dryRun {:?}: only \"All\" is supported",
                    v.join(",")
                )));
            }
        };
        let field_validation = q.get("fieldValidation").unwrap_or("Warn").to_string();
        if !["Strict", "Warn", "Ignore"].contains(&field_validation.as_str()) {
            return Err(KubeError::bad_request(format!(
                "fieldValidation {field_validation:?} is not one of Strict, Warn or Ignore"
            )));
        }
        Ok(Self {
            dry_run,
            field_manager: q.get("fieldManager").map(str::to_string),
            field_validation,
        })
    }
}

pub async fn serve(
    api: &Arc<Api>,
    t: Target,
    q: Query,
    accept: String,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    // A namespaced collection asked for without a namespace lists across
    // all namespaces (read only); a cluster-scoped one never takes one.
    if !t.res.namespaced && t.namespace.is_some() {
        return Err(KubeError::NoRoute);
    }
    if t.res.computed {
        return super::metrics::serve(api, &t, &q, req.method());
    }
    if let Some(sub) = t.sub.as_deref() {
        if !t.res.subresources.contains(&sub) {
            return Err(KubeError::NoRoute);
        }
        return match sub {
            "status" => status_subresource(api, &t, &q, req).await,
            "scale" => super::scale::serve(api, &t, &q, req).await,
            "log" => super::pods::log(api, &t, &q).await,
            "exec" | "attach" | "portforward" => super::pods::stream(api, &t, sub, &q, req).await,
            _ => Err(KubeError::NoRoute),
        };
    }
    let method = req.method().clone();
    let watching = t.watch_prefix || q.flag("watch") || q.get("watch") == Some("1");
    match (&method, t.name.as_deref()) {
        (&Method::GET, Some(name)) if !watching => get(api, &t, name, &accept),
        (&Method::GET, _) if watching => super::watch::serve(api, &t, &q, &accept, req),
        (&Method::GET, None) => list(api, &t, &q, &accept),
        (&Method::POST, None) => create(api, &t, &q, req).await,
        (&Method::PUT, Some(name)) => {
            let name = name.to_string();
            update(api, &t, &name, &q, req).await
        }
        (&Method::PATCH, Some(name)) => {
            let name = name.to_string();
            patch_object(api, &t, &name, &q, req).await
        }
        (&Method::DELETE, Some(name)) => {
            let name = name.to_string();
            delete(api, &t, &name, &q, req).await
        }
        (&Method::DELETE, None) => delete_collection(api, &t, &q, req).await,
        _ => Err(KubeError::MethodNotAllowed(format!(
            "the server does not allow this method on the requested resource: {method} {}",
            t.res.qualified_plural()
        ))),
    }
}

fn namespace_for_write(t: &Target) -> Result<Option<&str>, KubeError> {
    if t.res.namespaced {
        match t.namespace.as_deref() {
            Some(ns) => Ok(Some(ns)),
            None => Err(KubeError::bad_request(format!(
                "{} are namespaced: the request must name a namespace",
                t.res.plural
            ))),
        }
    } else {
        Ok(None)
    }
}

fn get(api: &Api, t: &Target, name: &str, accept: &str) -> Result<Resp, KubeError> {
    let obj = api.store.get(t.res, t.namespace.as_deref(), name)?;
    match table_version(accept) {
        Some(v) => Ok(json(
            StatusCode::OK,
            &table::table(
                t.res,
                std::slice::from_ref(&obj),
                table::IncludeObject::Metadata,
                chrono::Utc::now(),
                json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
                v,
            ),
        )),
        None => Ok(json(StatusCode::OK, &obj)),
    }
}

/// The selectors of a list, watch or deletecollection.
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
    kind: &'static str,
}

impl Filter {
    pub fn parse(res: &'static Resource, q: &Query) -> Result<Self, KubeError> {
        let labels = q
            .get("labelSelector")
            .filter(|s| !s.is_empty())
            .map(LabelSelector::parse)
            .transpose()?;
        let fields = q
            .get("fieldSelector")
            .filter(|s| !s.is_empty())
            .map(FieldSelector::parse)
            .transpose()?;
        if let Some(f) = &fields {
            f.check_supported(res.kind)?;
        }
        Ok(Self {
            labels,
            fields,
            kind: res.kind,
        })
    }

    pub fn matches(&self, obj: &Value) -> bool {
        self.labels
            .as_ref()
            .is_none_or(|l| l.matches(&crate::kube::selector::labels_of(obj)))
            && self
                .fields
                .as_ref()
                .is_none_or(|f| f.matches(self.kind, obj))
    }
}

fn list(api: &Api, t: &Target, q: &Query, accept: &str) -> Result<Resp, KubeError> {
    let filter = Filter::parse(t.res, q)?;
    let limit: usize = match q.get("limit") {
        None | Some("") => 0,
        Some(l) => l
            .parse()
            .map_err(|_| KubeError::bad_request(format!("limit {l:?} is not a number")))?,
    };
    let page = api.store.page(
        t.res,
        t.namespace.as_deref(),
        q.get("continue").filter(|c| !c.is_empty()),
        limit,
        &|o| filter.matches(o),
    )?;
    let mut meta = json!({"resourceVersion": page.rv.to_string()});
    if let Some(next) = &page.next {
        meta["continue"] = json!(next);
        meta["remainingItemCount"] = json!(page.remaining);
    }
    if let Some(v) = table_version(accept) {
        let include = table::IncludeObject::parse(q.get("includeObject"))?;
        return Ok(json(
            StatusCode::OK,
            &table::table(t.res, &page.items, include, chrono::Utc::now(), meta, v),
        ));
    }
    Ok(json(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.res.kind),
            "apiVersion": t.res.api_version(),
            "metadata": meta,
            "items": page.items,
        }),
    ))
}

/// Reads a request body as JSON (or YAML) into an object.
async fn body_object(req: Request<Incoming>, res: &Resource) -> Result<(Value, String), KubeError> {
    let ct = content_type(&req);
    let body = read_body(req).await?;
    let value = parse_body(&ct, &body, res)?;
    Ok((value, ct))
}

pub(super) fn content_type(req: &Request<Incoming>) -> String {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

pub(super) async fn read_body(req: Request<Incoming>) -> Result<Bytes, KubeError> {
    http::read_body(req, MAX_BODY)
        .await
        .map_err(|e| KubeError::bad_request(format!("cannot read the request body: {e}")))
}

fn parse_body(ct: &str, body: &[u8], res: &Resource) -> Result<Value, KubeError> {
    let value: Value = match ct {
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml_ng::from_slice(body)
            .map_err(|e| {
                KubeError::bad_request(format!(
                    "the body of the request is not valid YAML for a {}: {e}",
                    res.kind
                ))
            })?,
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            KubeError::bad_request(format!(
                "the body of the request is not valid JSON for a {}: {e}",
                res.kind
            ))
        })?,
        "application/vnd.kubernetes.protobuf" => crate::kube::protobuf::decode(res, body)?,
        other => {
            return Err(KubeError::UnsupportedMediaType(format!(
                "the body's media type {other:?} is not supported: send application/json or application/yaml"
            )));
        }
    };
    if !value.is_object() {
        return Err(KubeError::bad_request(format!(
            "the body of the request must be a {} object",
            res.kind
        )));
    }
    Ok(value)
}

/// Fills in and checks `apiVersion`, `kind` and `metadata.namespace`
/// against the request's path.
fn check_identity(
    res: &Resource,
    obj: &mut Value,
    namespace: Option<&str>,
) -> Result<(), KubeError> {
    let api_version = res.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(api_version),
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(KubeError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(res.kind),
        Some(k) if k == res.kind => {}
        Some(k) => {
            return Err(KubeError::bad_request(format!(
                "{k} in version \"{}\" cannot be handled as a {}: the kind in the body does not match the path",
                res.version, res.kind
            )));
        }
    }
    if obj.get("metadata").is_none() || obj["metadata"].is_null() {
        obj["metadata"] = json!({});
    }
    if !obj["metadata"].is_object() {
        return Err(KubeError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: metadata must be an object",
            res.kind, res.version, res.kind
        )));
    }
    if res.namespaced {
        let path_ns = namespace.unwrap_or_default();
        match obj["metadata"].get("namespace").and_then(Value::as_str) {
            None | Some("") => obj["metadata"]["namespace"] = json!(path_ns),
            Some(ns) if ns == path_ns => {}
            Some(_) => {
                return Err(KubeError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        }
    } else if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("namespace");
    }
    Ok(())
}

/// Decodes the object through its typed form (as the API server's
/// decoder does): a field of the wrong type is a 400, and unknown fields
/// are dropped, refused (Strict) or reported in a Warning header (Warn).
fn decode_typed(
    res: &Resource,
    obj: Value,
    opts: &Opts,
) -> Result<(Value, Vec<String>), KubeError> {
    let (typed, unknown) = decode::roundtrip(res, obj)?;
    if !unknown.is_empty() && opts.field_validation == "Strict" {
        let list: Vec<String> = unknown
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect();
        return Err(KubeError::bad_request(format!(
            "strict decoding error: {}",
            list.join(", ")
        )));
    }
    let warnings = if opts.field_validation == "Warn" {
        unknown
    } else {
        Vec::new()
    };
    Ok((typed, warnings))
}

fn with_warnings(mut r: Resp, unknown: &[String]) -> Resp {
    for f in unknown {
        let text = format!("299 - \"unknown field \\\"{f}\\\"\"");
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append("warning", v);
        }
    }
    r
}

fn require_namespace(
    api: &Api,
    res: &Resource,
    namespace: Option<&str>,
    creating: bool,
) -> Result<(), KubeError> {
    let Some(ns) = namespace.filter(|_| res.namespaced) else {
        return Ok(());
    };
    let namespaces = crate::kube::resources::by_plural("", "v1", "namespaces")
        .ok_or_else(|| KubeError::internal("no namespaces resource"))?;
    match api.store.try_get(namespaces, None, ns)? {
        None => Err(crate::cluster::store::not_found(namespaces, ns)),
        Some(n) if creating && n["metadata"].get("deletionTimestamp").is_some() => {
            Err(KubeError::Forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                res.plural,
                n["metadata"]["name"].as_str().unwrap_or_default()
            )))
        }
        Some(_) => Ok(()),
    }
}

async fn create(
    api: &Arc<Api>,
    t: &Target,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let opts = Opts::parse(q)?;
    let namespace = namespace_for_write(t)?.map(str::to_string);
    let (mut obj, _) = body_object(req, t.res).await?;
    check_identity(t.res, &mut obj, namespace.as_deref())?;
    let (mut obj, unknown) = decode_typed(t.res, obj, &opts)?;
    require_namespace(api, t.res, namespace.as_deref(), true)?;
    admission::admit_create(t.res, &mut obj)?;
    admission::allocate(&api.store, t.res, &mut obj)?;
    if let Some(m) = &opts.field_manager {
        obj = patch::record_update(m, &Value::Null, &obj, &t.res.api_version());
    }
    if opts.dry_run {
        obj["metadata"]["creationTimestamp"] = json!(now());
        obj["metadata"]["uid"] = json!(crate::cluster::store::new_uid());
        return Ok(with_warnings(json(StatusCode::CREATED, &obj), &unknown));
    }
    let made = api.store.create(t.res, obj)?;
    admission::after_create(&api.store, t.res, &made);
    Ok(with_warnings(json(StatusCode::CREATED, &made), &unknown))
}

/// Stores a new version of an object whose old version is `old`: checks
/// it, keeps what the request may not change, and writes it.
fn store_update(
    api: &Api,
    t: &Target,
    old: &Value,
    mut new: Value,
    opts: &Opts,
    status_only: bool,
) -> Result<Value, KubeError> {
    if status_only {
        // The status subresource changes status (and nothing else).
        let mut merged = old.clone();
        merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
        if let Some(rv) = new["metadata"].get("resourceVersion") {
            merged["metadata"]["resourceVersion"] = rv.clone();
        }
        new = merged;
    } else if t.res.subresources.contains(&"status") {
        // The main resource keeps its status.
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    // A client cannot mark or unmark a deletion by writing the object.
    for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        match old["metadata"].get(field) {
            Some(v) => new["metadata"][field] = v.clone(),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove(field);
                }
            }
        }
    }
    admission::admit_update(t.res, old, &mut new)?;
    admission::allocate(&api.store, t.res, &mut new)?;
    if let Some(m) = &opts.field_manager {
        new = patch::record_update(m, old, &new, &t.res.api_version());
    }
    if opts.dry_run {
        return Ok(new);
    }
    api.store.update(t.res, new)
}

async fn update(
    api: &Arc<Api>,
    t: &Target,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let opts = Opts::parse(q)?;
    let namespace = namespace_for_write(t)?.map(str::to_string);
    let (mut obj, _) = body_object(req, t.res).await?;
    check_identity(t.res, &mut obj, namespace.as_deref())?;
    check_name(t.res, &obj, name)?;
    let (obj, unknown) = decode_typed(t.res, obj, &opts)?;
    let old = api.store.get(t.res, namespace.as_deref(), name)?;
    let new = store_update(api, t, &old, obj, &opts, false)?;
    Ok(with_warnings(json(StatusCode::OK, &new), &unknown))
}

fn check_name(res: &Resource, obj: &Value, name: &str) -> Result<(), KubeError> {
    match obj["metadata"].get("name").and_then(Value::as_str) {
        Some(n) if n == name => Ok(()),
        None | Some("") => Ok(()),
        Some(n) => Err(KubeError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name}) for {}",
            res.plural
        ))),
    }
}

async fn patch_object(
    api: &Arc<Api>,
    t: &Target,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    patch_with(api, t, name, q, req, false).await
}

async fn patch_with(
    api: &Arc<Api>,
    t: &Target,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
    status_only: bool,
) -> Result<Resp, KubeError> {
    let opts = Opts::parse(q)?;
    let namespace = namespace_for_write(t)?.map(str::to_string);
    let ct = content_type(&req);
    let body = read_body(req).await?;
    let force = q.flag("force");
    let apply = ct == "application/apply-patch+yaml";
    for _ in 0..8 {
        let old = match api.store.try_get(t.res, namespace.as_deref(), name)? {
            Some(o) => o,
            None if apply && !status_only => Value::Null,
            None => return Err(crate::cluster::store::not_found(t.res, name)),
        };
        let mut new = patch::apply(
            t.res.kind,
            &old,
            &ct,
            &body,
            opts.field_manager.as_deref(),
            force,
        )?;
        if !new.is_object() {
            return Err(KubeError::bad_request(format!(
                "the patched {} \"{name}\" is not an object",
                t.res.kind
            )));
        }
        check_identity(t.res, &mut new, namespace.as_deref())?;
        check_name(t.res, &new, name)?;
        new["metadata"]["name"] = json!(name);
        let (new, unknown) = decode_typed(t.res, new, &opts)?;
        if old.is_null() {
            // Server-side apply of an object that does not exist yet.
            require_namespace(api, t.res, namespace.as_deref(), true)?;
            let mut new = new;
            admission::admit_create(t.res, &mut new)?;
            admission::allocate(&api.store, t.res, &mut new)?;
            if opts.dry_run {
                return Ok(json(StatusCode::CREATED, &new));
            }
            match api.store.create(t.res, new) {
                Ok(made) => {
                    admission::after_create(&api.store, t.res, &made);
                    return Ok(with_warnings(json(StatusCode::CREATED, &made), &unknown));
                }
                Err(KubeError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        // A patch applies to the version it read: it keeps that version's
        // resourceVersion unless the patch set one itself.
        let mut new = new;
        if new["metadata"].get("resourceVersion").is_none() {
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        }
        let patch_set_rv = patch_sets_rv(&body);
        // Server-side apply has recorded its manager's fields itself; only
        // the other patches are recorded as Update operations.
        let mut update_opts = opts.clone();
        if apply {
            update_opts.field_manager = None;
        }
        match store_update(api, t, &old, new, &update_opts, status_only) {
            Ok(v) => return Ok(with_warnings(json(StatusCode::OK, &v), &unknown)),
            Err(KubeError::Conflict { .. }) if !patch_set_rv => continue,
            Err(e) => return Err(e),
        }
    }
    Err(KubeError::internal(format!(
        "{} \"{name}\": too many concurrent writes, try again",
        t.res.plural
    )))
}

/// Whether a patch body names a resourceVersion (then a conflict is the
/// client's to resolve, not retried).
fn patch_sets_rv(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|s| s.contains("\"resourceVersion\""))
}

async fn status_subresource(
    api: &Arc<Api>,
    t: &Target,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let Some(name) = t.name.clone() else {
        return Err(KubeError::NoRoute);
    };
    match *req.method() {
        Method::GET => get(api, t, &name, ""),
        Method::PUT => {
            let opts = Opts::parse(q)?;
            let namespace = namespace_for_write(t)?.map(str::to_string);
            let (mut obj, _) = body_object(req, t.res).await?;
            check_identity(t.res, &mut obj, namespace.as_deref())?;
            check_name(t.res, &obj, &name)?;
            let (obj, unknown) = decode_typed(t.res, obj, &opts)?;
            let old = api.store.get(t.res, namespace.as_deref(), &name)?;
            let new = store_update(api, t, &old, obj, &opts, true)?;
            Ok(with_warnings(json(StatusCode::OK, &new), &unknown))
        }
        Method::PATCH => patch_with(api, t, &name, q, req, true).await,
        _ => Err(KubeError::MethodNotAllowed(format!(
            "the server does not allow this method on {}/status",
            t.res.plural
        ))),
    }
}

/// DeleteOptions, from the body or the query.
#[derive(Debug, Default)]
struct DeleteOpts {
    grace: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    dry_run: bool,
}

async fn delete_opts(q: &Query, req: Request<Incoming>) -> Result<DeleteOpts, KubeError> {
    let body = read_body(req).await?;
    let mut o = DeleteOpts::default();
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            KubeError::bad_request(format!("DeleteOptions: the body is not valid JSON: {e}"))
        })?;
        if !v.is_object() {
            return Err(KubeError::bad_request(
                "DeleteOptions: the body must be an object",
            ));
        }
        o.grace = match v.get("gracePeriodSeconds") {
            None | Some(Value::Null) => None,
            Some(g) => Some(g.as_i64().ok_or_else(|| {
                KubeError::bad_request("DeleteOptions: gracePeriodSeconds must be an integer")
            })?),
        };
        o.propagation = v
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.uid = v["preconditions"]
            .get("uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        o.resource_version = v["preconditions"]
            .get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(d) = v.get("dryRun").and_then(Value::as_array) {
            o.dry_run = d.iter().any(|x| x == "All");
        }
    }
    if let Some(g) = q.get("gracePeriodSeconds") {
        o.grace = Some(g.parse().map_err(|_| {
            KubeError::bad_request(format!("gracePeriodSeconds {g:?} is not an integer"))
        })?);
    }
    if let Some(p) = q.get("propagationPolicy") {
        o.propagation = Some(p.to_string());
    }
    if q.all("dryRun").contains(&"All") {
        o.dry_run = true;
    }
    if let Some(p) = &o.propagation
        && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
    {
        return Err(KubeError::bad_request(format!(
            "propagationPolicy {p:?} is not one of Orphan, Background or Foreground"
        )));
    }
    if o.grace.is_some_and(|g| g < 0) {
        return Err(KubeError::bad_request(
            "gracePeriodSeconds must not be negative",
        ));
    }
    Ok(o)
}

async fn delete(
    api: &Arc<Api>,
    t: &Target,
    name: &str,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let o = delete_opts(q, req).await?;
    let namespace = namespace_for_write(t)?.map(str::to_string);
    let (obj, _gone) = delete_one(api, t.res, namespace.as_deref(), name, &o)?;
    Ok(json(StatusCode::OK, &obj))
}

/// Deletes one object as DeleteOptions say. Returns the object, and
/// whether it is gone (rather than terminating).
fn delete_one(
    api: &Api,
    res: &'static Resource,
    namespace: Option<&str>,
    name: &str,
    o: &DeleteOpts,
) -> Result<(Value, bool), KubeError> {
    let obj = api.store.get(res, namespace, name)?;
    if let Some(uid) = &o.uid
        && obj["metadata"]["uid"].as_str() != Some(uid)
    {
        return Err(KubeError::Conflict {
            group: res.group.into(),
            plural: res.plural.into(),
            name: name.into(),
            message: format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                obj["metadata"]["uid"].as_str().unwrap_or_default()
            ),
        });
    }
    if let Some(rv) = &o.resource_version
        && obj["metadata"]["resourceVersion"].as_str() != Some(rv)
    {
        return Err(KubeError::Conflict {
            group: res.group.into(),
            plural: res.plural.into(),
            name: name.into(),
            message: format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
            ),
        });
    }
    admission::admit_delete(res, &obj)?;
    if o.dry_run {
        return Ok((obj, false));
    }
    admission::delete(&api.store, res, &obj, o.grace, o.propagation.as_deref())
}

async fn delete_collection(
    api: &Arc<Api>,
    t: &Target,
    q: &Query,
    req: Request<Incoming>,
) -> Result<Resp, KubeError> {
    let filter = Filter::parse(t.res, q)?;
    let o = delete_opts(q, req).await?;
    let namespace = namespace_for_write(t)?.map(str::to_string);
    let (items, rv) = api.store.list(t.res, namespace.as_deref())?;
    let mut deleted = Vec::new();
    for item in items.iter().filter(|i| filter.matches(i)) {
        let name = item["metadata"]["name"].as_str().unwrap_or_default();
        let ns = item["metadata"]["namespace"].as_str();
        match delete_one(api, t.res, ns, name, &o) {
            Ok((obj, _)) => deleted.push(obj),
            Err(KubeError::NotFound { .. }) => {}
            Err(KubeError::Forbidden(_)) if t.res.kind == "Namespace" => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.res.kind),
            "apiVersion": t.res.api_version(),
            "metadata": {"resourceVersion": rv.to_string()},
            "items": deleted,
        }),
    ))
}
