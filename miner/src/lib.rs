//! fog-miner: the miner agent's library. Binaries are thin over these modules.
//!
//! - [`config`]: the configuration file and its validation into a [`config::Policy`];
//! - [`schedule`]: availability windows in the miner's time zone;
//! - [`pricing`]: the price floor, outright or from the electricity bill;
//! - [`admission`]: whether to take a job, and a capacity ledger that never overcommits;
//! - [`host`]: what the machine has;
//! - [`keys`]: the miner's encrypted key.

pub mod admission;
pub mod config;
pub mod host;
pub mod keys;
pub mod pricing;
pub mod schedule;
