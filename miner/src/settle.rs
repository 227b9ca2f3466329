//! A miner's own settlement: every receipt the agent returns is kept on disk
//! with the hub's signed assignment, so that the miner can settle the job
//! itself (`fog-miner settle JOB`) when the hub does not. The escrow accepts
//! a settlement from anyone holding the signatures, and pays the miner
//! directly.
//!
//! A job with k > 1 replicas settles only on k agreeing receipts; a miner
//! holds just its own, so it can settle by itself only single-replica jobs.
//!
//! `fog-miner run` also does it unasked ([`watch`]): a kept receipt whose job
//! the chain still shows open after the configured window is settled by the
//! miner; a receipt whose job is over (settled, refunded, past its deadline)
//! is moved to `receipts/done/`, where it stays as the miner's own record.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::network::EthereumWallet;
use alloy::providers::{Provider, ProviderBuilder};
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::{EscrowStatus, settlement_entry};
use fog_protocol::deploy::Deployment;
use fog_protocol::{B256, PrivateKeySigner, SignedAssignment, SignedReceipt};
use serde::{Deserialize, Serialize};

/// A returned receipt with what it takes to settle it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeptReceipt {
    pub assignment: SignedAssignment,
    pub receipt: SignedReceipt,
    /// The job's replica count (k).
    pub replicas: u16,
    /// A batched job's buyer authorisation (docs/settlement.md): the job has
    /// no escrow, and the miner claims it from the batch contract itself when
    /// no epoch of the hub pays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<fog_protocol::batch::SignedJobAuth>,
}

/// Why a settlement did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(
        "job {job} has {k} replicas: it settles only on {k} agreeing receipts, and this miner holds its own alone; the hub (or the other miners) must settle it"
    )]
    NeedsPeers { job: B256, k: u16 },
    #[error("job {0} is already settled: the escrow paid this miner")]
    AlreadySettled(B256),
    #[error("job {0}'s escrow was refunded to the buyer: its deadline passed unsettled")]
    Refunded(B256),
    #[error("no escrow is open for job {0}")]
    NoEscrow(B256),
    #[error("chain: {0}")]
    Chain(String),
}

/// Where the receipt of `job` is kept under the miner's work directory.
pub fn receipt_path(work_dir: &Path, job: B256) -> PathBuf {
    work_dir.join("receipts").join(format!("{job}.json"))
}

/// Keeps a receipt (written to a temporary file, then renamed into place).
pub fn keep(work_dir: &Path, kept: &KeptReceipt) -> Result<PathBuf, SettleError> {
    let path = receipt_path(work_dir, kept.receipt.payload.jobId);
    let file_err = |reason: String| SettleError::File {
        path: path.clone(),
        reason,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_err(e.to_string()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(kept).map_err(|e| file_err(e.to_string()))?;
    std::fs::write(&tmp, json).map_err(|e| file_err(e.to_string()))?;
    std::fs::rename(&tmp, &path).map_err(|e| file_err(e.to_string()))?;
    Ok(path)
}

/// Reads a kept receipt.
pub fn load(work_dir: &Path, job: B256) -> Result<KeptReceipt, SettleError> {
    let path = receipt_path(work_dir, job);
    let text = std::fs::read_to_string(&path).map_err(|e| SettleError::File {
        path: path.clone(),
        reason: format!("{e} (this miner returned no receipt for job {job})"),
    })?;
    serde_json::from_str(&text).map_err(|e| SettleError::File {
        path,
        reason: e.to_string(),
    })
}

/// Settles `kept` on chain with `key` paying the gas; returns the transaction.
pub async fn settle(
    kept: &KeptReceipt,
    deployment: &Deployment,
    rpc_url: &str,
    key: PrivateKeySigner,
) -> Result<B256, SettleError> {
    let job = kept.receipt.payload.jobId;
    if kept.replicas > 1 {
        return Err(SettleError::NeedsPeers {
            job,
            k: kept.replicas,
        });
    }
    let url = rpc_url
        .parse()
        .map_err(|e| SettleError::Chain(format!("rpc url {rpc_url:?}: {e}")))?;
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key))
        .connect_http(url)
        .erased();
    let escrow = JobEscrow::new(deployment.escrow, &provider);
    let state = escrow
        .getJob(job)
        .call()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?;
    match EscrowStatus::from_code(state.status) {
        EscrowStatus::None => return Err(SettleError::NoEscrow(job)),
        EscrowStatus::Settled => return Err(SettleError::AlreadySettled(job)),
        EscrowStatus::Refunded => return Err(SettleError::Refunded(job)),
        EscrowStatus::Open => {}
    }
    let call = escrow.settle(job, vec![settlement_entry(&kept.receipt, &kept.assignment)]);
    send_checked(call, "the settlement").await
}

