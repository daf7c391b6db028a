//! The dashboard's files, built into the binary: the page, its script and
//! styles (hand-written, no build step), and the vendored libraries from
//! npm under `assets/vendor/` (with their licences). Nothing is fetched
//! from the network at run time.

use hyper::StatusCode;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};

use crate::daemon::http::{self, Resp};

/// Every file the page may load: its name under `/assets/`, its type and
/// its bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/style.css"),
    ),
    (
        "vendor/xterm.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/xterm.mjs"),
    ),
    (
        "vendor/xterm.css",
        "text/css; charset=utf-8",
        include_bytes!("assets/vendor/xterm.css"),
    ),
    (
        "vendor/morphdom.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/morphdom.mjs"),
    ),
    (
        "vendor/js-yaml.mjs",
        "text/javascript; charset=utf-8",
        include_bytes!("assets/vendor/js-yaml.mjs"),
    ),
];

const PAGE: &[u8] = include_bytes!("assets/index.html");

/// Scripts from this origin only; styles too, plus the inline ones the
/// terminal emulator sets on its own elements; connections (fetch and
/// WebSockets) to this origin only; never framed.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn with_headers(mut r: Resp, content_type: &'static str) -> Resp {
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// The page, for `/` and every deep link under `/ui/`.
pub fn page() -> Resp {
    let mut r = http::empty(StatusCode::OK);
    *r.body_mut() = http::full(PAGE);
    with_headers(r, "text/html; charset=utf-8")
}

/// One file under `/assets/`.
pub fn asset(name: &str) -> Resp {
    match FILES.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => {
            let mut r = http::empty(StatusCode::OK);
            *r.body_mut() = http::full(*bytes);
            with_headers(r, content_type)
        }
        None => {
            let mut r = http::empty(StatusCode::NOT_FOUND);
            *r.body_mut() = http::full(format!("no asset {name:?}\n"));
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_and_nothing_else() {
        for (name, _, _) in FILES {
            assert_eq!(asset(name).status(), StatusCode::OK, "{name}");
        }
        for bad in ["", "../mod.rs", "index.html", "vendor/"] {
            assert_eq!(asset(bad).status(), StatusCode::NOT_FOUND, "{bad}");
        }
        assert!(
            page().headers()["content-security-policy"]
                .to_str()
                .is_ok_and(|v| v.contains("frame-ancestors 'none'"))
        );
    }
}
