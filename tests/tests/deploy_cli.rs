//! `fog deploy` against a live anvil: it deploys and wires everything and
//! writes the deployment file; bad input gets a clear error and no file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::path::Path;
use std::process::{Command, Output};

use alloy::node_bindings::Anvil;
use alloy::providers::{Provider, ProviderBuilder};
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::deploy::{DeployParams, Deployment};
use fog_tests::devnet::anvil_path;

fn fog(args: &[&str], key: Option<&str>) -> Output {
    let mut cmd = Command::new(fog_tests::binary("fog").unwrap());
    cmd.args(args)
        .env_remove("FOG_DEPLOYER_KEY")
        .env_remove("FOG_RPC_URL");
    if let Some(key) = key {
        cmd.env("FOG_DEPLOYER_KEY", key);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn deploy_writes_a_working_deployment_and_refuses_bad_input() {
    let anvil = Anvil::at(anvil_path()).spawn();
    let url = anvil.endpoint();
    let key = format!("0x{}", alloy::hex::encode(anvil.keys()[0].to_bytes()));
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("deployment.json");
    let out = out_path.to_str().unwrap();

    // Missing or bad key: clear error, nothing written.
    let missing = fog(&["deploy", "--rpc-url", &url, "--out", out], None);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("set FOG_DEPLOYER_KEY"),
        "{}",
        stderr(&missing)
    );
    let bad = fog(&["deploy", "--rpc-url", &url, "--out", out], Some("0x1234"));
    assert!(
        stderr(&bad).contains("not a valid secp256k1 private key"),
        "{}",
        stderr(&bad)
    );
    assert!(!Path::new(out).exists());

    // Malformed parameters and parameters the contracts refuse.
    let params = dir.path().join("params.json");
    std::fs::write(&params, r#"{"tokenSupply": "lots"}"#).unwrap();
    let malformed = fog(
        &[
            "deploy",
            "--rpc-url",
            &url,
            "--out",
            out,
            "--params",
            params.to_str().unwrap(),
        ],
        Some(&key),
    );
    assert!(
        stderr(&malformed).contains("not valid deployment parameters"),
        "{}",
        stderr(&malformed)
    );
    let mut short = DeployParams::devnet(anvil.addresses()[0]);
    short.unbonding_period = 10; // shorter than a vote: the registry's initialiser refuses it
    std::fs::write(&params, serde_json::to_string(&short).unwrap()).unwrap();
    let refused = fog(
        &[
            "deploy",
            "--rpc-url",
            &url,
            "--out",
            out,
            "--params",
            params.to_str().unwrap(),
        ],
        Some(&key),
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("deploy HubRegistry proxy"),
        "{}",
        stderr(&refused)
    );
    assert!(!Path::new(out).exists());

    // Unreachable chain.
    let offline = fog(
        &["deploy", "--rpc-url", "http://127.0.0.1:9", "--out", out],
        Some(&key),
    );
    assert!(
        stderr(&offline).contains("deploying to http://127.0.0.1:9"),
        "{}",
        stderr(&offline)
    );
    let not_url = fog(
        &["deploy", "--rpc-url", "not a url", "--out", out],
        Some(&key),
    );
    assert!(
        stderr(&not_url).contains("is not a URL"),
        "{}",
        stderr(&not_url)
    );

    // The real thing.
    let ok = fog(&["deploy", "--rpc-url", &url, "--out", out], Some(&key));
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stderr(&ok).contains("deployed Fog on chain 31337"),
        "{}",
        stderr(&ok)
    );
    let deployment = Deployment::load(&out_path).unwrap();
    assert_eq!(deployment.chain_id, 31337);
    let provider = ProviderBuilder::new().connect_http(anvil.endpoint_url());
    assert!(
        !provider
            .get_code_at(deployment.escrow)
            .await
            .unwrap()
            .is_empty()
    );
    let wiring = JobEscrow::new(deployment.escrow, &provider)
        .wiring()
        .call()
        .await
        .unwrap();
    assert_eq!(wiring.registry, deployment.registry);
    assert_eq!(wiring.token, deployment.token);

    // An existing file is not overwritten without --force.
    let before = std::fs::read(&out_path).unwrap();
    let again = fog(&["deploy", "--rpc-url", &url, "--out", out], Some(&key));
    assert!(
        stderr(&again).contains("already exists; pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), before);
    let forced = fog(
        &["deploy", "--rpc-url", &url, "--out", out, "--force"],
        Some(&key),
    );
    assert!(forced.status.success(), "{}", stderr(&forced));
    assert_ne!(
        Deployment::load(&out_path).unwrap().escrow,
        deployment.escrow
    );
}
