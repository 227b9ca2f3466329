//! End to end: the marketplace's promises checked on chain, with the real
//! binaries (`fog`, `fog-hub`, `fog-miner`), the real contracts on anvil and
//! the real Docker engine.
//!
//! - `make demo` itself, then the chain it leaves behind;
//! - a cheating miner in a k = 2 job: outvoted, unpaid, its record worse;
//! - the hub killed between the receipt and settling, and after sending the
//!   settlement but before seeing it mined;
//! - anvil stopped while a job runs and restarted from its state.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use alloy::providers::{Provider, ProviderBuilder};
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::{EscrowStatus, HubState};
use fog_protocol::output::sha256;
use fog_protocol::wire::{HubMessage, MinerMessage};
use fog_protocol::{Address, B256, Receipt, SignedReceipt, U256};
use fog_tests::fleet::Fleet;
use fog_tests::handminer;

/// Each miner paid by the job's settlement, from the escrow's ReceiptSettled events.
async fn paid_by_settlement(
    provider: &impl Provider,
    escrow: Address,
    job: B256,
) -> HashMap<Address, U256> {
    let escrow = JobEscrow::new(escrow, provider);
    let events = escrow
        .ReceiptSettled_filter()
        .topic1(job)
        .from_block(0)
        .query()
        .await
        .unwrap();
    events
        .into_iter()
        .map(|(e, _)| (e.receipt.miner, e.receipt.amountCharged))
        .collect()
}

