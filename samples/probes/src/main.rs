//! The escape suite's guest. Each subcommand tries one way out of the
//! sandbox and prints a line an attempt:
//! - `contained WHAT: DETAIL` when the sandbox held;
//! - `ESCAPED WHAT: DETAIL` when the guest saw what it must not see;
//! - `tried WHAT: DETAIL` when only the host can judge (a write, a
//!   connection the test may or may not have granted).
//!
//! The last line is `probe NAME: contained` or `probe NAME: ESCAPED`, and
//! the exit code is 0 or 1. The tests (`tests/all/escape.rs`) also check
//! the host side: canary files unchanged, nothing created outside.

mod fs;
mod net;
mod res;

use std::fmt::Display;
use std::process::ExitCode;

/// What one probe's attempts came to.
pub struct Report {
    name: &'static str,
    escaped: bool,
}

impl Report {
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            escaped: false,
        }
    }

    pub fn contained(&mut self, what: impl Display, detail: impl Display) {
        println!("contained {what}: {detail}");
    }

    pub fn escaped(&mut self, what: impl Display, detail: impl Display) {
        println!("ESCAPED {what}: {detail}");
        self.escaped = true;
    }

    pub fn tried(&mut self, what: impl Display, detail: impl Display) {
        println!("tried {what}: {detail}");
    }

    pub fn finish(self) -> ExitCode {
        if self.escaped {
            println!("probe {}: ESCAPED", self.name);
            ExitCode::from(1)
        } else {
            println!("probe {}: contained", self.name);
            ExitCode::SUCCESS
        }
    }
}

const USAGE: &str = "usage: probes PROBE [ARG...]
  read HOST_FILE TOKEN     read a host file by every path trick (.., symlinks, hard links, /proc)
  write HOST_DIR           try to create files in a host directory by the same tricks
  swap-flip DIR TARGET     swap DIR/x between a file and a symlink to TARGET, forever
  swap-read DIR TOKEN N    read DIR/x N times while it is swapped
  proc                     try to change /proc
  connect ADDR...          open TCP connections (HOST:PORT)
  resolve NAME...          look names up
  fds N                    open up to N files, and say where it stopped
  sockets N                make up to N TCP listeners, and say where it stopped
  stack                    recurse until the stack runs out
  flood BYTES              write BYTES to stdout
  spin                     loop forever";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["read", target, token] => fs::read(target, token).finish(),
        ["write", dir] => fs::write(dir).finish(),
        ["swap-flip", dir, target] => fs::swap_flip(dir, target),
        ["swap-read", dir, token, n] => match n.parse() {
            Ok(n) => fs::swap_read(dir, token, n).finish(),
            Err(_) => usage(),
        },
        ["proc"] => fs::proc().finish(),
        ["connect", addrs @ ..] if !addrs.is_empty() => net::connect(addrs).finish(),
        ["resolve", names @ ..] if !names.is_empty() => net::resolve(names).finish(),
        ["fds", n] => match n.parse() {
            Ok(n) => res::fds(n).finish(),
            Err(_) => usage(),
        },
        ["sockets", n] => match n.parse() {
            Ok(n) => res::sockets(n).finish(),
            Err(_) => usage(),
        },
        ["stack"] => res::stack(),
        ["flood", bytes] => match bytes.parse() {
            Ok(n) => res::flood(n),
            Err(_) => usage(),
        },
        ["spin"] => res::spin(),
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(2)
}
