//! The miner's configuration file (TOML) with `FOG_MINER_*` environment
//! overrides (`__` separates levels: `FOG_MINER_OFFER__REGION=eu-west`), and
//! its validation into a typed [`Policy`].

use std::path::{Path, PathBuf};

use fog_protocol::wire::{PriceRate, RuntimeInfo};
use fog_protocol::{Resources, U256};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::host::HostResources;
use crate::pricing::{ElectricityCost, PriceError, tokens_to_base_units};
use crate::schedule::{Availability, Window, WindowError};

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("offer.share must be in (0, 1], got {0}")]
    BadShare(f64),
    #[error("offer.{field}: {requested} is more than this host has ({available})")]
    ExceedsHost {
        field: &'static str,
        requested: u64,
        available: u64,
    },
    #[error("offer: the offered {0} is zero")]
    NothingOffered(&'static str),
    #[error("availability[{index}]: {source}")]
    Window {
        index: usize,
        #[source]
        source: WindowError,
    },
    #[error("only_when_idle.max_load_per_core must be positive, got {0}")]
    BadIdleLoad(f64),
    #[error("price: {0}")]
    Price(#[from] PriceError),
    #[error("offer.labels: {0:?} must be key=value")]
    BadLabel(String),
    #[error(
        "offer.labels: {0:?} is set by the miner from its runtime (sandbox.runtime), not by hand"
    )]
    ReservedLabel(String),
    #[error("sandbox.runtime: {0:?} is not a runtime name (letters, digits, '-', '_', '.')")]
    BadRuntime(String),
}

/// The file as written.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerConfig {
    /// Encrypted key file (Ethereum keystore format).
    pub keystore: PathBuf,
    /// The hub to connect to.
    #[serde(default)]
    pub hub_url: Option<String>,
    /// Directory for jobs' inputs and outputs.
    #[serde(default = "default_work_dir")]
    pub work_dir: PathBuf,
    #[serde(default)]
    pub offer: OfferConfig,
    /// When the machine is offered; none means always.
    #[serde(default)]
    pub availability: Vec<WindowConfig>,
    /// Only take jobs while the host's own load is low.
    #[serde(default)]
    pub only_when_idle: Option<IdleRule>,
    pub price: PriceConfig,
    /// The chain the hub settles on: needed by `fog-miner run`.
    #[serde(default)]
    pub chain: Option<ChainConfig>,
    /// How jobs are isolated.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// On SIGTERM or Ctrl-C, how long the miner waits for the hub to hand its
    /// running services over to other miners before it stops them anyway (a
    /// second signal stops at once).
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout_secs: u64,
}

fn default_drain_timeout() -> u64 {
    120
}

/// The container runtime and its isolation.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxConfig {
    /// The Docker engine's runtime for jobs, e.g. `runsc` (gVisor) as
    /// registered in /etc/docker/daemon.json; none: the engine's default.
    /// The miner advertises the isolation it gives as the placement label
    /// `fog.isolation=<container|userns|gvisor>`.
    #[serde(default)]
    pub runtime: Option<String>,
}

/// Where the contracts are, to check a hub's assignments and sign receipts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// The contracts' deployment file (`fog deploy --out`).
    pub deployment: PathBuf,
    /// Ethereum JSON-RPC endpoint.
    pub rpc_url: String,
    /// Pin the hub's on-chain address; otherwise any hub active in the registry.
    #[serde(default)]
    pub hub: Option<fog_protocol::Address>,
    /// Seconds after returning a receipt that `fog-miner run` settles a
    /// single-replica job itself if the hub has not (0: never; the miner's
    /// key pays the gas).
    #[serde(default = "default_self_settle_after")]
    pub self_settle_after_secs: u64,
}

fn default_self_settle_after() -> u64 {
    600
}

fn default_work_dir() -> PathBuf {
    PathBuf::from("/var/lib/fog-miner/jobs")
}

fn default_share() -> f64 {
    1.0
}

