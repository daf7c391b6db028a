//! The "kubia" server from Kubernetes in Action as a `wasi:http/proxy`
//! component: the host accepts the connections and calls the exported
//! `wasi:http/incoming-handler` once per request, which answers `200` with
//! `you've hit <HOSTNAME>` (no body for `HEAD`). The socket-based twin is
//! `samples/kubia`.
//!
//! Only wasm32-wasip2 gets the handler; on other targets the crate is the
//! pure helpers, so the workspace still builds (and tests) everywhere.

/// `HOSTNAME` from the guest's environment, or `"unknown"` when it is unset
/// or empty.
pub fn hostname(env: &[(String, String)]) -> &str {
    env.iter()
        .find(|(name, _)| name == "HOSTNAME")
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
        .unwrap_or("unknown")
}

/// The response body, the same as kubia's.
pub fn body(hostname: &str) -> String {
    format!("you've hit {hostname}\n")
}

#[cfg(all(target_os = "wasi", target_env = "p2"))]
mod handler {
    use std::io::{self, Write as _};

    use wasip2::cli::environment;
    use wasip2::exports::http::incoming_handler::Guest;
    use wasip2::http::types::{
        ErrorCode, Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse,
        ResponseOutparam,
    };

    struct Kubia;

    wasip2::http::proxy::export!(Kubia);

    impl Guest for Kubia {
        fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
            let method = request.method();
            let target = request.path_with_query().unwrap_or_else(|| "/".into());
            // Unlike kubia, the handler never sees the peer's address.
            let _ = writeln!(
                io::stdout(),
                "Received request for {} {target}",
                method_name(&method)
            );
            drop(request);

            let env = environment::get_environment();
            let body = super::body(super::hostname(&env));
            let send_body = !matches!(method, Method::Head);
            let (response, outgoing) = match start_response(&body, send_body) {
                Ok(started) => started,
                Err(e) => {
                    eprintln!("kubia-http: {e}");
                    ResponseOutparam::set(response_out, Err(ErrorCode::InternalError(Some(e))));
                    return;
                }
            };
            ResponseOutparam::set(response_out, Ok(response));
            if let Err(e) = finish_body(outgoing, if send_body { &body } else { "" }) {
                eprintln!("kubia-http: {e}");
            }
        }
    }

    /// A `200 text/plain` response and its body, not yet written. A HEAD
    /// response carries no content-length: the host would hold the (empty)
    /// body to it.
    fn start_response(
        body: &str,
        with_length: bool,
    ) -> Result<(OutgoingResponse, OutgoingBody), String> {
        let mut headers = vec![("content-type".to_string(), b"text/plain".to_vec())];
        if with_length {
            headers.push((
                "content-length".to_string(),
                body.len().to_string().into_bytes(),
            ));
        }
        let headers = Fields::from_list(&headers).map_err(|e| format!("headers: {e:?}"))?;
        let response = OutgoingResponse::new(headers);
        let outgoing = response
            .body()
            .map_err(|()| "response body already taken".to_string())?;
        Ok((response, outgoing))
    }

    fn finish_body(outgoing: OutgoingBody, body: &str) -> Result<(), String> {
        let mut stream = outgoing
            .write()
            .map_err(|()| "body stream already taken".to_string())?;
        // std's Write: write_all waits for the stream's budget, and its flush
        // (unlike the inherent one) blocks until the bytes are out.
        stream
            .write_all(body.as_bytes())
            .and_then(|()| io::Write::flush(&mut stream))
            .map_err(|e| format!("writing the body: {e}"))?;
        // The stream is a child of the body: it must go before finish.
        drop(stream);
        OutgoingBody::finish(outgoing, None).map_err(|e| format!("finishing the body: {e:?}"))
    }

    fn method_name(method: &Method) -> &str {
        match method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Connect => "CONNECT",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
            Method::Patch => "PATCH",
            Method::Other(other) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn formats_the_body() {
        assert_eq!(body("kubia-7x9q2"), "you've hit kubia-7x9q2\n");
    }

    #[test]
    fn reads_the_hostname() {
        assert_eq!(hostname(&env(&[("PATH", "/"), ("HOSTNAME", "abc")])), "abc");
        assert_eq!(hostname(&env(&[("HOSTNAME", "")])), "unknown");
        assert_eq!(hostname(&env(&[("HOSTNAMEX", "x")])), "unknown");
        assert_eq!(hostname(&[]), "unknown");
    }
}
