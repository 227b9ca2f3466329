//! Hub benchmarks (figures in docs/hub.md):
//!
//! - `scheduler`: replica placements per second with 10,000 simulated
//!   miners, in process;
//! - `submit`: job submissions per second over HTTP to a real `fog-hub`
//!   (SQLite, escrows really open on anvil), against `/healthz` through the
//!   same client as a baseline;
//! - `miners`: 10,000 simulated miners logged in over WebSocket and
//!   heart-beating; the hub's CPU share and resident memory.
//!
//! `make bench-hub` builds the release binaries and runs all three;
//! `cargo run --release -p fog-tests --bin hub-bench -- MODE [N]`.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::providers::ProviderBuilder;
use anyhow::{Context, bail, ensure};
use fog_hub::scheduler::{Request, Scheduler};
use fog_protocol::contracts::fog_token::FogToken;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::wire::{Offer, PriceRate};
use fog_protocol::{Address, B256, Resources, SignedJobSpec, U256};
use fog_tests::fleet::Fleet;
use futures_util::{StreamExt, stream};
use rand::Rng;

fn offer(rng: &mut impl Rng) -> Offer {
    Offer {
        capacity: Resources {
            cpuMillicores: rng.gen_range(2..=32) * 1_000,
            memoryBytes: rng.gen_range(4..=128u64) << 30,
            diskBytes: rng.gen_range(50..=1_000u64) << 30,
            gpuCount: if rng.gen_bool(0.05) {
                rng.gen_range(1..=4)
            } else {
                0
            },
        },
        rate: PriceRate {
            per_core_hour: U256::from(rng.gen_range(1..=100u64))
                * U256::from(10u64).pow(U256::from(15u64)),
            per_gib_hour: U256::from(rng.gen_range(0..=10u64))
                * U256::from(10u64).pow(U256::from(14u64)),
        },
        region: ["eu", "us", "asia", "sa", "af"][rng.gen_range(0..5)].into(),
        labels: vec![format!(
            "arch={}",
            if rng.gen_bool(0.8) { "amd64" } else { "arm64" }
        )],
        allows_network: rng.gen_bool(0.3),
        available_until: None,
        runtime: None,
    }
}

/// Placements per second with 10,000 miners; replicas stay placed for a
/// while (a ring of 20,000 live ones) so that capacity really fills and frees.
fn bench_scheduler(placements: usize) {
    let mut rng = rand::thread_rng();
    let mut scheduler = Scheduler::new();
    let miners: Vec<Address> = (0..10_000u64)
        .map(|i| Address::left_padding_from(&i.to_be_bytes()))
        .collect();
    for m in &miners {
        scheduler.upsert(*m, offer(&mut rng), rng.gen_range(0.3..1.0), &[]);
    }
    let mut spec = fog_tests::fleet::bench_spec();
    let specs: Vec<_> = (0..4)
        .map(|i| {
            spec.resources.cpuMillicores = 500 * (i + 1);
            spec.resources.memoryBytes = (256 << 20) * (i + 1);
            spec.placement.region = if i == 3 { "eu".into() } else { String::new() };
            spec.clone()
        })
        .collect();
    let max_charge = U256::from(10u64).pow(U256::from(18u64));
    let exclude = Default::default();
    let mut live: VecDeque<(Address, usize)> = VecDeque::new();
    let (mut placed, mut missed) = (0usize, 0usize);
    let started = Instant::now();
    for n in 0..placements {
        let which = n % specs.len();
        let request = Request {
            spec: &specs[which],
            max_charge,
            now: 0,
        };
        match scheduler.place(&request, &exclude) {
            Some(m) => {
                placed += 1;
                live.push_back((m, which));
            }
            None => missed += 1,
        }
        if live.len() > 20_000
            && let Some((m, which)) = live.pop_front()
        {
            scheduler.release(&m, &specs[which].resources);
        }
    }
    let took = started.elapsed();
    println!(
        "scheduler: {placements} placement requests over 10,000 miners in {:.3} s: {:.0} placements/s ({placed} placed, {missed} unplaceable; target >= 50,000/s)",
        took.as_secs_f64(),
        placements as f64 / took.as_secs_f64()
    );
}

