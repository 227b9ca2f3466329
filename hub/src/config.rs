//! The hub's configuration file (TOML) with `FOG_HUB_*` environment
//! overrides (`__` separates levels: `FOG_HUB_MINERS__TIMEOUT_MS=5000`).

use std::path::{Path, PathBuf};

use fog_protocol::Address;
use serde::Deserialize;

/// The variable holding the signer keystore's password: a secret, never a setting.
pub const PASSWORD_VAR: &str = "FOG_HUB_KEY_PASSWORD";

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// The file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// Address to listen on, e.g. `127.0.0.1:8040`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// `sqlite://PATH` (created if missing).
    pub database_url: String,
    /// Directory of content-addressed blobs.
    pub blob_dir: PathBuf,
    /// The contracts' deployment file (`fog deploy --out`).
    pub deployment: PathBuf,
    /// Ethereum JSON-RPC endpoint.
    pub rpc_url: String,
    /// This hub's address on chain (its HubWallet, from `fog hub register`).
    pub hub: Address,
    /// Keystore of the assignment signer registered for the hub.
    pub keystore: PathBuf,
    /// `human` or `json` logs.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Lifetime of a buyer's login token.
    #[serde(default = "default_token_ttl")]
    pub token_ttl_secs: u64,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub miners: MinersConfig,
    #[serde(default)]
    pub settlement: SettlementConfig,
    /// Blocks an escrow must be buried under before the hub accepts a job
    /// on it (0 on a devnet; on a chain with reorgs, its usual depth).
    #[serde(default)]
    pub confirmations: u64,
}

/// Settlement of completed jobs on chain.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettlementConfig {
    /// Settle completed jobs from this hub (its signer key pays the gas).
    /// Off only where another process settles for the hub; miners can
    /// always settle their own receipts (`fog-miner settle`).
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self { enabled: true }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8040".into()
}
fn default_log_format() -> String {
    "human".into()
}
fn default_token_ttl() -> u64 {
    3_600
}

/// Request sizes, request rates and state kept before authentication.
/// Every limit is listed with its default in docs/hub.md.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest JSON body.
    pub max_json_bytes: usize,
    /// Largest blob (input or output archive), whatever the quota.
    pub max_blob_bytes: u64,
    /// Requests per second from one source address (all endpoints but
    /// /healthz and /metrics), and the burst above it.
    pub per_address_per_sec: u32,
    pub per_address_burst: u32,
    /// Requests per second with one key's token, and the burst above it.
    pub per_key_per_sec: u32,
    pub per_key_burst: u32,
    /// Login challenges per second from one source address, and the burst.
    pub challenges_per_address_per_sec: u32,
    pub challenges_per_address_burst: u32,
    /// Login challenges outstanding at once; past it the oldest are dropped.
    pub max_pending_challenges: usize,
    /// Seconds a login challenge waits for its signature.
    pub challenge_ttl_secs: u64,
    /// Live login tokens at once; past it the oldest are dropped.
    pub max_tokens: usize,
    /// Miner WebSocket connections that have not logged in yet.
    pub max_unauthenticated_miners: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_json_bytes: 1 << 20,
            max_blob_bytes: 1 << 30,
            per_address_per_sec: 100,
            per_address_burst: 400,
            per_key_per_sec: 50,
            per_key_burst: 200,
            challenges_per_address_per_sec: 2,
            challenges_per_address_burst: 30,
            max_pending_challenges: 10_000,
            challenge_ttl_secs: 300,
            max_tokens: 100_000,
            max_unauthenticated_miners: 64,
        }
    }
}

/// What a key may store, and for how long. A key's quota grows with what it
/// has at stake here: escrows it has open with this hub (named on upload with
/// `X-Fog-Escrow`, or of jobs it submitted).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Bytes any key may store with nothing at stake.
    pub free_bytes: u64,
    /// Blobs any key may store with nothing at stake.
    pub free_blobs: u64,
    /// Further bytes per whole token (10^18 base units) at stake.
    pub bytes_per_token: u64,
    /// Further blobs per whole token at stake.
    pub blobs_per_token: u64,
    /// Most bytes one key may store, whatever its stake.
    pub max_bytes: u64,
    /// Most blobs one key may store, whatever its stake.
    pub max_blobs: u64,
    /// Seconds an uploaded blob is kept when no job uses it.
    pub unused_blob_secs: u64,
    /// Seconds a closed job's output, logs and inputs are kept.
    pub retention_secs: u64,
    /// Seconds between retention sweeps.
    pub sweep_interval_secs: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            free_bytes: 16 << 20,
            free_blobs: 64,
            bytes_per_token: 256 << 20,
            blobs_per_token: 256,
            max_bytes: 64 << 30,
            max_blobs: 100_000,
            unused_blob_secs: 24 * 3600,
            retention_secs: 7 * 24 * 3600,
            sweep_interval_secs: 60,
        }
    }
}

