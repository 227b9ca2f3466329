//! A miner's own settlement: every receipt the agent returns is kept on disk
//! with the hub's signed assignment, so that the miner can settle the job
//! itself (`fog-miner settle JOB`) when the hub does not. The escrow accepts
//! a settlement from anyone holding the signatures, and pays the miner
//! directly.
//!
//! A job with k > 1 replicas settles only on k agreeing receipts; a miner
//! holds just its own, so it can settle by itself only single-replica jobs.

use std::path::{Path, PathBuf};

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
    call.call()
        .await
        .map_err(|e| SettleError::Chain(format!("the escrow refuses the settlement: {e}")))?;
    let receipt = call
        .send()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?
        .get_receipt()
        .await
        .map_err(|e| SettleError::Chain(e.to_string()))?;
    if !receipt.status() {
        return Err(SettleError::Chain(format!(
            "the settlement reverted ({})",
            receipt.transaction_hash
        )));
    }
    Ok(receipt.transaction_hash)
}
