//! `fog dao`: what a token holder does in the DAO.
//!
//! - `delegate`: votes follow delegation (ERC20Votes), so a holder delegates,
//!   to itself or to someone it trusts, before it can vote;
//! - `propose-blacklist HUB --evidence JOB`: a proposal whose single action
//!   is `HubRegistry.blacklist(HUB, JOB)`. The evidence must be on chain: the
//!   job was opened with that hub and settled, so its receipts (the output
//!   hash the hub vouched for) are in the escrow's events forever; a batched
//!   job's proof (its leaf, Merkle path and receipts, checked against the
//!   epoch the batch contract stores) goes into the proposal's description,
//!   which the governor emits: on chain forever too;
//! - `vote`, `queue`, `execute`, `status`: the Governor's life cycle. Queue and
//!   execute need the proposal's actions and description, which the
//!   Governor only emits: they are read back from its `ProposalCreated` event,
//!   so a member only ever names the proposal id;
//! - `treasury`: the expropriated deposits, each frozen until its release.
//!
//! Every command reads the state first and says what to wait for or change
//! (voting opens at …, the vote is defeated: quorum …), then simulates, so a
//! refusal comes back as the contract's own error before gas is spent.

use alloy::primitives::{Bytes, keccak256};
use alloy::providers::DynProvider;
use alloy::sol_types::SolCall;
use fog_protocol::contracts::dao_treasury::DaoTreasury;
use fog_protocol::contracts::fog_governor::FogGovernor;
use fog_protocol::contracts::fog_token::FogToken;
use fog_protocol::contracts::hub_registry::HubRegistry;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::{EscrowStatus, HubState, ProposalState};
use fog_protocol::deploy::Deployment;
use fog_protocol::{Address, B256, U256};
use serde::Serialize;

pub use crate::ops::chain_time;
use crate::ops::{OpsError, chain, refusal, transact};

/// How a member votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Support {
    Against,
    For,
    Abstain,
}

impl Support {
    /// GovernorCountingSimple's numbering.
    fn code(self) -> u8 {
        match self {
            Self::Against => 0,
            Self::For => 1,
            Self::Abstain => 2,
        }
    }
}

/// Delegates the caller's votes to `to`; returns the transaction.
pub async fn delegate(
    provider: &DynProvider,
    d: &Deployment,
    to: Address,
) -> Result<B256, OpsError> {
    let token = FogToken::new(d.token, provider);
    Ok(transact("delegating", token.delegate(to))
        .await?
        .transaction_hash)
}

/// A proposal as the chain holds it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposal {
    pub id: U256,
    pub state: ProposalState,
    pub proposer: Address,
    pub description: String,
    /// For blacklist proposals: the hub and the evidence job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blacklist: Option<BlacklistAction>,
    /// Voting opens and closes (unix seconds: the token's clock is the timestamp).
    pub vote_start: u64,
    pub vote_end: u64,
    pub votes_for: U256,
    pub votes_against: U256,
    pub votes_abstain: U256,
    /// Votes for plus abstain must reach it (known once voting opens).
    pub quorum: Option<U256>,
    /// When a queued proposal may be executed (0 unless queued).
    pub eta: u64,
    #[serde(skip)]
    targets: Vec<Address>,
    #[serde(skip)]
    values: Vec<U256>,
    #[serde(skip)]
    calldatas: Vec<Bytes>,
}

/// What a blacklist proposal does.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistAction {
    pub hub: Address,
    pub evidence_job: B256,
}

impl Proposal {
    fn description_hash(&self) -> B256 {
        keccak256(self.description.as_bytes())
    }
}

/// What a blacklist proposal was made of.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Proposed {
    pub id: U256,
    pub tx: B256,
    pub description: String,
    pub vote_start: u64,
    pub vote_end: u64,
}

