//! `fog` as a buyer runs it: the real binary against a real hub, miner,
//! Docker engine and chain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::Command;

use fog_protocol::U256;
use fog_tests::fleet::Fleet;

use fog_tests::cli::{Buyer, PASSWORD, import_key, json_field, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fog_job_run_gets_verified_output_and_reports_payments() {
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let mut funded = fleet.buyer().await.unwrap();
    let dir = fleet.dir.path().join("buyer");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();

    // Import the funded key; the secret comes from the environment, never argv.
    let imported = import_key(&keystore, &funded.key);
    assert!(imported.status.success(), "{}", text(&imported));
    assert_eq!(
        String::from_utf8_lossy(&imported.stdout).trim(),
        funded.address().to_string()
    );
    let bad = Command::new(fog_tests::binary("fog").unwrap())
        .args([
            "key",
            "import",
            "--keystore",
            dir.join("bad.json").to_str().unwrap(),
        ])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .env("FOG_IMPORT_KEY", "not a key")
        .output()
        .unwrap();
    assert!(
        text(&bad).contains("the private key is not hex"),
        "{}",
        text(&bad)
    );

    let buyer = Buyer::on_chain(&fleet, keystore.clone(), true);
    let input = dir.join("words.txt");
    std::fs::write(&input, "pear\napple\nfig\n").unwrap();
    let out = dir.join("result");
    let before = fleet.devnet.balance(funded.address()).await.unwrap();
    let run = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--memory",
        "64M",
        "--disk",
        "16M",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--max-price",
        "1",
        "--wait",
        "--json",
        "--",
        "sh",
        "-c",
        "sort /fog/in/words.txt > /fog/out/sorted; echo sorted it",
    ]);
    assert!(
        run.status.success(),
        "{}\nhub:\n{}",
        text(&run),
        fleet.hub_proc.log()
    );
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("sorted it"),
        "logs follow: {}",
        text(&run)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("sorted")).unwrap(),
        "apple\nfig\npear\n"
    );
    let result = &report["result"];
    assert_eq!(
        result["miners"][0]["miner"]
            .as_str()
            .unwrap()
            .parse::<fog_protocol::Address>()
            .unwrap(),
        miner.address
    );
    let paid: U256 = result["miners"][0]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let commission: U256 = result["hubCommission"].as_str().unwrap().parse().unwrap();
    let refund: U256 = result["refund"].as_str().unwrap().parse().unwrap();
    let locked: U256 = report["locked"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        paid + commission + refund,
        locked,
        "every locked unit accounted for"
    );
    assert_eq!(
        fleet.devnet.balance(funded.address()).await.unwrap(),
        before - paid - commission
    );
    assert_eq!(fleet.devnet.balance(miner.address).await.unwrap(), paid);

    let status = buyer.fog(&["job", "status", report["jobId"].as_str().unwrap()]);
    assert!(
        text(&status).contains("completed") && text(&status).contains("settlement: settled"),
        "{}",
        text(&status)
    );
    let list = buyer.fog(&["job", "ls"]);
    assert!(
        text(&list).lines().any(|l| {
            l.split_whitespace().collect::<Vec<_>>()
                == [
                    report["jobId"].as_str().unwrap(),
                    "submitted",
                    "completed",
                    "settled",
                    "-",
                ]
        }),
        "{}",
        text(&list)
    );
    // The logs stay readable after the job ended (for the retention period).
    let logs = buyer.fog(&["job", "logs", report["jobId"].as_str().unwrap()]);
    assert!(
        logs.status.success() && String::from_utf8_lossy(&logs.stdout).contains("sorted it"),
        "{}",
        text(&logs)
    );
    assert!(
        text(&status).contains("kept until"),
        "the status says how long: {}",
        text(&status)
    );

    // A third party holding the archive checks it with the chain alone: no
    // key, no hub, no password.
    funded.login().await.unwrap();
    let job_id = report["jobId"].as_str().unwrap();
    let (code, archive) = funded
        .get_bytes(&format!("/v1/jobs/{job_id}/output"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    let archive_file = dir.join("archive.tar");
    std::fs::write(&archive_file, &archive).unwrap();
    let third_party = Command::new(fog_tests::binary("fog").unwrap())
        .args(["job", "verify", job_id, "--archive"])
        .arg(&archive_file)
        .args(["--deployment", fleet.deployment.to_str().unwrap()])
        .args(["--chain-rpc", &fleet.devnet.anvil.endpoint()])
        .env_remove("FOG_KEY_PASSWORD")
        .env_remove("FOG_KEYSTORE")
        .env_remove("FOG_HUB_URL")
        .output()
        .unwrap();
    assert!(
        third_party.status.success() && text(&third_party).contains("verified: sha256"),
        "{}",
        text(&third_party)
    );

    // Refusals say what to do, and lock nothing.
    let before = fleet.devnet.balance(funded.address()).await.unwrap();
    let refusals: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--max-price", "0.000000000000000001"],
            "--max-price allows 0.000000000000000001 FOG: raise it",
        ),
        (
            vec!["--max-price", "1", "--region", "mars"],
            "no miner on this hub can ever run this job (0 could, 1 needed): too few miners match its region",
        ),
        (
            vec!["--max-price", "1", "--memory", "64G"],
            "lower --memory 64G (the largest offer has",
        ),
        (vec!["--max-price", "1", "--memory", "lots"], "--memory"),
        (
            vec!["--max-price", "1", "--input", "/no/such/file"],
            "--input /no/such/file",
        ),
        (vec!["--max-price", "-1"], "--max-price"),
        (vec!["--max-price", "1", "--cpus", "0"], "--cpus"),
    ];
    let fresh = dir.join("fresh");
    for (extra, expected) in refusals {
        let mut args = vec![
            "job",
            "run",
            "--image",
            &fleet.image,
            "--out",
            fresh.to_str().unwrap(),
        ];
        args.extend(extra.iter());
        args.extend(["--", "true"]);
        let refused = buyer.fog(&args);
        assert!(!refused.status.success(), "{extra:?} succeeded");
        assert!(
            text(&refused).contains(expected),
            "{extra:?}: {}",
            text(&refused)
        );
    }
    let reused = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--out",
        out.to_str().unwrap(),
        "--max-price",
        "1",
        "--",
        "true",
    ]);
    assert!(
        text(&reused).contains("exists and is not an empty directory"),
        "{}",
        text(&reused)
    );
    assert_eq!(
        fleet.devnet.balance(funded.address()).await.unwrap(),
        before,
        "nothing was locked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_no_miner_takes_is_refunded_after_its_deadline() {
    let mut fleet = Fleet::start("").await.unwrap();
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let mut funded = fleet.buyer().await.unwrap();
    funded.login().await.unwrap();
    let dir = fleet.dir.path().join("buyer");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let imported = import_key(&keystore, &funded.key);
    assert!(imported.status.success(), "{}", text(&imported));
    let buyer = Buyer::on_chain(&fleet, keystore, true);

    // No miner is in region "nowhere": the job waits, its deadline passes. The
    // deadline leaves the run and the settlement window, as the escrow demands.
    let mut spec = fleet.spec("true", 1);
    spec.placement.region = "nowhere".into();
    spec.maxDurationSecs = 1;
    spec.deadline =
        fleet.devnet.now().await.unwrap() + 1 + fog_protocol::SETTLEMENT_WINDOW_SECS + 5;
    let before = fleet.devnet.balance(funded.address()).await.unwrap();
    let job = fleet.open_escrow(&funded, &spec).await.unwrap();
    let (code, body) = funded
        .submit(job, &spec, &fleet.devnet.deployment.domain())
        .await
        .unwrap();
    assert_eq!(code, 201, "{body}");
    let early = buyer.fog(&["job", "refund", &job.to_string()]);
    assert!(text(&early).contains("has not passed"), "{}", text(&early));

    // The chain's clock passes the deadline.
    fleet
        .devnet
        .advance(fog_protocol::SETTLEMENT_WINDOW_SECS + 10)
        .await
        .unwrap();
    let refunded = buyer.fog(&["job", "refund", &job.to_string()]);
    assert!(refunded.status.success(), "{}", text(&refunded));
    assert!(text(&refunded).contains("refunded"), "{}", text(&refunded));
    assert_eq!(
        fleet.devnet.balance(funded.address()).await.unwrap(),
        before,
        "every locked token came back"
    );
    let twice = buyer.fog(&["job", "refund", &job.to_string()]);
    assert!(
        text(&twice).contains("already refunded"),
        "{}",
        text(&twice)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_runs_from_one_key_at_once_all_succeed() {
    let mut fleet = Fleet::start("").await.unwrap();
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let funded = fleet.buyer().await.unwrap();
    let dir = fleet.dir.path().join("buyer");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let imported = import_key(&keystore, &funded.key);
    assert!(imported.status.success(), "{}", text(&imported));
    let buyer = Buyer::on_chain(&fleet, keystore, true);

    // Three processes race for the same key's transaction and permit nonces.
    let runs: Vec<_> = (0..3)
        .map(|i| {
            let word = format!("run-{i}");
            let (head, rest) = (["job", "run"], buyer.args.clone());
            Command::new(fog_tests::binary("fog").unwrap())
                .args(head)
                .args(rest)
                .args([
                    "--image",
                    &fleet.image,
                    "--cpus",
                    "0.5",
                    "--memory",
                    "64M",
                    "--disk",
                    "16M",
                    "--max-price",
                    "1",
                    "--wait",
                    "--json",
                    "--",
                    "sh",
                    "-c",
                    &format!("echo {word} > /fog/out/word"),
                ])
                .current_dir(&dir)
                .env("FOG_KEY_PASSWORD", PASSWORD)
                .env("FOG_JOBS_DIR", &buyer.jobs_dir)
                .env_remove("FOG_HUB_URL")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut jobs = std::collections::HashSet::new();
    for (i, child) in runs.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "run {i}: {}", text(&out));
        let job = json_field(&out, "jobId");
        // Each unpacked into its own default directory, fog-out/<job id>.
        assert_eq!(
            std::fs::read_to_string(dir.join("fog-out").join(&job).join("word")).unwrap(),
            format!("run-{i}\n")
        );
        jobs.insert(job);
    }
    assert_eq!(jobs.len(), 3, "three distinct jobs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_hub_dies_is_listed_and_refunded_from_this_machine() {
    let mut fleet = Fleet::start("").await.unwrap();
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let funded = fleet.buyer().await.unwrap();
    let dir = fleet.dir.path().join("buyer");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let imported = import_key(&keystore, &funded.key);
    assert!(imported.status.success(), "{}", text(&imported));
    let buyer = Buyer::on_chain(&fleet, keystore.clone(), true);
    let before = fleet.devnet.balance(funded.address()).await.unwrap();

    // Submitted, then the hub disappears for good.
    let run = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--memory",
        "64M",
        "--disk",
        "16M",
        "--duration",
        "30",
        "--max-price",
        "1",
        "--json",
        "--",
        "sleep",
        "600",
    ]);
    assert!(run.status.success(), "{}", text(&run));
    let job = json_field(&run, "jobId");
    // The miner could take two CPUs, but one is in use: busy, not impossible.
    for _ in 0..150 {
        if text(&buyer.fog(&["job", "status", &job])).contains("miner ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let busy = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--cpus",
        "2",
        "--max-price",
        "1",
        "--",
        "true",
    ]);
    assert!(
        !busy.status.success()
            && text(&busy).contains("all miners that could run this job are busy now"),
        "{}",
        text(&busy)
    );
    fleet.hub_proc.kill();

    // The journal and the chain still know the job and the locked money.
    let listed = buyer.fog(&["job", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("did not answer"),
        "{}",
        text(&listed)
    );
    let rows: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["jobId"] == job.as_str())
        .unwrap_or_else(|| panic!("{job} not listed: {rows}"));
    assert_eq!(row["local"], "submitted", "{row}");
    assert_eq!(row["escrow"], "open", "{row}");
    assert_eq!(row["hub"], serde_json::Value::Null, "{row}");
    assert_eq!(row["refundable"], false, "{row}");

    // Not yet: the deadline protects the hub's right to settle.
    let early = buyer.fog(&["job", "refund", "--all"]);
    assert!(early.status.success(), "{}", text(&early));
    assert!(
        text(&early).contains("nothing to refund"),
        "{}",
        text(&early)
    );
    let no_hub = Buyer::on_chain(&fleet, keystore, false);
    let direct = no_hub.fog(&["job", "refund", &job]);
    assert!(
        !direct.status.success() && text(&direct).contains("has not passed"),
        "{}",
        text(&direct)
    );

    // Past the deadline (the CLI's default: an hour) the money comes back
    // with nothing but the chain and the key.
    fleet.devnet.advance(3_700).await.unwrap();
    let table = no_hub.fog(&["job", "list"]);
    assert!(
        text(&table).contains(&job) && text(&table).contains("refundable"),
        "{}",
        text(&table)
    );
    let refunded = no_hub.fog(&["job", "refund", "--all"]);
    assert!(refunded.status.success(), "{}", text(&refunded));
    assert!(
        text(&refunded).contains(&format!("of job {job}")),
        "{}",
        text(&refunded)
    );
    assert_eq!(
        fleet.devnet.balance(funded.address()).await.unwrap(),
        before,
        "every locked token came back"
    );
    let after = no_hub.fog(&["job", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(rows[0]["escrow"], "refunded", "{rows}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_registers_runs_and_exits_a_hub_from_the_cli() {
    let fleet = Fleet::start("").await.unwrap();
    let dir = fleet.dir.path().join("operator");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let created = Command::new(fog_tests::binary("fog").unwrap())
        .args(["key", "new", "--keystore", &keystore])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created));
    let me: fog_protocol::Address = String::from_utf8_lossy(&created.stdout)
        .trim()
        .parse()
        .unwrap();
    let op = Buyer::on_chain(&fleet, keystore, false);
    let faucet = op.fog(&["devnet", "faucet", "--amount", "20000"]);
    assert!(faucet.status.success(), "{}", text(&faucet));
    let whole = U256::from(10u64).pow(U256::from(18u64));
    let balance = op.fog(&["token", "balance"]);
    assert_eq!(
        String::from_utf8_lossy(&balance.stdout).trim(),
        "20000 FOG",
        "{}",
        text(&balance)
    );
    let balance = op.fog(&["token", "balance", "--json"]);
    let balance: serde_json::Value = serde_json::from_slice(&balance.stdout).unwrap();
    assert_eq!(
        balance["balance"]
            .as_str()
            .unwrap()
            .parse::<U256>()
            .unwrap(),
        U256::from(20_000u64) * whole
    );

    // Refusals carry the contract's own reason.
    let signer = fog_protocol::Address::repeat_byte(0x5a).to_string();
    let too_dear = op.fog(&[
        "hub",
        "register",
        "--deposit",
        "10000",
        "--fee",
        "5000",
        "--endpoint",
        "http://hub.test",
        "--signer",
        &signer,
    ]);
    assert!(
        text(&too_dear).contains("FeeTooHigh"),
        "{}",
        text(&too_dear)
    );
    let too_small = op.fog(&[
        "hub",
        "register",
        "--deposit",
        "1",
        "--fee",
        "100",
        "--endpoint",
        "http://hub.test",
        "--signer",
        &signer,
    ]);
    assert!(
        text(&too_small).contains("DepositTooSmall"),
        "{}",
        text(&too_small)
    );
    let too_poor = op.fog(&[
        "hub",
        "register",
        "--deposit",
        "30000",
        "--fee",
        "100",
        "--endpoint",
        "http://hub.test",
        "--signer",
        &signer,
    ]);
    assert!(
        text(&too_poor).contains("less than the"),
        "{}",
        text(&too_poor)
    );

    let registered = op.fog(&[
        "hub",
        "register",
        "--deposit",
        "10000",
        "--fee",
        "300",
        "--endpoint",
        "http://hub.test",
        "--signer",
        &signer,
        "--json",
    ]);
    assert!(registered.status.success(), "{}", text(&registered));
    let hub = json_field(&registered, "hub");
    let status = op.fog(&["hub", "status", &hub, "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["state"], "active");
    assert_eq!(
        status["operator"]
            .as_str()
            .unwrap()
            .parse::<fog_protocol::Address>()
            .unwrap(),
        me
    );
    assert_eq!(status["feeBps"], 300);

    // Earnings (tokens the wallet holds beyond the deposit) come out; the deposit does not.
    let sent = op.fog(&["token", "transfer", &hub, "5"]);
    assert!(sent.status.success(), "{}", text(&sent));
    let none_left = op.fog(&["hub", "withdraw", &hub, "--amount", "6"]);
    assert!(
        text(&none_left).contains("InsufficientEarnings"),
        "{}",
        text(&none_left)
    );
    let withdrawn = op.fog(&["hub", "withdraw", &hub]);
    assert!(
        text(&withdrawn).contains("withdrew 5 FOG"),
        "{}",
        text(&withdrawn)
    );
    assert_eq!(
        fleet.devnet.balance(me).await.unwrap(),
        U256::from(10_000u64) * whole
    );

    let exit = op.fog(&["hub", "exit", &hub]);
    assert!(exit.status.success(), "{}", text(&exit));
    let early = op.fog(&["hub", "exit", &hub, "--complete"]);
    assert!(text(&early).contains("unbonding until"), "{}", text(&early));
    let again = op.fog(&["hub", "exit", &hub]);
    assert!(text(&again).contains("WrongState"), "{}", text(&again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dao_commands_refuse_what_the_governor_would_and_say_why() {
    let mut fleet = Fleet::start("").await.unwrap();
    let mut buyer = fleet.buyer().await.unwrap();
    buyer.login().await.unwrap();
    let dir = fleet.dir.path().join("dao");
    std::fs::create_dir_all(&dir).unwrap();
    let member = |name: &str| {
        let keystore = dir
            .join(format!("{name}.json"))
            .to_str()
            .unwrap()
            .to_owned();
        let created = Command::new(fog_tests::binary("fog").unwrap())
            .args(["key", "new", "--keystore", &keystore])
            .env("FOG_KEY_PASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(created.status.success(), "{}", text(&created));
        Buyer::on_chain(&fleet, keystore, false)
    };
    let (carol, dave) = (member("carol"), member("dave"));
    for (who, amount) in [(&carol, "100000000"), (&dave, "1000")] {
        let out = who.fog(&["devnet", "faucet", "--amount", amount]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let hub = fleet.hub.to_string();

    // Evidence must be a settled job of that hub.
    let unknown = fog_protocol::B256::repeat_byte(0x42).to_string();
    let out = carol.fog(&["dao", "propose-blacklist", &hub, "--evidence", &unknown]);
    assert!(
        text(&out).contains("no escrow was ever opened"),
        "{}",
        text(&out)
    );
    let open_job = fleet
        .open_escrow(&buyer, &fleet.spec("true", 1))
        .await
        .unwrap()
        .to_string();
    let out = carol.fog(&["dao", "propose-blacklist", &hub, "--evidence", &open_job]);
    assert!(
        text(&out).contains("the job is open, so no receipt of it is on chain"),
        "{}",
        text(&out)
    );
    let stranger = fog_protocol::Address::repeat_byte(0x77).to_string();
    let out = carol.fog(&[
        "dao",
        "propose-blacklist",
        &stranger,
        "--evidence",
        &open_job,
    ]);
    assert!(text(&out).contains("not registered"), "{}", text(&out));

    // A proposal whose evidence is on chain: run one job to settlement.
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    let spec = fleet.spec("echo evidence > /fog/out/x", 1);
    let job = fleet.open_escrow(&buyer, &spec).await.unwrap();
    let domain = fleet.devnet.deployment.domain();
    assert_eq!(buyer.submit(job, &spec, &domain).await.unwrap().0, 201);
    let settled = buyer
        .wait_settled(job, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(settled["settlement"]["state"], "settled", "{settled}");
    let job = job.to_string();

    // Votes come from delegation: carol delegates, dave does not.
    let out = carol.fog(&["dao", "delegate"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = carol.fog(&["devnet", "advance", "1"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = carol.fog(&[
        "dao",
        "propose-blacklist",
        &hub,
        "--evidence",
        &job,
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let proposal = json_field(&out, "id");
    let proposal = proposal
        .parse::<U256>()
        .map(|id| id.to_string())
        .unwrap_or(proposal);

    let out = carol.fog(&["dao", "vote", &proposal, "--support", "for"]);
    assert!(text(&out).contains("opens at unix time"), "{}", text(&out));
    let out = carol.fog(&["dao", "queue", &proposal]);
    assert!(text(&out).contains("the vote ends at"), "{}", text(&out));
    let out = carol.fog(&["dao", "vote", &proposal, "--support", "maybe"]);
    assert!(
        text(&out).contains("invalid value 'maybe'"),
        "{}",
        text(&out)
    );
    let out = carol.fog(&["dao", "vote", "12345", "--support", "for"]);
    assert!(text(&out).contains("no proposal 12345"), "{}", text(&out));

    carol.fog(&["devnet", "advance", "61"]);
    let out = dave.fog(&["dao", "vote", &proposal, "--support", "against"]);
    assert!(
        text(&out).contains("had no votes when proposal"),
        "{}",
        text(&out)
    );
    // carol abstains: she takes part, but nobody is for it.
    let out = carol.fog(&["dao", "vote", &proposal, "--support", "abstain"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = carol.fog(&["dao", "vote", &proposal, "--support", "for"]);
    assert!(text(&out).contains("has already voted"), "{}", text(&out));
    let out = carol.fog(&["dao", "execute", &proposal]);
    assert!(
        text(&out).contains("only a queued proposal can be executed"),
        "{}",
        text(&out)
    );

    carol.fog(&["devnet", "advance", "301"]);
    let out = carol.fog(&["dao", "queue", &proposal]);
    assert!(text(&out).contains("was defeated"), "{}", text(&out));
    let out = carol.fog(&["dao", "status", &proposal, "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["proposals"][0]["state"], "defeated", "{status}");
    assert_eq!(
        status["proposals"][0]["blacklist"]["hub"]
            .as_str()
            .unwrap()
            .parse::<fog_protocol::Address>()
            .unwrap(),
        fleet.hub
    );
    // Nothing happened to the hub.
    let out = carol.fog(&["hub", "status", &hub, "--json"]);
    let hub_status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(hub_status["state"], "active", "{hub_status}");
    let out = carol.fog(&["dao", "treasury", "--json"]);
    let treasury: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(treasury["lots"].as_array().unwrap().len(), 0, "{treasury}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_takes_its_settings_from_a_config_file_and_says_what_is_wrong_with_one() {
    let fleet = Fleet::start("").await.unwrap();
    let dir = fleet.dir.path().join("configured");
    std::fs::create_dir_all(&dir).unwrap();
    let fog = |args: &[&str]| {
        Command::new(fog_tests::binary("fog").unwrap())
            .args(args)
            .env("FOG_KEY_PASSWORD", PASSWORD)
            .env("XDG_CONFIG_HOME", &dir)
            .env_remove("FOG_HUB_URL")
            .env_remove("FOG_KEYSTORE")
            .env_remove("FOG_DEPLOYMENT")
            .env_remove("FOG_RPC_URL")
            .env_remove("FOG_CONFIG")
            .output()
            .unwrap()
    };
    // The default location, with a keystore path relative to the file.
    std::fs::create_dir_all(dir.join("fog")).unwrap();
    std::fs::write(
        dir.join("fog/config.toml"),
        format!(
            "keystore = \"me.json\"\ndeployment = \"{}\"\nchain_rpc = \"{}\"\n",
            fleet.deployment.display(),
            fleet.devnet.anvil.endpoint()
        ),
    )
    .unwrap();
    let created = fog(&["key", "new"]);
    assert!(created.status.success(), "{}", text(&created));
    assert!(dir.join("fog/me.json").is_file());
    let faucet = fog(&["devnet", "faucet", "--amount", "3"]);
    assert!(faucet.status.success(), "{}", text(&faucet));
    let balance = fog(&["token", "balance"]);
    assert_eq!(
        String::from_utf8_lossy(&balance.stdout).trim(),
        "3 FOG",
        "{}",
        text(&balance)
    );
    // A flag wins over the file.
    let elsewhere = fog(&["token", "balance", "--chain-rpc", "http://127.0.0.1:9"]);
    assert!(!elsewhere.status.success());
    assert!(
        text(&elsewhere).contains("127.0.0.1:9"),
        "{}",
        text(&elsewhere)
    );

    // A file with a mistake says which file and what.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "keystore = \"me.json\"\nhub_url = \"http://x\"\n").unwrap();
    let out = fog(&["token", "balance", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("bad.toml") && text(&out).contains("unknown field `hub_url`"),
        "{}",
        text(&out)
    );
    std::fs::write(&bad, "keystore = [1, 2\n").unwrap();
    let out = fog(&["token", "balance", "--config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("bad.toml"), "{}", text(&out));
    let out = fog(&["token", "balance", "--config", "/no/such/fog.toml"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("/no/such/fog.toml"), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fog_job_run_waits_for_a_hubs_confirmations_then_submits() {
    let mut fleet = Fleet::start("confirmations = 2\n").await.unwrap();
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let funded = fleet.buyer().await.unwrap();
    let dir = fleet.dir.path().join("buyer");
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let imported = import_key(&keystore, &funded.key);
    assert!(imported.status.success(), "{}", text(&imported));
    // The chain moves on meanwhile: a block every 300 ms.
    let rpc = fleet.devnet.anvil.endpoint_url();
    let miner_of_blocks = tokio::spawn(async move {
        let provider = alloy::providers::ProviderBuilder::new().connect_http(rpc);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let _: Result<serde_json::Value, _> = alloy::providers::Provider::raw_request(
                &provider,
                "evm_mine".into(),
                serde_json::json!([]),
            )
            .await;
        }
    });
    let out_dir = dir.join("out");
    let run = Command::new(fog_tests::binary("fog").unwrap())
        .args(["job", "run", "--image", &fleet.image, "--memory", "64M"])
        .args(["--disk", "16M", "--max-price", "1", "--wait", "--out"])
        .arg(&out_dir)
        .args([
            "--keystore",
            &keystore,
            "--hub",
            &fleet.hub_url,
            "--deployment",
        ])
        .arg(&fleet.deployment)
        .args(["--chain-rpc", &fleet.devnet.anvil.endpoint()])
        .args(["--", "sh", "-c", "echo patient > /fog/out/x"])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .env_remove("FOG_HUB_URL")
        .output()
        .unwrap();
    miner_of_blocks.abort();
    assert!(run.status.success(), "{}", text(&run));
    assert!(
        text(&run).contains("waits for 2 confirmations"),
        "{}",
        text(&run)
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("x")).unwrap(),
        "patient\n"
    );
}

/// Issue 14, point 1 from the operator's side: an exiting hub that still holds
/// a job cannot take its deposit back, and `fog hub exit --complete` says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exiting_hub_with_open_jobs_is_told_why_it_cannot_leave() {
    let mut fleet = Fleet::start("").await.unwrap();
    let funded = fleet.buyer().await.unwrap();
    let spec = fleet.spec("true", 1);
    fleet.open_escrow(&funded, &spec).await.unwrap();
    let dir = fleet.dir.path().join("operator");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let imported = import_key(&keystore, &fleet.devnet.keys[1]);
    assert!(imported.status.success(), "{}", text(&imported));
    let op = Buyer::on_chain(&fleet, keystore, false);
    let hub = fleet.hub.to_string();
    let exit = op.fog(&["hub", "exit", &hub]);
    assert!(exit.status.success(), "{}", text(&exit));
    let status = op.fog(&["hub", "status", &hub]);
    assert!(text(&status).contains("open jobs 1"), "{}", text(&status));
    fleet.devnet.advance(30 * 24 * 3600).await.unwrap();
    let refused = op.fog(&["hub", "exit", &hub, "--complete"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("still holds 1 open job(s)"),
        "{}",
        text(&refused)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_funds_its_batch_account_once_and_withdraws_after_the_delay() {
    let fleet = Fleet::start("").await.unwrap();
    let dir = fleet.dir.path().join("batch-buyer");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let created = Command::new(fog_tests::binary("fog").unwrap())
        .args(["key", "new", "--keystore", &keystore])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created));
    let me = Buyer::on_chain(&fleet, keystore, false);
    let faucet = me.fog(&["devnet", "faucet", "--amount", "500"]);
    assert!(faucet.status.success(), "{}", text(&faucet));
    let whole = U256::from(10u64).pow(U256::from(18u64));

    // Refusals say what is wrong before any gas is spent.
    let too_much = me.fog(&["account", "deposit", "1000"]);
    assert!(!too_much.status.success());
    assert!(
        text(&too_much).contains("less than the 1000 FOG to deposit"),
        "{}",
        text(&too_much)
    );
    let nothing_earned = me.fog(&["account", "withdraw-earnings", "1"]);
    assert!(
        text(&nothing_earned).contains("has earned 0 FOG, less than the 1 FOG asked for"),
        "{}",
        text(&nothing_earned)
    );
    let unasked = me.fog(&["account", "withdraw"]);
    assert!(
        text(&unasked).contains("has not asked to withdraw"),
        "{}",
        text(&unasked)
    );

    // One deposit (a permit, no allowance), then the balance pays for jobs.
    let deposit = me.fog(&["account", "deposit", "200"]);
    assert!(deposit.status.success(), "{}", text(&deposit));
    let balance = me.fog(&["account", "balance", "--json"]);
    let balance: serde_json::Value = serde_json::from_slice(&balance.stdout).unwrap();
    assert_eq!(
        balance["balance"]
            .as_str()
            .unwrap()
            .parse::<U256>()
            .unwrap(),
        U256::from(200u64) * whole
    );
    assert_eq!(
        balance["earned"].as_str().unwrap().parse::<U256>().unwrap(),
        U256::ZERO
    );

    // Withdrawing waits the delay, so jobs signed before can still be settled.
    let asked = me.fog(&["account", "request-withdrawal", "50"]);
    assert!(asked.status.success(), "{}", text(&asked));
    let early = me.fog(&["account", "withdraw"]);
    assert!(!early.status.success());
    assert!(text(&early).contains("is ready in"), "{}", text(&early));
    let delay = fleet.devnet.deployment.params.batch.withdrawal_delay;
    let advanced = me.fog(&["devnet", "advance", &(u64::from(delay) + 1).to_string()]);
    assert!(advanced.status.success(), "{}", text(&advanced));
    let withdrawn = me.fog(&["account", "withdraw"]);
    assert!(withdrawn.status.success(), "{}", text(&withdrawn));
    assert!(
        text(&withdrawn).contains("withdrew 50 FOG"),
        "{}",
        text(&withdrawn)
    );
    let wallet = me.fog(&["token", "balance"]);
    assert_eq!(
        String::from_utf8_lossy(&wallet.stdout).trim(),
        "350 FOG",
        "{}",
        text(&wallet)
    );
    let human = me.fog(&["account", "balance"]);
    assert_eq!(
        String::from_utf8_lossy(&human.stdout).trim(),
        "balance 150 FOG, earned 0 FOG"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fog_job_run_batched_sends_no_transaction_and_verifies_against_the_epoch() {
    use alloy::providers::Provider;
    let mut fleet = Fleet::start("").await.unwrap();
    let miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let whole = U256::from(10u64).pow(U256::from(18u64));
    fleet.bond_hub(U256::from(1_000u64) * whole).await.unwrap();
    let funded = fleet.buyer().await.unwrap();
    let dir = fleet.dir.path().join("batch-runner");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    assert!(import_key(&keystore, &funded.key).status.success());
    let buyer = Buyer::on_chain(&fleet, keystore, true);
    let deposit = buyer.fog(&["account", "deposit", "10"]);
    assert!(deposit.status.success(), "{}", text(&deposit));

    let provider = fleet.devnet.provider(&funded.key);
    let nonce_before = provider
        .get_transaction_count(funded.address())
        .await
        .unwrap();
    let out = dir.join("result");
    let run = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--memory",
        "64M",
        "--disk",
        "16M",
        "--out",
        out.to_str().unwrap(),
        "--max-price",
        "1",
        "--wait",
        "--json",
        "--",
        "sh",
        "-c",
        "echo batched > /fog/out/x",
    ]);
    assert!(
        run.status.success(),
        "{}\nhub:\n{}",
        text(&run),
        fleet.hub_proc.log()
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["settlement"], "batch", "{report}");
    assert_eq!(
        provider
            .get_transaction_count(funded.address())
            .await
            .unwrap(),
        nonce_before,
        "no transaction for the job"
    );
    assert_eq!(std::fs::read_to_string(out.join("x")).unwrap(), "batched\n");
    let result = &report["result"];
    assert_eq!(
        result["miners"][0]["miner"]
            .as_str()
            .unwrap()
            .parse::<fog_protocol::Address>()
            .unwrap(),
        miner.address
    );
    let charged: U256 = result["miners"][0]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let commission: U256 = result["hubCommission"].as_str().unwrap().parse().unwrap();
    let balance = buyer.fog(&["account", "balance", "--json"]);
    let balance: serde_json::Value = serde_json::from_slice(&balance.stdout).unwrap();
    assert_eq!(
        balance["balance"]
            .as_str()
            .unwrap()
            .parse::<U256>()
            .unwrap(),
        U256::from(10u64) * whole - charged - commission,
        "paid from the account: the charge and the commission, nothing else"
    );

    // Anyone checks it with the hub's public proof against the epoch on chain.
    let job = report["jobId"].as_str().unwrap().to_owned();
    let verified = buyer.fog(&["job", "verify", &job]);
    assert!(verified.status.success(), "{}", text(&verified));
    assert!(
        text(&verified).contains("settled on chain"),
        "{}",
        text(&verified)
    );
    let forged = dir.join("forged.tar");
    std::fs::write(&forged, b"not the output").unwrap();
    let refused = buyer.fog(&["job", "verify", &job, "--archive", forged.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("differs from the receipts"),
        "{}",
        text(&refused)
    );

    // Asked for explicitly from a hub that offers it: the same; per-job still opens an escrow.
    let per_job = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--memory",
        "64M",
        "--disk",
        "16M",
        "--max-price",
        "1",
        "--settlement",
        "per-job",
        "--json",
        "--",
        "true",
    ]);
    assert!(per_job.status.success(), "{}", text(&per_job));
    let report: serde_json::Value = serde_json::from_slice(&per_job.stdout).unwrap();
    assert_eq!(report["settlement"], "per-job", "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_without_gas_money_funds_and_runs_through_the_hub() {
    use alloy::providers::Provider;
    let mut fleet = Fleet::start("").await.unwrap();
    // Kept alive for the test (dropping a Miner stops its process).
    let _miner = fleet.start_miner("miner-a", 2_000, "").unwrap();
    fleet.wait_for_miners(1).await.unwrap();
    let whole = U256::from(10u64).pow(U256::from(18u64));
    fleet.bond_hub(U256::from(1_000u64) * whole).await.unwrap();
    let dir = fleet.dir.path().join("gasless");
    std::fs::create_dir_all(&dir).unwrap();
    let keystore = dir.join("key.json").to_str().unwrap().to_owned();
    let created = Command::new(fog_tests::binary("fog").unwrap())
        .args(["key", "new", "--keystore", &keystore])
        .env("FOG_KEY_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    let me: fog_protocol::Address = String::from_utf8_lossy(&created.stdout)
        .trim()
        .parse()
        .unwrap();
    // Tokens, and not a wei of gas money.
    fleet
        .devnet
        .fund(me, U256::from(10u64) * whole)
        .await
        .unwrap();
    let provider = fleet.devnet.provider(&fleet.devnet.keys[0]);
    assert_eq!(provider.get_balance(me).await.unwrap(), U256::ZERO);
    let buyer = Buyer::on_chain(&fleet, keystore, true);

    let run = buyer.fog(&[
        "job",
        "run",
        "--image",
        &fleet.image,
        "--memory",
        "64M",
        "--disk",
        "16M",
        "--out",
        dir.join("out").to_str().unwrap(),
        "--max-price",
        "1",
        "--fund",
        "5",
        "--wait",
        "--json",
        "--",
        "sh",
        "-c",
        "echo no gas > /fog/out/x",
    ]);
    assert!(
        run.status.success(),
        "{}\nhub:\n{}",
        text(&run),
        fleet.hub_proc.log()
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["settlement"], "batch", "{report}");
    assert_eq!(
        provider.get_balance(me).await.unwrap(),
        U256::ZERO,
        "never needed gas"
    );
    let balance = buyer.fog(&["account", "balance", "--json"]);
    let balance: serde_json::Value = serde_json::from_slice(&balance.stdout).unwrap();
    let charged: U256 = report["result"]["miners"][0]["amount"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let commission: U256 = report["result"]["hubCommission"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        balance["balance"]
            .as_str()
            .unwrap()
            .parse::<U256>()
            .unwrap(),
        U256::from(5u64) * whole - charged - commission,
        "the hub carried the permit into the epoch that settled the job"
    );
    let wallet = buyer.fog(&["token", "balance"]);
    assert_eq!(String::from_utf8_lossy(&wallet.stdout).trim(), "5 FOG");

    // A second permit while one waits is refused with what to do; a forged one too.
    let (code, body) = {
        let mut http = fleet.buyer().await.unwrap();
        http.login().await.unwrap();
        let spec = fleet.spec("true", 1);
        let auth = fog_protocol::Signed::sign(
            fog_protocol::batch::JobAuth {
                salt: fog_protocol::B256::repeat_byte(9),
                specHash: spec.spec_hash(),
                hub: fleet.hub,
                maxPayment: spec.maxPayment,
                deadline: spec.deadline,
                replicas: 1,
                maxFeeBps: 500,
            },
            &http.key,
            &fleet.devnet.deployment.batch_domain(),
        )
        .unwrap();
        let signed =
            fog_protocol::SignedJobSpec::sign(spec, &http.key, &fleet.devnet.deployment.domain())
                .unwrap();
        let forged = fog_protocol::api::Funding {
            value: whole,
            deadline: signed.payload.deadline + 86_400,
            signature: fog_protocol::Signature::new(U256::from(1u8), U256::from(2u8), false),
        };
        http.post(
            "/v1/jobs",
            &serde_json::json!({
                "jobId": fog_protocol::batch::batch_job_id(http.address(), auth.payload.salt),
                "spec": signed.payload,
                "signature": signed.signature.to_string(),
                "auth": auth,
                "funding": forged,
            }),
        )
        .await
        .unwrap()
    };
    assert!(code == 400 || code == 422, "{code} {body}");
}
