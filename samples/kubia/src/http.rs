//! kubia's HTTP/1.x: finding one request in the bytes a connection has
//! received so far, and writing kubia's answer to it. Pure, so it is tested
//! on the host.

/// The largest request head accepted; a longer one is a `400`.
pub const MAX_HEAD: usize = 64 * 1024;

/// What the buffered bytes of a connection hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// No complete head yet.
    Incomplete,
    /// A head that is not HTTP/1.x, or too long: answer `400` and close.
    Bad,
    Request(Request<'a>),
}

/// One request head.
#[derive(Debug, PartialEq, Eq)]
pub struct Request<'a> {
    pub method: &'a str,
    pub target: &'a str,
    /// Bytes of the buffer the head takes, its blank line included.
    pub head_len: usize,
    /// The body's `Content-Length`, which kubia reads and discards.
    pub body_len: u64,
    /// The connection stays open after the answer: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    /// A chunked body, which kubia does not decode, ends the connection.
    pub keep_alive: bool,
    /// HTTP/1.0, whose keep-alive must be confirmed in the answer.
    pub http10: bool,
}

/// Looks for a complete request head at the start of `data`.
pub fn parse(data: &[u8]) -> Parsed<'_> {
    let Some(head_len) = head_end(data) else {
        return if data.len() > MAX_HEAD {
            Parsed::Bad
        } else {
            Parsed::Incomplete
        };
    };
    if head_len > MAX_HEAD {
        return Parsed::Bad;
    }
    match parse_head(&data[..head_len]) {
        Some(mut request) => {
            request.head_len = head_len;
            Parsed::Request(request)
        }
        None => Parsed::Bad,
    }
}

/// Index just past the first `\r\n\r\n` (or a bare `\n\n`), if present.
fn head_end(data: &[u8]) -> Option<usize> {
    let lf = data.iter().position(|b| *b == b'\n')?;
    // Most heads end in CRLF CRLF; look for both blank-line forms from the
    // first line feed on.
    (lf..data.len()).find_map(|i| {
        if data[i] != b'\n' {
            return None;
        }
        match data.get(i + 1) {
            Some(b'\n') => Some(i + 2),
            Some(b'\r') if data.get(i + 2) == Some(&b'\n') => Some(i + 3),
            _ => None,
        }
    })
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_head(head: &[u8]) -> Option<Request<'_>> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_token(method) || target.is_empty() {
        return None;
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ => return None,
    };
    let mut keep_alive = !http10;
    let mut body_len = 0u64;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if !is_token(name) {
            return None;
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            keep_alive = false;
        } else if name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        }
    }
    Some(Request {
        method,
        target,
        head_len: 0,
        body_len,
        keep_alive,
        http10,
    })
}

/// The body of every answer.
pub fn body(hostname: &str) -> String {
    format!("you've hit {hostname}\n")
}

/// Appends kubia's answer to `request` (`None`: a bad request) to `out`.
pub fn respond(out: &mut Vec<u8>, request: Option<&Request<'_>>, body: &str) {
    let (status, body, keep_alive, http10, send_body) = match request {
        Some(r) => ("200 OK", body, r.keep_alive, r.http10, r.method != "HEAD"),
        None => ("400 Bad Request", "bad request\n", false, false, true),
    };
    let connection = match (keep_alive, http10) {
        (false, _) => "Connection: close\r\n",
        (true, true) => "Connection: keep-alive\r\n",
        (true, false) => "",
    };
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
            body.len()
        )
        .as_bytes(),
    );
    if send_body {
        out.extend_from_slice(body.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(data: &[u8]) -> Request<'_> {
        match parse(data) {
            Parsed::Request(r) => r,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(data)),
        }
    }

    #[test]
    fn parses_requests_and_keep_alive() {
        let r = request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next");
        assert_eq!((r.method, r.target, r.head_len), ("GET", "/", 27));
        assert!(r.keep_alive && !r.http10);
        let r = request(b"HEAD /a HTTP/1.0\n\n");
        assert_eq!((r.method, r.head_len, r.keep_alive), ("HEAD", 18, false));
        let r = request(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(r.keep_alive && r.http10);
        let r = request(b"GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n");
        assert!(!r.keep_alive);
        let r = request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(r.body_len, 5);
        let r = request(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(!r.keep_alive, "chunked bodies end the connection");
    }

    #[test]
    fn waits_for_a_whole_head_and_refuses_bad_ones() {
        assert_eq!(parse(b""), Parsed::Incomplete);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Incomplete);
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r"),
            Parsed::Incomplete
        );
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/1.1 x\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"\x16\x03\x01\r\n\r\n",
        ] {
            assert_eq!(
                parse(bad),
                Parsed::Bad,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse(&long), Parsed::Bad, "an endless head");
    }

    #[test]
    fn answers() {
        let mut out = Vec::new();
        let r = request(b"GET / HTTP/1.1\r\n\r\n");
        respond(&mut out, Some(&r), &body("h1"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\nyou've hit h1\n"
        );
        out.clear();
        let r = request(b"HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        respond(&mut out, Some(&r), &body("h1"));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\nConnection: keep-alive\r\n\r\n"
        );
        out.clear();
        respond(&mut out, None, "ignored");
        assert!(out.starts_with(b"HTTP/1.1 400 Bad Request\r\n"));
        assert!(out.ends_with(b"Connection: close\r\n\r\nbad request\n"));
    }
}
