//! Long-running services (docs/services.md): a container with an exposed
//! HTTP port and a health check, reached through the hub, paid per period of
//! healthy time on the batched settlement path.
//!
//! A service is billed in *segments*: one segment is one miner's stint of one
//! replica, and is a batched job of its own. When the buyer starts a service
//! it signs a pool of [`JobAuth`]s for it (salts [`segment_salt`]`(service,
//! n)`, the service's spec hash, each for at most `periodsPerSegment` periods);
//! the hub spends one per segment. The miner signs a cumulative receipt per
//! healthy period the hub counted (amount = [`miner_charge`]); the last one of
//! a segment goes into an epoch like any batched job. So the buyer pays at most
//! what it signed, only for periods the hub saw healthy, and a miner holding
//! its receipt and the auth can claim without the hub.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::SolValue;
use sha2::{Digest, Sha256};

use crate::signing::FogStruct;
use crate::spec::{SpecError, limits};
use crate::types::{EnvVar, JobSpec, Placement, Resources};

alloy::sol! {
    /// How the hub checks that a service answers.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct HealthCheck {
        /// HTTP path asked with GET; any status below 400 is healthy.
        string path;
        /// Seconds between checks.
        uint32 intervalSecs;
        /// Consecutive failed checks after which the replica is restarted
        /// elsewhere.
        uint16 failures;
    }

    /// What a buyer asks to keep running. Its EIP-712 hash is the `specHash`
    /// of every segment's authorisation, assignment and receipt.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ServiceSpec {
        /// Makes two otherwise equal services two services.
        bytes32 salt;
        /// `name[:tag]@sha256:<digest>` or a local image id `sha256:<id>`.
        string image;
        string[] command;
        EnvVar[] env;
        Resources resources;
        /// The container's HTTP port: the only one that receives traffic.
        uint16 port;
        HealthCheck health;
        /// A [`crate::NetworkPolicy`]: 0 (none: the container can reach
        /// nothing, not even the miner's host) unless the service needs out.
        uint8 network;
        Placement placement;
        /// Replicas kept running at once on distinct miners, load-balanced.
        uint16 replicas;
        /// Length of one billing period.
        uint32 periodSecs;
        /// What the buyer pays per replica per healthy period, commission included.
        uint256 pricePerPeriod;
        /// Most the buyer pays in total; the service stops when it is spent.
        uint256 maxSpend;
    }
}

impl FogStruct for ServiceSpec {}

/// Bounds of a service spec beyond a job's.
pub mod service_limits {
    /// Shortest billing period.
    pub const MIN_PERIOD_SECS: u32 = 5;
    /// Longest billing period.
    pub const MAX_PERIOD_SECS: u32 = 86_400;
    /// Shortest and longest health-check interval.
    pub const MIN_INTERVAL_SECS: u32 = 1;
    pub const MAX_INTERVAL_SECS: u32 = 3_600;
    /// Most consecutive failures a spec may tolerate.
    pub const MAX_FAILURES: u16 = 100;
    /// Most replicas of one service.
    pub const MAX_REPLICAS: u16 = 16;
    /// Most segment authorisations sent at once.
    pub const MAX_AUTHS: usize = 1_000;
}

/// Why a service spec was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ServiceSpecError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("port: must be between 1 and 65535")]
    Port,
    #[error("health.path: must start with '/' and be printable ASCII without spaces (got {0:?})")]
    HealthPath(String),
    #[error(
        "health.intervalSecs: {0} is outside {min}..={max}",
        min = service_limits::MIN_INTERVAL_SECS,
        max = service_limits::MAX_INTERVAL_SECS
    )]
    Interval(u32),
    #[error("health.failures: {0} is outside 1..={max}", max = service_limits::MAX_FAILURES)]
    Failures(u16),
    #[error("replicas: {0} is outside 1..={max}", max = service_limits::MAX_REPLICAS)]
    Replicas(u16),
    #[error(
        "periodSecs: {0} is outside {min}..={max}",
        min = service_limits::MIN_PERIOD_SECS,
        max = service_limits::MAX_PERIOD_SECS
    )]
    Period(u32),
    #[error("pricePerPeriod: must be greater than zero")]
    ZeroPrice,
    #[error(
        "maxSpend {max_spend} does not pay one period of every replica ({needed}): raise it or lower the price"
    )]
    SpendTooLow { max_spend: U256, needed: U256 },
    #[error("maxSpend: must be below 2^96 (the batch contract's amounts)")]
    SpendTooHigh,
}