/// What to offer; explicit amounts override the share of the detected host.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OfferConfig {
    /// Fraction of the host's cores, memory and free disk offered.
    #[serde(default = "default_share")]
    pub share: f64,
    #[serde(default)]
    pub cpu_millicores: Option<u64>,
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    #[serde(default)]
    pub disk_bytes: Option<u64>,
    #[serde(default)]
    pub gpus: Option<u32>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Whether jobs that ask for network access may have it.
    #[serde(default)]
    pub allow_network: bool,
}

impl Default for OfferConfig {
    fn default() -> Self {
        Self {
            share: default_share(),
            cpu_millicores: None,
            memory_bytes: None,
            disk_bytes: None,
            gpus: None,
            region: String::new(),
            labels: Vec::new(),
            allow_network: false,
        }
    }
}

/// One availability window, e.g. `{ days = ["weekdays"], from = "19:00", to = "07:00", timezone = "Europe/Berlin" }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowConfig {
    pub days: Vec<String>,
    pub from: String,
    pub to: String,
    #[serde(default = "utc")]
    pub timezone: String,
}

fn utc() -> String {
    "UTC".into()
}

/// Take jobs only while the host's one-minute load average per core is at most this.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdleRule {
    pub max_load_per_core: f64,
}

/// The price floor: stated outright, or derived from electricity. Amounts are in whole tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub per_core_hour: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub per_gib_hour: Option<Decimal>,
    #[serde(default)]
    pub electricity: Option<ElectricityConfig>,
}

/// What the machine's power costs.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectricityConfig {
    #[serde(with = "rust_decimal::serde::str")]
    pub watts: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub price_per_kwh: Decimal,
    /// Price of one token in the same money.
    #[serde(with = "rust_decimal::serde::str")]
    pub token_price: Decimal,
    #[serde(default, with = "rust_decimal::serde::str")]
    pub margin: Decimal,
}

