//! Settlement on chain: every completed job's agreeing receipts, with the
//! hub's assignment signatures, go to `JobEscrow.settle`, which pays the
//! miners directly, the hub its commission, and the buyer the change. A job
//! that failed or was cancelled is given up with `JobEscrow.release`: its
//! buyer gets the whole escrow back at once instead of at the deadline.
//!
//! Restart-safe and idempotent: the transaction hash is stored as `pending`
//! before the hub waits for it; before sending, the escrow is read, and a job
//! the chain already shows settled (by this hub before a crash, or by a
//! miner with `fog-miner settle`) is recorded as settled, not sent again; a
//! job the buyer refunded is recorded as refunded. Chain errors are retried
//! with exponential backoff; a settlement the escrow refuses is recorded as
//! failed with the reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alloy::network::EthereumWallet;
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::{EscrowStatus, settlement_entry};
use fog_protocol::{Address, Assignment, B256, PrivateKeySigner, SignedAssignment};

use crate::chain::Chain;
use crate::metrics::Metrics;
use crate::store::{AssignmentState, JobRow, Settlement, Store, StoreError};

/// Why one settlement attempt did not finish.
#[derive(Debug, thiserror::Error)]
enum SettleError {
    /// Worth trying again later (RPC down, transaction not yet mined).
    #[error("{0}")]
    Transient(String),
    /// The escrow refuses it: record and stop.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A simulated call's answer: a revert is the escrow refusing (recorded, not
/// retried), anything else is the chain being unavailable (retried).
fn simulate(result: &Result<(), alloy::contract::Error>) -> Result<(), SettleError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) => Err(match fog_protocol::contracts::refusal(e) {
            Some(reason) => SettleError::Refused(reason),
            None => SettleError::Transient(e.to_string()),
        }),
    }
}

/// Settles completed jobs, one at a time, in the background.
#[derive(Debug)]
pub struct Settler {
    store: Store,
    chain: Chain,
    sender: DynProvider,
    /// Who pays the settlement gas (the signer key): the account to fund.
    payer: Address,
    hub: Address,
    metrics: Metrics,
    /// Per job: failed attempts so far and when to try again.
    backoff: HashMap<B256, (u32, Instant)>,
    /// The registry's version of this hub's signer, for the leaves of batched
    /// jobs (the signer is this process's key, so it cannot change under it).
    signer_version: u16,
    /// The hub's commission, charged on batched jobs.
    fee_bps: u16,
}

/// How often the settler looks for completed jobs.
const POLL: Duration = Duration::from_millis(500);
/// How long to wait for a sent settlement to be mined before looking again.
const MINING_WAIT: Duration = Duration::from_secs(30);

impl Settler {
    /// `key` pays the gas (the hub's signer key; it needs ETH on the chain).
    pub fn new(
        store: Store,
        chain: Chain,
        rpc_url: reqwest::Url,
        key: PrivateKeySigner,
        hub: Address,
        metrics: Metrics,
    ) -> Self {
        let payer = key.address();
        // Nonces come from the node's pending count at each send, never from
        // a local cache: a send that failed, or a transaction a restarted
        // node lost, must not leave a gap that stalls every later settlement.
        // One settlement is in flight at a time, so the count is exact.
        let sender = ProviderBuilder::new()
            .with_simple_nonce_management()
            .wallet(EthereumWallet::from(key))
            .connect_http(rpc_url)
            .erased();
        Self {
            store,
            chain,
            sender,
            payer,
            hub,
            metrics,
            backoff: HashMap::new(),
            signer_version: 0,
            fee_bps: 0,
        }
    }

    /// The registry's version of the hub's signer (batched jobs' leaves name
    /// it) and the hub's commission.
    pub fn with_batch_terms(mut self, signer_version: u16, fee_bps: u16) -> Self {
        self.signer_version = signer_version;
        self.fee_bps = fee_bps;
        self
    }

