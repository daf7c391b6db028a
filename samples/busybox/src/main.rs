//! Entry point of the busybox multi-call binary: wires the process's real
//! streams and environment into a [`ctx::Ctx`] and dispatches on argv.

mod applets;
mod ctx;
mod opts;
mod sh;

use std::io::{self, Write};

fn main() {
    enter_working_directory();
    // args_os + lossy conversion: std::env::args would panic on non-UTF-8.
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let env = ctx::process_env();
    let mut stdin = io::stdin().lock();
    let mut stdout = io::stdout().lock();
    let mut stderr = io::stderr().lock();
    let mut code = applets::multicall(
        &mut ctx::Ctx {
            stdin: &mut stdin,
            stdout: &mut stdout,
            stderr: &mut stderr,
            env: &env,
        },
        &argv,
    );
    if let Err(e) = stdout.flush() {
        let _ = writeln!(stderr, "busybox: write error: {}", ctx::errmsg(&e));
        code = code.max(1);
    }
    exit(code);
}

/// WASI programs start in `/`: wasi-libc has no notion of an initial working
/// directory. Runtimes pass it in `PWD` (the convention Go's wasip1 port
/// follows too), so start there.
fn enter_working_directory() {
    if let Ok(pwd) = std::env::var("PWD")
        && pwd.starts_with('/')
    {
        let _ = std::env::set_current_dir(pwd);
    }
}

/// Exits with `code`. On wasip2, std's exit only says success or failure,
/// so a failing status goes through `wasi:cli/exit.exit-with-code`.
fn exit(code: i32) -> ! {
    #[cfg(all(target_os = "wasi", target_env = "p2"))]
    if code != 0 {
        let _ = io::stderr().flush();
        wasip2::cli::exit::exit_with_code(u8::try_from(code & 0xff).unwrap_or(1));
    }
    std::process::exit(code)
}

#[cfg(test)]
mod testutil {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty directory under the system temp dir.
    pub fn tempdir(tag: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("busybox-test-{}-{tag}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        dir
    }
}
