//! The batched settlement path driven from Rust on a live anvil with the real
//! contracts: the Rust hashes, trees and ledgers equal the contract's, an
//! epoch settles jobs without a transaction per job, a challenge is answered
//! with the jobs' full evidence, a hub that overcharges is caught, and a miner
//! whose job the hub withheld claims it alone (docs/settlement.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::signers::local::PrivateKeySigner;
use fog_protocol::FogStruct;
use fog_protocol::batch::{MerkleTree, pack_entry};
use fog_protocol::batch::{encode_job, encode_jobs};
use fog_protocol::contracts::batch_settlement::{BatchSettlement, IBatchSettlement};
use fog_protocol::contracts::batch_verifier::BatchVerifier;
use fog_protocol::contracts::fog_token::FogToken;
use fog_tests::batchkit::{Parties, deposit_with_permit, epoch_of, make_job};
use fog_tests::devnet::{Devnet, mined};

/// The same Solidity struct through another binding's Rust type (each binding has its own).
fn recast<
    A: alloy::sol_types::SolValue,
    B: alloy::sol_types::SolValue + From<<B::SolType as alloy::sol_types::SolType>::RustType>,
>(
    a: &A,
) -> B {
    B::abi_decode(&a.abi_encode()).unwrap()
}

fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

/// Gives `who` tokens and gas money and deposits the tokens with a permit.
async fn fund_account(devnet: &Devnet, who: &PrivateKeySigner, amount: U256) {
    devnet.fund(who.address(), amount).await.unwrap();
    devnet.send_eth(who.address(), ether(1)).await.unwrap();
    deposit_with_permit(devnet, who, amount).await.unwrap();
}

struct Market {
    devnet: Devnet,
    hub: alloy::primitives::Address,
    operator: PrivateKeySigner,
    hub_signer: PrivateKeySigner,
    buyer: PrivateKeySigner,
    miners: Vec<PrivateKeySigner>,
}

async fn market() -> Market {
    let devnet = Devnet::start().await.unwrap();
    let operator = devnet.keys[1].clone();
    let hub_signer = devnet.keys[3].clone();
    let (hub, _) = devnet
        .register_hub(&operator, hub_signer.address(), 500)
        .await
        .unwrap();
    // The operator puts up the hub's bond in the batch contract.
    devnet.fund(operator.address(), ether(5_000)).await.unwrap();
    let provider = devnet.provider(&operator);
    let d = &devnet.deployment;
    mined(
        FogToken::new(d.token, &provider)
            .approve(d.batch, ether(5_000))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap(),
    )
    .unwrap();
    mined(
        BatchSettlement::new(d.batch, &provider)
            .deposit(hub, ether(5_000))
            .send()
            .await
            .unwrap()
            .get_receipt()
            .await
            .unwrap(),
    )
    .unwrap();
    let buyer = PrivateKeySigner::random();
    fund_account(&devnet, &buyer, ether(100)).await;
    let miners = (0..3).map(|_| PrivateKeySigner::random()).collect();
    Market {
        devnet,
        hub,
        operator,
        hub_signer,
        buyer,
        miners,
    }
}

impl Market {
    fn job(
        &self,
        salt: u8,
        miner: usize,
        charge: U256,
        max: U256,
        deadline: u64,
    ) -> fog_protocol::batch::BatchedJob {
        let miners = [&self.miners[miner]];
        make_job(
            &self.devnet.deployment,
            &Parties {
                buyer: &self.buyer,
                hub: self.hub,
                hub_signer: &self.hub_signer,
                miners: &miners,
            },
            B256::repeat_byte(salt),
            charge,
            max,
            deadline,
            500,
        )
        .unwrap()
    }

    fn batch(
        &self,
        key: &PrivateKeySigner,
    ) -> BatchSettlement::BatchSettlementInstance<alloy::providers::DynProvider> {
        BatchSettlement::new(self.devnet.deployment.batch, self.devnet.provider(key))
    }
}

