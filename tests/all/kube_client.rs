//! The Kubernetes half against a second real client: kube-rs (the Rust
//! client, over rustls with ring), with the kubeconfig `wrun cluster start`
//! wrote. Typed `Api<ConfigMap>` and `Api<Pod>`: create, list with a label
//! selector, watch from a list's resourceVersion, the four patch types,
//! optimistic concurrency, deletion with each propagation policy, a kubia
//! pod waited for with a watch and its logs, and a watch resumed from a
//! version the restarted daemon no longer covers (410 Gone). kube-rs only
//! ever dials 127.0.0.1, the address in the kubeconfig.

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt as _};
use serde_json::{Value, json};

use crate::cluster::Cluster;
use crate::support::HANG;

/// A kube-rs client configured from the cluster's kubeconfig only (its
/// server, CA, token and client certificate), as `kube::Client::try_default`
/// would with `KUBECONFIG` pointing at it.
async fn client(c: &Cluster) -> Client {
    // kube-rs builds its rustls config on the process's default provider:
    // ring, as the rest of wrun uses (whichever test installs it first).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kubeconfig = Kubeconfig::read_from(&c.kubeconfig).expect("read the kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a kube-rs config from the kubeconfig");
    assert!(
        config
            .cluster_url
            .to_string()
            .starts_with("https://127.0.0.1:"),
        "{}",
        config.cluster_url
    );
    assert_eq!(config.default_namespace, "default");
    Client::try_from(config).expect("a kube-rs client")
}

/// Awaits `f`, failing after [`HANG`] (a guard against hangs, not a
/// measure of speed).
async fn guard<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn config_map(name: &str, app: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": app}},
        "data": data,
    }))
    .expect("a ConfigMap")
}

fn data_of(cm: &ConfigMap) -> Value {
    serde_json::to_value(cm.data.clone().unwrap_or_default()).expect("data as JSON")
}

/// The API's error status of a failed call, or a panic naming the call.
#[track_caller]
fn api_error<T: std::fmt::Debug>(what: &str, r: kube::Result<T>) -> Box<kube::core::Status> {
    match r {
        Err(kube::Error::Api(s)) => s,
        other => panic!("{what}: expected an API error, got {other:?}"),
    }
}

