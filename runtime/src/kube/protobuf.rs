//! Reading the Kubernetes protobuf encoding of the objects kubectl's typed
//! `create` generators send (`kubectl create namespace|configmap|secret|
//! serviceaccount`): the `k8s\0` envelope (a `runtime.Unknown` with the
//! object's TypeMeta and bytes), then the object by a schema of field
//! numbers, into the same JSON the API takes. Kinds without a schema here
//! get a clear 415 naming what to use instead.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{KubeError, Resource};

/// The magic that starts a Kubernetes protobuf body.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Debug, Clone, Copy)]
enum Ty {
    Str,
    /// Bytes, as base64 in JSON.
    Bytes,
    I64,
    Bool,
    /// metav1.Time: seconds (and nanos), as RFC 3339 in JSON.
    Time,
    Msg(&'static [Field]),
    /// map<string, string> or map<string, bytes>.
    Map(bool),
}

#[derive(Debug, Clone, Copy)]
struct Field {
    num: u64,
    name: &'static str,
    ty: Ty,
    repeated: bool,
}

const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

const fn r(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::I64),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::I64),
    f(11, "labels", Ty::Map(false)),
    f(12, "annotations", Ty::Map(false)),
    r(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    r(14, "finalizers", Ty::Str),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::Map(false)),
    f(3, "binaryData", Ty::Map(true)),
    f(4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::Map(true)),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::Map(false)),
    f(5, "immutable", Ty::Bool),
];

const NAMESPACE_SPEC: &[Field] = &[r(1, "finalizers", Ty::Str)];
const NAMESPACE_STATUS: &[Field] = &[f(1, "phase", Ty::Str)];
const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
    f(3, "status", Ty::Msg(NAMESPACE_STATUS)),
];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];
const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];
const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    r(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    r(3, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    f(4, "automountServiceAccountToken", Ty::Bool),
];

const UNKNOWN_TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];

fn bad(res: &Resource, why: &str) -> KubeError {
    KubeError::bad_request(format!(
        "the protobuf body is not a valid {}: {why}",
        res.kind
    ))
}

/// A protobuf reader over one message's bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(out);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let out = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(out)
    }

    /// The next field: its number, wire type, and (for length-delimited
    /// ones) its bytes or (for varints) its value.
    fn next(&mut self) -> Option<Option<(u64, Wire<'a>)>> {
        if self.pos >= self.buf.len() {
            return Some(None);
        }
        let key = self.varint()?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                self.pos = self.pos.checked_add(8).filter(|p| *p <= self.buf.len())?;
                Wire::Skip
            }
            2 => Wire::Bytes(self.bytes()?),
            5 => {
                self.pos = self.pos.checked_add(4).filter(|p| *p <= self.buf.len())?;
                Wire::Skip
            }
            _ => return None,
        };
        Some(Some((key >> 3, wire)))
    }
}

enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Skip,
}

