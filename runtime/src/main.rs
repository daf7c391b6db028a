//! The `wrun` binary; everything lives in the library.

fn main() -> std::process::ExitCode {
    wrun::cli::main()
}