/// Miner sessions and reassignment.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinersConfig {
    #[serde(default = "default_heartbeat")]
    pub heartbeat_interval_ms: u64,
    /// A miner silent this long is gone and its jobs are reassigned.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// Assignments beyond k a job may use before it fails.
    #[serde(default = "default_reassignments")]
    pub max_reassignments: u32,
    /// Seconds a miner may hold an assignment beyond the job's max duration,
    /// counted from the container's start (collecting and uploading the
    /// output), before it has timed out and the replica goes to another miner.
    #[serde(default = "default_assignment_grace")]
    pub assignment_grace_secs: u64,
    /// Seconds a miner may prepare an assignment (pull the image, fetch the
    /// inputs) before its container starts. Preparation never counts
    /// against the job's max duration.
    #[serde(default = "default_prepare_timeout")]
    pub prepare_timeout_secs: u64,
}

fn default_heartbeat() -> u64 {
    5_000
}
fn default_timeout() -> u64 {
    20_000
}
fn default_reassignments() -> u32 {
    3
}
fn default_assignment_grace() -> u64 {
    300
}
fn default_prepare_timeout() -> u64 {
    1_800
}

impl Default for MinersConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: default_heartbeat(),
            timeout_ms: default_timeout(),
            max_reassignments: default_reassignments(),
            assignment_grace_secs: default_assignment_grace(),
            prepare_timeout_secs: default_prepare_timeout(),
        }
    }
}

fn overrides_from_env() -> config::Map<String, String> {
    std::env::vars()
        // FOG_HUB_URL is the `fog` CLI's (which hub to talk to), not a key of
        // this file: a machine running both must not have it read as one.
        .filter(|(name, _)| {
            name.starts_with("FOG_HUB_") && name != PASSWORD_VAR && name != "FOG_HUB_URL"
        })
        .collect()
}

impl HubConfig {
    /// Reads `path` (TOML) with `FOG_HUB_*` overrides, and checks it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg: Self = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("FOG_HUB")
                    .source(Some(overrides_from_env()))
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()?
            .try_deserialize()?;
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid("listen", "must be IP:PORT, e.g. 127.0.0.1:8040");
        }
        if !self.database_url.starts_with("sqlite:") {
            return invalid(
                "database_url",
                "must be sqlite://PATH (PostgreSQL is not supported yet)",
            );
        }
        if !matches!(self.log_format.as_str(), "human" | "json") {
            return invalid("log_format", "must be human or json");
        }
        if self.miners.heartbeat_interval_ms == 0
            || self.miners.timeout_ms <= self.miners.heartbeat_interval_ms
        {
            return invalid(
                "miners.timeout_ms",
                "must be greater than miners.heartbeat_interval_ms (> 0)",
            );
        }
        let l = &self.limits;
        if l.max_json_bytes < 1024 || l.max_blob_bytes == 0 {
            return invalid(
                "limits",
                "max_json_bytes must be at least 1024 and max_blob_bytes above 0",
            );
        }
        let rates = [
            (
                "limits.per_address_per_sec",
                l.per_address_per_sec,
                l.per_address_burst,
            ),
            ("limits.per_key_per_sec", l.per_key_per_sec, l.per_key_burst),
            (
                "limits.challenges_per_address_per_sec",
                l.challenges_per_address_per_sec,
                l.challenges_per_address_burst,
            ),
        ];
        for (field, rate, burst) in rates {
            if rate == 0 || burst == 0 {
                return invalid(field, "the rate and its burst must be above 0");
            }
        }
        if l.max_pending_challenges == 0 || l.max_tokens == 0 || l.challenge_ttl_secs == 0 {
            return invalid(
                "limits",
                "max_pending_challenges, max_tokens and challenge_ttl_secs must be above 0",
            );
        }
        if l.max_unauthenticated_miners == 0 {
            return invalid("limits.max_unauthenticated_miners", "must be above 0");
        }
        let st = &self.storage;
        if st.max_bytes < st.free_bytes || st.max_blobs < st.free_blobs {
            return invalid(
                "storage",
                "max_bytes and max_blobs must be at least free_bytes and free_blobs",
            );
        }
        if st.sweep_interval_secs == 0 {
            return invalid("storage.sweep_interval_secs", "must be above 0");
        }
        if self.token_ttl_secs == 0 {
            return invalid("token_ttl_secs", "must be above 0");
        }
        Ok(())
    }
}