/// The next change a watch delivers (bookmarks skipped): its type and
/// object. A stream that ends or fails first fails the test.
async fn next_change<K, S>(events: &mut S, what: &str) -> (&'static str, K)
where
    S: Stream<Item = kube::Result<WatchEvent<K>>> + Unpin,
{
    guard(what, async {
        loop {
            match events.next().await {
                Some(Ok(WatchEvent::Added(o))) => return ("ADDED", o),
                Some(Ok(WatchEvent::Modified(o))) => return ("MODIFIED", o),
                Some(Ok(WatchEvent::Deleted(o))) => return ("DELETED", o),
                Some(Ok(WatchEvent::Bookmark(_))) => continue,
                Some(Ok(WatchEvent::Error(s))) => panic!("{what}: watch error {s:?}"),
                Some(Err(e)) => panic!("{what}: watch failed: {e:?}"),
                None => panic!("{what}: the watch ended"),
            }
        }
    })
    .await
}

fn rv_number<K: kube::Resource>(o: &K) -> u64 {
    o.resource_version()
        .expect("a resourceVersion")
        .parse()
        .expect("wrun's resourceVersions are numbers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_creates_lists_and_watches_configmaps() {
    let c = Cluster::start(&[]);
    let cms: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let pp = PostParams::default();
    for (name, app) in [
        ("alpha", "kube-rs"),
        ("beta", "kube-rs"),
        ("gamma", "other"),
    ] {
        let made = cms
            .create(&pp, &config_map(name, app, json!({"greeting": "hello"})))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e:?}"));
        assert_eq!(made.name_any(), name);
        assert_eq!(made.namespace().as_deref(), Some("default"));
        assert!(made.uid().is_some() && made.creation_timestamp().is_some());
        assert_eq!(data_of(&made), json!({"greeting": "hello"}));
    }
    // Creating a name twice is 409 AlreadyExists.
    let again = cms
        .create(&pp, &config_map("alpha", "kube-rs", json!({})))
        .await;
    let s = api_error("create alpha again", again);
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"), "{s:?}");

    let listed = cms
        .list(&ListParams::default().labels("app=kube-rs"))
        .await
        .expect("list by label");
    let mut names: Vec<String> = listed.items.iter().map(|o| o.name_any()).collect();
    names.sort();
    assert_eq!(names, ["alpha", "beta"]);
    let rv = listed
        .metadata
        .resource_version
        .clone()
        .expect("the list's resourceVersion");
    // Paging: one at a time, with a continue token.
    let first = cms
        .list(&ListParams::default().labels("app=kube-rs").limit(1))
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 1);
    let token = first.metadata.continue_.clone().expect("a continue token");
    let second = cms
        .list(
            &ListParams::default()
                .labels("app=kube-rs")
                .limit(1)
                .continue_token(&token),
        )
        .await
        .expect("second page");
    assert_eq!(second.items.len(), 1);
    assert_ne!(first.items[0].name_any(), second.items[0].name_any());

    // A watch from the list's version sees what follows, in order, as
    // the selection sees it.
    let wp = WatchParams::default().labels("app=kube-rs").timeout(240);
    let mut events = Box::pin(
        guard("the watch", cms.watch(&wp, &rv))
            .await
            .expect("watch"),
    );
    let merge = |v: Value| Patch::Merge(v);
    let none = PatchParams::default();
    // Outside the selection: not seen.
    cms.patch("gamma", &none, &merge(json!({"data": {"x": "1"}})))
        .await
        .expect("patch gamma");
    cms.patch("alpha", &none, &merge(json!({"data": {"greeting": "hi"}})))
        .await
        .expect("patch alpha");
    cms.create(&pp, &config_map("delta", "kube-rs", json!({})))
        .await
        .expect("create delta");
    // Leaving the selection is a DELETED for this watch, entering it an ADDED.
    cms.patch(
        "beta",
        &none,
        &merge(json!({"metadata": {"labels": {"app": "other"}}})),
    )
    .await
    .expect("relabel beta");
    cms.delete("delta", &DeleteParams::default())
        .await
        .expect("delete delta");
    cms.patch(
        "gamma",
        &none,
        &merge(json!({"metadata": {"labels": {"app": "kube-rs"}}})),
    )
    .await
    .expect("relabel gamma");
    let mut seen = Vec::new();
    let mut last_rv: u64 = rv.parse().expect("numeric list version");
    for i in 0..5 {
        let (kind, cm) = next_change(&mut events, &format!("watch event {i}")).await;
        let this_rv = rv_number(&cm);
        assert!(
            this_rv > last_rv,
            "versions go up: {this_rv} after {last_rv}"
        );
        last_rv = this_rv;
        if cm.name_any() == "alpha" {
            assert_eq!(data_of(&cm)["greeting"], "hi");
        }
        seen.push((kind, cm.name_any()));
    }
    let seen: Vec<(&str, &str)> = seen.iter().map(|(k, n)| (*k, n.as_str())).collect();
    assert_eq!(
        seen,
        [
            ("MODIFIED", "alpha"),
            ("ADDED", "delta"),
            ("DELETED", "beta"),
            ("DELETED", "delta"),
            ("ADDED", "gamma"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_patches_conflicts_and_deletes() {
    let c = Cluster::start(&[]);
    let cms: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let pp = PostParams::default();
    let none = PatchParams::default();
    cms.create(
        &pp,
        &config_map("patched", "kube-rs", json!({"a": "1", "gone": "x"})),
    )
    .await
    .expect("create");

    // JSON patch (RFC 6902).
    let ops: kube_json_patch::Patch = serde_json::from_value(json!([
        {"op": "add", "path": "/data/b", "value": "2"},
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "remove", "path": "/data/gone"},
        {"op": "test", "path": "/metadata/labels/app", "value": "kube-rs"},
    ]))
    .expect("a JSON patch");
    let after = cms
        .patch("patched", &none, &Patch::Json::<()>(ops))
        .await
        .expect("JSON patch");
    assert_eq!(data_of(&after), json!({"a": "10", "b": "2"}));

    // JSON merge patch (RFC 7386): null removes.
    let after = cms
        .patch(
            "patched",
            &none,
            &Patch::Merge(json!({
                "metadata": {"labels": {"tier": "back"}},
                "data": {"b": null, "c": "3"},
            })),
        )
        .await
        .expect("merge patch");
    assert_eq!(data_of(&after), json!({"a": "10", "c": "3"}));
    assert_eq!(after.labels()["tier"], "back");
    assert_eq!(after.labels()["app"], "kube-rs");

    // Strategic merge patch: a plain map merges; `$patch: replace`
    // replaces it whole.
    let after = cms
        .patch(
            "patched",
            &none,
            &Patch::Strategic(json!({"data": {"d": "4"}})),
        )
        .await
        .expect("strategic merge patch");
    assert_eq!(data_of(&after), json!({"a": "10", "c": "3", "d": "4"}));
    let after = cms
        .patch(
            "patched",
            &none,
            &Patch::Strategic(json!({"data": {"$patch": "replace", "only": "1"}})),
        )
        .await
        .expect("strategic merge patch with $patch: replace");
    assert_eq!(data_of(&after), json!({"only": "1"}));

    // Server-side apply: it creates, it records its manager, a second
    // manager conflicts on a field the first owns unless it forces.
    let applied = |value: &str| {
        Patch::Apply(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "applied", "labels": {"app": "kube-rs"}},
            "data": {"k": value},
        }))
    };
    let made = cms
        .patch("applied", &PatchParams::apply("kube-rs-a"), &applied("a"))
        .await
        .expect("apply creates");
    assert_eq!(data_of(&made), json!({"k": "a"}));
    let managers: Vec<String> = made
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.iter().any(|m| m == "kube-rs-a"), "{managers:?}");
    let conflict = cms
        .patch("applied", &PatchParams::apply("kube-rs-b"), &applied("b"))
        .await;
    let s = api_error("apply by a second manager", conflict);
    assert_eq!(s.code, 409, "{s:?}");
    assert!(s.message.contains("conflict"), "{s:?}");
    let forced = cms
        .patch(
            "applied",
            &PatchParams::apply("kube-rs-b").force(),
            &applied("b"),
        )
        .await
        .expect("apply with force");
    assert_eq!(data_of(&forced), json!({"k": "b"}));
    // Forcing moved the field from a's Apply entry.
    let a_owns_data = forced.managed_fields().iter().any(|m| {
        m.manager.as_deref() == Some("kube-rs-a")
            && m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.get("f:data").is_some())
    });
    assert!(!a_owns_data, "{:?}", forced.managed_fields());

    // Optimistic concurrency: an update from a stale copy is 409 Conflict,
    // as is a patch that names a stale resourceVersion.
    let read = cms.get("patched").await.expect("get");
    let mut fresh = read.clone();
    fresh
        .data
        .get_or_insert_default()
        .insert("v".into(), "1".into());
    let replaced = cms
        .replace("patched", &pp, &fresh)
        .await
        .expect("replace from the latest copy");
    assert!(rv_number(&replaced) > rv_number(&read));
    let mut stale = read.clone();
    stale
        .data
        .get_or_insert_default()
        .insert("v".into(), "2".into());
    let s = api_error(
        "replace from a stale copy",
        cms.replace("patched", &pp, &stale).await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"), "{s:?}");
    let stale_rv = read.resource_version().expect("rv");
    let s = api_error(
        "merge patch naming a stale resourceVersion",
        cms.patch(
            "patched",
            &none,
            &Patch::Merge(json!({"metadata": {"resourceVersion": stale_rv}, "data": {"v": "3"}})),
        )
        .await,
    );
    assert_eq!(s.code, 409, "{s:?}");
    assert_eq!(
        data_of(&cms.get("patched").await.expect("get"))["v"],
        "1",
        "a refused write changes nothing"
    );

    // Deletion with each propagation policy: each succeeds, and the
    // object is gone (a watch sees it go).
    for (name, dp) in [
        ("del-background", DeleteParams::background()),
        ("del-foreground", DeleteParams::foreground()),
        ("del-orphan", DeleteParams::orphan()),
    ] {
        let made = cms
            .create(&pp, &config_map(name, "kube-rs", json!({})))
            .await
            .expect("create");
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(240);
        let rv = made.resource_version().expect("rv");
        let mut events = Box::pin(
            guard("the watch", cms.watch(&wp, &rv))
                .await
                .expect("watch"),
        );
        cms.delete(name, &dp)
            .await
            .unwrap_or_else(|e| panic!("delete {name} with {dp:?}: {e:?}"));
        loop {
            let (kind, cm) = next_change(&mut events, &format!("{name} to go")).await;
            assert_eq!(cm.name_any(), name);
            if kind == "DELETED" {
                break;
            }
        }
        assert!(
            cms.get_opt(name).await.expect("get_opt").is_none(),
            "{name} is still there"
        );
        let s = api_error("get a deleted object", cms.get(name).await);
        assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"), "{s:?}");
    }
}

