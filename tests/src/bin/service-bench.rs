//! A service's HTTP requests through the hub's proxy against the same
//! server reached directly, on loopback, in the same run: requests/s and
//! latency percentiles of each side, and the ratios.
//!
//! The service (busybox httpd, the test image) runs on a real miner of a
//! local fleet (anvil, contracts, `fog-hub`, `fog-miner`); the direct side is
//! the same image run with `docker run -p 127.0.0.1:PORT:8080`. Each side
//! sends REQUESTS GETs of `/` with CONCURRENCY at a time, in rounds that
//! alternate sides so both see the same machine noise.
//!
//! `cargo build --release --bins && cargo run --release -p fog-tests --bin
//! service-bench -- [REQUESTS] [CONCURRENCY]` (default 2000 and 16), after
//! `make setup`.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a benchmark prints its figures

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use fog_tests::cli::{Buyer, import_key, text};
use fog_tests::fleet::{Fleet, image_id};
use tokio::sync::Semaphore;

const ROUNDS: usize = 4;

struct Side {
    name: &'static str,
    url: String,
    latencies: Vec<Duration>,
    elapsed: Duration,
    failed: usize,
}

async fn round(
    client: &reqwest::Client,
    side: &mut Side,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let limit = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(requests);
    for _ in 0..requests {
        let permit = Arc::clone(&limit).acquire_owned().await?;
        let client = client.clone();
        let url = side.url.clone();
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = match client.get(&url).send().await {
                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            drop(permit);
            (t.elapsed(), ok)
        }));
    }
    for task in tasks {
        let (took, ok) = task.await?;
        if ok {
            side.latencies.push(took);
        } else {
            side.failed += 1;
        }
    }
    side.elapsed += started.elapsed();
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1_000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().map_or(Ok(2_000), |a| a.parse())?;
    let concurrency: usize = args.next().map_or(Ok(16), |a| a.parse())?;
    let per_round = (requests / ROUNDS).max(1);

    let mut fleet = Fleet::start("").await?;
    let miner = fleet.start_miner("miner", 2_000, "")?;
    fleet.wait_for_miners(1).await?;
    let funded = fleet.buyer().await?;
    let keystore = fleet.dir.path().join("buyer.json");
    let keystore = keystore.to_str().context("path")?.to_owned();
    let imported = import_key(&keystore, &funded.key);
    ensure!(imported.status.success(), "{}", text(&imported));
    let buyer = Buyer::on_chain(&fleet, keystore, true);
    let image = image_id("fog-test/httpd:latest")?;
    let file = fleet.dir.path().join("site.toml");
    std::fs::write(
        &file,
        format!(
            "image = \"{image}\"\nport = 8080\ncpus = 1\nmemory = \"128M\"\ndisk = \"32M\"\nperiod_secs = 60\nprice = \"0.01\"\nmax_spend = \"1\"\n[health]\npath = \"/\"\ninterval_secs = 5\n"
        ),
    )?;
    let up = buyer.fog(&[
        "service",
        "up",
        "--json",
        file.to_str().context("path")?,
        "--fund",
        "5",
    ]);
    ensure!(up.status.success(), "{}", text(&up));
    let up: serde_json::Value = serde_json::from_slice(&up.stdout)?;
    let proxied = up["url"].as_str().context("url")?.to_owned();

    // The same image, published on loopback: what a direct visitor gets.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let name = format!("fog-service-bench-{}", std::process::id());
    let started = std::process::Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "--cpus",
            "1",
            "--memory",
            "128m",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            &image,
        ])
        .output()?;
    ensure!(started.status.success(), "docker run: {}", text(&started));
    let direct = format!("http://127.0.0.1:{port}/");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let until = Instant::now() + Duration::from_secs(10);
    while client.get(&direct).send().await.is_err() {
        ensure!(
            Instant::now() < until,
            "the direct container did not answer"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let mut sides = [
        Side {
            name: "direct",
            url: direct,
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
            failed: 0,
        },
        Side {
            name: "through the hub",
            url: proxied,
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
            failed: 0,
        },
    ];
    // Warm up both (image caches, the proxy's first tunnels).
    for side in &mut sides {
        let mut warm = Side {
            name: side.name,
            url: side.url.clone(),
            latencies: Vec::new(),
            elapsed: Duration::ZERO,
            failed: 0,
        };
        round(&client, &mut warm, 100, concurrency).await?;
    }
    for _ in 0..ROUNDS {
        for side in &mut sides {
            round(&client, side, per_round, concurrency).await?;
        }
    }
    let _ = std::process::Command::new("docker")
        .args(["rm", "-f", &name])
        .output();
    drop(miner);

    println!(
        "{} GET / per side ({ROUNDS} alternating rounds), {concurrency} at a time, loopback, busybox httpd (closes every connection)",
        per_round * ROUNDS
    );
    println!(
        "{:<16} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "side", "req/s", "p50 ms", "p90 ms", "p99 ms", "failed"
    );
    let mut figures = Vec::new();
    for side in &mut sides {
        side.latencies.sort();
        let rps = side.latencies.len() as f64 / side.elapsed.as_secs_f64();
        let p50 = percentile(&side.latencies, 0.50);
        let p90 = percentile(&side.latencies, 0.90);
        let p99 = percentile(&side.latencies, 0.99);
        println!(
            "{:<16} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            side.name, rps, p50, p90, p99, side.failed
        );
        figures.push((rps, p99));
    }
    let (direct_rps, direct_p99) = figures[0];
    let (hub_rps, hub_p99) = figures[1];
    println!(
        "through the hub / direct: throughput {:.2}, p99 latency {:.2}",
        hub_rps / direct_rps,
        hub_p99 / direct_p99
    );
    Ok(())
}