impl ServiceSpec {
    /// The spec's identity in every segment's auth, assignment and receipt.
    pub fn spec_hash(&self) -> B256 {
        self.struct_hash()
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ServiceSpecError> {
        let view = self.job_view(U256::from(1u64), u64::MAX);
        view.image_ref()?;
        view.validate_text()?;
        crate::spec::validate_resources(&self.resources)?;
        view.network_policy()?;
        view.validate_placement()?;
        if self.port == 0 {
            return Err(ServiceSpecError::Port);
        }
        let path = &self.health.path;
        if !path.starts_with('/')
            || path.len() > 1024
            || !path.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(ServiceSpecError::HealthPath(
                path.chars().take(80).collect(),
            ));
        }
        let interval = self.health.intervalSecs;
        if !(service_limits::MIN_INTERVAL_SECS..=service_limits::MAX_INTERVAL_SECS)
            .contains(&interval)
        {
            return Err(ServiceSpecError::Interval(interval));
        }
        if !(1..=service_limits::MAX_FAILURES).contains(&self.health.failures) {
            return Err(ServiceSpecError::Failures(self.health.failures));
        }
        if !(1..=service_limits::MAX_REPLICAS).contains(&self.replicas) {
            return Err(ServiceSpecError::Replicas(self.replicas));
        }
        if !(service_limits::MIN_PERIOD_SECS..=service_limits::MAX_PERIOD_SECS)
            .contains(&self.periodSecs)
        {
            return Err(ServiceSpecError::Period(self.periodSecs));
        }
        if self.pricePerPeriod.is_zero() {
            return Err(ServiceSpecError::ZeroPrice);
        }
        if self.maxSpend >= U256::from(1u8) << 96 {
            return Err(ServiceSpecError::SpendTooHigh);
        }
        let needed = self
            .pricePerPeriod
            .saturating_mul(U256::from(self.replicas));
        if self.maxSpend < needed {
            return Err(ServiceSpecError::SpendTooLow {
                max_spend: self.maxSpend,
                needed,
            });
        }
        Ok(())
    }

    /// The job a miner is asked to run for one segment, as the scheduler and
    /// the sandbox see it: one replica, priced per period (`maxCharge` is what
    /// the miner earns per period, `deadline` when the segment's auth ends).
    pub fn job_view(&self, per_period: U256, deadline: u64) -> JobSpec {
        JobSpec {
            image: self.image.clone(),
            command: self.command.clone(),
            env: self.env.clone(),
            inputs: Vec::new(),
            outputPath: "/fog/out".into(),
            resources: self.resources.clone(),
            maxDurationSecs: u64::from(self.periodSecs),
            network: self.network,
            placement: self.placement.clone(),
            replicas: 1,
            maxPayment: per_period,
            deadline,
        }
    }

    /// The container run of one segment under `auth`, as the hub places it
    /// and the miner admits it: it lives as long as the authorisation pays
    /// for plus two periods (the hand-over to the next segment), never past
    /// the authorisation's deadline, and the miner's price floor is judged
    /// against `max_charge` (its part of the authorisation) over that time.
    pub fn segment_job(&self, auth: &crate::batch::JobAuth, max_charge: U256, now: u64) -> JobSpec {
        let period = u64::from(self.periodSecs);
        let lives = self
            .periods_paid_by(auth.maxPayment)
            .saturating_add(2)
            .saturating_mul(period);
        JobSpec {
            maxDurationSecs: lives.min(auth.deadline.saturating_sub(now)).max(1),
            ..self.job_view(max_charge, auth.deadline.max(now.saturating_add(1)))
        }
    }

    /// Periods an authorisation of `max_payment` pays for.
    pub fn periods_paid_by(&self, max_payment: U256) -> u64 {
        if self.pricePerPeriod.is_zero() {
            return 0;
        }
        u64::try_from(max_payment / self.pricePerPeriod).unwrap_or(u64::MAX)
    }

    /// What the buyer pays for `periods` healthy periods of one replica.
    pub fn cost_of(&self, periods: u64) -> U256 {
        self.pricePerPeriod.saturating_mul(U256::from(periods))
    }
}

/// A service's id: bound to its buyer and spec.
pub fn service_id(buyer: Address, spec_hash: B256) -> B256 {
    keccak256((keccak256("fog.service"), buyer, spec_hash).abi_encode())
}

/// The salt of a service's `n`th segment authorisation.
pub fn segment_salt(service_id: B256, n: u64) -> B256 {
    keccak256((service_id, U256::from(n)).abi_encode())
}