impl MinerConfig {
    /// Reads `path` (TOML) with `FOG_MINER_*` overrides from the environment.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let cfg = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("FOG_MINER")
                    .source(Some(overrides_from_env()))
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("offer.labels"),
            )
            .build()?;
        Ok(cfg.try_deserialize()?)
    }

    /// Checks everything against the host and yields the policy the miner runs by.
    pub fn policy(&self, host: &HostResources) -> Result<Policy, ConfigError> {
        let offer = &self.offer;
        if !(offer.share > 0.0 && offer.share <= 1.0) {
            return Err(ConfigError::BadShare(offer.share));
        }
        let share = |total: u64| (total as f64 * offer.share).floor() as u64;
        let pick = |field, explicit: Option<u64>, total: u64| match explicit {
            Some(v) if v > total => Err(ConfigError::ExceedsHost {
                field,
                requested: v,
                available: total,
            }),
            Some(0) => Err(ConfigError::NothingOffered(field)),
            Some(v) => Ok(v),
            None if share(total) == 0 => Err(ConfigError::NothingOffered(field)),
            None => Ok(share(total)),
        };
        let capacity = Resources {
            cpuMillicores: pick("cpu_millicores", offer.cpu_millicores, host.cpu_millicores)?,
            memoryBytes: pick("memory_bytes", offer.memory_bytes, host.memory_bytes)?,
            diskBytes: pick("disk_bytes", offer.disk_bytes, host.disk_bytes)?,
            gpuCount: match offer.gpus {
                Some(g) if g > host.gpus => {
                    return Err(ConfigError::ExceedsHost {
                        field: "gpus",
                        requested: u64::from(g),
                        available: u64::from(host.gpus),
                    });
                }
                Some(g) => g,
                None => host.gpus,
            },
        };
        for label in &offer.labels {
            match label.split_once('=') {
                Some((key, _)) if key == fog_protocol::wire::ISOLATION_LABEL => {
                    return Err(ConfigError::ReservedLabel(label.clone()));
                }
                Some((key, _)) if !key.is_empty() => {}
                _ => return Err(ConfigError::BadLabel(label.clone())),
            }
        }
        if let Some(runtime) = &self.sandbox.runtime
            && (runtime.is_empty()
                || !runtime
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        {
            return Err(ConfigError::BadRuntime(runtime.clone()));
        }
        let windows = self
            .availability
            .iter()
            .enumerate()
            .map(|(index, w)| {
                Window::new(&w.days, &w.from, &w.to, &w.timezone)
                    .map_err(|source| ConfigError::Window { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(idle) = &self.only_when_idle
            // NaN is refused too: it is not greater than zero.
            && idle.max_load_per_core.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
        {
            return Err(ConfigError::BadIdleLoad(idle.max_load_per_core));
        }
        let per_gib = self.price.per_gib_hour.unwrap_or(Decimal::ZERO);
        let rate = match (&self.price.electricity, self.price.per_core_hour) {
            (Some(e), explicit) => {
                let cost = ElectricityCost {
                    watts: e.watts,
                    price_per_kwh: e.price_per_kwh,
                    token_price: e.token_price,
                    margin: e.margin,
                };
                let cores = (host.cpu_millicores / 1000).max(1);
                let mut rate = cost.floor(cores, per_gib)?;
                // An explicit floor above the electricity floor wins.
                if let Some(explicit) = explicit {
                    rate.per_core_hour = rate
                        .per_core_hour
                        .max(tokens_to_base_units("per_core_hour", explicit)?);
                }
                rate
            }
            (None, explicit) => PriceRate {
                per_core_hour: tokens_to_base_units(
                    "per_core_hour",
                    explicit.unwrap_or(Decimal::ZERO),
                )?,
                per_gib_hour: tokens_to_base_units("per_gib_hour", per_gib)?,
            },
        };
        Ok(Policy {
            capacity,
            region: offer.region.clone(),
            labels: offer.labels.clone(),
            allow_network: offer.allow_network,
            availability: Availability::new(windows),
            max_load_per_core: self.only_when_idle.as_ref().map(|i| i.max_load_per_core),
            rate,
            runtime: None,
        })
    }
}

/// The variable holding the keystore password. It shares the `FOG_MINER_`
/// prefix but is a secret, not a setting: it is kept out of the overrides.
pub const PASSWORD_VAR: &str = "FOG_MINER_KEY_PASSWORD";

fn overrides_from_env() -> config::Map<String, String> {
    std::env::vars()
        .filter(|(name, _)| name.starts_with("FOG_MINER_") && name != PASSWORD_VAR)
        .collect()
}

/// What the miner runs by, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Offered in total.
    pub capacity: Resources,
    pub region: String,
    pub labels: Vec<String>,
    pub allow_network: bool,
    pub availability: Availability,
    /// Refuse jobs while the host's load per core is above this.
    pub max_load_per_core: Option<f64>,
    /// Price floor.
    pub rate: PriceRate,
    /// The runtime jobs run under, once the engine has been asked (see
    /// [`Policy::with_runtime`]); its isolation class is one of `labels`.
    pub runtime: Option<RuntimeInfo>,
}

impl Policy {
    /// This policy on an engine whose job runtime is `runtime`: the miner
    /// carries the label of its isolation class, so specs that ask for it
    /// (`placement.labels = ["fog.isolation=gvisor"]`) are placed here.
    pub fn with_runtime(mut self, runtime: RuntimeInfo) -> Self {
        self.labels
            .retain(|l| !l.starts_with(&format!("{}=", fog_protocol::wire::ISOLATION_LABEL)));
        self.labels.push(runtime.isolation.label());
        self.runtime = Some(runtime);
        self
    }

    /// The whole host, always available, no price floor, no network: what
    /// `fog-miner exec` runs under when given no configuration.
    pub fn whole_host(host: &HostResources) -> Self {
        Self {
            capacity: Resources {
                cpuMillicores: host.cpu_millicores,
                memoryBytes: host.memory_bytes,
                diskBytes: host.disk_bytes,
                gpuCount: host.gpus,
            },
            region: String::new(),
            labels: Vec::new(),
            allow_network: false,
            availability: Availability::new(Vec::new()),
            max_load_per_core: None,
            rate: PriceRate {
                per_core_hour: U256::ZERO,
                per_gib_hour: U256::ZERO,
            },
            runtime: None,
        }
    }

    /// The least a job with these resources and duration must pay this miner.
    pub fn floor_for(&self, resources: &Resources, seconds: u64) -> U256 {
        self.rate.cost(resources, seconds)
    }
}
