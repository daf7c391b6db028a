//! The `-p`, `-v`, `--allow-net` and `--ulimit` flag parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 4 {
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
        _ => {
            if let Ok(u) = wrun::api::types::Ulimit::parse(&text) {
                assert!(u.soft <= u.hard, "{text:?} parsed to {u:?}");
            }
        }
    }
});
