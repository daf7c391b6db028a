//! The `-p`, `-v`, `--allow-net`, `--ulimit` and `--storage-opt` flag
//! parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 5 {
        0 => {
            if let Ok(p) = wrun::net::publish::PortSpec::parse(&text) {
                let _ = p.listen_addr();
            }
        }
        1 => {
            let _ = wrun::container::VolumeSpec::parse(&text, std::path::Path::new("/work"));
        }
        2 => {
            let _ = wrun::net::EgressRule::parse(&text);
        }
        3 => {
            let flags: Vec<String> = text.split('\n').map(str::to_string).collect();
            if let Ok(opts) = wrun::api::units::storage_opts(&flags)
                && let Ok(Some(size)) = wrun::api::units::storage_size(&opts)
            {
                assert!(size > 0, "{text:?} parsed to a size of 0");
            }
        }
        _ => {
            if let Ok(u) = wrun::api::types::Ulimit::parse(&text) {
                assert!(u.soft <= u.hard, "{text:?} parsed to {u:?}");
            }
        }
    }
});