/// The miner's part of `periods` healthy periods: the buyer's cost less the
/// hub's commission, rounded down, so that with the commission on top it
/// never exceeds what the buyer authorised.
pub fn miner_charge(spec: &ServiceSpec, periods: u64, fee_bps: u16) -> U256 {
    crate::charge::max_charge_per_replica(spec.cost_of(periods), fee_bps, 1)
}

/// The "output" a segment's receipt names: a digest of the periods it
/// covers, so receipts of one segment differ and replicas never need to agree.
pub fn usage_hash(segment: B256, periods: u64) -> B256 {
    let mut h = Sha256::new();
    h.update(b"fog.service.usage");
    h.update(segment.as_slice());
    h.update(periods.to_be_bytes());
    B256::from_slice(&h.finalize())
}

/// The public path under which the hub proxies a service.
pub fn service_path(service_id: B256) -> String {
    format!("/s/{service_id}/")
}

const _: () = assert!(service_limits::MAX_REPLICAS <= limits::MAX_REPLICAS);

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn spec() -> ServiceSpec {
        ServiceSpec {
            salt: B256::repeat_byte(1),
            image: format!("sha256:{}", "ab".repeat(32)),
            command: vec!["httpd".into()],
            env: vec![],
            resources: Resources {
                cpuMillicores: 100,
                memoryBytes: 64 << 20,
                diskBytes: 64 << 20,
                gpuCount: 0,
            },
            port: 8080,
            health: HealthCheck {
                path: "/".into(),
                intervalSecs: 2,
                failures: 3,
            },
            network: 0,
            placement: Placement::default(),
            replicas: 1,
            periodSecs: 10,
            pricePerPeriod: U256::from(1_000u64),
            maxSpend: U256::from(100_000u64),
        }
    }

    #[test]
    fn a_sound_spec_passes_and_each_bound_is_enforced() {
        assert_eq!(spec().validate(), Ok(()));
        let mut s = spec();
        s.port = 0;
        assert_eq!(s.validate(), Err(ServiceSpecError::Port));
        let mut s = spec();
        s.health.path = "health".into();
        assert!(matches!(s.validate(), Err(ServiceSpecError::HealthPath(_))));
        let mut s = spec();
        s.health.path = "/a b".into();
        assert!(matches!(s.validate(), Err(ServiceSpecError::HealthPath(_))));
        let mut s = spec();
        s.health.intervalSecs = 0;
        assert_eq!(s.validate(), Err(ServiceSpecError::Interval(0)));
        let mut s = spec();
        s.health.failures = 0;
        assert_eq!(s.validate(), Err(ServiceSpecError::Failures(0)));
        let mut s = spec();
        s.replicas = 17;
        assert_eq!(s.validate(), Err(ServiceSpecError::Replicas(17)));
        let mut s = spec();
        s.periodSecs = 1;
        assert_eq!(s.validate(), Err(ServiceSpecError::Period(1)));
        let mut s = spec();
        s.pricePerPeriod = U256::ZERO;
        assert_eq!(s.validate(), Err(ServiceSpecError::ZeroPrice));
        let mut s = spec();
        s.replicas = 2;
        s.maxSpend = U256::from(1_500u64);
        assert!(matches!(
            s.validate(),
            Err(ServiceSpecError::SpendTooLow { .. })
        ));
        let mut s = spec();
        s.image = "busybox:latest".into();
        assert!(matches!(s.validate(), Err(ServiceSpecError::Spec(_))));
    }

    #[test]
    fn the_miner_part_with_commission_never_exceeds_the_cost() {
        let s = spec();
        for periods in [0u64, 1, 7, 1_000] {
            for fee in [0u16, 100, 1_000, 10_000] {
                let m = miner_charge(&s, periods, fee);
                let total = m + m * U256::from(fee) / U256::from(10_000u64);
                assert!(total <= s.cost_of(periods), "{periods} {fee}");
            }
        }
        assert_eq!(s.periods_paid_by(U256::from(60_500u64)), 60);
    }

    #[test]
    fn ids_and_salts_are_distinct() {
        let s = spec();
        let a = service_id(Address::repeat_byte(1), s.spec_hash());
        let b = service_id(Address::repeat_byte(2), s.spec_hash());
        assert_ne!(a, b);
        assert_ne!(segment_salt(a, 0), segment_salt(a, 1));
        assert_ne!(usage_hash(a, 1), usage_hash(a, 2));
    }
}