/// How many JobSettled events the job has: a job settles at most once.
async fn settlements(provider: &impl Provider, escrow: Address, job: B256) -> usize {
    JobEscrow::new(escrow, provider)
        .JobSettled_filter()
        .topic1(job)
        .from_block(0)
        .query()
        .await
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn make_demo_runs_the_marketplace_and_the_chain_shows_it() {
    use fog_protocol::contracts::dao_treasury::DaoTreasury;
    use fog_protocol::contracts::fog_token::FogToken;
    use fog_protocol::contracts::hub_registry::HubRegistry;
    use fog_protocol::contracts::hub_wallet::HubWallet;

    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let bin_dir = fog_tests::binary("fog").unwrap();
    let bin_dir = bin_dir.parent().unwrap();
    let script = fog_tests::repo_root().join("deploy/dev/demo.sh");
    let run = |n: u32| {
        let out = std::process::Command::new("bash")
            .arg(&script)
            .env("FOG_DEMO_DIR", &demo_dir)
            .env("FOG_BIN_DIR", bin_dir)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "demo run {n} failed:\n{text}");
        text
    };
    // Twice: the second run starts over cleanly from what the first left.
    run(1);
    let said = run(2);
    for line in [
        "sum.txt says 5050",
        "verified: sha256",
        ": paid in an epoch",
        "answers: hello from a fog service",
        "differs from the receipts on chain",
        "kept as evidence: fog-evidence/",
        "Anyone can check that archive with the chain alone",
        "executed in",
        "blacklisted",
    ] {
        assert!(said.contains(line), "the demo never said {line:?}:\n{said}");
    }

    // The chain the demo left (anvil wrote its state on SIGTERM), reloaded.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(demo_dir.join("summary.json")).unwrap()).unwrap();
    let deployment =
        fog_protocol::deploy::Deployment::load(&demo_dir.join("deployment.json")).unwrap();
    let anvil = alloy::node_bindings::Anvil::at(fog_tests::devnet::anvil_path())
        .arg("--state")
        .arg(demo_dir.join("chain-state.json"))
        .try_spawn()
        .unwrap();
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    let addr = |v: &serde_json::Value| v.as_str().unwrap().parse::<Address>().unwrap();
    let job: B256 = summary["job"].as_str().unwrap().parse().unwrap();
    let hub = addr(&summary["hub"]);
    let buyer = addr(&summary["buyer"]);
    let miners: HashSet<Address> = summary["miners"]
        .as_array()
        .unwrap()
        .iter()
        .map(addr)
        .collect();

    // Act 1: settled once, by the two miners' agreeing receipts; every token accounted for.
    let escrow = JobEscrow::new(deployment.escrow, &provider);
    let record = escrow.getJob(job).call().await.unwrap();
    assert_eq!(
        EscrowStatus::from_code(record.status),
        EscrowStatus::Settled
    );
    assert_eq!(settlements(&provider, deployment.escrow, job).await, 1);
    let paid = paid_by_settlement(&provider, deployment.escrow, job).await;
    assert_eq!(paid.keys().copied().collect::<HashSet<_>>(), miners);
    let token = FogToken::new(deployment.token, &provider);
    for (miner, amount) in &paid {
        assert!(*amount > U256::ZERO);
        assert_eq!(token.balanceOf(*miner).call().await.unwrap(), *amount);
    }
    let whole = U256::from(10u64).pow(U256::from(18u64));
    let commission: U256 = summary["run"]["result"]["hubCommission"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let miners_paid: U256 = paid.values().copied().sum();
    assert_eq!(
        token.balanceOf(buyer).call().await.unwrap(),
        U256::from(100u64) * whole - miners_paid - commission,
        "the buyer paid the miners and the commission, and got the rest back"
    );
    let wallet = HubWallet::new(hub, &provider);
    assert_eq!(wallet.earnings().call().await.unwrap(), commission);

    // Act 2: the hub is blacklisted, its deposit frozen in the treasury.
    let registry = HubRegistry::new(deployment.registry, &provider);
    let info = registry.hubInfo(hub).call().await.unwrap();
    assert_eq!(HubState::from_code(info.state), HubState::Blacklisted);
    assert_eq!(wallet.deposit().call().await.unwrap(), U256::ZERO);
    let treasury = DaoTreasury::new(deployment.treasury, &provider);
    assert_eq!(treasury.lotCount().call().await.unwrap(), U256::from(1u8));
    let lot = treasury.lot(U256::ZERO).call().await.unwrap();
    assert_eq!(lot.hub, hub);
    assert_eq!(lot.amount, deployment.params.min_deposit);
    let now = provider
        .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
        .await
        .unwrap()
        .unwrap()
        .header
        .timestamp;
    assert!(lot.releaseAt > now, "the lot is still frozen");
    assert_eq!(
        token.balanceOf(deployment.treasury).call().await.unwrap(),
        deployment.params.min_deposit
    );
    let proposal: U256 = summary_proposal(&summary);
    let governor =
        fog_protocol::contracts::fog_governor::FogGovernor::new(deployment.governor, &provider);
    assert_eq!(
        governor.state(proposal).call().await.unwrap(),
        7,
        "executed"
    );
}

/// The hub operator's view of every miner's record: `fog-hub miners --json`.
fn miner_records(fleet: &Fleet) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(fog_tests::binary("fog-hub").unwrap())
        .args(["miners", "--json", "--config"])
        .arg(&fleet.hub_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn summary_proposal(summary: &serde_json::Value) -> U256 {
    summary["proposal"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cheating_miner_is_outvoted_unpaid_and_its_record_drops() {
    let mut fleet = Fleet::start("").await.unwrap();
    // Two miners at first: the honest one and the cheat, so k = 2 lands on both.
    let honest_a = fleet.start_miner("honest-a", 2_000, "").unwrap();
    let cheat = fog_protocol::PrivateKeySigner::random();
    let (mut ws, session) = handminer::log_in(&fleet, &cheat, 4_000).await.unwrap();
    fleet.wait_for_miners(2).await.unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("echo 42 > /fog/out/answer", 2);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (code, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(code, 201, "{body}");

    // The cheat skips the work: it uploads a made-up output and signs a receipt for it.
    let HubMessage::Assign { assignment, .. } = handminer::recv(&mut ws).await.unwrap() else {
        panic!("the cheat got no assignment")
    };
    assert_eq!(assignment.payload.jobId, job);
    handminer::send(&mut ws, MinerMessage::Accepted { job_id: job })
        .await
        .unwrap();
    let forged = b"the answer is 41".to_vec();
    let upload = reqwest::Client::new()
        .put(format!("{}/v1/miner/jobs/{job}/output", fleet.hub_url))
        .bearer_auth(&session)
        .body(forged.clone())
        .send()
        .await
        .unwrap();
    assert!(upload.status().is_success(), "{:?}", upload.text().await);
    let now = fog_tests::fleet::unix_now();
    let receipt = Receipt {
        jobId: job,
        specHash: spec.spec_hash(),
        hub: fleet.hub,
        miner: cheat.address(),
        imageId: B256::repeat_byte(7),
        outputHash: sha256(&forged),
        exitCode: 0,
        startedAt: now - 1,
        endedAt: now,
        cpuTimeMs: 1,
        peakMemoryBytes: 1,
        amountCharged: assignment.payload.maxCharge,
    };
    let receipt = SignedReceipt::sign(receipt, &cheat, &domain).unwrap();
    handminer::send(
        &mut ws,
        MinerMessage::Finished {
            receipt,
            output_size: forged.len() as u64,
            failure: None,
        },
    )
    .await
    .unwrap();

    // One honest receipt and one forged: no quorum, so the job waits for a third miner.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        let finished = status["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "finished")
            .count();
        if finished == 2 {
            assert_eq!(status["state"], "running", "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let honest_b = fleet.start_miner("honest-b", 2_000, "").unwrap();
    let done = buyer
        .wait_settled(job, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    assert_eq!(done["settlement"]["state"], "settled", "{done}");

    // Paid: the two honest miners, by the escrow; the cheat: nothing.
    let provider = fleet.devnet.provider(fleet.devnet.treasury_key());
    let paid = paid_by_settlement(&provider, fleet.devnet.deployment.escrow, job).await;
    assert_eq!(
        paid.keys().copied().collect::<HashSet<_>>(),
        HashSet::from([honest_a.address, honest_b.address])
    );
    for (miner, amount) in &paid {
        assert_eq!(fleet.devnet.balance(*miner).await.unwrap(), *amount);
    }
    assert_eq!(
        fleet.devnet.balance(cheat.address()).await.unwrap(),
        U256::ZERO
    );
    // The buyer gets the honest output.
    let (_, archive) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/output"))
        .await
        .unwrap();
    assert_ne!(sha256(&archive), sha256(&forged));

    // The operator's view of the records: the cheat disagreed with the quorum.
    let records = miner_records(&fleet);
    let record = |m: Address| {
        records
            .iter()
            .find(|r| r["miner"].as_str().unwrap().parse::<Address>().unwrap() == m)
            .unwrap_or_else(|| panic!("no record of {m}: {records:?}"))
            .clone()
    };
    let cheat_record = record(cheat.address());
    assert_eq!(cheat_record["disagreed"], 1, "{cheat_record}");
    assert_eq!(cheat_record["failed"], 0, "{cheat_record}");
    assert_eq!(cheat_record["completed"], 0, "{cheat_record}");
    for honest in [honest_a.address, honest_b.address] {
        let r = record(honest);
        assert_eq!(r["completed"], 1, "{r}");
        assert!(
            r["reputation"].as_f64().unwrap() > cheat_record["reputation"].as_f64().unwrap(),
            "{r} vs {cheat_record}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_before_its_settlement_is_mined_settles_exactly_once() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("sleep 1; echo once > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);

    // The chain stops mining: the hub's settlement is sent, stored as pending, not mined.
    fleet
        .devnet
        .rpc("evm_setAutomine", serde_json::json!([false]))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let pending_tx = loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if status["settlement"]["state"] == "pending" {
            break status["settlement"]["tx"].as_str().unwrap().to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Killed now, between sending and seeing the transaction mined.
    fleet.hub_proc.kill();
    fleet
        .devnet
        .rpc("evm_mine", serde_json::json!([]))
        .await
        .unwrap();
    fleet
        .devnet
        .rpc("evm_setAutomine", serde_json::json!([true]))
        .await
        .unwrap();
    fleet.restart_hub(Duration::ZERO).await.unwrap();
    buyer.login().await.unwrap();
    let done = buyer
        .wait_settled(job, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done["settlement"]["state"], "settled", "{done}");
    assert_eq!(
        done["settlement"]["tx"], pending_tx,
        "the first transaction is the settlement"
    );

    let provider = fleet.devnet.provider(fleet.devnet.treasury_key());
    assert_eq!(
        settlements(&provider, fleet.devnet.deployment.escrow, job).await,
        1
    );
    // The restarted hub sent nothing more: its signer's only transaction is that one.
    let signer = fog_protocol::contracts::hub_registry::HubRegistry::new(
        fleet.devnet.deployment.registry,
        &provider,
    )
    .hubInfo(fleet.hub)
    .call()
    .await
    .unwrap()
    .signer;
    assert_eq!(
        provider.get_transaction_count(signer).await.unwrap(),
        1,
        "one settlement transaction, ever"
    );
    let paid = paid_by_settlement(&provider, fleet.devnet.deployment.escrow, job).await;
    assert_eq!(
        fleet.devnet.balance(miner.address).await.unwrap(),
        paid[&miner.address]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_after_the_receipt_and_before_settling_settles_once_on_restart() {
    // The hub does not settle at first: the receipt is stored, nothing sent.
    let mut fleet = Fleet::start("[settlement]\nenabled = false\n")
        .await
        .unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("echo stored > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    assert!(done["settlement"]["state"].is_null(), "{done}");

    // Killed, and started again with settlement on: it settles, once.
    fleet.hub_proc.kill();
    let config = std::fs::read_to_string(&fleet.hub_config).unwrap();
    std::fs::write(
        &fleet.hub_config,
        config.replace("enabled = false", "enabled = true"),
    )
    .unwrap();
    fleet.restart_hub(Duration::ZERO).await.unwrap();
    buyer.login().await.unwrap();
    let settled = buyer
        .wait_settled(job, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(settled["settlement"]["state"], "settled", "{settled}");
    assert!(settled["settlement"]["tx"].is_string(), "{settled}");
    // Restarted once more: nothing is sent again.
    fleet.restart_hub(Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let provider = fleet.devnet.provider(fleet.devnet.treasury_key());
    assert_eq!(
        settlements(&provider, fleet.devnet.deployment.escrow, job).await,
        1
    );
    let paid = paid_by_settlement(&provider, fleet.devnet.deployment.escrow, job).await;
    assert_eq!(
        fleet.devnet.balance(miner.address).await.unwrap(),
        paid[&miner.address]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_is_retried_and_completes_after_the_chain_restarts() {
    let mut fleet = Fleet::start_with("", true).await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    fleet.wait_for_miners(1).await.unwrap();
    let spec = fleet.spec("sleep 3; echo survived > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let before = fleet.devnet.balance(buyer.address()).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if status["assignments"][0]["state"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The chain goes away while the job runs, and the job completes without it.
    fleet.devnet.stop_anvil().unwrap();
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    // Settlement attempts fail meanwhile (longer than the reads' own short
    // retries absorb), and are retried with backoff.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
    assert_ne!(status["settlement"]["state"], "settled", "{status}");
    fleet.devnet.resume_anvil().unwrap();
    let done = buyer
        .wait_settled(job, Duration::from_secs(90))
        .await
        .unwrap();
    assert_eq!(
        done["settlement"]["state"],
        "settled",
        "{done}\n{}",
        fleet.hub_proc.log()
    );
    assert!(
        fleet.hub_proc.log().contains("settlement will be retried"),
        "{}",
        fleet.hub_proc.log()
    );
    let provider = fleet.devnet.provider(fleet.devnet.treasury_key());
    assert_eq!(
        settlements(&provider, fleet.devnet.deployment.escrow, job).await,
        1
    );
    let paid = paid_by_settlement(&provider, fleet.devnet.deployment.escrow, job).await;
    let charged = paid[&miner.address];
    assert_eq!(fleet.devnet.balance(miner.address).await.unwrap(), charged);
    let after = fleet.devnet.balance(buyer.address()).await.unwrap();
    assert!(after > before, "the buyer got its change back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_that_sits_on_a_job_times_out_and_the_job_moves_on() {
    let mut fleet = Fleet::start(
        "[miners]\nheartbeat_interval_ms = 300\ntimeout_ms = 2500\nassignment_grace_secs = 1\n",
    )
    .await
    .unwrap();
    // A miner that accepts, heartbeats that it is running the job, and never finishes.
    let sitter = fog_protocol::PrivateKeySigner::random();
    let (mut ws, _) = handminer::log_in(&fleet, &sitter, 4_000).await.unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let mut spec = fleet.spec("echo done > /fog/out/x", 1);
    spec.maxDurationSecs = 2;
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let HubMessage::Assign { .. } = handminer::recv(&mut ws).await.unwrap() else {
        panic!("no assignment")
    };
    handminer::send(&mut ws, MinerMessage::Accepted { job_id: job })
        .await
        .unwrap();
    handminer::send(&mut ws, MinerMessage::Started { job_id: job })
        .await
        .unwrap();

    // Alive all along (heartbeats), but past 2 s + 1 s of grace from its
    // start it has timed out.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut cancelled = false;
    let mut seq = 0;
    loop {
        seq += 1;
        handminer::send(
            &mut ws,
            MinerMessage::Heartbeat {
                seq,
                free: Default::default(),
                running: if cancelled { vec![] } else { vec![job] },
                services: vec![],
            },
        )
        .await
        .unwrap();
        if let Ok(Ok(HubMessage::Cancel { job_id, reason })) =
            tokio::time::timeout(Duration::from_millis(300), handminer::recv(&mut ws)).await
        {
            assert_eq!(job_id, job);
            assert!(reason.contains("timed out"), "{reason}");
            cancelled = true;
        }
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if cancelled && status["assignments"][0]["state"] == "timed_out" {
            assert_eq!(status["state"], "running", "queued again: {status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
    }

    // An honest miner takes it over, and only it is paid.
    let honest = fleet.start_miner("honest", 2_000, "").unwrap();
    let done = buyer
        .wait_settled(job, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    let provider = fleet.devnet.provider(fleet.devnet.treasury_key());
    let paid = paid_by_settlement(&provider, fleet.devnet.deployment.escrow, job).await;
    assert_eq!(
        paid.keys().copied().collect::<Vec<_>>(),
        vec![honest.address]
    );

    let records = miner_records(&fleet);
    let sat = records
        .iter()
        .find(|r| r["miner"].as_str().unwrap().parse::<Address>().unwrap() == sitter.address())
        .unwrap();
    assert_eq!(sat["timedOut"], 1, "{sat}");
    assert_eq!(sat["dropped"], 0, "it never went away: {sat}");
    assert!(sat["reputation"].as_f64().unwrap() < 0.5, "{sat}");
}
