//! `wrun logs`: a container's output, from its log.

use anyhow::Result;
use clap::Args;
use hyper::Method;
use hyper::header::CONTENT_TYPE;

use super::run::encode;
use super::{Ctx, streams};
use crate::api::RAW_STREAM;

/// Fetch the logs of a container
#[derive(Debug, Args)]
pub struct LogsCommand {
    /// Follow log output
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs (or "all")
    #[arg(short = 'n', long, value_name = "N")]
    tail: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    timestamps: bool,
    /// Show logs since a timestamp (RFC 3339 or Unix) or a relative time (e.g. 10m)
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Show logs before a timestamp or a relative time
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    #[arg(value_name = "CONTAINER")]
    container: String,
}

impl LogsCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        let mut path = format!(
            "/containers/{}/logs?stdout=1&stderr=1&follow={}&timestamps={}",
            encode(&self.container),
            u8::from(self.follow),
            u8::from(self.timestamps)
        );
        for (k, v) in [
            ("tail", &self.tail),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(v) = v {
                path.push_str(&format!("&{k}={}", encode(v)));
            }
        }
        super::block_on(async {
            let client = ctx.client().await?;
            let resp = client.request(Method::GET, &path, None).await?;
            let raw = resp
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == RAW_STREAM.as_bytes());
            streams::copy_body(resp.into_body(), raw).await?;
            Ok(0)
        })?
    }
}
