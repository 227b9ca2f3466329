//! `fog account`: the buyer's (and miner's) account of the batched
//! settlement path (docs/settlement.md): fund it once, spend or withdraw
//! earnings, withdraw deposits after the delay.

use clap::Subcommand;
use fog_cli::ops::{self, BatchMove};

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum AccountAction {
    /// Balance (pays for batched jobs), earnings, and any withdrawal under way (yours unless an
    /// address is given).
    Balance { who: Option<fog_protocol::Address> },
    /// Deposit whole tokens from your wallet (one transaction, with a permit); with --to, into
    /// another account, e.g. a hub's bond (an allowance, then the deposit).
    Deposit {
        amount: String,
        #[arg(long)]
        to: Option<fog_protocol::Address>,
    },
    /// Move earnings into your balance, to pay for jobs (no withdrawal, no deposit).
    SpendEarnings { amount: String },
    /// Send earnings to your wallet, at once.
    WithdrawEarnings { amount: String },
    /// Ask to withdraw balance after the withdrawal delay (0 cancels a request).
    RequestWithdrawal { amount: String },
    /// Take a withdrawal whose delay has passed.
    Withdraw,
}

pub(crate) async fn account_command(
    action: AccountAction,
    identity: &Identity,
) -> anyhow::Result<()> {
    match action {
        AccountAction::Balance { who } => {
            // Reading needs no key: only the keystore's public address when none is given.
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let who = match who {
                Some(who) => who,
                None => fog_protocol::keys::address(keystore(identity)?)?,
            };
            let provider = ops::read_provider(rpc)?;
            let account = ops::batch_account(&provider, &d, who).await?;
            report(identity, serde_json::to_value(&account)?, || {
                let mut text = format!(
                    "balance {}, earned {}",
                    ops::fog(account.balance),
                    ops::fog(account.earned)
                );
                if let Some(at) = account.withdrawable_at {
                    text.push_str(&format!(
                        ", withdrawal of {} ready at chain time {at}",
                        ops::fog(account.withdrawal)
                    ));
                }
                text
            });
        }
        AccountAction::Deposit { amount, to } => {
            let amount = tokens("amount", &amount)?;
            let (_, d, rpc) = deployment_and_rpc(identity)?;
            let key = provider_key(identity)?;
            let provider = ops::signing_provider(rpc, key.clone())?;
            let account = to.unwrap_or(key.address());
            let tx = match to {
                Some(to) if to != key.address() => {
                    ops::batch_deposit_for(&provider, &d, &key, to, amount).await?
                }
                _ => ops::batch_deposit(&provider, &d, &key, amount).await?,
            };
            report(
                identity,
                serde_json::json!({ "account": account, "amount": amount, "tx": tx }),
                || format!("deposited {} into {account} in {tx}", ops::fog(amount)),
            );
        }
        AccountAction::SpendEarnings { amount } => {
            moved(
                identity,
                BatchMove::SpendEarnings,
                &amount,
                "moved {} of earnings into the balance",
            )
            .await?;
        }
        AccountAction::WithdrawEarnings { amount } => {
            moved(
                identity,
                BatchMove::WithdrawEarnings,
                &amount,
                "sent {} of earnings to the wallet",
            )
            .await?;
        }
        AccountAction::RequestWithdrawal { amount } => {
            moved(
                identity,
                BatchMove::RequestWithdrawal,
                &amount,
                "asked to withdraw {} (`fog account balance` says when it is ready)",
            )
            .await?;
        }
        AccountAction::Withdraw => {
            let (d, provider, me) = chain_only(identity)?;
            let (tx, amount) = ops::batch_withdraw(&provider, &d, me).await?;
            report(
                identity,
                serde_json::json!({ "amount": amount, "tx": tx }),
                || format!("withdrew {} in {tx}", ops::fog(amount)),
            );
        }
    }
    Ok(())
}

async fn moved(
    identity: &Identity,
    action: BatchMove,
    amount: &str,
    text: &str,
) -> anyhow::Result<()> {
    let amount = tokens("amount", amount)?;
    let (d, provider, me) = chain_only(identity)?;
    let tx = ops::batch_move(&provider, &d, me, action, amount).await?;
    report(
        identity,
        serde_json::json!({ "amount": amount, "tx": tx }),
        || format!("{} in {tx}", text.replacen("{}", &ops::fog(amount), 1)),
    );
    Ok(())
}
