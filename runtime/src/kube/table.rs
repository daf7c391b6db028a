//! Server-side Tables: what `kubectl get` prints. kubectl asks for
//! `application/json;as=Table;v=v1;g=meta.k8s.io` and prints the columns
//! the server chose, so the server must print each kind as Kubernetes'
//! own printers do (`pkg/printers/internalversion/printers.go`, 1.33):
//! the same columns, in the same order, with the same cells.
//!
//! Objects arrive as JSON and may be incomplete or malformed: a field that
//! is missing or of the wrong type prints as `<none>`, `<unknown>`, `0` or
//! an empty cell (whatever Kubernetes prints for the field's zero value);
//! nothing here panics. Where a real server would have defaulted a field
//! before printing (a replica count, a Service's type or a port's
//! protocol) the default is assumed.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use super::resources::Resource;
use super::status::KubeError;

/// The Table (and PartialObjectMetadata) version kubectl asks for first.
pub const TABLE_V1: &str = "meta.k8s.io/v1";
/// The older Table version, still accepted.
pub const TABLE_V1BETA1: &str = "meta.k8s.io/v1beta1";

/// What each row carries besides its cells (`?includeObject=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata, as a `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// The `includeObject` query parameter: absent or empty is `Metadata`;
    /// an unknown value is a 400, as the real server answers.
    pub fn parse(value: Option<&str>) -> Result<Self, KubeError> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(Self::Metadata),
            "None" => Ok(Self::None),
            "Object" => Ok(Self::Object),
            other => Err(KubeError::bad_request(format!(
                "unrecognized includeObject value: {other:?}"
            ))),
        }
    }
}

/// Which Table version (`meta.k8s.io/v1` or `meta.k8s.io/v1beta1`) an
/// `Accept` header asks for, or `None` when it asks for the plain object
/// (or for nothing a Table answers). Ranges are taken by quality, then in
/// the header's order.
pub fn negotiate(accept: &str) -> Option<&'static str> {
    let mut candidates: Vec<(f64, Option<&'static str>)> = Vec::new();
    for clause in accept.split(',') {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let (mut g, mut v, mut r#as, mut q) = (None, None, None, 1.0_f64);
        for p in parts {
            let Some((key, val)) = p.split_once('=') else {
                continue;
            };
            let val = val.trim().trim_matches('"').to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "g" => g = Some(val),
                "v" => v = Some(val),
                "as" => r#as = Some(val),
                "q" => q = val.parse::<f64>().unwrap_or(0.0),
                _ => {}
            }
        }
        if q <= 0.0 || q.is_nan() {
            continue;
        }
        if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
            continue;
        }
        let answer = match (r#as.as_deref(), g.as_deref(), v.as_deref()) {
            (None, _, _) => None,
            (Some("Table"), Some("meta.k8s.io"), Some("v1")) => Some(TABLE_V1),
            (Some("Table"), Some("meta.k8s.io"), Some("v1beta1")) => Some(TABLE_V1BETA1),
            _ => continue,
        };
        candidates.push((q, answer));
    }
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    candidates.first().and_then(|c| c.1)
}

/// `meta.k8s.io/v1` from `v1` or `meta.k8s.io/v1`.
fn table_api_version(api_version: &str) -> String {
    if api_version.contains('/') {
        api_version.to_string()
    } else {
        format!("meta.k8s.io/{api_version}")
    }
}

/// One column of a Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    /// The OpenAPI type of the cells: `string`, `integer`, `date`.
    pub r#type: &'static str,
    /// `name` for the column holding the object's name, else empty.
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always printed; 1: only with `-o wide`.
    pub priority: u8,
}

impl Column {
    fn to_json(self) -> Value {
        json!({
            "name": self.name,
            "type": self.r#type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

const fn col(name: &'static str, r#type: &'static str, description: &'static str) -> Column {
    Column {
        name,
        r#type,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(name: &'static str, r#type: &'static str, description: &'static str) -> Column {
    Column {
        name,
        r#type,
        format: "",
        description,
        priority: 1,
    }
}

const NAME: Column = Column {
    name: "Name",
    r#type: "string",
    format: "name",
    description: "The object's name, unique among objects of its kind in its namespace (or in the cluster, for cluster-scoped kinds). Set by the client when the object is created; cannot be changed.",
    priority: 0,
};

const AGE: Column = col(
    "Age",
    "string",
    "How long ago the server created the object (its metadata.creationTimestamp, RFC 3339, UTC).",
);

const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

const POD_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide(
        "IP",
        "string",
        "The pod's IP address (the first of status.podIPs), once it has one.",
    ),
    wide(
        "Node",
        "string",
        "The node the pod is bound to (spec.nodeName).",
    ),
    wide(
        "Nominated Node",
        "string",
        "The node the scheduler nominated for the pod while preempting others (status.nominatedNodeName).",
    ),
    wide(
        "Readiness Gates",
        "string",
        "How many of the pod's readiness gates (spec.readinessGates) have their condition true.",
    ),
];

const NODE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the node"),
    col("Roles", "string", "The roles of the node"),
    AGE,
    col(
        "Version",
        "string",
        "The version of the kubelet on the node.",
    ),
    wide(
        "Internal-IP",
        "string",
        "The node's first InternalIP address.",
    ),
    wide(
        "External-IP",
        "string",
        "The node's first ExternalIP address.",
    ),
    wide(
        "OS-Image",
        "string",
        "The operating system the node reports.",
    ),
    wide(
        "Kernel-Version",
        "string",
        "The kernel version the node reports.",
    ),
    wide(
        "Container-Runtime",
        "string",
        "The container runtime and its version, as the node reports them.",
    ),
];

const NAMESPACE_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "The status of the namespace"),
    AGE,
];

const EVENT_COLUMNS: &[Column] = &[
    col(
        "Last Seen",
        "string",
        "How long ago the event was last recorded.",
    ),
    col(
        "Type",
        "string",
        "The type of the event: Normal or Warning.",
    ),
    col(
        "Reason",
        "string",
        "A short, machine-understandable reason for the event.",
    ),
    col("Object", "string", "The object the event is about."),
    wide(
        "Subobject",
        "string",
        "The part of the object the event is about (involvedObject.fieldPath), such as one container.",
    ),
    wide(
        "Source",
        "string",
        "The component (and host) that reported the event.",
    ),
    col(
        "Message",
        "string",
        "A human-readable description of the event.",
    ),
    wide(
        "First Seen",
        "string",
        "How long ago the event was first recorded.",
    ),
    wide("Count", "string", "How many times the event has occurred."),
    Column {
        priority: 1,
        ..NAME
    },
];

const CONFIG_MAP_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Data",
        "string",
        "The number of entries in data and binaryData.",
    ),
    AGE,
];

const SECRET_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "The type of the secret, which says how its data is used.",
    ),
    col("Data", "string", "The number of entries in data."),
    AGE,
];

const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Secrets",
        "string",
        "The number of secrets the service account lists.",
    ),
    AGE,
];

const SERVICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Type",
        "string",
        "How the service is exposed: ClusterIP, NodePort, LoadBalancer or ExternalName.",
    ),
    col(
        "Cluster-IP",
        "string",
        "The service's IP address inside the cluster.",
    ),
    col(
        "External-IP",
        "string",
        "The addresses the service is reachable at from outside the cluster.",
    ),
    col(
        "Port(s)",
        "string",
        "The ports the service exposes (and their node ports).",
    ),
    AGE,
    wide(
        "Selector",
        "string",
        "The labels of the pods the service routes to.",
    ),
];

const ENDPOINTS_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Endpoints",
        "string",
        "The addresses (and ports) that currently back the service.",
    ),
    AGE,
];

const ENDPOINT_SLICE_COLUMNS: &[Column] = &[
    NAME,
    col(
        "AddressType",
        "string",
        "The type of address carried by this EndpointSlice.",
    ),
    col(
        "Ports",
        "string",
        "The ports exposed by this EndpointSlice.",
    ),
    col(
        "Endpoints",
        "string",
        "The addresses of the endpoints in this EndpointSlice.",
    ),
    AGE,
];

const REPLICATION_CONTROLLER_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Desired",
        "integer",
        "The number of pods wanted (spec.replicas).",
    ),
    col(
        "Current",
        "integer",
        "The number of pods that exist (status.replicas).",
    ),
    col(
        "Ready",
        "integer",
        "The number of those pods that are ready.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", "The labels of the pods it manages."),
];