fn decode_message(buf: &[u8], schema: &[Field], depth: u32) -> Option<Value> {
    if depth > 16 {
        return None;
    }
    let mut out = Map::new();
    let mut reader = Reader { buf, pos: 0 };
    while let Some((num, wire)) = reader.next()? {
        let Some(field) = schema.iter().find(|f| f.num == num) else {
            continue;
        };
        let value = match (field.ty, wire) {
            (Ty::Str, Wire::Bytes(b)) => Value::String(String::from_utf8(b.to_vec()).ok()?),
            (Ty::Bytes, Wire::Bytes(b)) => {
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            (Ty::I64, Wire::Varint(v)) => json!(v as i64),
            (Ty::Bool, Wire::Varint(v)) => json!(v != 0),
            (Ty::Time, Wire::Bytes(b)) => {
                let t = decode_message(b, &[f(1, "seconds", Ty::I64)], depth + 1)?;
                let secs = t["seconds"].as_i64().unwrap_or(0);
                let at = chrono::DateTime::from_timestamp(secs, 0)?;
                json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            }
            (Ty::Msg(inner), Wire::Bytes(b)) => decode_message(b, inner, depth + 1)?,
            (Ty::Map(bytes), Wire::Bytes(b)) => {
                let value_ty = if bytes { Ty::Bytes } else { Ty::Str };
                let entry =
                    decode_message(b, &[f(1, "k", Ty::Str), f(2, "v", value_ty)], depth + 1)?;
                let key = entry["k"].as_str().unwrap_or_default().to_string();
                let map = out
                    .entry(field.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(m) = map.as_object_mut() {
                    m.insert(key, entry.get("v").cloned().unwrap_or(json!("")));
                }
                continue;
            }
            // A wire type that does not fit the field.
            _ => return None,
        };
        if field.repeated {
            let list = out.entry(field.name).or_insert_with(|| json!([]));
            if let Some(l) = list.as_array_mut() {
                l.push(value);
            }
        } else {
            out.insert(field.name.to_string(), value);
        }
    }
    Some(Value::Object(out))
}

/// Decodes a protobuf request body for `res` into its JSON form.
pub fn decode(res: &Resource, body: &[u8]) -> Result<Value, KubeError> {
    let schema = match res.kind {
        "ConfigMap" => CONFIG_MAP,
        "Secret" => SECRET,
        "Namespace" => NAMESPACE,
        "ServiceAccount" => SERVICE_ACCOUNT,
        other => {
            return Err(KubeError::UnsupportedMediaType(format!(
                "wrun reads protobuf bodies only for ConfigMaps, Secrets, Namespaces and ServiceAccounts, not {other}s: send JSON or YAML (kubectl create -f or apply -f)"
            )));
        }
    };
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| bad(res, "it does not start with the k8s protobuf magic"))?;
    let unknown = decode_message(
        envelope,
        &[
            f(1, "typeMeta", Ty::Msg(UNKNOWN_TYPE_META)),
            f(2, "raw", Ty::Bytes),
            f(3, "contentEncoding", Ty::Str),
        ],
        0,
    )
    .ok_or_else(|| bad(res, "the envelope is malformed"))?;
    if unknown["contentEncoding"]
        .as_str()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(bad(res, "encoded bodies are not supported"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(unknown["raw"].as_str().unwrap_or_default())
        .map_err(|_| bad(res, "the envelope is malformed"))?;
    let mut obj =
        decode_message(&raw, schema, 0).ok_or_else(|| bad(res, "the object is malformed"))?;
    for (field, value) in [
        ("apiVersion", &unknown["typeMeta"]["apiVersion"]),
        ("kind", &unknown["typeMeta"]["kind"]),
    ] {
        if value.is_string() {
            obj[field] = value.clone();
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::resources::by_plural;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn field(num: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn entry(k: &str, v: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        field(1, k.as_bytes(), &mut e);
        field(2, v, &mut e);
        e
    }

    fn config_map() -> Vec<u8> {
        let mut meta = Vec::new();
        field(1, b"settings", &mut meta);
        field(3, b"default", &mut meta);
        field(11, &entry("app", b"demo"), &mut meta);
        let mut cm = Vec::new();
        field(1, &meta, &mut cm);
        field(2, &entry("greeting", b"hello"), &mut cm);
        field(2, &entry("name", b"wrun"), &mut cm);
        let mut tm = Vec::new();
        field(1, b"v1", &mut tm);
        field(2, b"ConfigMap", &mut tm);
        let mut unknown = Vec::new();
        field(1, &tm, &mut unknown);
        field(2, &cm, &mut unknown);
        let mut body = MAGIC.to_vec();
        body.extend(unknown);
        body
    }

    #[test]
    fn a_config_map_reads_as_its_json() {
        let res = by_plural("", "v1", "configmaps").expect("configmaps");
        let v = decode(res, &config_map()).expect("decodes");
        assert_eq!(v["kind"], "ConfigMap");
        assert_eq!(v["metadata"]["name"], "settings");
        assert_eq!(v["metadata"]["labels"]["app"], "demo");
        assert_eq!(v["data"], json!({"greeting": "hello", "name": "wrun"}));
    }

    #[test]
    fn bad_bodies_are_refused_not_panicked_on() {
        let res = by_plural("", "v1", "configmaps").expect("configmaps");
        let good = config_map();
        for cut in 0..good.len() {
            let _ = decode(res, &good[..cut]);
        }
        assert!(decode(res, b"nope").is_err());
        let mut junk = MAGIC.to_vec();
        junk.extend([0xff; 12]);
        assert!(decode(res, &junk).is_err());
        let pods = by_plural("", "v1", "pods").expect("pods");
        assert_eq!(decode(pods, &good).expect_err("no schema").code(), 415);
    }
}
