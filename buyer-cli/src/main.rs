//! `fog`: the command-line client. Buyers run jobs (`fog job`) with a
//! keystore identity (`fog key`); hub operators register and run hubs
//! (`fog hub`) and deploy the contracts (`fog deploy`); token holders move
//! tokens (`fog token`) and take part in the DAO (`fog dao`); on a local
//! devnet `fog devnet` hands out tokens and moves the clock.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fog_protocol::deploy::{DeployParams, deploy};

/// Fog: run container jobs on rented machines and pay through an on-chain
/// escrow; operate a hub; take part in the DAO.
#[derive(Debug, Parser)]
#[command(name = "fog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the buyer's key and the hub are: flags, else environment, else
/// the configuration file.
#[derive(Debug, clap::Args)]
struct Identity {
    /// Configuration file (TOML: keystore, password_file, hub, deployment,
    /// chain_rpc); default $XDG_CONFIG_HOME/fog/config.toml or
    /// ~/.config/fog/config.toml when it exists.
    #[arg(long, env = "FOG_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// The buyer's keystore (`fog key new`).
    #[arg(long, env = "FOG_KEYSTORE", global = true)]
    keystore: Option<PathBuf>,
    /// File holding the keystore password; else FOG_KEY_PASSWORD.
    #[arg(long, global = true)]
    password_file: Option<PathBuf>,
    /// The hub's URL.
    #[arg(long, env = "FOG_HUB_URL", global = true)]
    hub: Option<String>,
    /// The contracts' deployment file.
    #[arg(long, env = "FOG_DEPLOYMENT", global = true)]
    deployment: Option<PathBuf>,
    /// JSON-RPC endpoint of the chain.
    #[arg(long = "chain-rpc", env = "FOG_RPC_URL", global = true)]
    chain_rpc: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

/// The configuration file: what flags and environment variables leave unset.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    keystore: Option<PathBuf>,
    password_file: Option<PathBuf>,
    hub: Option<String>,
    deployment: Option<PathBuf>,
    chain_rpc: Option<String>,
}

impl Identity {
    /// Fills what flags and environment left unset from the configuration file.
    fn with_file_defaults(mut self) -> anyhow::Result<Self> {
        let path = match &self.config {
            Some(path) => path.clone(),
            None => match default_config_path() {
                Some(path) if path.is_file() => path,
                _ => return Ok(self),
            },
        };
        let file: FileConfig = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .with_context(|| format!("configuration file {}", path.display()))?;
        // Relative paths in the file are relative to the file.
        let base = path.parent().unwrap_or(std::path::Path::new("."));
        let resolve = |p: PathBuf| if p.is_relative() { base.join(p) } else { p };
        self.keystore = self.keystore.or(file.keystore.map(resolve));
        self.password_file = self.password_file.or(file.password_file.map(resolve));
        self.deployment = self.deployment.or(file.deployment.map(resolve));
        self.hub = self.hub.or(file.hub);
        self.chain_rpc = self.chain_rpc.or(file.chain_rpc);
        Ok(self)
    }
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("fog/config.toml"))
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Create a new key (password from --password-file or FOG_KEY_PASSWORD).
    New,
    /// Encrypt an existing private key, read from FOG_IMPORT_KEY or standard input (never an argument).
    Import,
    /// Print the key's address (no password needed).
    Address,
}

