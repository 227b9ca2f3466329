//! `fog service`: long-running services (docs/services.md), paid on the
//! batched path. `up` reads a service file, pins the image, signs the pool
//! of segment authorisations that bounds what the service may spend, and
//! starts it; `top-up` signs more.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fog_protocol::api::{ServiceStatus, ServiceUpRequest, TopUpRequest};
use fog_protocol::batch::{JobAuth, SignedJobAuth};
use fog_protocol::service::{HealthCheck, ServiceSpec, segment_salt, service_id};
use fog_protocol::{B256, EnvVar, Placement, Resources, U256};
use serde::Deserialize;

use crate::run::{Context, RunError, parse_size, parse_tokens};

/// A service file (TOML, or JSON by its `.json` extension), in people's units.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceFile {
    /// `[REGISTRY/]NAME[:TAG]` (pinned by digest), `NAME@sha256:…` or a local id `sha256:…`.
    pub image: String,
    #[serde(default)]
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The container's HTTP port.
    pub port: u16,
    #[serde(default = "default_cpus")]
    pub cpus: f64,
    #[serde(default = "default_size")]
    pub memory: String,
    #[serde(default = "default_size")]
    pub disk: String,
    #[serde(default = "one")]
    pub replicas: u16,
    /// Seconds in one billing period.
    #[serde(default = "default_period")]
    pub period_secs: u32,
    /// Whole tokens per replica per healthy period, the hub's commission included.
    pub price: String,
    /// Whole tokens the service may spend in total (top up for more).
    pub max_spend: String,
    #[serde(default)]
    pub health: HealthFile,
    /// Let the container reach the network (the miner must allow it).
    #[serde(default)]
    pub network: bool,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub labels: Vec<String>,
}

/// The health check, in a service file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    #[serde(default = "slash")]
    pub path: String,
    #[serde(default = "default_interval")]
    pub interval_secs: u32,
    #[serde(default = "three")]
    pub failures: u16,
}

impl Default for HealthFile {
    fn default() -> Self {
        Self {
            path: slash(),
            interval_secs: default_interval(),
            failures: three(),
        }
    }
}

fn default_cpus() -> f64 {
    0.5
}
fn default_size() -> String {
    "128M".into()
}
fn one() -> u16 {
    1
}
fn three() -> u16 {
    3
}
fn default_period() -> u32 {
    60
}
fn default_interval() -> u32 {
    5
}
fn slash() -> String {
    "/".into()
}

/// Why a service could not be started or topped up.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("the service: {0}")]
    Spec(#[from] fog_protocol::service::ServiceSpecError),
    #[error(
        "the hub at {0} does not offer batched settlement, which services are paid on: use another hub"
    )]
    NoBatch(String),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(
        "service {id} did not answer within {secs} s: {why} (see `fog service status {id}` and `fog service logs {id}`)"
    )]
    NotServing { id: B256, secs: u64, why: String },
}

impl From<crate::client::ClientError> for ServiceError {
    fn from(e: crate::client::ClientError) -> Self {
        Self::Run(e.into())
    }
}

/// Reads a service file.
pub fn read_file(path: &Path) -> Result<ServiceFile, ServiceError> {
    let format = if path.extension().is_some_and(|e| e == "json") {
        config::FileFormat::Json
    } else {
        config::FileFormat::Toml
    };
    config::Config::builder()
        .add_source(config::File::from(path).format(format))
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| ServiceError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
}

