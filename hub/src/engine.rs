//! The hub's engine: one task that owns the live miners, the queue and the
//! running jobs, and moves jobs through their states. Every change is written
//! to the [`Store`] before it is acted on (an assignment is stored before it
//! is sent; a receipt before the job is complete), so a hub killed at any
//! point restarts from the database: unfinished jobs are queued again, and
//! assignments that were live wait for their miner to reconnect and say
//! whether it still runs them, or are reassigned after `miner_timeout`.
//!
//! Other tasks talk to the engine through an [`EngineHandle`].

use fog_protocol::clock::SharedClock;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use fog_protocol::charge::max_charge_per_replica;
use fog_protocol::wire::{HubMessage, LogStream, Offer};
use fog_protocol::{
    Address, Assignment, B256, Eip712Domain, PrivateKeySigner, Resources, SignedAssignment,
    SignedReceipt,
};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Metrics;
use crate::proxy::Routes;
use crate::scheduler::{FairQueue, Request, Scheduler};

mod services;
use crate::store::{
    AssignmentRow, AssignmentState, JobRow, JobState, MinerOutcome, Store, StoreError,
};

/// Most log bytes the hub stores from one miner for one job.
pub const MAX_LOG_BYTES_PER_MINER: usize = 2 << 20;

/// How the engine behaves.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// A miner silent this long is gone; its jobs are reassigned.
    pub miner_timeout: Duration,
    /// Assignments beyond `k` a job may use (reassignments) before it fails.
    pub max_reassignments: u32,
    /// How long past the job's max duration, counted from the container's
    /// start, a miner may hold an assignment without a receipt before it has
    /// timed out (collecting and uploading the output).
    pub assignment_grace: Duration,
    /// How long a miner may prepare an assignment (pull the image, fetch the
    /// inputs) before its container starts; this never eats into the job's
    /// max duration.
    pub prepare_timeout: Duration,
    /// The hub's commission, in basis points, as the registry holds it.
    pub fee_bps: u16,
    /// The registry's version of the hub's signer (named in batched leaves).
    pub signer_version: u16,
}

/// The engine's two clocks.
#[derive(Clone, Debug)]
pub struct Clocks {
    /// The chain's time: escrow deadlines.
    pub chain: SharedClock,
    /// The machine's time: how long preparing and running take.
    pub wall: SharedClock,
}

/// Messages to the engine.
#[derive(Debug)]
pub enum Event {
    MinerJoined {
        miner: Address,
        conn: u64,
        offer: Offer,
        tx: mpsc::UnboundedSender<HubMessage>,
    },
    MinerOffer {
        miner: Address,
        conn: u64,
        offer: Offer,
    },
    Heartbeat {
        miner: Address,
        conn: u64,
        running: Vec<B256>,
        /// Service segments the miner runs.
        services: Vec<B256>,
    },
    MinerLeft {
        miner: Address,
        conn: u64,
    },
    JobQueued {
        job_id: B256,
    },
    Accepted {
        miner: Address,
        job_id: B256,
    },
    /// The assignment's container started.
    Started {
        miner: Address,
        job_id: B256,
    },
    Rejected {
        miner: Address,
        job_id: B256,
        reason: String,
    },
    Log {
        miner: Address,
        job_id: B256,
        stream: LogStream,
        data: String,
    },
    Finished {
        miner: Address,
        receipt: Box<SignedReceipt>,
        /// The miner says the run was performed but the job failed by its
        /// own doing (its output over the limit).
        failure: Option<String>,
        reply: oneshot::Sender<std::result::Result<(), String>>,
    },
    Failed {
        miner: Address,
        job_id: B256,
        error: String,
        fault: fog_protocol::wire::Fault,
    },
    Cancel {
        job_id: B256,
        reply: oneshot::Sender<std::result::Result<(), String>>,
    },
    /// What running `spec` would cost with the miners connected now.
    Quote {
        spec: Box<fog_protocol::JobSpec>,
        reply: oneshot::Sender<Quote>,
    },
    /// The miner is leaving: nothing new for it; its service segments are
    /// handed over to other miners.
    Drain {
        miner: Address,
        conn: u64,
    },
    /// A service was stored (or topped up): load it and place its replicas.
    ServiceQueued {
        service_id: B256,
    },
    /// A service segment's container runs.
    ServiceStarted {
        miner: Address,
        job_id: B256,
    },
    /// A service segment's container is gone.
    ServiceStopped {
        miner: Address,
        job_id: B256,
        error: Option<String>,
    },
    /// A miner's cumulative receipt for a service segment.
    Usage {
        miner: Address,
        receipt: Box<SignedReceipt>,
    },
    /// One health check of a service segment through the proxy.
    Probe {
        job_id: B256,
        ok: bool,
    },
    /// The buyer stops a service.
    StopService {
        service_id: B256,
        reply: oneshot::Sender<std::result::Result<(), String>>,
    },
    /// The live segments of a service: (segment, answers now, periods counted).
    ServiceHealth {
        service_id: B256,
        reply: oneshot::Sender<Vec<(B256, bool, u64)>>,
    },
    /// May `miner` fetch input blob `hash` (it holds a live job that needs it)?
    MayFetch {
        miner: Address,
        hash: B256,
        reply: oneshot::Sender<bool>,
    },
    /// May `miner` upload the output of `job_id` (it holds a live replica)?
    /// If so: the job's buyer (who will own the output) and its disk allowance.
    MayUpload {
        miner: Address,
        job_id: B256,
        reply: oneshot::Sender<Option<OutputUpload>>,
    },
}

pub use fog_protocol::api::Quote;

/// What a miner uploading a job's output is allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputUpload {
    /// The job's buyer, who owns the output.
    pub buyer: Address,
    /// The job's disk: its output archive is at most `output_limit` of it.
    pub disk_bytes: u64,
}

/// A cheap, clonable way to reach the engine.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: mpsc::Sender<Event>,
}

/// The engine has stopped (the hub is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the hub's engine has stopped")]
pub struct EngineGone;

impl EngineHandle {
    pub async fn send(&self, event: Event) -> std::result::Result<(), EngineGone> {
        self.tx.send(event).await.map_err(|_| EngineGone)
    }

    /// Sends an event carrying a reply channel and waits for the answer.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Event,
    ) -> std::result::Result<T, EngineGone> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await?;
        answer.await.map_err(|_| EngineGone)
    }

    /// The engine has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

struct Session {
    conn: u64,
    tx: mpsc::UnboundedSender<HubMessage>,
    last_seen: Instant,
}

