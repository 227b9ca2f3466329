//! `fog job run`: a job from the buyer's side, start to verified finish.
//!
//! Quote → open the escrow (one transaction, EIP-2612 permit) → upload the
//! inputs → submit the signed spec → follow the logs → wait for the hub to
//! settle on chain → download the output, check its sha256 against the
//! receipts the escrow emitted, unpack it → report who was paid what.

use std::path::PathBuf;
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use fog_protocol::api::JobState;
use fog_protocol::contracts::fog_token::FogToken;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::deploy::Deployment;
use fog_protocol::output::{sha256, unpack_archive};
use fog_protocol::{
    Address, B256, JobSpec, Placement, PrivateKeySigner, Resources, SignedJobSpec, U256,
};
use serde::Serialize;

use crate::client::{ClientError, HubClient};

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--input {path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("--out {0}: exists and is not an empty directory")]
    OutNotEmpty(PathBuf),
    #[error("the job: {0}")]
    Spec(#[from] fog_protocol::SpecError),
    #[error(transparent)]
    Image(#[from] crate::images::ImageError),
    #[error(
        "all miners that could run this job are busy now ({fitting} free, {replicas} needed): try again later, or ask for fewer resources"
    )]
    NoMiners { fitting: u64, replicas: u64 },
    #[error(
        "no miner on this hub can ever run this job ({capable} could, {replicas} needed): {why}"
    )]
    NeverFits {
        capable: u64,
        replicas: u64,
        why: String,
    },
    #[error(
        "the cheapest fitting miners need a max payment of {}; --max-price allows {}: raise it",
        crate::ops::fog(*needed),
        crate::ops::fog(*offered)
    )]
    TooCheap { needed: U256, offered: U256 },
    #[error(transparent)]
    Hub(#[from] ClientError),
    #[error("{0}")]
    Chain(String),
    #[error("the job ended {state}: {error}")]
    NotCompleted { state: String, error: String },
    #[error(
        "the output's sha256 {actual} differs from the receipts on chain ({expected}): it is evidence against the hub that served it{}",
        kept.as_ref().map(|p| format!(" (kept in {})", p.display())).unwrap_or_default()
    )]
    Mismatch {
        expected: B256,
        actual: B256,
        /// Where the mismatching archive was kept.
        kept: Option<PathBuf>,
    },
    #[error("unpacking the output: {0}")]
    Unpack(#[from] fog_protocol::output::OutputError),
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    #[error(
        "{cause}\njob {job_id}'s escrow stays open with {}: `fog job list` shows it; the hub releases it if the job fails, else `fog job refund {job_id}` takes it back once the chain passes its deadline ({})",
        crate::ops::fog(*locked),
        chrono::DateTime::from_timestamp(i64::try_from(*deadline).unwrap_or(i64::MAX), 0)
            .map_or_else(|| deadline.to_string(), |t| t.to_rfc3339())
    )]
    EscrowOpen {
        job_id: B256,
        locked: U256,
        deadline: u64,
        cause: Box<RunError>,
    },
    #[error(transparent)]
    Jobs(#[from] crate::jobs::JobsError),
    #[error(transparent)]
    Ops(#[from] crate::ops::OpsError),
}

fn chain(e: impl std::fmt::Display) -> RunError {
    RunError::Chain(format!("the chain: {e}"))
}

/// What the buyer asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub image: String,
    pub command: Vec<String>,
    pub inputs: Vec<PathBuf>,
    /// Where the verified output is unpacked; default `fog-out/<job id>`.
    pub out: Option<PathBuf>,
    pub resources: Resources,
    pub max_duration_secs: u64,
    /// Most the job may cost in total, in base units.
    pub max_price: U256,
    pub replicas: u16,
    /// Seconds from now until the escrow becomes refundable.
    pub deadline_secs: u64,
    pub region: String,
    /// Labels the miner must carry (`key=value`).
    pub labels: Vec<String>,
    /// Follow the job to its verified, settled end; otherwise stop once it is submitted.
    pub wait: bool,
    /// How the job is paid.
    pub settlement: SettlementChoice,
    /// Batched: a permit for this many base units that the hub carries in its
    /// next epoch into the buyer's account (funding with no transaction).
    pub fund: Option<U256>,
}

/// How a job is paid (docs/settlement.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SettlementChoice {
    /// Batched when the hub offers it and the batch account covers the job, else per-job.
    Auto,
    /// A signed authorisation against the batch account: no transaction per job.
    Batch,
    /// An escrow opened on chain for this job alone.
    PerJob,
}

