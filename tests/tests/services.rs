//! Services end to end (docs/services.md): a real HTTP server image (built
//! FROM scratch by the set-up) started with `fog service up`, reached through
//! the hub's proxy, moved to another miner when its miner is killed, stopped
//! with `fog service stop`, and paid on chain for the time it served.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic

use std::time::{Duration, Instant};

use fog_protocol::contracts::batch_settlement::BatchSettlement;
use fog_protocol::{Address, U256};
use fog_tests::cli::{Buyer, import_key, text};
use fog_tests::fleet::{Fleet, image_id};
use serde_json::Value;

const PERIOD_SECS: u64 = 10;
/// 0.01 token per period.
fn price() -> U256 {
    U256::from(10u64).pow(U256::from(16u64))
}

/// A buyer of the fleet with a keystore for `fog`.
async fn cli_buyer(fleet: &mut Fleet) -> (Buyer, Address) {
    let funded = fleet.buyer().await.unwrap();
    let dir = fleet.dir.path().join(format!("buyer-{}", funded.address()));
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let imported = import_key(&keystore, &funded.key);
    assert!(imported.status.success(), "{}", text(&imported));
    (Buyer::on_chain(fleet, keystore, true), funded.address())
}

/// Writes a service file running `command` (the image's own when empty).
fn service_file(fleet: &Fleet, name: &str, command: &[&str]) -> String {
    let path = fleet.dir.path().join(name);
    let command: Vec<String> = command.iter().map(|c| format!("{c:?}")).collect();
    std::fs::write(
        &path,
        format!(
            "image = \"{image}\"\ncommand = [{command}]\nport = 8080\ncpus = 0.25\nmemory = \"64M\"\ndisk = \"32M\"\n\
             period_secs = {PERIOD_SECS}\nprice = \"0.01\"\nmax_spend = \"3\"\n\
             [health]\npath = \"/\"\ninterval_secs = 1\nfailures = 3\n",
            image = image_id("fog-test/httpd:latest").unwrap(),
            command = command.join(", "),
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn json(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", text(out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

async fn get(url: &str) -> Option<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let r = client.get(url).send().await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

fn batch(fleet: &Fleet) -> BatchSettlement::BatchSettlementInstance<alloy::providers::DynProvider> {
    BatchSettlement::new(
        fleet.devnet.deployment.batch,
        fleet.devnet.provider(fleet.devnet.treasury_key()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_answers_through_the_hub_moves_when_its_miner_dies_and_is_paid_for_the_time_served()
 {
    let mut fleet = Fleet::start("").await.unwrap();
    // The hub's bond backs its epochs.
    fleet
        .bond_hub(U256::from(100u64) * U256::from(10u64).pow(U256::from(18u64)))
        .await
        .unwrap();
    let mut miners = vec![
        fleet.start_miner("miner-a", 2_000, "").unwrap(),
        fleet.start_miner("miner-b", 2_000, "").unwrap(),
    ];
    fleet.wait_for_miners(2).await.unwrap();
    let (buyer, buyer_address) = cli_buyer(&mut fleet).await;
    let file = service_file(&fleet, "site.toml", &[]);

    // Up: no transaction (a permit funds the account through the hub).
    let up = json(&buyer.fog(&[
        "service",
        "up",
        "--json",
        &file,
        "--fund",
        "5",
        "--segment-periods",
        "30",
        "--wait",
        "120",
    ]));
    let service = up["serviceId"].as_str().unwrap().to_owned();
    let url = up["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("{}/s/{service}/", fleet.hub_url));
    let first_ok = Instant::now();
    let (code, body) = get(&url).await.expect("the hub answers");
    assert_eq!((code, body.as_str()), (200, "hello from a fog service\n"));

    // A streaming response arrives as it is made, not at its end.
    let started = Instant::now();
    let mut response = reqwest::get(format!("{url}cgi-bin/stream")).await.unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    let first_after = started.elapsed();
    assert!(String::from_utf8_lossy(&first).contains("chunk 1"));
    let mut rest = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert!(String::from_utf8_lossy(&rest).contains("chunk 3"));
    assert!(
        first_after < Duration::from_millis(1_500) && started.elapsed() >= Duration::from_secs(2),
        "first chunk after {first_after:?}, whole body after {:?}",
        started.elapsed()
    );

    // Which miner serves it, and which container.
    let status = json(&buyer.fog(&["service", "status", "--json", &service]));
    let serving: Address = status["segments"][0]["miner"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, first_host) = get(&format!("{url}cgi-bin/whoami")).await.unwrap();
    let victim = miners.iter().position(|m| m.address == serving).unwrap();

    // Serve a while, then kill its miner (-9: no goodbye).
    tokio::time::sleep(Duration::from_secs(2 * PERIOD_SECS + 3)).await;
    miners[victim].proc.kill();
    let killed = Instant::now();
    let served_before = killed.duration_since(first_ok);
    let mut back = None;
    while killed.elapsed() < Duration::from_secs(60) {
        if let Some((200, host)) = get(&format!("{url}cgi-bin/whoami")).await
            && host != first_host
        {
            back = Some(Instant::now());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let back = back.expect("the service answered again from another miner");
    let outage = back.duration_since(killed);
    assert!(outage < Duration::from_secs(30), "back after {outage:?}");
    eprintln!("service moved to another miner in {outage:?}");
    // The killed miner's container is cleaned when it starts again.
    fleet.restart_miner(&mut miners[victim]).unwrap();

    tokio::time::sleep(Duration::from_secs(2 * PERIOD_SECS + 3)).await;
    let stop = json(&buyer.fog(&["service", "stop", "--json", &service]));
    let stopped = Instant::now();
    assert_eq!(stop["state"], "stopped", "{stop}");
    let served_after = stopped.duration_since(back);
    match get(&url).await {
        Some((503 | 404, _)) => {}
        other => panic!("a stopped service still answers: {other:?}"),
    }

    // Its segments settle in epochs (the devnet's next epoch needs the
    // chain's clock moved past the challenge and response windows).
    let deadline = Instant::now() + Duration::from_secs(180);
    let settled = loop {
        let status = json(&buyer.fog(&["service", "status", "--json", &service]));
        let segments = status["segments"].as_array().unwrap().clone();
        let paid: Vec<&Value> = segments.iter().filter(|g| g["periods"] != 0).collect();
        if paid.len() >= 2 && paid.iter().all(|g| g["settlement"] == "settled") {
            break status;
        }
        assert!(Instant::now() < deadline, "not settled: {status}");
        fleet.devnet.advance(300).await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    };
    let segments = settled["segments"].as_array().unwrap();
    assert_eq!(
        segments[0]["endReason"], "its miner disconnected",
        "{settled}"
    );

    // Paid: what left the buyer's account (funded with 5 tokens by the
    // permit) matches the healthy time served within one period (and the
    // hub's one-second health-check granularity on each side).
    let account = batch(&fleet).accountOf(buyer_address).call().await.unwrap();
    let fund = U256::from(5u64) * U256::from(10u64).pow(U256::from(18u64));
    let paid = fund - U256::from(account.balance);
    let served = served_before + served_after;
    let expected = price() * U256::from(served.as_millis()) / U256::from(PERIOD_SECS * 1_000);
    let slack = price() + price() * U256::from(2u64) / U256::from(PERIOD_SECS);
    let diff = if paid > expected {
        paid - expected
    } else {
        expected - paid
    };
    assert!(
        diff <= slack,
        "paid {paid}, served {served:?} = {expected}: off by {diff} (more than one period)"
    );
    // Each miner was paid for its own stint only.
    let earned_first = batch(&fleet)
        .accountOf(serving)
        .call()
        .await
        .unwrap()
        .earned;
    let max_first = price() * U256::from(served_before.as_secs() / PERIOD_SECS + 1);
    assert!(
        U256::from(earned_first) > U256::ZERO && U256::from(earned_first) <= max_first,
        "the killed miner earned {earned_first}, at most {max_first} for {served_before:?}"
    );
    for m in &miners {
        m.wait_for_no_containers(Duration::from_secs(30))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_takes_upgraded_connections_and_reaches_nothing_but_its_own_loopback() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let (buyer, _) = cli_buyer(&mut fleet).await;

    // A server that upgrades any `Upgrade:` request into an echo pipe.
    let file = service_file(
        &fleet,
        "echo.toml",
        &["nc", "-ll", "-p", "8080", "-e", "/bin/upgrade-echo"],
    );
    let up = json(&buyer.fog(&["service", "up", "--json", &file, "--fund", "5"]));
    let service = up["serviceId"].as_str().unwrap().to_owned();
    let hub = fleet.hub_url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&hub).await.unwrap();
    socket
        .write_all(
            format!(
                "GET /s/{service}/ws HTTP/1.1\r\nHost: {hub}\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        socket.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for word in ["ping\n", "pong pong\n"] {
        socket.write_all(word.as_bytes()).await.unwrap();
        let mut back = vec![0u8; word.len()];
        tokio::time::timeout(Duration::from_secs(5), socket.read_exact(&mut back))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back, word.as_bytes());
    }
    drop(socket);
    let stop = json(&buyer.fog(&["service", "stop", "--json", &service]));
    assert_eq!(stop["state"], "stopped");

    // A service's container has its loopback and nothing else: no
    // interface towards the miner's host or other containers.
    let probe = service_file(
        &fleet,
        "probe.toml",
        &[
            "sh",
            "-c",
            "mkdir -p www && echo ok > www/index.html && cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' ' > www/ifaces \
             && (wget -q -T 2 -O- http://172.17.0.1:8545/ >/dev/null 2>&1 && echo reachable || echo unreachable) > www/host \
             && exec httpd -f -p 8080 -h www",
        ],
    );
    let up = json(&buyer.fog(&["service", "up", "--json", &probe, "--fund", "5"]));
    let url = up["url"].as_str().unwrap().to_owned();
    let (_, ifaces) = get(&format!("{url}ifaces")).await.unwrap();
    assert_eq!(ifaces.trim(), "lo", "interfaces seen inside: {ifaces}");
    let (_, host) = get(&format!("{url}host")).await.unwrap();
    assert_eq!(host.trim(), "unreachable");
    let service = up["serviceId"].as_str().unwrap().to_owned();
    json(&buyer.fog(&["service", "stop", "--json", &service]));
    miner
        .wait_for_no_containers(Duration::from_secs(30))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_service_requests_are_refused_with_what_to_fix() {
    let mut fleet = Fleet::start("").await.unwrap();
    let (buyer, _) = cli_buyer(&mut fleet).await;
    // A price that never pays one period of the replicas asked for.
    let path = fleet.dir.path().join("bad.toml");
    std::fs::write(
        &path,
        format!(
            "image = \"{}\"\nport = 8080\nreplicas = 2\nprice = \"1\"\nmax_spend = \"1\"\n",
            image_id("fog-test/httpd:latest").unwrap()
        ),
    )
    .unwrap();
    let out = buyer.fog(&["service", "up", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not pay one period of every replica"),
        "{}",
        text(&out)
    );
    // No money behind it: 402 says how much to deposit.
    let file = service_file(&fleet, "site.toml", &[]);
    let out = buyer.fog(&["service", "up", &file, "--wait", "5"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("deposit at least"), "{}", text(&out));
    // An unknown field in the file is named.
    std::fs::write(
        &path,
        "image = \"x\"\nport = 1\nprice = \"1\"\nmax_spend = \"1\"\nreplica = 2\n",
    )
    .unwrap();
    let out = buyer.fog(&["service", "up", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("replica"), "{}", text(&out));
    // Another buyer's or an unknown service: not found, alike.
    let out = buyer.fog(&["service", "status", &format!("0x{}", "ab".repeat(32))]);
    assert!(!out.status.success());
    assert!(text(&out).contains("no service"), "{}", text(&out));
}

/// Polls `url` until `host` (from /cgi-bin/whoami) differs from `from`;
/// returns the new host and how many requests failed meanwhile.
async fn wait_moved(url: &str, from: &str, within: Duration) -> (String, u32) {
    let until = Instant::now() + within;
    let mut failed = 0;
    while Instant::now() < until {
        match get(&format!("{url}cgi-bin/whoami")).await {
            Some((200, host)) if host != from => return (host, failed),
            Some((200, _)) => {}
            _ => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not move from {from} within {within:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_check_moves_the_service_and_a_draining_miner_hands_it_over_without_an_outage()
 {
    let mut fleet = Fleet::start("").await.unwrap();
    let mut miners = vec![
        fleet.start_miner("miner-a", 2_000, "").unwrap(),
        fleet.start_miner("miner-b", 2_000, "").unwrap(),
    ];
    fleet.wait_for_miners(2).await.unwrap();
    let (buyer, _) = cli_buyer(&mut fleet).await;

    // A server that stops answering after a while, its container still running.
    let flaky = service_file(
        &fleet,
        "flaky.toml",
        &[
            "sh",
            "-c",
            "httpd -f -p 8080 -h /www & sleep 8; kill $!; exec sleep 100000",
        ],
    );
    let up = json(&buyer.fog(&["service", "up", "--json", &flaky, "--fund", "5"]));
    let url = up["url"].as_str().unwrap().to_owned();
    let service = up["serviceId"].as_str().unwrap().to_owned();
    let (_, first) = get(&format!("{url}cgi-bin/whoami")).await.unwrap();
    wait_moved(&url, &first, Duration::from_secs(40)).await;
    let status = json(&buyer.fog(&["service", "status", "--json", &service]));
    assert_eq!(
        status["segments"][0]["endReason"], "its health check failed 3 times in a row",
        "{status}"
    );
    json(&buyer.fog(&["service", "stop", "--json", &service]));

    // A miner asked to stop hands its service over, then exits by itself.
    let steady = service_file(&fleet, "steady.toml", &[]);
    let up = json(&buyer.fog(&["service", "up", "--json", &steady, "--fund", "5"]));
    let url = up["url"].as_str().unwrap().to_owned();
    let service = up["serviceId"].as_str().unwrap().to_owned();
    let status = json(&buyer.fog(&["service", "status", "--json", &service]));
    let serving: Address = status["segments"][0]["miner"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let leaving = miners.iter().position(|m| m.address == serving).unwrap();
    let (_, first) = get(&format!("{url}cgi-bin/whoami")).await.unwrap();
    miners[leaving].proc.terminate().unwrap();
    let (_, failed) = wait_moved(&url, &first, Duration::from_secs(30)).await;
    assert_eq!(failed, 0, "requests failed during the hand-over");
    let until = Instant::now() + Duration::from_secs(30);
    while miners[leaving].proc.alive() {
        assert!(Instant::now() < until, "the drained miner did not exit");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for _ in 0..10 {
        let (code, body) = get(&url).await.unwrap();
        assert_eq!((code, body.as_str()), (200, "hello from a fog service\n"));
    }
    let status = json(&buyer.fog(&["service", "status", "--json", &service]));
    assert_eq!(
        status["segments"][0]["endReason"], "handed over to its successor",
        "{status}"
    );
    json(&buyer.fog(&["service", "stop", "--json", &service]));
    fleet.restart_miner(&mut miners[leaving]).unwrap();
    for m in &miners {
        m.wait_for_no_containers(Duration::from_secs(30))
            .await
            .unwrap();
    }
}

/// A service spec and `n` segment authorisations signed by `signer`.
fn signed_request(
    fleet: &Fleet,
    buyer: Address,
    signer: &fog_protocol::PrivateKeySigner,
    auths: &[(u64, U256)],
) -> (fog_protocol::service::ServiceSpec, Value) {
    use fog_protocol::batch::JobAuth;
    use fog_protocol::service::{HealthCheck, ServiceSpec, segment_salt, service_id};
    let spec = ServiceSpec {
        salt: fog_protocol::B256::repeat_byte(7),
        image: image_id("fog-test/httpd:latest").unwrap(),
        resources: fog_protocol::Resources {
            cpuMillicores: 250,
            memoryBytes: 64 << 20,
            diskBytes: 32 << 20,
            gpuCount: 0,
        },
        port: 8080,
        health: HealthCheck {
            path: "/".into(),
            intervalSecs: 1,
            failures: 3,
        },
        replicas: 1,
        periodSecs: 10,
        pricePerPeriod: price(),
        maxSpend: price() * U256::from(10u64),
        ..Default::default()
    };
    let id = service_id(buyer, spec.spec_hash());
    let deadline = fog_protocol::clock::unix_now() + 3_600;
    let signed: Vec<_> = auths
        .iter()
        .map(|(seq, amount)| {
            let auth = JobAuth {
                salt: segment_salt(id, *seq),
                specHash: spec.spec_hash(),
                hub: fleet.hub,
                maxPayment: *amount,
                deadline,
                replicas: 1,
                maxFeeBps: 500,
            };
            fog_protocol::Signed::sign(auth, signer, &fleet.devnet.deployment.batch_domain())
                .unwrap()
        })
        .collect();
    let body = serde_json::json!({ "spec": spec, "auths": signed });
    (spec, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_api_refuses_forged_mismatched_and_uncovered_authorisations() {
    let mut fleet = Fleet::start("").await.unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    let mut other = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    other.login().await.unwrap();
    let me = buyer.address();
    let three = price() * U256::from(3u64);

    // Signed by someone else for this buyer's service id: refused.
    let (_, body) = signed_request(&fleet, me, &other.key, &[(0, three)]);
    let (code, answer) = buyer.post("/v1/services", &body).await.unwrap();
    assert_eq!(code, 422, "{answer}");
    // Salts out of order.
    let (_, body) = signed_request(&fleet, me, &buyer.key, &[(1, three)]);
    let (code, answer) = buyer.post("/v1/services", &body).await.unwrap();
    assert_eq!(code, 422, "{answer}");
    assert!(answer.to_string().contains("segment_salt"), "{answer}");
    // More than maxSpend.
    let (_, body) = signed_request(
        &fleet,
        me,
        &buyer.key,
        &[(0, three), (1, price() * U256::from(8u64))],
    );
    let (code, answer) = buyer.post("/v1/services", &body).await.unwrap();
    assert_eq!(code, 422, "{answer}");
    assert!(answer.to_string().contains("maxSpend"), "{answer}");
    // Less than one period.
    let (_, body) = signed_request(&fleet, me, &buyer.key, &[(0, price() / U256::from(2u64))]);
    let (code, answer) = buyer.post("/v1/services", &body).await.unwrap();
    assert_eq!(code, 422, "{answer}");
    // Sound, but nothing in the account: 402 with how much.
    let (_, body) = signed_request(&fleet, me, &buyer.key, &[(0, three)]);
    let (code, answer) = buyer.post("/v1/services", &body).await.unwrap();
    assert_eq!(code, 402, "{answer}");
    assert!(answer.to_string().contains("deposit at least"), "{answer}");
    // Nothing was stored by any of them.
    let (code, list) = buyer.get("/v1/services").await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(list["services"], serde_json::json!([]), "{list}");
    // Another buyer's service id answers like an unknown one.
    let (spec, _) = signed_request(&fleet, me, &buyer.key, &[]);
    let id = fog_protocol::service::service_id(me, spec.spec_hash());
    for path in [
        format!("/v1/services/{id}"),
        format!("/v1/services/{id}/logs"),
    ] {
        let (code, _) = other.get(&path).await.unwrap();
        assert_eq!(code, 404, "{path}");
    }
    let (code, _) = other
        .post(&format!("/v1/services/{id}/stop"), &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(code, 404);
    // The proxy: unknown services 404, malformed ids too; JSON errors.
    let (code, body) = get(&format!("{}/s/{id}/", fleet.hub_url)).await.unwrap();
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let (code, _) = get(&format!("{}/s/nonsense/", fleet.hub_url))
        .await
        .unwrap();
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_keeps_its_container_across_a_hub_restart() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let (buyer, _) = cli_buyer(&mut fleet).await;
    let file = service_file(&fleet, "site.toml", &[]);
    let up = json(&buyer.fog(&["service", "up", "--json", &file, "--fund", "5"]));
    let url = up["url"].as_str().unwrap().to_owned();
    let service = up["serviceId"].as_str().unwrap().to_owned();
    let (_, host) = get(&format!("{url}cgi-bin/whoami")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(PERIOD_SECS + 2)).await;

    fleet.restart_hub(Duration::from_secs(1)).await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let again = loop {
        if let Some((200, h)) = get(&format!("{url}cgi-bin/whoami")).await {
            break h;
        }
        assert!(
            Instant::now() < until,
            "the service did not answer after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        again, host,
        "the same container serves after the hub's restart"
    );
    tokio::time::sleep(Duration::from_secs(PERIOD_SECS + 2)).await;
    let stop = json(&buyer.fog(&["service", "stop", "--json", &service]));
    let segments = stop["segments"].as_array().unwrap();
    assert_eq!(segments.len(), 1, "{stop}");
    assert_eq!(
        segments[0]["endReason"], "the buyer stopped the service",
        "{stop}"
    );
    // Billed before and after the restart: at least the two whole periods.
    assert!(segments[0]["periods"].as_u64().unwrap() >= 2, "{stop}");
    miner
        .wait_for_no_containers(Duration::from_secs(30))
        .await
        .unwrap();
}