struct LiveJob {
    row: JobRow,
    assignments: Vec<AssignmentRow>,
    queued_at: Instant,
    /// The first assignment's latency has been recorded.
    timed: bool,
    /// Log bytes stored per miner: capped, whatever the miner sends.
    log_bytes: HashMap<Address, usize>,
    /// When each live assignment's container started (machine time), by
    /// assignment id: its max duration counts from then.
    started: HashMap<String, u64>,
    /// The buyer cancelled while runs were going: they are being stopped,
    /// and their receipts for the time used are awaited until then (machine
    /// time). No replica is placed any more.
    cancelling: Option<u64>,
}

impl LiveJob {
    fn live(&self) -> impl Iterator<Item = &AssignmentRow> {
        self.assignments.iter().filter(|a| a.state.is_live())
    }

    /// Finished receipts grouped by output hash, largest group first.
    fn groups(&self) -> Vec<(B256, Vec<&AssignmentRow>)> {
        let mut groups: HashMap<B256, Vec<&AssignmentRow>> = HashMap::new();
        for a in self
            .assignments
            .iter()
            .filter(|a| a.state == AssignmentState::Finished)
        {
            if let Some(r) = &a.receipt {
                groups.entry(r.payload.outputHash).or_default().push(a);
            }
        }
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort_by_key(|(_, g)| std::cmp::Reverse(g.len()));
        groups
    }

    /// Replicas still to place: k minus the largest agreeing group minus
    /// those running; none once the buyer cancelled.
    fn needed(&self) -> usize {
        if self.cancelling.is_some() {
            return 0;
        }
        let k = usize::from(self.row.spec.replicas);
        let agreeing = self.groups().first().map_or(0, |(_, g)| g.len());
        k.saturating_sub(agreeing + self.live().count())
    }
}

/// The live assignments held too long at `now`, with why: not started within
/// `prepare` seconds of being assigned, or no receipt within the job's max
/// duration plus `grace` seconds of the container's start.
fn overdue_assignments<'a>(
    jobs: impl Iterator<Item = &'a LiveJob>,
    now: u64,
    prepare: u64,
    grace: u64,
) -> Vec<(B256, String, Address, &'static str)> {
    jobs.flat_map(|j| {
        let run_limit = j.row.spec.maxDurationSecs.saturating_add(grace);
        j.live().filter_map(move |a| {
            let (since, limit, why) = match j.started.get(&a.id) {
                Some(&started) => (
                    started,
                    run_limit,
                    "timed out: no receipt within the job's max duration (from the container's start) plus the hub's grace",
                ),
                None => (
                    u64::try_from(a.created_at).unwrap_or(0),
                    prepare,
                    "timed out preparing: the container did not start within the hub's preparation allowance (image pull, inputs)",
                ),
            };
            (since.saturating_add(limit) < now).then(|| (a.job_id, a.id.clone(), a.miner, why))
        })
    })
    .collect()
}

/// The engine's state; see the module docs.
pub struct Engine {
    store: Store,
    signer: PrivateKeySigner,
    domain: Eip712Domain,
    hub: Address,
    config: EngineConfig,
    metrics: Metrics,
    scheduler: Scheduler,
    queue: FairQueue,
    jobs: HashMap<B256, LiveJob>,
    sessions: HashMap<Address, Session>,
    /// Live assignments whose miner is away, by assignment id.
    orphans: HashMap<String, Orphan>,
    /// The chain's time: escrow deadlines are judged by it.
    clock: SharedClock,
    /// The machine's time: how long assignments take is measured by it.
    wall: SharedClock,
    /// Live services and their segments.
    services: services::ServiceBook,
    /// Log bytes stored per live service segment.
    service_log_bytes: HashMap<B256, usize>,
    /// The services' replicas as the proxy sees them.
    routes: std::sync::Arc<Routes>,
    /// Miners leaving: placed on no more (until they connect again).
    draining: HashSet<Address>,
}

/// A live assignment waiting for its miner to come back.
#[derive(Clone, Copy, Debug)]
struct Orphan {
    job_id: B256,
    miner: Address,
    /// When it is given up and the replica placed elsewhere.
    until: Instant,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("hub", &self.hub)
            .field("jobs", &self.jobs.len())
            .field("miners", &self.sessions.len())
            .finish_non_exhaustive()
    }
}

type Result<T> = std::result::Result<T, StoreError>;

fn random_id() -> String {
    let mut id = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut id);
    alloy::hex::encode(id)
}

impl Engine {
    pub fn new(
        store: Store,
        signer: PrivateKeySigner,
        domain: Eip712Domain,
        hub: Address,
        config: EngineConfig,
        metrics: Metrics,
        clocks: Clocks,
    ) -> Self {
        Self {
            clock: clocks.chain,
            wall: clocks.wall,
            store,
            signer,
            domain,
            hub,
            config,
            metrics,
            scheduler: Scheduler::new(),
            queue: FairQueue::default(),
            jobs: HashMap::new(),
            sessions: HashMap::new(),
            orphans: HashMap::new(),
            services: services::ServiceBook::default(),
            service_log_bytes: HashMap::new(),
            routes: std::sync::Arc::default(),
            draining: HashSet::new(),
        }
    }

    /// Publishes services' replicas to `routes` (the proxy's).
    pub fn with_routes(mut self, routes: std::sync::Arc<Routes>) -> Self {
        self.routes = routes;
        self
    }

    /// Loads the unfinished jobs and starts the engine; returns its handle.
    pub async fn start(mut self) -> Result<(EngineHandle, tokio::task::JoinHandle<()>)> {
        self.recover().await?;
        let (tx, rx) = mpsc::channel(4_096);
        let task = tokio::spawn(self.run(rx));
        Ok((EngineHandle { tx }, task))
    }

