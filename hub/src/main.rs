//! `fog-hub`: the hub service. The service itself lands with the hub issue;
//! until then the binary only describes itself and refuses to pretend.

use clap::Parser;

/// The Fog hub: pools miners over live connections, schedules buyers'
/// container jobs onto them, and settles signed receipts on chain.
#[derive(Debug, Parser)]
#[command(name = "fog-hub", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let Cli {} = Cli::parse();
    anyhow::bail!("the hub service is not built yet; `fog-hub --help` is all this build offers")
}
