//! `fog devnet`: a persistent local market, its faucet and clock.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum DevnetAction {
    /// Tokens and gas money from anvil's first account (local devnet only).
    Faucet {
        /// Recipient; default: you.
        #[arg(long)]
        to: Option<fog_protocol::Address>,
        /// Whole tokens.
        #[arg(long, default_value = "100")]
        amount: String,
    },
    /// Move the devnet's clock forward and mine a block (votes, timelocks, deadlines).
    Advance {
        /// Seconds to move forward.
        seconds: u64,
    },
    /// Start a persistent local market in the background: chain, contracts, a
    /// hub, two miners, an image registry and a funded buyer key; plain `fog`
    /// commands then use it. A second `up` says it is already up.
    Up {
        /// The devnet's directory; default ~/.local/state/fog/devnet.
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// Where the devnet's chain, hub and registry are, its buyer, and what runs.
    Status {
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// A service's log: chain, registry, hub, miner-1 or miner-2.
    Logs {
        #[arg(default_value = "hub", value_parser = ["chain", "registry", "hub", "miner-1", "miner-2"])]
        service: String,
        /// Keep printing what the service writes.
        #[arg(long, short)]
        follow: bool,
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
    /// Stop the devnet; the chain keeps its state for the next `up`.
    Down {
        #[arg(long, env = "FOG_DEVNET_DIR")]
        dir: Option<PathBuf>,
    },
}

pub(crate) async fn devnet_command(
    action: DevnetAction,
    identity: &Identity,
) -> anyhow::Result<()> {
    use fog_cli::devnet::{Devnet, Tools, default_dir};
    let devnet = |dir: Option<PathBuf>| -> anyhow::Result<Devnet> {
        let dir = dir
            .or_else(default_dir)
            .context("no devnet directory: pass --dir or set HOME")?;
        Ok(Devnet::new(dir))
    };
    match action {
        DevnetAction::Up { dir } => {
            let devnet = devnet(dir)?;
            let tools = Tools::find()?;
            let started = std::time::Instant::now();
            let (already, status) = devnet
                .up(&tools, |step| eprintln!("devnet: {step}"))
                .await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(());
            }
            if already {
                println!("the devnet is already up");
            } else {
                println!(
                    "the devnet is up (in {:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
            print_devnet(&status, devnet.owns_default_profile());
        }
        DevnetAction::Status { dir } => {
            let devnet = devnet(dir)?;
            let Some(status) = devnet.status()? else {
                bail!(
                    "no devnet in {}: start one with `fog devnet up`",
                    devnet.dir().display()
                );
            };
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print_devnet(&status, devnet.owns_default_profile());
            }
        }
        DevnetAction::Logs {
            service,
            follow,
            dir,
        } => {
            let devnet = devnet(dir)?;
            print_file(&devnet.log(&service), follow).await?;
        }
        DevnetAction::Down { dir } => {
            let devnet = devnet(dir)?;
            let stopped = devnet.down();
            if stopped.is_empty() {
                println!("the devnet in {} was not running", devnet.dir().display());
            } else {
                println!(
                    "stopped {}; the chain's state is kept for the next `fog devnet up`",
                    stopped.join(", ")
                );
            }
        }
        DevnetAction::Faucet { to, amount } => {
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let to = match to {
                Some(a) => a,
                None => fog_protocol::keys::address(keystore(identity)?)?,
            };
            let amount = tokens("--amount", &amount)?;
            fog_cli::ops::devnet_faucet(rpc, &d, to, amount).await?;
            println!(
                "sent {} and 1 ether of gas money to {to}",
                fog_cli::ops::fog(amount)
            );
        }
        DevnetAction::Advance { seconds } => {
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let now = fog_cli::ops::devnet_advance(rpc, &d, seconds).await?;
            if identity.json {
                println!("{}", serde_json::json!({ "chainTime": now }));
            } else {
                println!("chain time is now {now} (moved {seconds} s ahead)");
            }
        }
    }
    Ok(())
}

pub(crate) fn print_devnet(status: &fog_cli::devnet::Status, default_profile: bool) {
    println!("  chain     {}", status.rpc);
    println!("  hub       {} ({})", status.hub, status.hub_address);
    println!(
        "  registry  {}  (docker tag IMAGE {}/NAME:TAG && docker push {}/NAME:TAG)",
        status.registry, status.registry, status.registry
    );
    println!(
        "  buyer     {} (keystore {})",
        status.buyer,
        status.buyer_keystore.display()
    );
    for service in &status.services {
        let state = match service.pid {
            Some(pid) => format!("running (pid {pid})"),
            None => "stopped".to_owned(),
        };
        println!("  {:<9} {state}", service.name);
    }
    if default_profile {
        println!(
            "plain `fog` commands use this devnet (profile {})",
            status.profile.display()
        );
    } else {
        println!(
            "to use it: export FOG_CONFIG={} (another profile is at the default location)",
            status.profile.display()
        );
    }
}

/// Prints a file; with `follow`, keeps printing what is appended (Ctrl-C stops).
pub(crate) async fn print_file(path: &std::path::Path, follow: bool) -> anyhow::Result<()> {
    use std::io::{Read, Seek, Write};
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("{}: no log yet (is the devnet up?)", path.display()))?;
    let mut stdout = std::io::stdout();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n > 0 {
            stdout.write_all(&buf[..n])?;
            continue;
        }
        if !follow {
            return Ok(());
        }
        stdout.flush()?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        // A log truncated under us starts over.
        if file.metadata()?.len() < file.stream_position()? {
            file.rewind()?;
        }
    }
}
