//! Entry point of the busybox multi-call binary: wires the process's real
//! streams and environment into a [`ctx::Ctx`] and dispatches on argv.

mod applets;
mod ctx;
mod opts;
mod sh;

use std::io::{self, Write};

fn main() {
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
    std::process::exit(code);
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
