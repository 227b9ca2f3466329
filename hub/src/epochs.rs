//! The hub's side of the batched settlement path (docs/settlement.md):
//! completed batched jobs wait in the store; [`Epochs::commit_due`] commits
//! them as one epoch when the contract lets this hub commit again, records
//! each job's leaf, and serves proofs; [`Epochs::answer_challenges`] answers
//! every open challenge of this hub's epochs with the jobs behind the
//! challenged account — a hub that did not would lose its bond.
//!
//! Restart-safe: what is committed is read back from the chain's event and
//! recorded with every job's place in one database transaction; a job whose
//! deadline comes before it is committed is given up (its miners claim it).
//! [`Epochs::run`] repeats both duties with backoff on errors.

use std::time::Duration;

use alloy::providers::{DynProvider, Provider};
use fog_protocol::batch::{BatchedJob, EpochRef, JobProof, Ledger, MerkleTree, encode_jobs};
use fog_protocol::contracts::batch_settlement::{BatchSettlement, IBatchSettlement};
use fog_protocol::{Address, B256, U256};

use crate::store::{EpochRow, Store, StoreError};

/// Why an epoch duty did not finish.
#[derive(Debug, thiserror::Error)]
pub enum EpochError {
    #[error("the chain: {0}")]
    Chain(String),
    /// The contract refuses (decoded): the hub must look at it.
    #[error("BatchSettlement refuses {what}: {reason}")]
    Refused { what: &'static str, reason: String },
    #[error(
        "this hub is frozen in the batch contract (it failed a challenge): it can commit no more"
    )]
    Frozen,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("epoch {0}: {1}")]
    Inconsistent(u32, String),
}

fn chain(e: impl std::fmt::Display) -> EpochError {
    EpochError::Chain(e.to_string())
}

/// Most jobs in one epoch: keeps a commit (and a full answer) well inside a block.
pub const MAX_EPOCH_JOBS: u32 = 2_000;

/// The epoch duties of one hub.
#[derive(Debug, Clone)]
pub struct Epochs {
    store: Store,
    /// Signs with the hub's signer (who alone commits) and pays the gas.
    provider: DynProvider,
    batch: Address,
    hub: Address,
    /// Jobs whose deadline is this close are not committed any more: the
    /// commit must be mined before the deadline.
    margin_secs: u64,
    /// First block to look for challenges in.
    from_block: u64,
    /// Challenge + response windows: the least time between two commits
    /// (fixed in the contract at initialisation, read once).
    reopen_after: u64,
}

impl Epochs {
    /// The epoch duties of `hub`; reads the contract's (immutable) windows once.
    pub async fn new(
        store: Store,
        provider: DynProvider,
        batch: Address,
        hub: Address,
        from_block: u64,
    ) -> Result<Self, EpochError> {
        let params = BatchSettlement::new(batch, &provider)
            .params()
            .call()
            .await
            .map_err(chain)?;
        Ok(Self {
            store,
            provider,
            batch,
            hub,
            margin_secs: 60,
            from_block,
            reopen_after: u64::from(params.challengeWindow) + u64::from(params.responseWindow),
        })
    }

    fn contract(&self) -> BatchSettlement::BatchSettlementInstance<&DynProvider> {
        BatchSettlement::new(self.batch, &self.provider)
    }

    async fn chain_now(&self) -> Result<u64, EpochError> {
        Ok(self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(chain)?
            .ok_or_else(|| EpochError::Chain("no latest block".into()))?
            .header
            .timestamp)
    }