/// What [`settle_if_due`] did with one kept receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still inside the hub's window (or waiting for peers): left alone.
    Waiting,
    /// Settled by this miner, in this transaction.
    Settled(B256),
    /// A batched job claimed by this miner (payable after the proof window).
    Claimed(B256),
    /// The job is over on chain; the receipt was moved to `receipts/done/`.
    Done(String),
}

/// Kept receipts of jobs not yet known to be over, oldest first.
pub fn kept_receipts(work_dir: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let Ok(entries) = std::fs::read_dir(work_dir.join("receipts")) else {
        return Vec::new();
    };
    let mut found: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter_map(|p| {
            let at = std::fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            Some((p, at))
        })
        .collect();
    found.sort_by_key(|(_, at)| *at);
    found
}

fn retire(path: &Path, why: String) -> Result<Outcome, SettleError> {
    let file_err = |reason: String| SettleError::File {
        path: path.to_owned(),
        reason,
    };
    let dir = path
        .parent()
        .ok_or_else(|| file_err("no parent directory".into()))?
        .join("done");
    std::fs::create_dir_all(&dir).map_err(|e| file_err(e.to_string()))?;
    let name = path
        .file_name()
        .ok_or_else(|| file_err("no file name".into()))?;
    std::fs::rename(path, dir.join(name)).map_err(|e| file_err(e.to_string()))?;
    Ok(Outcome::Done(why))
}

