//! Buyer data isolation and abuse limits on a live hub (anvil, the real
//! contracts, fog-hub on SQLite, real miners): one buyer cannot use, read or
//! detect another's data; storage is quota'd by what a key has at stake;
//! closed jobs' data is deleted after its retention; login state is bounded;
//! callers are rate-limited with 429 and Retry-After; the miners' socket
//! refuses malformed frames and keeps serving.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::time::Duration;

use fog_protocol::B256;
use fog_protocol::output::sha256;
use fog_tests::fleet::{Buyer, Fleet};
use serde_json::{Value, json};

/// Quotas small enough to hit in a test; everything else as shipped.
const SMALL_QUOTA: &str = "[storage]\nfree_bytes = 65536\nfree_blobs = 3\nbytes_per_token = 1048576\nblobs_per_token = 10\n";

async fn logged_in(fleet: &mut Fleet) -> Buyer {
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    buyer
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_buyer_cannot_use_read_or_detect_another_buyers_data() {
    let mut fleet = Fleet::start("").await.unwrap();
    let _miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let alice = logged_in(&mut fleet).await;
    let bob = logged_in(&mut fleet).await;
    let domain = fleet.devnet.deployment.domain();

    // Alice's private input, and her job that uses it.
    let secret = b"alice's private data\n".to_vec();
    let blob = alice.upload("secret.txt", &secret).await.unwrap();
    let mut spec = fleet.spec("cat /fog/in/secret.txt > /fog/out/copy", 1);
    spec.inputs = vec![blob.clone()];
    let job = fleet.open_escrow(&alice, &spec).await.unwrap();
    let (status, body) = alice.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    alice
        .wait_settled(job, Duration::from_secs(90))
        .await
        .unwrap();

    // Bob names Alice's blob in his own spec: refused, naming the blob.
    let mut theft = fleet.spec("cat /fog/in/secret.txt > /fog/out/stolen", 1);
    theft.inputs = vec![blob.clone()];
    let bob_job = fleet.open_escrow(&bob, &theft).await.unwrap();
    let (status, body) = bob.submit(bob_job, &theft, &domain).await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        message(&body).contains(&blob.contentHash.to_string()),
        "{body}"
    );

    // ... and gets exactly the same answer for a blob nobody has.
    let unknown = sha256(b"nobody has this");
    let mut probe = theft.clone();
    probe.inputs[0].contentHash = unknown;
    let probe_job = fleet.open_escrow(&bob, &probe).await.unwrap();
    let (status_unknown, body_unknown) = bob.submit(probe_job, &probe, &domain).await.unwrap();
    assert_eq!(status_unknown, 403);
    assert_eq!(
        message(&body_unknown).replace(&unknown.to_string(), "H"),
        message(&body).replace(&blob.contentHash.to_string(), "H"),
        "another tenant's blob must look like no blob"
    );

    // Reads: Alice's input, output and logs are not Bob's to see.
    let (code, _) = bob
        .get_bytes(&format!("/v1/blobs/{}", blob.contentHash))
        .await
        .unwrap();
    assert_eq!(code, 404);
    let (code, body) = bob
        .get(&format!("/v1/blobs/{}/info", blob.contentHash))
        .await
        .unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = bob.get(&format!("/v1/blobs/{unknown}/info")).await.unwrap();
    assert_eq!(code, 404, "{body}");
    let (_, status) = alice.get(&format!("/v1/jobs/{job}")).await.unwrap();
    let output: B256 = status["outputHash"].as_str().unwrap().parse().unwrap();
    for path in [
        format!("/v1/blobs/{output}"),
        format!("/v1/jobs/{job}/output"),
        format!("/v1/jobs/{job}/logs"),
        format!("/v1/jobs/{job}"),
    ] {
        let (code, bytes) = bob.get_bytes(&path).await.unwrap();
        assert_eq!(code, 404, "{path}: {}", String::from_utf8_lossy(&bytes));
    }
    // Alice reads her output by hash as well as through the job.
    let (code, archive) = alice
        .get_bytes(&format!("/v1/blobs/{output}"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(sha256(&archive), output);

    // Uploading the same bytes tells Bob nothing: the answer has the shape
    // and values of a first upload, and then the blob is his too.
    let (code, _, first) = bob
        .put_raw(
            &format!("/v1/blobs/{unknown}"),
            b"nobody has this".to_vec(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(code, 201, "{first}");
    let (code, _, again) = bob
        .put_raw(
            &format!("/v1/blobs/{}", blob.contentHash),
            secret.clone(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(code, 201, "{again}");
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&first), keys(&again));
    assert_eq!(again["public"], false);
    assert_eq!(again["size"], secret.len());
    // A body that does not hash to the name proves nothing: refused.
    let (code, _, body) = bob
        .put_raw(
            &format!("/v1/blobs/{}", blob.contentHash),
            b"guess".to_vec(),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(code, 400, "{body}");
    // Having the bytes, Bob may now use them.
    let mut own = theft.clone();
    own.deadline += 1;
    let own_job = fleet.open_escrow(&bob, &own).await.unwrap();
    let (status, body) = bob.submit(own_job, &own, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_blob_may_be_named_by_anyone() {
    let mut fleet = Fleet::start("").await.unwrap();
    let _miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let alice = logged_in(&mut fleet).await;
    let bob = logged_in(&mut fleet).await;
    let domain = fleet.devnet.deployment.domain();
    let dataset = alice.upload("data.txt", b"3\n1\n2\n").await.unwrap();
    let (code, body) = bob
        .post(
            &format!("/v1/blobs/{}/publish", dataset.contentHash),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(code, 404, "only its owner publishes: {body}");
    let (code, body) = alice
        .post(
            &format!("/v1/blobs/{}/publish", dataset.contentHash),
            &json!({}),
        )
        .await
        .unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["public"], true);
    let mut spec = fleet.spec("sort -n /fog/in/data.txt > /fog/out/sorted", 1);
    spec.inputs = vec![dataset];
    let job = fleet.open_escrow(&bob, &spec).await.unwrap();
    let (status, body) = bob.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let done = bob.wait(job, Duration::from_secs(60)).await.unwrap();
    assert_eq!(done["state"], "completed", "{done}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_quotad_by_what_a_key_has_at_stake() {
    let mut fleet = Fleet::start(SMALL_QUOTA).await.unwrap();
    let buyer = logged_in(&mut fleet).await;

    // Nothing at stake: 64 KiB and 3 blobs.
    let big = vec![7u8; 100 * 1024];
    let (code, _, body) = buyer
        .put_raw(&format!("/v1/blobs/{}", sha256(&big)), big.clone(), &[])
        .await
        .unwrap();
    assert_eq!(code, 413, "{body}");
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert!(
        message(&body).contains("quota is 65536 bytes and 3 blobs"),
        "{body}"
    );
    for i in 0..3u8 {
        buyer.upload("small", &[i; 10]).await.unwrap();
    }
    let (code, _, body) = buyer
        .put_raw(
            &format!("/v1/blobs/{}", sha256(&[9u8; 10])),
            vec![9u8; 10],
            &[],
        )
        .await
        .unwrap();
    assert_eq!(code, 413, "{body}");
    assert!(message(&body).contains("3 blobs"), "{body}");
    let (_, quota) = buyer.get("/v1/quota").await.unwrap();
    assert_eq!(quota["usedBlobs"], 3, "{quota}");
    assert_eq!(quota["maxBytes"], 65536, "{quota}");

    // An escrow it has open with this hub (1 token): 1 MiB and 10 blobs more.
    let spec = fleet.spec("true", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let escrow = [("x-fog-escrow", job.to_string())];
    let (code, _, body) = buyer
        .put_raw(&format!("/v1/blobs/{}", sha256(&big)), big.clone(), &escrow)
        .await
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let (_, quota) = buyer.get("/v1/quota").await.unwrap();
    assert_eq!(quota["maxBytes"], 65536 + 1048576, "{quota}");
    assert_eq!(quota["maxBlobs"], 13, "{quota}");

    // Naming someone else's escrow, or none that exists, buys nothing.
    let other = logged_in(&mut fleet).await;
    let (code, _, body) = other
        .put_raw(&format!("/v1/blobs/{}", sha256(&big)), big.clone(), &escrow)
        .await
        .unwrap();
    assert_eq!(code, 422, "{body}");
    assert!(message(&body).contains("opened by"), "{body}");
    let (code, _, body) = other
        .put_raw(
            &format!("/v1/blobs/{}", sha256(&big)),
            big,
            &[("x-fog-escrow", B256::repeat_byte(5).to_string())],
        )
        .await
        .unwrap();
    assert_eq!(code, 422, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_jobs_data_is_deleted_after_its_retention() {
    let mut fleet = Fleet::start(
        "[storage]\nretention_secs = 2\nunused_blob_secs = 2\nsweep_interval_secs = 1\n",
    )
    .await
    .unwrap();
    let _miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let buyer = logged_in(&mut fleet).await;
    let domain = fleet.devnet.deployment.domain();
    let input = buyer.upload("in.txt", b"kept while used\n").await.unwrap();
    let mut spec = fleet.spec("cp /fog/in/in.txt /fog/out/out.txt; echo logged", 1);
    spec.inputs = vec![input.clone()];
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let settled = buyer
        .wait_settled(job, Duration::from_secs(90))
        .await
        .unwrap();
    let expires = settled["dataExpiresAt"]
        .as_i64()
        .expect("an expiry once closed");
    assert!(expires > 0, "{settled}");
    // A blob nobody uses lapses too.
    let spare = buyer.upload("spare", b"unused").await.unwrap();

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (code, _) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/output"))
        .await
        .unwrap();
    assert_eq!(code, 404, "the output outlived its retention");
    let (_, logs) = buyer
        .get_bytes(&format!("/v1/jobs/{job}/logs"))
        .await
        .unwrap();
    assert!(logs.is_empty(), "{}", String::from_utf8_lossy(&logs));
    for hash in [input.contentHash, spare.contentHash] {
        let (code, _) = buyer.get(&format!("/v1/blobs/{hash}/info")).await.unwrap();
        assert_eq!(code, 404);
    }
    let blobs_dir = fleet.dir.path().join("hub/blobs");
    let left: Vec<_> = std::fs::read_dir(&blobs_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "tmp")
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "bytes left in the blob store: {left:?}");
    // The job's record stays.
    let (code, _) = buyer.get(&format!("/v1/jobs/{job}")).await.unwrap();
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_login_challenges_stays_bounded() {
    let mut fleet = Fleet::start(
        "[limits]\nmax_pending_challenges = 100\nchallenges_per_address_per_sec = 100000\nchallenges_per_address_burst = 100000\nper_address_per_sec = 100000\nper_address_burst = 100000\n",
    )
    .await
    .unwrap();
    // Nobody logged in: the flood comes from an anonymous caller.
    let buyer = fleet.buyer().await.unwrap();
    let (_, first) = buyer
        .post("/v1/auth/challenge", &json!({ "address": buyer.address() }))
        .await
        .unwrap();
    for _ in 0..1_000 {
        let (code, _) = buyer
            .post(
                "/v1/auth/challenge",
                &json!({ "address": fog_protocol::Address::repeat_byte(3) }),
            )
            .await
            .unwrap();
        assert_eq!(code, 200);
    }
    let metrics = reqwest::get(format!("{}/metrics", fleet.hub_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pending: u64 = metrics
        .lines()
        .find(|l| l.starts_with("fog_hub_pending_challenges "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("the pending_challenges gauge");
    assert!(pending <= 100, "{pending} challenges held");
    // The flood displaced the oldest challenge: it no longer logs anyone in.
    let signature = {
        use alloy::signers::SignerSync;
        buyer
            .key
            .sign_message_sync(first["message"].as_str().unwrap().as_bytes())
            .unwrap()
    };
    let (code, body) = buyer
        .post(
            "/v1/auth/login",
            &json!({ "address": buyer.address(), "nonce": first["nonce"], "signature": signature.to_string() }),
        )
        .await
        .unwrap();
    assert_eq!(code, 401, "{body}");
    // A fresh one still does.
    let mut again = fleet.buyer().await.unwrap();
    again.login().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_over_their_rate_get_429_with_retry_after() {
    let mut fleet = Fleet::start(
        "[limits]\nper_key_per_sec = 2\nper_key_burst = 5\nchallenges_per_address_per_sec = 1\nchallenges_per_address_burst = 8\n",
    )
    .await
    .unwrap();
    let buyer = logged_in(&mut fleet).await;
    let client = reqwest::Client::new();
    let mut limited = None;
    for _ in 0..20 {
        let r = client
            .get(format!("{}/v1/jobs", fleet.hub_url))
            .bearer_auth(buyer.token.as_deref().unwrap())
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("20 requests at once were all served under a burst of 5");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Health checks are never limited.
    for _ in 0..20 {
        let code = client
            .get(format!("{}/healthz", fleet.hub_url))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(code, 200);
    }
    // Login challenges per address have their own, stricter limit.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let (code, _) = buyer
            .post("/v1/auth/challenge", &json!({ "address": buyer.address() }))
            .await
            .unwrap();
        codes.push(code.as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
}

/// Malformed frames on the miners' socket, before and after login: each is
/// refused with an error frame or a closed connection, and the hub keeps
/// serving. Generated frames cover truncated JSON, wrong versions, unknown
/// message types, wrong field types, huge numbers and binary junk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_miners_socket_refuses_malformed_frames_and_keeps_serving() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let fleet = Fleet::start("").await.unwrap();
    let ws_url = format!("{}/v1/miner/ws", fleet.hub_url.replace("http", "ws"));
    let mut frames: Vec<Message> = vec![
        Message::Text("".into()),
        Message::Text("{".into()),
        Message::Text("null".into()),
        Message::Text("[]".into()),
        Message::Text(r#"{"v": 1}"#.into()),
        Message::Text(r#"{"v": 99, "msg": {"type": "hello"}}"#.into()),
        Message::Text(r#"{"v": -1, "msg": {}}"#.into()),
        Message::Text(r#"{"v": 1, "msg": {"type": "nope"}}"#.into()),
        Message::Text(r#"{"v": 1, "msg": {"type": "hello", "miner": 7, "agent": []}}"#.into()),
        Message::Text(
            r#"{"v": 1, "msg": {"type": "heartbeat", "seq": 1e400, "free": {}, "running": []}}"#
                .into(),
        ),
        Message::Text(format!(
            r#"{{"v": 1, "msg": {{"type": "hello", "miner": "0x{}", "agent": "x"}}, "extra": 1}}"#,
            "11".repeat(20)
        )
        .into()),
        Message::Text("a".repeat(100 * 1024).into()),
        Message::Binary(vec![0, 159, 146, 150].into()),
    ];
    // Random bytes as text, of assorted lengths.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    for len in [1usize, 7, 64, 513, 4096] {
        let bytes: Vec<u8> = (0..len).map(|_| rand::Rng::r#gen::<u8>(&mut rng)).collect();
        frames.push(Message::Text(
            String::from_utf8_lossy(&bytes).into_owned().into(),
        ));
    }
    for frame in frames {
        let (mut socket, _) = tokio_tungstenite::connect_async(&ws_url).await.unwrap();
        let _ = socket.send(frame.clone()).await;
        let answer = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("the hub neither answered nor closed");
        match answer {
            Some(Ok(Message::Text(t))) => assert!(t.contains("\"error\""), "{t}"),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {}
            other => panic!("unexpected answer to a malformed frame: {other:?}"),
        }
        let health = reqwest::get(format!("{}/healthz", fleet.hub_url))
            .await
            .unwrap()
            .status();
        assert_eq!(health, 200);
    }
    // After login the same frames are refused one by one and the session
    // goes on: a real heartbeat afterwards is still taken.
    let key = fog_protocol::PrivateKeySigner::random();
    let (mut ws, _) = fog_tests::handminer::log_in(&fleet, &key, 1_000)
        .await
        .unwrap();
    for junk in [
        "{",
        "[]",
        r#"{"v": 1, "msg": {"type": "nope"}}"#,
        r#"{"v": 2, "msg": {}}"#,
    ] {
        ws.send(Message::Text(junk.into())).await.unwrap();
        match fog_tests::handminer::recv(&mut ws).await.unwrap() {
            fog_protocol::wire::HubMessage::Error { message } => {
                assert!(
                    message.contains("refused") || message.contains("version"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
    fog_tests::handminer::send(
        &mut ws,
        fog_protocol::wire::MinerMessage::Heartbeat {
            seq: 1,
            free: fog_protocol::Resources::default(),
            running: vec![],
            services: vec![],
        },
    )
    .await
    .unwrap();
    fleet.wait_for_miners(1).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_one_json_shape_405_and_413_included() {
    let mut fleet = Fleet::start("[limits]\nmax_json_bytes = 2048\n")
        .await
        .unwrap();
    let buyer = logged_in(&mut fleet).await;
    let client = reqwest::Client::new();
    let url = &fleet.hub_url;
    let token = buyer.token.clone().unwrap();
    let cases = [
        (
            client.patch(format!("{url}/v1/jobs")),
            405,
            "method_not_allowed",
        ),
        (
            client.delete(format!("{url}/v1/hub")),
            405,
            "method_not_allowed",
        ),
        (
            client
                .post(format!("{url}/v1/quote"))
                .header("content-type", "application/json")
                .body(format!("{{\"spec\": \"{}\"}}", "x".repeat(4096))),
            413,
            "payload_too_large",
        ),
        (
            client.get(format!("{url}/v1/jobs/0x12")),
            400,
            "bad_request",
        ),
        (
            client.get(format!("{url}/v1/jobs?limit=zero")),
            400,
            "bad_request",
        ),
        (client.get(format!("{url}/v1/nowhere")), 404, "not_found"),
        (client.get(format!("{url}/v1/jobs")), 401, "unauthorized"),
        (
            client.post(format!("{url}/v1/auth/login")).body("{"),
            400,
            "bad_request",
        ),
    ];
    for (request, status, code) in cases {
        let request = if status == 401 || status == 405 {
            request
        } else {
            request.bearer_auth(&token)
        };
        let r = request.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(!message(&body).is_empty(), "{body}");
    }
}
