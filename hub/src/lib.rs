//! fog-hub: the hub service's library. The binary is thin over these modules.
//!
//! - [`config`]: the configuration file and its checks;
//! - [`service`]: wiring and serving;
//! - [`api`]: the buyer API, miners' endpoints, health and metrics;
//! - [`state`]: what handlers and sessions share;
//! - [`sessions`]: miners' WebSocket sessions;
//! - [`ratelimit`]: request rates per address and per key;
//! - [`engine`]: the single owner of queue, miners and running jobs;
//! - [`scheduler`]: placement and the fair queue;
//! - [`store`]: the database (all SQL lives there);
//! - [`blobs`]: content-addressed inputs and outputs;
//! - [`chain`]: escrow checks on chain;
//! - [`settle`]: settlement of completed jobs on chain, idempotent across restarts;
//! - [`auth`]: buyer login tokens and miner session tokens;
//! - [`metrics`]: Prometheus metrics.

pub mod api;
pub mod auth;
pub mod blobs;
pub mod chain;
pub mod config;
pub mod engine;
pub mod epochs;
pub mod metrics;
pub mod proxy;
pub mod ratelimit;
pub mod scheduler;
pub mod service;
pub mod sessions;
pub mod settle;
pub mod state;
pub mod store;
