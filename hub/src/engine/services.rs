//! The engine's services (docs/services.md): keeps each service's replicas
//! running on miners, counts their healthy periods, asks their miners for
//! receipts, and settles each segment on the batched path when it ends.
//!
//! A segment is one miner's stint of one replica under one of the buyer's
//! authorisations. It ends when the buyer stops the service, when its miner
//! leaves or its container dies, when its health check fails
//! `health.failures` times in a row (the replica is started elsewhere at
//! once), or when its authorisation is nearly spent (a successor is started
//! first, and the old one stops when the successor answers).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fog_protocol::api::ServiceState;
use fog_protocol::batch::{BatchedJob, SignedJobAuth};
use fog_protocol::charge::max_charge_per_replica;
use fog_protocol::service::{miner_charge, usage_hash};
use fog_protocol::wire::HubMessage;
use fog_protocol::{Address, Assignment, B256, FogStruct, SignedAssignment, SignedReceipt};

use super::{Engine, Result};
use crate::proxy::Route;
use crate::scheduler::Request;
use crate::store::{AuthRow, SegmentRow, ServiceRow};

/// Before a replica first answers, failed checks count only after this long
/// from its container's start (the server is still starting).
const STARTUP_GRACE: Duration = Duration::from_secs(30);
/// How long a stopping segment's miner has to sign its last receipt.
const FINAL_RECEIPT_WAIT: Duration = Duration::from_secs(5);
/// An authorisation must leave this long after a segment could end for the
/// segment to be committed in an epoch before its deadline.
const SETTLE_MARGIN_SECS: u64 = 15 * 60;
/// Replicas that end without ever answering, in a row, before the service
/// is given up as unable to run.
const MAX_FAILED_STARTS: u32 = 5;

/// The live services.
#[derive(Debug, Default)]
pub(super) struct ServiceBook {
    live: HashMap<B256, LiveService>,
    /// Segment id → service id.
    by_segment: HashMap<B256, B256>,
}

#[derive(Debug)]
struct LiveService {
    row: ServiceRow,
    /// Unused authorisations, in salt order.
    auths: Vec<AuthRow>,
    segments: Vec<LiveSegment>,
    /// Miners this service's replicas failed on: not used for it again
    /// while others can take it.
    excluded: HashSet<Address>,
    failed_starts: u32,
    last_error: Option<String>,
}

#[derive(Debug)]
struct LiveSegment {
    row: SegmentRow,
    auth: SignedJobAuth,
    /// Periods its authorisation pays for.
    paid_periods: u64,
    assigned: Instant,
    started: Option<Instant>,
    first_ok: Option<Instant>,
    /// Start of the billing period in progress.
    period_start: Instant,
    probes: u32,
    probes_ok: u32,
    failures: u16,
    healthy: bool,
    /// Healthy periods the hub counted.
    counted: u64,
    /// A successor replaces it once the successor answers.
    successor: Option<B256>,
    /// It is stopping: its last receipt is awaited until then.
    ending: Option<(Instant, String)>,
    /// Found at a restart of the hub: its miner has until then to report it.
    awaiting: Option<Instant>,
    /// Handed over: it stops at its `ending` time even once its last receipt
    /// is in, so requests still in flight to it can finish.
    linger: bool,
}

impl Engine {
    /// Resources held by live service segments on `miner`.
    pub(super) fn service_resources_on(&self, miner: Address) -> Vec<fog_protocol::Resources> {
        self.services
            .live
            .values()
            .flat_map(|s| {
                s.segments
                    .iter()
                    .filter(move |g| g.row.miner == miner)
                    .map(|_| s.row.spec.resources.clone())
            })
            .collect()
    }

    /// Whether `job_id` is a live service segment.
    pub(super) fn is_segment(&self, job_id: B256) -> bool {
        self.services.by_segment.contains_key(&job_id)
    }

