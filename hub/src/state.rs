//! What every request handler and miner session shares: the one home of the
//! hub's serving state, so that the API and the sessions depend on it and
//! not on each other.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use fog_protocol::Eip712Domain;

use crate::auth::Auth;
use crate::blobs::BlobStore;
use crate::chain::Chain;
use crate::config::StorageConfig;
use crate::engine::EngineHandle;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::store::Store;

/// Size limits of requests.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest JSON body.
    pub max_json_bytes: usize,
    /// Largest blob (input or output archive).
    pub max_blob_bytes: u64,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct Shared {
    pub store: Store,
    pub blobs: BlobStore,
    pub chain: Chain,
    pub auth: Auth,
    pub engine: EngineHandle,
    pub metrics: Metrics,
    pub limits: Limits,
    pub storage: StorageConfig,
    pub rates: RateLimits,
    /// Miner connections that have not logged in yet may hold at most this
    /// many permits: pre-authentication state is bounded.
    pub unauthenticated_miners: Arc<tokio::sync::Semaphore>,
    pub domain: Eip712Domain,
    pub heartbeat_interval: Duration,
    pub fee_bps: u16,
    pub next_conn: AtomicU64,
    /// The batched settlement path, when the deployment has it and settlement is on.
    pub batch: Option<BatchPath>,
    /// Services' entry point: their replicas, tunnels and pooled connections.
    pub proxy: Arc<crate::proxy::Proxy>,
}

/// What the batched settlement path needs at request time.
#[derive(Debug)]
pub struct BatchPath {
    pub contract: fog_protocol::Address,
    /// The token buyers' permits move.
    pub token: fog_protocol::Address,
    /// JobAuths are signed under it.
    pub domain: Eip712Domain,
    pub auth_horizon_secs: u64,
    pub epochs: crate::epochs::Epochs,
    /// Held while a batched submission is checked against the buyer's balance and stored.
    pub admitting: tokio::sync::Mutex<()>,
}

pub type AppState = Arc<Shared>;
