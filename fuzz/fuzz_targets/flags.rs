//! The `-p`, `-v` and `--allow-net` flag parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match which % 3 {
        0 => {
            if let Ok(p) = wrun::net::publish::PortSpec::parse(&text) {
                let _ = p.listen_addr();
            }
        }
        1 => {
            let _ = wrun::container::VolumeSpec::parse(&text, std::path::Path::new("/work"));
        }
        _ => {
            let _ = wrun::net::EgressRule::parse(&text);
        }
    }
});