/// What a deadline leaves beyond the run and the settlement window: time to
/// submit, queue, pull the image.
const DEADLINE_MARGIN_SECS: u64 = 600;

/// Who was paid what.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub miner: Address,
    pub amount: U256,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub job_id: B256,
    pub spec_hash: B256,
    /// The escrow's opening (zero for a batched job: it has none).
    pub open_tx: B256,
    /// Locked in the escrow, or (batched) authorised against the account.
    pub locked: U256,
    /// `batch` or `per-job`.
    pub settlement: &'static str,
    /// With `wait`: the verified, settled end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Verified>,
}

/// A job's verified end.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    pub output_hash: B256,
    pub out: PathBuf,
    pub settle_tx: B256,
    pub miners: Vec<Payment>,
    pub hub_commission: U256,
    pub refund: U256,
    /// Set when the job's output was over its limit and replaced by a note
    /// (the run was performed and paid): the note's text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_limit: Option<String>,
}

/// What the client talks to.
#[derive(Debug)]
pub struct Context {
    pub hub: HubClient,
    pub deployment: Deployment,
    pub hub_address: Address,
    pub key: PrivateKeySigner,
    pub provider: DynProvider,
}

impl Context {
    pub fn new(
        hub_url: &str,
        hub_address: Address,
        deployment: Deployment,
        rpc_url: &str,
        key: PrivateKeySigner,
    ) -> Result<Self, RunError> {
        let url = rpc_url
            .parse()
            .map_err(|e| RunError::Chain(format!("--rpc-url {rpc_url:?}: {e}")))?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(key.clone()))
            .connect_http(url)
            .erased();
        Ok(Self {
            hub: HubClient::new(hub_url),
            deployment,
            hub_address,
            key,
            provider,
        })
    }
}

/// A permit for the batch contract to take `value` of the buyer's tokens into
/// its batch account, for the hub to carry in an epoch before `deadline`.
pub async fn funding_permit(
    ctx: &Context,
    value: U256,
    deadline: u64,
) -> Result<fog_protocol::api::Funding, RunError> {
    let token =
        fog_protocol::contracts::fog_token::FogToken::new(ctx.deployment.token, &ctx.provider);
    let (v, r, s) = crate::ops::sign_permit(
        &token,
        ctx.deployment.chain_id,
        &ctx.key,
        ctx.deployment.batch,
        value,
        deadline,
    )
    .await
    .map_err(|e| RunError::Chain(e.to_string()))?;
    let signature = alloy::primitives::Signature::new(
        U256::from_be_bytes(r.0),
        U256::from_be_bytes(s.0),
        v == 28,
    );
    Ok(fog_protocol::api::Funding {
        value,
        deadline,
        signature,
    })
}