    async fn recover(&mut self) -> Result<()> {
        // Miners in the middle of their reconnect backoff get its longest
        // delay on top of the usual timeout.
        let grace =
            Instant::now() + self.config.miner_timeout + fog_protocol::wire::MAX_RECONNECT_DELAY;
        let now = self.wall.unix_now();
        for row in self.store.unfinished_jobs().await? {
            let assignments = self.store.assignments_of(row.job_id).await?;
            for a in assignments.iter().filter(|a| a.state.is_live()) {
                let orphan = Orphan {
                    job_id: a.job_id,
                    miner: a.miner,
                    until: grace,
                };
                self.orphans.insert(a.id.clone(), orphan);
            }
            // Not known across a restart: the runs get their whole max
            // duration from now.
            let started = assignments
                .iter()
                .filter(|a| a.state.is_live())
                .map(|a| (a.id.clone(), now))
                .collect();
            let job_id = row.job_id;
            let buyer = row.buyer;
            self.jobs.insert(
                job_id,
                LiveJob {
                    row,
                    assignments,
                    queued_at: Instant::now(),
                    timed: true,
                    log_bytes: HashMap::new(),
                    started,
                    cancelling: None,
                },
            );
            self.queue.push(buyer, job_id);
        }
        if !self.jobs.is_empty() {
            tracing::info!(
                jobs = self.jobs.len(),
                orphans = self.orphans.len(),
                "resumed unfinished jobs"
            );
        }
        for service in self.store.live_services().await? {
            self.service_queued(service.service_id).await?;
        }
        self.update_gauges();
        Ok(())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Event>) {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let result = tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => self.handle(event).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
            };
            if let Err(e) = result {
                // The database refused a write: nothing was acted on for this
                // event; the next tick retries from the stored state.
                tracing::error!(error = %e, "engine step failed");
            }
        }
    }

    async fn handle(&mut self, event: Event) -> Result<()> {
        match event {
            Event::MinerJoined {
                miner,
                conn,
                offer,
                tx,
            } => self.miner_joined(miner, conn, offer, tx).await?,
            Event::MinerOffer { miner, conn, offer } => {
                if self.is_current(miner, conn) && !self.draining.contains(&miner) {
                    let placed = self.placed_on(miner);
                    let reputation = self.store.miner_record(miner).await?.reputation();
                    self.scheduler.upsert(miner, offer, reputation, &placed);
                    self.dispatch().await?;
                }
            }
            Event::Heartbeat {
                miner,
                conn,
                running,
                services,
            } => {
                self.heartbeat(miner, conn, &running).await?;
                if self.is_current(miner, conn) {
                    self.services_heartbeat(miner, &services);
                }
            }
            Event::MinerLeft { miner, conn } => {
                if self.is_current(miner, conn) {
                    self.miner_left(miner, "disconnected");
                    self.services_miner_left(miner).await?;
                }
            }
            Event::Drain { miner, conn } => {
                if self.is_current(miner, conn) {
                    self.draining.insert(miner);
                    self.scheduler.remove(&miner);
                    tracing::info!(%miner, "miner draining: handing its services over");
                    self.services_drain(miner).await?;
                }
            }
            Event::ServiceQueued { service_id } => self.service_queued(service_id).await?,
            Event::ServiceStarted { miner, job_id } => self.service_started(miner, job_id),
            Event::ServiceStopped {
                miner,
                job_id,
                error,
            } => {
                let why = error.unwrap_or_else(|| "its container stopped".into());
                self.service_gone(miner, job_id, why).await?;
            }
            Event::Usage { miner, receipt } => self.service_usage(miner, *receipt).await?,
            Event::Probe { job_id, ok } => self.service_probe(job_id, ok).await?,
            Event::StopService { service_id, reply } => {
                let answer = self.stop_service(service_id).await?;
                let _ = reply.send(answer);
            }
            Event::ServiceHealth { service_id, reply } => {
                let _ = reply.send(self.service_health(service_id));
            }
            Event::JobQueued { job_id } => {
                if let Some(row) = self.store.job(job_id).await?
                    && !self.jobs.contains_key(&job_id)
                    && !row.state.is_final()
                {
                    self.queue.push(row.buyer, job_id);
                    self.jobs.insert(
                        job_id,
                        LiveJob {
                            row,
                            assignments: Vec::new(),
                            queued_at: Instant::now(),
                            timed: false,
                            log_bytes: HashMap::new(),
                            started: HashMap::new(),
                            cancelling: None,
                        },
                    );
                    self.dispatch().await?;
                }
            }
            Event::Accepted { miner, job_id } => {
                if let Some(id) = self.live_assignment(job_id, miner) {
                    self.set_assignment(job_id, &id, AssignmentState::Running, None, None)
                        .await?;
                }
            }
            Event::Started { miner, job_id } => {
                let now = self.wall.unix_now();
                if let Some(id) = self.live_assignment(job_id, miner)
                    && let Some(job) = self.jobs.get_mut(&job_id)
                {
                    job.started.entry(id).or_insert(now);
                }
            }
            Event::Rejected {
                miner,
                job_id,
                reason,
            } if self.is_segment(job_id) => {
                self.service_gone(miner, job_id, format!("rejected by the miner: {reason}"))
                    .await?;
            }
            Event::Rejected {
                miner,
                job_id,
                reason,
            } => {
                if let Some(id) = self.live_assignment(job_id, miner) {
                    let why = format!("rejected by the miner: {reason}");
                    self.end_assignment(job_id, &id, AssignmentState::Failed, &why, None)
                        .await?;
                    self.dispatch().await?;
                }
            }
            Event::Log {
                miner,
                job_id,
                stream,
                data,
            } if self.is_segment(job_id) => {
                let stream = match stream {
                    LogStream::Stdout => "stdout",
                    LogStream::Stderr => "stderr",
                };
                self.service_log(miner, job_id, stream, &data).await?;
            }
            Event::Log {
                miner,
                job_id,
                stream,
                data,
            } => {
                if self.live_assignment(job_id, miner).is_some()
                    && let Some(job) = self.jobs.get_mut(&job_id)
                {
                    // The miner caps its own logs, but the hub does not rely on it.
                    let kept = job.log_bytes.entry(miner).or_default();
                    let room = MAX_LOG_BYTES_PER_MINER.saturating_sub(*kept);
                    if room > 0 {
                        let mut end = data.len().min(room);
                        while !data.is_char_boundary(end) {
                            end -= 1;
                        }
                        *kept += end.max(1);
                        let stream = match stream {
                            LogStream::Stdout => "stdout",
                            LogStream::Stderr => "stderr",
                        };
                        self.store
                            .append_log(job_id, miner, stream, &data[..end])
                            .await?;
                    }
                }
            }
            Event::Finished {
                miner,
                receipt,
                failure,
                reply,
            } => {
                let answer = self.finished(miner, *receipt, failure).await?;
                let _ = reply.send(answer);
                self.dispatch().await?;
            }
            Event::Failed {
                miner,
                job_id,
                error,
                fault,
            } => {
                if let Some(id) = self.live_assignment(job_id, miner) {
                    match fault {
                        fog_protocol::wire::Fault::Miner => {
                            let why = format!("failed on the miner: {error}");
                            self.end_assignment(
                                job_id,
                                &id,
                                AssignmentState::Failed,
                                &why,
                                Some(MinerOutcome::Failed),
                            )
                            .await?;
                        }
                        // Another miner would fail it the same way: the job
                        // ends now, its buyer's escrow is released, and the
                        // miner's record is untouched.
                        fog_protocol::wire::Fault::Job => {
                            let why = format!("the job cannot run: {error}");
                            self.end_assignment(job_id, &id, AssignmentState::Failed, &why, None)
                                .await?;
                            self.finish_job(job_id, JobState::Failed, Some(&why), None)
                                .await?;
                        }
                    }
                    self.end_cancelling_if_done(job_id).await?;
                    self.dispatch().await?;
                }
            }
            Event::Cancel { job_id, reply } => {
                let answer = self.cancel(job_id).await?;
                let _ = reply.send(answer);
            }
            Event::Quote { spec, reply } => {
                let _ = reply.send(self.quote(&spec));
            }
            Event::MayFetch { miner, hash, reply } => {
                let allowed = self.jobs.values().any(|j| {
                    j.live().any(|a| a.miner == miner)
                        && j.row.spec.inputs.iter().any(|i| i.contentHash == hash)
                });
                if allowed {
                    self.scheduler.note_cached(&miner, hash);
                }
                let _ = reply.send(allowed);
            }
            Event::MayUpload {
                miner,
                job_id,
                reply,
            } => {
                let upload = self.live_assignment(job_id, miner).map(|_| {
                    let row = &self.jobs[&job_id].row;
                    OutputUpload {
                        buyer: row.buyer,
                        disk_bytes: row.spec.resources.diskBytes,
                    }
                });
                let _ = reply.send(upload);
            }
        }
        self.update_gauges();
        Ok(())
    }

    fn is_current(&self, miner: Address, conn: u64) -> bool {
        self.sessions.get(&miner).is_some_and(|s| s.conn == conn)
    }

    /// Resources of the live assignments and service segments on `miner`.
    fn placed_on(&self, miner: Address) -> Vec<Resources> {
        let mut placed: Vec<Resources> = self
            .jobs
            .values()
            .flat_map(|j| {
                j.live()
                    .filter(move |a| a.miner == miner)
                    .map(move |_| j.row.spec.resources.clone())
            })
            .collect();
        placed.extend(self.service_resources_on(miner));
        placed
    }

    fn live_assignment(&self, job_id: B256, miner: Address) -> Option<String> {
        self.jobs
            .get(&job_id)?
            .live()
            .find(|a| a.miner == miner)
            .map(|a| a.id.clone())
    }

    async fn miner_joined(
        &mut self,
        miner: Address,
        conn: u64,
        offer: Offer,
        tx: mpsc::UnboundedSender<HubMessage>,
    ) -> Result<()> {
        if let Some(old) = self.sessions.remove(&miner) {
            // A newer connection of the same miner replaces the old one.
            let _ = old.tx.send(HubMessage::Error {
                message: "replaced by a newer connection of this miner".into(),
            });
        }
        let reputation = self.store.miner_record(miner).await?.reputation();
        let placed = self.placed_on(miner);
        self.draining.remove(&miner);
        self.scheduler.upsert(miner, offer, reputation, &placed);
        self.sessions.insert(
            miner,
            Session {
                conn,
                tx,
                last_seen: Instant::now(),
            },
        );
        tracing::info!(%miner, "miner connected");
        self.dispatch().await
    }

    async fn heartbeat(&mut self, miner: Address, conn: u64, running: &[B256]) -> Result<()> {
        if !self.is_current(miner, conn) {
            return Ok(());
        }
        if let Some(s) = self.sessions.get_mut(&miner) {
            s.last_seen = Instant::now();
        }
        // Assignments orphaned by a restart or a reconnect: kept if the miner
        // still runs them, given up if it does not. Only orphans are looked
        // at, so a heartbeat costs nothing in the usual case of none.
        let mut lost = Vec::new();
        self.orphans.retain(|id, o| {
            if o.miner != miner {
                return true;
            }
            if !running.contains(&o.job_id) {
                lost.push((o.job_id, id.clone()));
            }
            false
        });
        // Runs given up for lost while their miner was away, which it still
        // holds: taken back where the job has room for them.
        for job_id in running {
            if self.live_assignment(*job_id, miner).is_none() {
                self.take_back(*job_id, miner).await?;
            }
        }
        for (job_id, id) in lost {
            self.orphans.remove(&id);
            self.end_assignment(
                job_id,
                &id,
                AssignmentState::Lost,
                "the miner no longer runs it",
                Some(MinerOutcome::Dropped),
            )
            .await?;
        }
        Ok(())
    }

    /// An assignment given up for lost (its miner was away too long) whose
    /// miner turns out to still hold it, by a heartbeat or a receipt: made
    /// live again if the job still has a free replica, so the work done is
    /// neither thrown away nor left to block the job (the hub never assigns
    /// one job twice to a miner). Its id, or None if it cannot be.
    async fn take_back(&mut self, job_id: B256, miner: Address) -> Result<Option<String>> {
        let Some(job) = self.jobs.get(&job_id) else {
            return Ok(None);
        };
        if job.row.state.is_final() || job.cancelling.is_some() {
            return Ok(None);
        }
        let held = job
            .assignments
            .iter()
            .filter(|a| a.state.is_live() || a.state == AssignmentState::Finished)
            .count();
        if held >= usize::from(job.row.spec.replicas) {
            return Ok(None);
        }
        let Some(id) = job
            .assignments
            .iter()
            .find(|a| a.miner == miner && a.state == AssignmentState::Lost)
            .map(|a| a.id.clone())
        else {
            return Ok(None);
        };
        let resources = job.row.spec.resources.clone();
        let why = "taken back: its miner still held it after it was given up for lost";
        let changed = self
            .store
            .set_assignment_state(
                &id,
                &[AssignmentState::Lost],
                AssignmentState::Running,
                Some(why),
                None,
            )
            .await?;
        if !changed {
            return Ok(None);
        }
        if let Some(a) = self
            .jobs
            .get_mut(&job_id)
            .and_then(|j| j.assignments.iter_mut().find(|a| a.id == id))
        {
            a.state = AssignmentState::Running;
            a.error = Some(why.to_owned());
        }
        self.scheduler.hold(&miner, &resources);
        tracing::info!(job = %job_id, %miner, "assignment taken back");
        Ok(Some(id))
    }

    /// The miner's session ended: its live assignments wait `miner_timeout`
    /// for it to come back before they are reassigned.
    fn miner_left(&mut self, miner: Address, why: &str) {
        self.sessions.remove(&miner);
        self.scheduler.remove(&miner);
        let grace = Instant::now() + self.config.miner_timeout;
        for job in self.jobs.values() {
            for a in job.live().filter(|a| a.miner == miner) {
                let orphan = Orphan {
                    job_id: a.job_id,
                    miner,
                    until: grace,
                };
                self.orphans.entry(a.id.clone()).or_insert(orphan);
            }
        }
        tracing::info!(%miner, why, "miner gone");
    }

    async fn on_tick(&mut self) -> Result<()> {
        let now = Instant::now();
        let silent: Vec<Address> = self
            .sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_seen) > self.config.miner_timeout)
            .map(|(m, _)| *m)
            .collect();
        for miner in silent {
            if let Some(s) = self.sessions.get(&miner) {
                let _ = s.tx.send(HubMessage::Error {
                    message: "no heartbeat: closing the session".into(),
                });
            }
            self.miner_left(miner, "missed heartbeats");
            self.services_miner_left(miner).await?;
        }
        self.services_tick().await?;
        let expired: Vec<(String, B256)> = self
            .orphans
            .iter()
            .filter(|(_, o)| o.until <= now)
            .map(|(id, o)| (id.clone(), o.job_id))
            .collect();
        for (id, job_id) in expired {
            self.orphans.remove(&id);
            self.end_assignment(
                job_id,
                &id,
                AssignmentState::Lost,
                "the miner went away",
                Some(MinerOutcome::Dropped),
            )
            .await?;
        }
        let unix = self.clock.unix_now();
        // Miners that hold a replica too long, heartbeats or not: timed out,
        // the replica goes elsewhere. Preparing (pulling the image, fetching
        // inputs) has its own allowance; the max duration counts from the
        // container's start.
        let overdue = overdue_assignments(
            self.jobs.values(),
            self.wall.unix_now(),
            self.config.prepare_timeout.as_secs(),
            self.config.assignment_grace.as_secs(),
        );
        for (job_id, id, miner, why) in overdue {
            self.end_assignment(
                job_id,
                &id,
                AssignmentState::TimedOut,
                why,
                Some(MinerOutcome::TimedOut),
            )
            .await?;
            if let Some(s) = self.sessions.get(&miner) {
                let _ = s.tx.send(HubMessage::Cancel {
                    job_id,
                    reason: why.to_owned(),
                });
            }
        }
        // Cancelled jobs whose stopped runs did not all report in time.
        let wall = self.wall.unix_now();
        let stale: Vec<B256> = self
            .jobs
            .values()
            .filter(|j| j.cancelling.is_some_and(|until| until < wall))
            .map(|j| j.row.job_id)
            .collect();
        for job_id in stale {
            self.finish_job(
                job_id,
                JobState::Cancelled,
                Some("cancelled by the buyer; not every stopped run reported its time"),
                None,
            )
            .await?;
        }
        let past_deadline: Vec<B256> = self
            .jobs
            .values()
            .filter(|j| j.row.spec.deadline <= unix)
            .map(|j| j.row.job_id)
            .collect();
        for job_id in past_deadline {
            self.finish_job(
                job_id,
                JobState::Failed,
                Some("the deadline passed before the job completed"),
                None,
            )
            .await?;
        }
        self.dispatch().await?;
        self.update_gauges();
        Ok(())
    }

    /// Places every replica that can be placed now, buyers in fair turn.
    async fn dispatch(&mut self) -> Result<()> {
        if self.queue.is_empty() || self.scheduler.is_empty() {
            return Ok(());
        }
        for (buyer, job_id) in self.queue.round() {
            let Some(job) = self.jobs.get(&job_id) else {
                self.queue.remove(&buyer, &job_id);
                continue;
            };
            let needed = job.needed();
            if needed == 0 {
                self.queue.remove(&buyer, &job_id);
                continue;
            }
            let k = u32::from(job.row.spec.replicas);
            let used = u32::try_from(
                job.assignments
                    .iter()
                    .filter(|a| a.state != AssignmentState::Cancelled)
                    .count(),
            )
            .unwrap_or(u32::MAX);
            if used >= k + self.config.max_reassignments && job.live().count() == 0 {
                let why = format!("no {k} miners completed the job in {used} assignments");
                self.finish_job(job_id, JobState::Failed, Some(&why), None)
                    .await?;
                continue;
            }
            let mut placed = 0;
            for _ in 0..needed {
                if !self.place_replica(job_id).await? {
                    break;
                }
                placed += 1;
            }
            if placed == needed {
                self.queue.remove(&buyer, &job_id);
            }
        }
        Ok(())
    }

    /// Assigns one more replica of `job_id`; false if no miner fits now.
    async fn place_replica(&mut self, job_id: B256) -> Result<bool> {
        let Some(job) = self.jobs.get(&job_id) else {
            return Ok(false);
        };
        let spec = &job.row.spec;
        let max_charge =
            max_charge_per_replica(spec.maxPayment, self.config.fee_bps, spec.replicas);
        let exclude: HashSet<Address> = job.assignments.iter().map(|a| a.miner).collect();
        let taken: HashSet<u16> = job
            .assignments
            .iter()
            .filter(|a| a.state.is_live() || a.state == AssignmentState::Finished)
            .map(|a| a.replica)
            .collect();
        let request = Request {
            spec,
            max_charge,
            // Miners' availability windows are their machines' wall time.
            now: fog_protocol::clock::unix_now(),
        };
        let Some(miner) = self.scheduler.place(&request, &exclude) else {
            return Ok(false);
        };
        let replica = (0..u16::MAX).find(|r| !taken.contains(r)).unwrap_or(0);
        let assignment = Assignment {
            jobId: job_id,
            specHash: job.row.spec_hash,
            hub: self.hub,
            miner,
            maxCharge: max_charge,
        };
        let signed = match SignedAssignment::sign(assignment, &self.signer, &self.domain) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "signing an assignment");
                self.scheduler.release(&miner, &spec.resources);
                return Ok(false);
            }
        };
        let now = i64::try_from(self.wall.unix_now()).unwrap_or(i64::MAX);
        let row = AssignmentRow {
            id: random_id(),
            job_id,
            replica,
            miner,
            max_charge,
            signature: signed.signature,
            state: AssignmentState::Assigned,
            error: None,
            receipt: None,
            created_at: now,
            updated_at: now,
        };
        // Stored before it is sent: a restart finds it and waits for the miner.
        if let Err(e) = self.store.insert_assignment(&row).await {
            self.scheduler.release(&miner, &spec.resources);
            return Err(e);
        }
        let spec_box = Box::new(spec.clone());
        let auth = job.row.auth.clone().map(Box::new);
        let first = job.row.state == JobState::Queued;
        if first {
            self.store
                .set_job_state(job_id, &[JobState::Queued], JobState::Running, None, None)
                .await?;
        }
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Ok(false);
        };
        if first {
            job.row.state = JobState::Running;
        }
        if !job.timed {
            job.timed = true;
            self.metrics
                .assignment_latency
                .observe(job.queued_at.elapsed().as_secs_f64());
        }
        job.assignments.push(row.clone());
        let sent = self.sessions.get(&miner).is_some_and(|s| {
            s.tx.send(HubMessage::Assign {
                assignment: signed,
                spec: spec_box,
                auth: auth.clone(),
            })
            .is_ok()
        });
        if !sent {
            self.end_assignment(
                job_id,
                &row.id,
                AssignmentState::Lost,
                "the miner's session closed",
                None,
            )
            .await?;
            return Ok(false);
        }
        self.metrics.assignments.inc();
        tracing::info!(job = %job_id, %miner, replica, "assigned");
        Ok(true)
    }

    /// Ends a live assignment (not with a receipt): stores the new state,
    /// frees the miner's capacity, notes the outcome, and queues the job again.
    async fn end_assignment(
        &mut self,
        job_id: B256,
        id: &str,
        to: AssignmentState,
        why: &str,
        outcome: Option<MinerOutcome>,
    ) -> Result<()> {
        let changed = self.set_assignment(job_id, id, to, Some(why), None).await?;
        if !changed {
            return Ok(());
        }
        self.orphans.remove(id);
        let Some(job) = self.jobs.get(&job_id) else {
            return Ok(());
        };
        let Some(a) = job.assignments.iter().find(|a| a.id == id) else {
            return Ok(());
        };
        let miner = a.miner;
        self.scheduler.release(&miner, &job.row.spec.resources);
        if let Some(outcome) = outcome {
            self.store.record_outcome(miner, outcome).await?;
            let reputation = self.store.miner_record(miner).await?.reputation();
            self.scheduler.set_reputation(&miner, reputation);
        }
        tracing::info!(job = %job_id, %miner, state = to.as_str(), why, "assignment ended");
        if !job.row.state.is_final() {
            self.queue.push(job.row.buyer, job_id);
        }
        Ok(())
    }

    /// Stores and mirrors an assignment's state change; false if it had already left the live states.
    async fn set_assignment(
        &mut self,
        job_id: B256,
        id: &str,
        to: AssignmentState,
        error: Option<&str>,
        receipt: Option<&SignedReceipt>,
    ) -> Result<bool> {
        let from = [AssignmentState::Assigned, AssignmentState::Running];
        let changed = self
            .store
            .set_assignment_state(id, &from, to, error, receipt)
            .await?;
        if changed
            && let Some(job) = self.jobs.get_mut(&job_id)
            && let Some(a) = job.assignments.iter_mut().find(|a| a.id == id)
        {
            a.state = to;
            a.error = error.map(str::to_owned).or(a.error.take());
            if let Some(r) = receipt {
                a.receipt = Some(r.clone());
            }
        }
        Ok(changed)
    }

    /// A miner's receipt: checked, stored, and the job completed once k agree.
    async fn finished(
        &mut self,
        miner: Address,
        receipt: SignedReceipt,
        failure: Option<String>,
    ) -> Result<std::result::Result<(), String>> {
        let r = &receipt.payload;
        let job_id = r.jobId;
        let id = match self.live_assignment(job_id, miner) {
            Some(id) => id,
            None => match self.take_back(job_id, miner).await? {
                Some(id) => id,
                None => return Ok(Err(format!("job {job_id} is not assigned to you"))),
            },
        };
        let problem = {
            let job = &self.jobs[&job_id];
            let a = job.assignments.iter().find(|a| a.id == id);
            if r.miner != miner {
                Some(format!(
                    "the receipt names miner {}, but you are {miner}",
                    r.miner
                ))
            } else if let Err(e) = receipt.verify(&self.domain) {
                Some(format!("the receipt's signature: {e}"))
            } else if r.specHash != job.row.spec_hash || r.hub != self.hub {
                Some("the receipt's spec hash or hub does not match the assignment".to_owned())
            } else if a.is_some_and(|a| r.amountCharged > a.max_charge) {
                Some(format!(
                    "the receipt charges {} beyond the assignment's maximum",
                    r.amountCharged
                ))
            } else if !self.store.job_has_blob(job_id, r.outputHash).await? {
                Some(format!(
                    "no output archive with hash {} was uploaded",
                    r.outputHash
                ))
            } else {
                None
            }
        };
        if let Some(problem) = problem {
            self.end_assignment(
                job_id,
                &id,
                AssignmentState::Failed,
                &problem,
                Some(MinerOutcome::Failed),
            )
            .await?;
            return Ok(Err(problem));
        }
        self.set_assignment(job_id, &id, AssignmentState::Finished, None, Some(&receipt))
            .await?;
        self.orphans.remove(&id);
        let Some(job) = self.jobs.get(&job_id) else {
            return Ok(Ok(()));
        };
        self.scheduler.release(&miner, &job.row.spec.resources);
        tracing::info!(job = %job_id, %miner, output = %r.outputHash, exit = r.exitCode, "receipt accepted");
        let k = usize::from(job.row.spec.replicas);
        let groups = job.groups();
        let cancelling = job.cancelling.is_some();
        if let Some((hash, group)) = groups.first()
            && group.len() >= k
        {
            let (hash, winners) = (*hash, group.iter().map(|a| a.miner).collect::<Vec<_>>());
            let losers: Vec<Address> = groups[1..]
                .iter()
                .flat_map(|(_, g)| g.iter().map(|a| a.miner))
                .collect();
            for m in winners {
                self.store
                    .record_outcome(m, MinerOutcome::Completed)
                    .await?;
            }
            for m in losers {
                self.store
                    .record_outcome(m, MinerOutcome::Disagreed)
                    .await?;
            }
            if let Some(failure) = failure {
                // Performed runs whose output was over its limit: the job
                // has failed by its own doing, and the runs are paid (the
                // buyer had their logs) on the receipts that agree on the
                // note replacing the output.
                let why = format!(
                    "the job cannot run: {failure} (the run was performed and is paid; the rest is refunded)"
                );
                self.finish_job(job_id, JobState::Failed, Some(&why), Some(hash))
                    .await?;
            } else if cancelling {
                // The stopped runs agree (on their empty output): the time
                // they used is settled on their receipts, the rest refunded.
                self.finish_job(
                    job_id,
                    JobState::Cancelled,
                    Some("cancelled by the buyer; the time the runs used is paid"),
                    Some(hash),
                )
                .await?;
            } else {
                self.finish_job(job_id, JobState::Completed, None, Some(hash))
                    .await?;
            }
        } else if cancelling {
            self.end_cancelling_if_done(job_id).await?;
        } else if job.needed() > 0 {
            self.queue.push(job.row.buyer, job_id);
        }
        Ok(Ok(()))
    }

    /// Moves a job to a final state, cancelling its live assignments.
    async fn finish_job(
        &mut self,
        job_id: B256,
        to: JobState,
        why: Option<&str>,
        output: Option<B256>,
    ) -> Result<()> {
        let from = [JobState::Queued, JobState::Running];
        if !self
            .store
            .set_job_state(job_id, &from, to, why, output)
            .await?
        {
            return Ok(());
        }
        let Some(job) = self.jobs.remove(&job_id) else {
            return Ok(());
        };
        self.queue.remove(&job.row.buyer, &job_id);
        for a in job.live() {
            self.store
                .set_assignment_state(
                    &a.id,
                    &[AssignmentState::Assigned, AssignmentState::Running],
                    AssignmentState::Cancelled,
                    Some(why.unwrap_or("the job is over")),
                    None,
                )
                .await?;
            self.orphans.remove(&a.id);
            self.scheduler.release(&a.miner, &job.row.spec.resources);
            if let Some(s) = self.sessions.get(&a.miner) {
                let _ = s.tx.send(HubMessage::Cancel {
                    job_id,
                    reason: why.unwrap_or("the job is over").to_owned(),
                });
            }
        }
        self.metrics.finished(to);
        tracing::info!(job = %job_id, state = to.as_str(), why, "job ended");
        Ok(())
    }

    /// A cancelling job whose runs have all reported (or ended) without k
    /// agreeing receipts ends cancelled, and its escrow is released.
    async fn end_cancelling_if_done(&mut self, job_id: B256) -> Result<()> {
        let done = self
            .jobs
            .get(&job_id)
            .is_some_and(|j| j.cancelling.is_some() && j.live().count() == 0);
        if done {
            self.finish_job(
                job_id,
                JobState::Cancelled,
                Some("cancelled by the buyer; the stopped runs could not be settled together"),
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn cancel(&mut self, job_id: B256) -> Result<std::result::Result<(), String>> {
        let Some(job) = self.jobs.get_mut(&job_id) else {
            return Ok(Err(format!("job {job_id} is not running or queued")));
        };
        if job.cancelling.is_some() {
            return Ok(Ok(()));
        }
        let running: Vec<(String, Address)> = job
            .live()
            .filter(|a| job.started.contains_key(&a.id))
            .map(|a| (a.id.clone(), a.miner))
            .collect();
        if !running.is_empty() {
            // Runs are going: they are stopped, and the time they used is
            // paid from their receipts (else the buyer could take the logs
            // and cancel the bill). Replicas not yet started just end.
            let until = self
                .wall
                .unix_now()
                .saturating_add(self.config.assignment_grace.as_secs());
            job.cancelling = Some(until);
            let waiting: Vec<(String, Address)> = job
                .live()
                .filter(|a| !job.started.contains_key(&a.id))
                .map(|a| (a.id.clone(), a.miner))
                .collect();
            self.queue.remove(&job.row.buyer, &job_id);
            for (_, miner) in &running {
                if let Some(s) = self.sessions.get(miner) {
                    let _ = s.tx.send(HubMessage::Cancel {
                        job_id,
                        reason: "cancelled by the buyer: report the time used".into(),
                    });
                }
            }
            for (id, miner) in waiting {
                self.end_assignment(
                    job_id,
                    &id,
                    AssignmentState::Cancelled,
                    "cancelled by the buyer before it started",
                    None,
                )
                .await?;
                if let Some(s) = self.sessions.get(&miner) {
                    let _ = s.tx.send(HubMessage::Cancel {
                        job_id,
                        reason: "cancelled by the buyer".into(),
                    });
                }
            }
            tracing::info!(job = %job_id, running = running.len(), "cancelling: stopping the runs");
            return Ok(Ok(()));
        }
        self.finish_job(
            job_id,
            JobState::Cancelled,
            Some("cancelled by the buyer"),
            None,
        )
        .await?;
        Ok(Ok(()))
    }

    fn quote(&self, spec: &fog_protocol::JobSpec) -> Quote {
        use fog_protocol::U256;
        use fog_protocol::charge::BPS;
        let k = usize::from(spec.replicas.max(1));
        let costs = self.scheduler.costs(spec, fog_protocol::clock::unix_now());
        let (capable_miners, largest_offer) = self.scheduler.capable(spec);
        let per_replica = costs.get(k - 1).copied().unwrap_or(U256::ZERO);
        let miners = per_replica * U256::from(k);
        let fee = U256::from(self.config.fee_bps);
        let suggested = miners + (miners * fee).div_ceil(U256::from(BPS));
        Quote {
            fitting_miners: costs.len() as u64,
            capable_miners,
            largest_offer,
            replicas: spec.replicas,
            enough_miners: costs.len() >= k,
            per_replica,
            fee_bps: self.config.fee_bps,
            suggested_max_payment: suggested,
            max_charge_per_replica: max_charge_per_replica(
                spec.maxPayment,
                self.config.fee_bps,
                spec.replicas,
            ),
        }
    }

    fn update_gauges(&self) {
        self.metrics
            .miners_connected
            .set(i64::try_from(self.sessions.len()).unwrap_or(i64::MAX));
        self.metrics
            .queue_depth
            .set(i64::try_from(self.queue.len()).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use fog_protocol::clock::ManualClock;
    use fog_protocol::wire::PriceRate;
    use fog_protocol::{JobSpec, Resources};
    use std::sync::Arc;

    const T0: u64 = 1_000_000;
    const MAX_DURATION: u64 = 100;
    const GRACE: u64 = 30;
    const PREPARE: u64 = 600;

    struct Rig {
        engine: Engine,
        /// The machine's clock: run limits.
        clock: Arc<ManualClock>,
        /// The chain's clock: deadlines.
        chain: Arc<ManualClock>,
        miner: Address,
        to_miner: mpsc::UnboundedReceiver<HubMessage>,
        job_id: B256,
    }

    /// An engine on an in-memory store, driven by a manual chain clock, with
    /// one miner and one job assigned to it.
    async fn rig() -> Rig {
        let store = Store::open("sqlite::memory:").await.unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let chain = Arc::new(ManualClock::new(T0));
        let signer = PrivateKeySigner::random();
        let domain = alloy::sol_types::eip712_domain! { name: "test", version: "1", };
        let mut engine = Engine::new(
            store.clone(),
            signer.clone(),
            domain,
            signer.address(),
            EngineConfig {
                miner_timeout: Duration::from_secs(3_600),
                max_reassignments: 3,
                assignment_grace: Duration::from_secs(GRACE),
                prepare_timeout: Duration::from_secs(PREPARE),
                fee_bps: 0,
                signer_version: 0,
            },
            Metrics::new(),
            Clocks {
                chain: chain.clone(),
                wall: clock.clone(),
            },
        );
        let spec = JobSpec {
            resources: Resources {
                cpuMillicores: 1_000,
                memoryBytes: 1 << 20,
                diskBytes: 1 << 20,
                gpuCount: 0,
            },
            maxDurationSecs: MAX_DURATION,
            replicas: 1,
            maxPayment: fog_protocol::U256::from(1_000_000u64),
            deadline: T0 + 10_000,
            ..Default::default()
        };
        let job_id = B256::repeat_byte(7);
        let buyer = PrivateKeySigner::random();
        let signature = alloy::signers::SignerSync::sign_hash_sync(&buyer, &B256::ZERO).unwrap();
        store
            .insert_job(job_id, buyer.address(), &spec, &signature)
            .await
            .unwrap();
        let miner = Address::repeat_byte(9);
        let (tx, to_miner) = mpsc::unbounded_channel();
        let offer = Offer {
            capacity: Resources {
                cpuMillicores: 2_000,
                memoryBytes: 1 << 30,
                diskBytes: 1 << 30,
                gpuCount: 0,
            },
            rate: PriceRate {
                per_core_hour: fog_protocol::U256::from(1u64),
                per_gib_hour: fog_protocol::U256::ZERO,
            },
            region: String::new(),
            labels: vec![],
            allows_network: false,
            available_until: None,
            runtime: None,
        };
        engine
            .handle(Event::MinerJoined {
                miner,
                conn: 1,
                offer,
                tx,
            })
            .await
            .unwrap();
        engine.handle(Event::JobQueued { job_id }).await.unwrap();
        let mut rig = Rig {
            engine,
            clock,
            chain,
            miner,
            to_miner,
            job_id,
        };
        assert!(
            matches!(rig.next(), Some(HubMessage::Assign { .. })),
            "the job is assigned"
        );
        rig.engine
            .handle(Event::Accepted { miner, job_id })
            .await
            .unwrap();
        rig
    }

    impl Rig {
        fn next(&mut self) -> Option<HubMessage> {
            // Skip the challenge/greeting traffic a session may carry.
            loop {
                if let m @ (HubMessage::Assign { .. } | HubMessage::Cancel { .. }) =
                    self.to_miner.try_recv().ok()?
                {
                    return Some(m);
                }
            }
        }

        async fn tick_at(&mut self, unix: u64) {
            self.clock.set(unix);
            self.engine.on_tick().await.unwrap();
        }

        async fn state(&self) -> AssignmentState {
            self.engine.store.assignments_of(self.job_id).await.unwrap()[0].state
        }
    }

    #[tokio::test]
    async fn preparing_has_its_own_allowance_and_the_run_limit_counts_from_the_start() {
        let mut rig = rig().await;
        // A long image pull: well past the job's max duration plus grace,
        // still within the preparation allowance.
        rig.tick_at(T0 + MAX_DURATION + GRACE + 200).await;
        assert_eq!(rig.state().await, AssignmentState::Running);
        assert!(rig.next().is_none(), "nothing cancelled");

        // The container starts: the run has its whole max duration from now.
        let started = T0 + PREPARE - 1;
        rig.clock.set(started);
        let (miner, job_id) = (rig.miner, rig.job_id);
        rig.engine
            .handle(Event::Started { miner, job_id })
            .await
            .unwrap();
        rig.tick_at(started + MAX_DURATION + GRACE).await;
        assert_eq!(rig.state().await, AssignmentState::Running, "at the limit");
        rig.tick_at(started + MAX_DURATION + GRACE + 1).await;
        assert_eq!(rig.state().await, AssignmentState::TimedOut);
        assert!(matches!(rig.next(), Some(HubMessage::Cancel { .. })));
    }

    #[tokio::test]
    async fn a_miner_that_never_starts_times_out_after_the_preparation_allowance() {
        let mut rig = rig().await;
        rig.tick_at(T0 + PREPARE).await;
        assert_eq!(rig.state().await, AssignmentState::Running);
        rig.tick_at(T0 + PREPARE + 1).await;
        assert_eq!(rig.state().await, AssignmentState::TimedOut);
        let error = rig.engine.store.assignments_of(rig.job_id).await.unwrap()[0]
            .error
            .clone()
            .unwrap_or_default();
        assert!(error.contains("timed out preparing"), "{error}");
    }

    #[tokio::test]
    async fn the_deadline_is_judged_by_the_chain_clock() {
        let mut rig = rig().await;
        let (miner, job_id) = (rig.miner, rig.job_id);
        rig.engine
            .handle(Event::Started { miner, job_id })
            .await
            .unwrap();
        // The machine's clock stands still; the chain's reaches the deadline.
        rig.chain.set(T0 + 10_000 - 1);
        rig.tick_at(T0).await;
        let job = rig.engine.store.job(job_id).await.unwrap().unwrap();
        assert!(!job.state.is_final(), "{:?}", job.state);
        rig.chain.set(T0 + 10_000);
        rig.tick_at(T0).await;
        let job = rig.engine.store.job(job_id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(
            job.error.unwrap_or_default().contains("deadline passed"),
            "says why"
        );
    }
}
