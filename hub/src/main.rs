//! `fog-hub`: the hub service.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use fog_hub::config::{HubConfig, PASSWORD_VAR};

/// The Fog hub: pools miners over live connections, schedules buyers'
/// container jobs onto them, and settles signed receipts on chain.
#[derive(Debug, Parser)]
#[command(name = "fog-hub", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the buyer API and miner sessions.
    Serve {
        /// The hub's TOML configuration (FOG_HUB_* variables override it).
        #[arg(long, short)]
        config: PathBuf,
        /// File holding the signer keystore's password; else FOG_HUB_KEY_PASSWORD.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Print the API's OpenAPI document (generated from its types; the
    /// committed hub/openapi.json must equal it).
    Openapi,
    /// Every miner's record on this hub (completed, failed, disagreed with
    /// the quorum, dropped, timed out) and the reputation the scheduler gives it.
    Miners {
        /// The hub's TOML configuration (its database is read).
        #[arg(long, short)]
        config: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn password(file: Option<&Path>) -> anyhow::Result<String> {
    Ok(fog_protocol::keys::read_password(file, PASSWORD_VAR)?)
}

fn init_logs(format: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("FOG_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutting down");
}

/// Ordinary errors are one paragraph, whatever RUST_BACKTRACE says.
fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve {
            config,
            password_file,
        } => {
            let cfg = HubConfig::load(&config).with_context(|| format!("{}", config.display()))?;
            init_logs(&cfg.log_format);
            let signer = alloy::signers::local::PrivateKeySigner::decrypt_keystore(
                &cfg.keystore,
                password(password_file.as_deref())?,
            )
            .map_err(|e| anyhow::anyhow!("keystore {}: {e}", cfg.keystore.display()))?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            runtime.block_on(fog_hub::service::serve(cfg, signer, shutdown_signal()))?;
        }
        Command::Openapi => print_openapi(),
        Command::Miners { config, json } => {
            let cfg = HubConfig::load(&config).with_context(|| format!("{}", config.display()))?;
            let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
            let records = runtime.block_on(async {
                let store = fog_hub::store::Store::open(&cfg.database_url).await?;
                store.miner_records().await
            })?;
            print_miners(&records, json)?;
        }
    }
    Ok(())
}

/// The OpenAPI document (a command's output: stdout).
#[allow(clippy::print_stdout)]
fn print_openapi() {
    print!("{}", fog_hub::api::openapi_json());
}

/// The operator's view of the miners' records (a command's output: stdout).
#[allow(clippy::print_stdout)]
fn print_miners(
    records: &[(fog_protocol::Address, fog_hub::store::MinerRecord, i64)],
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let rows: Vec<_> = records
            .iter()
            .map(|(miner, r, last)| {
                serde_json::json!({
                    "miner": miner,
                    "completed": r.completed,
                    "failed": r.failed,
                    "disagreed": r.disagreed,
                    "dropped": r.dropped,
                    "timedOut": r.timed_out,
                    "reputation": r.reputation(),
                    "lastOutcomeAt": last,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if records.is_empty() {
        println!("no miner has an outcome on record yet");
        return Ok(());
    }
    println!(
        "miner                                       completed failed disagreed dropped timed-out reputation"
    );
    for (miner, r, _) in records {
        println!(
            "{miner} {:>9} {:>6} {:>9} {:>7} {:>9} {:>10.3}",
            r.completed,
            r.failed,
            r.disagreed,
            r.dropped,
            r.timed_out,
            r.reputation()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// clap's own consistency checks over every subcommand and argument.
    #[test]
    fn the_command_line_is_well_formed() {
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}