/// Runs the job; `progress` hears each step, `log` each log line.
pub async fn run(
    ctx: &mut Context,
    req: &RunRequest,
    mut progress: impl FnMut(&str),
    log: impl FnMut(&str, &str),
) -> Result<RunReport, RunError> {
    if let Some(out) = &req.out {
        check_out_empty(out)?;
    }
    let mut files = Vec::new();
    for path in &req.inputs {
        let bad = |reason: String| RunError::Input {
            path: path.clone(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| bad("has no file name".into()))?
            .to_owned();
        files.push((name, bytes));
    }
    progress("pinning the image");
    let pinned = crate::images::pin(&req.image).await?;
    if let Some(tag) = &pinned.resolved_from {
        progress(&format!(
            "image {tag} is {} (pinned by digest)",
            pinned.image
        ));
    }
    let mut spec = JobSpec {
        image: pinned.image.to_string(),
        command: req.command.clone(),
        env: vec![],
        inputs: files
            .iter()
            .map(|(name, bytes)| fog_protocol::InputBlob {
                contentHash: sha256(bytes),
                size: bytes.len() as u64,
                path: name.clone(),
            })
            .collect(),
        outputPath: "/fog/out".into(),
        resources: req.resources.clone(),
        maxDurationSecs: req.max_duration_secs,
        network: 0,
        placement: Placement {
            region: req.region.clone(),
            labels: req.labels.clone(),
        },
        replicas: req.replicas,
        maxPayment: req.max_price,
        deadline: 0,
    };
    // The chain's clock decides the deadline, which must leave the whole run,
    // the settlement window and a margin for the submission.
    let chain_now = crate::ops::chain_time(&ctx.provider).await?;
    let least = req
        .max_duration_secs
        .saturating_add(fog_protocol::SETTLEMENT_WINDOW_SECS)
        .saturating_add(DEADLINE_MARGIN_SECS);
    spec.deadline = chain_now.saturating_add(req.deadline_secs.max(least));
    spec.validate(chain_now)?;

    progress("asking the hub for a quote");
    let quote = ctx.hub.quote(&spec).await?;
    if quote.capable_miners < u64::from(req.replicas) {
        return Err(RunError::NeverFits {
            capable: quote.capable_miners,
            replicas: u64::from(req.replicas),
            why: never_fits_why(&spec, &quote.largest_offer),
        });
    }
    if !quote.enough_miners {
        return Err(RunError::NoMiners {
            fitting: quote.fitting_miners,
            replicas: u64::from(req.replicas),
        });
    }
    let needed = quote.suggested_max_payment;
    if needed > req.max_price {
        return Err(RunError::TooCheap {
            needed,
            offered: req.max_price,
        });
    }

    let domain = ctx.deployment.domain();
    let signed = SignedJobSpec::sign(spec.clone(), &ctx.key, &domain).map_err(chain)?;
    if let Some(fee_bps) = batched(ctx, req.settlement, &spec, req.fund).await? {
        return run_batched(ctx, req, fee_bps, files, signed, progress, log).await;
    }

    // Recorded here before the escrow exists: whatever happens to the hub
    // from now on, this machine knows the job and can refund it.
    let journal = crate::journal::Journal::default_location()?;
    let mut salt = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut salt);
    let salt = B256::from(salt);
    let buyer = ctx.key.address();
    let mut local = crate::journal::LocalJob {
        job_id: crate::journal::job_id_for(buyer, salt),
        salt,
        buyer,
        hub: ctx.hub_address,
        hub_url: ctx.hub.url().to_owned(),
        chain_id: ctx.deployment.chain_id,
        escrow: ctx.deployment.escrow,
        spec: spec.clone(),
        created_at: chain_now,
        open_tx: None,
        state: crate::journal::LocalState::Opening,
    };
    journal.record(&local)?;
    progress(&format!(
        "opening the escrow of job {} (one transaction, with a permit)",
        local.job_id
    ));
    let (job_id, open_tx) = {
        // One opening at a time per key, across processes: nonces and permits.
        let _lock = journal.lock_openings(buyer)?;
        open_escrow(ctx, &spec, chain_now, salt).await?
    };
    if job_id != local.job_id {
        return Err(RunError::Chain(format!(
            "the escrow opened job {job_id}, not {} as computed from the salt: is {} the JobEscrow it claims to be?",
            local.job_id, ctx.deployment.escrow
        )));
    }
    local.open_tx = Some(open_tx);
    local.state = crate::journal::LocalState::Opened;
    journal.record(&local)?;
    let (deadline, locked) = (spec.deadline, spec.maxPayment);
    drive(ctx, req, &journal, local, files, signed, progress, log)
        .await
        .map_err(|e| match e {
            // The hub or the chain failed us with the money locked: say where it is.
            RunError::Hub(_) | RunError::Chain(_) | RunError::Journal(_) => RunError::EscrowOpen {
                job_id,
                locked,
                deadline,
                cause: Box::new(e),
            },
            other => other,
        })
}

/// From an open escrow to the verified output: inputs, submission, logs,
/// settlement, download.
#[allow(clippy::too_many_arguments)] // the steps' state, handed over once
async fn drive(
    ctx: &mut Context,
    req: &RunRequest,
    journal: &crate::journal::Journal,
    mut local: crate::journal::LocalJob,
    files: Vec<(String, Vec<u8>)>,
    signed: SignedJobSpec,
    mut progress: impl FnMut(&str),
    log: impl FnMut(&str, &str),
) -> Result<RunReport, RunError> {
    let (job_id, spec) = (local.job_id, signed.payload.clone());
    let open_tx = local.open_tx.unwrap_or_default();
    progress("uploading inputs and submitting the signed spec");
    ctx.hub.login(&ctx.key).await?;
    for (name, bytes) in files {
        ctx.hub.upload(&name, bytes, Some(job_id)).await?;
    }
    submit_when_confirmed(
        ctx,
        job_id,
        &signed,
        None,
        None,
        spec.deadline,
        &mut progress,
    )
    .await?;
    local.state = crate::journal::LocalState::Submitted;
    journal.record(&local)?;
    let report = RunReport {
        job_id,
        spec_hash: spec.spec_hash(),
        open_tx,
        locked: spec.maxPayment,
        settlement: "per-job",
        result: None,
    };
    follow(ctx, req, report, &mut progress, log).await
}