const REPLICA_SET_COLUMNS: &[Column] = REPLICATION_CONTROLLER_COLUMNS;

const DEPLOYMENT_COLUMNS: &[Column] = &[
    NAME,
    col("Ready", "string", "Number of the pod with ready state"),
    col(
        "Up-to-date",
        "string",
        "The number of pods that run the current template.",
    ),
    col(
        "Available",
        "string",
        "The number of pods that have been ready for at least minReadySeconds.",
    ),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", "The labels of the pods it manages."),
];

const JOB_COLUMNS: &[Column] = &[
    NAME,
    col("Status", "string", "Status of the job."),
    col(
        "Completions",
        "string",
        "The number of pods that succeeded, of those wanted.",
    ),
    col("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    wide("Selector", "string", "The labels of the pods it manages."),
];

const DEFAULT_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Created At",
        "date",
        "When the server created the object (metadata.creationTimestamp, RFC 3339, UTC).",
    ),
];

/// Which printer prints a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Printer {
    EndpointSlice,
    Pod,
    Node,
    Namespace,
    Event,
    ConfigMap,
    Secret,
    ServiceAccount,
    Service,
    Endpoints,
    ReplicationController,
    ReplicaSet,
    Deployment,
    Job,
    Default,
}

fn printer(res: &Resource) -> Printer {
    match (res.group, res.kind) {
        ("", "Pod") => Printer::Pod,
        ("", "Node") => Printer::Node,
        ("", "Namespace") => Printer::Namespace,
        ("", "Event") => Printer::Event,
        ("", "ConfigMap") => Printer::ConfigMap,
        ("", "Secret") => Printer::Secret,
        ("", "ServiceAccount") => Printer::ServiceAccount,
        ("", "Service") => Printer::Service,
        ("", "Endpoints") => Printer::Endpoints,
        ("discovery.k8s.io", "EndpointSlice") => Printer::EndpointSlice,
        ("", "ReplicationController") => Printer::ReplicationController,
        ("apps" | "extensions", "ReplicaSet") => Printer::ReplicaSet,
        ("apps" | "extensions", "Deployment") => Printer::Deployment,
        ("batch", "Job") => Printer::Job,
        _ => Printer::Default,
    }
}

/// An EndpointSlice as Kubernetes prints it: its ports, and at most three
/// addresses, then "+ N more...".
fn endpoint_slice_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = o["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["port"].as_i64().map(|n| n.to_string()))
        .collect();
    let addresses: Vec<String> = o["endpoints"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["addresses"].as_array().into_iter().flatten())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect();
    let shown = if addresses.is_empty() {
        "<unset>".to_string()
    } else if addresses.len() > 3 {
        format!(
            "{} + {} more...",
            addresses[..3].join(","),
            addresses.len() - 3
        )
    } else {
        addresses.join(",")
    };
    vec![
        name(o),
        json!(o["addressType"].as_str().unwrap_or_default()),
        json!(if ports.is_empty() {
            "<unset>".to_string()
        } else {
            ports.join(",")
        }),
        json!(shown),
        age(o, now),
    ]
}

/// The columns a kind is printed with, `-o wide` ones included.
pub fn columns(res: &Resource) -> &'static [Column] {
    match printer(res) {
        Printer::Pod => POD_COLUMNS,
        Printer::Node => NODE_COLUMNS,
        Printer::Namespace => NAMESPACE_COLUMNS,
        Printer::Event => EVENT_COLUMNS,
        Printer::ConfigMap => CONFIG_MAP_COLUMNS,
        Printer::Secret => SECRET_COLUMNS,
        Printer::ServiceAccount => SERVICE_ACCOUNT_COLUMNS,
        Printer::Service => SERVICE_COLUMNS,
        Printer::Endpoints => ENDPOINTS_COLUMNS,
        Printer::EndpointSlice => ENDPOINT_SLICE_COLUMNS,
        Printer::ReplicationController => REPLICATION_CONTROLLER_COLUMNS,
        Printer::ReplicaSet => REPLICA_SET_COLUMNS,
        Printer::Deployment => DEPLOYMENT_COLUMNS,
        Printer::Job => JOB_COLUMNS,
        Printer::Default => DEFAULT_COLUMNS,
    }
}

/// One object's cells, one per column of [`columns`].
pub fn cells(res: &Resource, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    printed(res, object, now).0
}

/// The cells and, for finished pods, the row's conditions.
fn printed(res: &Resource, o: &Value, now: DateTime<Utc>) -> (Vec<Value>, Option<Value>) {
    match printer(res) {
        Printer::Pod => pod_cells(o, now),
        Printer::Node => (node_cells(o, now), None),
        Printer::Namespace => (
            vec![name(o), json!(text(o, &["status", "phase"])), age(o, now)],
            None,
        ),
        Printer::Event => (event_cells(o, now), None),
        Printer::ConfigMap => (
            vec![
                name(o),
                json!(len(o, &["data"]) + len(o, &["binaryData"])),
                age(o, now),
            ],
            None,
        ),
        Printer::Secret => (
            vec![
                name(o),
                json!(text(o, &["type"])),
                json!(len(o, &["data"])),
                age(o, now),
            ],
            None,
        ),
        Printer::ServiceAccount => (
            vec![name(o), json!(len(o, &["secrets"])), age(o, now)],
            None,
        ),
        Printer::Service => (service_cells(o, now), None),
        Printer::Endpoints => (vec![name(o), json!(format_endpoints(o)), age(o, now)], None),
        Printer::EndpointSlice => (endpoint_slice_cells(o, now), None),
        Printer::ReplicationController => (
            replicas_cells(o, now, format_labels(at(o, &["spec", "selector"]))),
            None,
        ),
        Printer::ReplicaSet => (
            replicas_cells(o, now, format_label_selector(at(o, &["spec", "selector"]))),
            None,
        ),
        Printer::Deployment => (deployment_cells(o, now), None),
        Printer::Job => (job_cells(o, now), None),
        Printer::Default => (
            vec![
                name(o),
                // Go's zero time when there is none.
                json!(time(o, &["metadata", "creationTimestamp"]).map_or_else(
                    || "0001-01-01T00:00:00Z".to_string(),
                    |t| t.to_rfc3339_opts(SecondsFormat::Secs, true)
                )),
            ],
            None,
        ),
    }
}

/// One Table row: the cells, the conditions of a finished pod, and the
/// object as `include` asks (a `PartialObjectMetadata` of the Table's
/// `api_version` for `Metadata`).
pub fn row(
    res: &Resource,
    object: &Value,
    include: IncludeObject,
    now: DateTime<Utc>,
    api_version: &str,
) -> Value {
    let (cells, conditions) = printed(res, object, now);
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    if let Some(c) = conditions {
        row.insert("conditions".into(), c);
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let metadata = at(object, &["metadata"])
                .filter(|m| m.is_object())
                .cloned()
                .unwrap_or_else(|| json!({}));
            row.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": table_api_version(api_version),
                    "metadata": metadata,
                }),
            );
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Value::Object(row)
}

fn column_definitions(res: &Resource) -> Value {
    Value::Array(columns(res).iter().map(|c| c.to_json()).collect())
}

/// A list (or a single object, as a one-item list) as a Table of
/// `api_version` (`meta.k8s.io/v1` or `meta.k8s.io/v1beta1`). `list_meta`
/// is the list's metadata (`resourceVersion`, `continue`,
/// `remainingItemCount`); for a single object, its `resourceVersion`.
pub fn table(
    res: &Resource,
    objects: &[Value],
    include_object: IncludeObject,
    now: DateTime<Utc>,
    list_meta: Value,
    api_version: &str,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(res, o, include_object, now, api_version))
        .collect();
    let metadata = if list_meta.is_object() {
        list_meta
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": table_api_version(api_version),
        "metadata": metadata,
        "columnDefinitions": column_definitions(res),
        "rows": rows,
    })
}

/// The one-row Table a watch event carries for `object` when the watch
/// asked for Tables. The real server sends the column definitions with the
/// first event only (`with_headers`) and `null` after.
pub fn watch_table(
    res: &Resource,
    object: &Value,
    include_object: IncludeObject,
    now: DateTime<Utc>,
    api_version: &str,
    with_headers: bool,
) -> Value {
    let mut metadata = Map::new();
    if let Some(rv) = at(object, &["metadata", "resourceVersion"]).and_then(Value::as_str) {
        metadata.insert("resourceVersion".into(), json!(rv));
    }
    json!({
        "kind": "Table",
        "apiVersion": table_api_version(api_version),
        "metadata": metadata,
        "columnDefinitions": if with_headers { column_definitions(res) } else { Value::Null },
        "rows": [row(res, object, include_object, now, api_version)],
    })
}

