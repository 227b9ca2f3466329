//! The `fog` binary's command groups, one module each, thin over the
//! `fog_cli` library.

pub(crate) mod account;
pub(crate) mod common;
pub(crate) mod dao;
pub(crate) mod deploy;
pub(crate) mod devnet;
pub(crate) mod hub;
pub(crate) mod job;
pub(crate) mod key;
pub(crate) mod service;
pub(crate) mod token;
