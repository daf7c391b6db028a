//! Layer tars (plain, gzip or zstd) unpacked into a scratch directory:
//! whatever the entries say (`..`, absolute paths, links out, devices),
//! nothing is ever written outside that directory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outer = tempfile::tempdir().expect("tempdir");
    let dest = outer.path().join("layer");
    std::fs::create_dir(&dest).expect("mkdir");
    let _ = wrun::image::layer::unpack::unpack(data, &dest, "fuzz-layer");
    // The scratch dir's parent holds the scratch dir and nothing else.
    let entries: Vec<_> = std::fs::read_dir(outer.path())
        .expect("read outer")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        entries,
        vec![std::ffi::OsString::from("layer")],
        "written outside the layer dir"
    );
});