    /// Loads a service (new, topped up, or found at start) and places its replicas.
    pub(super) async fn service_queued(&mut self, service_id: B256) -> Result<()> {
        let Some(row) = self.store.service(service_id).await? else {
            return Ok(());
        };
        if row.state.is_final() {
            return Ok(());
        }
        let auths: Vec<AuthRow> = self
            .store
            .service_auths(service_id)
            .await?
            .into_iter()
            .filter(|a| !a.used)
            .collect();
        match self.services.live.get_mut(&service_id) {
            Some(s) => s.auths = auths,
            None => {
                // Segments left live by a previous run of the hub wait for
                // their miners to come back and report them (then they carry
                // on from their last receipt), as long as an absent miner's
                // jobs wait; past that they are settled and replaced.
                let all_auths = self.store.service_auths(service_id).await?;
                let now = Instant::now();
                let grace = self.config.miner_timeout + fog_protocol::wire::MAX_RECONNECT_DELAY;
                let mut segments = Vec::new();
                for seg in self.store.segments_of(service_id).await? {
                    if seg.ended_at.is_some() {
                        continue;
                    }
                    let Some(auth) = all_auths.iter().find(|a| a.job_id == seg.job_id) else {
                        continue;
                    };
                    self.services.by_segment.insert(seg.job_id, service_id);
                    segments.push(LiveSegment {
                        paid_periods: row.spec.periods_paid_by(auth.auth.payload.maxPayment),
                        auth: auth.auth.clone(),
                        assigned: now,
                        started: None,
                        first_ok: None,
                        period_start: now,
                        probes: 0,
                        probes_ok: 0,
                        failures: 0,
                        healthy: false,
                        counted: seg.periods,
                        successor: None,
                        ending: None,
                        linger: false,
                        awaiting: Some(now + grace),
                        row: seg,
                    });
                }
                self.services.live.insert(
                    service_id,
                    LiveService {
                        row,
                        auths,
                        segments,
                        excluded: HashSet::new(),
                        failed_starts: 0,
                        last_error: None,
                    },
                );
            }
        }
        self.place_service(service_id).await
    }

    /// Starts segments until every replica has one (not counting segments
    /// being replaced); ends the service when its authorisations are spent.
    async fn place_service(&mut self, service_id: B256) -> Result<()> {
        loop {
            let Some(s) = self.services.live.get(&service_id) else {
                return Ok(());
            };
            let replicas: HashSet<u16> = s
                .segments
                .iter()
                .filter(|g| g.ending.is_none())
                .map(|g| g.row.replica)
                .collect();
            let Some(replica) = (0..s.row.spec.replicas).find(|r| !replicas.contains(r)) else {
                return Ok(());
            };
            match self.start_segment(service_id, replica).await? {
                Placed::Yes(_) => {}
                Placed::NoMiner => return Ok(()),
                Placed::NoAuth => {
                    if s_has_live(&self.services, service_id) {
                        return Ok(());
                    }
                    return self
                        .end_service(
                            service_id,
                            ServiceState::Ended,
                            "its authorisations are spent or too close to their deadline: top up (`fog service top-up`) to run it again",
                        )
                        .await;
                }
            }
        }
    }

