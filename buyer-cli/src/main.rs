//! `fog`: the command-line client. Buyers run jobs (`fog job`) with a
//! keystore identity (`fog key`); hub operators register and run hubs
//! (`fog hub`) and deploy the contracts (`fog deploy`); token holders move
//! tokens (`fog token`) and take part in the DAO (`fog dao`); on a local
//! devnet `fog devnet` hands out tokens and moves the clock.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod commands;

use commands::account::{AccountAction, account_command};
use commands::common::Identity;
use commands::dao::{DaoAction, dao_command};
use commands::deploy::deploy_command;
use commands::devnet::{DevnetAction, devnet_command};
use commands::hub::{HubAction, hub_command};
use commands::job::{JobAction, job_command};
use commands::key::{KeyAction, key_command};
use commands::service::{ServiceAction, service_command};
use commands::token::{TokenAction, token_command};

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
    /// Operate a hub: register, status, withdraw earnings, exit.
    Hub {
        #[command(subcommand)]
        action: HubAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Your account of the batched settlement path: deposit once, spend or withdraw earnings,
    /// withdraw deposits after the delay.
    Account {
        #[command(subcommand)]
        action: AccountAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Token balances and transfers.
    Token {
        #[command(subcommand)]
        action: TokenAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Take part in the DAO: delegate, propose a hub's blacklisting, vote, queue, execute.
    Dao {
        #[command(subcommand)]
        action: DaoAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Local devnet helpers.
    Devnet {
        #[command(subcommand)]
        action: DevnetAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Manage your key (an encrypted Ethereum keystore file).
    Key {
        #[command(subcommand)]
        action: KeyAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Run and follow jobs.
    Job {
        #[command(subcommand)]
        action: JobAction,
        #[command(flatten)]
        identity: Identity,
    },
    /// Run long-lived services (a website, an API) reached through the hub, paid per healthy period.
    Service {
        #[command(subcommand)]
        action: ServiceAction,
        #[command(flatten)]
        identity: Identity,
    },
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

/// Ordinary errors are one paragraph, whatever RUST_BACKTRACE says.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Key { action, identity } => key_command(action, &identity.with_file_defaults()?),
        Command::Hub { action, identity } => {
            hub_command(action, &identity.with_file_defaults()?).await
        }
        Command::Account { action, identity } => {
            account_command(action, &identity.with_file_defaults()?).await
        }
        Command::Token { action, identity } => {
            token_command(action, &identity.with_file_defaults()?).await
        }
        Command::Dao { action, identity } => {
            dao_command(action, &identity.with_file_defaults()?).await
        }
        Command::Devnet { action, identity } => {
            devnet_command(action, &identity.with_file_defaults()?).await
        }
        Command::Job { action, identity } => {
            job_command(action, &identity.with_file_defaults()?).await
        }
        Command::Service { action, identity } => {
            service_command(action, &identity.with_file_defaults()?).await
        }
        Command::Deploy {
            rpc_url,
            params,
            out,
            force,
        } => deploy_command(&rpc_url, params, &out, force).await,
    }
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand and argument.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
