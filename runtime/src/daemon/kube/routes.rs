//! The Kubernetes API's one dispatcher: discovery and health paths, then
//! `/api/v1/...` and `/apis/<group>/<version>/...` resource paths.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, StatusCode};
use serde_json::Value;

use super::Api;
use super::objects::{self, Target};
use crate::daemon::http::{self, Query, Resp};
use crate::kube::{KubeError, discovery, resources};

pub async fn handle(api: Arc<Api>, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    match route(&api, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, error = %e, "cluster API request failed");
            objects::error(&e)
        }
    }
}

fn accept(req: &Request<Incoming>) -> String {
    req.headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn text(status: StatusCode, body: &'static str) -> Resp {
    let mut r = http::empty(status);
    *r.body_mut() = http::full(body);
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Discovery answers, in the aggregated form when the client asks for it.
fn discovery_answer(accept: &str, core: bool, legacy: Value) -> Resp {
    match discovery::negotiate(accept) {
        Some(version) => {
            let doc = discovery::aggregated(core, version);
            let mut r = objects::json(StatusCode::OK, &doc);
            if let Ok(v) = HeaderValue::from_str(&discovery::content_type(version)) {
                r.headers_mut().insert(CONTENT_TYPE, v);
            }
            r
        }
        None => objects::json(StatusCode::OK, &legacy),
    }
}

async fn route(api: &Arc<Api>, req: Request<Incoming>) -> Result<Resp, KubeError> {
    let method = req.method().clone();
    let segs: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(http::decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let q = Query::parse(req.uri().query());
    let accept = accept(&req);
    let get = method == Method::GET;
    match segs.as_slice() {
        ["version"] if get => Ok(objects::json(
            StatusCode::OK,
            &discovery::version(env!("CARGO_PKG_VERSION")),
        )),
        ["healthz" | "livez" | "readyz"] if get => Ok(text(StatusCode::OK, "ok")),
        ["healthz" | "livez" | "readyz", _] if get => Ok(text(StatusCode::OK, "ok")),
        ["api"] if get => Ok(discovery_answer(
            &accept,
            true,
            discovery::core_versions(&api.server),
        )),
        ["apis"] if get => Ok(discovery_answer(&accept, false, discovery::group_list())),
        ["api", version] if get => discovery::resource_list("", version)
            .map(|d| objects::json(StatusCode::OK, &d))
            .ok_or(KubeError::NoRoute),
        ["apis", group] if get => discovery::group(group)
            .map(|d| objects::json(StatusCode::OK, &d))
            .ok_or(KubeError::NoRoute),
        ["apis", group, version] if get => discovery::resource_list(group, version)
            .map(|d| objects::json(StatusCode::OK, &d))
            .ok_or(KubeError::NoRoute),
        ["openapi", "v2"] | ["swagger-2.0.0.pb-v1"] if get => {
            let mut r = http::empty(StatusCode::OK);
            *r.body_mut() = http::full(discovery::openapi_v2_protobuf());
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            Ok(r)
        }
        ["openapi", "v3"] if get => {
            Ok(objects::json(StatusCode::OK, &discovery::openapi_v3_root()))
        }
        ["openapi", "v3", "api", version] if get => {
            discovery::openapi_v3_group_version("", version)
                .map(|d| objects::json(StatusCode::OK, &d))
                .ok_or(KubeError::NoRoute)
        }
        ["openapi", "v3", "apis", group, version] if get => {
            discovery::openapi_v3_group_version(group, version)
                .map(|d| objects::json(StatusCode::OK, &d))
                .ok_or(KubeError::NoRoute)
        }
        ["api", version, rest @ ..] => {
            let target = parse_target("", version, rest)?;
            objects::serve(api, target, q, accept, req).await
        }
        ["apis", group, version, rest @ ..] => {
            let target = parse_target(group, version, rest)?;
            objects::serve(api, target, q, accept, req).await
        }
        _ => Err(KubeError::NoRoute),
    }
}

/// Parses what follows `/api/v1` or `/apis/<g>/<v>`:
/// `[watch/][namespaces/<ns>/]<plural>[/<name>[/<subresource>...]]`.
fn parse_target(group: &str, version: &str, rest: &[&str]) -> Result<Target, KubeError> {
    let (watch_prefix, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let find =
        |plural: &str| resources::by_plural(group, version, plural).ok_or(KubeError::NoRoute);
    // `namespaces/<ns>/<plural>...` is a namespaced resource, unless what
    // follows the namespace's name is one of its own subresources.
    if let ["namespaces", ns, plural, tail @ ..] = rest
        && let Some(res) = resources::by_plural(group, version, plural)
        && res.namespaced
    {
        let (name, sub) = split_tail(tail)?;
        return Ok(Target {
            res,
            namespace: Some((*ns).to_string()),
            name,
            sub,
            watch_prefix,
        });
    }
    match rest {
        [plural, tail @ ..] => {
            let res = find(plural)?;
            let (name, sub) = split_tail(tail)?;
            Ok(Target {
                res,
                namespace: None,
                name,
                sub,
                watch_prefix,
            })
        }
        [] => Err(KubeError::NoRoute),
    }
}

fn split_tail(tail: &[&str]) -> Result<(Option<String>, Option<String>), KubeError> {
    match tail {
        [] => Ok((None, None)),
        [name] => Ok((Some((*name).to_string()), None)),
        [name, sub] => Ok((Some((*name).to_string()), Some((*sub).to_string()))),
        _ => Err(KubeError::NoRoute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let t = parse_target("", "v1", &["namespaces", "default", "pods", "kubia", "log"])
            .expect("pod log");
        assert_eq!(t.res.plural, "pods");
        assert_eq!(t.namespace.as_deref(), Some("default"));
        assert_eq!(t.name.as_deref(), Some("kubia"));
        assert_eq!(t.sub.as_deref(), Some("log"));
        let t = parse_target("", "v1", &["namespaces", "default"]).expect("namespace");
        assert_eq!(t.res.plural, "namespaces");
        assert_eq!(t.name.as_deref(), Some("default"));
        let t = parse_target("", "v1", &["namespaces", "x", "status"]).expect("namespace status");
        assert_eq!(t.res.plural, "namespaces");
        assert_eq!(t.sub.as_deref(), Some("status"));
        let t = parse_target("", "v1", &["pods"]).expect("all pods");
        assert!(t.namespace.is_none() && t.name.is_none());
        let t = parse_target("", "v1", &["watch", "namespaces", "default", "pods"]).expect("watch");
        assert!(t.watch_prefix);
        assert!(parse_target("", "v1", &["widgets"]).is_err());
        assert!(parse_target("", "v1", &["pods", "a", "b", "c"]).is_err());
    }
}
