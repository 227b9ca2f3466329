//! Executor overhead against a raw `docker run --rm` of the same trivial
//! image, measured in the same process, interleaved so that all see the
//! same machine noise. A second baseline, the bare engine API (create,
//! start, wait, remove; no sandbox), shows what the sandbox itself costs.
//! Prints per-side statistics and the ratios.
//!
//! `cargo run --release -p fog-tests --bin exec-bench -- [RUNS]` (default 40),
//! after `make setup` (the test image and a running engine).

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fog_miner::executor::{Executor, ExecutorConfig};
use fog_protocol::clock::unix_now;
use fog_protocol::{B256, JobSpec};

use fog_tests::bench::{IMAGE, raw_docker_run, stats};
const WARM_UP: usize = 3;

/// The same container through the engine API with none of the sandbox:
/// create, start, wait, remove. The difference to the executor is what the
/// sandbox, metering, logs and output archive cost.
async fn bare_api_run(docker: &bollard::Docker, n: usize) -> anyhow::Result<Duration> {
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
    use futures_util::StreamExt;
    let name = format!("fog-bench-bare-{}-{n}", std::process::id());
    let started = Instant::now();
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["true".into()]),
        network_disabled: Some(true),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await?;
    docker.start_container(&name, None).await?;
    let exit = docker.wait_container(&name, None).next().await;
    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await?;
    let took = started.elapsed();
    match exit {
        Some(Ok(r)) if r.status_code == 0 => Ok(took),
        other => bail!("bare container failed: {other:?}"),
    }
}

async fn executor_run(executor: &Executor, spec: &JobSpec, n: usize) -> anyhow::Result<Duration> {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(n as u64).to_be_bytes());
    id[8..16].copy_from_slice(&unix_now().to_be_bytes());
    let started = Instant::now();
    let outcome = executor
        .run(B256::from(id), spec, &HashMap::new(), Default::default())
        .await?;
    let took = started.elapsed();
    std::fs::remove_file(&outcome.output_archive)?;
    if outcome.exit_code != 0 {
        bail!("the job exited with {}", outcome.exit_code);
    }
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse().context("RUNS must be a whole number")?,
        None => 40,
    };
    if runs < 2 {
        bail!("RUNS must be at least 2");
    }
    let work = tempfile::Builder::new()
        .prefix("fog-exec-bench")
        .tempdir()?;
    let executor = Executor::connect(ExecutorConfig::new(work.path().to_owned())).await?;
    // The same executor with jobs under gVisor (`make setup` registers runsc).
    let mut gvisor_config = ExecutorConfig::new(work.path().join("gvisor"));
    gvisor_config.runtime = Some("runsc".into());
    let gvisor = Executor::connect(gvisor_config)
        .await
        .context("gVisor: the engine has no runsc runtime; run `make setup`")?;
    // The same small job as the other benchmarks, in the busybox test image.
    let mut spec = fog_tests::fleet::bench_spec();
    spec.image = fog_tests::fleet::test_image_id()?;
    spec.resources.memoryBytes = 64 << 20;
    spec.resources.diskBytes = 16 << 20;

    let docker = executor.docker().clone();
    let (mut raw, mut bare, mut fog, mut gv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..WARM_UP + runs {
        // Rotate the order, so that none always follows another.
        let mut r = Duration::ZERO;
        let mut b = Duration::ZERO;
        let mut f = Duration::ZERO;
        let mut g = Duration::ZERO;
        for step in 0..4 {
            match (n + step) % 4 {
                0 => r = raw_docker_run().await?,
                1 => b = bare_api_run(&docker, n).await?,
                2 => f = executor_run(&executor, &spec, n).await?,
                _ => g = executor_run(&gvisor, &spec, n).await?,
            }
        }
        if n >= WARM_UP {
            raw.push(r);
            bare.push(b);
            fog.push(f);
            gv.push(g);
        }
    }
    let (r, b, f, g) = (
        stats(&mut raw),
        stats(&mut bare),
        stats(&mut fog),
        stats(&mut gv),
    );
    println!("trivial job (`true`), {runs} interleaved runs each, ms");
    println!(
        "{:<26} {:>8} {:>8} {:>8} {:>8}",
        "", "mean", "median", "p90", "min"
    );
    println!(
        "{:<26} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        "docker run --rm (CLI)", r.mean, r.median, r.p90, r.min
    );
    println!(
        "{:<26} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        "engine API, no sandbox", b.mean, b.median, b.p90, b.min
    );
    println!(
        "{:<26} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        "fog executor (sandboxed)", f.mean, f.median, f.p90, f.min
    );
    println!(
        "{:<26} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        "fog executor, gVisor", g.mean, g.median, g.p90, g.min
    );
    println!(
        "ratio executor / docker run --rm: median {:.3}, mean {:.3} (target <= 1.10)",
        f.median / r.median,
        f.mean / r.mean
    );
    println!(
        "ratio executor / bare engine API: median {:.3}, mean {:.3} (the sandbox's own cost)",
        f.median / b.median,
        f.mean / b.mean
    );
    println!(
        "ratio gVisor / runc executor: median {:.3}, mean {:.3} (the price of the stronger isolation)",
        g.median / f.median,
        g.mean / f.mean
    );
    Ok(())
}
