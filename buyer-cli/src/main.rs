//! `fog`: the command-line client. Today it deploys the contracts; the
//! buyer, operator and DAO commands land with the end-to-end issue.

use std::path::PathBuf;

use alloy::network::EthereumWallet;
use alloy::providers::ProviderBuilder;
use alloy::signers::local::PrivateKeySigner;
use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use fog_protocol::deploy::{DeployParams, deploy};

/// Fog: run container jobs on rented machines and pay through an on-chain
/// escrow; operate a hub; take part in the DAO.
#[derive(Debug, Parser)]
#[command(name = "fog", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Deploy and wire every Fog contract on a chain, and write the deployment file.
    ///
    /// The deployer's private key is read from the environment variable
    /// FOG_DEPLOYER_KEY (hex), never from the command line.
    Deploy {
        /// JSON-RPC endpoint of the chain.
        #[arg(long, env = "FOG_RPC_URL", default_value = "http://127.0.0.1:8545")]
        rpc_url: String,
        /// Deployment parameters (JSON, camelCase fields of DeployParams); devnet defaults
        /// with the deployer holding the supply when absent.
        #[arg(long)]
        params: Option<PathBuf>,
        /// Where to write the deployment file.
        #[arg(long, default_value = "deployment.json")]
        out: PathBuf,
        /// Replace an existing deployment file.
        #[arg(long)]
        force: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Deploy {
            rpc_url,
            params,
            out,
            force,
        } => deploy_command(&rpc_url, params, &out, force).await,
    }
}

async fn deploy_command(
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