/// Whether the job goes the batched way — asked for, or (auto) offered by the
/// hub with the account (and `fund`) covering the job — and if so, the hub's
/// commission the authorisation accepts.
async fn batched(
    ctx: &Context,
    choice: SettlementChoice,
    spec: &JobSpec,
    fund: Option<U256>,
) -> Result<Option<u16>, RunError> {
    if choice == SettlementChoice::PerJob {
        return Ok(None);
    }
    let info = ctx.hub.hub_info().await?;
    match (choice, info.batch) {
        (SettlementChoice::Batch, None) => Err(RunError::Chain(
            "this hub does not take batched jobs: use --settlement per-job".into(),
        )),
        (SettlementChoice::Batch, Some(_)) => Ok(Some(info.fee_bps)),
        (_, None) => Ok(None),
        (_, Some(terms)) => {
            if terms.contract != ctx.deployment.batch {
                return Ok(None);
            }
            let account =
                crate::ops::batch_account(&ctx.provider, &ctx.deployment, ctx.key.address())
                    .await
                    .map_err(|e| RunError::Chain(e.to_string()))?;
            let covered = account.balance + fund.unwrap_or_default() >= spec.maxPayment;
            Ok(covered.then_some(info.fee_bps))
        }
    }
}

/// A batched job: no escrow, no transaction; the buyer signs a JobAuth that
/// the hub settles in its next epoch against the buyer's batch account.
async fn run_batched(
    ctx: &mut Context,
    req: &RunRequest,
    fee_bps: u16,
    files: Vec<(String, Vec<u8>)>,
    signed: SignedJobSpec,
    mut progress: impl FnMut(&str),
    log: impl FnMut(&str, &str),
) -> Result<RunReport, RunError> {
    let spec = signed.payload.clone();
    let mut salt = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut salt);
    let salt = B256::from(salt);
    let auth = fog_protocol::batch::JobAuth {
        salt,
        specHash: spec.spec_hash(),
        hub: ctx.hub_address,
        maxPayment: spec.maxPayment,
        deadline: spec.deadline,
        replicas: spec.replicas,
        maxFeeBps: fee_bps,
    };
    let auth = fog_protocol::Signed::sign(auth, &ctx.key, &ctx.deployment.batch_domain())
        .map_err(chain)?;
    let job_id = fog_protocol::batch::batch_job_id(ctx.key.address(), salt);
    progress(&format!(
        "job {job_id}: batched, no transaction (a signed authorisation of at most {})",
        crate::ops::fog(spec.maxPayment)
    ));
    progress("uploading inputs and submitting the signed spec");
    ctx.hub.login(&ctx.key).await?;
    for (name, bytes) in files {
        ctx.hub.upload(&name, bytes, Some(job_id)).await?;
    }
    let funding = match req.fund {
        Some(value) => {
            progress(&format!(
                "funding the account with {} through the hub (a permit, no transaction)",
                crate::ops::fog(value)
            ));
            // Valid a day past the job's deadline: the hub uses it in an epoch before that.
            Some(funding_permit(ctx, value, spec.deadline + 86_400).await?)
        }
        None => None,
    };
    submit_when_confirmed(
        ctx,
        job_id,
        &signed,
        Some(auth),
        funding,
        spec.deadline,
        &mut progress,
    )
    .await?;
    let report = RunReport {
        job_id,
        spec_hash: spec.spec_hash(),
        open_tx: B256::ZERO,
        locked: spec.maxPayment,
        settlement: "batch",
        result: None,
    };
    follow(ctx, req, report, &mut progress, log).await
}

/// From a submitted job to its verified output (with `wait`).
async fn follow(
    ctx: &mut Context,
    req: &RunRequest,
    mut report: RunReport,
    progress: &mut impl FnMut(&str),
    log: impl FnMut(&str, &str),
) -> Result<RunReport, RunError> {
    let job_id = report.job_id;
    if !req.wait {
        return Ok(report);
    }
    let spec_duration = req.max_duration_secs;

    progress("running; logs follow");
    let mut log = log;
    ctx.hub
        .logs(job_id, true, |line| log(line.stream.as_str(), &line.data))
        .await?;
    let status = ctx
        .hub
        .wait_for(job_id, Duration::from_secs(spec_duration + 60), |s| {
            s.summary.state.is_final()
        })
        .await?;
    if status.summary.state != JobState::Completed {
        return Err(RunError::NotCompleted {
            state: status.summary.state.to_string(),
            error: status.summary.error.unwrap_or_default(),
        });
    }

    progress(if report.settlement == "batch" {
        "waiting for the hub's next epoch on chain"
    } else {
        "waiting for the hub to settle on chain"
    });
    ctx.hub
        .wait_for(job_id, Duration::from_secs(600), |s| {
            s.summary.settlement.state.is_some_and(|st| st.is_final())
        })
        .await?;
    progress("downloading and verifying the output");
    let out = req
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("fog-out").join(job_id.to_string()));
    report.result = Some(if report.settlement == "batch" {
        fetch_verified_batched(ctx, job_id, &out).await?
    } else {
        fetch_verified(ctx, job_id, &out).await?
    });
    Ok(report)
}

