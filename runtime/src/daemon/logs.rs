//! Container logs on disk, in Docker's `json-file` format: one JSON object
//! per line, `{"log": "...", "stream": "stdout", "time": "<RFC 3339>"}`.
//! The file is append-only and survives daemon restarts.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::api::stream::StreamKind;

#[derive(Serialize, Deserialize)]
struct Line {
    log: String,
    stream: String,
    time: String,
}

/// One logged chunk of output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub stream: StreamKind,
    pub time: DateTime<Utc>,
    pub data: Vec<u8>,
}

/// Which entries a reader wants.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub stdout: bool,
    pub stderr: bool,
    /// Only the last N entries.
    pub tail: Option<usize>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl LogQuery {
    pub fn wants(&self, e: &LogEntry) -> bool {
        let stream_ok = match e.stream {
            StreamKind::Stdout => self.stdout,
            StreamKind::Stderr => self.stderr,
            _ => false,
        };
        stream_ok
            && self.since.is_none_or(|s| e.time >= s)
            && self.until.is_none_or(|u| e.time <= u)
    }
}

/// Appends `data` to the log, one entry per line (a last fragment without
/// a newline is an entry of its own). Returns the bytes written.
pub fn append(file: &mut File, stream: StreamKind, data: &[u8]) -> std::io::Result<u64> {
    let time = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let mut out = Vec::with_capacity(data.len() + 64);
    for piece in data.split_inclusive(|b| *b == b'\n') {
        let line = Line {
            log: String::from_utf8_lossy(piece).into_owned(),
            stream: stream.name().to_string(),
            time: time.clone(),
        };
        serde_json::to_writer(&mut out, &line).map_err(std::io::Error::other)?;
        out.push(b'\n');
    }
    file.write_all(&out)?;
    Ok(out.len() as u64)
}

/// How a container's log is kept: rotated when it reaches `max_size`
/// bytes, keeping `max_files` files in all (`--log-opt max-size=`,
/// `max-file=`, as Docker's json-file driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    pub max_size: u64,
    pub max_files: u32,
}

/// The daemon's default, so a chatty container cannot fill the disk:
/// 20 MB in up to 5 files, as Docker's `local` driver keeps.
pub const DEFAULT_ROTATION: Rotation = Rotation {
    max_size: 20 << 20,
    max_files: 5,
};

impl Rotation {
    /// From a container's `--log-opt`s, over the default. Unknown options
    /// and bad values are errors that name them.
    pub fn from_opts(opts: &std::collections::BTreeMap<String, String>) -> Result<Self, String> {
        let mut r = DEFAULT_ROTATION;
        for (k, v) in opts {
            match k.as_str() {
                "max-size" => {
                    r.max_size = parse_size(v).ok_or_else(|| {
                        format!("log option max-size={v:?}: expected a size such as 10m")
                    })?;
                }
                "max-file" => {
                    r.max_files = v.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
                        format!("log option max-file={v:?}: expected a count of at least 1")
                    })?;
                }
                // Accepted and without effect here, as for Docker's json-file.
                "compress" | "labels" | "env" | "tag" | "mode" => {}
                other => {
                    return Err(format!(
                        "unknown log option {other:?} for the json-file driver"
                    ));
                }
            }
        }
        Ok(r)
    }
}

/// `10m`, `1g`, `512k`, `100` (bytes); `-1` means no limit.
fn parse_size(s: &str) -> Option<u64> {
    if s == "-1" {
        return Some(u64::MAX);
    }
    let s = s.trim().to_ascii_lowercase();
    let s = s.trim_end_matches('b');
    let (num, mul) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mul).filter(|n| *n > 0)
}

/// The `n`th rotated file of the log at `path` (`path.1` is the newest).
pub use crate::container::rotated_log as rotated;

/// Rotates the log at `path`: `path` becomes `path.1`, which becomes
/// `path.2`, and so on; the oldest beyond `max_files` goes.
pub fn rotate(path: &Path, max_files: u32) -> std::io::Result<()> {
    if max_files <= 1 {
        return std::fs::remove_file(path);
    }
    let _ = std::fs::remove_file(rotated(path, max_files - 1));
    for n in (1..max_files - 1).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))
}