// --- Durations ---------------------------------------------------------

/// A duration as Kubernetes prints ages (`duration.HumanDuration`): two or
/// three significant figures, `5s`, `2m10s`, `14m`, `3h5m`, `8h`, `2d3h`,
/// `5d`, `3y45d`, `9y`; up to a second in the future is `0s`, more is
/// `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    // Whole seconds, truncated towards zero.
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if hours < 24 * 365 * 8 {
        return match days % 365 {
            0 => format!("{years}y"),
            d => format!("{years}y{d}d"),
        };
    }
    format!("{years}y")
}

/// How long ago `t` was, or `<unknown>` when it is not set.
fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".into(),
    }
}

// --- Reading untrusted JSON --------------------------------------------

fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key))
}

/// The object at `path`, if there is one (`null` and other types are not).
fn obj<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    at(v, path).filter(|x| x.is_object())
}

fn text<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn opt_int(v: &Value, path: &[&str]) -> Option<i64> {
    let x = at(v, path)?;
    x.as_i64().or_else(|| {
        x.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

fn int(v: &Value, path: &[&str]) -> i64 {
    opt_int(v, path).unwrap_or(0)
}

fn flag(v: &Value, path: &[&str]) -> bool {
    at(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// The number of entries of a map or list.
fn len(v: &Value, path: &[&str]) -> i64 {
    let n = match at(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn time(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let s = at(v, path)?.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn name(o: &Value) -> Value {
    json!(text(o, &["metadata", "name"]))
}

fn age(o: &Value, now: DateTime<Utc>) -> Value {
    json!(since(time(o, &["metadata", "creationTimestamp"]), now))
}

fn deleting(o: &Value) -> bool {
    at(o, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_null())
}

/// Whether the condition of `kind` in the list at `path` is `True` (the
/// first one of that type decides).
fn condition_true(o: &Value, path: &[&str], kind: &str) -> bool {
    list(o, path)
        .iter()
        .find(|c| text(c, &["type"]) == kind)
        .is_some_and(|c| text(c, &["status"]) == "True")
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".into()
    } else {
        s.to_string()
    }
}

/// Keeps the later of two times.
fn keep_latest(latest: &mut Option<DateTime<Utc>>, t: Option<DateTime<Utc>>) {
    if let Some(t) = t
        && latest.is_none_or(|l| l < t)
    {
        *latest = Some(t);
    }
}

// --- Pods --------------------------------------------------------------

/// `printPod`: readiness, the status reason kubectl users know
/// (`CrashLoopBackOff`, `Init:1/2`, `Terminating`...), restarts and when
/// the last one was.
fn pod_cells(pod: &Value, now: DateTime<Utc>) -> (Vec<Value>, Option<Value>) {
    let init_specs = list(pod, &["spec", "initContainers"]);
    // A sidecar: an init container that keeps running beside the others.
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .rev()
            .find(|c| text(c, &["name"]) == name)
            .is_some_and(|c| text(c, &["restartPolicy"]) == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| text(c, &["restartPolicy"]) == "Always")
        .count();
    let total = list(pod, &["spec", "containers"]).len() + sidecars;
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let phase = text(pod, &["status", "phase"]);
    let status_reason = text(pod, &["status", "reason"]);
    let mut reason = if status_reason.is_empty() {
        phase.to_string()
    } else {
        status_reason.to_string()
    };
    if list(pod, &["status", "conditions"])
        .iter()
        .any(|c| text(c, &["type"]) == "PodScheduled" && text(c, &["reason"]) == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }
    let conditions = match phase {
        "Succeeded" => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }])),
        "Failed" => Some(json!([{
            "type": "Completed",
            "status": "True",
            "reason": "Failed",
            "message": "The pod failed.",
        }])),
        _ => None,
    };

    let mut initializing = false;
    for (i, c) in list(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        let count = int(c, &["restartCount"]);
        let finished = time(c, &["lastState", "terminated", "finishedAt"]);
        restarts = restarts.saturating_add(count);
        keep_latest(&mut last_restart, finished);
        let sidecar = is_sidecar(text(c, &["name"]));
        if sidecar {
            sidecar_restarts = sidecar_restarts.saturating_add(count);
            keep_latest(&mut last_sidecar_restart, finished);
        }
        let terminated = obj(c, &["state", "terminated"]);
        let waiting_reason = obj(c, &["state", "waiting"]).map_or("", |w| text(w, &["reason"]));
        if terminated.is_some_and(|t| int(t, &["exitCode"]) == 0) {
            continue;
        }
        if sidecar && flag(c, &["started"]) {
            if flag(c, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        reason = if let Some(t) = terminated {
            match text(t, &["reason"]) {
                "" if int(t, &["signal"]) != 0 => format!("Init:Signal:{}", int(t, &["signal"])),
                "" => format!("Init:ExitCode:{}", int(t, &["exitCode"])),
                r => format!("Init:{r}"),
            }
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            format!("Init:{waiting_reason}")
        } else {
            format!("Init:{i}/{}", init_specs.len())
        };
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, &["status", "conditions"], "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in list(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts = restarts.saturating_add(int(c, &["restartCount"]));
            keep_latest(
                &mut last_restart,
                time(c, &["lastState", "terminated", "finishedAt"]),
            );
            let waiting_reason = obj(c, &["state", "waiting"]).map_or("", |w| text(w, &["reason"]));
            let terminated = obj(c, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match text(t, &["reason"]) {
                    "" if int(t, &["signal"]) != 0 => format!("Signal:{}", int(t, &["signal"])),
                    "" => format!("ExitCode:{}", int(t, &["exitCode"])),
                    r => r.to_string(),
                };
            } else if flag(c, &["ready"]) && obj(c, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while another still runs.
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, &["status", "conditions"], "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if deleting(pod) && status_reason == "NodeLost" {
        reason = "Unknown".into();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let ip = list(pod, &["status", "podIPs"])
        .first()
        .map_or("", |p| text(p, &["ip"]));
    // A server that kept only podIP: the same address.
    let ip = if ip.is_empty() {
        text(pod, &["status", "podIP"])
    } else {
        ip
    };
    let gates = list(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = list(pod, &["status", "conditions"]);
        let met = gates
            .iter()
            .filter(|g| {
                let kind = text(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| text(c, &["type"]) == kind)
                    .is_some_and(|c| text(c, &["status"]) == "True")
            })
            .count();
        format!("{met}/{}", gates.len())
    };
    let cells = vec![
        name(pod),
        json!(format!("{ready}/{total}")),
        json!(reason),
        json!(restarts_cell),
        age(pod, now),
        json!(or_none(ip)),
        json!(or_none(text(pod, &["spec", "nodeName"]))),
        json!(or_none(text(pod, &["status", "nominatedNodeName"]))),
        json!(readiness_gates),
    ];
    (cells, conditions)
}

// --- Nodes -------------------------------------------------------------

const NODE_ROLE_PREFIX: &str = "node-role.kubernetes.io/";
const NODE_ROLE_LABEL: &str = "kubernetes.io/role";

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The last Ready condition listed decides, as in the real printer.
    let mut status: Vec<&str> = match list(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| text(c, &["type"]) == "Ready")
    {
        Some(c) if text(c, &["status"]) == "True" => vec!["Ready"],
        Some(_) => vec!["NotReady"],
        None => vec!["Unknown"],
    };
    if flag(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }

    let mut roles: Vec<String> = Vec::new();
    if let Some(labels) = at(node, &["metadata", "labels"]).and_then(Value::as_object) {
        for (key, value) in labels {
            let role = if let Some(role) = key.strip_prefix(NODE_ROLE_PREFIX) {
                role
            } else if key == NODE_ROLE_LABEL {
                value.as_str().unwrap_or("")
            } else {
                ""
            };
            if !role.is_empty() && !roles.iter().any(|r| r == role) {
                roles.push(role.to_string());
            }
        }
    }
    roles.sort();

    let address = |kind: &str| {
        or_none(
            list(node, &["status", "addresses"])
                .iter()
                .find(|a| text(a, &["type"]) == kind)
                .map_or("", |a| text(a, &["address"])),
        )
    };
    let info = |field: &str| {
        let v = text(node, &["status", "nodeInfo", field]);
        if v.is_empty() {
            "<unknown>".to_string()
        } else {
            v.to_string()
        }
    };
    vec![
        name(node),
        json!(status.join(",")),
        json!(or_none(&roles.join(","))),
        age(node, now),
        json!(text(node, &["status", "nodeInfo", "kubeletVersion"])),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(info("osImage")),
        json!(info("kernelVersion")),
        json!(info("containerRuntimeVersion")),
    ]
}

// --- Events ------------------------------------------------------------

fn event_cells(e: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let first_seen = match time(e, &["firstTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => since(time(e, &["eventTime"]), now),
    };
    let mut last_seen = match time(e, &["lastTimestamp"]) {
        Some(t) => since(Some(t), now),
        None => first_seen.clone(),
    };
    let mut count = int(e, &["count"]);
    if let Some(series) = obj(e, &["series"]) {
        last_seen = since(time(series, &["lastObservedTime"]), now);
        count = int(series, &["count"]);
    } else if count == 0 {
        // A singleton event of the events.k8s.io API has no count.
        count = 1;
    }
    let kind = text(e, &["involvedObject", "kind"]).to_lowercase();
    let target = match text(e, &["involvedObject", "name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let first_non_empty = |a: &'static [&'static str], b: &'static [&'static str]| match text(e, a)
    {
        "" => text(e, b),
        s => s,
    };
    let component = first_non_empty(&["source", "component"], &["reportingComponent"]);
    let host = first_non_empty(&["source", "host"], &["reportingInstance"]);
    let source = if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    };
    vec![
        json!(last_seen),
        json!(text(e, &["type"])),
        json!(text(e, &["reason"])),
        json!(target),
        json!(text(e, &["involvedObject", "fieldPath"])),
        json!(source),
        json!(text(e, &["message"]).trim()),
        json!(first_seen),
        json!(count),
        name(e),
    ]
}

// --- Services and endpoints --------------------------------------------

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // The API server defaults the type; a stored object may lack it.
    let kind = match text(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    };
    let cluster_ip = list(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| text(svc, &["spec", "clusterIP"]));
    let ports: Vec<String> = list(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let protocol = match text(p, &["protocol"]) {
                "" => "TCP",
                proto => proto,
            };
            let port = int(p, &["port"]);
            match int(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    vec![
        name(svc),
        json!(kind),
        json!(or_none(cluster_ip)),
        json!(service_external_ip(svc, kind)),
        json!(or_none(&ports.join(","))),
        age(svc, now),
        json!(format_labels(at(svc, &["spec", "selector"]))),
    ]
}

fn strings(v: &Value, path: &[&str]) -> Vec<String> {
    list(v, path)
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn service_external_ip(svc: &Value, kind: &str) -> String {
    let external = strings(svc, &["spec", "externalIPs"]);
    match kind {
        "ClusterIP" | "NodePort" => or_none(&external.join(",")),
        "LoadBalancer" => {
            let mut addresses: Vec<String> = Vec::new();
            for ingress in list(svc, &["status", "loadBalancer", "ingress"]) {
                let a = match text(ingress, &["ip"]) {
                    "" => text(ingress, &["hostname"]),
                    ip => ip,
                };
                if !a.is_empty() && !addresses.iter().any(|x| x == a) {
                    addresses.push(a.to_string());
                }
            }
            addresses.extend(external);
            if addresses.is_empty() {
                "<pending>".into()
            } else {
                addresses.join(",")
            }
        }
        "ExternalName" => text(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".into(),
    }
}

/// `ip:port`, with an IPv6 address in brackets.
fn host_port(ip: &str, port: i64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// The first three `ip:port` pairs of an Endpoints, then how many more.
fn format_endpoints(ep: &Value) -> String {
    const MAX: usize = 3;
    let subsets = list(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut shown: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for subset in subsets {
        let addresses = list(subset, &["addresses"]);
        let ports = list(subset, &["ports"]);
        let targets: Vec<Option<i64>> = if ports.is_empty() {
            // A headless service without ports lists bare addresses.
            vec![None]
        } else {
            ports.iter().map(|p| Some(int(p, &["port"]))).collect()
        };
        for port in targets {
            count += addresses.len();
            for a in addresses {
                if shown.len() == MAX {
                    more = true;
                    break;
                }
                let ip = text(a, &["ip"]);
                shown.push(match port {
                    Some(p) => host_port(ip, p),
                    None => ip.to_string(),
                });
            }
        }
    }
    let joined = shown.join(",");
    if more {
        format!("{joined} + {} more...", count.saturating_sub(MAX))
    } else {
        joined
    }
}

// --- Controllers and jobs ----------------------------------------------

/// The containers' names and images of a pod template, comma-separated.
fn template_containers(o: &Value, template: &[&str]) -> (String, String) {
    let mut path: Vec<&str> = template.to_vec();
    path.extend(["spec", "containers"]);
    let containers = list(o, &path);
    let names: Vec<&str> = containers.iter().map(|c| text(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, &["image"])).collect();
    (names.join(","), images.join(","))
}

/// `spec.replicas`, which the real server defaults to 1.
fn desired_replicas(o: &Value) -> i64 {
    opt_int(o, &["spec", "replicas"]).unwrap_or(1)
}

/// A ReplicationController or ReplicaSet.
fn replicas_cells(o: &Value, now: DateTime<Utc>, selector: String) -> Vec<Value> {
    let (names, images) = template_containers(o, &["spec", "template"]);
    vec![
        name(o),
        json!(desired_replicas(o)),
        json!(int(o, &["status", "replicas"])),
        json!(int(o, &["status", "readyReplicas"])),
        age(o, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

fn deployment_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(o, &["spec", "template"]);
    let selector = match label_selector(at(o, &["spec", "selector"])) {
        Ok(s) => s,
        Err(()) => "<invalid>".into(),
    };
    vec![
        name(o),
        json!(format!(
            "{}/{}",
            int(o, &["status", "readyReplicas"]),
            desired_replicas(o)
        )),
        json!(int(o, &["status", "updatedReplicas"])),
        json!(int(o, &["status", "availableReplicas"])),
        age(o, now),
        json!(names),
        json!(images),
        json!(selector),
    ]
}

fn job_cells(o: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let succeeded = int(o, &["status", "succeeded"]);
    let completions = match opt_int(o, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match int(o, &["spec", "parallelism"]) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let duration = match (
        time(o, &["status", "startTime"]),
        time(o, &["status", "completionTime"]),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_duration(now.signed_duration_since(start)),
        (Some(start), Some(end)) => human_duration(end.signed_duration_since(start)),
    };
    let is = |kind: &str| condition_true(o, &["status", "conditions"], kind);
    let status = if is("Complete") {
        "Complete"
    } else if is("Failed") {
        "Failed"
    } else if deleting(o) {
        "Terminating"
    } else if is("Suspended") {
        "Suspended"
    } else if is("FailureTarget") {
        "FailureTarget"
    } else if is("SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else {
        "Running"
    };
    let (names, images) = template_containers(o, &["spec", "template"]);
    vec![
        name(o),
        json!(status),
        json!(completions),
        json!(duration),
        age(o, now),
        json!(names),
        json!(images),
        json!(format_label_selector(at(o, &["spec", "selector"]))),
    ]
}

// --- Labels and selectors ----------------------------------------------

/// A label map as `a=1,b=2` (sorted), `<none>` when empty.
fn format_labels(labels: Option<&Value>) -> String {
    let Some(map) = labels.and_then(Value::as_object) else {
        return "<none>".into();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) => format!("{k}={s}"),
            None => format!("{k}={v}"),
        })
        .collect();
    pairs.sort();
    or_none(&pairs.join(","))
}

/// A `LabelSelector` as `metav1.FormatLabelSelector` prints it:
/// `app=kubia,tier in (a,b)`, `<none>` when it selects by nothing,
/// `<error>` when it is not a valid selector.
fn format_label_selector(selector: Option<&Value>) -> String {
    match label_selector(selector) {
        Ok(s) => or_none(&s),
        Err(()) => "<error>".into(),
    }
}

/// A `LabelSelector` in the selector syntax, requirements sorted by key:
/// empty when there is no selector or an empty one.
fn label_selector(selector: Option<&Value>) -> Result<String, ()> {
    let selector = match selector {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::Object(s)) => s,
        Some(_) => return Err(()),
    };
    // (key, requirement as text)
    let mut requirements: Vec<(String, String)> = Vec::new();
    match selector.get("matchLabels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(labels)) => {
            for (k, v) in labels {
                let v = v.as_str().ok_or(())?;
                if k.is_empty() {
                    return Err(());
                }
                requirements.push((k.clone(), format!("{k}={v}")));
            }
        }
        Some(_) => return Err(()),
    }
    match selector.get("matchExpressions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(expressions)) => {
            for e in expressions {
                let key = e.get("key").and_then(Value::as_str).ok_or(())?;
                if key.is_empty() {
                    return Err(());
                }
                let mut values: Vec<&str> = match e.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(vs)) => vs
                        .iter()
                        .map(|v| v.as_str().ok_or(()))
                        .collect::<Result<_, _>>()?,
                    Some(_) => return Err(()),
                };
                values.sort_unstable();
                let text = match e.get("operator").and_then(Value::as_str) {
                    Some("In") if !values.is_empty() => format!("{key} in ({})", values.join(",")),
                    Some("NotIn") if !values.is_empty() => {
                        format!("{key} notin ({})", values.join(","))
                    }
                    Some("Exists") if values.is_empty() => key.to_string(),
                    Some("DoesNotExist") if values.is_empty() => format!("!{key}"),
                    _ => return Err(()),
                };
                requirements.push((key.to_string(), text));
            }
        }
        Some(_) => return Err(()),
    }
    requirements.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(requirements
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .expect("a valid time")
    }

    /// `now` minus `secs`, as the API server writes timestamps.
    fn ago(secs: i64) -> String {
        (now() - Duration::seconds(secs)).to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    fn res(
        group: &'static str,
        version: &'static str,
        kind: &'static str,
        plural: &'static str,
    ) -> Resource {
        Resource {
            group,
            version,
            kind,
            plural,
            singular: "",
            namespaced: true,
            short_names: &[],
            categories: &[],
            subresources: &[],
            computed: false,
        }
    }

    fn pods() -> Resource {
        res("", "v1", "Pod", "pods")
    }

    fn strs(cells: &[Value]) -> Vec<String> {
        cells
            .iter()
            .map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    fn pod_row(pod: &Value) -> Vec<String> {
        strs(&cells(&pods(), pod, now()))
    }

    #[test]
    fn durations() {
        let cases: &[(i64, &str)] = &[
            (-5, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (130, "2m10s"),
            (599, "9m59s"),
            (600, "10m"),
            (14 * 60 + 59, "14m"),
            (179 * 60, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (8 * 3600, "8h"),
            (47 * 3600 + 59 * 60, "47h"),
            (48 * 3600, "2d"),
            (51 * 3600, "2d3h"),
            (7 * 86400 + 23 * 3600, "7d23h"),
            (5 * 86400 + 1, "5d"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (3 * 365 * 86400 + 45 * 86400, "3y45d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400 + 100 * 86400, "20y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::seconds(*secs)), *want, "{secs}s");
        }
        // Truncation towards zero, as Go's int(d.Seconds()).
        assert_eq!(human_duration(Duration::milliseconds(-1999)), "0s");
        assert_eq!(human_duration(Duration::milliseconds(1999)), "1s");
        assert_eq!(since(None, now()), "<unknown>");
    }

    #[test]
    fn include_object() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("")), Ok(IncludeObject::Metadata));
        assert_eq!(IncludeObject::parse(Some("None")), Ok(IncludeObject::None));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        let err = IncludeObject::parse(Some("all")).expect_err("unknown value");
        assert_eq!(err.code(), 400);
        assert_eq!(err.to_string(), "unrecognized includeObject value: \"all\"");
    }

    #[test]
    fn table_negotiation() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(kubectl), Some(TABLE_V1));
        assert_eq!(
            negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json"),
            Some(TABLE_V1BETA1)
        );
        assert_eq!(negotiate("application/json"), None);
        assert_eq!(negotiate(""), None);
        assert_eq!(
            negotiate(
                "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
            ),
            None
        );
        assert_eq!(
            negotiate("application/json;q=0.9,application/json;as=Table;v=v1;g=meta.k8s.io"),
            Some(TABLE_V1)
        );
        assert_eq!(
            negotiate(",;=,application/json;as=Table;g=meta.k8s.io;v=v9"),
            None
        );
    }

    #[test]
    fn table_shape() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "kubia", "namespace": "default", "uid": "u1",
                         "resourceVersion": "42", "creationTimestamp": ago(30),
                         "labels": {"run": "kubia"}},
            "spec": {"containers": [{"name": "kubia", "image": "luksa/kubia"}]},
            "status": {"phase": "Pending"},
        });
        let t = table(
            &pods(),
            std::slice::from_ref(&pod),
            IncludeObject::Metadata,
            now(),
            json!({"resourceVersion": "43"}),
            TABLE_V1,
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(t["metadata"]["resourceVersion"], "43");
        let cols = t["columnDefinitions"].as_array().expect("columns");
        let names: Vec<&str> = cols.iter().filter_map(|c| c["name"].as_str()).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Status",
                "Restarts",
                "Age",
                "IP",
                "Node",
                "Nominated Node",
                "Readiness Gates"
            ]
        );
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[1]["format"], "");
        assert_eq!(cols[4]["priority"], 0);
        assert_eq!(cols[5]["priority"], 1);
        assert!(
            cols.iter()
                .all(|c| c["description"].as_str().is_some_and(|d| !d.is_empty()))
        );
        let r0 = &t["rows"][0];
        assert_eq!(r0["cells"][0], "kubia");
        assert_eq!(r0["cells"][4], "30s");
        assert_eq!(r0["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(r0["object"]["apiVersion"], "meta.k8s.io/v1");
        assert_eq!(r0["object"]["metadata"]["uid"], "u1");
        assert_eq!(r0["object"]["metadata"]["labels"]["run"], "kubia");
        assert!(r0["object"].get("spec").is_none());
        assert!(r0.get("conditions").is_none());

        let beta = table(
            &pods(),
            std::slice::from_ref(&pod),
            IncludeObject::Object,
            now(),
            Value::Null,
            "v1beta1",
        );
        assert_eq!(beta["apiVersion"], "meta.k8s.io/v1beta1");
        assert_eq!(beta["metadata"], json!({}));
        assert_eq!(beta["rows"][0]["object"], pod);
        let none = table(
            &pods(),
            std::slice::from_ref(&pod),
            IncludeObject::None,
            now(),
            json!({}),
            TABLE_V1,
        );
        assert!(none["rows"][0].get("object").is_none());
        let empty = table(
            &pods(),
            &[],
            IncludeObject::Metadata,
            now(),
            json!({}),
            TABLE_V1,
        );
        assert_eq!(empty["rows"], json!([]));

        let first = watch_table(
            &pods(),
            &pod,
            IncludeObject::Metadata,
            now(),
            TABLE_V1,
            true,
        );
        assert_eq!(first["metadata"]["resourceVersion"], "42");
        assert_eq!(first["columnDefinitions"].as_array().map(Vec::len), Some(9));
        assert_eq!(first["rows"].as_array().map(Vec::len), Some(1));
        let later = watch_table(
            &pods(),
            &pod,
            IncludeObject::Metadata,
            now(),
            TABLE_V1,
            false,
        );
        assert!(later["columnDefinitions"].is_null());
        assert_eq!(later["rows"][0]["cells"][0], "kubia");

        // Metadata of a broken object is an empty object, not null.
        let broken = row(
            &pods(),
            &json!("nonsense"),
            IncludeObject::Metadata,
            now(),
            TABLE_V1,
        );
        assert_eq!(broken["object"]["metadata"], json!({}));
    }

    #[test]
    fn pod_running() {
        let pod = json!({
            "metadata": {"name": "kubia", "creationTimestamp": ago(14 * 60)},
            "spec": {"nodeName": "wrun", "containers": [{"name": "kubia", "image": "luksa/kubia"}]},
            "status": {
                "phase": "Running",
                "podIP": "10.88.0.5",
                "podIPs": [{"ip": "10.88.0.5"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{
                    "name": "kubia", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": ago(13 * 60)}},
                }],
            },
        });
        assert_eq!(
            pod_row(&pod),
            [
                "kubia",
                "1/1",
                "Running",
                "0",
                "14m",
                "10.88.0.5",
                "wrun",
                "<none>",
                "<none>"
            ]
        );
    }

    #[test]
    fn pod_crash_loop_with_restarts() {
        let pod = json!({
            "metadata": {"name": "crashy", "creationTimestamp": ago(3 * 3600 + 5 * 60)},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
            "status": {
                "phase": "Running",
                "containerStatuses": [
                    {"name": "a", "ready": true, "restartCount": 1,
                     "state": {"running": {}},
                     "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(3600)}}},
                    {"name": "b", "ready": false, "restartCount": 2,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(25)}}},
                ],
            },
        });
        let row = pod_row(&pod);
        assert_eq!(
            &row[1..5],
            ["1/2", "CrashLoopBackOff", "3 (25s ago)", "3h5m"]
        );
    }

    #[test]
    fn pod_waiting_and_terminated_reasons() {
        let with = |state: Value| {
            json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c"}]},
                "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "state": state}]},
            })
        };
        for reason in ["ContainerCreating", "ErrImagePull", "ImagePullBackOff"] {
            assert_eq!(
                pod_row(&with(json!({"waiting": {"reason": reason}})))[2],
                reason
            );
        }
        assert_eq!(
            pod_row(&with(
                json!({"terminated": {"reason": "OOMKilled", "exitCode": 137}})
            ))[2],
            "OOMKilled"
        );
        assert_eq!(
            pod_row(&with(json!({"terminated": {"exitCode": 3}})))[2],
            "ExitCode:3"
        );
        assert_eq!(
            pod_row(&with(json!({"terminated": {"exitCode": 0, "signal": 9}})))[2],
            "Signal:9"
        );
        // A waiting state without a reason leaves the phase.
        assert_eq!(pod_row(&with(json!({"waiting": {}})))[2], "Pending");
        // No Age: `<unknown>`.
        assert_eq!(pod_row(&with(json!({"waiting": {}})))[4], "<unknown>");
    }

    #[test]
    fn pod_completed_and_failed() {
        let pod = json!({
            "metadata": {"name": "done", "creationTimestamp": ago(600)},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Succeeded", "containerStatuses": [{
                "name": "c", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]},
        });
        assert_eq!(&pod_row(&pod)[1..4], ["0/1", "Completed", "0"]);
        let r = row(&pods(), &pod, IncludeObject::None, now(), TABLE_V1);
        assert_eq!(r["conditions"][0]["type"], "Completed");
        assert_eq!(r["conditions"][0]["reason"], "Succeeded");

        let failed = json!({
            "metadata": {"name": "bad"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Failed", "containerStatuses": [{
                "name": "c", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
        });
        assert_eq!(pod_row(&failed)[2], "Error");
        let r = row(&pods(), &failed, IncludeObject::None, now(), TABLE_V1);
        assert_eq!(r["conditions"][0]["reason"], "Failed");

        // One container completed while another still runs.
        let mixed = |ready: &str| {
            json!({
                "metadata": {"name": "m"},
                "spec": {"containers": [{"name": "a"}, {"name": "b"}]},
                "status": {"phase": "Running",
                    "conditions": [{"type": "Ready", "status": ready}],
                    "containerStatuses": [
                        {"name": "a", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "b", "ready": true, "state": {"running": {}}},
                    ]},
            })
        };
        assert_eq!(&pod_row(&mixed("True"))[1..3], ["1/2", "Running"]);
        assert_eq!(pod_row(&mixed("False"))[2], "NotReady");
    }

    #[test]
    fn pod_init_containers() {
        let init = |statuses: Value| {
            json!({
                "metadata": {"name": "i"},
                "spec": {"initContainers": [{"name": "i1"}, {"name": "i2"}],
                         "containers": [{"name": "c"}]},
                "status": {"phase": "Pending", "initContainerStatuses": statuses,
                           "containerStatuses": [{"name": "c", "restartCount": 5,
                              "state": {"waiting": {"reason": "PodInitializing"}}}]},
            })
        };
        let row = pod_row(&init(json!([
            {"name": "i1", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "i2", "state": {"running": {}}},
        ])));
        // Still initializing: the app containers' restarts do not count.
        assert_eq!(&row[1..4], ["0/1", "Init:1/2", "0"]);
        assert_eq!(
            pod_row(&init(json!([
                {"name": "i1", "restartCount": 2,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(5)}}},
            ])))[2..4],
            ["Init:CrashLoopBackOff", "2 (5s ago)"]
        );
        assert_eq!(
            pod_row(&init(
                json!([{"name": "i1", "state": {"terminated": {"exitCode": 2}}}])
            ))[2],
            "Init:ExitCode:2"
        );
        assert_eq!(
            pod_row(&init(
                json!([{"name": "i1", "state": {"terminated": {"exitCode": 2, "signal": 15}}}])
            ))[2],
            "Init:Signal:15"
        );
        assert_eq!(
            pod_row(&init(
                json!([{"name": "i1", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}])
            ))[2],
            "Init:Error"
        );
        assert_eq!(
            pod_row(&init(
                json!([{"name": "i1", "state": {"waiting": {"reason": "PodInitializing"}}}])
            ))[2],
            "Init:0/2"
        );
        // All init containers done: the app container's state.
        let done = pod_row(&init(json!([
            {"name": "i1", "state": {"terminated": {"exitCode": 0}}},
            {"name": "i2", "state": {"terminated": {"exitCode": 0}}},
        ])));
        assert_eq!(&done[2..4], ["PodInitializing", "5"]);
    }

    #[test]
    fn pod_sidecar_counts_as_a_container() {
        let pod = json!({
            "metadata": {"name": "s"},
            "spec": {"initContainers": [{"name": "proxy", "restartPolicy": "Always"}],
                     "containers": [{"name": "app"}]},
            "status": {"phase": "Running",
                "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "started": true, "ready": true,
                    "restartCount": 1, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(90)}}}],
                "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]},
        });
        assert_eq!(&pod_row(&pod)[1..4], ["2/2", "Running", "1 (90s ago)"]);
    }

    #[test]
    fn pod_terminating_gated_and_gates() {
        let pod = json!({
            "metadata": {"name": "t", "deletionTimestamp": ago(1)},
            "spec": {"containers": [{"name": "c"}],
                     "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]},
            "status": {"phase": "Running",
                "nominatedNodeName": "n2",
                "conditions": [{"type": "example.com/a", "status": "True"},
                               {"type": "example.com/b", "status": "False"}],
                "containerStatuses": [{"name": "c", "ready": true, "state": {"running": {}}}]},
        });
        let row = pod_row(&pod);
        assert_eq!(row[2], "Terminating");
        assert_eq!(row[7], "n2");
        assert_eq!(row[8], "1/2");
        let lost = json!({
            "metadata": {"name": "t", "deletionTimestamp": ago(1)},
            "status": {"phase": "Running", "reason": "NodeLost"},
        });
        assert_eq!(pod_row(&lost)[2], "Unknown");
        let finished = json!({
            "metadata": {"name": "t", "deletionTimestamp": ago(1)},
            "status": {"phase": "Succeeded"},
        });
        assert_eq!(pod_row(&finished)[2], "Succeeded");
        let gated = json!({
            "metadata": {"name": "g"},
            "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]},
        });
        assert_eq!(pod_row(&gated)[2], "SchedulingGated");
        let evicted =
            json!({"metadata": {"name": "e"}, "status": {"phase": "Failed", "reason": "Evicted"}});
        assert_eq!(pod_row(&evicted)[2], "Evicted");
    }

    #[test]
    fn pod_broken() {
        for pod in [
            json!(null),
            json!("pod"),
            json!([]),
            json!({}),
            json!({"metadata": "x", "spec": 3, "status": []}),
            json!({"metadata": {"name": 7, "creationTimestamp": "yesterday", "deletionTimestamp": null},
                   "spec": {"containers": "many", "initContainers": [null, 1, {"restartPolicy": 5}],
                            "readinessGates": [1, null]},
                   "status": {"phase": 1, "podIPs": [null], "conditions": {},
                              "initContainerStatuses": [null, {"state": null, "restartCount": "x"}],
                              "containerStatuses": [1, {"state": {"terminated": null,
                                  "waiting": 4}, "lastState": {"terminated": {"finishedAt": 3}},
                                  "restartCount": 1e300}]}}),
        ] {
            let row = pod_row(&pod);
            assert_eq!(row.len(), POD_COLUMNS.len());
            assert_eq!(row[4], "<unknown>");
            assert_eq!(row[5], "<none>");
        }
        let row = pod_row(&json!({}));
        assert_eq!(
            row,
            [
                "",
                "0/0",
                "",
                "0",
                "<unknown>",
                "<none>",
                "<none>",
                "<none>",
                "<none>"
            ]
        );
        // Huge restart counts saturate.
        let pod = json!({"status": {"containerStatuses": [
            {"restartCount": i64::MAX}, {"restartCount": i64::MAX}]}});
        assert_eq!(pod_row(&pod)[3], i64::MAX.to_string());
    }

    #[test]
    fn node() {
        let nodes = res("", "v1", "Node", "nodes");
        let node = json!({
            "metadata": {"name": "wrun", "creationTimestamp": ago(5 * 86400 + 1800),
                "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "worker",
                           "node-role.kubernetes.io/": "", "kubernetes.io/hostname": "wrun"}},
            "spec": {"unschedulable": true},
            "status": {
                "conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                "addresses": [{"type": "Hostname", "address": "wrun"}, {"type": "InternalIP", "address": "192.168.1.2"}],
                "nodeInfo": {"kubeletVersion": "v1.33.0-wrun", "osImage": "wrun", "kernelVersion": "",
                             "containerRuntimeVersion": "wrun://0.1.0"},
            },
        });
        let row = strs(&cells(&nodes, &node, now()));
        assert_eq!(
            row,
            [
                "wrun",
                "Ready,SchedulingDisabled",
                "control-plane,worker",
                "5d",
                "v1.33.0-wrun",
                "192.168.1.2",
                "<none>",
                "wrun",
                "<unknown>",
                "wrun://0.1.0"
            ]
        );
        let not_ready = json!({"metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}});
        assert_eq!(
            strs(&cells(&nodes, &not_ready, now()))[1..3],
            ["NotReady", "<none>"]
        );
        let broken = strs(&cells(
            &nodes,
            &json!({"status": {"conditions": "x"}, "metadata": {"labels": []}}),
            now(),
        ));
        assert_eq!(
            broken,
            [
                "",
                "Unknown",
                "<none>",
                "<unknown>",
                "",
                "<none>",
                "<none>",
                "<unknown>",
                "<unknown>",
                "<unknown>"
            ]
        );
        assert_eq!(
            columns(&nodes).iter().filter(|c| c.priority == 1).count(),
            5
        );
    }

    #[test]
    fn namespace_configmap_secret_serviceaccount() {
        let ns = res("", "v1", "Namespace", "namespaces");
        assert_eq!(
            strs(&cells(
                &ns,
                &json!({"metadata": {"name": "default", "creationTimestamp": ago(8 * 3600)},
                                     "status": {"phase": "Active"}}),
                now()
            )),
            ["default", "Active", "8h"]
        );
        assert_eq!(strs(&cells(&ns, &json!({}), now())), ["", "", "<unknown>"]);

        let cm = res("", "v1", "ConfigMap", "configmaps");
        let c = cells(
            &cm,
            &json!({"metadata": {"name": "cfg", "creationTimestamp": ago(2 * 86400)},
            "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}),
            now(),
        );
        assert_eq!(c, [json!("cfg"), json!(3), json!("2d")]);
        assert_eq!(cells(&cm, &json!({"data": "x"}), now())[1], json!(0));

        let secret = res("", "v1", "Secret", "secrets");
        let c = cells(
            &secret,
            &json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}}),
            now(),
        );
        assert_eq!(
            c,
            [json!("s"), json!("Opaque"), json!(1), json!("<unknown>")]
        );
        assert_eq!(
            cells(&secret, &json!({"type": 1}), now())[1..3],
            [json!(""), json!(0)]
        );

        let sa = res("", "v1", "ServiceAccount", "serviceaccounts");
        let c = cells(
            &sa,
            &json!({"metadata": {"name": "default"}, "secrets": [{"name": "t"}]}),
            now(),
        );
        assert_eq!(c, [json!("default"), json!(1), json!("<unknown>")]);
        assert_eq!(
            cells(&sa, &json!({"metadata": {"name": "default"}}), now())[1],
            json!(0)
        );
    }

    #[test]
    fn event() {
        let events = res("", "v1", "Event", "events");
        let e = json!({
            "metadata": {"name": "kubia.17a", "creationTimestamp": ago(600)},
            "involvedObject": {"kind": "Pod", "name": "kubia", "fieldPath": "spec.containers{kubia}"},
            "reason": "Pulled", "type": "Normal",
            "message": "Successfully pulled image \"luksa/kubia\"\n",
            "source": {"component": "kubelet", "host": "wrun"},
            "firstTimestamp": ago(600), "lastTimestamp": ago(65), "count": 3,
        });
        assert_eq!(
            cells(&events, &e, now()),
            [
                json!("65s"),
                json!("Normal"),
                json!("Pulled"),
                json!("pod/kubia"),
                json!("spec.containers{kubia}"),
                json!("kubelet, wrun"),
                json!("Successfully pulled image \"luksa/kubia\""),
                json!("10m"),
                json!(3),
                json!("kubia.17a"),
            ]
        );
        let names: Vec<&str> = columns(&events).iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Last Seen",
                "Type",
                "Reason",
                "Object",
                "Subobject",
                "Source",
                "Message",
                "First Seen",
                "Count",
                "Name"
            ]
        );
        assert_eq!(columns(&events)[9].format, "name");
        assert_eq!(columns(&events)[9].priority, 1);

        // events.k8s.io-style: eventTime, a series, reporting fields.
        let new = json!({
            "metadata": {"name": "n"},
            "involvedObject": {"kind": "Node"},
            "eventTime": "2025-06-01T11:59:00.123456Z",
            "series": {"count": 4, "lastObservedTime": "2025-06-01T11:59:50.000000Z"},
            "reportingComponent": "wrun-scheduler",
        });
        let c = strs(&cells(&events, &new, now()));
        assert_eq!(c[0], "10s");
        assert_eq!(c[3], "node");
        assert_eq!(c[5], "wrun-scheduler");
        assert_eq!(c[7], "59s");
        assert_eq!(c[8], "4");
        let c = strs(&cells(&events, &json!({"count": "x", "message": 5}), now()));
        assert_eq!(
            c,
            ["<unknown>", "", "", "", "", "", "", "<unknown>", "1", ""]
        );
    }

    #[test]
    fn service() {
        let svc = res("", "v1", "Service", "services");
        let s = json!({
            "metadata": {"name": "kubia-http", "creationTimestamp": ago(90)},
            "spec": {"type": "NodePort", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                     "ports": [{"port": 8080, "nodePort": 30599, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}],
                     "selector": {"run": "kubia", "app": "x"}},
        });
        assert_eq!(
            strs(&cells(&svc, &s, now())),
            [
                "kubia-http",
                "NodePort",
                "10.96.0.12",
                "<none>",
                "8080:30599/TCP,53/UDP",
                "90s",
                "app=x,run=kubia"
            ]
        );
        let lb = json!({"metadata": {"name": "lb"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.9", "externalIPs": ["1.2.3.4"],
                     "ports": [{"port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}, {"ip": "5.6.7.8"}]}}});
        let row = strs(&cells(&svc, &lb, now()));
        assert_eq!(row[2], "10.96.0.9");
        assert_eq!(row[3], "5.6.7.8,lb.example.com,1.2.3.4");
        assert_eq!(row[4], "80/TCP");
        let pending = json!({"spec": {"type": "LoadBalancer"}});
        assert_eq!(strs(&cells(&svc, &pending, now()))[3], "<pending>");
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}});
        assert_eq!(strs(&cells(&svc, &ext, now()))[3], "db.example.com");
        let headless = json!({"spec": {"clusterIP": "None", "clusterIPs": ["None"]}});
        assert_eq!(
            strs(&cells(&svc, &headless, now()))[1..5],
            ["ClusterIP", "None", "<none>", "<none>"]
        );
        let odd = json!({"spec": {"type": "Weird", "ports": "x", "selector": []}});
        assert_eq!(
            strs(&cells(&svc, &odd, now())),
            [
                "",
                "Weird",
                "<none>",
                "<unknown>",
                "<none>",
                "<unknown>",
                "<none>"
            ]
        );
    }

    #[test]
    fn endpoints() {
        let eps = res("", "v1", "Endpoints", "endpoints");
        let e = json!({"metadata": {"name": "kubia"}, "subsets": [
            {"addresses": [{"ip": "10.88.0.5"}, {"ip": "10.88.0.6"}], "ports": [{"port": 8080}]},
        ]});
        assert_eq!(
            cells(&eps, &e, now())[1],
            json!("10.88.0.5:8080,10.88.0.6:8080")
        );
        let many = json!({"subsets": [
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "fd00::2"}], "ports": [{"port": 80}, {"port": 443}]},
        ]});
        assert_eq!(
            cells(&eps, &many, now())[1],
            json!("10.0.0.1:80,[fd00::2]:80,10.0.0.1:443 + 1 more...")
        );
        let headless = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        assert_eq!(cells(&eps, &headless, now())[1], json!("10.0.0.1"));
        assert_eq!(cells(&eps, &json!({}), now())[1], json!("<none>"));
        assert_eq!(cells(&eps, &json!({"subsets": [{}]}), now())[1], json!(""));
    }

    #[test]
    fn controllers() {
        let template = json!({"spec": {"containers": [
            {"name": "kubia", "image": "luksa/kubia:v1"}, {"name": "side", "image": "busybox"}]}});
        let rc = res("", "v1", "ReplicationController", "replicationcontrollers");
        let o = json!({
            "metadata": {"name": "kubia", "creationTimestamp": ago(130)},
            "spec": {"replicas": 3, "selector": {"app": "kubia"}, "template": template},
            "status": {"replicas": 3, "readyReplicas": 2},
        });
        assert_eq!(
            cells(&rc, &o, now()),
            [
                json!("kubia"),
                json!(3),
                json!(3),
                json!(2),
                json!("2m10s"),
                json!("kubia,side"),
                json!("luksa/kubia:v1,busybox"),
                json!("app=kubia"),
            ]
        );
        assert_eq!(
            cells(&rc, &json!({}), now()),
            [
                json!(""),
                json!(1),
                json!(0),
                json!(0),
                json!("<unknown>"),
                json!(""),
                json!(""),
                json!("<none>")
            ]
        );

        let rs = res("apps", "v1", "ReplicaSet", "replicasets");
        let o = json!({
            "metadata": {"name": "kubia-5d"},
            "spec": {"replicas": 0, "template": template, "selector": {
                "matchLabels": {"app": "kubia"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                                     {"key": "env", "operator": "DoesNotExist"}]}},
        });
        let c = cells(&rs, &o, now());
        assert_eq!(c[1], json!(0));
        assert_eq!(c[7], json!("app=kubia,!env,tier in (api,web)"));
        let bad =
            json!({"spec": {"selector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}}});
        assert_eq!(cells(&rs, &bad, now())[7], json!("<error>"));
        assert_eq!(
            cells(&rs, &json!({"spec": {"selector": {}}}), now())[7],
            json!("<none>")
        );

        let deploy = res("apps", "v1", "Deployment", "deployments");
        let o = json!({
            "metadata": {"name": "kubia", "creationTimestamp": ago(86400 * 3)},
            "spec": {"replicas": 3, "template": template, "selector": {"matchLabels": {"app": "kubia"}}},
            "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
        });
        assert_eq!(
            cells(&deploy, &o, now()),
            [
                json!("kubia"),
                json!("2/3"),
                json!(3),
                json!(2),
                json!("3d"),
                json!("kubia,side"),
                json!("luksa/kubia:v1,busybox"),
                json!("app=kubia"),
            ]
        );
        let c = cells(&deploy, &json!({"spec": {"selector": "x"}}), now());
        assert_eq!(c[1], json!("0/1"));
        assert_eq!(c[7], json!("<invalid>"));
        assert_eq!(cells(&deploy, &json!({}), now())[7], json!(""));
        let names: Vec<&str> = columns(&deploy).iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Ready",
                "Up-to-date",
                "Available",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
    }

    #[test]
    fn jobs() {
        let jobs = res("batch", "v1", "Job", "jobs");
        let done = json!({
            "metadata": {"name": "pi", "creationTimestamp": ago(300)},
            "spec": {"completions": 1, "parallelism": 1,
                     "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
                     "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
            "status": {"succeeded": 1, "startTime": ago(300), "completionTime": ago(260),
                       "conditions": [{"type": "SuccessCriteriaMet", "status": "True"},
                                      {"type": "Complete", "status": "True"}]},
        });
        assert_eq!(
            strs(&cells(&jobs, &done, now())),
            [
                "pi",
                "Complete",
                "1/1",
                "40s",
                "5m",
                "pi",
                "perl",
                "batch.kubernetes.io/controller-uid=u"
            ]
        );
        let running = json!({"spec": {"parallelism": 3}, "status": {"startTime": ago(70)}});
        assert_eq!(
            strs(&cells(&jobs, &running, now()))[1..4],
            ["Running", "0/1 of 3", "70s"]
        );
        let failed = json!({"status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(
            strs(&cells(&jobs, &failed, now()))[1..4],
            ["Failed", "0/1", ""]
        );
        let suspended =
            json!({"status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(strs(&cells(&jobs, &suspended, now()))[1], "Suspended");
        let deleting = json!({"metadata": {"deletionTimestamp": ago(1)},
            "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
        assert_eq!(strs(&cells(&jobs, &deleting, now()))[1], "Terminating");
        let not_really =
            json!({"status": {"conditions": [{"type": "Complete", "status": "False"}]}});
        assert_eq!(strs(&cells(&jobs, &not_really, now()))[1], "Running");
        assert_eq!(
            strs(&cells(&jobs, &json!(42), now())),
            ["", "Running", "0/1", "", "<unknown>", "", "", "<none>"]
        );
        let names: Vec<&str> = columns(&jobs).iter().map(|c| c.name).collect();
        assert_eq!(
            names,
            [
                "Name",
                "Status",
                "Completions",
                "Duration",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
    }

    #[test]
    fn unknown_kinds_use_the_default_printer() {
        let widgets = res("example.com", "v1", "Widget", "widgets");
        let cols: Vec<(&str, &str)> = columns(&widgets)
            .iter()
            .map(|c| (c.name, c.r#type))
            .collect();
        assert_eq!(cols, [("Name", "string"), ("Created At", "date")]);
        let w =
            json!({"metadata": {"name": "w", "creationTimestamp": "2025-05-01T10:00:00+02:00"}});
        assert_eq!(
            cells(&widgets, &w, now()),
            [json!("w"), json!("2025-05-01T08:00:00Z")]
        );
        assert_eq!(
            cells(&widgets, &json!({}), now()),
            [json!(""), json!("0001-01-01T00:00:00Z")]
        );
        // An events.k8s.io Event has other fields: not the core printer.
        let ev = res("events.k8s.io", "v1", "Event", "events");
        assert_eq!(columns(&ev).len(), 2);
    }

    #[test]
    fn every_served_kind_prints_a_cell_per_column() {
        for r in super::super::RESOURCES {
            for o in [json!({}), json!(null), json!({"metadata": {"name": "x"}})] {
                assert_eq!(cells(r, &o, now()).len(), columns(r).len(), "{}", r.kind);
            }
            assert_eq!(
                columns(r).iter().filter(|c| c.format == "name").count(),
                1,
                "{}",
                r.kind
            );
        }
    }

    #[test]
    fn label_formatting() {
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(Some(&json!({}))), "<none>");
        assert_eq!(
            format_labels(Some(&json!({"a.b": "1", "a": "2"}))),
            "a.b=1,a=2"
        );
        assert_eq!(format_labels(Some(&json!({"n": 1}))), "n=1");
        assert_eq!(label_selector(None), Ok(String::new()));
        assert_eq!(
            label_selector(Some(&json!({"matchExpressions": [
                {"key": "b", "operator": "NotIn", "values": ["y", "x"]},
                {"key": "a", "operator": "Exists"}]}))),
            Ok("a,b notin (x,y)".to_string())
        );
        for bad in [
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
            json!({"matchExpressions": [{"operator": "Exists"}]}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
            json!({"matchExpressions": {}}),
            json!({"matchLabels": {"a": 1}}),
            json!({"matchLabels": []}),
            json!([]),
        ] {
            assert_eq!(label_selector(Some(&bad)), Err(()), "{bad}");
        }
    }
}