impl ServiceFile {
    /// The spec, with the image already pinned and a fresh salt.
    pub fn spec(&self, image: String) -> Result<ServiceSpec, ServiceError> {
        let bad = |field: &str, reason: String| ServiceError::File {
            path: field.to_owned(),
            reason,
        };
        if !(self.cpus > 0.0 && self.cpus <= 1024.0) {
            return Err(bad(
                "cpus",
                format!("{} must be above 0 and at most 1024", self.cpus),
            ));
        }
        let mut salt = [0u8; 32];
        rand::Rng::fill(&mut rand::thread_rng(), &mut salt);
        let spec = ServiceSpec {
            salt: B256::from(salt),
            image,
            command: self.command.clone(),
            env: self
                .env
                .iter()
                .map(|(name, value)| EnvVar {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            resources: Resources {
                cpuMillicores: (self.cpus * 1000.0).round() as u64,
                memoryBytes: parse_size(&self.memory).map_err(|e| bad("memory", e))?,
                diskBytes: parse_size(&self.disk).map_err(|e| bad("disk", e))?,
                gpuCount: 0,
            },
            port: self.port,
            health: HealthCheck {
                path: self.health.path.clone(),
                intervalSecs: self.health.interval_secs,
                failures: self.health.failures,
            },
            network: u8::from(self.network),
            placement: Placement {
                region: self.region.clone(),
                labels: self.labels.clone(),
            },
            replicas: self.replicas,
            periodSecs: self.period_secs,
            pricePerPeriod: parse_tokens(&self.price).map_err(|e| bad("price", e))?,
            maxSpend: parse_tokens(&self.max_spend).map_err(|e| bad("max_spend", e))?,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// How `up` and `top-up` sign.
#[derive(Clone, Copy, Debug)]
pub struct SigningTerms {
    /// Periods one segment authorisation pays for.
    pub segment_periods: u64,
    /// The hub's commission, accepted as is.
    pub fee_bps: u16,
    /// Furthest an authorisation's deadline may be.
    pub horizon_secs: u64,
}

/// Signs authorisations `first_seq..` of `service` worth `amount` in total:
/// segments of `segment_periods` periods each (the last one smaller), all
/// valid until the hub's horizon.
pub fn sign_auths(
    ctx: &Context,
    spec: &ServiceSpec,
    service: B256,
    first_seq: u64,
    amount: U256,
    terms: SigningTerms,
    now: u64,
) -> Result<Vec<SignedJobAuth>, ServiceError> {
    let segment = spec
        .pricePerPeriod
        .saturating_mul(U256::from(terms.segment_periods.max(1)));
    // A minute of slack: the hub's clock may be ahead of ours.
    let deadline = now + terms.horizon_secs.saturating_sub(60);
    let mut left = amount;
    let mut auths = Vec::new();
    let mut seq = first_seq;
    while left >= spec.pricePerPeriod {
        let this = left.min(segment);
        // Whole periods only: the rest of a partial period could never be spent.
        let this = this - this % spec.pricePerPeriod;
        let auth = JobAuth {
            salt: segment_salt(service, seq),
            specHash: spec.spec_hash(),
            hub: ctx.hub_address,
            maxPayment: this,
            deadline,
            replicas: 1,
            maxFeeBps: terms.fee_bps,
        };
        let signed = fog_protocol::Signed::sign(auth, &ctx.key, &ctx.deployment.batch_domain())
            .map_err(|e| RunError::Chain(e.to_string()))?;
        auths.push(signed);
        left -= this;
        seq += 1;
    }
    Ok(auths)
}

/// Starts a service and waits (up to `wait`) until a replica answers.
pub async fn up(
    ctx: &mut Context,
    file: &ServiceFile,
    terms: SigningTerms,
    fund: Option<U256>,
    wait: Duration,
    mut progress: impl FnMut(&str),
) -> Result<ServiceStatus, ServiceError> {
    progress("pinning the image");
    let pinned = crate::images::pin(&file.image)
        .await
        .map_err(RunError::from)?;
    if let Some(tag) = &pinned.resolved_from {
        progress(&format!(
            "image {tag} is {} (pinned by digest)",
            pinned.image
        ));
    }
    let spec = file.spec(pinned.image.to_string())?;
    let id = service_id(ctx.key.address(), spec.spec_hash());
    let now = crate::ops::chain_time(&ctx.provider)
        .await
        .map_err(|e| RunError::Chain(e.to_string()))?;
    let auths = sign_auths(ctx, &spec, id, 0, spec.maxSpend, terms, now)?;
    progress(&format!(
        "service {id}: {} segment authorisations of up to {} periods, {} in all (no transaction)",
        auths.len(),
        terms.segment_periods,
        crate::ops::fog(spec.maxSpend)
    ));
    let funding = match fund {
        Some(value) => {
            Some(crate::run::funding_permit(ctx, value, now + terms.horizon_secs + 86_400).await?)
        }
        None => None,
    };
    ctx.hub.login(&ctx.key).await?;
    ctx.hub
        .service_up(&ServiceUpRequest {
            spec,
            auths,
            funding,
        })
        .await?;
    progress("waiting for a replica to answer its health check");
    wait_serving(ctx, id, wait).await
}

/// Polls until a replica of the service answers, or it ends, or `wait` passes.
pub async fn wait_serving(
    ctx: &Context,
    id: B256,
    wait: Duration,
) -> Result<ServiceStatus, ServiceError> {
    let until = std::time::Instant::now() + wait;
    loop {
        let status = ctx.hub.service(id).await?;
        if status.segments.iter().any(|g| g.healthy) {
            return Ok(status);
        }
        let why = if status.state.is_final() {
            Some(
                status
                    .reason
                    .clone()
                    .unwrap_or_else(|| status.state.to_string()),
            )
        } else if std::time::Instant::now() > until {
            Some(
                status
                    .segments
                    .iter()
                    .rev()
                    .find_map(|g| g.end_reason.clone())
                    .unwrap_or_else(|| "no replica answers yet".into()),
            )
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ServiceError::NotServing {
                id,
                secs: wait.as_secs(),
                why,
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Signs `amount` more for a service.
pub async fn top_up(
    ctx: &mut Context,
    id: B256,
    amount: U256,
    terms: SigningTerms,
    fund: Option<U256>,
) -> Result<ServiceStatus, ServiceError> {
    ctx.hub.login(&ctx.key).await?;
    let status = ctx.hub.service(id).await?;
    // The next salts are those after every authorisation the hub holds.
    let first_seq = status.authorisations;
    let now = crate::ops::chain_time(&ctx.provider)
        .await
        .map_err(|e| RunError::Chain(e.to_string()))?;
    let auths = sign_auths(ctx, &status.spec, id, first_seq, amount, terms, now)?;
    let funding = match fund {
        Some(value) => {
            Some(crate::run::funding_permit(ctx, value, now + terms.horizon_secs + 86_400).await?)
        }
        None => None,
    };
    Ok(ctx.hub.top_up(id, &TopUpRequest { auths, funding }).await?)
}
