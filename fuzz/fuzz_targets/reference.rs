//! Image references: whatever parses prints back to a string that parses
//! to the same reference.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wrun::image::Reference;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(text) {
        let printed = r.to_string();
        let again = Reference::parse(&printed)
            .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
        assert_eq!(again, r, "{text:?} -> {printed:?}");
        let _ = r.familiar();
    }
});
