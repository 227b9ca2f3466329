//! `fog`: the command-line client. Its commands land with the end-to-end
//! issue; until then the binary only describes itself and refuses to pretend.

use clap::Parser;

/// Fog: run container jobs on rented machines and pay through an on-chain
/// escrow; operate a hub; take part in the DAO.
#[derive(Debug, Parser)]
#[command(name = "fog", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let Cli {} = Cli::parse();
    anyhow::bail!("the fog client has no commands yet; `fog --help` is all this build offers")
}
