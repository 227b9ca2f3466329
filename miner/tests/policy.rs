//! Configuration, admission and capacity of the miner, and its key commands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::process::Command;

use chrono::{DateTime, Utc};
use fog_miner::admission::{Capacity, Conditions, Rejection, admit};
use fog_miner::config::{ConfigError, MinerConfig, Policy};
use fog_miner::host::HostResources;
use fog_protocol::{EnvVar, JobSpec, Placement, Resources, U256};

const HOST: HostResources = HostResources {
    cpu_millicores: 8_000,
    memory_bytes: 16 << 30,
    disk_bytes: 100 << 30,
    gpus: 0,
};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn secs(s: &str) -> u64 {
    u64::try_from(utc(s).timestamp()).unwrap()
}

fn load(toml: &str) -> Result<MinerConfig, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("miner.toml");
    std::fs::write(&path, toml).unwrap();
    MinerConfig::load(&path)
}

const BASE: &str = r#"
keystore = "/tmp/key.json"
[offer]
share = 0.5
region = "eu-west"
labels = ["arch=amd64", "tier=gold"]
[[availability]]
days = ["weekdays"]
from = "19:00"
to = "07:00"
timezone = "Europe/Berlin"
[price.electricity]
watts = "200"
price_per_kwh = "0.30"
token_price = "0.05"
margin = "0.25"
"#;

fn policy() -> Policy {
    load(BASE).unwrap().policy(&HOST).unwrap()
}

fn spec(now: DateTime<Utc>) -> JobSpec {
    JobSpec {
        image: format!("sha256:{}", "ab".repeat(32)),
        command: vec!["true".into()],
        env: vec![EnvVar {
            name: "A".into(),
            value: "1".into(),
        }],
        inputs: vec![],
        outputPath: "/fog/out".into(),
        resources: Resources {
            cpuMillicores: 2_000,
            memoryBytes: 1 << 30,
            diskBytes: 1 << 30,
            gpuCount: 0,
        },
        maxDurationSecs: 3_600,
        network: 0,
        placement: Placement {
            region: "eu-west".into(),
            labels: vec!["arch=amd64".into()],
        },
        replicas: 1,
        maxPayment: U256::from(10u64).pow(U256::from(18u64)),
        deadline: now.timestamp() as u64 + 7_200,
    }
}

/// Friday 2026-11-20, 21:00 in Berlin: inside the weeknight window.
fn friday_night() -> Conditions {
    Conditions {
        now: utc("2026-11-20T20:00:00Z"),
        chain_now: secs("2026-11-20T20:00:00Z"),
        load_per_core: 0.1,
    }
}

fn enough() -> U256 {
    U256::from(10u64).pow(U256::from(18u64))
}

#[test]
fn share_of_the_host_and_electricity_floor() {
    let p = policy();
    assert_eq!(
        p.capacity,
        Resources {
            cpuMillicores: 4_000,
            memoryBytes: 8 << 30,
            diskBytes: 50 << 30,
            gpuCount: 0
        }
    );
    // 1.5 tokens/h over 8 cores.
    assert_eq!(p.rate.per_core_hour, U256::from(187_500_000_000_000_000u64));
    // Two cores for an hour: 0.375 tokens.
    assert_eq!(
        p.floor_for(&spec(friday_night().now).resources, 3_600),
        U256::from(375_000_000_000_000_000u64)
    );
}

#[test]
fn admits_a_fitting_job_and_holds_its_capacity() {
    let p = policy();
    let cap = Capacity::new(p.capacity.clone());
    let c = friday_night();
    let first = admit(&p, &cap, &spec(c.now), enough(), c).unwrap();
    let second = admit(&p, &cap, &spec(c.now), enough(), c).unwrap();
    assert_eq!(cap.free().cpuMillicores, 0);
    // Full: the third is refused with the resource, request and what is free.
    match admit(&p, &cap, &spec(c.now), enough(), c) {
        Err(e @ Rejection::Insufficient { .. }) => {
            assert_eq!(
                e.to_string(),
                "needs 2000 millicores of CPU but only 0 of 4000 offered is free"
            )
        }
        other => panic!("overcommitted: {other:?}"),
    }
    drop(first);
    assert_eq!(cap.free().cpuMillicores, 2_000);
    admit(&p, &cap, &spec(c.now), enough(), c).unwrap();
    drop(second);
}

