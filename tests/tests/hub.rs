//! The hub with real miners: a devnet with the contracts, `fog-hub serve`
//! (SQLite), `fog-miner run` processes on the real Docker engine, and
//! buyers over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::HashSet;
use std::time::Duration;

use fog_protocol::output::sha256;
use fog_protocol::{Address, SignedReceipt};
use fog_tests::fleet::Fleet;
use fog_tests::handminer;
use serde_json::json;

fn receipts(status: &serde_json::Value) -> Vec<SignedReceipt> {
    status["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "finished")
        .map(|a| serde_json::from_value(a["receipt"].clone()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_on_miners_and_k_replicas_land_on_distinct_miners() {
    let mut fleet = Fleet::start("").await.unwrap();
    let a = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let b = fleet.start_miner("miner-b", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();

    // k = 1 with an input: the output is the sorted input.
    let blob = buyer
        .upload("words.txt", b"pear\napple\nfig\n")
        .await
        .unwrap();
    let mut spec = fleet.spec("sort /fog/in/words.txt > /fog/out/sorted; echo sorted", 1);
    spec.inputs = vec![blob];
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        done["state"],
        "completed",
        "{done}\nhub:\n{}",
        fleet.hub_proc.log()
    );
    let rs = receipts(&done);
    assert_eq!(rs.len(), 1);
    rs[0].verify(&domain).unwrap();
    assert!([a.address, b.address].contains(&rs[0].payload.miner));
    buyer
        .wait_settled(job, Duration::from_secs(60))
        .await
        .unwrap();
    let (code, archive) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/output"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(
        sha256(&archive),
        rs[0].payload.outputHash,
        "the download is what the receipt says"
    );
    let (_, logs) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/logs"))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&logs).contains("sorted"),
        "{}",
        String::from_utf8_lossy(&logs)
    );

    // k = 2: two distinct miners, same output.
    let spec2 = fleet.spec("echo replicated > /fog/out/r", 2);
    let job2 = fleet.open_escrow(&buyer, &spec2).await.unwrap();
    let (status, body) = buyer.submit(job2, &spec2, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let done = buyer.wait(job2, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    let rs = receipts(&done);
    let miners: HashSet<Address> = rs.iter().map(|r| r.payload.miner).collect();
    assert_eq!(miners, HashSet::from([a.address, b.address]));
    assert_eq!(rs[0].payload.outputHash, rs[1].payload.outputHash);

    // Another buyer sees none of it.
    let mut other = fleet.buyer().await.unwrap();
    other.login().await.unwrap();
    for path in [
        format!("/v1/jobs/{job}"),
        format!("/v1/jobs/{job}/logs"),
        format!("/v1/jobs/{job}/output"),
    ] {
        let (code, body) = other.get(&path).await.unwrap();
        assert_eq!(code, 404, "{path}: {body}");
    }
    let (code, body) = other
        .post(&format!("/v1/jobs/{job}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(code, 404, "{body}");
    let (_, mine) = other.get("/v1/jobs").await.unwrap();
    assert_eq!(mine["jobs"].as_array().unwrap().len(), 0);
    let (_, theirs) = buyer.get("/v1/jobs").await.unwrap();
    assert_eq!(theirs["jobs"].as_array().unwrap().len(), 2);
}

/// Waits until the job has a live assignment; returns its miner.
async fn running_on(buyer: &fog_tests::fleet::Buyer, job: fog_protocol::B256) -> Address {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if let Some(a) = status["assignments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["state"] == "running")
        {
            return a["miner"].as_str().unwrap().parse().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never running: {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn states(status: &serde_json::Value) -> Vec<(Address, String)> {
    status["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["miner"].as_str().unwrap().parse().unwrap(),
                a["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_killed_mid_job_is_replaced_and_the_job_completes_once() {
    let mut fleet = Fleet::start("").await.unwrap();
    // One job's worth of CPU each: the job cannot run twice on one miner.
    let mut miners = [
        fleet.start_miner("miner-a", 1_000, "").unwrap(),
        fleet.start_miner("miner-b", 1_000, "").unwrap(),
    ];
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("sleep 3; echo survived > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);

    let first = running_on(&buyer, job).await;
    let victim = miners.iter_mut().find(|m| m.address == first).unwrap();
    victim.proc.kill();
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    let survivor = if first == miners[0].address {
        miners[1].address
    } else {
        miners[0].address
    };
    let mut seen = states(&done);
    seen.sort();
    let mut expected = vec![
        (first, "lost".to_owned()),
        (survivor, "finished".to_owned()),
    ];
    expected.sort();
    assert_eq!(seen, expected, "reassigned once, finished once");

    // Restarted, the killed miner removes the container it left behind.
    let victim = miners.iter_mut().find(|m| m.address == first).unwrap();
    fleet.restart_miner(victim).unwrap();
    victim
        .wait_for_no_containers(Duration::from_secs(20))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_job_restarts_and_the_job_completes_without_reassignment() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("sleep 3; echo after-restart > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    assert_eq!(running_on(&buyer, job).await, miner.address);

    fleet
        .restart_hub(Duration::from_millis(1_500))
        .await
        .unwrap();
    // Tokens do not survive a restart; buyers log in again.
    buyer.login().await.unwrap();
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        done["state"],
        "completed",
        "{done}\n{}",
        fleet.hub_proc.log()
    );
    assert_eq!(states(&done), vec![(miner.address, "finished".to_owned())]);
    buyer
        .wait_settled(job, Duration::from_secs(60))
        .await
        .unwrap();
    let (code, archive) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/output"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(sha256(&archive), receipts(&done)[0].payload.outputHash);
}

/// Sends a signal to a process by its id (`kill -STOP`, `kill -CONT`).
fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_away_past_its_timeout_gets_its_run_back_and_the_job_completes() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("sleep 14; echo came-back > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    assert_eq!(running_on(&buyer, job).await, miner.address);

    // The miner process freezes (its container runs on): the hub misses its
    // heartbeats, waits its timeout, and gives the run up for lost. The
    // only miner has then had the job, so nobody else can take it.
    let pid = miner.proc.pid().unwrap();
    signal(pid, "STOP");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if states(&status) == vec![(miner.address, "lost".to_owned())] {
            break;
        }
        if std::time::Instant::now() > deadline {
            signal(pid, "CONT");
            panic!("the run was never given up: {status}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    signal(pid, "CONT");

    // Back, still running it: the hub takes the run back and the job
    // completes on it instead of waiting for its deadline.
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        done["state"],
        "completed",
        "{done}\n{}",
        fleet.hub_proc.log()
    );
    assert_eq!(states(&done), vec![(miner.address, "finished".to_owned())]);
    buyer
        .wait_settled(job, Duration::from_secs(60))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_cannot_return_a_receipt_or_output_for_a_job_not_assigned_to_it() {
    use alloy::signers::SignerSync;
    use fog_protocol::wire::{HubMessage, MinerMessage, login_message};
    use fog_protocol::{PrivateKeySigner, Receipt, Resources};

    let mut fleet = Fleet::start("").await.unwrap();
    let honest = fleet.start_miner("honest", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("sleep 2; echo real > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    assert_eq!(running_on(&buyer, job).await, honest.address);

    // A rogue miner logs in properly, with an offer too small for any job.
    let rogue = PrivateKeySigner::random();
    let ws_url = format!("{}/v1/miner/ws", fleet.hub_url.replace("http://", "ws://"));
    let (mut ws, session) = handminer::log_in(&fleet, &rogue, 1).await.unwrap();
    let hub = fleet.hub;

    // Its receipt for the honest miner's job is refused, and the session goes on.
    let receipt = Receipt {
        jobId: job,
        specHash: spec.spec_hash(),
        hub,
        miner: rogue.address(),
        outputHash: fog_protocol::B256::repeat_byte(9),
        ..Default::default()
    };
    let receipt = fog_protocol::SignedReceipt::sign(receipt, &rogue, &domain).unwrap();
    handminer::send(
        &mut ws,
        MinerMessage::Finished {
            receipt,
            output_size: 1,
            failure: None,
        },
    )
    .await
    .unwrap();
    match handminer::recv(&mut ws).await.unwrap() {
        HubMessage::Error { message } => {
            assert!(message.contains("is not assigned to you"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    handminer::send(
        &mut ws,
        MinerMessage::Heartbeat {
            seq: 1,
            free: Resources::default(),
            running: vec![],
            services: vec![],
        },
    )
    .await
    .unwrap();

    // Nor may it upload an output for it, or fetch blobs it has no job for.
    let http = reqwest::Client::new();
    let put = http
        .put(format!("{}/v1/miner/jobs/{job}/output", fleet.hub_url))
        .bearer_auth(&session)
        .body(b"fake".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    assert!(put.text().await.unwrap().contains("not assigned to you"));
    let get = http
        .get(format!(
            "{}/v1/miner/blobs/{}",
            fleet.hub_url,
            fog_protocol::B256::repeat_byte(1)
        ))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 403);
    // A buyer's token is no miner session either way round.
    let (code, _) = buyer
        .get(&format!(
            "/v1/miner/blobs/{}",
            fog_protocol::B256::repeat_byte(1)
        ))
        .await
        .unwrap();
    assert_eq!(code, 403);

    // A login signed by another key is refused and the connection closed.
    let (mut ws2, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
    handminer::send(
        &mut ws2,
        MinerMessage::Hello {
            miner: honest.address,
            agent: "impostor".into(),
        },
    )
    .await
    .unwrap();
    let HubMessage::Challenge {
        hub,
        chain_id,
        nonce,
    } = handminer::recv(&mut ws2).await.unwrap()
    else {
        panic!()
    };
    let forged = rogue
        .sign_message_sync(login_message(hub, chain_id, nonce).as_bytes())
        .unwrap();
    handminer::send(&mut ws2, MinerMessage::Login { signature: forged })
        .await
        .unwrap();
    match handminer::recv(&mut ws2).await.unwrap() {
        HubMessage::Error { message } => assert!(
            message.contains(&format!("not {}", honest.address)),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }

    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed");
    assert_eq!(states(&done), vec![(honest.address, "finished".to_owned())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_4xx_with_a_reason_and_the_hub_keeps_serving() {
    let mut fleet = Fleet::start("[limits]\nmax_json_bytes = 65536\nmax_blob_bytes = 1024\n")
        .await
        .unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    let mut imposter = fleet.buyer().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let http = reqwest::Client::new();
    let hub_url = fleet.hub_url.clone();
    let url = |p: &str| format!("{hub_url}{p}");
    let raw = |body: String| {
        let req = http
            .post(url("/v1/jobs"))
            .header("content-type", "application/json")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    let spec = fleet.spec("true", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    // A signature of the right form (r, s, v = 27) that is nobody's.
    let good =
        json!({ "jobId": job, "spec": spec, "signature": format!("0x{}1b", "11".repeat(64)) });

    let (code, text) = raw("{not json".into()).await;
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("request body: key must be a string"),
        "{text}"
    );

    let (code, text) = raw(format!("{{\"pad\": \"{}\"}}", "x".repeat(100_000))).await;
    assert_eq!(code, 413, "{text}");

    let mut unknown = good.clone();
    unknown["spec"]["gpus"] = json!(1);
    let (code, text) = raw(unknown.to_string()).await;
    assert_eq!(code, 400);
    assert!(text.contains("unknown field `gpus`"), "{text}");

    let mut negative = good.clone();
    negative["spec"]["resources"]["cpuMillicores"] = json!(-1000);
    let (code, text) = raw(negative.to_string()).await;
    assert_eq!(code, 400);
    assert!(text.contains("invalid value: integer `-1000`"), "{text}");

    let mut garbage = good.clone();
    garbage["signature"] = json!("0x1234");
    let (code, text) = raw(garbage.to_string()).await;
    assert_eq!(code, 400, "garbage signature: {text}");
    assert!(text.contains("signature"), "{text}");
    let (code, text) = raw(good.to_string()).await;
    assert_eq!(code, 400, "nobody's signature: {text}");
    assert!(
        text.contains("signature does not recover to any address"),
        "{text}"
    );

    let mut zero = spec.clone();
    zero.replicas = 0;
    let (code, body) = buyer.submit(job, &zero, &domain).await.unwrap();
    assert_eq!(code, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("spec: replicas"),
        "{body}"
    );

    // Signed by someone else than the escrow's opener.
    let (code, body) = imposter.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(code, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("was opened by"),
        "{body}"
    );
    // No escrow at all.
    let (code, body) = buyer
        .submit(fog_protocol::B256::repeat_byte(5), &spec, &domain)
        .await
        .unwrap();
    assert_eq!(code, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no escrow is open"),
        "{body}"
    );
    // Another spec than the escrow locked.
    let mut other = spec.clone();
    other.maxDurationSecs += 1;
    let (code, body) = buyer.submit(job, &other, &domain).await.unwrap();
    assert_eq!(code, 422);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("locks spec"),
        "{body}"
    );

    // Auth and blobs.
    let (code, body) = buyer.get("/v1/jobs").await.unwrap();
    assert_eq!(code, 401, "{body}");
    buyer.login().await.unwrap();
    imposter.login().await.unwrap();
    let wrong = http
        .put(url(&format!(
            "/v1/blobs/{}",
            fog_protocol::B256::repeat_byte(3)
        )))
        .bearer_auth(buyer.token.as_ref().unwrap())
        .body(b"abc".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    assert!(wrong.text().await.unwrap().contains("hashes to"));
    let big = vec![7u8; 2048];
    let too_big = http
        .put(url(&format!("/v1/blobs/{}", sha256(&big))))
        .bearer_auth(buyer.token.as_ref().unwrap())
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let (code, body) = buyer.get("/v1/jobs/0x1234").await.unwrap();
    assert_eq!(code, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a 0x-prefixed 32-byte hex hash"),
        "{body}"
    );
    let (code, body) = buyer.get("/v1/jobs?limit=100000").await.unwrap();
    assert_eq!(code, 400, "{body}");
    let (code, body) = buyer.get("/v1/nothing").await.unwrap();
    assert_eq!(code, 404);
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    assert!(body["error"]["message"].is_string());
    let (code, body) = buyer.post("/v1/auth/login", &json!({ "address": buyer.address(), "nonce": fog_protocol::B256::ZERO, "signature": format!("0x{}1c", "22".repeat(64)) })).await.unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unknown or expired challenge"),
        "{body}"
    );

    // Still serving: a proper submission is accepted, health and metrics answer.
    let (code, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(code, 201, "{body}");
    let (code, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(code, 409, "submitted twice: {body}");
    let health = http.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = http
        .get(url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("fog_hub_submissions_total 1"), "{metrics}");
    assert!(
        metrics.contains("fog_hub_jobs{state=\"queued\"} 1"),
        "{metrics}"
    );
    assert!(fleet.hub_proc.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_a_running_job_and_a_cancelled_job_stops_on_its_miner() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();

    // Follow mode: one request, open while the job runs, closed when it ends.
    let spec = fleet.spec("echo first; sleep 2; echo second", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let started = std::time::Instant::now();
    let (code, body) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/logs?follow=true"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    let lines: Vec<serde_json::Value> = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text: String = lines.iter().map(|l| l["data"].as_str().unwrap()).collect();
    assert_eq!(text, "first\nsecond\n");
    assert!(
        lines
            .iter()
            .all(|l| l["miner"].as_str().unwrap().parse::<Address>().unwrap() == miner.address)
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "it waited for the job"
    );
    let (_, after) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/logs?after=1"))
        .await
        .unwrap();
    assert!(String::from_utf8(after).unwrap().contains("second"));
    let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
    assert_eq!(status["state"], "completed");

    // A buyer reads back its own upload, and only its own.
    let blob = buyer.upload("x", b"mine").await.unwrap();
    let (code, bytes) = buyer
        .get_bytes(&format!("/v1/blobs/{}", blob.contentHash))
        .await
        .unwrap();
    assert_eq!((code.as_u16(), bytes.as_slice()), (200, b"mine".as_slice()));
    let mut other = fleet.buyer().await.unwrap();
    other.login().await.unwrap();
    assert_eq!(
        other
            .get_bytes(&format!("/v1/blobs/{}", blob.contentHash))
            .await
            .unwrap()
            .0,
        404
    );

    // Cancel while it runs: the job ends cancelled, the miner kills and removes the container.
    let spec = fleet.spec("sleep 60", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    running_on(&buyer, job).await;
    let (code, body) = buyer
        .post(&format!("/v1/jobs/{job}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let done = buyer.wait(job, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done["state"], "cancelled");
    assert_eq!(states(&done), vec![(miner.address, "cancelled".to_owned())]);
    let (code, body) = buyer
        .post(&format!("/v1/jobs/{job}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(code, 409, "{body}");
    let (code, _) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/output"))
        .await
        .unwrap();
    assert_eq!(code, 409);
    miner
        .wait_for_no_containers(Duration::from_secs(15))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_refuses_to_start_with_a_key_or_address_the_registry_does_not_back() {
    let fleet = Fleet::start("").await.unwrap();
    let config = std::fs::read_to_string(&fleet.hub_config).unwrap();
    let dir = fleet.dir.path().join("misconfigured");
    std::fs::create_dir_all(&dir).unwrap();
    let (other_key, _) = fog_protocol::PrivateKeySigner::new_keystore(
        &dir,
        &mut rand::thread_rng(),
        "pw",
        Some("other.json"),
    )
    .unwrap();
    let serve = |text: String, password: &str| {
        let path = dir.join("hub.toml");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(fog_tests::binary("fog-hub").unwrap())
            .args(["serve", "--config"])
            .arg(&path)
            .env("FOG_HUB_KEY_PASSWORD", password)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let keystore_line = config.lines().find(|l| l.starts_with("keystore")).unwrap();
    let other = config.replace(
        keystore_line,
        &format!("keystore = \"{}\"", dir.join("other.json").display()),
    );
    let err = serve(other.clone(), "pw");
    assert!(
        err.contains(&format!("but this hub's key is {}", other_key.address())),
        "{err}"
    );
    let hub_line = other.lines().find(|l| l.starts_with("hub =")).unwrap();
    let unregistered = other.replace(
        hub_line,
        "hub = \"0x2222222222222222222222222222222222222222\"",
    );
    let err = serve(unregistered, "pw");
    assert!(err.contains("is not active in the registry"), "{err}");
    let err = serve(config.clone(), "wrong password");
    assert!(err.contains("keystore"), "{err}");
    let rpc_line = config.lines().find(|l| l.starts_with("rpc_url")).unwrap();
    let unreachable = config.replace(rpc_line, "rpc_url = \"http://127.0.0.1:9\"");
    let err = serve(unreachable, fog_tests::fleet::PASSWORD);
    assert!(
        err.contains("chain: reading the chain") || err.contains("127.0.0.1:9"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_caps_the_logs_it_stores_from_a_flooding_miner() {
    use fog_protocol::wire::{HubMessage, LogStream, MinerMessage};
    let mut fleet = Fleet::start("").await.unwrap();
    let flooder = fog_protocol::PrivateKeySigner::random();
    let (mut ws, _) = handminer::log_in(&fleet, &flooder, 4_000).await.unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("true", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let HubMessage::Assign { assignment, .. } = handminer::recv(&mut ws).await.unwrap() else {
        panic!("no assignment")
    };
    assert_eq!(assignment.payload.jobId, job);
    handminer::send(&mut ws, MinerMessage::Accepted { job_id: job })
        .await
        .unwrap();
    let chunk = "x".repeat(1 << 20);
    for _ in 0..5 {
        handminer::send(
            &mut ws,
            MinerMessage::Log {
                job_id: job,
                stream: LogStream::Stdout,
                data: chunk.clone(),
            },
        )
        .await
        .unwrap();
    }
    // The frames are in order: once this heartbeat is through, so are the logs.
    handminer::send(
        &mut ws,
        MinerMessage::Heartbeat {
            seq: 1,
            free: Default::default(),
            running: vec![job],
            services: vec![],
        },
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, body) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/logs"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    let kept: usize = String::from_utf8(body)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["data"]
                .as_str()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(
        kept,
        fog_hub::engine::MAX_LOG_BYTES_PER_MINER,
        "5 MiB sent, 2 MiB kept"
    );
}

/// A fleet whose hub does not settle, one miner (with gas money, for its own
/// settlements; `chain_extra` goes to its `[chain]` section), and a job it
/// completed running `script`: the receipt's charge is not yet paid.
async fn unsettled_job(
    chain_extra: &str,
    script: &str,
) -> (
    Fleet,
    fog_tests::fleet::Miner,
    fog_protocol::B256,
    serde_json::Value,
) {
    let mut fleet = Fleet::start("[settlement]\nenabled = false\n")
        .await
        .unwrap();
    let miner = fleet
        .start_miner_with("miner-a", 2_000, "", chain_extra)
        .unwrap();
    fleet
        .devnet
        .send_eth(
            miner.address,
            fog_protocol::U256::from(10u64).pow(fog_protocol::U256::from(18u64)),
        )
        .await
        .unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec(script, 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed");
    (fleet, miner, job, done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_settles_its_own_receipt_when_the_hub_does_not() {
    let (fleet, miner, job, done) = unsettled_job("", "echo paid > /fog/out/x").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        done["settlement"]["state"].is_null(),
        "the hub does not settle: {done}"
    );
    let charged = receipts(&done)[0].payload.amountCharged;

    let settle = |job: String| {
        std::process::Command::new(fog_tests::binary("fog-miner").unwrap())
            .args(["settle", &job, "--config"])
            .arg(&miner.config)
            .env("FOG_MINER_KEY_PASSWORD", fog_tests::fleet::PASSWORD)
            .output()
            .unwrap()
    };
    let out = settle(job.to_string());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("paid this miner {charged}")),
        "{said}"
    );
    assert_eq!(fleet.devnet.balance(miner.address).await.unwrap(), charged);
    let again = settle(job.to_string());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already settled"),
        "{again:?}"
    );
    let unknown = settle(fog_protocol::B256::repeat_byte(4).to_string());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("returned no receipt"),
        "{unknown:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_settles_by_itself_once_the_hub_lets_its_window_pass() {
    let (fleet, miner, job, done) =
        unsettled_job("self_settle_after_secs = 2", "echo unasked > /fog/out/x").await;
    let charged = receipts(&done)[0].payload.amountCharged;

    // Nobody runs `fog-miner settle`: the agent does it after 2 s.
    let work = miner.config.parent().unwrap().join("work");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fleet.devnet.balance(miner.address).await.unwrap() != charged {
        assert!(
            std::time::Instant::now() < deadline,
            "not settled by the miner:\n{}",
            miner.proc.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The agent logs it once its wait for the receipt returns: a moment after
    // the balance shows the payment.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !miner.proc.log().contains("settled it ourselves") {
        assert!(std::time::Instant::now() < deadline, "{}", miner.proc.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its receipt is retired, kept as the miner's record.
    let kept = work.join("receipts/done").join(format!("{job}.json"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !kept.is_file() {
        assert!(std::time::Instant::now() < deadline, "{kept:?} missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!work.join("receipts").join(format!("{job}.json")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_waiting_for_confirmations_takes_a_job_only_once_its_escrow_is_deep_enough() {
    let mut fleet = Fleet::start("confirmations = 3\n").await.unwrap();
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("echo deep > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();

    // Opened in the latest block: too early, and nothing is queued.
    let (code, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(code, 425, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("waits for 3 confirmations"),
        "{body}"
    );
    let (code, _) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
    assert_eq!(code, 404);
    // A job with no escrow at all is still refused outright.
    let (code, body) = buyer
        .submit(fog_protocol::B256::repeat_byte(6), &spec, &domain)
        .await
        .unwrap();
    assert_eq!(code, 422, "{body}");

    for _ in 0..3 {
        fleet
            .devnet
            .rpc("evm_mine", serde_json::json!([]))
            .await
            .unwrap();
    }
    let (code, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(code, 201, "{body}");
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_asking_for_gvisor_runs_only_on_a_gvisor_miner() {
    let mut fleet = Fleet::start("").await.unwrap();
    let runc = fleet.start_miner("miner-runc", 2_000, "").unwrap();
    let gvisor = fleet
        .start_miner("miner-gvisor", 2_000, "[sandbox]\nruntime = \"runsc\"\n")
        .unwrap();
    fleet.wait_for_miners(2).await.unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    for (class, expected) in [
        ("gvisor", gvisor.address),
        ("container", runc.address),
        ("gvisor", gvisor.address),
    ] {
        let mut spec = fleet.spec("dmesg | head -1 > /fog/out/kernel; true", 1);
        spec.placement.labels = vec![format!("fog.isolation={class}")];
        let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
        let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
        assert_eq!(status, 201, "{body}");
        let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
        assert_eq!(done["state"], "completed", "{done}");
        let rs = receipts(&done);
        assert_eq!(rs.len(), 1);
        assert_eq!(
            rs[0].payload.miner, expected,
            "{class} job on the wrong miner"
        );
    }
    assert!(
        gvisor.proc.log().contains("runsc"),
        "the gVisor miner does not name its runtime:\n{}",
        gvisor.proc.log()
    );
}

/// Issue 14, point 5: the hub releases a job's output only once the job is
/// settled on chain, so no buyer downloads a result and then refunds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_are_held_until_the_job_is_settled_on_chain() {
    let mut fleet = Fleet::start("[settlement]\nenabled = false\n")
        .await
        .unwrap();
    let _miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("echo result > /fog/out/r", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
    let (code, body) = buyer.get(&format!("/v1/jobs/{job}/output")).await.unwrap();
    assert_eq!(code, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("released once its settlement is on chain"),
        "{body}"
    );
}

/// Polls the job until its escrow is released (or `within` passes).
async fn wait_released(
    buyer: &fog_tests::fleet::Buyer,
    job: fog_protocol::B256,
    within: Duration,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if status["settlement"]["state"] == "released" {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "escrow not released: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Issue 15: a job cancelled before any miner took it gives the buyer the
/// whole escrow back at once (the hub releases it on chain), not at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_before_it_runs_is_released_to_the_buyer_at_once() {
    let mut fleet = Fleet::start("").await.unwrap();
    let _miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let mut spec = fleet.spec("true", 1);
    spec.placement.region = "nowhere".into();
    let before = fleet.devnet.balance(buyer.address()).await.unwrap();
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let (code, body) = buyer
        .post(&format!("/v1/jobs/{job}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let released = wait_released(&buyer, job, Duration::from_secs(30)).await;
    assert_eq!(released["state"], "cancelled", "{released}");
    assert!(
        fleet.devnet.now().await.unwrap() < spec.deadline,
        "before the deadline"
    );
    assert_eq!(fleet.devnet.balance(buyer.address()).await.unwrap(), before);
}

/// Issue 15: a job cancelled while it runs is stopped, and the time its run
/// used is paid from the miner's receipt (the buyer got the logs: cancelling
/// must not make the run free); the rest of the escrow goes back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cancelled_while_it_runs_pays_the_time_used_and_refunds_the_rest() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let mut spec = fleet.spec("echo working; sleep 300", 1);
    spec.maxDurationSecs = 600;
    spec.deadline =
        fleet.devnet.now().await.unwrap() + 600 + fog_protocol::SETTLEMENT_WINDOW_SECS + 60;
    let before = fleet.devnet.balance(buyer.address()).await.unwrap();
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    // Running: its first log line is in.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, logs) = buyer.get(&format!("/v1/jobs/{job}/logs")).await.unwrap();
        if logs.to_string().contains("working") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never ran: {logs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, body) = buyer
        .post(&format!("/v1/jobs/{job}/cancel"), &json!({}))
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");

    let settled = {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
            if status["settlement"]["state"] == "settled" {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not settled: {status}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert_eq!(settled["state"], "cancelled", "{settled}");
    let paid = fleet.devnet.balance(miner.address).await.unwrap();
    assert!(paid > fog_protocol::U256::ZERO, "the time used is paid");
    let max = spec.maxPayment;
    assert!(
        paid * fog_protocol::U256::from(10u64) < max,
        "a few seconds of a 600 s allowance cost a fraction: {paid} of {max}"
    );
    let after = fleet.devnet.balance(buyer.address()).await.unwrap();
    assert!(
        after > before - max,
        "the unspent rest came back before the deadline"
    );
    assert!(
        fleet.devnet.now().await.unwrap() < spec.deadline,
        "before the deadline"
    );
    // The container is gone.
    miner
        .wait_for_no_containers(Duration::from_secs(30))
        .await
        .unwrap();
}

/// Issues 12 and 15: a job whose output is over its limit (here a 200 GB
/// sparse file in a 16 MiB disk) fails with the limit's words, is not
/// reassigned or held against the miner, and its performed run is still
/// paid: the buyer had its logs. The rest of the escrow comes back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_output_is_over_its_limit_fails_clearly_and_its_run_is_paid() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let spec = fleet.spec("echo the answer is 42; truncate -s 200G /fog/out/holes", 1);
    let before = fleet.devnet.balance(buyer.address()).await.unwrap();
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "failed", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(
        error.contains("output too large: ") && error.contains(" bytes, limit "),
        "{done}"
    );
    assert_eq!(
        done["assignments"].as_array().unwrap().len(),
        1,
        "not reassigned: {done}"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
        if status["settlement"]["state"] == "settled" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not settled: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let paid = fleet.devnet.balance(miner.address).await.unwrap();
    assert!(paid > fog_protocol::U256::ZERO, "the performed run is paid");
    let after = fleet.devnet.balance(buyer.address()).await.unwrap();
    assert!(after > before - spec.maxPayment, "the rest came back");
}

/// Issue 15: a job that fails because of itself (here its image exists
/// nowhere) ends failed at once, is not held against the miner, and its
/// buyer gets the escrow back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_run_fails_at_once_unblamed_and_refunded() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let mut spec = fleet.spec("true", 1);
    spec.image = format!("sha256:{}", "00".repeat(32));
    let before = fleet.devnet.balance(buyer.address()).await.unwrap();
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let done = buyer.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("cannot run"),
        "{done}"
    );
    assert_eq!(
        done["assignments"].as_array().unwrap().len(),
        1,
        "not reassigned: {done}"
    );
    wait_released(&buyer, job, Duration::from_secs(30)).await;
    assert_eq!(fleet.devnet.balance(buyer.address()).await.unwrap(), before);
    // The miner's record holds nothing against it.
    let records = std::process::Command::new(fog_tests::binary("fog-hub").unwrap())
        .args(["miners", "--json", "--config"])
        .arg(&fleet.hub_config)
        .output()
        .unwrap();
    assert!(records.status.success(), "{records:?}");
    let records: serde_json::Value = serde_json::from_slice(&records.stdout).unwrap();
    for r in records.as_array().unwrap() {
        if r["miner"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(&miner.address.to_string())
        {
            assert_eq!(r["failed"], 0, "{r}");
        }
    }
}
