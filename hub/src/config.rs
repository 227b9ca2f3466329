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

/// Request size limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default = "default_json")]
    pub max_json_bytes: usize,
    #[serde(default = "default_blob")]
    pub max_blob_bytes: u64,
}

fn default_json() -> usize {
    1 << 20
}
fn default_blob() -> u64 {
    1 << 30
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_json_bytes: default_json(),
            max_blob_bytes: default_blob(),
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
    /// Seconds a miner may hold an assignment beyond the job's max duration
    /// (image pull, input fetch, output upload) before it has timed out and
    /// the replica goes to another miner.
    #[serde(default = "default_assignment_grace")]
    pub assignment_grace_secs: u64,
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

impl Default for MinersConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval_ms: default_heartbeat(),
            timeout_ms: default_timeout(),
            max_reassignments: default_reassignments(),
            assignment_grace_secs: default_assignment_grace(),
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
        if self.limits.max_json_bytes < 1024 || self.limits.max_blob_bytes == 0 {
            return invalid(
                "limits",
                "max_json_bytes must be at least 1024 and max_blob_bytes above 0",
            );
        }
        if self.token_ttl_secs == 0 {
            return invalid("token_ttl_secs", "must be above 0");
        }
        Ok(())
    }
}