    /// Places one segment of `replica` on a miner under the next usable authorisation.
    async fn start_segment(&mut self, service_id: B256, replica: u16) -> Result<Placed> {
        let chain_now = self.clock.unix_now();
        let fee_bps = self.config.fee_bps;
        let Some(s) = self.services.live.get_mut(&service_id) else {
            return Ok(Placed::NoMiner);
        };
        let spec = s.row.spec.clone();
        let period = u64::from(spec.periodSecs);
        // Authorisations too close to their deadline to be settled in time are skipped.
        let usable = |a: &AuthRow| {
            let lives = spec
                .periods_paid_by(a.auth.payload.maxPayment)
                .saturating_mul(period);
            spec.periods_paid_by(a.auth.payload.maxPayment) > 0
                && a.auth.payload.deadline
                    >= chain_now
                        .saturating_add(lives.min(2 * period))
                        .saturating_add(SETTLE_MARGIN_SECS)
        };
        let Some(index) = s.auths.iter().position(usable) else {
            return Ok(Placed::NoAuth);
        };
        let auth = s.auths[index].clone();
        let max_charge = max_charge_per_replica(auth.auth.payload.maxPayment, fee_bps, 1);
        let job = spec.segment_job(&auth.auth.payload, max_charge, chain_now);
        let on_service: HashSet<Address> = s
            .segments
            .iter()
            .filter(|g| g.row.replica != replica)
            .map(|g| g.row.miner)
            .collect();
        let mut exclude: HashSet<Address> = s.excluded.union(&on_service).copied().collect();
        let request = Request {
            spec: &job,
            max_charge,
            now: fog_protocol::clock::unix_now(),
        };
        let mut miner = self.scheduler.place(&request, &exclude);
        if miner.is_none() && !s.excluded.is_empty() {
            // Every other miner is busy or unfit: a miner that failed it before may try again.
            exclude = on_service;
            miner = self.scheduler.place(&request, &exclude);
        }
        let Some(miner) = miner else {
            return Ok(Placed::NoMiner);
        };
        let assignment = Assignment {
            jobId: auth.job_id,
            specHash: spec.spec_hash(),
            hub: self.hub,
            miner,
            maxCharge: max_charge,
        };
        let signed = match SignedAssignment::sign(assignment, &self.signer, &self.domain) {
            Ok(signed) => signed,
            Err(e) => {
                tracing::error!(error = %e, "signing a service assignment");
                self.scheduler.release(&miner, &spec.resources);
                return Ok(Placed::NoMiner);
            }
        };
        let row = SegmentRow {
            job_id: auth.job_id,
            service_id,
            replica,
            miner,
            max_charge,
            assignment_signature: signed.signature,
            started_at: self.wall.unix_now(),
            ended_at: None,
            end_reason: None,
            periods: 0,
            receipt: None,
        };
        if let Err(e) = self.store.insert_segment(&row).await {
            self.scheduler.release(&miner, &spec.resources);
            return Err(e);
        }
        let now = Instant::now();
        let Some(s) = self.services.live.get_mut(&service_id) else {
            return Ok(Placed::NoMiner);
        };
        s.auths.remove(index);
        s.segments.push(LiveSegment {
            row,
            paid_periods: spec.periods_paid_by(auth.auth.payload.maxPayment),
            auth: auth.auth.clone(),
            assigned: now,
            started: None,
            first_ok: None,
            period_start: now,
            probes: 0,
            probes_ok: 0,
            failures: 0,
            healthy: false,
            counted: 0,
            successor: None,
            ending: None,
            linger: false,
            awaiting: None,
        });
        self.services.by_segment.insert(auth.job_id, service_id);
        let sent = self.sessions.get(&miner).is_some_and(|session| {
            session
                .tx
                .send(HubMessage::RunService {
                    assignment: signed,
                    spec: Box::new(spec),
                    auth: Box::new(auth.auth),
                })
                .is_ok()
        });
        self.publish_routes(service_id);
        if !sent {
            self.end_segment(auth.job_id, "the miner's session closed".into(), false)
                .await?;
            return Ok(Placed::NoMiner);
        }
        tracing::info!(service = %service_id, segment = %auth.job_id, %miner, replica, "service segment assigned");
        Ok(Placed::Yes(auth.job_id))
    }

    /// The segment's container runs.
    pub(super) fn service_started(&mut self, miner: Address, job_id: B256) {
        if let Some(g) = self.segment_mut(job_id, miner) {
            g.started.get_or_insert_with(Instant::now);
        }
        if let Some(service) = self.services.by_segment.get(&job_id).copied() {
            self.publish_routes(service);
        }
    }

    /// The miner refused or lost the segment, or its container ended.
    pub(super) async fn service_gone(
        &mut self,
        miner: Address,
        job_id: B256,
        why: String,
    ) -> Result<()> {
        let Some(g) = self.segment_mut(job_id, miner) else {
            return Ok(());
        };
        if let Some((_, ending)) = &g.ending {
            // Asked to stop: nothing more will come from it; it ended for
            // the reason the hub stopped it.
            let ending = ending.clone();
            return self.end_segment(job_id, ending, false).await;
        }
        let never_answered = g.first_ok.is_none();
        if let Some(s) = self
            .services
            .by_segment
            .get(&job_id)
            .and_then(|id| self.services.live.get_mut(id))
        {
            s.excluded.insert(miner);
            s.last_error = Some(why.clone());
            if never_answered {
                s.failed_starts += 1;
            }
        }
        let service_id = self.services.by_segment.get(&job_id).copied();
        self.end_segment(job_id, why, false).await?;
        if let Some(service_id) = service_id {
            self.replace_or_give_up(service_id).await?;
        }
        Ok(())
    }