/// Reads the first `limit` bytes of a log file (all of it when `None`),
/// after its rotated files, oldest first, and returns the entries `query`
/// wants. A missing file is an empty log; a torn last line (a crash
/// mid-write) is skipped.
pub fn read(path: &Path, limit: Option<u64>, query: &LogQuery) -> std::io::Result<Vec<LogEntry>> {
    let mut entries = Vec::new();
    let mut older: Vec<std::path::PathBuf> = (1..1000)
        .map(|n| rotated(path, n))
        .take_while(|p| p.exists())
        .collect();
    older.reverse();
    for p in older {
        read_file(&p, None, query, &mut entries)?;
    }
    read_file(path, limit, query, &mut entries)?;
    if let Some(n) = query.tail {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    Ok(entries)
}

fn read_file(
    path: &Path,
    limit: Option<u64>,
    query: &LogQuery,
    entries: &mut Vec<LogEntry>,
) -> std::io::Result<()> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let reader: Box<dyn std::io::Read> = match limit {
        Some(n) => Box::new(file.take(n)),
        None => Box::new(file),
    };
    for line in BufReader::new(reader).split(b'\n') {
        let line = line?;
        let Some(entry) = parse(&line) else { continue };
        if query.wants(&entry) {
            entries.push(entry);
        }
    }
    Ok(())
}

fn parse(line: &[u8]) -> Option<LogEntry> {
    let l: Line = serde_json::from_slice(line).ok()?;
    let stream = match l.stream.as_str() {
        "stdout" => StreamKind::Stdout,
        "stderr" => StreamKind::Stderr,
        _ => return None,
    };
    let time = DateTime::parse_from_rfc3339(&l.time)
        .ok()?
        .with_timezone(&Utc);
    Some(LogEntry {
        stream,
        time,
        data: l.log.into_bytes(),
    })
}

/// Docker's `--since`/`--until`: RFC 3339, Unix seconds (with an optional
/// fraction), or a duration before now such as `10m` or `1h30m`.
pub fn parse_time(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if s.is_empty() {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let nanos = (secs.fract() * 1e9) as u32;
        return DateTime::from_timestamp(secs.trunc() as i64, nanos);
    }
    let mut total = 0f64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(now - chrono::Duration::milliseconds((total * 1000.0) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_round_trip_with_tail_and_streams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        let mut f = File::create(&path).expect("create");
        append(&mut f, StreamKind::Stdout, b"one\ntwo\n").expect("append");
        append(&mut f, StreamKind::Stderr, b"oops").expect("append");
        // A torn last line is skipped.
        f.write_all(b"{\"log\":\"par").expect("torn");
        let all = LogQuery {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let got = read(&path, None, &all).expect("read");
        let text: Vec<&[u8]> = got.iter().map(|e| e.data.as_slice()).collect();
        assert_eq!(text, [&b"one\n"[..], b"two\n", b"oops"]);
        let tail = LogQuery {
            tail: Some(1),
            stderr: false,
            ..all.clone()
        };
        let got = read(&path, None, &tail).expect("read");
        assert_eq!(got[0].data, b"two\n");
        assert!(
            read(&dir.path().join("none"), None, &all)
                .expect("missing")
                .is_empty()
        );
    }

    #[test]
    fn logs_rotate_and_read_back_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c-json.log");
        for i in 0..5 {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .expect("open");
            append(&mut f, StreamKind::Stdout, format!("line {i}\n").as_bytes()).expect("append");
            drop(f);
            rotate(&path, 3).expect("rotate");
        }
        assert!(!path.exists() && rotated(&path, 2).exists() && !rotated(&path, 3).exists());
        let q = LogQuery {
            stdout: true,
            stderr: true,
            ..LogQuery::default()
        };
        let got: Vec<String> = read(&path, None, &q)
            .expect("read")
            .into_iter()
            .map(|e| String::from_utf8(e.data).expect("utf8"))
            .collect();
        assert_eq!(got, ["line 3\n", "line 4\n"]);
        let opts = |k: &str, v: &str| {
            Rotation::from_opts(&[(k.to_string(), v.to_string())].into_iter().collect())
        };
        assert_eq!(opts("max-size", "10m").expect("ok").max_size, 10 << 20);
        assert_eq!(opts("max-file", "3").expect("ok").max_files, 3);
        assert!(
            opts("max-size", "lots")
                .expect_err("bad")
                .contains("max-size")
        );
        assert!(opts("max-file", "0").is_err());
        assert!(opts("colour", "x").expect_err("bad").contains("colour"));
    }

    #[test]
    fn times_parse_as_docker_takes_them() {
        let now = Utc::now();
        assert_eq!(
            parse_time("10m", now),
            Some(now - chrono::Duration::minutes(10))
        );
        assert_eq!(
            parse_time("1700000000", now).map(|t| t.timestamp()),
            Some(1_700_000_000)
        );
        assert!(parse_time("2026-01-01T00:00:00Z", now).is_some());
        assert!(parse_time("soon", now).is_none());
        assert!(parse_time("5x", now).is_none());
    }
}