/// Why no miner can take `spec`: the resources over the largest offer, else
/// the placement.
fn never_fits_why(spec: &JobSpec, largest: &fog_protocol::Resources) -> String {
    let want = &spec.resources;
    let mut over = Vec::new();
    if want.cpuMillicores > largest.cpuMillicores {
        over.push(format!(
            "--cpus {} (the largest offer has {})",
            want.cpuMillicores as f64 / 1000.0,
            largest.cpuMillicores as f64 / 1000.0
        ));
    }
    for (flag, wanted, most) in [
        ("--memory", want.memoryBytes, largest.memoryBytes),
        ("--disk", want.diskBytes, largest.diskBytes),
    ] {
        if wanted > most {
            over.push(format!(
                "{flag} {} (the largest offer has {})",
                bytes_text(wanted),
                bytes_text(most)
            ));
        }
    }
    if want.gpuCount > largest.gpuCount {
        over.push(format!(
            "{} GPUs (the largest offer has {})",
            want.gpuCount, largest.gpuCount
        ));
    }
    if over.is_empty() {
        "too few miners match its region, labels or isolation (or its replicas): relax --region/--label/--isolation or lower --replicas".to_owned()
    } else {
        format!("lower {}", over.join(", "))
    }
}

fn bytes_text(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    if n >= 1 << 30 && n.is_multiple_of(1 << 30) {
        format!("{}G", n >> 30)
    } else {
        format!("{}M", n.div_ceil(MIB))
    }
}

/// Submits the signed spec; a hub that waits for confirmations (reorgs)
/// answers 425 until the escrow is deep enough, and the submission is tried
/// again with backoff while the escrow's deadline leaves room.
async fn submit_when_confirmed(
    ctx: &Context,
    job_id: B256,
    signed: &SignedJobSpec,
    auth: Option<fog_protocol::batch::SignedJobAuth>,
    funding: Option<fog_protocol::api::Funding>,
    deadline: u64,
    progress: &mut impl FnMut(&str),
) -> Result<(), RunError> {
    use backon::BackoffBuilder;
    let mut delays = backon::ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(15))
        .without_max_times()
        .build();
    let mut told = false;
    loop {
        match ctx
            .hub
            .submit_with(job_id, signed, auth.clone(), funding.clone())
            .await
        {
            Err(ClientError::Refused {
                status: 425,
                message,
            }) => {
                // The escrow's deadline is in chain time: so is the give-up.
                let chain_now = crate::ops::chain_time(&ctx.provider).await?;
                if chain_now >= deadline {
                    return Err(RunError::Hub(ClientError::Refused {
                        status: 425,
                        message,
                    }));
                }
                if !told {
                    progress(&format!("waiting: {message}"));
                    told = true;
                }
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(15))).await;
            }
            other => return other.map(|_| ()).map_err(RunError::from),
        }
    }
}

/// The settlement of a job, read from the chain alone (no hub, no key): the
/// settlement transaction (its `JobSettled` log) and the receipts it emitted,
/// checked against the evidence the escrow keeps for the job.
pub async fn settlement_on_chain(
    provider: &DynProvider,
    d: &Deployment,
    job_id: B256,
) -> Result<(B256, Settlement), RunError> {
    use alloy::rpc::types::Filter;
    use alloy::sol_types::SolEvent;
    let filter = Filter::new()
        .address(d.escrow)
        .event_signature(JobEscrow::JobSettled::SIGNATURE_HASH)
        .topic1(job_id)
        .from_block(d.block);
    let logs = provider.get_logs(&filter).await.map_err(chain)?;
    let Some(tx) = logs.first().and_then(|l| l.transaction_hash) else {
        let escrow = JobEscrow::new(d.escrow, provider);
        let job = escrow.getJob(job_id).call().await.map_err(chain)?;
        let status = fog_protocol::contracts::EscrowStatus::from_code(job.status);
        return Err(RunError::NotCompleted {
            state: format!("not settled on chain (escrow: {status})"),
            error: String::new(),
        });
    };
    Ok((tx, read_settlement(provider, d, job_id, tx).await?))
}

