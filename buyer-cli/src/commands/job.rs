//! `fog job`: run, follow, list, verify and refund jobs.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};
use clap::Subcommand;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum JobAction {
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
    /// Cancel a queued or running job: nothing is paid if no run started, else
    /// the runs are stopped and the time they used is paid; the rest comes back.
    Cancel { job: fog_protocol::B256 },
    /// Download a settled job's output, check it against the receipts on chain, unpack it.
    Get {
        job: fog_protocol::B256,
        /// Directory to unpack into (absent or empty); default ./fog-out/<job id>.
        #[arg(long)]
        out: Option<PathBuf>,
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
pub(crate) struct RunArgs {
    /// Image: [REGISTRY/]NAME[:TAG] (resolved to its digest through the
    /// registry, which is pinned in the spec), NAME[:TAG]@sha256:DIGEST, or the
    /// id sha256:ID of an image already on the miners.
    #[arg(long)]
    pub(crate) image: String,
    /// CPU cores (fractions allowed: 0.5).
    #[arg(long, default_value = "1")]
    pub(crate) cpus: f64,
    /// Memory, e.g. 256M or 2G.
    #[arg(long, default_value = "256M")]
    pub(crate) memory: String,
    /// Disk for outputs and scratch, e.g. 1G.
    #[arg(long, default_value = "256M")]
    pub(crate) disk: String,
    /// An input file, placed read-only at /fog/in/<name>. Repeat for more.
    #[arg(long = "input", value_name = "PATH")]
    pub(crate) inputs: Vec<PathBuf>,
    /// Directory to unpack the verified output into (absent or empty);
    /// default ./fog-out/<job id>.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// Most the job may cost, in whole tokens (miners plus the hub's commission).
    #[arg(long)]
    pub(crate) max_price: String,
    /// Distinct miners that must run it and agree.
    #[arg(long, default_value_t = 1)]
    pub(crate) replicas: u16,
    /// Wall-clock limit of one run, in seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) duration: u64,
    /// Seconds until an unsettled escrow can be refunded; at least the run
    /// (--duration), the 30-minute settlement window and 10 minutes more.
    #[arg(long, default_value_t = 3_600)]
    pub(crate) deadline: u64,
    /// Required miner region.
    #[arg(long, default_value = "")]
    pub(crate) region: String,
    /// A label the miner must carry (`key=value`); repeat for several.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub(crate) labels: Vec<String>,
    /// Run only on miners with this isolation: `gvisor` (a user-space kernel),
    /// `userns` (remapped users) or `container` (plain runc). Adds the label
    /// `fog.isolation=<class>`.
    #[arg(long)]
    pub(crate) isolation: Option<fog_protocol::wire::Isolation>,
    /// Follow the job to its verified, settled end (otherwise stop once it is submitted).
    #[arg(long)]
    pub(crate) wait: bool,
    /// How to pay: `batch` (a signed authorisation against your batch account, no transaction;
    /// `fog account deposit` first), `per-job` (an escrow for this job alone), or `auto`
    /// (batched when the hub offers it and your account covers the job).
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) settlement: fog_cli::run::SettlementChoice,
    /// Batched: fund your account with this many whole tokens through the hub (a permit it
    /// carries in its next epoch), so that not even the first job needs a transaction of yours.
    #[arg(long)]
    pub(crate) fund: Option<String>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    pub(crate) command: Vec<String>,
}

/// What `fog job verify` says once an archive matched the receipts settled on chain.
fn report_verified(identity: &Identity, job: fog_protocol::B256, hash: fog_protocol::B256) {
    report(
        identity,
        serde_json::json!({ "jobId": job, "outputHash": hash, "verified": true }),
        || {
            format!(
                "verified: sha256 {hash} is the output hash of job {job}'s receipts settled on chain"
            )
        },
    );
}

pub(crate) async fn job_command(action: JobAction, identity: &Identity) -> anyhow::Result<()> {
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
        let hash =
            fog_cli::run::verify_archive(&provider, &d, *job, &bytes, identity.hub.as_deref())
                .await?;
        report_verified(identity, *job, hash);
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
            let spinner = Spinner::new("downloading the output and checking it against the chain");
            ctx.hub.login(&ctx.key).await?;
            let out = out.unwrap_or_else(|| PathBuf::from("fog-out").join(job.to_string()));
            let v = fog_cli::run::fetch_verified(&ctx, job, &out).await;
            drop(spinner);
            let v = v?;
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
            let hash = fog_cli::run::verify_archive(
                &ctx.provider,
                &ctx.deployment,
                job,
                &bytes,
                Some(hub_url),
            )
            .await?;
            report_verified(identity, job, hash);
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
            report(identity, serde_json::to_value(&answer)?, || {
                if answer.state == fog_protocol::api::JobState::Cancelled {
                    format!(
                        "job {job} cancelled: no run had started, its escrow is released to you"
                    )
                } else {
                    format!(
                        "job {job}: its runs are being stopped; the time they used is paid and the rest comes back to you (fog job status {job})"
                    )
                }
            });
        }
        // Invariant: both returned above, before the hub and key were required.
        JobAction::List { .. } | JobAction::Refund { .. } => {
            unreachable!("handled above, without the hub")
        }
    }
    Ok(())
}

