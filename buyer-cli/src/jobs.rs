//! `fog job list` and `fog job refund`: the buyer's jobs from its own journal,
//! the chain and the hub, merged, so that a job whose hub is down (or never
//! heard of it) is still shown and its money can still be taken back.
//!
//! The chain is the authority on money (the escrow's status and deadline);
//! the hub only adds how far the run got. Neither needs the other.

use alloy::primitives::{Address, B256, U256};
use alloy::providers::DynProvider;
use fog_protocol::api::{JobList, JobState};
use fog_protocol::contracts::EscrowStatus;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::deploy::Deployment;
use serde::Serialize;

use crate::journal::{Journal, LocalJob, LocalState};

/// Why the jobs could not be listed or refunded.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("the chain: {0}")]
    Chain(String),
    #[error("{0}")]
    Refused(String),
}

fn chain(e: impl std::fmt::Display) -> JobsError {
    JobsError::Chain(e.to_string())
}

/// One job as `fog job list` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRow {
    pub job_id: B256,
    /// How far this machine got ("opening", "opened", "submitted"); absent
    /// for jobs only the hub knows (opened from another machine).
    pub local: Option<LocalState>,
    /// The escrow's status on chain; absent when the chain was not asked.
    pub escrow: Option<EscrowStatus>,
    /// The hub's state; absent when the hub does not know the job or was not reached.
    pub hub: Option<JobState>,
    /// Locked in the escrow while it is open (token units).
    pub locked: Option<U256>,
    /// The escrow's deadline (unix seconds, chain time).
    pub deadline: Option<u64>,
    /// True when the escrow is open and its deadline has passed: `fog job refund` takes the money back.
    pub refundable: bool,
    /// Unix seconds; the journal's time if this machine opened the job, else the hub's.
    pub created_at: i64,
    pub hub_url: Option<String>,
}

/// What the chain says of one escrow.
#[derive(Clone, Copy, Debug)]
pub struct EscrowView {
    pub status: EscrowStatus,
    pub buyer: Address,
    pub locked: U256,
    pub deadline: u64,
}

/// Reads one escrow.
pub async fn escrow_of(
    provider: &DynProvider,
    d: &Deployment,
    job_id: B256,
) -> Result<EscrowView, JobsError> {
    let job = JobEscrow::new(d.escrow, provider)
        .getJob(job_id)
        .call()
        .await
        .map_err(chain)?;
    Ok(EscrowView {
        status: EscrowStatus::from_code(job.status),
        buyer: job.buyer,
        locked: U256::from(job.maxPayment),
        deadline: job.deadline.to::<u64>(),
    })
}

/// The journal's jobs of `buyer` on this deployment, merged with the hub's
/// page (if it answered) and each escrow's status on chain (if the chain
/// answered: `chain_now` is `None` when it did not). Newest first, at most `limit`.
pub async fn list(
    journal: &Journal,
    buyer: Address,
    d: &Deployment,
    provider: Option<(&DynProvider, u64)>,
    hub_page: Option<&JobList>,
    limit: usize,
) -> Result<Vec<JobRow>, JobsError> {
    let mine = |j: &LocalJob| j.buyer == buyer && j.chain_id == d.chain_id && j.escrow == d.escrow;
    let mut rows: Vec<JobRow> = journal
        .list()
        .into_iter()
        .filter(mine)
        .map(|j| JobRow {
            job_id: j.job_id,
            local: Some(j.state),
            escrow: None,
            hub: None,
            locked: None,
            deadline: Some(j.spec.deadline),
            refundable: false,
            created_at: i64::try_from(j.created_at).unwrap_or(i64::MAX),
            hub_url: Some(j.hub_url),
        })
        .collect();
    for summary in hub_page.map(|p| p.jobs.as_slice()).unwrap_or_default() {
        match rows.iter_mut().find(|r| r.job_id == summary.job_id) {
            Some(row) => row.hub = Some(summary.state),
            None => rows.push(JobRow {
                job_id: summary.job_id,
                local: None,
                escrow: None,
                hub: Some(summary.state),
                locked: None,
                deadline: None,
                refundable: false,
                created_at: summary.created_at,
                hub_url: None,
            }),
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    rows.truncate(limit);
    if let Some((provider, chain_now)) = provider {
        for row in &mut rows {
            let escrow = escrow_of(provider, d, row.job_id).await?;
            row.escrow = Some(escrow.status);
            if escrow.status != EscrowStatus::None {
                row.deadline = Some(escrow.deadline);
            }
            if escrow.status == EscrowStatus::Open {
                row.locked = Some(escrow.locked);
                row.refundable = chain_now > escrow.deadline;
            }
        }
    }
    Ok(rows)
}

/// Checks that the buyer may refund `job_id` now: its own open escrow, past its deadline.
pub fn check_refundable(
    job_id: B256,
    escrow: &EscrowView,
    buyer: Address,
    chain_now: u64,
) -> Result<(), JobsError> {
    match escrow.status {
        EscrowStatus::None => Err(JobsError::Refused(format!(
            "no escrow was opened for job {job_id}: no money is locked"
        ))),
        EscrowStatus::Settled => Err(JobsError::Refused(format!(
            "job {job_id} was settled: nothing to refund (fog job get {job_id} fetches its output)"
        ))),
        EscrowStatus::Refunded => Err(JobsError::Refused(format!(
            "job {job_id} was already refunded"
        ))),
        EscrowStatus::Open if escrow.buyer != buyer => Err(JobsError::Refused(format!(
            "job {job_id}'s escrow belongs to {}, not to you ({buyer})",
            escrow.buyer
        ))),
        EscrowStatus::Open if chain_now <= escrow.deadline => Err(JobsError::Refused(format!(
            "job {job_id}'s deadline {} has not passed (chain time {chain_now}, {} s to go); the hub may still settle or release it",
            escrow.deadline,
            escrow.deadline - chain_now
        ))),
        EscrowStatus::Open => Ok(()),
    }
}
