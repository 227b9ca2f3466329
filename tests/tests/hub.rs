//! The hub with real miners: a devnet with the contracts, `fog-hub serve`
//! (SQLite), `fog-miner run` processes on the real Docker engine, and
//! buyers over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::collections::HashSet;
use std::time::Duration;

use fog_protocol::output::sha256;
use fog_protocol::{Address, SignedReceipt};
use fog_tests::fleet::Fleet;
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
