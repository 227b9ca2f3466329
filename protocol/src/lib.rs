//! fog-protocol: the one home of every type that crosses a process or chain
//! boundary in Fog.
//!
//! - [`api`]: the hub's HTTP request and response bodies (OpenAPI from these);
//! - [`charge`]: the pro-rata charge of a run under an assignment;
//! - [`clock`]: the one wall clock, and a manual one for tests;
//! - [`types`]: the EIP-712 structs [`JobSpec`], [`Assignment`], [`Receipt`]
//!   (declared once with `sol!`, shared in layout with the contracts);
//! - [`signing`]: the EIP-712 domain, hashing, signing and recovery;
//! - [`spec`]: validation of job specs, image references, network policy;
//! - [`output`]: the deterministic output archive, its sha256, its size limit and safe unpacking;
//! - [`service`]: long-running services: their spec, ids and per-period billing;
//! - [`wire`]: versioned hub↔miner messages;
//! - [`keys`]: encrypted keystore files (miners, hubs, buyers).

pub mod api;
pub mod batch;
pub mod charge;
pub mod clock;
pub mod contracts;
pub mod deploy;
pub mod keys;
pub mod output;
pub mod service;
pub mod signature_hex;
pub mod signing;
pub mod spec;
pub mod types;
pub mod wire;

pub use alloy::primitives::{Address, B256, Signature, U256};

/// Seconds an escrow's deadline must leave after a job's maximum duration for
/// the hub to settle it (`JobEscrow.SETTLEMENT_WINDOW`, compared on a live
/// chain by the contracts' parity test): a job is never run to its end only to
/// have its deadline pass before it can be paid.
pub const SETTLEMENT_WINDOW_SECS: u64 = 30 * 60;
pub use alloy::signers::local::PrivateKeySigner;
pub use alloy::sol_types::Eip712Domain;

pub use signing::{
    FogStruct, SignatureError, Signed, SignedAssignment, SignedJobSpec, SignedReceipt, fog_domain,
};
pub use spec::{INPUT_DIR, ImageRef, NetworkPolicy, SpecError};
pub use types::{Assignment, EnvVar, InputBlob, JobSpec, Placement, Receipt, Resources};