/// Proposes to blacklist `hub`, with job `evidence` as the evidence.
///
/// Refused before anything is sent unless the hub can be blacklisted
/// (active or exiting) and the job was opened with that hub and settled, so
/// its receipts are on chain; `note` (what the buyer saw, e.g. the sha256 of
/// the output the hub served) is added to the description.
pub async fn propose_blacklist(
    provider: &DynProvider,
    d: &Deployment,
    hub: Address,
    evidence: B256,
    note: Option<&str>,
    hub_url: Option<&str>,
) -> Result<Proposed, OpsError> {
    let registry = HubRegistry::new(d.registry, provider);
    let info = registry
        .hubInfo(hub)
        .call()
        .await
        .map_err(|e| refusal("reading the hub", &e))?;
    let state = HubState::from_code(info.state);
    if !matches!(state, HubState::Active | HubState::Exiting) {
        return Err(OpsError::Invalid(format!(
            "hub {hub} is {state}: only an active or exiting hub can be blacklisted"
        )));
    }
    let escrow = JobEscrow::new(d.escrow, provider);
    let job = escrow.getJob(evidence).call().await.map_err(chain)?;
    let status = EscrowStatus::from_code(job.status);
    let governor = FogGovernor::new(d.governor, provider);
    let mut description = if status == EscrowStatus::None {
        batched_evidence(provider, d, hub, evidence, hub_url).await?
    } else {
        if job.hub != hub {
            return Err(OpsError::Invalid(format!(
                "--evidence {evidence}: the job was opened with hub {}, not {hub}",
                job.hub
            )));
        }
        if status != EscrowStatus::Settled {
            return Err(OpsError::Invalid(format!(
                "--evidence {evidence}: the job is {status}, so no receipt of it is on chain; \
                 the evidence must be a settled job whose receipts show what the hub vouched for"
            )));
        }
        let output = settled_output(provider, d, evidence).await?;
        format!(
            "Blacklist hub {hub}\n\nEvidence: job {evidence}, settled on chain; \
             its receipts (JobEscrow ReceiptSettled events) name output sha256 {output}."
        )
    };
    if let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) {
        description.push_str("\n\n");
        description.push_str(note);
    }
    let data: Bytes = HubRegistry::blacklistCall {
        hub,
        evidenceJobId: evidence,
    }
    .abi_encode()
    .into();
    // The governor checks the proposer's votes itself (delegated before this
    // block); its refusal, GovernorInsufficientProposerVotes, is decoded below.
    let receipt = transact(
        "proposing (votes come from delegation: `fog dao delegate`, then one block)",
        governor.propose(
            vec![d.registry],
            vec![U256::ZERO],
            vec![data],
            description.clone(),
        ),
    )
    .await?;
    let created = receipt
        .decoded_log::<FogGovernor::ProposalCreated>()
        .ok_or_else(|| OpsError::Chain("no ProposalCreated event".into()))?;
    Ok(Proposed {
        id: created.proposalId,
        tx: receipt.transaction_hash,
        description,
        vote_start: created.voteStart.to::<u64>(),
        vote_end: created.voteEnd.to::<u64>(),
    })
}

/// The output hash the job's settled receipts carry, from the escrow's events.
/// A batched job as evidence: its proof from the hub that settled it,
/// checked against the epoch the batch contract stores, written whole into
/// the proposal so that anyone can check it again from the chain alone.
async fn batched_evidence(
    provider: &DynProvider,
    d: &Deployment,
    hub: Address,
    evidence: B256,
    hub_url: Option<&str>,
) -> Result<String, OpsError> {
    let hub_url = hub_url.ok_or_else(|| {
        OpsError::Invalid(format!(
            "--evidence {evidence}: no escrow was ever opened for this job; if it is batched, \
             pass --hub URL of the hub that settled it (its proof comes from there)"
        ))
    })?;
    let proof = crate::client::HubClient::new(hub_url)
        .public_proof(evidence)
        .await
        .map_err(|e| {
            OpsError::Invalid(format!(
                "--evidence {evidence}: no escrow, and the hub has no proof of it: {e}"
            ))
        })?;
    if proof.epoch.hub != hub {
        return Err(OpsError::Invalid(format!(
            "--evidence {evidence}: the job was settled by hub {}, not {hub}",
            proof.epoch.hub
        )));
    }
    crate::run::check_proof(provider, d, evidence, &proof)
        .await
        .map_err(|e| OpsError::Invalid(format!("--evidence {evidence}: {e}")))?;
    let output = proof.output_hash().unwrap_or_default();
    let json = serde_json::to_string(&proof).map_err(|e| OpsError::Chain(e.to_string()))?;
    Ok(format!(
        "Blacklist hub {hub}\n\nEvidence: job {evidence}, settled in the hub's batch epoch {} \
         (BatchSettlement.epochHash({hub}, {}) = keccak256(root, ledgerHash, committedAt)); \
         its receipts name output sha256 {output}. The proof, to check against that hash:\n{json}",
        proof.epoch.index, proof.epoch.index
    ))
}

async fn settled_output(
    provider: &DynProvider,
    d: &Deployment,
    job: B256,
) -> Result<B256, OpsError> {
    let escrow = JobEscrow::new(d.escrow, provider);
    let found = escrow
        .ReceiptSettled_filter()
        .topic1(job)
        .from_block(d.block)
        .query()
        .await
        .map_err(chain)?;
    found
        .first()
        .map(|(event, _)| event.receipt.outputHash)
        .ok_or_else(|| {
            OpsError::Chain(format!(
                "job {job} is settled but no ReceiptSettled event of it was found"
            ))
        })
}

