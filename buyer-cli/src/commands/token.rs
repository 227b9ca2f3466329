//! `fog token`: balances and transfers.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use clap::Subcommand;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum TokenAction {
    /// A balance (yours unless an address is given).
    Balance { who: Option<fog_protocol::Address> },
    /// Send whole tokens.
    Transfer {
        to: fog_protocol::Address,
        amount: String,
    },
}

pub(crate) async fn token_command(action: TokenAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::ops;
    match action {
        TokenAction::Balance { who } => {
            // Reading a balance needs no key: only the keystore's public
            // address when none is given, and never its password.
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let who = match who {
                Some(who) => who,
                None => fog_protocol::keys::address(keystore(identity)?)?,
            };
            let provider = ops::read_provider(rpc)?;
            let balance = ops::token_balance(&provider, &d, who).await?;
            if identity.json {
                println!(
                    "{}",
                    serde_json::json!({ "address": who, "balance": balance })
                );
            } else {
                println!("{}", ops::fog(balance));
            }
        }
        TokenAction::Transfer { to, amount } => {
            let (d, provider, _) = chain_only(identity)?;
            let amount = tokens("amount", &amount)?;
            let tx = ops::token_transfer(&provider, &d, to, amount).await?;
            report(
                identity,
                serde_json::json!({ "to": to, "amount": amount, "tx": tx }),
                || format!("sent {} to {to} in {tx}", fog_cli::ops::fog(amount)),
            );
        }
    }
    Ok(())
}
