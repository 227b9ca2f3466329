//! `fog-miner exec`, the local mode, driven as an operator would run it:
//! the real binary, a real keystore, the real Docker engine.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{Harness, input};
use fog_protocol::output::archive_digest;
use fog_protocol::{Address, SignedReceipt, fog_domain};

const PASSWORD: &str = "local mode";

fn fog_miner(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fog-miner"))
        .args(args)
        .env("FOG_MINER_KEY_PASSWORD", PASSWORD)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

struct Local {
    h: Harness,
    dir: tempfile::TempDir,
    keystore: String,
    address: Address,
}

impl Local {
    async fn new() -> Self {
        let h = Harness::new(|_| {}).await;
        let dir = tempfile::tempdir().unwrap();
        let keystore = dir.path().join("miner.json").to_str().unwrap().to_owned();
        let created = fog_miner(&["key", "new", "--keystore", &keystore]);
        assert!(created.status.success(), "{created:?}");
        let address = String::from_utf8(created.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Self {
            h,
            dir,
            keystore,
            address,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }

    fn write_spec(&self, name: &str, spec: &impl serde::Serialize) -> String {
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
        path
    }

    fn exec(&self, spec: &str, extra: &[&str]) -> Output {
        let work = self.h.work.path().to_str().unwrap().to_owned();
        let mut args = vec![
            "exec",
            spec,
            "--keystore",
            &self.keystore,
            "--work-dir",
            &work,
        ];
        args.extend_from_slice(extra);
        fog_miner(&args)
    }
}

#[tokio::test]
async fn exec_runs_a_job_and_prints_a_signed_receipt() {
    let l = Local::new().await;
    let (blob, _, input_path) = input(l.dir.path(), "numbers.txt", b"3\n1\n2\n");
    let mut spec =
        l.h.spec("sort -n /fog/in/numbers.txt > /fog/out/sorted; echo sorted >&2");
    spec.inputs = vec![blob];
    let spec_path = l.write_spec("spec.json", &spec);
    let out = l.path("out");
    let run = l.exec(
        &spec_path,
        &[
            "--input",
            input_path.to_str().unwrap(),
            "--out",
            &out,
            "--chain-id",
            "5",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("sorted\n"),
        "logs stream to stderr: {}",
        stderr(&run)
    );

    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let receipt: SignedReceipt = serde_json::from_value(report["receipt"].clone()).unwrap();
    receipt.verify(&fog_domain(5, Address::ZERO)).unwrap();
    let r = &receipt.payload;
    assert_eq!(r.miner, l.address);
    assert_eq!(r.jobId, spec.spec_hash(), "local job id is the spec hash");
    assert_eq!(r.specHash, spec.spec_hash());
    assert_eq!(r.exitCode, 0);
    assert_eq!(report["outcome"]["exitCode"], 0);
    assert!(report["outcome"]["peakMemoryBytes"].as_u64().unwrap() > 0);

    // The output is unpacked, and hashes to what the receipt says.
    assert_eq!(
        std::fs::read_to_string(Path::new(&out).join("sorted")).unwrap(),
        "1\n2\n3\n"
    );
    assert_eq!(
        archive_digest(Path::new(&out)).unwrap().sha256,
        r.outputHash
    );
    l.h.assert_clean().await;
    assert_eq!(
        std::fs::read_dir(l.h.work.path()).unwrap().count(),
        0,
        "the archive was removed"
    );
}

#[tokio::test]
async fn exec_refuses_bad_input_with_a_reason_and_runs_nothing() {
    let l = Local::new().await;
    let (blob, _, input_path) = input(l.dir.path(), "a.txt", b"a");
    let (_, _, stray) = input(l.dir.path(), "stray.txt", b"not in the spec");
    let mut spec = l.h.spec("cat /fog/in/a.txt");
    spec.inputs = vec![blob];
    let spec_path = l.write_spec("spec.json", &spec);
    let out = l.path("out");
    let input_arg = input_path.to_str().unwrap();

    let cases: Vec<(Vec<&str>, String)> = vec![
        (vec!["--out", &out], "the spec's input \"a.txt\"".into()),
        (
            vec![
                "--input",
                input_arg,
                "--input",
                stray.to_str().unwrap(),
                "--out",
                &out,
            ],
            "is not among the spec's inputs".into(),
        ),
        (
            vec!["--input", "/nonexistent/file", "--out", &out],
            "--input /nonexistent/file: No such file".into(),
        ),
        (
            vec![
                "--input",
                input_arg,
                "--out",
                l.dir.path().to_str().unwrap(),
            ],
            "exists and is not an empty directory".into(),
        ),
        (
            vec!["--input", input_arg, "--out", &out, "--max-charge", "lots"],
            "--max-charge".into(),
        ),
    ];
    for (extra, expected) in cases {
        let run = l.exec(&spec_path, &extra);
        assert!(!run.status.success(), "{extra:?} succeeded");
        assert!(
            stderr(&run).contains(&expected),
            "{extra:?}: {}",
            stderr(&run)
        );
    }

    let mut unknown: serde_json::Value = serde_json::to_value(&spec).unwrap();
    unknown["gpu"] = serde_json::json!(true);
    let bad_spec = l.write_spec("unknown.json", &unknown);
    let run = l.exec(&bad_spec, &["--out", &out]);
    assert!(
        stderr(&run).contains("not a valid job spec: unknown field `gpu`"),
        "{}",
        stderr(&run)
    );

    let mut invalid = spec.clone();
    invalid.resources.memoryBytes = 1;
    let invalid_spec = l.write_spec("invalid.json", &invalid);
    let run = l.exec(&invalid_spec, &["--input", input_arg, "--out", &out]);
    assert!(
        stderr(&run).contains("rejected: invalid spec: resources.memoryBytes"),
        "{}",
        stderr(&run)
    );

    // A miner configuration's admission applies: a window open all of tomorrow only.
    let tomorrow = ["tue", "wed", "thu", "fri", "sat", "sun", "mon"]
        [chrono::Datelike::weekday(&chrono::Utc::now()).num_days_from_monday() as usize];
    let config = l.path("miner.toml");
    std::fs::write(
        &config,
        format!(
            "keystore = {:?}\n[[availability]]\ndays = [{tomorrow:?}]\nfrom = \"00:00\"\nto = \"24:00\"\n[price]\nper_core_hour = \"0\"\n",
            l.keystore
        ),
    )
    .unwrap();
    let run = l.exec(
        &spec_path,
        &["--input", input_arg, "--out", &out, "--config", &config],
    );
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("rejected: outside the miner's availability windows; next opens at"),
        "{}",
        stderr(&run)
    );

    let wrong_password = Command::new(env!("CARGO_BIN_EXE_fog-miner"))
        .args([
            "exec",
            &spec_path,
            "--keystore",
            &l.keystore,
            "--input",
            input_arg,
            "--out",
            &out,
        ])
        .env("FOG_MINER_KEY_PASSWORD", "wrong")
        .output()
        .unwrap();
    assert!(
        stderr(&wrong_password).contains("wrong password"),
        "{}",
        stderr(&wrong_password)
    );

    assert!(!Path::new(&out).exists(), "nothing was unpacked");
    l.h.assert_clean().await;
}
