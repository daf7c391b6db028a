//! `wget [-q] [-O FILE|-] [-T SECS] URL`: a plain HTTP/1.0 GET client over
//! `std::net` (WASI preview 2 sockets), following up to five redirects.

use crate::ctx::{CopyError, Ctx, copy, errmsg};
use crate::opts;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const MAX_HEAD: usize = 64 * 1024;
const MAX_REDIRECTS: usize = 5;

#[derive(Debug, PartialEq)]
struct Url {
    /// `host[:port]` as written, for the Host header.
    authority: String,
    host: String,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

pub fn main(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    match run(ctx, args) {
        Ok(()) => 0,
        Err(msg) => ctx.fail("wget", msg),
    }
}

fn run(ctx: &mut Ctx<'_>, args: &[String]) -> Result<(), String> {
    let opts = opts::parse(args, "q", "OTU")?;
    let [url] = opts.operands.as_slice() else {
        return Err("expected exactly one URL".to_string());
    };
    let quiet = opts.has('q');
    let timeout = match opts.value('T') {
        Some(t) => Some(
            t.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("invalid timeout '{t}'"))?,
        ),
        None => None,
    };
    let agent = opts.value('U').unwrap_or("Wget");
    let mut url = parse_url(url)?;
    let mut redirects = 0;
    let (mut reader, headers) = loop {
        if !quiet {
            let _ = writeln!(ctx.stderr, "Connecting to {}", url.authority);
        }
        let Response {
            body: reader,
            status,
            headers,
        } = request(&url, agent, timeout)?;
        let code = status.split_whitespace().nth(1).unwrap_or("");
        if code.starts_with('3')
            && let Some(location) = header(&headers, "location")
        {
            redirects += 1;
            if redirects > MAX_REDIRECTS {
                return Err("too many redirects".to_string());
            }
            url = resolve(&url, location)?;
            continue;
        }
        if !code.starts_with('2') {
            return Err(format!("server returned error: {status}"));
        }
        break (reader, headers);
    };
    let chunked =
        header(&headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let length = header(&headers, "content-length").and_then(|v| v.parse::<u64>().ok());
    let target = match opts.value('O') {
        Some(name) => name.to_string(),
        None => default_name(&url.path),
    };
    let mut file;
    let out: &mut dyn Write = if target == "-" {
        &mut *ctx.stdout
    } else {
        if !quiet {
            let _ = writeln!(ctx.stderr, "saving to '{target}'");
        }
        file =
            File::create(&target).map_err(|e| format!("can't open '{target}': {}", errmsg(&e)))?;
        &mut file
    };
    let copied = if chunked {
        let mut raw = Vec::new();
        reader
            .read_to_end(&mut raw)
            .map_err(|e| format!("read error: {}", errmsg(&e)))?;
        let body = dechunk(&raw).ok_or("malformed chunked body")?;
        out.write_all(&body)
            .and_then(|()| out.flush())
            .map(|()| body.len() as u64)
            .map_err(CopyError::Write)
    } else {
        match length {
            Some(n) => copy(&mut (&mut reader).take(n), out),
            None => copy(&mut reader, out),
        }
    };
    let copied = copied.map_err(|e| match e {
        CopyError::Read(e) => format!("read error: {}", errmsg(&e)),
        CopyError::Write(e) => format!("write error on '{target}': {}", errmsg(&e)),
    })?;
    if length.is_some_and(|n| n != copied) {
        return Err("connection closed before the whole body arrived".to_string());
    }
    if !quiet && target != "-" {
        let _ = writeln!(ctx.stderr, "'{target}' saved");
    }
    Ok(())
}

/// A response whose head has been read.
struct Response {
    /// Positioned at the start of the body.
    body: BufReader<TcpStream>,
    /// `HTTP/1.1 200 OK`
    status: String,
    /// Names lowercased.
    headers: Vec<(String, String)>,
}

/// Sends the GET and reads the response head.
fn request(url: &Url, agent: &str, timeout: Option<Duration>) -> Result<Response, String> {
    let mut stream = TcpStream::connect((url.host.as_str(), url.port)).map_err(|e| {
        format!(
            "can't connect to remote host ({}:{}): {}",
            url.host,
            url.port,
            errmsg(&e)
        )
    })?;
    if timeout.is_some() {
        // Not every WASI host supports socket timeouts; go on without one.
        let _ = stream.set_read_timeout(timeout);
    }
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: {agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.authority
    );
    stream
        .write_all(req.as_bytes())
        .map_err(|e| format!("error sending request: {}", errmsg(&e)))?;
    let mut reader = BufReader::new(stream);
    let mut head_len = 0;
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take((MAX_HEAD - head_len) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("read error: {}", errmsg(&e)))?;
        head_len += n;
        if !line.ends_with(b"\n") {
            return Err(if head_len >= MAX_HEAD {
                "response header too large".to_string()
            } else {
                "connection closed before the response header ended".to_string()
            });
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            break;
        }
        lines.push(text);
    }
    let mut lines = lines.into_iter();
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/") {
        return Err(format!("not an HTTP response: '{status}'"));
    }
    let headers = lines
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Ok(Response {
        body: reader,
        status,
        headers,
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_url(s: &str) -> Result<Url, String> {
    let rest = match s.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => return Err(format!("unsupported URL scheme '{scheme}' in '{s}'")),
        None => s,
    };
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| format!("bad URL '{s}'"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port in URL '{s}'"))?,
        None => 80,
    };
    if host.is_empty() {
        return Err(format!("bad URL '{s}': no host"));
    }
    Ok(Url {
        authority: authority.to_string(),
        host: host.to_string(),
        port,
        path,
    })
}

/// Resolves a `Location` header against the current URL.
fn resolve(base: &Url, location: &str) -> Result<Url, String> {
    if location.contains("://") {
        return parse_url(location);
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let dir = base.path.split('?').next().unwrap_or("/");
        let dir = &dir[..dir.rfind('/').map_or(0, |i| i + 1)];
        format!("{dir}{location}")
    };
    Ok(Url {
        authority: base.authority.clone(),
        host: base.host.clone(),
        port: base.port,
        path,
    })
}

/// The file name wget saves to when no `-O` is given.
fn default_name(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    match path.rsplit('/').next() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => "index.html".to_string(),
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        let chunk = raw.get(..size)?;
        body.extend_from_slice(chunk);
        raw = raw.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::ctx::{Env, capture};
    use std::net::TcpListener;

    #[test]
    fn urls() {
        let u = parse_url("http://example.org:8080/a/b?c=d").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("example.org", 8080, "/a/b?c=d")
        );
        let u = parse_url("host").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.port, u.path.as_str()),
            ("host", 80, "/")
        );
        let u = parse_url("http://[::1]:81").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://x:99999/").is_err());
        assert!(parse_url("http:///x").is_err());
        assert_eq!(resolve(&u, "/z").unwrap().path, "/z");
        let base = parse_url("http://h/a/b").unwrap();
        assert_eq!(resolve(&base, "c").unwrap().path, "/a/c");
        assert_eq!(default_name("/a/b.txt?x"), "b.txt");
        assert_eq!(default_name("/"), "index.html");
        assert_eq!(
            dechunk(b"3\r\nabc\r\n1;x\r\nd\r\n0\r\n\r\n").unwrap(),
            b"abcd"
        );
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    /// Serves `responses` in order on a loopback port, one per connection.
    fn serve(responses: Vec<String>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for resp in responses {
                let (mut s, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(resp.as_bytes());
            }
        });
        port
    }

    #[test]
    fn fetches_over_loopback() {
        let port = serve(vec![
            "HTTP/1.0 302 Found\r\nLocation: /real\r\n\r\n".to_string(),
            "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n".to_string(),
            "HTTP/1.1 404 Not Found\r\n\r\n".to_string(),
        ]);
        let env = Env::new();
        let url = format!("http://127.0.0.1:{port}/start");
        let args = ["-q", "-O-", &url].map(String::from);
        let (code, out, err) = capture("", &env, |ctx| main(ctx, &args));
        assert_eq!((code, out.as_str(), err.as_str()), (0, "hello\n", ""));
        let args = ["-q", "-O", "-", &url].map(String::from);
        let (code, _, err) = capture("", &env, |ctx| main(ctx, &args));
        assert_eq!(code, 1);
        assert_eq!(
            err,
            "busybox: wget: server returned error: HTTP/1.1 404 Not Found\n"
        );
    }
}
