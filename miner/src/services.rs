//! Service segments on this miner (docs/services.md).
//!
//! A segment is one long-running container of a service, run through the same
//! [`Runner`] and sandbox as a job (no capabilities, read-only root, limits,
//! no network unless the spec asks and the miner allows it) until the hub
//! stops it. Traffic reaches it only through tunnels the hub asks for: the
//! miner dials back to the hub ([`fog_protocol::wire::tunnel_path`]) and
//! connects to the declared port *inside the container's own network
//! namespace* (loopback there), so the container needs no interface the host
//! or other containers could reach, and no port is published on the host.
//!
//! The miner signs a cumulative receipt whenever the hub counts another
//! healthy period, never for more periods than the container has run (plus
//! the period in progress), and keeps the latest one with the buyer's
//! authorisation: if the hub never commits it, the miner claims it on chain
//! like any batched job (`crate::settle`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fog_protocol::batch::SignedJobAuth;
use fog_protocol::service::{ServiceSpec, miner_charge, usage_hash};
use fog_protocol::wire::{MinerMessage, TUNNEL_ERROR_HEADER, TUNNEL_PROTOCOL, tunnel_path};
use fog_protocol::{B256, Receipt, SignedAssignment};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admission::Conditions;
use crate::executor::RunOptions;
use crate::runner::Runner;

/// How long connecting to a service's port may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The segments this miner runs.
#[derive(Debug, Default)]
pub struct Services {
    segments: Mutex<HashMap<B256, Segment>>,
}

#[derive(Debug)]
struct Segment {
    spec: Arc<ServiceSpec>,
    assignment: SignedAssignment,
    auth: SignedJobAuth,
    cancel: CancellationToken,
    /// The image's id, once it is ready.
    image_id: Option<B256>,
    /// When the container started: Unix time (for the receipt) and the
    /// machine's monotonic clock (for how long it has run).
    started_at: Option<(u64, std::time::Instant)>,
}

/// What a segment needs from the agent.
#[derive(Clone, Debug)]
pub struct Context {
    pub runner: Arc<Runner>,
    pub outbox: mpsc::Sender<MinerMessage>,
    pub work_dir: PathBuf,
    pub hub_url: String,
    pub http: reqwest::Client,
}

impl Services {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<B256, Segment>> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The segments whose containers this miner keeps (for heartbeats).
    pub fn held(&self) -> Vec<B256> {
        self.lock().keys().copied().collect()
    }

    /// Admits a segment whose assignment the agent has checked, and starts
    /// its container; the answer is `Accepted` or `Rejected`.
    pub fn start(
        self: &Arc<Self>,
        ctx: Context,
        assignment: SignedAssignment,
        spec: ServiceSpec,
        auth: SignedJobAuth,
    ) -> MinerMessage {
        let job_id = assignment.payload.jobId;
        let reject = |reason: String| MinerMessage::Rejected { job_id, reason };
        let spec_hash = spec.spec_hash();
        let a = &auth.payload;
        if a.specHash != spec_hash || a.hub != assignment.payload.hub {
            return reject("the authorisation is not for this service at this hub".into());
        }
        if self.lock().contains_key(&job_id) {
            return reject(format!("segment {job_id} already runs here"));
        }
        if ctx.runner.executor().runtime().isolation == fog_protocol::wire::Isolation::Gvisor {
            // gVisor's network stack lives inside its sandbox: the port cannot
            // be reached from the container's namespace on the host.
            return reject("services do not run under gVisor on this miner".into());
        }
        let now = ctx.runner.executor().chain_now();
        let job = spec.segment_job(a, assignment.payload.maxCharge, now);
        let at = Conditions {
            now: chrono::Utc::now(),
            chain_now: now,
            load_per_core: crate::host::load_per_core().unwrap_or(0.0),
        };
        let admitted =
            match ctx
                .runner
                .admit_service(assignment.payload.clone(), &spec, job.clone(), at)
            {
                Ok(a) => a,
                Err(e) => return reject(e.to_string()),
            };
        let cancel = CancellationToken::new();
        self.lock().insert(
            job_id,
            Segment {
                spec: Arc::new(spec),
                assignment,
                auth,
                cancel: cancel.clone(),
                image_id: None,
                started_at: None,
            },
        );
        let services = Arc::clone(self);
        tokio::spawn(async move {
            let error = services.run(&ctx, job_id, &job, admitted, cancel).await;
            services.lock().remove(&job_id);
            if let Some(error) = &error {
                tracing::warn!(segment = %job_id, error, "service segment ended");
            } else {
                tracing::info!(segment = %job_id, "service segment stopped");
            }
            let _ = ctx
                .outbox
                .send(MinerMessage::ServiceStopped { job_id, error })
                .await;
        });
        MinerMessage::Accepted { job_id }
    }

