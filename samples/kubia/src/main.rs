//! The "kubia" server from Kubernetes in Action as a WASI component: answers
//! every HTTP request on port 8080 with `you've hit <hostname>`, so wrun's
//! service and load-balancing examples can show which replica replied.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

const ADDR: &str = "0.0.0.0:8080";
const MAX_HEAD: usize = 64 * 1024;
/// A client that stalls must not block the (sequential) server for long.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    println!("Kubia server starting...");
    let _ = io::stdout().flush();
    let listener = match TcpListener::bind(ADDR) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("kubia: cannot listen on {ADDR}: {e}");
            std::process::exit(1);
        }
    };
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                if let Err(e) = handle(stream, &hostname) {
                    eprintln!("kubia: connection error: {e}");
                }
            }
            Err(e) => eprintln!("kubia: accept failed: {e}"),
        }
    }
}

fn handle(mut stream: TcpStream, hostname: &str) -> io::Result<()> {
    // Some WASI hosts do not support timeouts; serve anyway.
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let head = match read_head(&mut stream)? {
        Some(head) => head,
        // The client connected and left without a request (e.g. a probe).
        None => return Ok(()),
    };
    let (status, body, send_body) = match parse_request(&head) {
        Some(method) => {
            println!("Received request from {}", stream.peer_addr()?.ip());
            let _ = io::stdout().flush();
            (
                "200 OK",
                format!("you've hit {hostname}\n"),
                method != "HEAD",
            )
        }
        None => ("400 Bad Request", "bad request\n".to_string(), true),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if send_body { body.as_str() } else { "" }
    );
    stream.write_all(response.as_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// Reads up to the blank line ending the request head. `None` if the peer
/// closed before sending anything; a truncated or oversized head is returned
/// as is and then fails to parse.
fn read_head(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((!head.is_empty()).then_some(head));
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = head_end(&head) {
            head.truncate(end);
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(Some(head));
        }
    }
}

/// Index just past `\r\n\r\n` (or a bare `\n\n`), if present.
fn head_end(data: &[u8]) -> Option<usize> {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Validates a complete request head; returns its method.
fn parse_request(head: &[u8]) -> Option<&str> {
    if head.len() > MAX_HEAD || head_end(head) != Some(head.len()) {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if parts.next().is_some()
        || !token(method)
        || target.is_empty()
        || !version.starts_with("HTTP/1.")
    {
        return None;
    }
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, _) = line.split_once(':')?;
        if !token(name) {
            return None;
        }
    }
    Some(method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("GET")
        );
        assert_eq!(parse_request(b"HEAD /a HTTP/1.0\n\n"), Some("HEAD"));
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(parse_request(b"GET /\r\n\r\n"), None);
        assert_eq!(parse_request(b"GET / HTTP/1.1 x\r\n\r\n"), None);
        assert_eq!(parse_request(b"G(T / HTTP/1.1\r\n\r\n"), None);
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), None);
        assert_eq!(parse_request(b"\x16\x03\x01\r\n\r\n"), None);
    }

    #[test]
    fn finds_head_end() {
        assert_eq!(head_end(b"a\r\n\r\nbody"), Some(5));
        assert_eq!(head_end(b"a\n\nbody"), Some(3));
        assert_eq!(head_end(b"a\r\n"), None);
    }
}