#[derive(Debug, Subcommand)]
enum JobAction {
    /// Run a container job: quote, escrow, inputs, logs, verified output, payments.
    Run(Box<RunArgs>),
    /// A job's state, assignments and settlement.
    Status { job: fog_protocol::B256 },
    /// My jobs, newest first: those this machine opened (from its journal,
    /// also when the hub is down), with each escrow's status on chain and the
    /// hub's state when it answers.
    #[command(visible_alias = "ls")]
    List {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// A job's logs; -f follows until the job ends.
    Logs {
        job: fog_protocol::B256,
        #[arg(short, long)]
        follow: bool,
    },
    /// Cancel a queued or running job.
    Cancel { job: fog_protocol::B256 },
    /// Download a settled job's output, check it against the receipts on chain, unpack it.
    Get {
        job: fog_protocol::B256,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check an output archive (the hub's, or --archive FILE) against the receipts on chain;
    /// with --archive it needs only the chain (no key, no hub).
    Verify {
        job: fog_protocol::B256,
        #[arg(long)]
        archive: Option<PathBuf>,
    },
    /// Take the locked tokens back from an escrow whose deadline passed
    /// unsettled (needs only the chain, not the hub); --all refunds every such
    /// job this machine opened.
    Refund {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        job: Option<fog_protocol::B256>,
        #[arg(long)]
        all: bool,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Image: [REGISTRY/]NAME[:TAG] (resolved to its digest through the
    /// registry, which is pinned in the spec), NAME[:TAG]@sha256:DIGEST, or the
    /// id sha256:ID of an image already on the miners.
    #[arg(long)]
    image: String,
    /// CPU cores (fractions allowed: 0.5).
    #[arg(long, default_value = "1")]
    cpus: f64,
    /// Memory, e.g. 256M or 2G.
    #[arg(long, default_value = "256M")]
    memory: String,
    /// Disk for outputs and scratch, e.g. 1G.
    #[arg(long, default_value = "256M")]
    disk: String,
    /// An input file, placed read-only at /fog/in/<name>. Repeat for more.
    #[arg(long = "input", value_name = "PATH")]
    inputs: Vec<PathBuf>,
    /// Directory to unpack the verified output into (absent or empty);
    /// default ./fog-out/<job id>.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Most the job may cost, in whole tokens (miners plus the hub's commission).
    #[arg(long)]
    max_price: String,
    /// Distinct miners that must run it and agree.
    #[arg(long, default_value_t = 1)]
    replicas: u16,
    /// Wall-clock limit of one run, in seconds.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Seconds until an unsettled escrow can be refunded; at least the run
    /// (--duration), the 30-minute settlement window and 10 minutes more.
    #[arg(long, default_value_t = 3_600)]
    deadline: u64,
    /// Required miner region.
    #[arg(long, default_value = "")]
    region: String,
    /// A label the miner must carry (`key=value`); repeat for several.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Run only on miners with this isolation: `gvisor` (a user-space kernel),
    /// `userns` (remapped users) or `container` (plain runc). Adds the label
    /// `fog.isolation=<class>`.
    #[arg(long)]
    isolation: Option<fog_protocol::wire::Isolation>,
    /// Follow the job to its verified, settled end (otherwise stop once it is submitted).
    #[arg(long)]
    wait: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum HubAction {
    /// Register a hub operated by your key: locks the deposit in a new HubWallet.
    Register {
        /// Deposit in whole tokens (at least the registry's minimum).
        #[arg(long)]
        deposit: String,
        /// Commission in basis points (500 = 5%).
        #[arg(long)]
        fee: u16,
        /// The hub's public URL.
        #[arg(long)]
        endpoint: String,
        /// The address that signs the hub's assignments (the hub service's key).
        #[arg(long)]
        signer: fog_protocol::Address,
    },
    /// A hub's state, terms, deposit and earnings.
    Status {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
    },
    /// Withdraw the hub's earnings (all unless --amount).
    Withdraw {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
        /// Whole tokens.
        #[arg(long)]
        amount: Option<String>,
        /// Recipient; default: you.
        #[arg(long)]
        to: Option<fog_protocol::Address>,
    },
    /// Announce the hub's exit; with --complete, take the deposit back after unbonding.
    Exit {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
        #[arg(long)]
        complete: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// A balance (yours unless an address is given).
    Balance { who: Option<fog_protocol::Address> },
    /// Send whole tokens.
    Transfer {
        to: fog_protocol::Address,
        amount: String,
    },
}

#[derive(Debug, Subcommand)]
enum DaoAction {
    /// Give your votes to an address (yourself unless --to): votes follow delegation.
    Delegate {
        #[arg(long)]
        to: Option<fog_protocol::Address>,
    },
    /// Propose to blacklist a hub, with a settled job of that hub as the evidence.
    ProposeBlacklist {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
        /// The job whose receipts on chain are the evidence.
        #[arg(long)]
        evidence: fog_protocol::B256,
        /// What you saw, added to the proposal's text (e.g. the sha256 of the output the hub served).
        #[arg(long)]
        note: Option<String>,
    },
    /// Vote on a proposal.
    Vote {
        proposal: fog_protocol::U256,
        #[arg(long, value_enum)]
        support: fog_cli::dao::Support,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Queue a passed proposal in the timelock.
    Queue { proposal: fog_protocol::U256 },
    /// Execute a queued proposal once its timelock delay has passed.
    Execute { proposal: fog_protocol::U256 },
    /// Proposals with their state and votes (all, or one), and your voting power.
    Status {
        proposal: Option<fog_protocol::U256>,
    },
    /// The treasury: expropriated deposits and when each is released.
    Treasury,
}

#[derive(Debug, Subcommand)]
enum DevnetAction {
    /// Tokens and gas money from anvil's first account (local devnet only).
    Faucet {
        /// Recipient; default: you.
        #[arg(long)]
        to: Option<fog_protocol::Address>,
        /// Whole tokens.
        #[arg(long, default_value = "100")]
        amount: String,
    },
    /// Move the devnet's clock forward and mine a block (votes, timelocks, deadlines).
    Advance {
        /// Seconds to move forward.
        seconds: u64,
    },
    /// Start a persistent local market in the background: chain, contracts, a
    /// hub, two miners, an image registry and a funded buyer key; plain `fog`
    /// commands then use it. A second `up` says it is already up.
    Up {
        /// The devnet's directory; default ~/.local/state/fog/devnet.
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// Where the devnet's chain, hub and registry are, its buyer, and what runs.
    Status {
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// A service's log: chain, registry, hub, miner-1 or miner-2.
    Logs {
        #[arg(default_value = "hub", value_parser = ["chain", "registry", "hub", "miner-1", "miner-2"])]
        service: String,
        /// Keep printing what the service writes.
        #[arg(long, short)]
        follow: bool,
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// Stop the devnet; the chain keeps its state for the next `up`.
    Down {
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Operate a hub: register, status, withdraw earnings, exit.
    Hub {
        #[command(subcommand)]
        action: HubAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Token balances and transfers.
    Token {
        #[command(subcommand)]
        action: TokenAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Take part in the DAO: delegate, propose a hub's blacklisting, vote, queue, execute.
    Dao {
        #[command(subcommand)]
        action: DaoAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Local devnet helpers.
    Devnet {
        #[command(subcommand)]
        action: DevnetAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Manage your key (an encrypted Ethereum keystore file).
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Run and follow jobs.
    Job {
        #[command(subcommand)]
        action: JobAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Deploy and wire every Fog contract on a chain, and write the deployment file.
    ///
    /// The deployer's private key is read from the environment variable
    /// FOG_DEPLOYER_KEY (hex), never from the command line.
    Deploy {
        /// JSON-RPC endpoint of the chain.
        #[arg(long, env = "FOG_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc_url: String,
        /// Deployment parameters (JSON, camelCase fields of DeployParams); devnet defaults
        /// with the deployer holding the supply when absent.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Where to write the deployment file.
        #[arg(long, default_value = "deployment.json")]
        out: PathBuf,
        /// Replace an existing deployment file.
        #[arg(long)]
        force: bool,
    },
}

/// Ordinary errors are one paragraph, whatever RUST_BACKTRACE says.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Key { action, identity } => key_command(action, &identity.with_file_defaults()?),
        Command::Hub { action, identity } => {
            hub_command(action, &identity.with_file_defaults()?).await
        }
        Command::Token { action, identity } => {
            token_command(action, &identity.with_file_defaults()?).await
        }
        Command::Dao { action, identity } => {
            dao_command(action, &identity.with_file_defaults()?).await
        }
        Command::Devnet { action, identity } => {
            devnet_command(action, &identity.with_file_defaults()?).await
        }
        Command::Job { action, identity } => {
            job_command(action, &identity.with_file_defaults()?).await
        }
        Command::Deploy {
            rpc_url,
            params,
            out,
            force,
        } => deploy_command(&rpc_url, params, &out, force).await,
    }
}

async fn deploy_command(
    rpc_url: &str,
    params: Option<PathBuf>,
    out: &std::path::Path,
    force: bool,
) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!(
            "{} already exists; pass --force to replace it",
            out.display()
        );
    }
    let key = std::env::var("FOG_DEPLOYER_KEY")
        .context("set FOG_DEPLOYER_KEY to the deployer's private key (hex)")?;
    let signer: PrivateKeySigner = key
        .trim()
        .parse()
        .context("FOG_DEPLOYER_KEY is not a valid secp256k1 private key in hex")?;
    let url = rpc_url
        .parse()
        .with_context(|| format!("--rpc-url {rpc_url:?} is not a URL"))?;
    let params = match params {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading --params {}", path.display()))?;
            serde_json::from_str::<DeployParams>(&text).with_context(|| {
                format!(
                    "--params {}: not valid deployment parameters",
                    path.display()
                )
            })?
        }
        None => DeployParams::devnet(signer.address()),
    };
    let deployer = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url);
    let deployment = deploy(&provider, deployer, &params)
        .await
        .with_context(|| format!("deploying to {rpc_url}"))?;
    deployment.save(out)?;
    eprintln!(
        "deployed Fog on chain {}: escrow {}, registry {}, token {}; wrote {}",
        deployment.chain_id,
        deployment.escrow,
        deployment.registry,
        deployment.token,
        out.display()
    );
    Ok(())
}

fn password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    Ok(fog_protocol::keys::read_password(file, "FOG_KEY_PASSWORD")?)
}

fn keystore(identity: &Identity) -> anyhow::Result<&std::path::Path> {
    identity
        .keystore
        .as_deref()
        .context("no key: pass --keystore PATH or set FOG_KEYSTORE (create one with `fog key new`)")
}

fn key_command(action: KeyAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_protocol::keys;
    let path = keystore(identity)?;
    let address = match action {
        KeyAction::New => keys::create(path, &password(identity.password_file.as_deref())?)?,
        KeyAction::Import => {
            let secret = match std::env::var("FOG_IMPORT_KEY") {
                Ok(k) => k,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the private key from standard input")?;
                    line
                }
            };
            keys::import(path, &secret, &password(identity.password_file.as_deref())?)?
        }
        KeyAction::Address => keys::address(path)?,
    };
    println!("{address}");
    Ok(())
}

async fn job_command(action: JobAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::client::HubClient;

    // What needs only the chain needs no key and no hub: anyone holding an
    // archive can check it.
    if let JobAction::Verify {
        job,
        archive: Some(path),
    } = &action
    {
        let (_, d, rpc) = deployment_and_rpc(identity)?;
        let provider = fog_cli::ops::read_provider(rpc)?;
        let bytes = std::fs::read(path).with_context(|| format!("--archive {}", path.display()))?;
        let hash = fog_cli::run::verify_archive(&provider, &d, *job, &bytes).await?;
        println!("verified: sha256 {hash} is the output hash of job {job}'s receipts on chain");
        return Ok(());
    }
    let action = match action {
        JobAction::List { limit } => return list_command(identity, limit).await,
        JobAction::Refund { job, all } => return refund_command(identity, job, all).await,
        other => other,
    };
    let hub_url = identity
        .hub
        .as_deref()
        .context("no hub: pass --hub URL or set FOG_HUB_URL")?;
    let key = fog_protocol::keys::open(
        keystore(identity)?,
        &password(identity.password_file.as_deref())?,
    )?;
    let mut hub = HubClient::new(hub_url);
    match action {
        JobAction::Run(args) => return run_command(*args, identity, hub_url, key).await,
        JobAction::Get { job, out } => {
            let mut ctx = chain_context(identity, hub_url, key).await?;
            ctx.hub.login(&ctx.key).await?;
            let v = fog_cli::run::fetch_verified(&ctx, job, &out).await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "output verified against the receipts on chain: sha256 {}",
                    v.output_hash
                );
                println!("unpacked into {}", v.out.display());
                if let Some(note) = &v.over_limit {
                    eprintln!("fog: warning: {note}");
                }
            }
        }
        JobAction::Verify { job, .. } => {
            let mut ctx = chain_context(identity, hub_url, key).await?;
            ctx.hub.login(&ctx.key).await?;
            let bytes = ctx.hub.output(job).await?;
            let hash =
                fog_cli::run::verify_archive(&ctx.provider, &ctx.deployment, job, &bytes).await?;
            println!("verified: sha256 {hash} is the output hash of job {job}'s receipts on chain");
        }
        JobAction::Logs { job, follow } => {
            hub.login(&key).await?;
            hub.logs(job, follow, |line| {
                print_log(line.stream.as_str(), &line.data)
            })
            .await?;
        }
        JobAction::Status { job } => {
            hub.login(&key).await?;
            let status = hub.status(job).await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                let summary = &status.summary;
                println!("job {job}: {}", summary.state);
                if let Some(e) = &summary.error {
                    println!("  error: {e}");
                }
                for a in &status.assignments {
                    println!("  miner {} replica {}: {}", a.miner, a.replica, a.state);
                }
                println!(
                    "  settlement: {}",
                    summary
                        .settlement
                        .state
                        .map_or("not yet", fog_protocol::api::SettlementState::as_str)
                );
                println!("  {}", data_kept(summary.data_expires_at));
            }
        }
        JobAction::Cancel { job } => {
            hub.login(&key).await?;
            let answer = hub.cancel(job).await?;
            if answer.state == fog_protocol::api::JobState::Cancelled {
                println!("job {job} cancelled: no run had started, its escrow is released to you");
            } else {
                println!(
                    "job {job}: its runs are being stopped; the time they used is paid and the rest comes back to you (fog job status {job})"
                );
            }
        }
        // Invariant: both returned above, before the hub and key were required.
        JobAction::List { .. } | JobAction::Refund { .. } => {
            unreachable!("handled above, without the hub")
        }
    }
    Ok(())
}

/// `fog job list`: the journal and the chain always, the hub when it answers.
async fn list_command(identity: &Identity, limit: u32) -> anyhow::Result<()> {
    let (_, d, rpc) = deployment_and_rpc(identity)?;
    let key = provider_key(identity)?;
    let me = key.address();
    let provider = fog_cli::ops::read_provider(rpc)?;
    let journal = fog_cli::journal::Journal::default_location()?;
    let hub_page = match identity.hub.as_deref() {
        None => None,
        Some(url) => {
            let mut hub = fog_cli::client::HubClient::new(url);
            let page = async {
                hub.login(&key).await?;
                anyhow::Ok(hub.jobs(limit).await?)
            }
            .await;
            match page {
                Ok(page) => Some(page),
                Err(e) => {
                    eprintln!(
                        "fog: the hub at {url} did not answer ({e:#}): showing this machine's jobs and the chain only"
                    );
                    None
                }
            }
        }
    };
    let chain_now = fog_cli::ops::chain_time(&provider).await?;
    let rows = fog_cli::jobs::list(
        &journal,
        me,
        &d,
        Some((&provider, chain_now)),
        hub_page.as_ref(),
        limit as usize,
    )
    .await?;
    if identity.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "no jobs (this machine's journal is {})",
            journal.dir().display()
        );
        return Ok(());
    }
    println!(
        "{:<66}  {:<10}  {:<10}  {:<10}  LOCKED",
        "JOB", "HERE", "HUB", "ESCROW"
    );
    for r in &rows {
        let here = r.local.map_or("-", |s| s.as_str());
        let hub = r.hub.map_or("-", |s| s.as_str());
        let escrow = r.escrow.map_or("?", |s| s.name());
        let locked = r.locked.map_or("-".to_owned(), fog_cli::ops::fog);
        let note = if r.refundable {
            "  (refundable: fog job refund)"
        } else {
            ""
        };
        println!(
            "{:<66}  {here:<10}  {hub:<10}  {escrow:<10}  {locked}{note}",
            r.job_id
        );
    }
    Ok(())
}

/// The identity's key (password from --password-file or FOG_KEY_PASSWORD).
fn provider_key(identity: &Identity) -> anyhow::Result<PrivateKeySigner> {
    Ok(fog_protocol::keys::open(
        keystore(identity)?,
        &password(identity.password_file.as_deref())?,
    )?)
}

/// `fog job refund JOB | --all`: the chain and the key only.
async fn refund_command(
    identity: &Identity,
    job: Option<fog_protocol::B256>,
    all: bool,
) -> anyhow::Result<()> {
    let (d, provider, me) = chain_only(identity)?;
    let jobs = match job {
        Some(job) => vec![job],
        None => {
            let journal = fog_cli::journal::Journal::default_location()?;
            let chain_now = fog_cli::ops::chain_time(&provider).await?;
            let rows = fog_cli::jobs::list(
                &journal,
                me,
                &d,
                Some((&provider, chain_now)),
                None,
                usize::MAX,
            )
            .await?;
            rows.into_iter()
                .filter(|r| r.refundable)
                .map(|r| r.job_id)
                .collect()
        }
    };
    if all && jobs.is_empty() {
        println!(
            "nothing to refund: no job this machine opened has an open escrow past its deadline"
        );
    }
    for job in jobs {
        let (amount, tx) = fog_cli::run::refund(&provider, &d, me, job).await?;
        println!(
            "refunded {} of job {job} in {tx}",
            fog_cli::ops::fog(amount)
        );
    }
    Ok(())
}

/// The job's stdout to stdout and its stderr to stderr; best effort when closed.
fn print_log(stream: &str, data: &str) {
    use std::io::Write as _;
    let _ = if stream == "stderr" {
        std::io::stderr().write_all(data.as_bytes())
    } else {
        std::io::stdout().write_all(data.as_bytes())
    };
}

async fn run_command(
    args: RunArgs,
    identity: &Identity,
    hub_url: &str,
    key: PrivateKeySigner,
) -> anyhow::Result<()> {
    use fog_cli::run::{RunRequest, parse_size, parse_tokens, run};

    if !(args.cpus > 0.0 && args.cpus <= 1024.0) {
        bail!("--cpus {} must be above 0 and at most 1024", args.cpus);
    }
    let request = RunRequest {
        image: args.image,
        command: args.command,
        inputs: args.inputs,
        out: args.out,
        resources: fog_protocol::Resources {
            cpuMillicores: (args.cpus * 1000.0).round() as u64,
            memoryBytes: parse_size(&args.memory).map_err(|e| anyhow::anyhow!("--memory: {e}"))?,
            diskBytes: parse_size(&args.disk).map_err(|e| anyhow::anyhow!("--disk: {e}"))?,
            gpuCount: 0,
        },
        max_duration_secs: args.duration,
        max_price: parse_tokens(&args.max_price)
            .map_err(|e| anyhow::anyhow!("--max-price: {e}"))?,
        replicas: args.replicas,
        deadline_secs: args.deadline,
        region: args.region,
        labels: placement_labels(args.labels, args.isolation)?,
        wait: args.wait,
    };
    let mut ctx = chain_context(identity, hub_url, key).await?;
    // Progress goes to stderr in every mode (stdout carries the report, text
    // or --json): a spinner on a terminal, one line per step otherwise.
    let spinner = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} fog: {msg} ({elapsed})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.set_message("starting");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    });
    let report = run(
        &mut ctx,
        &request,
        |step| match &spinner {
            Some(bar) => {
                bar.println(format!("fog: {step}"));
                bar.set_message(step.to_owned());
            }
            None => eprintln!("fog: {step}"),
        },
        // stdout is for the report: the job's own output goes to stderr here.
        |_, data| {
            use std::io::Write as _;
            let write = || {
                let _ = std::io::stderr().write_all(data.as_bytes());
            };
            match &spinner {
                Some(bar) => bar.suspend(write),
                None => write(),
            }
        },
    )
    .await;
    if let Some(bar) = &spinner {
        bar.finish_and_clear();
    }
    let report = report?;
    if identity.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "job {} (escrow opened in {})",
        report.job_id, report.open_tx
    );
    match &report.result {
        None => println!(
            "submitted; follow it with `fog job status {}`",
            report.job_id
        ),
        Some(v) => {
            println!(
                "output verified against the receipts on chain: sha256 {}",
                v.output_hash
            );
            println!("unpacked into {}", v.out.display());
            if let Some(note) = &v.over_limit {
                eprintln!("fog: warning: {note}");
            }
            println!(
                "settled in {}: of {} locked",
                v.settle_tx,
                fog_cli::ops::fog(report.locked)
            );
            for p in &v.miners {
                println!(
                    "  miner {} was paid {}",
                    p.miner,
                    fog_cli::ops::fog(p.amount)
                );
            }
            println!(
                "  the hub's commission: {}",
                fog_cli::ops::fog(v.hub_commission)
            );
            println!("  refunded to you: {}", fog_cli::ops::fog(v.refund));
        }
    }
    Ok(())
}

