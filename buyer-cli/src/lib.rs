//! fog-cli: the `fog` command's library.
//!
//! - [`client`]: a buyer's client of a hub's API;
//! - [`devnet`]: `fog devnet up|status|logs|down`, a persistent local market;
//! - [`jobs`]: `fog job list` and `fog job refund`, from the journal, the chain and the hub;
//! - [`journal`]: the buyer's own record of its jobs, written before each escrow opens;
//! - [`images`]: image tags resolved to pinned digests through the registry API;
//! - [`dao`]: token holders' DAO commands: delegate, propose a blacklist, vote, queue, execute;
//! - [`ops`]: hub operators' and token holders' chain commands, the devnet faucet;
//! - [`run`]: `fog job run`, from quote to verified, settled output.

pub mod client;
pub mod dao;
pub mod devnet;
pub mod images;
pub mod jobs;
pub mod journal;
pub mod ops;
pub mod run;
pub mod services;
