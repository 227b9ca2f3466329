//! `make gas-table`: whole-transaction gas (intrinsic + calldata + execution,
//! from real receipts) of each operation on a live anvil, as a Markdown table.
#![allow(clippy::print_stdout)] // a report command: its output is the table

use alloy::primitives::{B256, U256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolStruct, eip712_domain};
use anyhow::Context;
use fog_protocol::contracts::fog_governor::FogGovernor;
use fog_protocol::contracts::fog_token::FogToken;
use fog_protocol::contracts::hub_registry::HubRegistry;
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::settlement_entry;
use fog_protocol::{Assignment, Receipt, Signed};
use fog_tests::devnet::{Devnet, JobTerms, mined};

alloy::sol! {
    struct Permit { address owner; address spender; uint256 value; uint256 nonce; uint256 deadline; }
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let devnet = Devnet::start().await?;
    let d = devnet.deployment.clone();
    let domain = d.domain();
    let operator = devnet.keys[1].clone();
    let buyer = devnet.keys[2].clone();
    let hub_signer = PrivateKeySigner::random();
    let mut rows: Vec<(String, u64)> = Vec::new();

    let (hub, register) = devnet
        .register_hub(&operator, hub_signer.address(), 500)
        .await?;
    rows.push((
        "register (creates HubWallet, locks deposit)".into(),
        register.gas_used,
    ));
    devnet.fund(buyer.address(), ether(10_000)).await?;
    let escrow = JobEscrow::new(d.escrow, devnet.provider(&buyer));
    let token = FogToken::new(d.token, devnet.provider(&buyer));

    for k in [1u16, 3] {
        // open + settle, with miners that have never held tokens (worst case).
        let now = devnet.now().await?;
        let spec_hash = B256::repeat_byte(k as u8);
        let terms = JobTerms {
            hub,
            spec_hash,
            replicas: k,
            max_payment: ether(100),
            deadline: now + 3_600,
            max_duration: 600,
        };
        let (job_id, open) = devnet
            .open_job(&buyer, B256::repeat_byte(0x10 + k as u8), &terms)
            .await?;
        rows.push((format!("open k={k}"), open.gas_used));
        let mut entries = Vec::new();
        for _ in 0..k {
            let miner = PrivateKeySigner::random();
            let assignment = Signed::sign(
                Assignment {
                    jobId: job_id,
                    specHash: spec_hash,
                    hub,
                    miner: miner.address(),
                    maxCharge: ether(10),
                },
                &hub_signer,
                &domain,
            )?;
            let receipt = Signed::sign(
                Receipt {
                    jobId: job_id,
                    specHash: spec_hash,
                    hub,
                    miner: miner.address(),
                    imageId: B256::repeat_byte(1),
                    outputHash: B256::repeat_byte(2),
                    exitCode: 0,
                    startedAt: now,
                    endedAt: now + 5,
                    cpuTimeMs: 4_000,
                    peakMemoryBytes: 32 << 20,
                    amountCharged: ether(5),
                },
                &miner,
                &domain,
            )?;
            entries.push(settlement_entry(&receipt, &assignment));
        }
        let settle = mined(
            escrow
                .settle(job_id, entries)
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        rows.push((format!("settle k={k}"), settle.gas_used));
        rows.push((
            format!("open + settle k={k}"),
            open.gas_used + settle.gas_used,
        ));

        // openWithPermit, then let it expire and refund.
        let nonce = token.nonces(buyer.address()).call().await?;
        let permit = Permit {
            owner: buyer.address(),
            spender: d.escrow,
            value: ether(100),
            nonce,
            deadline: U256::from(now + 600),
        };
        let token_domain = eip712_domain! { name: "Fog", version: "1", chain_id: d.chain_id, verifying_contract: d.token, };
        let sig = buyer.sign_hash_sync(&permit.eip712_signing_hash(&token_domain))?;
        let opened = mined(
            escrow
                .openWithPermit(
                    B256::repeat_byte(0x20 + k as u8),
                    hub,
                    spec_hash,
                    now + 60 + 600 + fog_protocol::SETTLEMENT_WINDOW_SECS,
                    k,
                    ether(100),
                    600,
                    U256::from(now + 600),
                    27 + u8::from(sig.v()),
                    sig.r().into(),
                    sig.s().into(),
                )
                .send()
                .await?
                .get_receipt()
                .await?,
        )?;
        rows.push((
            format!("openWithPermit k={k} (one transaction)"),
            opened.gas_used,
        ));
        let job_id = escrow
            .jobIdFor(buyer.address(), B256::repeat_byte(0x20 + k as u8))
            .call()
            .await?;
        devnet
            .advance(120 + 600 + fog_protocol::SETTLEMENT_WINDOW_SECS)
            .await?;
        let refund = mined(escrow.refund(job_id).send().await?.get_receipt().await?)?;
        rows.push((format!("refund k={k}"), refund.gas_used));
    }

    // Blacklist through a real vote; the supply holder delegates to itself and votes.
    let voter = devnet.treasury_key().clone();
    let gov_token = FogToken::new(d.token, devnet.provider(&voter));
    mined(
        gov_token
            .delegate(voter.address())
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    devnet.advance(1).await?;
    let governor = FogGovernor::new(d.governor, devnet.provider(&voter));
    let call = HubRegistry::blacklistCall {
        hub,
        evidenceJobId: B256::ZERO,
    };
    let data: alloy::primitives::Bytes = alloy::sol_types::SolCall::abi_encode(&call).into();
    let description = "Blacklist hub".to_string();
    let desc_hash = alloy::primitives::keccak256(description.as_bytes());
    let propose = mined(
        governor
            .propose(
                vec![d.registry],
                vec![U256::ZERO],
                vec![data.clone()],
                description.clone(),
            )
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    let id = governor
        .hashProposal(
            vec![d.registry],
            vec![U256::ZERO],
            vec![data.clone()],
            desc_hash,
        )
        .call()
        .await?;
    devnet.advance(d.params.voting_delay + 1).await?;
    let vote = mined(governor.castVote(id, 1).send().await?.get_receipt().await?)?;
    devnet
        .advance(u64::from(d.params.voting_period) + 1)
        .await?;
    let queue = mined(
        governor
            .queue(
                vec![d.registry],
                vec![U256::ZERO],
                vec![data.clone()],
                desc_hash,
            )
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    devnet.advance(d.params.timelock_delay + 1).await?;
    let execute = mined(
        governor
            .execute(vec![d.registry], vec![U256::ZERO], vec![data], desc_hash)
            .send()
            .await?
            .get_receipt()
            .await?,
    )
    .context("executing the blacklist proposal")?;
    rows.push(("DAO propose (blacklist)".into(), propose.gas_used));
    rows.push(("DAO castVote".into(), vote.gas_used));
    rows.push(("DAO queue".into(), queue.gas_used));
    rows.push((
        "blacklist (DAO execute: timelock → registry → wallet → treasury)".into(),
        execute.gas_used,
    ));

    println!("| operation | gas used (whole transaction) |");
    println!("|---|---:|");
    for (name, gas) in rows {
        println!("| {name} | {gas} |");
    }
    println!();
    batched(&devnet).await
}

/// Sum of the gas of a set of transactions.
fn gas_of(receipts: &[alloy::rpc::types::TransactionReceipt]) -> u64 {
    receipts.iter().map(|r| r.gas_used).sum()
}

/// The batched path (issue 16): 1,000 jobs in one epoch from 20 buyers to 50
/// miners, every transaction of the path counted on the live chain.
async fn batched(devnet: &Devnet) -> anyhow::Result<()> {
    use fog_protocol::batch::{BatchedJob, encode_job, encode_jobs};
    use fog_protocol::contracts::batch_settlement::{BatchSettlement, IBatchSettlement};
    use fog_tests::batchkit::{Parties, deposit_with_permit, make_job};
    const BUYERS: usize = 20;
    const MINERS: usize = 50;
    const JOBS: usize = 1_000;
    let d = devnet.deployment.clone();
    let operator = devnet.keys[4].clone();
    let hub_signer = devnet.keys[5].clone();
    let (hub, _) = devnet
        .register_hub(&operator, hub_signer.address(), 500)
        .await?;
    // The hub's bond: once per hub, like its registration (not counted per job).
    devnet.fund(operator.address(), ether(5_000)).await?;
    let op = devnet.provider(&operator);
    let approve = mined(
        FogToken::new(d.token, &op)
            .approve(d.batch, ether(5_000))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    let bond = mined(
        BatchSettlement::new(d.batch, &op)
            .deposit(hub, ether(5_000))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;

    let buyers: Vec<PrivateKeySigner> = (0..BUYERS).map(|_| PrivateKeySigner::random()).collect();
    // Two sets of new miners: one paid out in the commit, one credited and withdrawing later.
    let paid_out: Vec<PrivateKeySigner> = (0..MINERS).map(|_| PrivateKeySigner::random()).collect();
    let credited: Vec<PrivateKeySigner> = (0..MINERS).map(|_| PrivateKeySigner::random()).collect();
    let mut deposits = Vec::new();
    for b in &buyers {
        devnet.fund(b.address(), ether(300)).await?;
        devnet.send_eth(b.address(), ether(1)).await?;
        deposits.push(deposit_with_permit(devnet, b, ether(100)).await?);
    }
    for m in &credited {
        devnet.send_eth(m.address(), ether(1)).await?;
    }
    let hub_batch = BatchSettlement::new(d.batch, devnet.provider(&hub_signer));
    let p = d.params.batch.clone();
    let epoch_jobs = |round: u8,
                      buyers: &[PrivateKeySigner],
                      miners: &[PrivateKeySigner],
                      deadline: u64|
     -> anyhow::Result<Vec<BatchedJob>> {
        let mut jobs = Vec::with_capacity(JOBS);
        for i in 0..JOBS {
            let miner = [&miners[i % MINERS]];
            let parties = Parties {
                buyer: &buyers[i % BUYERS],
                hub,
                hub_signer: &hub_signer,
                miners: &miner,
            };
            let mut salt = [0u8; 32];
            salt[0] = round;
            salt[24..].copy_from_slice(&(i as u64).to_be_bytes());
            jobs.push(make_job(
                &d,
                &parties,
                B256::from(salt),
                ether(1) / U256::from(10u64),
                ether(1),
                deadline,
                500,
            )?);
        }
        Ok(jobs)
    };
    let commit =
        |jobs: Vec<BatchedJob>, payouts: bool, fundings: Vec<IBatchSettlement::Funding>| {
            let hub_batch = hub_batch.clone();
            async move {
                let mut ledger = fog_protocol::batch::Ledger::default();
                let mut leaves = Vec::with_capacity(jobs.len());
                for job in &jobs {
                    job.book(&mut ledger, hub);
                    if payouts {
                        for (_, r) in &job.receipts {
                            ledger.pay_out(r.payload.miner);
                        }
                    }
                    leaves.push(job.leaf().context("a job's total does not fit")?.hash());
                }
                let tree = fog_protocol::batch::MerkleTree::new(leaves);
                let entries = ledger.entries()?;
                let receipt = mined(
                    hub_batch
                        .commitEpoch(
                            hub,
                            tree.root(),
                            u32::try_from(jobs.len())?,
                            fundings,
                            entries.clone(),
                        )
                        .send()
                        .await?
                        .get_receipt()
                        .await?,
                )?;
                anyhow::Ok((receipt, tree, entries, jobs))
            }
        };
    let next_epoch = || async {
        devnet
            .advance(u64::from(p.challenge_window + p.response_window) + 1)
            .await
    };
    let per = |gas: u64| gas as f64 / JOBS as f64;

    // F: new buyers funded inside the commit by the permits the hub carries (no
    // transaction of theirs at all), new miners credited to their accounts.
    let funded: Vec<PrivateKeySigner> = (0..BUYERS).map(|_| PrivateKeySigner::random()).collect();
    let fresh: Vec<PrivateKeySigner> = (0..MINERS).map(|_| PrivateKeySigner::random()).collect();
    let mut fundings = Vec::new();
    let permit_deadline = devnet.now().await? + 86_400;
    let token = FogToken::new(d.token, devnet.provider(&operator));
    let token_domain = eip712_domain! {
        name: "Fog",
        version: "1",
        chain_id: d.chain_id,
        verifying_contract: d.token,
    };
    for b in &funded {
        devnet.fund(b.address(), ether(100)).await?;
        let permit = Permit {
            owner: b.address(),
            spender: d.batch,
            value: ether(100),
            nonce: token.nonces(b.address()).call().await?,
            deadline: U256::from(permit_deadline),
        };
        let sig = b.sign_hash_sync(&permit.eip712_signing_hash(&token_domain))?;
        fundings.push(IBatchSettlement::Funding {
            owner: b.address(),
            value: ether(100),
            deadline: U256::from(permit_deadline),
            v: 27 + u8::from(sig.v()),
            r: sig.r().into(),
            s: sig.s().into(),
        });
    }
    let deadline_f = devnet.now().await? + 3_600;
    let (funded_commit, _, funded_entries, _) =
        commit(epoch_jobs(4, &funded, &fresh, deadline_f)?, false, fundings).await?;
    next_epoch().await?;

    // A: new buyers and new miners; the miners are paid out in the commit itself.
    let deadline = devnet.now().await? + 3_600;
    let (first, tree, entries, jobs) =
        commit(epoch_jobs(1, &buyers, &paid_out, deadline)?, true, vec![]).await?;
    let funding = gas_of(&deposits);
    let all = funding + first.gas_used;

    // A dispute on epoch A: a buyer challenges its debit; the hub reveals its 50 jobs.
    let buyer = &buyers[0];
    let committed = first
        .decoded_log::<BatchSettlement::EpochCommitted>()
        .context("no EpochCommitted event")?;
    let reference = IBatchSettlement::EpochRef::from(&committed.reference());
    let position = fog_protocol::batch::entry_position(&entries, buyer.address())
        .context("the buyer has no entry")?;
    let buyer_batch = BatchSettlement::new(d.batch, devnet.provider(buyer));
    let challenge = mined(
        buyer_batch
            .challenge(reference.clone(), entries.clone(), U256::from(position))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    let mut mine: Vec<(usize, &BatchedJob)> = jobs
        .iter()
        .enumerate()
        .filter(|(_, j)| j.buyer == buyer.address())
        .collect();
    mine.sort_by_key(|(_, j)| j.job_id());
    let revealed = mine
        .iter()
        .map(|(i, j)| j.to_chain(tree.proof(*i).unwrap_or_default()))
        .collect();
    let answer = mined(
        BatchSettlement::new(d.batch, &op)
            .answer(reference, buyer.address(), encode_jobs(revealed))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    // A job the hub will never commit, claimed later by its miner.
    let withheld = make_job(
        &d,
        &Parties {
            buyer,
            hub,
            hub_signer: &hub_signer,
            miners: &[&credited[0]],
        },
        B256::repeat_byte(0xee),
        ether(1) / U256::from(10u64),
        ether(1),
        deadline,
        500,
    )?;

    // B: known buyers, new miners credited to their accounts, each withdrawing once.
    next_epoch().await?;
    let deadline2 = devnet.now().await? + 3_600;
    let (second, _, _, _) =
        commit(epoch_jobs(2, &buyers, &credited, deadline2)?, false, vec![]).await?;
    let mut withdrawals = Vec::new();
    for m in &credited {
        let batch = BatchSettlement::new(d.batch, devnet.provider(m));
        let earned = batch.accountOf(m.address()).call().await?.earned;
        withdrawals.push(mined(
            batch
                .withdrawEarnings(m.address(), U256::from(earned))
                .send()
                .await?
                .get_receipt()
                .await?,
        )?);
    }

    // C: steady state: the same buyers top up, the same (known) miners are credited again.
    next_epoch().await?;
    let mut top_ups = Vec::new();
    for b in &buyers {
        top_ups.push(deposit_with_permit(devnet, b, ether(100)).await?);
    }
    let deadline3 = devnet.now().await? + 3_600;
    let (third, _, _, _) =
        commit(epoch_jobs(3, &buyers, &credited, deadline3)?, false, vec![]).await?;
    let steady = gas_of(&top_ups) + third.gas_used;

    let now = devnet.now().await?;
    devnet.advance(deadline.saturating_sub(now) + 1).await?;
    let miner_batch = BatchSettlement::new(d.batch, devnet.provider(&credited[0]));
    let claim = mined(
        miner_batch
            .forceClaim(encode_job(withheld.to_chain(vec![])))
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;
    devnet.advance(u64::from(p.proof_window)).await?;
    let pay = mined(
        miner_batch
            .payClaim(
                withheld.job_id(),
                vec![credited[0].address()],
                vec![withheld.miners_total()],
            )
            .send()
            .await?
            .get_receipt()
            .await?,
    )?;

    println!(
        "batched per job: {:.0} gas ({JOBS} jobs, {BUYERS} buyers, {MINERS} miners, all transactions)",
        per(funded_commit.gas_used)
    );
    println!();
    println!("| batched path, whole transactions | gas | per job |");
    println!("|---|---:|---:|");
    println!(
        "| **F. one commitEpoch: {JOBS} jobs, {BUYERS} new buyers funded in it by their permits, {MINERS} new miners credited ({} entries): all transactions** | **{}** | **{:.0}** |",
        funded_entries.len(),
        funded_commit.gas_used,
        per(funded_commit.gas_used)
    );
    println!(
        "| A. {BUYERS} deposits with permit, new buyers | {funding} | {:.0} |",
        per(funding)
    );
    println!(
        "| A. commitEpoch, {JOBS} jobs, {} entries, {MINERS} new miners paid out in it | {} | {:.0} |",
        entries.len(),
        first.gas_used,
        per(first.gas_used)
    );
    println!(
        "| **A. all transactions (new buyers, new miners, tokens in their wallets)** | **{all}** | **{:.0}** |",
        per(all)
    );
    println!(
        "| B. commitEpoch, {MINERS} new miners credited to accounts | {} | {:.0} |",
        second.gas_used,
        per(second.gas_used)
    );
    println!(
        "| B. {MINERS} withdrawEarnings (first tokens the miners hold) | {} | {:.0} |",
        gas_of(&withdrawals),
        per(gas_of(&withdrawals))
    );
    println!(
        "| C. steady state: {BUYERS} top-ups + commitEpoch (known accounts) | {steady} | {:.0} |",
        per(steady)
    );
    println!(
        "| C. commitEpoch alone, known accounts | {} | {:.0} |",
        third.gas_used,
        per(third.gas_used)
    );
    println!(
        "| hub bond: approve + deposit (once per hub) | {} | — |",
        approve.gas_used + bond.gas_used
    );
    println!("| dispute: challenge | {} | — |", challenge.gas_used);
    println!(
        "| dispute: answer revealing the buyer's {} jobs | {} | {:.0} per revealed job |",
        mine.len(),
        answer.gas_used,
        answer.gas_used as f64 / mine.len() as f64
    );
    println!(
        "| forced claim (k = 1) + payClaim | {} + {} | — |",
        claim.gas_used, pay.gas_used
    );
    Ok(())
}