/// The hub and chain a job command talks to, checked to be one deployment.
async fn chain_context(
    identity: &Identity,
    hub_url: &str,
    key: PrivateKeySigner,
) -> anyhow::Result<fog_cli::run::Context> {
    let (deployment_path, deployment, rpc) = deployment_and_rpc(identity)?;
    let info = fetch_hub_info(hub_url).await?;
    if info.chain_id != deployment.chain_id || info.escrow != deployment.escrow {
        bail!(
            "the hub at {hub_url} settles on chain {} with escrow {}, but {} is chain {} with escrow {}",
            info.chain_id,
            info.escrow,
            deployment_path.display(),
            deployment.chain_id,
            deployment.escrow
        );
    }
    Ok(fog_cli::run::Context::new(
        hub_url, info.hub, deployment, rpc, key,
    )?)
}

/// What `GET /v1/hub` says.
type HubInfo = fog_protocol::api::HubInfo;

async fn fetch_hub_info(hub_url: &str) -> anyhow::Result<HubInfo> {
    Ok(fog_cli::client::HubClient::new(hub_url).hub_info().await?)
}

/// When the hub deletes a job's output, logs and inputs, for people.
fn data_kept(expires_at: Option<i64>) -> String {
    match expires_at {
        None => "output, logs and inputs kept until the retention period after the job closes"
            .to_owned(),
        Some(t) => {
            let when = chrono::DateTime::from_timestamp(t, 0)
                .map_or_else(|| t.to_string(), |d| d.to_rfc3339());
            format!("output, logs and inputs kept until {when}")
        }
    }
}

