//! fog-miner: the miner agent's library. Binaries are thin over these modules.
//!
//! - [`config`]: the configuration file and its validation into a [`config::Policy`];
//! - [`schedule`]: availability windows in the miner's time zone;
//! - [`pricing`]: the price floor, outright or from the electricity bill;
//! - [`agent`]: the live session with a hub (`fog-miner run`);
//! - [`admission`]: whether to take a job, and a capacity ledger that never overcommits;
//! - [`executor`]: runs a job in the Docker sandbox and reports what it used;
//! - [`jobfs`]: each job's own size-limited file system;
//! - [`metering`]: exact CPU time and peak memory from a cgroup of the job's own;
//! - [`runner`]: admission, the run and the signed receipt, several jobs at once;
//! - [`settle`]: receipts kept on disk, and the miner's own settlement of them;
//! - [`chain_time`]: the chain's clock, which deadlines are judged by;
//! - [`host`]: what the machine has;
//! - [`local`]: local mode (`fog-miner exec`): inputs, the self-stated assignment;
//! - [`keys`]: the miner's encrypted key.

pub mod admission;
pub mod agent;
pub mod chain_time;
pub mod config;
pub mod executor;
pub mod host;
pub mod jobfs;
pub mod local;
pub mod metering;
pub mod pricing;
pub mod runner;
pub mod schedule;
pub mod services;
pub mod settle;

/// The miner's key: see [`fog_protocol::keys`].
pub use fog_protocol::keys;