    pub async fn run(mut self) {
        loop {
            if let Err(e) = self.round().await {
                tracing::error!(error = %e, "settlement round failed");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn round(&mut self) -> Result<(), StoreError> {
        let mut due = self.store.jobs_to_settle(50).await?;
        due.extend(self.store.jobs_to_release(50).await?);
        for job in due {
            if self
                .backoff
                .get(&job.job_id)
                .is_some_and(|(_, at)| *at > Instant::now())
            {
                continue;
            }
            match self.settle(&job).await {
                Ok(()) => {
                    self.backoff.remove(&job.job_id);
                }
                Err(SettleError::Store(e)) => return Err(e),
                Err(SettleError::Refused(why)) => {
                    tracing::error!(job = %job.job_id, why, "the escrow refused the settlement");
                    self.store
                        .set_settlement(job.job_id, Settlement::Failed, None, Some(&why))
                        .await?;
                    self.metrics.settlements_failed.inc();
                    self.backoff.remove(&job.job_id);
                }
                Err(SettleError::Transient(why)) => {
                    let (tries, _) = self
                        .backoff
                        .get(&job.job_id)
                        .copied()
                        .unwrap_or((0, Instant::now()));
                    // 1 s, 2 s, 4 s … up to 5 minutes between attempts.
                    let delay =
                        Duration::from_secs(1u64 << tries.min(8)).min(Duration::from_secs(300));
                    tracing::warn!(job = %job.job_id, why, payer = %self.payer, retry_in = ?delay, "settlement will be retried");
                    self.backoff
                        .insert(job.job_id, (tries + 1, Instant::now() + delay));
                }
            }
        }
        Ok(())
    }

    async fn settle(&self, job: &JobRow) -> Result<(), SettleError> {
        if job.auth.is_some() {
            return self.settle_batched(job).await;
        }
        let job_id = job.job_id;
        // A job with agreed receipts (completed, or cancelled mid-run) is
        // settled on them; one without (failed, cancelled early) is released.
        let releasing = job.output_hash.is_none();
        // What the chain says first: never send a settlement twice.
        let status = self
            .chain
            .escrow_of(job_id)
            .await
            .map_err(|e| SettleError::Transient(e.to_string()))?
            .map(|(_, status)| status);
        match status {
            None => return Err(SettleError::Refused("the escrow has no such job".into())),
            Some(EscrowStatus::Settled) => {
                self.store
                    .set_settlement(job_id, Settlement::Settled, None, None)
                    .await?;
                tracing::info!(job = %job_id, tx = ?job.settle_tx, "settled on chain");
                self.metrics.settlements.inc();
                return Ok(());
            }
            Some(EscrowStatus::Refunded) if releasing && job.settle_tx.is_some() => {
                self.store
                    .set_settlement(job_id, Settlement::Released, None, None)
                    .await?;
                tracing::info!(job = %job_id, tx = ?job.settle_tx, "escrow released to the buyer");
                return Ok(());
            }
            Some(EscrowStatus::Refunded) => {
                self.store
                    .set_settlement(
                        job_id,
                        Settlement::Refunded,
                        None,
                        Some("the buyer refunded the escrow first"),
                    )
                    .await?;
                return Ok(());
            }
            Some(_) => {}
        }
        if let Some(tx) = job.settle_tx {
            // Sent before (perhaps before a restart) and not yet seen settled:
            // wait for it rather than send another.
            match self.sender.get_transaction_receipt(tx).await {
                Ok(Some(receipt)) if !receipt.status() => {
                    return Err(SettleError::Refused(format!(
                        "settlement transaction {tx} reverted"
                    )));
                }
                Ok(Some(_)) => {
                    return Err(SettleError::Transient(
                        "mined; the escrow will show it settled".into(),
                    ));
                }
                Ok(None)
                    if job.updated_at + MINING_WAIT.as_secs() as i64
                        > i64::try_from(fog_protocol::clock::unix_now()).unwrap_or(i64::MAX) =>
                {
                    return Err(SettleError::Transient(format!(
                        "transaction {tx} not mined yet"
                    )));
                }
                // Dropped (e.g. the node restarted without it): send again below.
                Ok(None) => {}
                Err(e) => return Err(SettleError::Transient(e.to_string())),
            }
        }
        let escrow = JobEscrow::new(self.chain.escrow(), &self.sender);
        let pending = if releasing {
            let call = escrow.release(job_id);
            simulate(&call.call().await.map(|_| ()))?;
            call.send().await
        } else {
            let call = escrow.settle(job_id, self.entries(job).await?);
            // Simulate first: a refusal is reported with the escrow's reason and costs no gas.
            simulate(&call.call().await.map(|_| ()))?;
            call.send().await
        }
        .map_err(|e| SettleError::Transient(e.to_string()))?;
        let tx = *pending.tx_hash();
        self.store
            .set_settlement(job_id, Settlement::Pending, Some(tx), None)
            .await?;
        tracing::info!(job = %job_id, %tx, "settlement sent");
        let receipt = pending
            .with_timeout(Some(MINING_WAIT))
            .get_receipt()
            .await
            .map_err(|e| SettleError::Transient(format!("waiting for {tx}: {e}")))?;
        if !receipt.status() {
            return Err(SettleError::Refused(format!(
                "settlement transaction {tx} reverted"
            )));
        }
        if releasing {
            self.store
                .set_settlement(job_id, Settlement::Released, Some(tx), None)
                .await?;
            tracing::info!(job = %job_id, %tx, "escrow released to the buyer");
            return Ok(());
        }
        self.store
            .set_settlement(job_id, Settlement::Settled, Some(tx), None)
            .await?;
        self.metrics.settlements.inc();
        tracing::info!(job = %job_id, %tx, gas = receipt.gas_used, "settled on chain");
        Ok(())
    }

    /// A batched job (docs/settlement.md): nothing was locked for it, so one
    /// without agreed receipts is simply closed; one with them waits for an
    /// epoch (`crate::epochs`), and is settled when its epoch is committed, or
    /// given up to its miners when its deadline comes first.
    async fn settle_batched(&self, job: &JobRow) -> Result<(), SettleError> {
        let job_id = job.job_id;
        let Some(auth) = job.auth.clone() else {
            return Err(SettleError::Refused("not a batched job".into()));
        };
        if job.output_hash.is_none() {
            self.store
                .set_settlement(
                    job_id,
                    Settlement::Released,
                    None,
                    Some("batched: nothing was charged"),
                )
                .await?;
            return Ok(());
        }
        let Some(row) = self.store.batch_job(job_id).await? else {
            let batched = fog_protocol::batch::BatchedJob {
                buyer: job.buyer,
                auth,
                signer_version: self.signer_version,
                fee_bps: self.chain_fee_bps(job),
                receipts: self.agreeing(job).await?,
            };
            match self.store.add_batch_job(&batched).await {
                Ok(()) | Err(StoreError::JobExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
            self.store
                .set_settlement(job_id, Settlement::Pending, None, None)
                .await?;
            tracing::info!(job = %job_id, "waiting for the next epoch");
            return Ok(());
        };
        match (row.state.as_str(), row.place) {
            ("committed", Some((epoch, _))) => {
                let tx = self.store.epoch(epoch).await?.map(|e| e.tx);
                self.store
                    .set_settlement(job_id, Settlement::Settled, tx, None)
                    .await?;
                self.metrics.settlements.inc();
                tracing::info!(job = %job_id, epoch, "settled in an epoch");
            }
            ("expired", _) => {
                self.store
                    .set_settlement(
                        job_id,
                        Settlement::Failed,
                        None,
                        Some("its deadline came before an epoch: its miners claim it on chain"),
                    )
                    .await?;
            }
            ("unfunded", _) => {
                self.store
                    .set_settlement(
                        job_id,
                        Settlement::Failed,
                        None,
                        Some("the buyer's batch account could not pay it"),
                    )
                    .await?;
            }
            // Still waiting for an epoch.
            _ => {}
        }
        Ok(())
    }

    /// The commission a batched job pays: the hub's, as the buyer accepted it.
    fn chain_fee_bps(&self, job: &JobRow) -> u16 {
        let accepted = job.auth.as_ref().map_or(0, |a| a.payload.maxFeeBps);
        self.fee_bps.min(accepted)
    }

    /// The k agreeing receipts, each with the hub's signed assignment.
    async fn agreeing(
        &self,
        job: &JobRow,
    ) -> Result<Vec<(SignedAssignment, fog_protocol::SignedReceipt)>, SettleError> {
        let k = usize::from(job.spec.replicas);
        let agreeing: Vec<_> = self
            .store
            .assignments_of(job.job_id)
            .await?
            .into_iter()
            .filter(|a| a.state == AssignmentState::Finished)
            .filter_map(|a| {
                let receipt = a.receipt?;
                (Some(receipt.payload.outputHash) == job.output_hash).then(|| {
                    let assignment = SignedAssignment {
                        payload: Assignment {
                            jobId: job.job_id,
                            specHash: job.spec_hash,
                            hub: self.hub,
                            miner: a.miner,
                            maxCharge: a.max_charge,
                        },
                        signature: a.signature,
                    };
                    (assignment, receipt)
                })
            })
            .take(k)
            .collect();
        if agreeing.len() < k {
            return Err(SettleError::Refused(format!(
                "only {} of {k} agreeing receipts are stored",
                agreeing.len()
            )));
        }
        Ok(agreeing)
    }

    /// The k agreeing receipts in the form `JobEscrow.settle` takes.
    async fn entries(
        &self,
        job: &JobRow,
    ) -> Result<Vec<fog_protocol::contracts::job_escrow::IJobEscrow::SignedReceipt>, SettleError>
    {
        Ok(self
            .agreeing(job)
            .await?
            .iter()
            .map(|(assignment, receipt)| settlement_entry(receipt, assignment))
            .collect())
    }
}