/// Every proposal made on this deployment's governor, oldest first, or just `only`.
pub async fn proposals(
    provider: &DynProvider,
    d: &Deployment,
    only: Option<U256>,
) -> Result<Vec<Proposal>, OpsError> {
    let governor = FogGovernor::new(d.governor, provider);
    let created = governor
        .ProposalCreated_filter()
        .from_block(d.block)
        .query()
        .await
        .map_err(chain)?;
    let mut out = Vec::new();
    for (event, _) in created {
        if only.is_some_and(|id| id != event.proposalId) {
            continue;
        }
        let id = event.proposalId;
        let state = governor
            .state(id)
            .call()
            .await
            .map_err(|e| refusal("reading the proposal", &e))?;
        let votes = governor.proposalVotes(id).call().await.map_err(chain)?;
        let state = ProposalState::from_code(state);
        // The quorum is a share of the supply at the snapshot, which a
        // pending proposal has not reached yet.
        let quorum = if state == ProposalState::Pending {
            None
        } else {
            let snapshot = governor.proposalSnapshot(id).call().await.map_err(chain)?;
            Some(governor.quorum(snapshot).call().await.map_err(chain)?)
        };
        let eta = governor.proposalEta(id).call().await.map_err(chain)?;
        let blacklist = match (event.targets.as_slice(), event.calldatas.as_slice()) {
            ([target], [data]) if *target == d.registry => {
                HubRegistry::blacklistCall::abi_decode(data)
                    .ok()
                    .map(|call| BlacklistAction {
                        hub: call.hub,
                        evidence_job: call.evidenceJobId,
                    })
            }
            _ => None,
        };
        out.push(Proposal {
            id,
            state,
            proposer: event.proposer,
            description: event.description.clone(),
            blacklist,
            vote_start: event.voteStart.to::<u64>(),
            vote_end: event.voteEnd.to::<u64>(),
            votes_for: votes.forVotes,
            votes_against: votes.againstVotes,
            votes_abstain: votes.abstainVotes,
            quorum,
            eta: eta.to::<u64>(),
            targets: event.targets.clone(),
            values: event.values.clone(),
            calldatas: event.calldatas.clone(),
        });
    }
    if let Some(id) = only
        && out.is_empty()
    {
        return Err(OpsError::Invalid(format!(
            "no proposal {id} was made on governor {}",
            d.governor
        )));
    }
    Ok(out)
}

async fn proposal(provider: &DynProvider, d: &Deployment, id: U256) -> Result<Proposal, OpsError> {
    proposals(provider, d, Some(id))
        .await?
        .pop()
        .ok_or_else(|| OpsError::Invalid(format!("no proposal {id}")))
}

/// Why a defeated proposal lost.
fn defeat_reason(p: &Proposal) -> String {
    let quorum = p.quorum.unwrap_or_default();
    if p.votes_for + p.votes_abstain < quorum {
        format!(
            "quorum not reached: {} for + {} abstain < {quorum} needed",
            p.votes_for, p.votes_abstain
        )
    } else {
        format!("{} against ≥ {} for", p.votes_against, p.votes_for)
    }
}

/// Casts `voter`'s vote on proposal `id`.
pub async fn vote(
    provider: &DynProvider,
    d: &Deployment,
    voter: Address,
    id: U256,
    support: Support,
    reason: &str,
) -> Result<(B256, U256), OpsError> {
    let p = proposal(provider, d, id).await?;
    match p.state {
        ProposalState::Active => {}
        ProposalState::Pending => {
            return Err(OpsError::Invalid(format!(
                "voting on proposal {id} opens at unix time {} (chain time is {})",
                p.vote_start,
                chain_time(provider).await?
            )));
        }
        other => {
            return Err(OpsError::Invalid(format!(
                "proposal {id} is {other}: voting is over"
            )));
        }
    }
    let governor = FogGovernor::new(d.governor, provider);
    if governor.hasVoted(id, voter).call().await.map_err(chain)? {
        return Err(OpsError::Invalid(format!(
            "{voter} has already voted on proposal {id}"
        )));
    }
    let snapshot = governor.proposalSnapshot(id).call().await.map_err(chain)?;
    let weight = governor
        .getVotes(voter, snapshot)
        .call()
        .await
        .map_err(chain)?;
    if weight.is_zero() {
        return Err(OpsError::Invalid(format!(
            "{voter} had no votes when proposal {id} was made: votes come from delegation \
             (`fog dao delegate`) before a proposal's snapshot"
        )));
    }
    let receipt = transact(
        "voting",
        governor.castVoteWithReason(id, support.code(), reason.to_owned()),
    )
    .await?;
    Ok((receipt.transaction_hash, weight))
}