async fn rate<F, Fut>(n: usize, concurrency: usize, f: F) -> anyhow::Result<f64>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(0..n)
        .map(&f)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    for r in results {
        r?;
    }
    Ok(n as f64 / took.as_secs_f64())
}

/// Job submissions per second over HTTP, each with its escrow open on chain.
async fn bench_submit(jobs: usize) -> anyhow::Result<()> {
    let mut fleet = Fleet::start(&format!("log_format = \"json\"\n{ONE_SOURCE_LIMITS}")).await?;
    let buyer = fleet.buyer().await?;
    let domain = fleet.devnet.deployment.domain();
    let mut spec = fog_tests::fleet::bench_spec();
    spec.maxPayment = U256::from(10u64).pow(U256::from(15u64));
    spec.deadline = fog_tests::fleet::unix_now() + 3_000;
    let signed = SignedJobSpec::sign(spec.clone(), &buyer.key, &domain)?;

    // Open every escrow first (pipelined transactions), then time the submissions.
    let provider = ProviderBuilder::new()
        .with_cached_nonce_management()
        .wallet(EthereumWallet::from(buyer.key.clone()))
        .connect_http(fleet.devnet.anvil.endpoint_url());
    let token = FogToken::new(fleet.devnet.deployment.token, &provider);
    token
        .approve(
            fleet.devnet.deployment.escrow,
            spec.maxPayment * U256::from(jobs),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    let escrow = JobEscrow::new(fleet.devnet.deployment.escrow, &provider);
    let opening = Instant::now();
    let mut job_ids = Vec::with_capacity(jobs);
    let mut last = None;
    for i in 0..jobs {
        let salt = B256::left_padding_from(&(i as u64).to_be_bytes());
        let pending = escrow
            .open(
                salt,
                fleet.hub,
                spec.spec_hash(),
                spec.deadline,
                1,
                spec.maxPayment,
                spec.maxDurationSecs,
            )
            .send()
            .await?;
        last = Some(pending);
        job_ids.push(escrow.jobIdFor(buyer.address(), salt).call().await?);
    }
    if let Some(p) = last {
        ensure!(p.get_receipt().await?.status(), "the last open reverted");
    }
    println!(
        "submit: opened {jobs} escrows on anvil in {:.1} s",
        opening.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::new();
    let url = fleet.hub_url.clone();
    let bodies: Vec<String> = job_ids
        .iter()
        .map(|id| {
            serde_json::json!({ "jobId": id, "spec": signed.payload, "signature": signed.signature.to_string() }).to_string()
        })
        .collect();
    let concurrency = 32;
    let health = rate(jobs, concurrency, |_| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http.get(format!("{url}/healthz")).send().await?;
            ensure!(r.status().is_success(), "healthz {}", r.status());
            Ok(())
        }
    })
    .await?;
    let submits = rate(jobs, concurrency, |i| {
        let (http, url, body) = (http.clone(), url.clone(), bodies[i].clone());
        async move {
            let r = http
                .post(format!("{url}/v1/jobs"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await?;
            let status = r.status();
            if status != 201 {
                bail!("submission answered {status}: {}", r.text().await?);
            }
            Ok(())
        }
    })
    .await?;
    println!(
        "submit: {jobs} signed submissions, {concurrency} concurrent: {submits:.0}/s (target >= 2,000/s); /healthz through the same client: {health:.0}/s; ratio {:.3}",
        submits / health
    );
    Ok(())
}

fn proc_cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("odd /proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn proc_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .context("no VmRSS")?
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse::<u64>()?;
    Ok(kb * 1024)
}

/// One simulated miner: logs in, then heart-beats until the process ends.
async fn simulated_miner(ws_url: String) -> anyhow::Result<()> {
    use fog_protocol::wire::{Envelope, MinerMessage};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let key = fog_protocol::PrivateKeySigner::random();
    let offer = offer(&mut rand::thread_rng());
    let free = offer.capacity.clone();
    let (mut ws, _, period) = fog_tests::handminer::connect(&ws_url, &key, offer).await?;
    let frame =
        |m: MinerMessage| Message::Text(Envelope::new(m).encode().unwrap_or_default().into());
    // Spread the fleet's heartbeats over the period.
    let phase = period.mul_f64(rand::thread_rng().gen_range(0.0..1.0));
    tokio::time::sleep(phase).await;
    let mut tick = tokio::time::interval(period);
    let mut seq = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                seq += 1;
                ws.send(frame(MinerMessage::Heartbeat { seq, free: free.clone(), running: vec![], services: vec![] })).await?;
            }
            msg = ws.next() => match msg {
                None => bail!("the hub closed the session"),
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The load comes from one address and one key here; in service it comes
/// from many, each under the per-address and per-key limits.
const ONE_SOURCE_LIMITS: &str = "[limits]\nper_address_per_sec = 1000000\nper_address_burst = 1000000\nper_key_per_sec = 1000000\nper_key_burst = 1000000\n";

async fn bench_miners(count: usize) -> anyhow::Result<()> {
    let mut fleet = Fleet::start(&format!(
        "log_format = \"json\"\n{ONE_SOURCE_LIMITS}max_unauthenticated_miners = 20000\n[miners]\nheartbeat_interval_ms = 5000\ntimeout_ms = 20000\n"
    ))
    .await?;
    let pid = fleet.hub_proc.pid().context("the hub is not running")?;
    let ws_url = format!("{}/v1/miner/ws", fleet.hub_url.replace("http://", "ws://"));
    let rss_idle = proc_rss_bytes(pid)?;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for i in 0..count {
        tasks.push(tokio::spawn(simulated_miner(ws_url.clone())));
        if i % 100 == 99 {
            // Do not open 10,000 connections in one burst: the accept queue is finite.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let http = reqwest::Client::new();
    let connected = loop {
        let metrics = http
            .get(format!("{}/metrics", fleet.hub_url))
            .send()
            .await?
            .text()
            .await?;
        let n = metrics
            .lines()
            .find_map(|l| l.strip_prefix("fog_hub_miners_connected "))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if n >= count || started.elapsed() > Duration::from_secs(180) {
            break n;
        }
        if let Some(failed) = tasks.iter().position(|t| t.is_finished()) {
            let t = tasks.swap_remove(failed);
            bail!("a simulated miner stopped: {:?}", t.await);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "miners: {connected} of {count} logged in after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    let window = Duration::from_secs(30);
    let ticks_per_sec = 100.0; // CLK_TCK on Linux
    let before = proc_cpu_ticks(pid)?;
    tokio::time::sleep(window).await;
    let after = proc_cpu_ticks(pid)?;
    let cpu_share = (after - before) as f64 / ticks_per_sec / window.as_secs_f64();
    let rss = proc_rss_bytes(pid)?;
    let still = tasks.iter().filter(|t| !t.is_finished()).count();
    println!(
        "miners: {still} heart-beating every 5 s for {} s: hub CPU {:.1}% of one core (target <= 25%), resident {:.0} MB (idle {:.0} MB; target <= 300 MB)",
        window.as_secs(),
        cpu_share * 100.0,
        rss as f64 / 1e6,
        rss_idle as f64 / 1e6
    );
    for t in tasks {
        t.abort();
    }
    fleet.hub_proc.kill();
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    let n: Option<usize> = std::env::args()
        .nth(2)
        .map(|a| a.parse())
        .transpose()
        .context("N must be a whole number")?;
    match mode.as_str() {
        "scheduler" => bench_scheduler(n.unwrap_or(500_000)),
        "submit" => bench_submit(n.unwrap_or(5_000)).await?,
        "miners" => bench_miners(n.unwrap_or(10_000)).await?,
        "all" => {
            bench_scheduler(500_000);
            bench_submit(5_000).await?;
            bench_miners(10_000).await?;
        }
        other => bail!("unknown mode {other:?}: scheduler, submit, miners or all"),
    }
    Ok(())
}
