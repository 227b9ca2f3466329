//! `fog dao`: delegate, propose a blacklist, vote, queue, execute, inspect.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use clap::Subcommand;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum DaoAction {
    /// Give your votes to an address (yourself unless --to): votes follow delegation.
    Delegate {
        #[arg(long)]
        to: Option<fog_protocol::Address>,
    },
    /// Propose to blacklist a hub, with a settled job of that hub as the evidence.
    ProposeBlacklist {
        /// The hub's address (its HubWallet).
        #[arg(value_name = "HUB")]
        wallet: fog_protocol::Address,
        /// The job whose receipts on chain are the evidence.
        #[arg(long)]
        evidence: fog_protocol::B256,
        /// What you saw, added to the proposal's text (e.g. the sha256 of the output the hub served).
        #[arg(long)]
        note: Option<String>,
    },
    /// Vote on a proposal.
    Vote {
        proposal: fog_protocol::U256,
        #[arg(long, value_enum)]
        support: fog_cli::dao::Support,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Queue a passed proposal in the timelock.
    Queue { proposal: fog_protocol::U256 },
    /// Execute a queued proposal once its timelock delay has passed.
    Execute { proposal: fog_protocol::U256 },
    /// Proposals with their state and votes (all, or one), and your voting power.
    Status {
        proposal: Option<fog_protocol::U256>,
    },
    /// The treasury: expropriated deposits and when each is released.
    Treasury,
}

pub(crate) async fn dao_command(action: DaoAction, identity: &Identity) -> anyhow::Result<()> {
    use fog_cli::dao;
    let (d, provider, me) = chain_only(identity)?;
    let json = identity.json;
    match action {
        DaoAction::Delegate { to } => {
            let to = to.unwrap_or(me);
            let tx = dao::delegate(&provider, &d, to).await?;
            let m = dao::member(&provider, &d, me).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx, "member": m }));
            } else {
                println!(
                    "delegated your {} of votes to {to} in {tx}",
                    fog_cli::ops::fog(m.balance)
                );
            }
        }
        DaoAction::ProposeBlacklist {
            wallet: hub,
            evidence,
            note,
        } => {
            let p = dao::propose_blacklist(
                &provider,
                &d,
                hub,
                evidence,
                note.as_deref(),
                identity.hub.as_deref(),
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&p)?);
            } else {
                println!("proposal {} made in {}", p.id, p.tx);
                println!(
                    "  voting opens at unix time {} and closes at {}",
                    p.vote_start, p.vote_end
                );
                for line in p.description.lines() {
                    println!("  | {line}");
                }
            }
        }
        DaoAction::Vote {
            proposal,
            support,
            reason,
        } => {
            let (tx, weight) = dao::vote(&provider, &d, me, proposal, support, &reason).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx, "weight": weight }));
            } else {
                println!(
                    "voted {} on proposal {proposal} with {} of votes in {tx}",
                    serde_json::to_value(support)?.as_str().unwrap_or("?"),
                    fog_cli::ops::fog(weight)
                );
            }
        }
        DaoAction::Queue { proposal } => {
            let (tx, eta) = dao::queue(&provider, &d, proposal).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx, "eta": eta }));
            } else {
                println!("proposal {proposal} queued in {tx}; executable from unix time {eta}");
            }
        }
        DaoAction::Execute { proposal } => {
            let tx = dao::execute(&provider, &d, proposal).await?;
            if json {
                println!("{}", serde_json::json!({ "tx": tx }));
            } else {
                println!("proposal {proposal} executed in {tx}");
            }
        }
        DaoAction::Status { proposal } => {
            let list = dao::proposals(&provider, &d, proposal).await?;
            let m = dao::member(&provider, &d, me).await?;
            let now = dao::chain_time(&provider).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({ "chainTime": now, "member": m, "proposals": list })
                    )?
                );
                return Ok(());
            }
            println!(
                "you: {}, {} of votes (delegated to {}); chain time {now}",
                fog_cli::ops::fog(m.balance),
                fog_cli::ops::fog(m.votes),
                m.delegate
            );
            if list.is_empty() {
                println!("no proposals yet");
            }
            for p in list {
                println!("proposal {}: {}", p.id, p.state);
                if proposal.is_some() {
                    // One proposal: its whole text, evidence included.
                    for line in p.description.lines() {
                        println!("  | {line}");
                    }
                } else {
                    println!("  {}", p.description.lines().next().unwrap_or(""));
                }
                if let Some(b) = p.blacklist {
                    println!(
                        "  blacklists hub {} on the evidence of job {}",
                        b.hub, b.evidence_job
                    );
                }
                println!(
                    "  votes: {} for, {} against, {} abstain; quorum {}",
                    fog_cli::ops::fog(p.votes_for),
                    fog_cli::ops::fog(p.votes_against),
                    fog_cli::ops::fog(p.votes_abstain),
                    p.quorum
                        .map_or("set when voting opens".to_owned(), fog_cli::ops::fog)
                );
                println!("  voting {} → {}", p.vote_start, p.vote_end);
                if p.eta > 0 {
                    println!("  executable from {}", p.eta);
                }
            }
        }
        DaoAction::Treasury => {
            let t = dao::treasury(&provider, &d).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&t)?);
                return Ok(());
            }
            println!(
                "treasury {}: holds {}, of which {} frozen or unspent in lots",
                t.address,
                fog_cli::ops::fog(t.balance),
                fog_cli::ops::fog(t.locked_total)
            );
            for lot in t.lots {
                println!(
                    "  lot {}: {} from hub {}, {} left, {} until unix time {}",
                    lot.id,
                    fog_cli::ops::fog(lot.amount),
                    lot.hub,
                    fog_cli::ops::fog(lot.remaining),
                    if lot.frozen { "frozen" } else { "released" },
                    lot.release_at
                );
            }
        }
    }
    Ok(())
}
