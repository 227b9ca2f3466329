//! What the benchmarks share: summary statistics of timings, and the
//! baseline every container benchmark is measured against, a raw
//! `docker run --rm` of the busybox test image.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The local test image (`make setup` builds it).
pub const IMAGE: &str = "fog-test/busybox:latest";

/// Summary of a set of timings, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub mean: f64,
    pub median: f64,
    pub p90: f64,
    pub min: f64,
}

/// Sorts `samples` and summarises them; `samples` must not be empty.
pub fn stats(samples: &mut [Duration]) -> Stats {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1_000.0;
    let n = samples.len().max(1);
    let at = |i: usize| samples.get(i.min(n - 1)).map_or(0.0, |d| ms(*d));
    Stats {
        mean: samples.iter().map(|d| ms(*d)).sum::<f64>() / n as f64,
        median: at(n / 2),
        p90: at(n * 9 / 10),
        min: at(0),
    }
}

/// `docker run --rm` as an operator would type it, with no network as the sandbox has.
pub async fn raw_docker_run() -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = tokio::process::Command::new("docker")
        .args(["run", "--rm", "--network", "none", IMAGE, "true"])
        .status()
        .await
        .context("running docker")?;
    let took = started.elapsed();
    if !status.success() {
        bail!("docker run failed: {status}");
    }
    Ok(took)
}