async fn send<C: alloy::sol_types::SolCall>(
    call: alloy::contract::CallBuilder<&alloy::providers::DynProvider, std::marker::PhantomData<C>>,
) -> alloy::rpc::types::TransactionReceipt {
    mined(call.send().await.unwrap().get_receipt().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_hashes_trees_and_ledgers_match_the_contract() {
    let m = market().await;
    let batch = m.batch(&m.buyer);
    let verifier = BatchVerifier::new(
        batch.wiring().call().await.unwrap().verifier,
        m.devnet.provider(&m.buyer),
    );
    let deadline = m.devnet.now().await.unwrap() + 3_600;
    let job = m.job(1, 0, ether(2), ether(5), deadline);
    let auth = &job.auth.payload;
    let chain_auth = job.auth.payload.clone();
    assert_eq!(
        verifier
            .hashJobAuth(recast(&chain_auth))
            .call()
            .await
            .unwrap(),
        auth.struct_hash()
    );
    assert_eq!(
        batch
            .jobAuthDigest(recast(&chain_auth))
            .call()
            .await
            .unwrap(),
        auth.signing_hash(&m.devnet.deployment.batch_domain())
    );
    assert_eq!(
        verifier
            .jobIdFor(m.buyer.address(), auth.salt)
            .call()
            .await
            .unwrap(),
        job.job_id()
    );
    let leaf = job.leaf().unwrap();
    assert_eq!(
        verifier.leafHash(recast(&leaf)).call().await.unwrap(),
        leaf.hash()
    );
    let packed = pack_entry(m.buyer.address(), true, false, ether(7)).unwrap();
    assert_eq!(
        batch
            .packEntry(m.buyer.address(), true, false, ether(7))
            .call()
            .await
            .unwrap(),
        packed
    );
    // Epoch roots and proofs the contract accepts: committed, challenged, answered.
    let jobs: Vec<_> = (0..5u8)
        .map(|i| m.job(10 + i, usize::from(i) % 3, ether(1), ether(3), deadline))
        .collect();
    let epoch = epoch_of(&jobs, m.hub).unwrap();
    for (i, job) in jobs.iter().enumerate() {
        assert!(MerkleTree::verify(
            &epoch.tree.proof(i).unwrap(),
            epoch.tree.root(),
            job.leaf().unwrap().hash()
        ));
    }
    let _ = m.operator.address();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_epoch_settles_jobs_without_a_transaction_each_and_answers_a_challenge() {
    let m = market().await;
    let d = m.devnet.deployment.clone();
    let deadline = m.devnet.now().await.unwrap() + 3_600;
    let mut jobs: Vec<_> = (0..4u8)
        .map(|i| m.job(20 + i, usize::from(i) % 3, ether(2), ether(5), deadline))
        .collect();
    jobs.sort_by_key(|j| j.job_id());
    let epoch = epoch_of(&jobs, m.hub).unwrap();
    let hub_batch = m.batch(&m.hub_signer);
    let commit =
        send(hub_batch.commitEpoch(m.hub, epoch.tree.root(), 4, vec![], epoch.entries.clone()))
            .await;
    let committed = commit
        .decoded_log::<BatchSettlement::EpochCommitted>()
        .unwrap();
    let before = m
        .batch(&m.buyer)
        .accountOf(m.buyer.address())
        .call()
        .await
        .unwrap();
    let paid: U256 = jobs.iter().map(|j| j.total()).sum();
    assert_eq!(
        U256::from(before.balance),
        ether(100) - paid,
        "4 jobs, one transaction"
    );
    let earned = m
        .batch(&m.buyer)
        .accountOf(m.miners[0].address())
        .call()
        .await
        .unwrap();
    let first_miner_jobs = jobs
        .iter()
        .filter(|j| j.receipts[0].1.payload.miner == m.miners[0].address())
        .count();
    assert_eq!(
        U256::from(earned.earned),
        ether(2) * U256::from(first_miner_jobs)
    );

    // The buyer doubts its debit: the hub reveals every job behind it.
    let reference = IBatchSettlement::EpochRef::from(&committed.reference());
    let position = fog_protocol::batch::entry_position(&epoch.entries, m.buyer.address()).unwrap();
    send(m.batch(&m.buyer).challenge(
        reference.clone(),
        epoch.entries.clone(),
        U256::from(position),
    ))
    .await;
    let revealed: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| j.to_chain(epoch.tree.proof(i).unwrap()))
        .collect();
    let answer = send(m.batch(&m.operator).answer(
        reference.clone(),
        m.buyer.address(),
        encode_jobs(revealed),
    ))
    .await;
    let shown: Vec<_> = answer
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<BatchSettlement::JobRevealed>().ok())
        .map(|l| l.inner.data.receiptsCommitment)
        .collect();
    assert_eq!(
        shown.len(),
        4,
        "every job's receipts are on chain as evidence"
    );
    assert_eq!(shown[0], jobs[0].leaf().unwrap().receiptsCommitment);
    let book = m.batch(&m.buyer).hubBook(m.hub).call().await.unwrap();
    assert!(!book.frozen);
    let _ = d;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_overcharges_is_caught_and_a_withheld_job_is_claimed_by_its_miner() {
    let m = market().await;
    let p = &m.devnet.deployment.params.batch;
    let deadline = m.devnet.now().await.unwrap() + 3_600;
    // Signed for at most 3 FOG; the hub books it at 8.
    let honest = m.job(30, 0, ether(2), ether(3), deadline);
    let padded = m.job(30, 0, ether(7), ether(3), deadline);
    let withheld = m.job(31, 1, ether(1), ether(3), deadline);
    let epoch = epoch_of(std::slice::from_ref(&padded), m.hub).unwrap();
    let commit = send(m.batch(&m.hub_signer).commitEpoch(
        m.hub,
        epoch.tree.root(),
        1,
        vec![],
        epoch.entries.clone(),
    ))
    .await;
    let committed = commit
        .decoded_log::<BatchSettlement::EpochCommitted>()
        .unwrap();
    let reference = IBatchSettlement::EpochRef::from(&committed.reference());
    let position = fog_protocol::batch::entry_position(&epoch.entries, m.buyer.address()).unwrap();
    let buyer_batch = m.batch(&m.buyer);
    let balance_before = buyer_batch
        .accountOf(m.buyer.address())
        .call()
        .await
        .unwrap()
        .balance;
    send(buyer_batch.challenge(
        reference.clone(),
        epoch.entries.clone(),
        U256::from(position),
    ))
    .await;
    // No answer can back it: the padded job breaks the buyer's cap, the honest one does not add up.
    let err = m
        .batch(&m.operator)
        .answer(
            reference.clone(),
            m.buyer.address(),
            encode_jobs(vec![padded.to_chain(epoch.tree.proof(0).unwrap())]),
        )
        .call()
        .await
        .unwrap_err();
    assert!(
        err.as_decoded_interface_error::<BatchSettlement::BatchSettlementErrors>()
            .is_some_and(|e| matches!(
                e,
                BatchSettlement::BatchSettlementErrors::PaymentAboveAuth(_)
            )),
        "{err}"
    );
    let _ = honest;
    m.devnet
        .advance(u64::from(p.response_window) + 1)
        .await
        .unwrap();
    send(buyer_batch.resolve(reference, m.buyer.address())).await;
    let after = buyer_batch
        .accountOf(m.buyer.address())
        .call()
        .await
        .unwrap();
    let stake = p.challenge_stake;
    assert_eq!(
        U256::from(after.balance),
        U256::from(balance_before) + padded.total(),
        "the debit is repaid from the bond (the stake comes back)"
    );
    assert_eq!(
        U256::from(after.earned),
        padded.total() * U256::from(p.reward_bps) / U256::from(10_000u64)
    );
    assert!(buyer_batch.hubBook(m.hub).call().await.unwrap().frozen);
    let _ = stake;

    // The hub (now frozen) never commits the withheld job: its miner claims it alone.
    let miner = &m.miners[1];
    m.devnet.send_eth(miner.address(), ether(1)).await.unwrap();
    let now = m.devnet.now().await.unwrap();
    m.devnet.advance(deadline - now + 1).await.unwrap();
    let miner_batch = m.batch(miner);
    send(miner_batch.forceClaim(encode_job(withheld.to_chain(vec![])))).await;
    m.devnet.advance(u64::from(p.proof_window)).await.unwrap();
    let payout_miners = vec![miner.address()];
    let payout_amounts = vec![ether(1)];
    send(miner_batch.payClaim(withheld.job_id(), payout_miners, payout_amounts)).await;
    send(miner_batch.withdrawEarnings(miner.address(), ether(1))).await;
    assert_eq!(m.devnet.balance(miner.address()).await.unwrap(), ether(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_commits_epochs_serves_proofs_and_answers_challenges_by_itself() {
    use fog_hub::epochs::Epochs;
    use fog_hub::store::Store;
    let m = market().await;
    let d = m.devnet.deployment.clone();
    let p = d.params.batch.clone();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("hub.db").display()))
        .await
        .unwrap();
    let epochs = Epochs::new(
        store.clone(),
        m.devnet.provider(&m.hub_signer),
        d.batch,
        m.hub,
        d.block,
    )
    .await
    .unwrap();
    assert_eq!(
        epochs.commit_due().await.unwrap(),
        None,
        "nothing to commit"
    );

    let deadline = m.devnet.now().await.unwrap() + 3_600;
    let jobs: Vec<_> = (0..3u8)
        .map(|i| m.job(40 + i, usize::from(i), ether(1), ether(2), deadline))
        .collect();
    for job in &jobs {
        store.add_batch_job(job).await.unwrap();
    }
    assert!(matches!(
        store.add_batch_job(&jobs[0]).await,
        Err(fog_hub::store::StoreError::JobExists(_))
    ));
    // A job whose deadline is about to pass is not committed late: its miner claims it.
    let now = m.devnet.now().await.unwrap();
    let late = m.job(50, 0, ether(1), ether(2), now + 30);
    store.add_batch_job(&late).await.unwrap();

    assert_eq!(epochs.commit_due().await.unwrap(), Some(0));
    let batch = m.batch(&m.buyer);
    for job in &jobs {
        let proof = epochs.proof(job.job_id()).await.unwrap().unwrap();
        assert!(
            proof.verify(&d.domain()),
            "the leaf is in the committed tree"
        );
        assert_eq!(
            batch
                .epochHash(m.hub, proof.epoch.index)
                .call()
                .await
                .unwrap(),
            proof.epoch.stored_hash(),
            "and the tree is the one on chain"
        );
        assert_eq!(
            proof.leaf.receiptsCommitment,
            job.leaf().unwrap().receiptsCommitment
        );
    }
    assert_eq!(epochs.proof(late.job_id()).await.unwrap(), None);
    assert_eq!(
        store.batch_job(late.job_id()).await.unwrap().unwrap().state,
        "expired"
    );
    let paid: U256 = jobs.iter().map(|j| j.total()).sum();
    let account = batch.accountOf(m.buyer.address()).call().await.unwrap();
    assert_eq!(U256::from(account.balance), ether(100) - paid);

    // One epoch open at a time.
    store
        .add_batch_job(&m.job(60, 0, ether(1), ether(2), deadline))
        .await
        .unwrap();
    assert_eq!(epochs.commit_due().await.unwrap(), None);

    // A miner doubts its credit: the hub answers by itself, with the jobs behind it.
    let miner = &m.miners[1];
    fund_account(&m.devnet, miner, p.challenge_stake).await;
    let record = store.epoch(0).await.unwrap().unwrap();
    let reference = IBatchSettlement::EpochRef {
        hub: m.hub,
        index: 0,
        root: record.root,
        ledgerHash: record.ledger_hash,
        committedAt: alloy::primitives::aliases::U40::from(record.committed_at),
    };
    let position = fog_protocol::batch::entry_position(&record.entries, miner.address()).unwrap();
    send(
        m.batch(miner)
            .challenge(reference, record.entries.clone(), U256::from(position)),
    )
    .await;
    assert_eq!(
        epochs.commit_due().await.unwrap(),
        None,
        "not while a challenge is open"
    );
    assert_eq!(epochs.answer_challenges().await.unwrap(), 1);
    assert_eq!(
        epochs.answer_challenges().await.unwrap(),
        0,
        "answered once"
    );
    let challenge = batch
        .challengeOf(m.hub, 0, miner.address())
        .call()
        .await
        .unwrap();
    assert_eq!(challenge.status, 2, "Answered");

    // The next epoch once the windows have passed.
    m.devnet
        .advance(u64::from(p.challenge_window + p.response_window) + 1)
        .await
        .unwrap();
    assert_eq!(epochs.commit_due().await.unwrap(), Some(1));

    // A miner claims a job the epoch already paid: the hub shows it paid, the claim is void.
    let now = m.devnet.now().await.unwrap();
    m.devnet
        .advance(deadline.saturating_sub(now) + 1)
        .await
        .unwrap();
    let greedy = &m.miners[0];
    m.devnet.send_eth(greedy.address(), ether(1)).await.unwrap();
    send(
        m.batch(greedy)
            .forceClaim(encode_job(jobs[0].to_chain(vec![]))),
    )
    .await;
    assert_eq!(epochs.contest_claims().await.unwrap(), 1);
    assert_eq!(epochs.contest_claims().await.unwrap(), 0, "contested once");
    assert_eq!(
        batch.claimOf(jobs[0].job_id()).call().await.unwrap().status,
        3,
        "Void"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_claims_a_job_no_epoch_paid_by_itself_after_its_deadline() {
    use fog_miner::settle::{KeptReceipt, Outcome, keep, receipt_path, settle_if_due};
    let m = market().await;
    let d = m.devnet.deployment.clone();
    let p = d.params.batch.clone();
    let deadline = m.devnet.now().await.unwrap() + 3_600;
    let job = m.job(70, 2, ether(1), ether(2), deadline);
    let miner = &m.miners[2];
    m.devnet.send_eth(miner.address(), ether(1)).await.unwrap();
    let (assignment, receipt) = job.receipts[0].clone();
    let work = tempfile::tempdir().unwrap();
    let kept = KeptReceipt {
        assignment,
        receipt,
        replicas: 1,
        auth: Some(job.auth.clone()),
    };
    let path = keep(work.path(), &kept).unwrap();
    assert_eq!(path, receipt_path(work.path(), job.job_id()));
    let chain = m.devnet.provider(miner);
    let rpc = m.devnet.anvil.endpoint();
    let look = || async {
        let at = std::fs::metadata(&path).unwrap().modified().unwrap();
        settle_if_due(&path, at, Duration::ZERO, &chain, &d, &rpc, miner, None).await
    };
    // Before the deadline the hub may still commit it (here it never will: it vanished).
    assert_eq!(look().await.unwrap(), Outcome::Waiting);
    let now = m.devnet.now().await.unwrap();
    m.devnet.advance(deadline - now + 1).await.unwrap();
    assert!(matches!(look().await.unwrap(), Outcome::Claimed(_)));
    assert_eq!(
        look().await.unwrap(),
        Outcome::Waiting,
        "the proof window runs"
    );
    m.devnet.advance(u64::from(p.proof_window)).await.unwrap();
    assert!(
        matches!(look().await.unwrap(), Outcome::Done(why) if why.contains("claimed and paid"))
    );
    let account = m
        .batch(miner)
        .accountOf(miner.address())
        .call()
        .await
        .unwrap();
    assert_eq!(
        U256::from(account.earned),
        ether(1),
        "paid from the buyer's account, no commission"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batched_job_runs_without_an_escrow_and_settles_in_an_epoch() {
    use fog_protocol::batch::{JobAuth, JobProof, SignedJobAuth, batch_job_id};
    use fog_protocol::{Signed, SignedJobSpec};
    use fog_tests::fleet::Fleet;
    use serde_json::json;
    use std::time::Duration;

    let mut fleet = Fleet::start("").await.unwrap();
    // The miner looks at its receipts every second: it must see the epoch pay it.
    let miner = fleet
        .start_miner_with("miner-a", 2_000, "", "self_settle_after_secs = 1")
        .unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let d = fleet.devnet.deployment.clone();
    let (_, info) = buyer.get("/v1/hub").await.unwrap();
    assert_eq!(
        info["batch"]["contract"]
            .as_str()
            .unwrap()
            .parse::<alloy::primitives::Address>()
            .unwrap(),
        d.batch,
        "the hub offers the batched path: {info}"
    );

    // The hub's bond (its operator's), and the buyer's account: one deposit.
    fleet.bond_hub(ether(1_000)).await.unwrap();
    deposit_with_permit(&fleet.devnet, &buyer.key, ether(3))
        .await
        .unwrap();

    let submit = |spec: &fog_protocol::JobSpec, auth: &SignedJobAuth| {
        let signed = SignedJobSpec::sign(spec.clone(), &buyer.key, &d.domain()).unwrap();
        json!({
            "jobId": batch_job_id(buyer.address(), auth.payload.salt),
            "spec": signed.payload,
            "signature": signed.signature.to_string(),
            "auth": auth,
        })
    };
    let authorise = |spec: &fog_protocol::JobSpec, salt: u8| -> SignedJobAuth {
        Signed::sign(
            JobAuth {
                salt: B256::repeat_byte(salt),
                specHash: spec.spec_hash(),
                hub: fleet.hub,
                maxPayment: spec.maxPayment,
                deadline: spec.deadline,
                replicas: spec.replicas,
                maxFeeBps: 500,
            },
            &buyer.key,
            &d.batch_domain(),
        )
        .unwrap()
    };

    // Refused: more than the account covers; terms that differ from the spec's.
    let mut dear = fleet.spec("true", 1);
    dear.maxPayment = ether(5);
    let (code, body) = buyer
        .post("/v1/jobs", &submit(&dear, &authorise(&dear, 1)))
        .await
        .unwrap();
    assert_eq!(code, 402, "{body}");
    assert!(body.to_string().contains("fog account deposit"), "{body}");
    let spec = fleet.spec("echo batched > /fog/out/x", 1);
    let mut other = authorise(&spec, 2);
    other.payload.maxPayment = ether(2);
    let other = Signed::sign(other.payload, &buyer.key, &d.batch_domain()).unwrap();
    let (code, body) = buyer
        .post("/v1/jobs", &submit(&spec, &other))
        .await
        .unwrap();
    assert_eq!(code, 422, "{body}");

    // Accepted with no transaction: it runs, and settles in the next epoch.
    let auth = authorise(&spec, 3);
    let job_id = batch_job_id(buyer.address(), auth.payload.salt);
    let (code, body) = buyer.post("/v1/jobs", &submit(&spec, &auth)).await.unwrap();
    assert_eq!(code, 201, "{body}");
    let done = buyer.wait(job_id, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        done["state"],
        "completed",
        "{done}\n{}",
        fleet.hub_proc.log()
    );
    let settled = buyer
        .wait_settled(job_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(settled["settlement"]["state"], "settled", "{settled}");

    // Provable against the chain: the leaf is in the committed epoch, which is the one on chain.
    let (code, proof) = buyer
        .get(&format!("/v1/jobs/{job_id}/proof"))
        .await
        .unwrap();
    assert_eq!(code, 200, "{proof}");
    let proof: JobProof = serde_json::from_value(proof).unwrap();
    assert!(proof.verify(&d.domain()));
    let batch = BatchSettlement::new(d.batch, fleet.devnet.provider(&buyer.key));
    assert_eq!(
        batch
            .epochHash(fleet.hub, proof.epoch.index)
            .call()
            .await
            .unwrap(),
        proof.epoch.stored_hash()
    );
    let receipt: fog_protocol::SignedReceipt =
        serde_json::from_value(settled["assignments"][0]["receipt"].clone()).unwrap();
    assert_eq!(
        proof.leaf.receiptsCommitment,
        fog_protocol::batch::receipts_commitment([&receipt.payload])
    );
    // The buyer paid the charge and the commission from its account; the miner earned the charge.
    let charge = receipt.payload.amountCharged;
    let total = charge + charge * U256::from(500u64) / U256::from(10_000u64);
    let account = batch.accountOf(buyer.address()).call().await.unwrap();
    assert_eq!(U256::from(account.balance), ether(3) - total);
    let earned = batch.accountOf(miner.address).call().await.unwrap();
    assert_eq!(U256::from(earned.earned), charge);
    let (code, _) = buyer
        .get_bytes(&format!("/v1/jobs/{job_id}/output"))
        .await
        .unwrap();
    assert_eq!(
        code, 200,
        "the output is released once the epoch is on chain"
    );
}