    /// Runs the container until it exits or is stopped; `Some(why)` when it
    /// ended without being asked to.
    async fn run(
        self: &Arc<Self>,
        ctx: &Context,
        job_id: B256,
        job: &fog_protocol::JobSpec,
        admitted: crate::runner::Admitted,
        cancel: CancellationToken,
    ) -> Option<String> {
        let image = match job.image_ref() {
            Ok(r) => ctx.runner.executor().ensure_image(&r).await,
            Err(e) => return Some(e.to_string()),
        };
        match image {
            Ok(image) => {
                if let Some(s) = self.lock().get_mut(&job_id) {
                    s.image_id = Some(image.id);
                }
            }
            Err(e) => return Some(e.to_string()),
        }
        let (log_tx, mut log_rx) = mpsc::channel::<crate::executor::LogChunk>(64);
        let outbox = ctx.outbox.clone();
        let forward = tokio::spawn(async move {
            while let Some(chunk) = log_rx.recv().await {
                let msg = MinerMessage::Log {
                    job_id,
                    stream: chunk.stream,
                    data: String::from_utf8_lossy(&chunk.data).into_owned(),
                };
                let _ = outbox.send(msg).await;
            }
        });
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let services = Arc::clone(self);
        let started_outbox = ctx.outbox.clone();
        let clock_runner = Arc::clone(&ctx.runner);
        let tell_started = tokio::spawn(async move {
            if started_rx.await.is_ok() {
                if let Some(s) = services.lock().get_mut(&job_id) {
                    s.started_at = Some((
                        clock_runner.executor().chain_now(),
                        std::time::Instant::now(),
                    ));
                }
                let _ = started_outbox
                    .send(MinerMessage::ServiceStarted { job_id })
                    .await;
            }
        });
        let options = RunOptions {
            logs: Some(log_tx),
            cancel: cancel.clone(),
            started: Some(started_tx),
        };
        let ran = ctx.runner.run(admitted, &HashMap::new(), options).await;
        let _ = tell_started.await;
        let _ = forward.await;
        match ran {
            Ok(finished) => {
                // A service has no output: the archive of its (empty) output
                // directory is not needed.
                let _ = tokio::fs::remove_file(&finished.outcome.output_archive).await;
                if cancel.is_cancelled() {
                    None
                } else if finished.outcome.timed_out {
                    Some("its authorisation's deadline came".into())
                } else {
                    Some(format!(
                        "the container exited with code {}{}",
                        finished.outcome.exit_code,
                        if finished.outcome.oom_killed {
                            " (out of memory)"
                        } else {
                            ""
                        }
                    ))
                }
            }
            Err(e) => Some(e.to_string()),
        }
    }

    /// Stops a segment's container.
    pub fn stop(&self, job_id: B256) {
        if let Some(s) = self.lock().get(&job_id) {
            s.cancel.cancel();
        }
    }

