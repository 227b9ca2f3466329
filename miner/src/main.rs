//! `fog-miner`: the miner agent. Keys and the offer policy work today; the
//! executor and the hub connection land with the rest of the miner issue.

#![allow(clippy::print_stdout)] // a command-line tool: addresses and reports go to stdout

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use fog_miner::config::MinerConfig;
use fog_miner::host::HostResources;
use fog_miner::keys;

/// The Fog miner: offers this machine's idle resources to a hub, runs
/// assigned containers in a locked-down Docker sandbox, and signs receipts.
#[derive(Debug, Parser)]
#[command(name = "fog-miner", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the miner's key (an encrypted Ethereum keystore file).
    Key {
        #[command(subcommand)]
        action: KeyAction,
    },
    /// Check a configuration file against this host and print the resulting offer.
    Policy {
        /// The miner's TOML configuration (FOG_MINER_* variables override it).
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeyAction {
    /// Create a new key. The password comes from --password-file or FOG_MINER_KEY_PASSWORD.
    New {
        #[arg(long)]
        keystore: PathBuf,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Print the key's address (no password needed).
    Address {
        #[arg(long)]
        keystore: PathBuf,
    },
}

fn password(file: Option<&Path>) -> anyhow::Result<String> {
    match file {
        Some(path) => Ok(std::fs::read_to_string(path)
            .with_context(|| format!("reading --password-file {}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned()),
        None => std::env::var("FOG_MINER_KEY_PASSWORD")
            .context("no password: pass --password-file or set FOG_MINER_KEY_PASSWORD"),
    }
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Key {
            action:
                KeyAction::New {
                    keystore,
                    password_file,
                },
        } => {
            let address = keys::create(&keystore, &password(password_file.as_deref())?)?;
            println!("{address}");
        }
        Command::Key {
            action: KeyAction::Address { keystore },
        } => {
            println!("{}", keys::address(&keystore)?);
        }
        Command::Policy { config } => {
            let cfg = MinerConfig::load(&config)?;
            let host = HostResources::detect(&cfg.work_dir)?;
            let policy = cfg
                .policy(&host)
                .with_context(|| format!("{}", config.display()))?;
            let windows: Vec<String> = policy
                .availability
                .windows()
                .iter()
                .map(ToString::to_string)
                .collect();
            let report = serde_json::json!({
                "capacity": policy.capacity,
                "rate": { "perCoreHour": policy.rate.per_core_hour.to_string(), "perGibHour": policy.rate.per_gib_hour.to_string() },
                "region": policy.region,
                "labels": policy.labels,
                "allowNetwork": policy.allow_network,
                "availability": if windows.is_empty() { serde_json::json!("always") } else { serde_json::json!(windows) },
                "maxLoadPerCore": policy.max_load_per_core,
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
    }
    Ok(())
}