/// The settlement of a job the buyer ran: see [`settlement_on_chain`].
pub async fn settled(ctx: &Context, job_id: B256) -> Result<(B256, Settlement), RunError> {
    settlement_on_chain(&ctx.provider, &ctx.deployment, job_id).await
}

/// Checks `archive` against the output hash the job's receipts carry on chain,
/// with nothing but the chain: anyone holding an archive can check it.
pub async fn verify_archive(
    provider: &DynProvider,
    d: &Deployment,
    job_id: B256,
    archive: &[u8],
    hub_url: Option<&str>,
) -> Result<B256, RunError> {
    let escrow = crate::jobs::escrow_of(provider, d, job_id)
        .await
        .map_err(|e| RunError::Chain(e.to_string()))?;
    let expected = if escrow.status == fog_protocol::contracts::EscrowStatus::None {
        // No escrow: a batched job. Its receipts come with the hub's proof,
        // checked against the epoch the chain stores.
        let hub_url = hub_url.ok_or_else(|| {
            RunError::Chain(format!(
                "job {job_id} has no escrow: if it is batched, its proof comes from its hub (--hub URL)"
            ))
        })?;
        let proof = HubClient::new(hub_url).public_proof(job_id).await?;
        check_proof(provider, d, job_id, &proof).await?;
        proof
            .output_hash()
            .ok_or_else(|| RunError::Chain(format!("job {job_id}'s proof has no receipts")))?
    } else {
        settlement_on_chain(provider, d, job_id).await?.1.1
    };
    let actual = sha256(archive);
    if actual != expected {
        return Err(RunError::Mismatch {
            expected,
            actual,
            kept: None,
        });
    }
    Ok(actual)
}

/// Where a downloaded archive that does not match the chain is kept: it is
/// evidence against the hub that served it.
fn keep_evidence(job_id: B256, archive: &[u8]) -> Option<PathBuf> {
    let dir = PathBuf::from("fog-evidence");
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(format!("{job_id}-{}.tar", sha256(archive)));
    std::fs::write(&path, archive).ok()?;
    Some(path)
}

/// Refuses an output directory that exists with anything in it.
fn check_out_empty(out: &std::path::Path) -> Result<(), RunError> {
    let used = out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true);
    if used {
        return Err(RunError::OutNotEmpty(out.to_owned()));
    }
    Ok(())
}

/// Downloads the job's output from the hub, checks its sha256 against
/// `expected` (what the settled receipts name; a mismatching archive is kept
/// as evidence), unpacks it into `out`, and returns the over-limit note if
/// the output was replaced by one.
async fn download_checked(
    ctx: &Context,
    job_id: B256,
    expected: B256,
    out: &std::path::Path,
) -> Result<Option<String>, RunError> {
    let archive = ctx.hub.output(job_id).await?;
    let actual = sha256(&archive);
    if actual != expected {
        return Err(RunError::Mismatch {
            expected,
            actual,
            kept: keep_evidence(job_id, &archive),
        });
    }
    unpack_archive(archive.as_slice(), out)?;
    Ok(
        std::fs::read_to_string(out.join(fog_protocol::output::OVER_LIMIT_MARKER))
            .ok()
            .map(|note| note.trim_end().to_owned()),
    )
}

/// Downloads a settled job's output, checks it against the chain, unpacks it into `out`.
pub async fn fetch_verified(
    ctx: &Context,
    job_id: B256,
    out: &std::path::Path,
) -> Result<Verified, RunError> {
    check_out_empty(out)?;
    let (settle_tx, (miners, output_hash, commission, refund)) = settled(ctx, job_id).await?;
    let over_limit = download_checked(ctx, job_id, output_hash, out).await?;
    Ok(Verified {
        output_hash,
        out: out.to_owned(),
        settle_tx,
        miners,
        hub_commission: commission,
        refund,
        over_limit,
    })
}