    /// Commits the pending jobs as one epoch if the contract lets this hub
    /// commit now; the epoch's number, or None if nothing was due.
    pub async fn commit_due(&self) -> Result<Option<u32>, EpochError> {
        let batch = self.contract();
        let book = batch.hubBook(self.hub).call().await.map_err(chain)?;
        if book.frozen {
            return Err(EpochError::Frozen);
        }
        let now = self.chain_now().await?;
        let reopens = book.lastCommitAt.to::<u64>() + self.reopen_after;
        if book.epochs != 0 && (book.openChallenges != 0 || now < reopens) {
            return Ok(None);
        }
        let expired = self.store.expire_batch_jobs(now + self.margin_secs).await?;
        if expired != 0 {
            tracing::warn!(
                expired,
                "batched jobs reached their deadline before an epoch: their miners claim them"
            );
        }
        let jobs = self
            .store
            .pending_batch_jobs(now + self.margin_secs, MAX_EPOCH_JOBS)
            .await?;
        if jobs.is_empty() {
            return Ok(None);
        }
        let mut jobs = jobs;
        let fundings = self.usable_fundings().await?;
        let carried: Vec<IBatchSettlement::Funding> = fundings.iter().map(chain_funding).collect();
        // A buyer whose account no longer covers its jobs (it spent the same
        // balance at another hub) is left out, its jobs given up, and the
        // epoch tried again without them.
        let (tree, entries) = loop {
            let (tree, entries) = build(&jobs, self.hub)?;
            let count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
            let simulated = batch
                .commitEpoch(
                    self.hub,
                    tree.root(),
                    count,
                    carried.clone(),
                    entries.clone(),
                )
                .call()
                .await;
            let Err(e) = simulated else {
                break (tree, entries);
            };
            let short = e
                .as_decoded_interface_error::<BatchSettlement::BatchSettlementErrors>()
                .and_then(|err| match err {
                    BatchSettlement::BatchSettlementErrors::InsufficientBalance(x) => {
                        Some(x.account)
                    }
                    _ => None,
                });
            let Some(buyer) = short else {
                return Err(refused("an epoch", &e));
            };
            let dropped = self.store.unfund_batch_jobs(buyer).await?;
            tracing::warn!(%buyer, dropped, "a buyer's batch account no longer covers its jobs: they are given up");
            jobs.retain(|j| j.buyer != buyer);
            if jobs.is_empty() {
                return Ok(None);
            }
        };
        let count = u32::try_from(jobs.len()).unwrap_or(u32::MAX);
        let call = batch.commitEpoch(self.hub, tree.root(), count, carried, entries.clone());
        let receipt = call
            .send()
            .await
            .map_err(|e| refused("an epoch", &e))?
            .get_receipt()
            .await
            .map_err(chain)?;
        if !receipt.status() {
            return Err(EpochError::Chain(format!(
                "the epoch commit {} reverted",
                receipt.transaction_hash
            )));
        }
        let event = receipt
            .decoded_log::<BatchSettlement::EpochCommitted>()
            .ok_or_else(|| EpochError::Chain("the commit emitted no EpochCommitted".into()))?;
        let row = EpochRow {
            index: event.index,
            root: event.root,
            ledger_hash: event.ledgerHash,
            committed_at: event.committedAt.to::<u64>(),
            entries,
            tx: receipt.transaction_hash,
        };
        let ids: Vec<B256> = jobs.iter().map(BatchedJob::job_id).collect();
        self.store.record_epoch(&row, &ids).await?;
        for f in &fundings {
            self.store.close_funding(f.owner, true).await?;
        }
        tracing::info!(epoch = row.index, jobs = ids.len(), tx = %row.tx, "epoch committed");
        Ok(Some(row.index))
    }

    /// The waiting permits that will still work: the owner holds the tokens and
    /// its permit nonce has not moved (or the allowance is already in place).
    /// The others are dropped; their buyers' jobs then stand on the balance alone.
    async fn usable_fundings(&self) -> Result<Vec<crate::store::FundingRow>, EpochError> {
        use fog_protocol::contracts::fog_token::FogToken;
        let batch = self.contract();
        let (token, ..) = batch
            .wiring()
            .call()
            .await
            .map(|w| (w.token, ()))
            .map_err(chain)?;
        let token = FogToken::new(token, &self.provider);
        let now = self.chain_now().await?;
        let mut usable = Vec::new();
        for f in self.store.pending_fundings().await? {
            let held = token.balanceOf(f.owner).call().await.map_err(chain)?;
            let nonce = token.nonces(f.owner).call().await.map_err(chain)?;
            let allowance = token
                .allowance(f.owner, self.batch)
                .call()
                .await
                .map_err(chain)?;
            let permit_works = nonce == f.nonce && f.deadline > now;
            if held >= f.value && (permit_works || allowance >= f.value) {
                usable.push(f);
            } else {
                tracing::warn!(owner = %f.owner, "a buyer's permit can no longer fund its account: dropped");
                self.store.close_funding(f.owner, false).await?;
            }
        }
        Ok(usable)
    }

