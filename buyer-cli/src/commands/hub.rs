//! `fog hub`: register, inspect, withdraw from and exit a hub.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use clap::Subcommand;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum HubAction {
    /// Register a hub operated by your key: locks the deposit in a new HubWallet.
    Register {
        /// Deposit in whole tokens (at least the registry's minimum).
        #[arg(long)]
        deposit: String,
        /// Commission in basis points (500 = 5%).
        #[arg(long)]
        fee: u16,
        /// The hub's public URL.
        #[arg(long)]
        endpoint: String,
        /// The address that signs the hub's assignments (the hub service's key).
        #[arg(long)]
        signer: fog_protocol::Address,
    },
    /// A hub's state, terms, deposit and earnings.
    Status {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
    },
    /// Withdraw the hub's earnings (all unless --amount).
    Withdraw {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
        /// Whole tokens.
        #[arg(long)]
        amount: Option<String>,
        /// Recipient; default: you.
        #[arg(long)]
        to: Option<fog_protocol::Address>,
    },
    /// Announce the hub's exit; with --complete, take the deposit back after unbonding.
    Exit {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
        #[arg(long)]
        complete: bool,
    },
}

pub(crate) async fn hub_command(action: HubAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::ops;
    let (d, provider, me) = chain_only(identity)?;
    match action {
        HubAction::Register {
            deposit,
            fee,
            endpoint,
            signer,
        } => {
            let deposit = tokens("--deposit", &deposit)?;
            let (hub, tx) =
                ops::hub_register(&provider, &d, me, signer, fee, &endpoint, deposit).await?;
            if identity.json {
                println!("{}", serde_json::json!({ "hub": hub, "tx": tx }));
            } else {
                println!("registered hub {hub} (in {tx}); put `hub = \"{hub}\"` in hub.toml");
            }
        }
        HubAction::Status { wallet: hub } => {
            let status = ops::hub_status(&provider, &d, hub).await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!("hub {hub}: {}", status.state);
                println!(
                    "  operator {}, signer {}, fee {} bps, endpoint {}",
                    status.operator, status.signer, status.fee_bps, status.endpoint
                );
                println!(
                    "  deposit {} (frozen), earnings {}",
                    fog_cli::ops::fog(status.deposit),
                    fog_cli::ops::fog(status.earnings)
                );
                println!(
                    "  open jobs {}, {} in escrow of a cap of {}",
                    status.open_jobs,
                    fog_cli::ops::fog(status.open_escrow),
                    fog_cli::ops::fog(status.exposure_cap)
                );
                if status.exit_at > 0 {
                    println!(
                        "  deposit unlocks at unix time {} (once no job is open)",
                        status.exit_at
                    );
                }
            }
        }
        HubAction::Withdraw {
            wallet: hub,
            amount,
            to,
        } => {
            let amount = amount.map(|a| tokens("--amount", &a)).transpose()?;
            let (paid, tx) = ops::hub_withdraw(&provider, hub, to.unwrap_or(me), amount).await?;
            report(
                identity,
                serde_json::json!({ "amount": paid, "tx": tx }),
                || format!("withdrew {} of earnings in {tx}", fog_cli::ops::fog(paid)),
            );
        }
        HubAction::Exit {
            wallet: hub,
            complete,
        } => {
            let tx = ops::hub_exit(&provider, &d, hub, complete).await?;
            report(
                identity,
                serde_json::json!({ "hub": hub, "complete": complete, "tx": tx }),
                || {
                    if complete {
                        format!("exit complete, deposit returned, in {tx}")
                    } else {
                        format!(
                            "exit announced in {tx}; `fog hub status {hub}` says when the deposit unlocks"
                        )
                    }
                },
            );
        }
    }
    Ok(())
}