    /// A miner left: its segments end now and their replicas start elsewhere
    /// (a service cannot wait for the miner to come back).
    pub(super) async fn services_miner_left(&mut self, miner: Address) -> Result<()> {
        let gone: Vec<B256> = self
            .services
            .live
            .values()
            .flat_map(|s| s.segments.iter())
            .filter(|g| g.row.miner == miner)
            .map(|g| g.row.job_id)
            .collect();
        for job_id in gone {
            self.service_gone(miner, job_id, "its miner disconnected".into())
                .await?;
        }
        Ok(())
    }

    /// A miner drains: each of its segments gets a successor elsewhere, and
    /// stops once the successor answers (make before break). Segments no
    /// other miner can take keep running until the miner leaves.
    pub(super) async fn services_drain(&mut self, miner: Address) -> Result<()> {
        let moving: Vec<(B256, u16, B256)> = self
            .services
            .live
            .iter()
            .flat_map(|(id, s)| {
                s.segments
                    .iter()
                    .filter(|g| g.row.miner == miner && g.ending.is_none() && g.successor.is_none())
                    .map(move |g| (*id, g.row.replica, g.row.job_id))
            })
            .collect();
        for (service_id, replica, old) in moving {
            if let Placed::Yes(new) = self.start_segment(service_id, replica).await?
                && let Some(g) = self
                    .services
                    .live
                    .get_mut(&service_id)
                    .and_then(|s| s.segments.iter_mut().find(|g| g.row.job_id == old))
            {
                g.successor = Some(new);
            }
        }
        Ok(())
    }

    /// Segments a miner reports running: any the hub no longer keeps are stopped.
    pub(super) fn services_heartbeat(&mut self, miner: Address, held: &[B256]) {
        let mut resumed = Vec::new();
        for job_id in held {
            if let Some(g) = self.segment_mut(*job_id, miner)
                && g.awaiting.take().is_some()
            {
                // Kept across the hub's restart: routed and checked again;
                // billing resumes with its next healthy check.
                g.started = Some(Instant::now());
                resumed.push(*job_id);
            }
            let kept = self
                .services
                .by_segment
                .get(job_id)
                .and_then(|id| self.services.live.get(id))
                .is_some_and(|s| {
                    s.segments
                        .iter()
                        .any(|g| g.row.job_id == *job_id && g.row.miner == miner)
                });
            if !kept && let Some(session) = self.sessions.get(&miner) {
                let _ = session.tx.send(HubMessage::StopService {
                    job_id: *job_id,
                    reason: "the hub does not keep this segment".into(),
                });
            }
        }
        for job_id in resumed {
            tracing::info!(segment = %job_id, %miner, "service segment resumed after the hub's restart");
            if let Some(service_id) = self.services.by_segment.get(&job_id).copied() {
                self.publish_routes(service_id);
            }
        }
    }