/// A batched job's output, checked against the chain: the hub's proof puts
/// the job's leaf in an epoch whose hash the chain stores, the leaf commits
/// to the job's receipts, and the archive's hash is their output hash.
pub async fn fetch_verified_batched(
    ctx: &Context,
    job_id: B256,
    out: &std::path::Path,
) -> Result<Verified, RunError> {
    check_out_empty(out)?;
    let proof = ctx.hub.proof(job_id).await?;
    check_proof(&ctx.provider, &ctx.deployment, job_id, &proof).await?;
    let output_hash = proof
        .output_hash()
        .ok_or_else(|| RunError::Chain(format!("job {job_id}'s proof has no receipts")))?;
    let status = ctx.hub.status(job_id).await?;
    let receipts = proof.receipts.clone();
    let over_limit = download_checked(ctx, job_id, output_hash, out).await?;
    let miners: Vec<Payment> = receipts
        .iter()
        .map(|r| Payment {
            miner: r.payload.miner,
            amount: r.payload.amountCharged,
        })
        .collect();
    let charged: U256 = miners.iter().map(|p| p.amount).sum();
    let total = U256::from(proof.leaf.total);
    Ok(Verified {
        output_hash,
        out: out.to_owned(),
        settle_tx: status.summary.settlement.tx.unwrap_or_default(),
        miners,
        hub_commission: total.saturating_sub(charged),
        refund: status.spec.maxPayment.saturating_sub(total),
        over_limit,
    })
}

/// Checks a batched job's proof: the leaf is in the epoch's tree and commits
/// to the receipts, which are signed and agree, and the epoch is the one the
/// chain stores.
pub async fn check_proof(
    provider: &DynProvider,
    d: &Deployment,
    job_id: B256,
    proof: &fog_protocol::batch::JobProof,
) -> Result<(), RunError> {
    use fog_protocol::contracts::batch_settlement::BatchSettlement;
    let on_chain = BatchSettlement::new(d.batch, provider)
        .epochHash(proof.epoch.hub, proof.epoch.index)
        .call()
        .await
        .map_err(chain)?;
    if !proof.verify(&d.domain())
        || on_chain != proof.epoch.stored_hash()
        || proof.leaf.jobId != job_id
    {
        return Err(RunError::Chain(format!(
            "the hub's proof for job {job_id} does not match epoch {} on chain",
            proof.epoch.index
        )));
    }
    Ok(())
}

/// Takes back the tokens of `job_id`'s escrow once its deadline has passed
/// unsettled. Needs only the chain and the buyer's key (in `provider`): the
/// hub may be gone.
pub async fn refund(
    provider: &DynProvider,
    d: &Deployment,
    buyer: Address,
    job_id: B256,
) -> Result<(U256, B256), RunError> {
    let escrow = crate::jobs::escrow_of(provider, d, job_id).await?;
    let chain_now = crate::ops::chain_time(provider).await?;
    crate::jobs::check_refundable(job_id, &escrow, buyer, chain_now)?;
    let receipt = confirmed(
        "the refund",
        JobEscrow::new(d.escrow, provider)
            .refund(job_id)
            .send()
            .await,
    )
    .await?;
    Ok((escrow.locked, receipt.transaction_hash))
}

async fn open_escrow(
    ctx: &Context,
    spec: &JobSpec,
    chain_now: u64,
    salt: B256,
) -> Result<(B256, B256), RunError> {
    let d = &ctx.deployment;
    let token = FogToken::new(d.token, &ctx.provider);
    let escrow = JobEscrow::new(d.escrow, &ctx.provider);
    let owner = ctx.key.address();
    let balance = token.balanceOf(owner).call().await.map_err(chain)?;
    if balance < spec.maxPayment {
        return Err(RunError::Chain(format!(
            "{owner} holds {}, less than the {} to lock: get tokens (`fog token transfer` from a holder; \
             on a devnet `fog devnet faucet`) or lower --max-price",
            crate::ops::fog(balance),
            crate::ops::fog(spec.maxPayment)
        )));
    }
    let permit_deadline = chain_now + 3_600;
    let (v, r, s) = crate::ops::sign_permit(
        &token,
        d.chain_id,
        &ctx.key,
        d.escrow,
        spec.maxPayment,
        permit_deadline,
    )
    .await
    .map_err(|e| RunError::Chain(e.to_string()))?;
    let receipt = confirmed(
        "opening the escrow",
        escrow
            .openWithPermit(
                salt,
                ctx.hub_address,
                spec.spec_hash(),
                spec.deadline,
                spec.replicas,
                spec.maxPayment,
                spec.maxDurationSecs,
                U256::from(permit_deadline),
                v,
                r,
                s,
            )
            .send()
            .await,
    )
    .await?;
    let job_id = escrow.jobIdFor(owner, salt).call().await.map_err(chain)?;
    Ok((job_id, receipt.transaction_hash))
}

