//! A load generator for `make bench`: drives a daemon through the Docker
//! Engine API with many clients at once.
//!
//! ```text
//! wrun_load ADDRESS throughput IMAGE CLIENTS TOTAL
//!     create, start, wait and remove TOTAL containers running `true`,
//!     CLIENTS at a time; prints containers per second
//! wrun_load ADDRESS density IMAGE COUNT
//!     starts COUNT containers running `sleep 3600`, 16 at a time, and
//!     prints how long that took
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use hyper::Method;
use wrun::api::types::{ContainerConfig, CreateRequest, CreateResponse, WaitResponse};
use wrun::client::{Client, read_all};
use wrun::transport::Address;

fn create_body(image: &str, cmd: &[&str]) -> CreateRequest {
    CreateRequest {
        config: ContainerConfig {
            image: image.to_string(),
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn create(client: &Client, body: &CreateRequest) -> Result<String> {
    let r: CreateResponse = client
        .json(Method::POST, "/containers/create", Some(body))
        .await?;
    Ok(r.id)
}

/// One container's whole life: create, wait, start, remove.
async fn cycle(client: &Client, body: &CreateRequest) -> Result<()> {
    let id = create(client, body).await?;
    let wait = client
        .request(
            Method::POST,
            &format!("/containers/{id}/wait?condition=next-exit"),
            None,
        )
        .await?;
    client
        .call(Method::POST, &format!("/containers/{id}/start"))
        .await?;
    let w: WaitResponse = serde_json::from_slice(&read_all(wait).await?)?;
    if w.status_code != 0 {
        bail!("container {id} exited with {}", w.status_code);
    }
    client
        .call(Method::DELETE, &format!("/containers/{id}"))
        .await?;
    Ok(())
}

/// Runs `job` `count` times in all, with `workers` running at once, and
/// returns the seconds that took.
async fn spread<F, Fut>(count: usize, workers: usize, job: F) -> Result<f64>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let left = Arc::new(AtomicUsize::new(count));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let left = left.clone();
        let job = job.clone();
        tasks.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                job().await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed().as_secs_f64())
}

async fn throughput(client: Client, image: &str, clients: usize, total: usize) -> Result<()> {
    let body = Arc::new(create_body(image, &["true"]));
    // One warm-up cycle: the program is compiled and loaded.
    cycle(&client, &body).await?;
    let secs = spread(total, clients, move || {
        let client = client.clone();
        let body = body.clone();
        async move { cycle(&client, &body).await }
    })
    .await?;
    println!(
        "clients={clients} containers={total} seconds={secs:.3} per_second={:.1}",
        total as f64 / secs
    );
    Ok(())
}

async fn density(client: Client, image: &str, count: usize) -> Result<()> {
    let body = Arc::new(create_body(image, &["sleep", "3600"]));
    let secs = spread(count, 16, move || {
        let client = client.clone();
        let body = body.clone();
        async move {
            let id = create(&client, &body).await?;
            client
                .call(Method::POST, &format!("/containers/{id}/start"))
                .await?;
            Ok(())
        }
    })
    .await?;
    println!("running={count} seconds={secs:.3}");
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: wrun_load ADDRESS (throughput IMAGE CLIENTS TOTAL | density IMAGE COUNT)";
    let address = Address::parse(args.first().context(usage)?)?;
    let client = Client::new(address);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let n = |i: usize| -> Result<usize> {
        args.get(i)
            .context(usage)?
            .parse()
            .context("a count must be a number")
    };
    match args.get(1).map(String::as_str) {
        Some("throughput") => rt.block_on(throughput(
            client,
            args.get(2).context(usage)?,
            n(3)?,
            n(4)?,
        )),
        Some("density") => rt.block_on(density(client, args.get(2).context(usage)?, n(3)?)),
        _ => bail!("{usage}"),
    }
}