    /// One health check's result.
    pub(super) async fn service_probe(&mut self, job_id: B256, ok: bool) -> Result<()> {
        let Some(service_id) = self.services.by_segment.get(&job_id).copied() else {
            return Ok(());
        };
        let Some(s) = self.services.live.get_mut(&service_id) else {
            return Ok(());
        };
        let failures_allowed = s.row.spec.health.failures;
        let Some(g) = s.segments.iter_mut().find(|g| g.row.job_id == job_id) else {
            return Ok(());
        };
        let was_healthy = g.healthy;
        g.healthy = ok;
        if g.first_ok.is_some() {
            g.probes += 1;
        }
        if ok {
            g.failures = 0;
            if g.first_ok.is_none() {
                let now = Instant::now();
                g.first_ok = Some(now);
                // Billing starts with the first answer.
                g.period_start = now;
                s.failed_starts = 0;
                tracing::info!(service = %service_id, segment = %job_id, miner = %g.row.miner, "service replica answers");
            } else {
                g.probes_ok += 1;
            }
        } else if g.first_ok.is_some() || g.started.is_some_and(|t| t.elapsed() > STARTUP_GRACE) {
            g.failures += 1;
        }
        let failed = g.failures >= failures_allowed && g.ending.is_none();
        let miner = g.row.miner;
        let failures = g.failures;
        if ok && !was_healthy {
            // A successor that answers replaces the segment it was started for.
            let replaced: Vec<B256> = s
                .segments
                .iter()
                .filter(|o| o.successor == Some(job_id) && o.ending.is_none())
                .map(|o| o.row.job_id)
                .collect();
            if s.row.state == ServiceState::Starting {
                s.row.state = ServiceState::Running;
                self.store
                    .set_service_state(
                        service_id,
                        ServiceState::Running,
                        None,
                        self.wall.unix_now(),
                    )
                    .await?;
            }
            for old in replaced {
                self.begin_ending(old, "handed over to its successor".into());
                if let Some(g) = self
                    .services
                    .live
                    .get_mut(&service_id)
                    .and_then(|s| s.segments.iter_mut().find(|g| g.row.job_id == old))
                {
                    g.linger = true;
                }
            }
        }
        if ok != was_healthy {
            self.publish_routes(service_id);
        }
        if failed {
            let why = format!("its health check failed {failures} times in a row");
            tracing::warn!(service = %service_id, segment = %job_id, %miner, why, "restarting the replica elsewhere");
            self.service_gone(miner, job_id, why).await?;
            if let Some(session) = self.sessions.get(&miner) {
                let _ = session.tx.send(HubMessage::StopService {
                    job_id,
                    reason: "its health check kept failing".into(),
                });
            }
        }
        Ok(())
    }

    /// A miner's cumulative receipt for a segment.
    pub(super) async fn service_usage(
        &mut self,
        miner: Address,
        receipt: SignedReceipt,
    ) -> Result<()> {
        let job_id = receipt.payload.jobId;
        let Some(service_id) = self.services.by_segment.get(&job_id).copied() else {
            return Ok(());
        };
        let Some(s) = self.services.live.get(&service_id) else {
            return Ok(());
        };
        let Some(g) = s.segments.iter().find(|g| g.row.job_id == job_id) else {
            return Ok(());
        };
        let spec = &s.row.spec;
        let r = &receipt.payload;
        let period = u64::from(spec.periodSecs);
        let periods = r.endedAt.saturating_sub(r.startedAt) / period;
        let signed_by = receipt.signer(&self.domain).ok();
        let fits = signed_by == Some(miner)
            && g.row.miner == miner
            && r.specHash == spec.spec_hash()
            && r.hub == self.hub
            && r.miner == miner
            && r.endedAt >= r.startedAt
            && r.outputHash == usage_hash(job_id, periods)
            && periods <= g.counted
            && periods > g.row.periods
            && r.amountCharged <= miner_charge(spec, periods, g.auth.payload.maxFeeBps)
            && r.amountCharged <= g.row.max_charge;
        if !fits {
            tracing::warn!(segment = %job_id, %miner, periods, "usage receipt refused");
            return Ok(());
        }
        self.store
            .set_segment_receipt(job_id, periods, &receipt)
            .await?;
        let done = {
            let Some(g) = self.segment_mut(job_id, miner) else {
                return Ok(());
            };
            g.row.periods = periods;
            g.row.receipt = Some(receipt);
            g.ending.is_some() && periods >= g.counted && !g.linger
        };
        if done {
            let why = self
                .segment_mut(job_id, miner)
                .and_then(|g| g.ending.as_ref().map(|(_, w)| w.clone()))
                .unwrap_or_default();
            self.end_segment(job_id, why, true).await?;
        }
        Ok(())
    }

    /// Log lines of a segment, kept under its service (capped per segment).
    pub(super) async fn service_log(
        &mut self,
        miner: Address,
        job_id: B256,
        stream: &str,
        data: &str,
    ) -> Result<()> {
        let Some(service_id) = self.services.by_segment.get(&job_id).copied() else {
            return Ok(());
        };
        if self.segment_mut(job_id, miner).is_none() {
            return Ok(());
        }
        let kept = self.service_log_bytes.entry(job_id).or_default();
        let room = super::MAX_LOG_BYTES_PER_MINER.saturating_sub(*kept);
        if room == 0 {
            return Ok(());
        }
        let mut end = data.len().min(room);
        while !data.is_char_boundary(end) {
            end -= 1;
        }
        *kept += end.max(1);
        self.store
            .append_service_log(service_id, miner, stream, &data[..end])
            .await?;
        Ok(())
    }