    /// Where a committed job is, with its proof; None if not committed (yet).
    pub async fn proof(&self, job_id: B256) -> Result<Option<JobProof>, EpochError> {
        let Some(row) = self.store.batch_job(job_id).await? else {
            return Ok(None);
        };
        let Some((index, leaf)) = row.place else {
            return Ok(None);
        };
        let (epoch, jobs) = self.epoch_with_jobs(index).await?;
        let tree = build(&jobs, self.hub)?.0;
        let proof = tree
            .proof(usize::try_from(leaf).unwrap_or(usize::MAX))
            .ok_or_else(|| EpochError::Inconsistent(index, format!("no leaf {leaf}")))?;
        let leaf = row
            .job
            .leaf()
            .ok_or_else(|| EpochError::Inconsistent(index, "a total beyond 96 bits".into()))?;
        Ok(Some(JobProof {
            epoch: self.reference(&epoch),
            leaf,
            proof,
            receipts: row.job.receipts.iter().map(|(_, r)| r.clone()).collect(),
        }))
    }

    /// Answers every open challenge of this hub's epochs; how many it answered.
    pub async fn answer_challenges(&self) -> Result<usize, EpochError> {
        let batch = self.contract();
        let logs = batch
            .Challenged_filter()
            .topic1(self.hub)
            .from_block(self.from_block)
            .query()
            .await
            .map_err(chain)?;
        let mut answered = 0;
        for (event, _) in logs {
            let challenge = batch
                .challengeOf(self.hub, event.index, event.account)
                .call()
                .await
                .map_err(chain)?;
            // 1 = Open (IBatchSettlement.ChallengeStatus).
            if challenge.status != 1 {
                continue;
            }
            let (epoch, jobs) = self.epoch_with_jobs(event.index).await?;
            let tree = build(&jobs, self.hub)?.0;
            let mut behind: Vec<(usize, &BatchedJob)> = jobs
                .iter()
                .enumerate()
                .filter(|(_, j)| touches(j, event.account))
                .collect();
            behind.sort_by_key(|(_, j)| j.job_id());
            let revealed = behind
                .iter()
                .map(|(i, j)| {
                    Ok(j.to_chain(tree.proof(*i).ok_or_else(|| {
                        EpochError::Inconsistent(event.index, format!("no leaf {i}"))
                    })?))
                })
                .collect::<Result<Vec<_>, EpochError>>()?;
            let call = batch.answer(
                self.reference_chain(&epoch),
                event.account,
                encode_jobs(revealed),
            );
            call.call().await.map_err(|e| refused("the answer", &e))?;
            let receipt = call
                .send()
                .await
                .map_err(|e| refused("the answer", &e))?
                .get_receipt()
                .await
                .map_err(chain)?;
            if !receipt.status() {
                return Err(EpochError::Chain(format!(
                    "the answer {} reverted",
                    receipt.transaction_hash
                )));
            }
            tracing::info!(epoch = event.index, account = %event.account, jobs = behind.len(), "challenge answered");
            answered += 1;
        }
        Ok(answered)
    }

    /// Contests every pending claim of a job this hub committed: its buyer
    /// paid in the epoch, and a miner must not be paid twice. A claim whose
    /// miner the epoch shorted stands (the contract moves it to the bond).
    /// How many it contested.
    pub async fn contest_claims(&self) -> Result<usize, EpochError> {
        let batch = self.contract();
        let logs = batch
            .ClaimOpened_filter()
            .topic2(self.hub)
            .from_block(self.from_block)
            .query()
            .await
            .map_err(chain)?;
        let mut contested = 0;
        for (event, _) in logs {
            let claim = batch.claimOf(event.jobId).call().await.map_err(chain)?;
            // 1 = Pending (IBatchSettlement.ClaimStatus).
            if claim.status != 1 || claim.hubPays {
                continue;
            }
            let Some(row) = self.store.batch_job(event.jobId).await? else {
                continue;
            };
            let Some((index, leaf_index)) = row.place else {
                continue;
            };
            let (epoch, jobs) = self.epoch_with_jobs(index).await?;
            let tree = build(&jobs, self.hub)?.0;
            let proof = tree
                .proof(usize::try_from(leaf_index).unwrap_or(usize::MAX))
                .ok_or_else(|| EpochError::Inconsistent(index, format!("no leaf {leaf_index}")))?;
            let leaf = row
                .job
                .leaf()
                .ok_or_else(|| EpochError::Inconsistent(index, "a total beyond 96 bits".into()))?;
            // The claim's payout is the receipts the miners hold: those of the leaf,
            // unless the hub assigned the job twice (then the claim does not match).
            let miners: Vec<Address> = row
                .job
                .receipts
                .iter()
                .map(|(_, r)| r.payload.miner)
                .collect();
            let amounts: Vec<U256> = row
                .job
                .receipts
                .iter()
                .map(|(_, r)| r.payload.amountCharged)
                .collect();
            let mut answered = Vec::with_capacity(miners.len());
            for miner in &miners {
                let c = batch
                    .challengeOf(self.hub, index, *miner)
                    .call()
                    .await
                    .map_err(chain)?;
                let mut ids: Vec<B256> = if c.status == 2 {
                    jobs.iter()
                        .filter(|j| touches(j, *miner))
                        .map(BatchedJob::job_id)
                        .collect()
                } else {
                    Vec::new()
                };
                ids.sort();
                answered.push(ids);
            }
            let inclusion = IBatchSettlement::InclusionProof {
                epoch: self.reference_chain(&epoch),
                leaf: fog_protocol::contracts::batch_leaf(&leaf),
                proof,
                miners,
                amounts,
                answered,
            };
            let call = batch.contestClaim(event.jobId, inclusion);
            if let Err(e) = call.call().await {
                tracing::warn!(job = %event.jobId, error = %refused("the contest", &e), "a claim on a committed job could not be contested");
                continue;
            }
            let receipt = call
                .send()
                .await
                .map_err(|e| refused("the contest", &e))?
                .get_receipt()
                .await
                .map_err(chain)?;
            if receipt.status() {
                tracing::info!(job = %event.jobId, epoch = index, "a claim on a committed job contested");
                contested += 1;
            }
        }
        Ok(contested)
    }

