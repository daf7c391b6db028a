//! `wrun load` / `docker load`: an OCI layout tar (index.json, manifests,
//! configs and layers) read into a store. Anything is either loaded or
//! refused with an error; nothing panics, and the store stays usable.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use wrun::image::ImageStore;
use wrun::state::StateRoot;

/// One store for the run, under a temporary state root.
fn store() -> &'static Mutex<(tempfile::TempDir, ImageStore)> {
    static STORE: OnceLock<Mutex<(tempfile::TempDir, ImageStore)>> = OnceLock::new();
    STORE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = StateRoot::open(dir.path()).expect("state root");
        let store = ImageStore::open(&root).expect("store");
        Mutex::new((dir, store))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut guard = store().lock().unwrap_or_else(|p| p.into_inner());
    let (_, store) = &mut *guard;
    if let Ok(loaded) = wrun::image::layout::load(store, data, "fuzz.tar") {
        for l in loaded {
            // What was loaded resolves and lists.
            store
                .resolve(l.id.as_str())
                .expect("a loaded image resolves");
        }
    }
    store.list().expect("the store still lists");
});