/// Who owns what, for server-side apply: the `operation` and the top
/// fields of each managedFields entry.
fn owners(cm: &ConfigMap) -> Vec<(String, String, Vec<String>)> {
    cm.managed_fields()
        .iter()
        .map(|m| {
            let fields = m
                .fields_v1
                .as_ref()
                .and_then(|f| f.0.as_object())
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                fields,
            )
        })
        .collect()
}

/// A manager's applied configuration owns the fields it applied, however
/// many times it applies: a second apply that changes a value keeps the
/// field in its `Apply` entry (recording no `Update` entry beside it), so
/// a later apply that leaves the field out removes it, as in Kubernetes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_server_side_apply_keeps_what_it_applied() {
    let c = Cluster::start(&[]);
    let cms: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let applied = |data: Value| {
        Patch::Apply(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "owned"},
            "data": data,
        }))
    };
    let ssa = PatchParams::apply("kube-rs");
    cms.patch("owned", &ssa, &applied(json!({"k": "1", "j": "1"})))
        .await
        .expect("apply creates");
    let changed = cms
        .patch("owned", &ssa, &applied(json!({"k": "2", "j": "1"})))
        .await
        .expect("apply changes k");
    assert_eq!(data_of(&changed), json!({"k": "2", "j": "1"}));
    assert_eq!(
        owners(&changed),
        [(
            "kube-rs".to_string(),
            "Apply".to_string(),
            vec!["f:data".to_string()]
        )],
        "one Apply entry for the manager: {:?}",
        changed.managed_fields()
    );
    let dropped = cms
        .patch("owned", &ssa, &applied(json!({"j": "1"})))
        .await
        .expect("apply without k");
    assert_eq!(
        data_of(&dropped),
        json!({"j": "1"}),
        "a field its manager no longer applies is removed: {:?}",
        dropped.managed_fields()
    );

    // The same after a forced takeover: the new owner's Apply entry owns
    // the field it took.
    let forced = cms
        .patch(
            "owned",
            &PatchParams::apply("kube-rs-other").force(),
            &applied(json!({"j": "2"})),
        )
        .await
        .expect("apply with force");
    let other = owners(&forced)
        .into_iter()
        .filter(|(m, _, _)| m == "kube-rs-other")
        .collect::<Vec<_>>();
    assert_eq!(
        other,
        [(
            "kube-rs-other".to_string(),
            "Apply".to_string(),
            vec!["f:data".to_string()]
        )],
        "{:?}",
        forced.managed_fields()
    );
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_runs_kubia_and_reads_its_logs() {
    let c = Cluster::start(&["kubia"]);
    let pods: Api<Pod> = Api::default_namespaced(client(&c).await);
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "kubia", "labels": {"app": "kubia"}},
        "spec": {"containers": [{
            "name": "kubia",
            "image": "kubia",
            "ports": [{"containerPort": 8080}],
        }]},
    }))
    .expect("a Pod");
    let made = pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("create the pod");
    let rv = made.resource_version().expect("rv");
    // Waits for Ready with a watch of this one pod from its creation on.
    let wp = WatchParams::default()
        .fields("metadata.name=kubia")
        .timeout(240);
    let mut events = Box::pin(
        guard("the watch", pods.watch(&wp, &rv))
            .await
            .expect("watch"),
    );
    let ready = loop {
        let (kind, p) = next_change(&mut events, "the pod to be Ready").await;
        assert_ne!(kind, "DELETED", "{p:?}");
        if is_ready(&p) {
            break p;
        }
    };
    let status = ready.status.clone().expect("status");
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(
        status
            .pod_ip
            .as_deref()
            .is_some_and(|ip| ip.starts_with("10.244.")),
        "{status:?}"
    );
    let containers = status.container_statuses.expect("container statuses");
    assert!(
        containers[0].ready && containers[0].name == "kubia",
        "{containers:?}"
    );
    let listed = pods
        .list(&ListParams::default().labels("app=kubia"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);

    let logs = pods
        .logs("kubia", &LogParams::default())
        .await
        .expect("the pod's logs");
    assert!(logs.contains("Kubia server starting"), "{logs:?}");
    let tail = pods
        .logs(
            "kubia",
            &LogParams {
                tail_lines: Some(1),
                timestamps: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("the last log line");
    assert_eq!(tail.lines().count(), 1, "{tail:?}");
    assert!(
        tail.split_whitespace()
            .next()
            .is_some_and(|t| t.parse::<k8s_openapi::jiff::Timestamp>().is_ok()),
        "an RFC 3339 timestamp first: {tail:?}"
    );

    // A strategic merge patch merges the containers by name: the port
    // the patch does not mention is kept (a merge patch would replace
    // the list, and so change the immutable spec).
    let patched = pods
        .patch(
            "kubia",
            &PatchParams::default(),
            &Patch::Strategic(json!({
                "metadata": {"labels": {"patched": "strategic"}},
                "spec": {"containers": [{"name": "kubia", "image": "kubia"}]},
            })),
        )
        .await
        .expect("strategic merge patch of the pod");
    assert_eq!(patched.labels()["patched"], "strategic");
    assert_eq!(patched.labels()["app"], "kubia");
    let spec = patched.spec.expect("spec");
    let ports = spec.containers[0].ports.clone().expect("ports kept");
    assert_eq!(ports[0].container_port, 8080);

    // Foreground deletion of a running pod: Terminating, then gone.
    pods.delete("kubia", &DeleteParams::foreground())
        .await
        .expect("delete the pod");
    loop {
        let (kind, _) = next_change(&mut events, "the pod to go").await;
        if kind == "DELETED" {
            break;
        }
    }
    assert!(pods.get_opt("kubia").await.expect("get_opt").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watch_from_a_version_before_a_restart_is_gone() {
    let c = Cluster::start(&[]);
    let cms: Api<ConfigMap> = Api::default_namespaced(client(&c).await);
    let none = PatchParams::default();
    let made = cms
        .create(
            &PostParams::default(),
            &config_map("old", "kube-rs", json!({"v": "0"})),
        )
        .await
        .expect("create");
    let old_rv = made.resource_version().expect("rv");
    for v in ["1", "2"] {
        cms.patch("old", &none, &Patch::Merge(json!({"data": {"v": v}})))
            .await
            .expect("patch");
    }
    // While the daemon runs, its history covers the version.
    let wp = WatchParams::default()
        .fields("metadata.name=old")
        .timeout(240);
    {
        let mut events = Box::pin(
            guard("the watch", cms.watch(&wp, &old_rv))
                .await
                .expect("watch"),
        );
        for v in ["1", "2"] {
            let (kind, cm) = next_change(&mut events, "a change").await;
            assert_eq!((kind, data_of(&cm)["v"].clone()), ("MODIFIED", json!(v)));
        }
    }

    // The history lives in the daemon's memory: restart it.
    c.root.wrun(&["daemon", "stop"]).ok();
    c.root.wrun(&["ps"]).ok();
    let deadline = Instant::now() + HANG;
    let current = loop {
        match cms.get("old").await {
            Ok(cm) => break cm,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "the API did not come back: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(data_of(&current)["v"], "2", "objects survive the restart");

    // A watch from before the restart is 410 Gone: as the answer's status,
    // or as an ERROR event first in the stream (as the API server's watch
    // cache sends it).
    let gone = match guard("the watch", cms.watch(&wp, &old_rv)).await {
        Err(kube::Error::Api(s)) => *s,
        Err(e) => panic!("watch from {old_rv}: {e:?}"),
        Ok(events) => {
            let mut events = Box::pin(events);
            match guard("the watch's first event", events.next()).await {
                Some(Ok(WatchEvent::Error(s))) | Some(Err(kube::Error::Api(s))) => *s,
                other => panic!("watch from {old_rv}: expected 410 Gone, got {other:?}"),
            }
        }
    };
    assert_eq!(
        (gone.code, gone.reason.as_str()),
        (410, "Expired"),
        "{gone:?}"
    );

    // As a reflector does next: list again, and watch from that version.
    let listed = cms
        .list(&ListParams::default().fields("metadata.name=old"))
        .await
        .expect("list again");
    let rv = listed.metadata.resource_version.clone().expect("rv");
    let mut events = Box::pin(
        guard("the watch", cms.watch(&wp, &rv))
            .await
            .expect("watch"),
    );
    cms.patch("old", &none, &Patch::Merge(json!({"data": {"v": "3"}})))
        .await
        .expect("patch");
    let (kind, cm) = next_change(&mut events, "the change after the restart").await;
    assert_eq!((kind, data_of(&cm)["v"].clone()), ("MODIFIED", json!("3")));
}
