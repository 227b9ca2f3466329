//! `fog deploy`: every contract on a chain, and the deployment file.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;

use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};

use alloy::network::EthereumWallet;
use alloy::providers::ProviderBuilder;
use fog_protocol::deploy::{DeployParams, deploy};

pub(crate) async fn deploy_command(
    rpc_url: &str,
    params: Option<PathBuf>,
    out: &std::path::Path,
    force: bool,
) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!(
            "{} already exists; pass --force to replace it",
            out.display()
        );
    }
    let key = std::env::var("FOG_DEPLOYER_KEY")
        .context("set FOG_DEPLOYER_KEY to the deployer's private key (hex)")?;
    let signer: PrivateKeySigner = key
        .trim()
        .parse()
        .context("FOG_DEPLOYER_KEY is not a valid secp256k1 private key in hex")?;
    let url = rpc_url
        .parse()
        .with_context(|| format!("--rpc-url {rpc_url:?} is not a URL"))?;
    let params = match params {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading --params {}", path.display()))?;
            serde_json::from_str::<DeployParams>(&text).with_context(|| {
                format!(
                    "--params {}: not valid deployment parameters",
                    path.display()
                )
            })?
        }
        None => DeployParams::devnet(signer.address()),
    };
    let deployer = signer.address();
    let provider = ProviderBuilder::new()
        .wallet(EthereumWallet::from(signer))
        .connect_http(url);
    let deployment = deploy(&provider, deployer, &params)
        .await
        .with_context(|| format!("deploying to {rpc_url}"))?;
    deployment.save(out)?;
    eprintln!(
        "deployed Fog on chain {}: escrow {}, registry {}, token {}; wrote {}",
        deployment.chain_id,
        deployment.escrow,
        deployment.registry,
        deployment.token,
        out.display()
    );
    Ok(())
}