/// Miners paid, the output hash on the receipts, the hub's commission, the buyer's refund.
pub type Settlement = (Vec<Payment>, B256, U256, U256);

/// Waits for a sent transaction and insists that it succeeded.
async fn confirmed(
    what: &str,
    sent: Result<
        alloy::providers::PendingTransactionBuilder<alloy::network::Ethereum>,
        alloy::contract::Error,
    >,
) -> Result<alloy::rpc::types::TransactionReceipt, RunError> {
    let receipt = sent
        .map_err(|e| {
            RunError::Chain(match fog_protocol::contracts::refusal(&e) {
                Some(reason) => format!("{what}: the contract refuses: {reason}"),
                None => format!("{what}: {e}"),
            })
        })?
        .get_receipt()
        .await
        .map_err(|e| RunError::Chain(format!("{what}: {e}")))?;
    if !receipt.status() {
        return Err(RunError::Chain(format!(
            "{what} reverted ({})",
            receipt.transaction_hash
        )));
    }
    Ok(receipt)
}

/// Reads what the settlement transaction emitted: each receipt (evidence on
/// chain) and the split of the money.
pub async fn read_settlement(
    provider: &DynProvider,
    d: &Deployment,
    job_id: B256,
    tx: B256,
) -> Result<Settlement, RunError> {
    let receipt = provider
        .get_transaction_receipt(tx)
        .await
        .map_err(chain)?
        .ok_or_else(|| RunError::Chain(format!("settlement transaction {tx} not found")))?;
    let mut miners = Vec::new();
    let mut output = None;
    let mut split = None;
    let mut hashes = Vec::new();
    for log in receipt.inner.logs() {
        if log.address() != d.escrow {
            continue;
        }
        if let Ok(settled) = log.log_decode::<JobEscrow::ReceiptSettled>() {
            let r = &settled.inner.data;
            if r.jobId == job_id {
                hashes.push(r.receiptHash);
                miners.push(Payment {
                    miner: r.receipt.miner,
                    amount: r.receipt.amountCharged,
                });
                output = Some(r.receipt.outputHash);
            }
        } else if let Ok(done) = log.log_decode::<JobEscrow::JobSettled>()
            && done.inner.data.jobId == job_id
        {
            split = Some((done.inner.data.hubCommission, done.inner.data.buyerRefund));
        }
    }
    let output = output
        .ok_or_else(|| RunError::Chain(format!("{tx} settled no receipt of job {job_id}")))?;
    let (commission, refund) =
        split.ok_or_else(|| RunError::Chain(format!("{tx} did not settle job {job_id}")))?;
    // The receipts in the events are the ones the escrow committed to.
    let evidence = JobEscrow::new(d.escrow, provider)
        .evidence(job_id)
        .call()
        .await
        .map_err(chain)?;
    if evidence != alloy::primitives::keccak256(hashes.concat()) {
        return Err(RunError::Chain(format!(
            "the receipts {tx} emitted for job {job_id} do not open the evidence the escrow keeps"
        )));
    }
    Ok((miners, output, commission, refund))
}

/// Parses `512M`, `2G`, `1024` (bytes) style sizes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 512M or 2G"))?;
    let factor: u64 = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KI" | "KIB" => 1 << 10,
        "M" | "MB" | "MI" | "MIB" => 1 << 20,
        "G" | "GB" | "GI" | "GIB" => 1 << 30,
        "T" | "TB" | "TI" | "TIB" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}: use K, M, G or T"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses a token amount in whole tokens (`1.5`) to base units (18 decimals).
pub fn parse_tokens(text: &str) -> Result<U256, String> {
    use alloy::primitives::utils::{ParseUnits, parse_units};
    match parse_units(text.trim(), 18) {
        Ok(ParseUnits::U256(amount)) => Ok(amount),
        Ok(ParseUnits::I256(_)) => Err(format!("{text:?} is negative")),
        Err(e) => Err(format!("{text:?} is not a token amount such as 1.5: {e}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_and_amounts_parse_or_say_why_not() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("-1M").unwrap_err().contains("not a size"));
        assert!(parse_size("3X").unwrap_err().contains("unknown size unit"));
        assert!(
            parse_size("99999999999T")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            parse_tokens("1.5").unwrap(),
            U256::from(15u64) * U256::from(10u64).pow(U256::from(17u64))
        );
        assert!(
            parse_tokens("lots")
                .unwrap_err()
                .contains("not a token amount")
        );
        assert!(parse_tokens("-1").is_err());
    }
}