/// Queues a succeeded proposal in the timelock; returns the transaction and when it may run.
pub async fn queue(
    provider: &DynProvider,
    d: &Deployment,
    id: U256,
) -> Result<(B256, u64), OpsError> {
    let p = proposal(provider, d, id).await?;
    match p.state {
        ProposalState::Succeeded => {}
        ProposalState::Active | ProposalState::Pending => {
            return Err(OpsError::Invalid(format!(
                "proposal {id} is {}: the vote ends at unix time {}",
                p.state, p.vote_end
            )));
        }
        ProposalState::Defeated => {
            return Err(OpsError::Invalid(format!(
                "proposal {id} was defeated: {}",
                defeat_reason(&p)
            )));
        }
        other => {
            return Err(OpsError::Invalid(format!(
                "proposal {id} is {other}: only a succeeded proposal can be queued"
            )));
        }
    }
    let governor = FogGovernor::new(d.governor, provider);
    let receipt = transact(
        "queueing",
        governor.queue(
            p.targets.clone(),
            p.values.clone(),
            p.calldatas.clone(),
            p.description_hash(),
        ),
    )
    .await?;
    let eta = governor.proposalEta(id).call().await.map_err(chain)?;
    Ok((receipt.transaction_hash, eta.to::<u64>()))
}

/// Executes a queued proposal whose timelock delay has passed.
pub async fn execute(provider: &DynProvider, d: &Deployment, id: U256) -> Result<B256, OpsError> {
    let p = proposal(provider, d, id).await?;
    match p.state {
        ProposalState::Queued => {
            let now = chain_time(provider).await?;
            if now < p.eta {
                return Err(OpsError::Invalid(format!(
                    "proposal {id} waits in the timelock until unix time {} (chain time is {now})",
                    p.eta
                )));
            }
        }
        ProposalState::Succeeded => {
            return Err(OpsError::Invalid(format!(
                "proposal {id} passed but is not queued: `fog dao queue {id}` first"
            )));
        }
        other => {
            return Err(OpsError::Invalid(format!(
                "proposal {id} is {other}: only a queued proposal can be executed"
            )));
        }
    }
    let governor = FogGovernor::new(d.governor, provider);
    let receipt = transact(
        "executing",
        governor.execute(
            p.targets,
            p.values,
            p.calldatas,
            keccak256(p.description.as_bytes()),
        ),
    )
    .await?;
    Ok(receipt.transaction_hash)
}

/// One expropriated deposit.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lot {
    pub id: u64,
    pub hub: Address,
    pub amount: U256,
    pub remaining: U256,
    /// Unix time the lot may be spent (by a DAO proposal) from.
    pub release_at: u64,
    pub frozen: bool,
}

/// The treasury's holdings.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Treasury {
    pub address: Address,
    pub balance: U256,
    pub locked_total: U256,
    pub lots: Vec<Lot>,
}

pub async fn treasury(provider: &DynProvider, d: &Deployment) -> Result<Treasury, OpsError> {
    let treasury = DaoTreasury::new(d.treasury, provider);
    let now = chain_time(provider).await?;
    let count = treasury.lotCount().call().await.map_err(chain)?;
    let mut lots = Vec::new();
    for id in 0..count.to::<u64>() {
        let lot = treasury.lot(U256::from(id)).call().await.map_err(chain)?;
        lots.push(Lot {
            id,
            hub: lot.hub,
            amount: lot.amount,
            remaining: lot.remaining,
            release_at: lot.releaseAt,
            frozen: now < lot.releaseAt,
        });
    }
    Ok(Treasury {
        address: d.treasury,
        balance: FogToken::new(d.token, provider)
            .balanceOf(d.treasury)
            .call()
            .await
            .map_err(chain)?,
        locked_total: treasury.lockedTotal().call().await.map_err(chain)?,
        lots,
    })
}

/// A member's voting power: balance, delegate, current votes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub address: Address,
    pub balance: U256,
    pub delegate: Address,
    pub votes: U256,
}

pub async fn member(
    provider: &DynProvider,
    d: &Deployment,
    who: Address,
) -> Result<Member, OpsError> {
    let token = FogToken::new(d.token, provider);
    Ok(Member {
        address: who,
        balance: token.balanceOf(who).call().await.map_err(chain)?,
        delegate: token.delegates(who).call().await.map_err(chain)?,
        votes: token.getVotes(who).call().await.map_err(chain)?,
    })
}
