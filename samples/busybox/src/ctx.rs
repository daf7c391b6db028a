//! The execution context handed to every applet: its standard streams and
//! environment, so applets can run in-process under `sh` with redirections.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

/// Environment variables visible to an applet, sorted by name.
pub type Env = BTreeMap<String, String>;

/// Standard streams and environment of one applet invocation.
pub struct Ctx<'a> {
    pub stdin: &'a mut dyn BufRead,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
    pub env: &'a Env,
}

impl Ctx<'_> {
    /// Prints `busybox: <applet>: <msg>` to stderr and returns exit status 1.
    pub fn fail(&mut self, applet: &str, msg: impl std::fmt::Display) -> i32 {
        // Nothing sensible can be done if stderr itself is broken.
        let _ = writeln!(self.stderr, "busybox: {applet}: {msg}");
        1
    }

    /// Looks up an environment variable.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }
}

/// Renders an I/O error without Rust's ` (os error N)` suffix, like C tools do.
pub fn errmsg(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Which side of a [`copy`] failed, so callers can name the right object.
#[derive(Debug)]
pub enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Copies `from` to `to` until EOF and flushes `to`; returns the byte count.
pub fn copy(from: &mut dyn Read, to: &mut dyn Write) -> Result<u64, CopyError> {
    let mut buf = [0u8; 16 * 1024];
    let mut total = 0u64;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        to.write_all(&buf[..n]).map_err(CopyError::Write)?;
        total += n as u64;
    }
    to.flush().map_err(CopyError::Write)?;
    Ok(total)
}

/// Opens input operand `name` for reading; `-` is `stdin`.
pub fn open_input<'a>(stdin: &'a mut dyn BufRead, name: &str) -> io::Result<Box<dyn BufRead + 'a>> {
    if name == "-" {
        Ok(Box::new(stdin))
    } else {
        Ok(Box::new(BufReader::new(File::open(name)?)))
    }
}

/// The input operands of a filter: stdin (`-`) when there are none.
pub fn inputs(operands: &[String]) -> Vec<String> {
    if operands.is_empty() {
        vec!["-".to_string()]
    } else {
        operands.to_vec()
    }
}

/// The last component of a `/`-separated path (`/bin/ls` -> `ls`).
pub fn basename(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    }
}

/// The process environment, converting non-UTF-8 data lossily instead of
/// panicking like `std::env::vars` would.
pub fn process_env() -> Env {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

/// Runs `f` with in-memory streams; returns (status, stdout, stderr).
#[cfg(test)]
pub fn capture(
    stdin: &str,
    env: &Env,
    f: impl FnOnce(&mut Ctx<'_>) -> i32,
) -> (i32, String, String) {
    let mut input = io::Cursor::new(stdin.as_bytes().to_vec());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = f(&mut Ctx {
        stdin: &mut input,
        stdout: &mut out,
        stderr: &mut err,
        env,
    });
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basename_strips_dirs() {
        assert_eq!(basename("/bin/ls"), "ls");
        assert_eq!(basename("ls"), "ls");
        assert_eq!(basename("/usr/bin/"), "bin");
        assert_eq!(basename(""), "");
    }

    #[test]
    fn errmsg_drops_os_error_suffix() {
        let e = io::Error::from_raw_os_error(2);
        assert!(!errmsg(&e).contains("os error"));
    }
}
