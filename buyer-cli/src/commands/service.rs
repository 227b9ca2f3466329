//! `fog service`: start, list, follow, top up and stop long-running services.

#![allow(clippy::print_stdout)] // a command-line tool: results go to stdout

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use fog_protocol::B256;
use fog_protocol::api::ServiceStatus;

use super::common::*;

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceAction {
    /// Start a service from a service file (TOML, or JSON by extension; see
    /// docs/services.md) and print its URL once a replica answers. Paid per
    /// healthy period from your batch account (`fog account deposit`, or --fund).
    Up {
        /// The service file.
        spec: PathBuf,
        /// Periods one segment authorisation pays for (a miner's longest stint).
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=100_000))]
        segment_periods: u64,
        /// Fund your batch account with this many whole tokens through the hub
        /// (a permit it carries in its next epoch: no transaction).
        #[arg(long)]
        fund: Option<String>,
        /// Seconds to wait for a replica to answer.
        #[arg(long, default_value_t = 300)]
        wait: u64,
    },
    /// My services at this hub, newest first.
    #[command(visible_alias = "ls")]
    List,
    /// A service's replicas, segments, spending and settlement.
    Status { service: B256 },
    /// A service's logs (all replicas); -f follows until it stops.
    Logs {
        service: B256,
        #[arg(short, long)]
        follow: bool,
    },
    /// Stop a service: its last periods are paid, the rest of its authorisations released.
    Stop { service: B256 },
    /// Let a service spend more (and run longer): sign more segment authorisations.
    TopUp {
        service: B256,
        /// Whole tokens more it may spend.
        #[arg(long)]
        amount: String,
        #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=100_000))]
        segment_periods: u64,
        #[arg(long)]
        fund: Option<String>,
    },
}

fn url_of(hub_url: &str, status: &ServiceStatus) -> String {
    format!("{}{}", hub_url.trim_end_matches('/'), status.path)
}

fn print_status(hub_url: &str, s: &ServiceStatus) {
    println!("service {}: {}", s.service_id, s.state);
    println!("  url: {}", url_of(hub_url, s));
    if let Some(reason) = &s.reason {
        println!("  reason: {reason}");
    }
    println!(
        "  spent {} of authorised {} more; {} per replica per {} s period",
        fog_cli::ops::fog(s.spent),
        fog_cli::ops::fog(s.authorised),
        fog_cli::ops::fog(s.spec.pricePerPeriod),
        s.spec.periodSecs
    );
    for g in &s.segments {
        let when = match g.ended_at {
            None if g.healthy => "serving".to_owned(),
            None => "starting or unhealthy".to_owned(),
            Some(_) => format!("ended: {}", g.end_reason.as_deref().unwrap_or("unknown")),
        };
        println!(
            "  replica {} on {}: {} periods ({}), {when}; settlement {}",
            g.replica,
            g.miner,
            g.periods,
            fog_cli::ops::fog(g.amount),
            g.settlement.map_or("not yet", |s| s.as_str())
        );
    }
}

pub(crate) async fn service_command(
    action: ServiceAction,
    identity: &Identity,
) -> anyhow::Result<()> {
    use fog_cli::services::{SigningTerms, read_file, top_up, up};

    let hub_url = identity
        .hub
        .as_deref()
        .context("no hub: pass --hub URL or set FOG_HUB_URL")?;
    let key = fog_protocol::keys::open(
        keystore(identity)?,
        &password(identity.password_file.as_deref())?,
    )?;
    let terms = |segment_periods| async move {
        let info = fetch_hub_info(hub_url).await?;
        let batch = info
            .batch
            .ok_or_else(|| fog_cli::services::ServiceError::NoBatch(hub_url.to_owned()))?;
        anyhow::Ok(SigningTerms {
            segment_periods,
            fee_bps: info.fee_bps,
            horizon_secs: batch.auth_horizon_secs,
        })
    };
    let tokens = |flag: &str, t: Option<String>| -> anyhow::Result<Option<fog_protocol::U256>> {
        t.as_deref()
            .map(|t| fog_cli::run::parse_tokens(t).map_err(|e| anyhow::anyhow!("{flag}: {e}")))
            .transpose()
    };
    match action {
        ServiceAction::Up {
            spec,
            segment_periods,
            fund,
            wait,
        } => {
            let file = read_file(&spec)?;
            let fund = tokens("--fund", fund)?;
            let terms = terms(segment_periods).await?;
            let mut ctx = chain_context(identity, hub_url, key).await?;
            let spinner = Spinner::new("starting the service");
            let status = up(
                &mut ctx,
                &file,
                terms,
                fund,
                Duration::from_secs(wait),
                |step| spinner.step(step),
            )
            .await;
            drop(spinner);
            let status = status?;
            if identity.json {
                let mut value = serde_json::to_value(&status)?;
                value["url"] = url_of(hub_url, &status).into();
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                eprintln!("fog: service {} answers", status.service_id);
                println!("{}", url_of(hub_url, &status));
            }
        }
        ServiceAction::TopUp {
            service,
            amount,
            segment_periods,
            fund,
        } => {
            let amount = tokens("--amount", Some(amount))?.unwrap_or_default();
            let fund = tokens("--fund", fund)?;
            let terms = terms(segment_periods).await?;
            let mut ctx = chain_context(identity, hub_url, key).await?;
            let status = top_up(&mut ctx, service, amount, terms, fund).await?;
            if identity.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                println!(
                    "service {service} may spend {} more",
                    fog_cli::ops::fog(status.authorised)
                );
            }
        }
        other => {
            let mut hub = fog_cli::client::HubClient::new(hub_url);
            hub.login(&key).await?;
            match other {
                ServiceAction::List => {
                    let list = hub.services().await?;
                    if identity.json {
                        println!("{}", serde_json::to_string_pretty(&list)?);
                    } else if list.services.is_empty() {
                        println!("no services at this hub");
                    } else {
                        for s in &list.services {
                            println!(
                                "{} {:8} {}/{} healthy, spent {}  {}",
                                s.service_id,
                                s.state.as_str(),
                                s.healthy_replicas,
                                s.replicas,
                                fog_cli::ops::fog(s.spent),
                                format_args!("{}{}", hub_url.trim_end_matches('/'), s.path)
                            );
                        }
                    }
                }
                ServiceAction::Status { service } => {
                    let status = hub.service(service).await?;
                    if identity.json {
                        println!("{}", serde_json::to_string_pretty(&status)?);
                    } else {
                        print_status(hub_url, &status);
                    }
                }
                ServiceAction::Logs { service, follow } => {
                    hub.service_logs(service, follow, |line| {
                        super::job::print_log(line.stream.as_str(), &line.data)
                    })
                    .await?;
                }
                ServiceAction::Stop { service } => {
                    let status = hub.stop_service(service).await?;
                    if identity.json {
                        println!("{}", serde_json::to_string_pretty(&status)?);
                    } else {
                        println!(
                            "service {service} stopped: {} spent; its last segments settle in the hub's next epoch, the rest of its authorisations is released",
                            fog_cli::ops::fog(status.spent)
                        );
                    }
                }
                ServiceAction::Up { .. } | ServiceAction::TopUp { .. } => {
                    unreachable!("handled above, with the chain")
                }
            }
        }
    }
    Ok(())
}
