//! The schema-driven fuzz run of a live hub: schemathesis (pinned, installed
//! by `make setup` into .fog/venv) reads the hub's own OpenAPI document and
//! throws generated requests at every operation, logged in as a buyer, for a
//! bounded time. It must find no server error, no answer that breaks the
//! schema, no undocumented status or content type.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::Command;

use fog_tests::fleet::Fleet;

/// Seconds the fuzz run may take (`FOG_API_FUZZ_SECS` overrides: longer in
/// `make test-deep`).
fn budget() -> u64 {
    std::env::var("FOG_API_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let st = fog_tests::repo_root().join(".fog/venv/bin/st");
    assert!(
        st.is_file(),
        "{} is missing: run `make setup` (it installs schemathesis)",
        st.display()
    );
    // Limits high enough that the run tests the API, not the rate limiter.
    let mut fleet = Fleet::start(
        "[limits]\nper_address_per_sec = 100000\nper_address_burst = 100000\nper_key_per_sec = 100000\nper_key_burst = 100000\nchallenges_per_address_per_sec = 100000\nchallenges_per_address_burst = 100000\n",
    )
    .await
    .unwrap();
    let _miner = fleet.start_miner("miner", 2_000, "").unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    // Something of the buyer's to find: a blob and a finished job.
    let blob = buyer.upload("in.txt", b"fuzz\n").await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    let mut spec = fleet.spec("cat /fog/in/in.txt > /fog/out/o", 1);
    spec.inputs = vec![blob];
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let (status, body) = buyer.submit(job, &spec, &domain).await.unwrap();
    assert_eq!(status, 201, "{body}");
    buyer
        .wait_settled(job, std::time::Duration::from_secs(90))
        .await
        .unwrap();

    let token = buyer.token.clone().unwrap();
    let url = fleet.hub_url.clone();
    let report = fleet.dir.path().join("schemathesis");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(st)
            .arg("run")
            .arg(format!("{url}/v1/openapi.json"))
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
                "--max-time",
                &budget().to_string(),
                // One worker: hypothesis compiling strategies on several
                // threads at once trips CPython 3.11 ("AST constructor
                // recursion depth mismatch"), an error of the tool, not the hub.
                "--workers",
                "1",
                "--request-timeout",
                "10",
                // The WebSocket is the wire protocol's, fuzzed in isolation.rs.
                "--exclude-path",
                "/v1/miner/ws",
                "--header",
                &format!("Authorization: Bearer {token}"),
                "--report",
                "junit",
                "--report-dir",
            ])
            .arg(&report)
            // Its cache and crash manifests go beside the report, not into the repository.
            .current_dir(report.parent().unwrap_or(std::path::Path::new("/tmp")))
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}\nhub log:\n{}",
        fleet
            .hub_proc
            .log()
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!("{stdout}");
    // It really ran: operations were tested.
    assert!(stdout.contains("passed"), "{stdout}");
}