    /// Signs (and keeps) the segment's cumulative receipt for `periods`
    /// healthy periods, as long as the container has been running that long.
    pub fn usage(&self, ctx: &Context, job_id: B256, periods: u64) -> Result<MinerMessage, String> {
        let (receipt, kept) = {
            let segments = self.lock();
            let s = segments
                .get(&job_id)
                .ok_or_else(|| format!("segment {job_id} does not run here"))?;
            let (Some((started_at, started)), Some(image_id)) = (s.started_at, s.image_id) else {
                return Err(format!("segment {job_id} has not started"));
            };
            let period = u64::from(s.spec.periodSecs);
            let ran_secs = started.elapsed().as_secs();
            // The period in progress may be counted: the hub's clock and
            // ours differ by a little.
            if periods > ran_secs / period + 1 {
                return Err(format!(
                    "asked to sign {periods} periods; the container has run {ran_secs} s"
                ));
            }
            let amount = miner_charge(&s.spec, periods, s.auth.payload.maxFeeBps)
                .min(s.assignment.payload.maxCharge);
            let receipt = Receipt {
                jobId: job_id,
                specHash: s.assignment.payload.specHash,
                hub: s.assignment.payload.hub,
                miner: ctx.runner.address(),
                imageId: image_id,
                outputHash: usage_hash(job_id, periods),
                exitCode: 0,
                startedAt: started_at,
                endedAt: started_at.saturating_add(periods.saturating_mul(period)),
                cpuTimeMs: 0,
                peakMemoryBytes: 0,
                amountCharged: amount,
            };
            let receipt = ctx
                .runner
                .sign_receipt(receipt)
                .map_err(|e| e.to_string())?;
            let kept = crate::settle::KeptReceipt {
                assignment: s.assignment.clone(),
                receipt: receipt.clone(),
                replicas: 1,
                auth: Some(s.auth.clone()),
            };
            (receipt, kept)
        };
        // Kept before it is sent: with it the miner is paid without the hub.
        crate::settle::keep(&ctx.work_dir, &kept).map_err(|e| e.to_string())?;
        Ok(MinerMessage::Usage { receipt })
    }

    /// Opens tunnel `tunnel` to the segment's port: connects inside the
    /// container, then dials back to the hub and carries bytes both ways.
    pub fn open_tunnel(&self, ctx: &Context, token: Option<String>, job_id: B256, tunnel: B256) {
        let port = self.lock().get(&job_id).map(|s| s.spec.port);
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let name = ctx.runner.executor().container_name(job_id);
            let target = match port {
                Some(port) => connect_in_container(&ctx, &name, port).await,
                None => Err(format!("segment {job_id} does not run here")),
            };
            let url = format!(
                "{}{}",
                ctx.hub_url.trim_end_matches('/'),
                tunnel_path(tunnel)
            );
            let mut request = ctx.http.get(url);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let mut container = match target {
                Ok(stream) => stream,
                Err(why) => {
                    tracing::debug!(segment = %job_id, why, "tunnel refused");
                    let _ = request.header(TUNNEL_ERROR_HEADER, why).send().await;
                    return;
                }
            };
            let response = request
                .header(reqwest::header::CONNECTION, "upgrade")
                .header(reqwest::header::UPGRADE, TUNNEL_PROTOCOL)
                .send()
                .await;
            let mut upgraded = match response {
                Ok(r) if r.status() == reqwest::StatusCode::SWITCHING_PROTOCOLS => {
                    match r.upgrade().await {
                        Ok(u) => u,
                        Err(e) => {
                            tracing::debug!(error = %e, "tunnel upgrade failed");
                            return;
                        }
                    }
                }
                Ok(r) => {
                    tracing::debug!(status = %r.status(), "the hub refused the tunnel");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "dialling the hub for a tunnel");
                    return;
                }
            };
            let _ = tokio::io::copy_bidirectional(&mut upgraded, &mut container).await;
        });
    }
}

/// A TCP connection to `port` on the loopback of container `name`'s own
/// network namespace. The socket is made by a short-lived thread that has
/// entered that namespace; a socket stays in the namespace it was made in.
async fn connect_in_container(
    ctx: &Context,
    name: &str,
    port: u16,
) -> Result<tokio::net::TcpStream, String> {
    let inspected = ctx
        .runner
        .executor()
        .docker()
        .inspect_container(name, None)
        .await
        .map_err(|e| format!("the container is not there: {e}"))?;
    let pid = inspected
        .state
        .and_then(|s| s.pid)
        .filter(|pid| *pid > 0)
        .ok_or("the container is not running")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let connected = (|| -> std::io::Result<std::net::TcpStream> {
            use std::os::fd::AsFd;
            let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
            rustix::thread::move_into_link_name_space(
                ns.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )?;
            let addr = std::net::SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, port));
            let stream = std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
            stream.set_nonblocking(true)?;
            stream.set_nodelay(true)?;
            Ok(stream)
        })();
        let _ = tx.send(connected);
    });
    let stream = rx
        .await
        .map_err(|_| "the connecting thread died".to_string())?
        .map_err(|e| format!("connecting to port {port} in the container: {e}"))?;
    tokio::net::TcpStream::from_std(stream).map_err(|e| e.to_string())
}
