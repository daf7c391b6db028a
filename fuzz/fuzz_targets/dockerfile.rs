//! The Dockerfile parser, with ARG and ENV expansion: any text either
//! parses or is refused with an error; nothing panics. Build arguments come
//! from the input's first line (`K=V;K=V`), the Dockerfile from the rest.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (args_line, dockerfile) = text.split_once('\n').unwrap_or(("", &text));
    let args: BTreeMap<String, String> = args_line
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok(parsed) = wrun::image::dockerfile::parse(dockerfile, &args) {
        // A parsed Dockerfile has at least one stage, each from a base.
        assert!(
            !parsed.stages.is_empty(),
            "a Dockerfile parsed with no stage"
        );
    }
});