/// The deployment file's path, its contents, and the chain's RPC URL.
fn deployment_and_rpc(
    identity: &Identity,
) -> anyhow::Result<(&std::path::Path, fog_protocol::deploy::Deployment, &str)> {
    let path = identity
        .deployment
        .as_deref()
        .context("no deployment: pass --deployment FILE or set FOG_DEPLOYMENT")?;
    let deployment = fog_protocol::deploy::Deployment::load(path)?;
    let rpc = identity
        .chain_rpc
        .as_deref()
        .context("no chain: pass --chain-rpc URL or set FOG_RPC_URL")?;
    Ok((path, deployment, rpc))
}

/// The deployment, a provider signing with the identity's key, and its address.
fn chain_only(
    identity: &Identity,
) -> anyhow::Result<(
    fog_protocol::deploy::Deployment,
    alloy::providers::DynProvider,
    fog_protocol::Address,
)> {
    let (_, deployment, rpc) = deployment_and_rpc(identity)?;
    let key = fog_protocol::keys::open(
        keystore(identity)?,
        &password(identity.password_file.as_deref())?,
    )?;
    let me = key.address();
    Ok((deployment, fog_cli::ops::signing_provider(rpc, key)?, me))
}

fn tokens(flag: &str, text: &str) -> anyhow::Result<fog_protocol::U256> {
    fog_cli::run::parse_tokens(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

async fn hub_command(action: HubAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::ops;
    let (d, provider, me) = chain_only(identity)?;
    match action {
        HubAction::Register {
            deposit,
            fee,
            endpoint,
            signer,
        } => {
            let deposit = tokens("--deposit", &deposit)?;
            let (hub, tx) =
                ops::hub_register(&provider, &d, me, signer, fee, &endpoint, deposit).await?;
            if identity.json {
                println!("{}", serde_json::json!({ "hub": hub, "tx": tx }));
            } else {
                println!("registered hub {hub} (in {tx}); put `hub = \"{hub}\"` in hub.toml");
            }
        }
        HubAction::Status { wallet: hub } => {
            let status = ops::hub_status(&provider, &d, hub).await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("hub {hub}: {}", status.state);
                println!(
                    "  operator {}, signer {}, fee {} bps, endpoint {}",
                    status.operator, status.signer, status.fee_bps, status.endpoint
                );
                println!(
                    "  deposit {} (frozen), earnings {}",
                    fog_cli::ops::fog(status.deposit),
                    fog_cli::ops::fog(status.earnings)
                );
                println!(
                    "  open jobs {}, {} in escrow of a cap of {}",
                    status.open_jobs,
                    fog_cli::ops::fog(status.open_escrow),
                    fog_cli::ops::fog(status.exposure_cap)
                );
                if status.exit_at > 0 {
                    println!(
                        "  deposit unlocks at unix time {} (once no job is open)",
                        status.exit_at
                    );
                }
            }
        }
        HubAction::Withdraw {
            wallet: hub,
            amount,
            to,
        } => {
            let amount = amount.map(|a| tokens("--amount", &a)).transpose()?;
            let (paid, tx) = ops::hub_withdraw(&provider, hub, to.unwrap_or(me), amount).await?;
            println!("withdrew {} of earnings in {tx}", fog_cli::ops::fog(paid));
        }
        HubAction::Exit {
            wallet: hub,
            complete,
        } => {
            let tx = ops::hub_exit(&provider, &d, hub, complete).await?;
            if complete {
                println!("exit complete, deposit returned, in {tx}");
            } else {
                println!(
                    "exit announced in {tx}; `fog hub status {hub}` says when the deposit unlocks"
                );
            }
        }
    }
    Ok(())
}

async fn token_command(action: TokenAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::ops;
    match action {
        TokenAction::Balance { who } => {
            // Reading a balance needs no key: only the keystore's public
            // address when none is given, and never its password.
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let who = match who {
                Some(who) => who,
                None => fog_protocol::keys::address(keystore(identity)?)?,
            };
            let provider = ops::read_provider(rpc)?;
            let balance = ops::token_balance(&provider, &d, who).await?;
            if identity.json {
                println!(
                    "{}",
                    serde_json::json!({ "address": who, "balance": balance })
                );
            } else {
                println!("{}", ops::fog(balance));
            }
        }
        TokenAction::Transfer { to, amount } => {
            let (d, provider, _) = chain_only(identity)?;
            let amount = tokens("amount", &amount)?;
            let tx = ops::token_transfer(&provider, &d, to, amount).await?;
            println!("sent {} to {to} in {tx}", fog_cli::ops::fog(amount));
        }
    }
    Ok(())
}

async fn devnet_command(action: DevnetAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::devnet::{Devnet, Tools, default_dir};
    let devnet = |dir: Option<PathBuf>| -> anyhow::Result<Devnet> {
        let dir = dir
            .or_else(default_dir)
            .context("no devnet directory: pass --dir or set HOME")?;
        Ok(Devnet::new(dir))
    };
    match action {
        DevnetAction::Up { dir } => {
            let devnet = devnet(dir)?;
            let tools = Tools::find()?;
            let started = std::time::Instant::now();
            let (already, status) = devnet
                .up(&tools, |step| eprintln!("devnet: {step}"))
                .await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(());
            }
            if already {
                println!("the devnet is already up");
            } else {
                println!(
                    "the devnet is up (in {:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
            print_devnet(&status, devnet.owns_default_profile());
        }
        DevnetAction::Status { dir } => {
            let devnet = devnet(dir)?;
            let Some(status) = devnet.status()? else {
                bail!(
                    "no devnet in {}: start one with `fog devnet up`",
                    devnet.dir().display()
                );
            };
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_devnet(&status, devnet.owns_default_profile());
            }
        }
        DevnetAction::Logs {
            service,
            follow,
            dir,
        } => {
            let devnet = devnet(dir)?;
            print_file(&devnet.log(&service), follow).await?;
        }
        DevnetAction::Down { dir } => {
            let devnet = devnet(dir)?;
            let stopped = devnet.down();
            if stopped.is_empty() {
                println!("the devnet in {} was not running", devnet.dir().display());
            } else {
                println!(
                    "stopped {}; the chain's state is kept for the next `fog devnet up`",
                    stopped.join(", ")
                );
            }
        }
        DevnetAction::Faucet { to, amount } => {
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let to = match to {
                Some(a) => a,
                None => fog_protocol::keys::address(keystore(identity)?)?,
            };
            let amount = tokens("--amount", &amount)?;
            fog_cli::ops::devnet_faucet(rpc, &d, to, amount).await?;
            println!(
                "sent {} and 1 ether of gas money to {to}",
                fog_cli::ops::fog(amount)
            );
        }
        DevnetAction::Advance { seconds } => {
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let now = fog_cli::ops::devnet_advance(rpc, &d, seconds).await?;
            if identity.json {
                println!("{}", serde_json::json!({ "chainTime": now }));
            } else {
                println!("chain time is now {now} (moved {seconds} s ahead)");
            }
        }
    }
    Ok(())
}

fn print_devnet(status: &fog_cli::devnet::Status, default_profile: bool) {
    println!("  chain     {}", status.rpc);
    println!("  hub       {} ({})", status.hub, status.hub_address);
    println!(
        "  registry  {}  (docker tag IMAGE {}/NAME:TAG && docker push {}/NAME:TAG)",
        status.registry, status.registry, status.registry
    );
    println!(
        "  buyer     {} (keystore {})",
        status.buyer,
        status.buyer_keystore.display()
    );
    for service in &status.services {
        let state = match service.pid {
            Some(pid) => format!("running (pid {pid})"),
            None => "stopped".to_owned(),
        };
        println!("  {:<9} {state}", service.name);
    }
    if default_profile {
        println!(
            "plain `fog` commands use this devnet (profile {})",
            status.profile.display()
        );
    } else {
        println!(
            "to use it: export FOG_CONFIG={} (another profile is at the default location)",
            status.profile.display()
        );
    }
}

/// Prints a file; with `follow`, keeps printing what is appended (Ctrl-C stops).
async fn print_file(path: &std::path::Path, follow: bool) -> anyhow::Result<()> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("{}: no log yet (is the devnet up?)", path.display()))?;
    let mut stdout = std::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            stdout.write_all(&buf[..n])?;
            continue;
        }
        if !follow {
            return Ok(());
        }
        stdout.flush()?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // A log truncated under us starts over.
        if file.metadata()?.len() < file.stream_position()? {
            file.rewind()?;
        }
    }
}

