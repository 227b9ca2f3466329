//! Prometheus metrics: jobs by state, miners connected, queue depth,
//! assignment latency, submissions and assignments.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::JobState;

/// A job-state label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: String,
}

/// The hub's metrics; clones share the same series.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub jobs: Family<StateLabel, Gauge>,
    pub jobs_ended: Family<StateLabel, Counter>,
    pub miners_connected: Gauge,
    pub queue_depth: Gauge,
    pub submissions: Counter,
    pub assignments: Counter,
    /// Seconds from a job's queueing to its first assignment.
    pub assignment_latency: Histogram,
    pub settlements: Counter,
    pub settlements_failed: Counter,
    /// Login challenges waiting for their signature (bounded).
    pub pending_challenges: Gauge,
    /// Requests answered 429.
    pub rate_limited: Counter,
    /// Blobs and job logs deleted by the retention sweep.
    pub blobs_purged: Counter,
    pub jobs_purged: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("fog_hub");
        let jobs = Family::<StateLabel, Gauge>::default();
        let jobs_ended = Family::<StateLabel, Counter>::default();
        let miners_connected = Gauge::default();
        let queue_depth = Gauge::default();
        let submissions = Counter::default();
        let assignments = Counter::default();
        let assignment_latency = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        let settlements = Counter::default();
        let settlements_failed = Counter::default();
        let pending_challenges = Gauge::default();
        let rate_limited = Counter::default();
        let blobs_purged = Counter::default();
        let jobs_purged = Counter::default();
        registry.register(
            "pending_challenges",
            "Login challenges waiting for their signature",
            pending_challenges.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429",
            rate_limited.clone(),
        );
        registry.register(
            "blobs_purged",
            "Stored blobs deleted after their retention",
            blobs_purged.clone(),
        );
        registry.register(
            "jobs_purged",
            "Closed jobs whose logs were deleted after their retention",
            jobs_purged.clone(),
        );
        registry.register("settlements", "Jobs settled on chain", settlements.clone());
        registry.register(
            "settlements_failed",
            "Settlements the escrow refused",
            settlements_failed.clone(),
        );
        registry.register("jobs", "Jobs in the database by state", jobs.clone());
        registry.register(
            "jobs_ended",
            "Jobs that reached a final state since start",
            jobs_ended.clone(),
        );
        registry.register(
            "miners_connected",
            "Miners with a live session",
            miners_connected.clone(),
        );
        registry.register(
            "queue_depth",
            "Jobs waiting for miners",
            queue_depth.clone(),
        );
        registry.register(
            "submissions",
            "Jobs accepted from buyers",
            submissions.clone(),
        );
        registry.register(
            "assignments",
            "Replica assignments sent to miners",
            assignments.clone(),
        );
        registry.register(
            "assignment_latency_seconds",
            "Time from a job's queueing to its first assignment",
            assignment_latency.clone(),
        );
        Self {
            registry: Arc::new(registry),
            jobs,
            jobs_ended,
            miners_connected,
            queue_depth,
            submissions,
            assignments,
            assignment_latency,
            settlements,
            settlements_failed,
            pending_challenges,
            rate_limited,
            blobs_purged,
            jobs_purged,
        }
    }

    pub fn finished(&self, state: JobState) {
        self.jobs_ended
            .get_or_create(&StateLabel {
                state: state.as_str().to_owned(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
