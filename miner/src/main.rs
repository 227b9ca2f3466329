//! `fog-miner`: the miner agent. The executor and agent land with the miner
//! issue; until then the binary only describes itself and refuses to pretend.

use clap::Parser;

/// The Fog miner: offers this machine's idle resources to a hub, runs
/// assigned containers in a locked-down Docker sandbox, and signs receipts.
#[derive(Debug, Parser)]
#[command(name = "fog-miner", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let Cli {} = Cli::parse();
    anyhow::bail!("the miner agent is not built yet; `fog-miner --help` is all this build offers")
}
