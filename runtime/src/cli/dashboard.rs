//! `wrun dashboard`: the web UI, as `minikube dashboard` opens it. It
//! starts the daemon and the cluster when needed, asks the daemon for a
//! one-time login link on 127.0.0.1, and opens it in the browser (or, with
//! `--url` or without a display, prints it).

use anyhow::Result;
use clap::Args;
use hyper::Method;
use serde::Deserialize;

use super::Ctx;

/// Open the web dashboard of the cluster and the containers
#[derive(Debug, Args)]
pub struct DashboardCommand {
    /// Print the login URL instead of opening a browser
    #[arg(long)]
    url: bool,
}

#[derive(Debug, Deserialize)]
struct Login {
    url: String,
}

/// Whether a browser can be shown here: always on macOS and Windows, and
/// on other systems only with a graphical session.
fn has_display() -> bool {
    if cfg!(any(target_os = "macos", windows)) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

impl DashboardCommand {
    pub fn execute(self, ctx: &Ctx) -> Result<u8> {
        super::block_on(self.run(ctx))?
    }

    async fn run(self, ctx: &Ctx) -> Result<u8> {
        super::cluster::start(ctx, None).await?;
        let client = ctx.client().await?;
        let login: Login = client
            .json(Method::POST, "/_wrun/dashboard", None::<&()>)
            .await?;
        if self.url || !has_display() {
            println!("{}", login.url);
            return Ok(0);
        }
        println!("✓ opening the wrun dashboard in your browser (the link logs you in once)");
        if let Err(e) = webbrowser::open(&login.url) {
            println!("cannot open a browser ({e}); open this link yourself:");
            println!("{}", login.url);
        }
        Ok(0)
    }
}