    /// The buyer stops the service: the period in progress is counted if it
    /// has been healthy, the last receipts are asked for, and each segment
    /// is settled when its receipt comes (or after [`FINAL_RECEIPT_WAIT`]).
    pub(super) async fn stop_service(
        &mut self,
        service_id: B256,
    ) -> Result<std::result::Result<(), String>> {
        let Some(s) = self.services.live.get(&service_id) else {
            return Ok(Err(format!("service {service_id} is not running")));
        };
        let segments: Vec<B256> = s.segments.iter().map(|g| g.row.job_id).collect();
        for job_id in segments {
            self.begin_ending(job_id, "the buyer stopped the service".into());
        }
        self.end_service(service_id, ServiceState::Stopped, "stopped by its buyer")
            .await?;
        Ok(Ok(()))
    }

    /// Starts ending a segment: counts its healthy partial period, asks for
    /// its last receipt, and takes it out of the proxy's routes.
    fn begin_ending(&mut self, job_id: B256, why: String) {
        let Some(service_id) = self.services.by_segment.get(&job_id).copied() else {
            return;
        };
        let Some(s) = self.services.live.get_mut(&service_id) else {
            return;
        };
        let period = Duration::from_secs(u64::from(s.row.spec.periodSecs));
        let Some(g) = s.segments.iter_mut().find(|g| g.row.job_id == job_id) else {
            return;
        };
        if g.ending.is_some() {
            return;
        }
        // The period in progress counts when it has been healthy: the buyer
        // pays for the time served within one period either way.
        if g.first_ok.is_some()
            && g.healthy
            && g.counted < g.paid_periods
            && g.period_start.elapsed() < period
            && g.probes_ok * 2 >= g.probes
        {
            g.counted += 1;
        }
        g.ending = Some((Instant::now() + FINAL_RECEIPT_WAIT, why));
        g.healthy = false;
        let miner = g.row.miner;
        let counted = g.counted;
        let have = g.row.periods;
        if let Some(session) = self.sessions.get(&miner)
            && counted > have
        {
            let _ = session.tx.send(HubMessage::Usage {
                job_id,
                periods: counted,
            });
        }
        self.publish_routes(service_id);
    }