#[test]
fn each_rejection_says_why() {
    let p = policy();
    let cap = Capacity::new(p.capacity.clone());
    let c = friday_night();
    let reason = |s: JobSpec, charge: U256, at: Conditions| {
        admit(&p, &cap, &s, charge, at).unwrap_err().to_string()
    };

    let day = Conditions {
        now: utc("2026-11-24T11:00:00Z"),
        chain_now: secs("2026-11-24T11:00:00Z"),
        load_per_core: 0.1,
    };
    assert_eq!(
        reason(spec(day.now), enough(), day),
        "outside the miner's availability windows; next opens at 2026-11-24 18:00:00 UTC"
    );
    assert!(
        reason(spec(c.now), U256::from(1u8), c)
            .starts_with("pays 1 but this miner's floor for it is 375000000000000000")
    );
    let mut net = spec(c.now);
    net.network = 1;
    assert_eq!(
        reason(net, enough(), c),
        "asks for network access, which this miner does not allow"
    );
    let mut region = spec(c.now);
    region.placement.region = "us-east".into();
    assert!(reason(region, enough(), c).contains("must run in region \"us-east\""));
    let mut label = spec(c.now);
    label.placement.labels.push("gpu=a100".into());
    assert_eq!(
        reason(label, enough(), c),
        "needs label \"gpu=a100\", which this miner does not carry"
    );
    let mut big = spec(c.now);
    big.resources.memoryBytes = 9 << 30;
    assert!(reason(big, enough(), c).contains("bytes of memory"));
    let mut bad = spec(c.now);
    bad.replicas = 0;
    assert_eq!(
        reason(bad, enough(), c),
        "invalid spec: replicas: must be at least 1"
    );

    let idle: Policy = load(&format!(
        "{BASE}\n[only_when_idle]\nmax_load_per_core = 0.5\n"
    ))
    .unwrap()
    .policy(&HOST)
    .unwrap();
    let busy = Conditions {
        load_per_core: 0.9,
        ..c
    };
    assert_eq!(
        admit(&idle, &cap, &spec(c.now), enough(), busy)
            .unwrap_err()
            .to_string(),
        "the host is busy: load 0.90 per core is above 0.50 allowed"
            .replace("above 0.50", "above the 0.50")
    );
    // Nothing was reserved by any refusal.
    assert_eq!(cap.free(), p.capacity);
}

#[test]
fn bad_configuration_is_refused_with_reasons() {
    let err = |toml: &str| match load(toml) {
        Ok(cfg) => cfg.policy(&HOST).unwrap_err().to_string(),
        Err(e) => e.to_string(),
    };
    assert!(
        err(&BASE.replace("share = 0.5", "share = 1.5")).contains("offer.share must be in (0, 1]")
    );
    assert!(
        err(&BASE.replace("share = 0.5", "share = 0.5\ncpu_millicores = 99000"))
            .contains("offer.cpu_millicores: 99000 is more than this host has (8000)")
    );
    assert!(
        err(&BASE.replace("share = 0.5", "share = 0.5\ngpus = 1"))
            .contains("offer.gpus: 1 is more than this host has (0)")
    );
    assert!(
        err(&BASE.replace("\"weekdays\"", "\"someday\""))
            .contains("availability[0]: unknown day \"someday\"")
    );
    assert!(err(&BASE.replace("Europe/Berlin", "Europe/Atlantis")).contains("unknown time zone"));
    assert!(
        err(&BASE.replace("token_price = \"0.05\"", "token_price = \"0\""))
            .contains("token_price must be greater than zero")
    );
    assert!(err(&BASE.replace("watts = \"200\"", "watts = \"lots\"")).contains("watts"));
    assert!(
        err(&BASE.replace(
            "region = \"eu-west\"",
            "region = \"eu-west\"\nprivileged = true"
        ))
        .contains("unknown field `privileged`")
    );
    assert!(
        err(&BASE.replace("\"tier=gold\"", "\"gold\""))
            .contains("offer.labels: \"gold\" must be key=value")
    );
    assert!(err("keystore = \"/k\"\n").contains("missing configuration field \"price\""));
    assert!(
        err(&format!(
            "{BASE}\n[only_when_idle]\nmax_load_per_core = -1\n"
        ))
        .contains("max_load_per_core must be positive")
    );
}

