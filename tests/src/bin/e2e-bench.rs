//! End-to-end wall time of a trivial job through the whole path a buyer
//! uses — `fog job run` (quote, escrow opened with a permit on anvil, signed
//! submission) → `fog-hub` (escrow check, scheduling, assignment) →
//! `fog-miner` (admission, Docker sandbox, output archive, upload, signed
//! receipt) → the hub accepting the receipt — against a raw
//! `docker run --rm` of the same image, interleaved in one process so both
//! see the same machine noise. Settlement is off: the figure stops at the
//! receipt, as the issue asks.
//!
//! `make bench-e2e` (release binaries), or
//! `cargo run --release -p fog-tests --bin e2e-bench -- [RUNS]` (default 20)
//! after `cargo build --release --bins`.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use fog_tests::bench::{raw_docker_run, stats};
use fog_tests::fleet::{Buyer, Fleet};

const WARM_UP: usize = 2;
const PASSWORD: &str = "bench password";

/// One job through the CLI, hub and miner: (until the CLI returned, until the receipt).
async fn fog_run(
    fleet: &Fleet,
    buyer: &Buyer,
    keystore: &std::path::Path,
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let out_dir = fleet.dir.path().join(format!("out-{n}"));
    let started = Instant::now();
    let run = tokio::process::Command::new(fog_tests::binary("fog")?)
        .args(["job", "run", "--image", &fleet.image])
        .args(["--cpus", "0.5", "--memory", "64M", "--disk", "16M"])
        .args(["--max-price", "1", "--duration", "60", "--json", "--out"])
        .arg(&out_dir)
        .arg("--keystore")
        .arg(keystore)
        .args(["--hub", &fleet.hub_url, "--deployment"])
        .arg(&fleet.deployment)
        .args(["--chain-rpc", &fleet.devnet.anvil.endpoint(), "--", "true"])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .output()
        .await
        .context("running fog")?;
    let submitted = started.elapsed();
    if !run.status.success() {
        bail!("fog job run: {}", String::from_utf8_lossy(&run.stderr));
    }
    let report: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    let job = report["jobId"].as_str().context("no job id")?.to_owned();
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await?;
        match status["state"].as_str() {
            Some("completed") => return Ok((submitted, started.elapsed())),
            Some("failed" | "cancelled") => bail!("job {job} ended: {status}"),
            _ => {}
        }
        ensure!(
            started.elapsed() < Duration::from_secs(60),
            "job {job} not done in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().context("RUNS must be a whole number")?,
        None => 20,
    };
    ensure!(runs >= 2, "RUNS must be at least 2");
    let mut fleet = Fleet::start("[settlement]\nenabled = false\n").await?;
    let _miner = fleet.start_miner("miner", 2_000, "")?;
    fleet.wait_for_miners(1).await?;
    let mut buyer = fleet.buyer().await?;
    buyer.login().await?;
    let keystore = fleet.dir.path().join("buyer.json");
    let imported = Command::new(fog_tests::binary("fog")?)
        .args(["key", "import", "--keystore"])
        .arg(&keystore)
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .env("FOG_IMPORT_KEY", alloy::hex::encode(buyer.key.to_bytes()))
        .output()?;
    ensure!(
        imported.status.success(),
        "fog key import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );

    let (mut raw, mut cli, mut fog) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..WARM_UP + runs {
        // Alternate the order, so that neither always follows the other.
        let (r, (c, f)) = if n % 2 == 0 {
            let r = raw_docker_run().await?;
            (r, fog_run(&fleet, &buyer, &keystore, n).await?)
        } else {
            let f = fog_run(&fleet, &buyer, &keystore, n).await?;
            (raw_docker_run().await?, f)
        };
        if n >= WARM_UP {
            raw.push(r);
            cli.push(c);
            fog.push(f);
        }
    }
    let (r, c, f) = (stats(&mut raw), stats(&mut cli), stats(&mut fog));
    println!("trivial job (`true`), {runs} interleaved runs each, ms");
    println!(
        "{:<44} {:>8} {:>8} {:>8} {:>8}",
        "", "mean", "median", "p90", "min"
    );
    for (name, s) in [
        ("docker run --rm (CLI)", r),
        ("fog job run returns (quote, escrow, submit)", c),
        ("fog: CLI → hub → miner → Docker → receipt", f),
    ] {
        println!(
            "{name:<44} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            s.mean, s.median, s.p90, s.min
        );
    }
    println!(
        "ratio fog end to end / docker run --rm: median {:.3}, mean {:.3} (target <= 1.5)",
        f.median / r.median,
        f.mean / r.mean
    );
    Ok(())
}