/// `fog job list`: the journal and the chain always, the hub when it answers.
pub(crate) async fn list_command(identity: &Identity, limit: u32) -> anyhow::Result<()> {
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

/// `fog job refund JOB | --all`: the chain and the key only.
pub(crate) async fn refund_command(
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
    if all && jobs.is_empty() && !identity.json {
        println!(
            "nothing to refund: no job this machine opened has an open escrow past its deadline"
        );
    }
    let mut refunded = Vec::new();
    for job in jobs {
        let (amount, tx) = fog_cli::run::refund(&provider, &d, me, job).await?;
        if !identity.json {
            println!(
                "refunded {} of job {job} in {tx}",
                fog_cli::ops::fog(amount)
            );
        }
        refunded.push(serde_json::json!({ "jobId": job, "amount": amount, "tx": tx }));
    }
    if identity.json {
        println!("{}", serde_json::Value::Array(refunded));
    }
    Ok(())
}

/// The job's stdout to stdout and its stderr to stderr; best effort when closed.
pub(crate) fn print_log(stream: &str, data: &str) {
    use std::io::Write as _;
    let _ = if stream == "stderr" {
        std::io::stderr().write_all(data.as_bytes())
    } else {
        std::io::stdout().write_all(data.as_bytes())
    };
}

pub(crate) async fn run_command(
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
        settlement: args.settlement,
        fund: args
            .fund
            .as_deref()
            .map(parse_tokens)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--fund: {e}"))?,
    };
    let mut ctx = chain_context(identity, hub_url, key).await?;
    // Progress goes to stderr in every mode (stdout carries the report, text
    // or --json): a spinner on a terminal, one line per step otherwise.
    let spinner = Spinner::new("starting");
    let report = run(
        &mut ctx,
        &request,
        |step| spinner.step(step),
        // stdout is for the report: the job's own output goes to stderr here.
        |_, data| {
            use std::io::Write as _;
            spinner.suspend(|| {
                let _ = std::io::stderr().write_all(data.as_bytes());
            });
        },
    )
    .await;
    drop(spinner);
    let report = report?;
    if identity.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    if report.settlement == "batch" {
        println!(
            "job {} (batched: authorised up to {} from your account, no transaction)",
            report.job_id,
            fog_cli::ops::fog(report.locked)
        );
    } else {
        println!(
            "job {} (escrow opened in {})",
            report.job_id, report.open_tx
        );
    }
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

/// When the hub deletes a job's output, logs and inputs, for people.
pub(crate) fn data_kept(expires_at: Option<i64>) -> String {
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

/// The placement labels of `fog job run`: `--label`s as given (each
/// `key=value`), plus the isolation class's label.
pub(crate) fn placement_labels(
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