    /// Both duties, every `every`, until the process stops; errors are logged
    /// and retried with a growing pause (a frozen hub stops committing).
    pub async fn run(self, every: Duration) {
        let mut pause = every;
        loop {
            tokio::time::sleep(pause).await;
            let outcome = async {
                self.answer_challenges().await?;
                self.contest_claims().await?;
                self.commit_due().await
            }
            .await;
            pause = match outcome {
                Ok(_) => every,
                Err(EpochError::Frozen) => {
                    tracing::error!("frozen in the batch contract: batched settlement stops");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "batched settlement: will retry");
                    (pause * 2).min(Duration::from_secs(300))
                }
            };
        }
    }

    async fn epoch_with_jobs(&self, index: u32) -> Result<(EpochRow, Vec<BatchedJob>), EpochError> {
        let epoch = self
            .store
            .epoch(index)
            .await?
            .ok_or_else(|| EpochError::Inconsistent(index, "not in the store".into()))?;
        let jobs = self.store.epoch_jobs(index).await?;
        Ok((epoch, jobs))
    }

    fn reference(&self, epoch: &EpochRow) -> EpochRef {
        EpochRef {
            hub: self.hub,
            index: epoch.index,
            root: epoch.root,
            ledger_hash: epoch.ledger_hash,
            committed_at: epoch.committed_at,
        }
    }

    fn reference_chain(&self, epoch: &EpochRow) -> IBatchSettlement::EpochRef {
        (&self.reference(epoch)).into()
    }
}

fn chain_funding(f: &crate::store::FundingRow) -> IBatchSettlement::Funding {
    IBatchSettlement::Funding {
        owner: f.owner,
        value: f.value,
        deadline: U256::from(f.deadline),
        v: 27 + u8::from(f.signature.v()),
        r: f.signature.r().into(),
        s: f.signature.s().into(),
    }
}

/// Whether the job moves `account`'s balance: as its buyer or one of its miners.
fn touches(job: &BatchedJob, account: Address) -> bool {
    job.buyer == account || job.receipts.iter().any(|(_, r)| r.payload.miner == account)
}

/// The epoch's tree (leaves in the jobs' order) and its packed ledger.
fn build(jobs: &[BatchedJob], hub: Address) -> Result<(MerkleTree, Vec<U256>), EpochError> {
    let mut ledger = Ledger::default();
    let mut leaves = Vec::with_capacity(jobs.len());
    for job in jobs {
        job.book(&mut ledger, hub);
        let leaf = job.leaf().ok_or_else(|| {
            EpochError::Inconsistent(0, format!("job {}: a total beyond 96 bits", job.job_id()))
        })?;
        leaves.push(leaf.hash());
    }
    let entries = ledger
        .entries()
        .map_err(|e| EpochError::Inconsistent(0, e.to_string()))?;
    Ok((MerkleTree::new(leaves), entries))
}

fn refused(what: &'static str, e: &alloy::contract::Error) -> EpochError {
    match fog_protocol::contracts::refusal(e) {
        Some(reason) => EpochError::Refused { what, reason },
        None => EpochError::Chain(e.to_string()),
    }
}