    /// Every tick: closes billing periods, ends segments whose last receipt
    /// is overdue, rotates segments whose authorisation is nearly spent,
    /// retries placements, and times out replicas that never start.
    pub(super) async fn services_tick(&mut self) -> Result<()> {
        let now = Instant::now();
        let prepare = self.config.prepare_timeout;
        let mut asks: Vec<(Address, B256, u64)> = Vec::new();
        let mut overdue: Vec<(B256, String)> = Vec::new();
        let mut rotate: Vec<(B256, u16, B256)> = Vec::new();
        let mut never_started: Vec<(Address, B256)> = Vec::new();
        let mut absent: Vec<(B256, B256)> = Vec::new();
        let chain_now = self.clock.unix_now();
        for (service_id, s) in &mut self.services.live {
            let period = Duration::from_secs(u64::from(s.row.spec.periodSecs));
            for g in &mut s.segments {
                if let Some((until, why)) = &g.ending {
                    if *until <= now {
                        overdue.push((g.row.job_id, why.clone()));
                    }
                    continue;
                }
                if let Some(until) = g.awaiting {
                    if until <= now {
                        absent.push((*service_id, g.row.job_id));
                    }
                    continue;
                }
                if g.started.is_none() && g.assigned + prepare < now {
                    never_started.push((g.row.miner, g.row.job_id));
                    continue;
                }
                if g.first_ok.is_none() {
                    continue;
                }
                while g.period_start + period <= now {
                    let healthy = if g.probes == 0 {
                        g.healthy
                    } else {
                        g.probes_ok * 2 >= g.probes
                    };
                    if healthy && g.counted < g.paid_periods {
                        g.counted += 1;
                        asks.push((g.row.miner, g.row.job_id, g.counted));
                    }
                    g.period_start += period;
                    g.probes = 0;
                    g.probes_ok = 0;
                }
                let period_secs = period.as_secs();
                let near_end = g.counted + 1 >= g.paid_periods
                    || chain_now.saturating_add(2 * period_secs + SETTLE_MARGIN_SECS)
                        >= g.auth.payload.deadline;
                let leaving = self.draining.contains(&g.row.miner);
                if (near_end || leaving) && g.successor.is_none() {
                    rotate.push((*service_id, g.row.replica, g.row.job_id));
                }
            }
        }
        for (miner, job_id, periods) in asks {
            if let Some(session) = self.sessions.get(&miner) {
                let _ = session.tx.send(HubMessage::Usage { job_id, periods });
            }
        }
        for (job_id, why) in overdue {
            self.end_segment(job_id, why, true).await?;
        }
        for (service_id, job_id) in absent {
            self.end_segment(
                job_id,
                "its miner did not report it after the hub restarted".into(),
                true,
            )
            .await?;
            self.place_service(service_id).await?;
        }
        for (miner, job_id) in never_started {
            self.service_gone(
                miner,
                job_id,
                "its container did not start within the hub's preparation allowance".into(),
            )
            .await?;
        }
        for (service_id, replica, old) in rotate {
            match self.start_segment(service_id, replica).await? {
                Placed::Yes(new) => {
                    if let Some(g) = self
                        .services
                        .live
                        .get_mut(&service_id)
                        .and_then(|s| s.segments.iter_mut().find(|g| g.row.job_id == old))
                    {
                        g.successor = Some(new);
                    }
                }
                Placed::NoAuth => {
                    // Nothing left to pay a successor: the segment runs out
                    // its authorisation and the service ends with it.
                    let spent = self
                        .services
                        .live
                        .get(&service_id)
                        .and_then(|s| s.segments.iter().find(|g| g.row.job_id == old))
                        .is_some_and(|g| g.counted >= g.paid_periods);
                    if spent {
                        self.begin_ending(old, "its authorisation is spent".into());
                        self.place_service(service_id).await?;
                    }
                }
                Placed::NoMiner => {}
            }
        }
        let waiting: Vec<B256> = self.services.live.keys().copied().collect();
        for service_id in waiting {
            self.place_service(service_id).await?;
        }
        Ok(())
    }

    /// After a segment failed: another replica, or the service ends when
    /// its replicas keep failing before they ever answer.
    async fn replace_or_give_up(&mut self, service_id: B256) -> Result<()> {
        let Some(s) = self.services.live.get(&service_id) else {
            return Ok(());
        };
        if s.failed_starts >= MAX_FAILED_STARTS {
            let why = format!(
                "{MAX_FAILED_STARTS} replicas in a row ended before answering its health check; the last: {}",
                s.last_error.as_deref().unwrap_or("unknown")
            );
            return self
                .end_service(service_id, ServiceState::Ended, &why)
                .await;
        }
        self.place_service(service_id).await
    }

    /// Ends the service: every segment is stopping; the row is final.
    async fn end_service(
        &mut self,
        service_id: B256,
        state: ServiceState,
        why: &str,
    ) -> Result<()> {
        let segments: Vec<B256> = self
            .services
            .live
            .get(&service_id)
            .map(|s| s.segments.iter().map(|g| g.row.job_id).collect())
            .unwrap_or_default();
        for job_id in segments {
            self.begin_ending(job_id, why.to_owned());
        }
        self.store
            .set_service_state(service_id, state, Some(why), self.wall.unix_now())
            .await?;
        if let Some(s) = self.services.live.get_mut(&service_id) {
            s.row.state = state;
        }
        tracing::info!(service = %service_id, %state, why, "service ended");
        self.drop_service_if_done(service_id);
        Ok(())
    }

