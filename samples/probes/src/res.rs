//! The resource probes: descriptors, the stack, stdout and the CPU. What
//! bounds them is the runtime's; the tests watch the host side.

use std::io::Write as _;
use std::process::ExitCode;

use crate::Report;

/// Opens files until `n` or the first refusal, which it names.
pub fn fds(n: usize) -> Report {
    let _ = std::fs::create_dir_all("/tmp/fds");
    let mut i = 0;
    until_refused("fds", n, || {
        i += 1;
        std::fs::File::create(format!("/tmp/fds/{}", i % 64))
    })
}

/// Makes TCP listeners until `n` or the first refusal, which it names.
pub fn sockets(n: usize) -> Report {
    until_refused("sockets", n, || std::net::TcpListener::bind(("0.0.0.0", 0)))
}

/// Holds what `open` gives, up to `n` of them, until it first fails; the
/// report says how many it held and the refusal.
fn until_refused<T>(
    name: &'static str,
    n: usize,
    mut open: impl FnMut() -> std::io::Result<T>,
) -> Report {
    let mut r = Report::new(name);
    let mut held = Vec::new();
    let mut stopped = None;
    for _ in 0..n {
        match open() {
            Ok(x) => held.push(x),
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    match stopped {
        Some(e) => r.contained(
            format!("opened {}", held.len()),
            format!("then refused: {e}"),
        ),
        None => r.tried(format!("opened {}", held.len()), "all of them"),
    }
    r
}

/// Recurses until `n` reaches `limit` (never, as called), with a frame
/// the optimiser cannot drop.
#[inline(never)]
fn deeper(n: u64, limit: u64, pad: &mut [u8; 256]) -> u64 {
    if n == limit {
        return n;
    }
    pad[(n % 256) as usize] = n as u8;
    let mut next = [0u8; 256];
    next.copy_from_slice(pad);
    std::hint::black_box(&mut next);
    deeper(n + 1, limit, &mut next).wrapping_add(u64::from(next[0]))
}

/// Recurses until the stack runs out: the runtime must trap the guest,
/// not fall over itself.
pub fn stack() -> ExitCode {
    let mut pad = [0u8; 256];
    let n = deeper(0, std::hint::black_box(u64::MAX), &mut pad);
    println!("returned {n}");
    ExitCode::SUCCESS
}

/// Writes `bytes` to stdout as fast as it can.
pub fn flood(bytes: u64) -> ExitCode {
    let chunk = [b'x'; 65536];
    let mut out = std::io::stdout().lock();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if out.write_all(&chunk[..n]).is_err() {
            return ExitCode::from(1);
        }
        left -= n as u64;
    }
    ExitCode::SUCCESS
}

/// Never yields.
pub fn spin() -> ExitCode {
    let mut x = 0u64;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}
