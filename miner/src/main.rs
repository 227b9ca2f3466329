//! `fog-miner`: the miner agent. Keys, the offer policy and local runs
//! (`exec`) work today; the hub connection lands with the hub.

#![allow(clippy::print_stdout)] // a command-line tool: addresses and reports go to stdout

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use fog_miner::config::MinerConfig;
use fog_miner::host::HostResources;
use fog_miner::keys;

/// The Fog miner: offers this machine's idle resources to a hub, runs
/// assigned containers in a locked-down Docker sandbox, and signs receipts.
#[derive(Debug, Parser)]
#[command(name = "fog-miner", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the miner's key (an encrypted Ethereum keystore file).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Check a configuration file against this host and print the resulting offer.
    Policy {
        /// The miner's TOML configuration (FOG_MINER_* variables override it).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Connect to a hub and run the jobs it assigns, until stopped (SIGTERM or Ctrl-C).
    Run {
        /// The miner's TOML configuration (FOG_MINER_* variables override it).
        #[arg(long, short)]
        config: PathBuf,
        /// The hub's URL; default: hub_url from the configuration.
        #[arg(long)]
        hub: Option<String>,
        /// File holding the keystore password; else FOG_MINER_KEY_PASSWORD.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Settle a job this miner ran, when its hub has not: the escrow pays the miner directly.
    Settle {
        /// The job id.
        job: fog_protocol::B256,
        /// The miner's TOML configuration (work_dir, keystore, [chain]).
        #[arg(long, short)]
        config: PathBuf,
        /// File holding the keystore password; else FOG_MINER_KEY_PASSWORD.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Run one job locally through the sandbox and print its signed receipt (JSON).
    ///
    /// Logs go to stderr as they come; the output files are unpacked into --out.
    Exec(Box<ExecArgs>),
}

#[derive(Debug, clap::Args)]
struct ExecArgs {
    /// The job spec (JSON, as a buyer signs it).
    spec: PathBuf,
    /// An input file; matched to the spec's inputs by its sha256. Repeat for each input.
    #[arg(long = "input", value_name = "FILE")]
    inputs: Vec<PathBuf>,
    /// Directory to unpack the job's output into (absent or empty).
    #[arg(long)]
    out: PathBuf,
    /// The miner's keystore; or `keystore` from --config.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// File holding the keystore password; else FOG_MINER_KEY_PASSWORD.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Miner configuration: admission (capacity, windows, floor) then applies as for a hub's job.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Where job file systems are made; default: the config's work_dir, else /var/lib/fog-miner/jobs.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Job id for the receipt; default: the spec hash.
    #[arg(long)]
    job_id: Option<fog_protocol::B256>,
    /// Hub named in the receipt; default: the zero address.
    #[arg(long)]
    hub: Option<fog_protocol::Address>,
    /// Most the job may charge, in base units; default: maxPayment / replicas.
    #[arg(long)]
    max_charge: Option<fog_protocol::U256>,
    /// Chain id of the EIP-712 domain the receipt is signed under.
    #[arg(long, default_value_t = 31_337)]
    chain_id: u64,
    /// JobEscrow address of that domain; default: the zero address.
    #[arg(long, default_value_t = fog_protocol::Address::ZERO)]
    escrow: fog_protocol::Address,
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Create a new key. The password comes from --password-file or FOG_MINER_KEY_PASSWORD.
    New {
        #[arg(long)]
        keystore: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Print the key's address (no password needed).
    Address {
        #[arg(long)]
        keystore: PathBuf,
    },
}

fn password(file: Option<&Path>) -> anyhow::Result<String> {
    Ok(fog_protocol::keys::read_password(
        file,
        fog_miner::config::PASSWORD_VAR,
    )?)
}

/// Ordinary errors are one paragraph, whatever RUST_BACKTRACE says.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // The agent is a service and says what it does; one-off commands keep
    // stderr for the job's own logs and for warnings.
    let default_level = if matches!(cli.command, Command::Run { .. }) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FOG_LOG")
                .unwrap_or_else(|_| default_level.into()),
        )
        .init();
    match cli.command {
        Command::Run {
            config,
            hub,
            password_file,
        } => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(run_agent(&config, hub, password_file.as_deref()))?;
        }
        Command::Settle {
            job,
            config,
            password_file,
        } => {
            let cfg =
                MinerConfig::load(&config).with_context(|| format!("{}", config.display()))?;
            let chain = cfg
                .chain
                .clone()
                .context("the configuration needs a [chain] section (deployment, rpc_url)")?;
            let deployment = fog_protocol::deploy::Deployment::load(&chain.deployment)?;
            let kept = fog_miner::settle::load(&cfg.work_dir, job)?;
            let key = keys::open(&cfg.keystore, &password(password_file.as_deref())?)?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let tx = runtime.block_on(fog_miner::settle::settle(
                &kept,
                &deployment,
                &chain.rpc_url,
                key,
            ))?;
            println!(
                "settled job {job} in {tx}: the escrow paid this miner {} base units",
                kept.receipt.payload.amountCharged
            );
        }
        Command::Exec(args) => {
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(exec(*args))?;
        }
        Command::Key {
            action:
                KeyAction::New {
                    keystore,
                    password_file,
                },
        } => {
            let address = keys::create(&keystore, &password(password_file.as_deref())?)?;
            println!("{address}");
        }
        Command::Key {
            action: KeyAction::Address { keystore },
        } => {
            println!("{}", keys::address(&keystore)?);
        }
        Command::Policy { config } => {
            let cfg = MinerConfig::load(&config)?;
            let host = HostResources::detect(&cfg.work_dir)?;
            let policy = cfg
                .policy(&host)
                .with_context(|| format!("{}", config.display()))?;
            let windows: Vec<String> = policy
                .availability
                .windows()
                .iter()
                .map(ToString::to_string)
                .collect();
            let report = serde_json::json!({
                "capacity": policy.capacity,
                "rate": { "perCoreHour": policy.rate.per_core_hour.to_string(), "perGibHour": policy.rate.per_gib_hour.to_string() },
                "region": policy.region,
                "labels": policy.labels,
                "allowNetwork": policy.allow_network,
                "availability": if windows.is_empty() { serde_json::json!("always") } else { serde_json::json!(windows) },
                "maxLoadPerCore": policy.max_load_per_core,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}

/// `fog-miner exec`: see [`ExecArgs`].
async fn exec(args: ExecArgs) -> anyhow::Result<()> {
    use std::io::Write as _;

    use fog_miner::admission::Conditions;
    use fog_miner::executor::{Executor, ExecutorConfig};
    use fog_miner::local;
    use fog_miner::runner::Runner;

    let config = args.config.as_deref().map(MinerConfig::load).transpose()?;
    let spec = local::read_spec(&args.spec)?;
    let inputs = local::match_inputs(&spec, &args.inputs)?;
    if args.out.exists()
        && std::fs::read_dir(&args.out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        anyhow::bail!(
            "--out {}: exists and is not an empty directory",
            args.out.display()
        );
    }
    let keystore = args
        .keystore
        .clone()
        .or_else(|| config.as_ref().map(|c| c.keystore.clone()))
        .context("no key: pass --keystore (or --config with a keystore)")?;
    let key = keys::open(&keystore, &password(args.password_file.as_deref())?)?;
    let work_dir = args
        .work_dir
        .clone()
        .or_else(|| config.as_ref().map(|c| c.work_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("/var/lib/fog-miner/jobs"));
    let host = HostResources::detect(&work_dir)?;
    let policy = match &config {
        Some(cfg) => cfg.policy(&host)?,
        None => fog_miner::config::Policy::whole_host(&host),
    };
    let mut exec_config = ExecutorConfig::new(work_dir);
    exec_config.allow_network = policy.allow_network;
    exec_config.runtime = config.as_ref().and_then(|c| c.sandbox.runtime.clone());
    let executor = Executor::connect(exec_config)
        .await
        .context("connecting to the Docker engine")?;
    let runner = Runner::new(
        executor,
        policy,
        key,
        fog_protocol::fog_domain(args.chain_id, args.escrow),
    );
    let assignment = local::local_assignment(
        &spec,
        runner.address(),
        args.job_id,
        args.hub,
        args.max_charge,
    );
    let at = Conditions {
        now: chrono::Utc::now(),
        chain_now: fog_protocol::clock::unix_now(),
        load_per_core: fog_miner::host::load_per_core().unwrap_or(0.0),
    };
    let admitted = runner.admit(assignment, spec, at)?;

    let (log_tx, mut log_rx) = tokio::sync::mpsc::channel(64);
    let printer = tokio::spawn(async move {
        let mut stderr = std::io::stderr();
        while let Some(chunk) = log_rx.recv().await {
            let chunk: fog_miner::executor::LogChunk = chunk;
            // Best effort: a closed stderr must not fail the job.
            let _ = stderr.write_all(&chunk.data);
        }
    });
    let options = fog_miner::executor::RunOptions {
        logs: Some(log_tx),
        ..Default::default()
    };
    let finished = runner.run(admitted, &inputs, options).await?;
    let _ = printer.await;

    let outcome = &finished.outcome;
    let archive = std::fs::File::open(&outcome.output_archive)
        .with_context(|| format!("opening {}", outcome.output_archive.display()))?;
    let unpacked =
        fog_protocol::output::unpack_archive(std::io::BufReader::new(archive), &args.out);
    std::fs::remove_file(&outcome.output_archive)
        .with_context(|| format!("removing {}", outcome.output_archive.display()))?;
    unpacked.with_context(|| format!("unpacking the output into {}", args.out.display()))?;

    let report = serde_json::json!({
        "receipt": finished.receipt,
        "outcome": {
            "exitCode": outcome.exit_code,
            "timedOut": outcome.timed_out,
            "oomKilled": outcome.oom_killed,
            "diskFull": outcome.disk_full,
            "logsTruncated": outcome.logs_truncated,
            "wallTimeMs": u64::try_from(outcome.wall_time.as_millis()).unwrap_or(u64::MAX),
            "cpuTimeMs": outcome.cpu_time_ms,
            "peakMemoryBytes": outcome.peak_memory_bytes,
            "outputBytes": outcome.output.size,
            "outputOverLimit": outcome.output_over_limit,
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    // The run happened (its receipt is above), but the job failed.
    if let Some(failure) = &outcome.output_over_limit {
        anyhow::bail!("the job failed: {failure}");
    }
    Ok(())
}

/// `fog-miner run`: the agent, connected to a hub.
async fn run_agent(
    config_path: &Path,
    hub: Option<String>,
    password_file: Option<&Path>,
) -> anyhow::Result<()> {
    use fog_miner::agent::{self, AgentConfig};
    use fog_miner::executor::{Executor, ExecutorConfig};
    use fog_miner::runner::Runner;

    let cfg =
        MinerConfig::load(config_path).with_context(|| format!("{}", config_path.display()))?;
    let hub_url = hub
        .or_else(|| cfg.hub_url.clone())
        .context("no hub: pass --hub URL or set hub_url in the configuration")?;
    let chain = cfg
        .chain
        .clone()
        .context("the configuration needs a [chain] section (deployment, rpc_url) to check assignments and sign receipts")?;
    let deployment = fog_protocol::deploy::Deployment::load(&chain.deployment)?;
    let host = HostResources::detect(&cfg.work_dir)?;
    let policy = cfg
        .policy(&host)
        .with_context(|| format!("{}", config_path.display()))?;
    let key = keys::open(&cfg.keystore, &password(password_file)?)?;
    let mut exec_config = ExecutorConfig::new(cfg.work_dir.join("jobs"));
    exec_config.allow_network = policy.allow_network;
    exec_config.runtime = cfg.sandbox.runtime.clone();
    // Deadlines are the escrow's: judged by the chain's clock, read every few seconds.
    let chain_clock = std::sync::Arc::new(fog_protocol::clock::ChainClock::new());
    exec_config.clock = chain_clock.clone();
    tokio::spawn(fog_miner::chain_time::follow(
        chain.rpc_url.clone(),
        chain_clock,
    ));
    let executor = Executor::connect(exec_config)
        .await
        .context("connecting to the Docker engine")?;
    executor
        .clean_leftovers()
        .await
        .context("removing jobs an earlier run left behind")?;
    let settle_key = key.clone();
    let runner = std::sync::Arc::new(Runner::new(executor, policy, key, deployment.domain()));
    let runtime = runner.executor().runtime();
    tracing::info!(
        miner = %runner.address(),
        hub = %hub_url,
        runtime = %runtime.name,
        runtime_version = %runtime.version,
        isolation = %runtime.isolation,
        "fog-miner starting"
    );
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
        // The first signal drains (services are handed over); a second one
        // stops at once (containers left behind are removed at the next start).
        stop.cancel();
        let _ = tokio::signal::ctrl_c().await;
        tracing::warn!("second interrupt: stopping without waiting for the hand-over");
        std::process::exit(130);
    });
    if chain.self_settle_after_secs > 0 {
        tokio::spawn(fog_miner::settle::watch(
            cfg.work_dir.clone(),
            deployment.clone(),
            chain.rpc_url.clone(),
            settle_key,
            std::time::Duration::from_secs(chain.self_settle_after_secs),
            Some(hub_url.clone()),
            shutdown.clone(),
        ));
    }
    agent::run(
        runner,
        AgentConfig {
            hub_url,
            expected_hub: chain.hub,
            rpc_url: chain.rpc_url,
            registry: deployment.registry,
            work_dir: cfg.work_dir.clone(),
            drain_timeout: std::time::Duration::from_secs(cfg.drain_timeout_secs),
        },
        shutdown,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand and argument.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