    /// Ends a segment: settles its last receipt on the batched path, frees
    /// its miner's capacity, and (if `stop`) tells its miner to stop it.
    async fn end_segment(&mut self, job_id: B256, why: String, stop: bool) -> Result<()> {
        let Some(service_id) = self.services.by_segment.get(&job_id).copied() else {
            return Ok(());
        };
        let Some(s) = self.services.live.get_mut(&service_id) else {
            return Ok(());
        };
        let Some(index) = s.segments.iter().position(|g| g.row.job_id == job_id) else {
            return Ok(());
        };
        let g = s.segments.remove(index);
        let row = s.row.clone();
        for other in &mut s.segments {
            if other.successor == Some(job_id) {
                other.successor = None;
            }
        }
        self.services.by_segment.remove(&job_id);
        self.service_log_bytes.remove(&job_id);
        let batched = self.segment_batched_job(&row, &g.row, g.auth.clone(), g.row.receipt.clone());
        self.store
            .end_segment(job_id, &why, self.wall.unix_now(), batched.as_ref())
            .await?;
        self.scheduler.release(&g.row.miner, &row.spec.resources);
        if stop && let Some(session) = self.sessions.get(&g.row.miner) {
            let _ = session.tx.send(HubMessage::StopService {
                job_id,
                reason: why.clone(),
            });
        }
        tracing::info!(service = %service_id, segment = %job_id, miner = %g.row.miner, periods = g.row.periods, why, "service segment ended");
        self.publish_routes(service_id);
        self.drop_service_if_done(service_id);
        Ok(())
    }

    /// The batched job a segment's last receipt settles as, if it has one.
    fn segment_batched_job(
        &self,
        service: &ServiceRow,
        segment: &SegmentRow,
        auth: SignedJobAuth,
        receipt: Option<SignedReceipt>,
    ) -> Option<BatchedJob> {
        let receipt = receipt.filter(|r| !r.payload.amountCharged.is_zero())?;
        let assignment = SignedAssignment {
            payload: Assignment {
                jobId: segment.job_id,
                specHash: service.spec.struct_hash(),
                hub: self.hub,
                miner: segment.miner,
                maxCharge: segment.max_charge,
            },
            signature: segment.assignment_signature,
        };
        Some(BatchedJob {
            buyer: service.buyer,
            fee_bps: self.config.fee_bps.min(auth.payload.maxFeeBps),
            auth,
            signer_version: self.config.signer_version,
            receipts: vec![(assignment, receipt)],
        })
    }

    fn drop_service_if_done(&mut self, service_id: B256) {
        let done = self
            .services
            .live
            .get(&service_id)
            .is_some_and(|s| s.row.state.is_final() && s.segments.is_empty());
        if done {
            self.services.live.remove(&service_id);
            self.routes.set(service_id, Vec::new());
        }
    }

    fn segment_mut(&mut self, job_id: B256, miner: Address) -> Option<&mut LiveSegment> {
        let service_id = self.services.by_segment.get(&job_id)?;
        self.services
            .live
            .get_mut(service_id)?
            .segments
            .iter_mut()
            .find(|g| g.row.job_id == job_id && g.row.miner == miner)
    }

    /// Tells the proxy which replicas of the service it may use.
    fn publish_routes(&self, service_id: B256) {
        let Some(s) = self.services.live.get(&service_id) else {
            self.routes.set(service_id, Vec::new());
            return;
        };
        let routes = if s.row.state.is_final() {
            Vec::new()
        } else {
            s.segments
                .iter()
                .filter(|g| g.started.is_some() && g.ending.is_none())
                .filter_map(|g| {
                    let session = self.sessions.get(&g.row.miner)?;
                    Some(Route {
                        job_id: g.row.job_id,
                        miner: g.row.miner,
                        healthy: g.healthy,
                        tx: session.tx.clone(),
                        health_path: s.row.spec.health.path.clone(),
                        interval: Duration::from_secs(u64::from(s.row.spec.health.intervalSecs)),
                    })
                })
                .collect()
        };
        self.routes.set(service_id, routes);
    }

    /// Live replicas answering now, by service (for status pages).
    pub(super) fn service_health(&self, service_id: B256) -> Vec<(B256, bool, u64)> {
        self.services
            .live
            .get(&service_id)
            .map(|s| {
                s.segments
                    .iter()
                    .map(|g| (g.row.job_id, g.healthy, g.counted))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn s_has_live(book: &ServiceBook, service_id: B256) -> bool {
    book.live
        .get(&service_id)
        .is_some_and(|s| s.segments.iter().any(|g| g.ending.is_none()))
}

enum Placed {
    Yes(B256),
    NoMiner,
    NoAuth,
}