async fn dao_command(action: DaoAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::dao;
    let (d, provider, me) = chain_only(identity)?;
    let json = identity.json;
    match action {
        DaoAction::Delegate { to } => {
            let to = to.unwrap_or(me);
            let tx = dao::delegate(&provider, &d, to).await?;
            let m = dao::member(&provider, &d, me).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx, "member": m }));
            } else {
                println!(
                    "delegated your {} of votes to {to} in {tx}",
                    fog_cli::ops::fog(m.balance)
                );
            }
        }
        DaoAction::ProposeBlacklist {
            wallet: hub,
            evidence,
            note,
        } => {
            let p = dao::propose_blacklist(&provider, &d, hub, evidence, note.as_deref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!("proposal {} made in {}", p.id, p.tx);
                println!(
                    "  voting opens at unix time {} and closes at {}",
                    p.vote_start, p.vote_end
                );
                for line in p.description.lines() {
                    println!("  | {line}");
                }
            }
        }
        DaoAction::Vote {
            proposal,
            support,
            reason,
        } => {
            let (tx, weight) = dao::vote(&provider, &d, me, proposal, support, &reason).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx, "weight": weight }));
            } else {
                println!(
                    "voted {} on proposal {proposal} with {} of votes in {tx}",
                    serde_json::to_value(support)?.as_str().unwrap_or("?"),
                    fog_cli::ops::fog(weight)
                );
            }
        }
        DaoAction::Queue { proposal } => {
            let (tx, eta) = dao::queue(&provider, &d, proposal).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx, "eta": eta }));
            } else {
                println!("proposal {proposal} queued in {tx}; executable from unix time {eta}");
            }
        }
        DaoAction::Execute { proposal } => {
            let tx = dao::execute(&provider, &d, proposal).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx }));
            } else {
                println!("proposal {proposal} executed in {tx}");
            }
        }
        DaoAction::Status { proposal } => {
            let list = dao::proposals(&provider, &d, proposal).await?;
            let m = dao::member(&provider, &d, me).await?;
            let now = dao::chain_time(&provider).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "chainTime": now, "member": m, "proposals": list })
                    )?
                );
                return Ok(());
            }
            println!(
                "you: {}, {} of votes (delegated to {}); chain time {now}",
                fog_cli::ops::fog(m.balance),
                fog_cli::ops::fog(m.votes),
                m.delegate
            );
            if list.is_empty() {
                println!("no proposals yet");
            }
            for p in list {
                println!("proposal {}: {}", p.id, p.state);
                if proposal.is_some() {
                    // One proposal: its whole text, evidence included.
                    for line in p.description.lines() {
                        println!("  | {line}");
                    }
                } else {
                    println!("  {}", p.description.lines().next().unwrap_or(""));
                }
                if let Some(b) = p.blacklist {
                    println!(
                        "  blacklists hub {} on the evidence of job {}",
                        b.hub, b.evidence_job
                    );
                }
                println!(
                    "  votes: {} for, {} against, {} abstain; quorum {}",
                    fog_cli::ops::fog(p.votes_for),
                    fog_cli::ops::fog(p.votes_against),
                    fog_cli::ops::fog(p.votes_abstain),
                    p.quorum
                        .map_or("set when voting opens".to_owned(), fog_cli::ops::fog)
                );
                println!("  voting {} → {}", p.vote_start, p.vote_end);
                if p.eta > 0 {
                    println!("  executable from {}", p.eta);
                }
            }
        }
        DaoAction::Treasury => {
            let t = dao::treasury(&provider, &d).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
                return Ok(());
            }
            println!(
                "treasury {}: holds {}, of which {} frozen or unspent in lots",
                t.address,
                fog_cli::ops::fog(t.balance),
                fog_cli::ops::fog(t.locked_total)
            );
            for lot in t.lots {
                println!(
                    "  lot {}: {} from hub {}, {} left, {} until unix time {}",
                    lot.id,
                    fog_cli::ops::fog(lot.amount),
                    lot.hub,
                    fog_cli::ops::fog(lot.remaining),
                    if lot.frozen { "frozen" } else { "released" },
                    lot.release_at
                );
            }
        }
    }
    Ok(())
}

/// The placement labels of `fog job run`: `--label`s as given (each
/// `key=value`), plus the isolation class's label.
fn placement_labels(
    mut labels: Vec<String>,
    isolation: Option<fog_protocol::wire::Isolation>,
) -> anyhow::Result<Vec<String>> {
    for label in &labels {
        if label.split_once('=').is_none_or(|(k, _)| k.is_empty()) {
            anyhow::bail!("--label {label:?}: must be key=value, e.g. --label arch=amd64");
        }
    }
    if let Some(isolation) = isolation {
        labels.retain(|l| !l.starts_with(&format!("{}=", fog_protocol::wire::ISOLATION_LABEL)));
        labels.push(isolation.label());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand and argument.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
