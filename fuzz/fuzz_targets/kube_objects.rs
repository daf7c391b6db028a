//! Kubernetes objects as the API server decodes them, every patch type,
//! and label and field selectors. The first byte picks the case; for
//! patches the input holds the current object and the patch, split at the
//! first NUL.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wrun::kube::{decode, patch, resources, selector};

const PATCH_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let all = resources::RESOURCES;
    let res = &all[usize::from(*which) % all.len()];
    match which % 4 {
        0 => {
            if let Ok(obj) = serde_json::from_slice(rest) {
                let _ = decode::roundtrip(res, obj);
            }
        }
        1 => {
            let (current, body) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&b"{}"[..], rest),
            };
            let current = serde_json::from_slice(current).unwrap_or(serde_json::Value::Null);
            let kind = res.kind;
            let ty = PATCH_TYPES[usize::from(*which / 4) % PATCH_TYPES.len()];
            let manager = ty.contains("apply").then_some("fuzz");
            let _ = patch::apply(kind, &current, ty, body, manager, false);
        }
        2 => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(s) = selector::LabelSelector::parse(&text) {
                let _ = s.matches(&Default::default());
            }
        }
        _ => {
            let text = String::from_utf8_lossy(rest);
            if let Ok(s) = selector::FieldSelector::parse(&text) {
                let _ = s.check_supported(res.kind);
                let _ = s.matches(res.kind, &serde_json::json!({"metadata": {"name": "x"}}));
            }
        }
    }
});