/// Looks at one kept receipt: retires it when its job is over on chain,
/// settles it (and retires it) when the hub has let `window` pass, waits
/// otherwise. A receipt still inside its window costs no chain read: the
/// hub usually settles well within it, and the first look after it retires
/// the receipt. `chain` reads; `rpc_url` and `key` send a settlement.
#[allow(clippy::too_many_arguments)] // one receipt's whole context, handed over once
pub async fn settle_if_due(
    path: &Path,
    kept_at: std::time::SystemTime,
    window: Duration,
    chain: &impl Provider,
    deployment: &Deployment,
    rpc_url: &str,
    key: &PrivateKeySigner,
    hub_url: Option<&str>,
) -> Result<Outcome, SettleError> {
    if kept_at.elapsed().unwrap_or_default() < window {
        return Ok(Outcome::Waiting);
    }
    let text = std::fs::read_to_string(path).map_err(|e| SettleError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let kept: KeptReceipt = serde_json::from_str(&text).map_err(|e| SettleError::File {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if kept.auth.is_some() {
        return claim_if_due(path, &kept, chain, deployment, rpc_url, key, hub_url).await;
    }
    let job = kept.receipt.payload.jobId;
    let state = JobEscrow::new(deployment.escrow, chain)
        .getJob(job)
        .call()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?;
    let now = chain
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?
        .map_or(0, |b| b.header.timestamp);
    match EscrowStatus::from_code(state.status) {
        EscrowStatus::Settled => return retire(path, format!("job {job} is settled")),
        EscrowStatus::Refunded => return retire(path, format!("job {job} was refunded")),
        EscrowStatus::None => return retire(path, format!("no escrow exists for job {job}")),
        EscrowStatus::Open if now > state.deadline.to::<u64>() => {
            return retire(
                path,
                format!("job {job}'s deadline passed unsettled: it can only be refunded"),
            );
        }
        EscrowStatus::Open => {}
    }
    if kept.replicas > 1 {
        // Only the hub (holding all k receipts) can settle it: wait for that.
        return Ok(Outcome::Waiting);
    }
    let tx = settle(&kept, deployment, rpc_url, key.clone()).await?;
    retire(path, format!("settled by this miner in {tx}"))?;
    Ok(Outcome::Settled(tx))
}

/// A batched job's receipt (docs/settlement.md): retired once the hub shows
/// the job in an epoch whose hash the chain stores (the miner was paid
/// there); otherwise, once the job's deadline has passed, claimed from the
/// batch contract with the buyer's authorisation, and paid out after the
/// proof window. The hub need not be up for any of it.
async fn claim_if_due(
    path: &Path,
    kept: &KeptReceipt,
    chain: &impl Provider,
    deployment: &Deployment,
    rpc_url: &str,
    key: &PrivateKeySigner,
    hub_url: Option<&str>,
) -> Result<Outcome, SettleError> {
    use fog_protocol::contracts::batch_settlement::BatchSettlement;
    let chain_err = |e: alloy::contract::Error| SettleError::Chain(e.to_string());
    let job = kept.receipt.payload.jobId;
    let Some(auth) = kept.auth.clone() else {
        return Ok(Outcome::Waiting);
    };
    let batch = BatchSettlement::new(deployment.batch, chain);
    if let Some(hub_url) = hub_url
        && let Some(proof) = hub_proof(hub_url, job).await
        && proof.verify(&deployment.domain())
        && proof.leaf.jobId == job
        && batch
            .epochHash(proof.epoch.hub, proof.epoch.index)
            .call()
            .await
            .map_err(chain_err)?
            == proof.epoch.stored_hash()
        && proof
            .receipts
            .iter()
            .any(|r| r.payload == kept.receipt.payload)
    {
        return retire(
            path,
            format!("job {job} was paid in epoch {}", proof.epoch.index),
        );
    }
    let now = chain
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?
        .map_or(0, |b| b.header.timestamp);
    let deadline = auth.payload.deadline;
    if now <= deadline {
        // The hub may still commit it.
        return Ok(Outcome::Waiting);
    }
    let params = batch.params().call().await.map_err(chain_err)?;
    let claim = batch.claimOf(job).call().await.map_err(chain_err)?;
    let url = rpc_url
        .parse()
        .map_err(|e| SettleError::Chain(format!("rpc url {rpc_url:?}: {e}")))?;
    let sender = ProviderBuilder::new()
        .wallet(EthereumWallet::from(key.clone()))
        .connect_http(url)
        .erased();
    let batch_send = BatchSettlement::new(deployment.batch, &sender);
    let r = &kept.receipt.payload;
    // IBatchSettlement.ClaimStatus: 0 None, 1 Pending, 2 Paid, 3 Void.
    match claim.status {
        0 if kept.replicas > 1 => {
            if now > deadline + u64::from(params.claimPeriod) {
                return retire(
                    path,
                    format!(
                        "job {job} needs {} receipts to claim; its claim period is over",
                        kept.replicas
                    ),
                );
            }
            Ok(Outcome::Waiting)
        }
        0 if now > deadline + u64::from(params.claimPeriod) => {
            retire(path, format!("job {job}'s claim period is over"))
        }
        0 => {
            let job_data = fog_protocol::batch::BatchedJob {
                buyer: recover_buyer(&auth, deployment)?,
                auth,
                signer_version: 0,
                fee_bps: 0,
                receipts: vec![(kept.assignment.clone(), kept.receipt.clone())],
            };
            let versioned = signer_version_of(chain, deployment, kept).await?;
            let job_data = fog_protocol::batch::BatchedJob {
                signer_version: versioned,
                ..job_data
            };
            let call =
                batch_send.forceClaim(fog_protocol::batch::encode_job(job_data.to_chain(vec![])));
            let tx = send_checked(call, "the claim").await?;
            Ok(Outcome::Claimed(tx))
        }
        1 if now >= claim.payableAt.to::<u64>() => {
            let call = batch_send.payClaim(job, vec![r.miner], vec![r.amountCharged]);
            let tx = send_checked(call, "the claim's payment").await?;
            retire(path, format!("job {job} claimed and paid in {tx}"))
        }
        1 => Ok(Outcome::Waiting),
        2 => retire(path, format!("job {job}'s claim was paid")),
        _ => retire(
            path,
            format!("job {job} was shown paid in an epoch: its claim is void"),
        ),
    }
}

/// The buyer who signed a JobAuth, under this deployment's batch domain.
fn recover_buyer(
    auth: &fog_protocol::batch::SignedJobAuth,
    deployment: &Deployment,
) -> Result<fog_protocol::Address, SettleError> {
    auth.signer(&deployment.batch_domain())
        .map_err(|e| SettleError::Chain(format!("the job's authorisation: {e}")))
}

/// The registry's version of the signer that signed this miner's assignment.
async fn signer_version_of(
    chain: &impl Provider,
    deployment: &Deployment,
    kept: &KeptReceipt,
) -> Result<u16, SettleError> {
    use fog_protocol::contracts::hub_registry::HubRegistry;
    let registry = HubRegistry::new(deployment.registry, chain);
    let hub = kept.assignment.payload.hub;
    let info = registry
        .hubInfo(hub)
        .call()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?;
    let signer = kept
        .assignment
        .signer(&deployment.domain())
        .map_err(|e| SettleError::Chain(format!("the assignment: {e}")))?;
    for version in (0..=info.signerVersion).rev() {
        let at = registry
            .signerOf(hub, version)
            .call()
            .await
            .map_err(|e| SettleError::Chain(e.to_string()))?;
        if at == signer {
            return Ok(version);
        }
    }
    Err(SettleError::Chain(format!(
        "the assignment's signer {signer} was never hub {hub}'s"
    )))
}

/// Simulates, sends and waits for a call (escrow or batch contract); the
/// contract's refusal decoded before any gas is spent.
async fn send_checked<P: Provider, C: alloy::sol_types::SolCall>(
    call: alloy::contract::SolCallBuilder<P, C>,
    what: &str,
) -> Result<B256, SettleError> {
    call.call().await.map_err(|e| {
        SettleError::Chain(format!(
            "the contract refuses {what}: {}",
            fog_protocol::contracts::refusal(&e).unwrap_or_else(|| e.to_string())
        ))
    })?;
    let receipt = call
        .send()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?
        .get_receipt()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?;
    if !receipt.status() {
        return Err(SettleError::Chain(format!(
            "{what} reverted ({})",
            receipt.transaction_hash
        )));
    }
    Ok(receipt.transaction_hash)
}

/// The hub's public proof of a batched job, if it has one (any failure: none).
async fn hub_proof(hub_url: &str, job: B256) -> Option<fog_protocol::batch::JobProof> {
    let url = format!("{}/v1/proofs/{job}", hub_url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// Until `shutdown`: every so often, settles this miner's receipts that the
/// hub left unsettled for `window`, and retires those whose jobs are over;
/// batched jobs no epoch paid are claimed after their deadline.
#[allow(clippy::too_many_arguments)] // the watcher's whole configuration, handed over once
pub async fn watch(
    work_dir: PathBuf,
    deployment: Deployment,
    rpc_url: String,
    key: PrivateKeySigner,
    window: Duration,
    hub_url: Option<String>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let every = (window / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let chain = match rpc_url.parse() {
        Ok(url) => ProviderBuilder::new().connect_http(url),
        Err(e) => {
            tracing::error!(rpc_url, error = %e, "self-settlement is off: the rpc url is not a URL");
            return;
        }
    };
    loop {
        for (path, kept_at) in kept_receipts(&work_dir) {
            match settle_if_due(
                &path,
                kept_at,
                window,
                &chain,
                &deployment,
                &rpc_url,
                &key,
                hub_url.as_deref(),
            )
            .await
            {
                Ok(Outcome::Waiting) => {}
                Ok(Outcome::Settled(tx)) => {
                    tracing::info!(receipt = %path.display(), %tx, "the hub did not settle in time: settled it ourselves");
                }
                Ok(Outcome::Claimed(tx)) => {
                    tracing::info!(receipt = %path.display(), %tx, "no epoch paid the job by its deadline: claimed it ourselves");
                }
                Ok(Outcome::Done(why)) => {
                    tracing::debug!(receipt = %path.display(), why, "receipt retired");
                }
                Err(e) => {
                    tracing::warn!(receipt = %path.display(), error = %e, "self-settlement will be retried");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