#[test]
fn environment_overrides_the_file() {
    // A separate process, so the variables do not leak into other tests.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("miner.toml");
    std::fs::write(&path, BASE).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fog-miner"))
        .args(["policy", "--config", path.to_str().unwrap()])
        .env("FOG_MINER_OFFER__REGION", "ap-south")
        .env("FOG_MINER_OFFER__LABELS", "arch=arm64,disk=ssd")
        .env("FOG_MINER_WORK_DIR", dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["region"], "ap-south");
    assert_eq!(
        report["labels"],
        serde_json::json!(["arch=arm64", "disk=ssd"])
    );
    assert_eq!(
        report["availability"],
        serde_json::json!(["mon,tue,wed,thu,fri 19:00-07:00 Europe/Berlin"])
    );
}

#[test]
fn key_commands_create_open_and_protect_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let keystore = dir.path().join("keys/miner.json");
    let run = |args: &[&str], password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fog-miner"));
        cmd.args(args).env_remove("FOG_MINER_KEY_PASSWORD");
        if let Some(p) = password {
            cmd.env("FOG_MINER_KEY_PASSWORD", p);
        }
        cmd.output().unwrap()
    };
    let ks = keystore.to_str().unwrap();
    let missing = run(&["key", "new", "--keystore", ks], None);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no password"),
        "{missing:?}"
    );

    let created = run(&["key", "new", "--keystore", ks], Some("correct horse"));
    assert!(created.status.success(), "{created:?}");
    let address = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let shown = run(&["key", "address", "--keystore", ks], None);
    assert_eq!(String::from_utf8(shown.stdout).unwrap().trim(), address);

    // The file is encrypted: the key opens only with the password, and never appears in the file.
    let signer = fog_miner::keys::open(&keystore, "correct horse").unwrap();
    assert_eq!(signer.address().to_string(), address);
    let secret = alloy::hex::encode(signer.to_bytes());
    assert!(
        !std::fs::read_to_string(&keystore)
            .unwrap()
            .contains(&secret)
    );
    let wrong = fog_miner::keys::open(&keystore, "wrong")
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("wrong password"), "{wrong}");
    assert!(!wrong.contains(&secret));

    let again = run(&["key", "new", "--keystore", ks], Some("x"));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists; refusing to overwrite"),
        "{again:?}"
    );
    let empty = run(
        &[
            "key",
            "new",
            "--keystore",
            dir.path().join("e.json").to_str().unwrap(),
        ],
        Some(""),
    );
    assert!(
        String::from_utf8_lossy(&empty.stderr).contains("the password is empty"),
        "{empty:?}"
    );
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, "{}").unwrap();
    let bad = run(
        &["key", "address", "--keystore", garbage.to_str().unwrap()],
        None,
    );
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no address field"),
        "{bad:?}"
    );
}

#[test]
fn the_example_configuration_in_deploy_loads_and_makes_a_policy() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/miner.toml");
    let cfg = MinerConfig::load(&path).unwrap();
    let policy = cfg.policy(&HOST).unwrap();
    assert_eq!(policy.capacity.cpuMillicores, 6_000, "75% of 8 cores");
    assert_eq!(policy.availability.windows().len(), 2);
    assert!(policy.rate.per_core_hour > U256::ZERO, "electricity floor");
    assert!(cfg.chain.is_some());
}
