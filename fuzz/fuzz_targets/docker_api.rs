//! Docker API request bodies and the `filters` query parameter. The first
//! byte picks what the rest is read as.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wrun::api::filters::Filters;
use wrun::api::types::{CreateRequest, ExecCreateRequest, NetworkCreateRequest};

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            let _ = serde_json::from_slice::<CreateRequest>(body);
        }
        1 => {
            let _ = serde_json::from_slice::<ExecCreateRequest>(body);
        }
        2 => {
            let _ = serde_json::from_slice::<NetworkCreateRequest>(body);
        }
        _ => {
            let text = String::from_utf8_lossy(body);
            let accepted = ["label", "name", "status", "reference", "until", "dangling"];
            if let Ok(f) = Filters::parse(Some(&text), "containers", &accepted) {
                // What parsed serialises and parses back the same.
                let again = Filters::parse(Some(&f.to_json()), "containers", &accepted)
                    .expect("filters round trip");
                assert_eq!(again, f);
                let _ = f.bool("dangling");
                let _ = f.regexes("name");
                let _ = f.labels_match(&Default::default());
            }
        }
    }
});
