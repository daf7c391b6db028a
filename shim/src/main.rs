//! `containerd-shim-wrun-v1`: containerd's runtime `io.containerd.wrun.v1`.
//! Everything is in the library; see `lib.rs`.

fn main() {
    wrun_shim::main();
}
