//! The miner agent (`fog-miner run`): a live session with one hub.
//!
//! It connects over WebSocket, proves its address by signing the hub's
//! challenge, sends its offer and heartbeats, and runs the assignments the
//! hub sends through the [`Runner`]: inputs fetched from the hub, output
//! archive uploaded back, signed receipt returned. Assignments are checked
//! against the hub's assignment signer as the chain's registry names it, so
//! the miner only works for assignments that settle.
//!
//! Jobs outlive connections: when the hub goes away the jobs keep running,
//! the agent reconnects with exponential backoff, and what they report
//! (receipts, failures) is delivered once a session is back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use fog_protocol::wire::{Envelope, Fault, HubMessage, MinerMessage, Offer, decode, login_message};
use fog_protocol::{Address, B256, JobSpec, SignedAssignment};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{RwLock, mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::admission::Conditions;
use crate::executor::RunOptions;
use crate::runner::{RunError, Runner};

/// What the agent needs besides the runner.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The hub's base URL, e.g. `http://127.0.0.1:8040`.
    pub hub_url: String,
    /// The hub's on-chain address (its HubWallet), if the operator pins it;
    /// otherwise the hub the URL answers for, as long as the registry has it active.
    pub expected_hub: Option<Address>,
    /// Ethereum JSON-RPC endpoint, to read the hub's registered signer.
    pub rpc_url: String,
    /// The HubRegistry proxy.
    pub registry: Address,
    /// Where fetched inputs are kept.
    pub work_dir: PathBuf,
    /// How long a stopping miner waits for its service segments to be
    /// handed over to other miners before it stops them anyway.
    pub drain_timeout: Duration,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("hub url {0:?} must start with http:// or https://")]
    BadUrl(String),
    #[error("rpc url {0:?} is not a URL")]
    BadRpc(String),
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("websocket: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("the hub closed the session")]
    Closed,
}

/// The session token the blob endpoints take, while a session lasts.
type Token = Arc<RwLock<Option<String>>>;

struct Shared {
    runner: Arc<Runner>,
    chain: alloy::providers::DynProvider,
    config: AgentConfig,
    http: reqwest::Client,
    token: Token,
    /// Messages for the hub from running jobs; they wait here across reconnects.
    outbox: mpsc::Sender<MinerMessage>,
    jobs: std::sync::Mutex<HashMap<B256, CancellationToken>>,
    /// Service segments (long-running containers) this miner runs.
    services: Arc<crate::services::Services>,
    /// Asked to stop: the hub hands this miner's services over; nothing new is taken.
    draining: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// Jobs this miner holds: admitted and not yet reported to the hub
    /// (running, uploading, or with a report waiting for a session).
    fn held_jobs(&self) -> Vec<B256> {
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }
}

fn ws_url(hub_url: &str) -> Result<String, AgentError> {
    let base = hub_url.trim_end_matches('/');
    if let Some(rest) = base.strip_prefix("http://") {
        Ok(format!("ws://{rest}/v1/miner/ws"))
    } else if let Some(rest) = base.strip_prefix("https://") {
        Ok(format!("wss://{rest}/v1/miner/ws"))
    } else {
        Err(AgentError::BadUrl(hub_url.to_owned()))
    }
}

/// Runs the agent until `shutdown` is cancelled.
pub async fn run(
    runner: Arc<Runner>,
    config: AgentConfig,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    let url = ws_url(&config.hub_url)?;
    let rpc = config
        .rpc_url
        .parse()
        .map_err(|_| AgentError::BadRpc(config.rpc_url.clone()))?;
    let chain = alloy::providers::Provider::erased(
        alloy::providers::ProviderBuilder::new().connect_http(rpc),
    );
    let (outbox, mut pending) = mpsc::channel(1_024);
    let shared = Arc::new(Shared {
        runner,
        chain,
        config,
        http: reqwest::Client::new(),
        token: Arc::default(),
        outbox,
        jobs: std::sync::Mutex::default(),
        services: Arc::default(),
        draining: std::sync::atomic::AtomicBool::new(false),
    });
    let stopped = drained(Arc::clone(&shared), shutdown);
    tokio::pin!(stopped);
    let reconnect = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(fog_protocol::wire::MAX_RECONNECT_DELAY)
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut delays = reconnect();
    // A report taken from the outbox whose sending failed: sent first next time.
    let mut unsent = None;
    loop {
        let result = tokio::select! {
            _ = &mut stopped => return Ok(()),
            r = session(&shared, &url, &mut pending, &mut unsent, &mut delays, &reconnect) => r,
        };
        *shared.token.write().await = None;
        if let Err(e) = result {
            tracing::warn!(hub = %shared.config.hub_url, error = %e, "hub session ended");
        }
        let delay = delays
            .next()
            .unwrap_or(fog_protocol::wire::MAX_RECONNECT_DELAY);
        tokio::select! {
            _ = &mut stopped => return Ok(()),
            _ = tokio::time::sleep(delay) => {}
        }
    }
}

/// Resolves when the agent may stop: at once when asked to and no service
/// segment runs here; otherwise once the hub has handed them all over to
/// other miners (draining), or after the drain timeout.
async fn drained(shared: Arc<Shared>, shutdown: CancellationToken) {
    use std::sync::atomic::Ordering;
    shutdown.cancelled().await;
    if shared.services.held().is_empty() {
        return;
    }
    shared.draining.store(true, Ordering::SeqCst);
    tracing::info!(
        segments = shared.services.held().len(),
        timeout = ?shared.config.drain_timeout,
        "draining: waiting for the hub to hand this miner's services over"
    );
    let until = tokio::time::Instant::now() + shared.config.drain_timeout;
    while !shared.services.held().is_empty() && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for job_id in shared.services.held() {
        tracing::warn!(segment = %job_id, "not handed over in time: stopping it");
        shared.services.stop(job_id);
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send(socket: &mut Socket, msg: MinerMessage) -> Result<(), SessionError> {
    let frame = Envelope::new(msg)
        .encode()
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    socket.send(Message::Text(frame.into())).await?;
    Ok(())
}

async fn receive(socket: &mut Socket) -> Result<HubMessage, SessionError> {
    loop {
        match socket.next().await {
            None | Some(Ok(Message::Close(_))) => return Err(SessionError::Closed),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => {
                return decode(&t).map_err(|e| SessionError::Protocol(e.to_string()));
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn session<B: Iterator<Item = Duration>>(
    shared: &Arc<Shared>,
    url: &str,
    pending: &mut mpsc::Receiver<MinerMessage>,
    unsent: &mut Option<MinerMessage>,
    delays: &mut B,
    reset: &impl Fn() -> B,
) -> Result<(), SessionError> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let runner = &shared.runner;
    let miner = runner.address();
    send(
        &mut socket,
        MinerMessage::Hello {
            miner,
            agent: format!("fog-miner/{}", env!("CARGO_PKG_VERSION")),
        },
    )
    .await?;
    let (hub, chain_id, nonce) = match receive(&mut socket).await? {
        HubMessage::Challenge {
            hub,
            chain_id,
            nonce,
        } => (hub, chain_id, nonce),
        HubMessage::Error { message } => return Err(SessionError::Protocol(message)),
        other => {
            return Err(SessionError::Protocol(format!(
                "expected a challenge, got {other:?}"
            )));
        }
    };
    let domain_chain = runner.domain().chain_id.map(|c| c.to::<u64>());
    if shared.config.expected_hub.is_some_and(|h| h != hub) || domain_chain != Some(chain_id) {
        return Err(SessionError::Protocol(format!(
            "the hub says it is {hub} on chain {chain_id}; this miner works for {:?} on chain {domain_chain:?}",
            shared.config.expected_hub
        )));
    }
    let hub_signer = registered_signer(shared, hub).await?;
    let signature = runner
        .sign_message(&login_message(hub, chain_id, nonce))
        .map_err(|e| SessionError::Protocol(e.to_string()))?;
    send(&mut socket, MinerMessage::Login { signature }).await?;
    let mut current_offer = offer(runner.policy(), chrono::Utc::now());
    send(
        &mut socket,
        MinerMessage::Offer {
            offer: current_offer.clone(),
        },
    )
    .await?;
    let (token, heartbeat_ms) = match receive(&mut socket).await? {
        HubMessage::Welcome {
            session,
            heartbeat_interval_ms,
        } => (session, heartbeat_interval_ms),
        HubMessage::Error { message } => return Err(SessionError::Protocol(message)),
        other => {
            return Err(SessionError::Protocol(format!(
                "expected welcome, got {other:?}"
            )));
        }
    };
    *shared.token.write().await = Some(token);
    *delays = reset();
    tracing::info!(hub = %shared.config.hub_url, "connected to the hub");
    if let Some(report) = unsent.take() {
        deliver(shared, &mut socket, report, unsent).await?;
    }

    let mut heartbeat = tokio::time::interval(Duration::from_millis(heartbeat_ms.max(100)));
    let mut seq = 0u64;
    let mut told_draining = false;
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                if !told_draining && shared.draining.load(std::sync::atomic::Ordering::SeqCst) {
                    told_draining = true;
                    send(&mut socket, MinerMessage::Drain).await?;
                }
                // The availability window moves: tell the hub when the offer changes.
                let now_offer = offer(runner.policy(), chrono::Utc::now());
                if now_offer != current_offer {
                    current_offer = now_offer;
                    send(&mut socket, MinerMessage::Offer { offer: current_offer.clone() }).await?;
                }
                seq += 1;
                let free = runner.capacity().free();
                let running = shared.held_jobs();
                let services = shared.services.held();
                send(&mut socket, MinerMessage::Heartbeat { seq, free, running, services }).await?;
            }
            out = pending.recv() => {
                if let Some(msg) = out {
                    deliver(shared, &mut socket, msg, unsent).await?;
                }
            }
            incoming = receive(&mut socket) => match incoming? {
                HubMessage::Assign { assignment, spec, auth } => {
                    let reply = take_assignment(shared, hub, hub_signer, assignment, *spec, auth.map(|a| *a));
                    send(&mut socket, reply).await?;
                }
                HubMessage::Cancel { job_id, reason } => {
                    tracing::info!(job = %job_id, reason, "the hub cancelled the job");
                    if let Some(cancel) = shared.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&job_id) {
                        cancel.cancel();
                    }
                }
                HubMessage::RunService { assignment, spec, auth } => {
                    let reply = match check_assignment(shared, hub, hub_signer, &assignment) {
                        Ok(()) if shared.draining.load(std::sync::atomic::Ordering::SeqCst) => MinerMessage::Rejected {
                            job_id: assignment.payload.jobId,
                            reason: "this miner is leaving".into(),
                        },
                        Ok(()) => shared.services.start(service_context(shared), assignment, *spec, *auth),
                        Err(reason) => MinerMessage::Rejected { job_id: assignment.payload.jobId, reason },
                    };
                    send(&mut socket, reply).await?;
                }
                HubMessage::Usage { job_id, periods } => {
                    match shared.services.usage(&service_context(shared), job_id, periods) {
                        Ok(reply) => send(&mut socket, reply).await?,
                        Err(e) => tracing::warn!(segment = %job_id, periods, error = e, "not signing usage"),
                    }
                }
                HubMessage::StopService { job_id, reason } => {
                    tracing::info!(segment = %job_id, reason, "the hub stops the service segment");
                    shared.services.stop(job_id);
                }
                HubMessage::OpenTunnel { job_id, tunnel } => {
                    let token = shared.token.read().await.clone();
                    shared.services.open_tunnel(&service_context(shared), token, job_id, tunnel);
                }
                HubMessage::Error { message } => tracing::warn!(message, "the hub reports an error"),
                other => tracing::warn!(?other, "unexpected message from the hub"),
            },
        }
    }
}

/// The hub's assignment signer as the registry holds it; the hub must be active.
async fn registered_signer(shared: &Shared, hub: Address) -> Result<Address, SessionError> {
    use fog_protocol::contracts::hub_registry::HubRegistry;
    let registry = HubRegistry::new(shared.config.registry, &shared.chain);
    let terms = (|| async { registry.hubTerms(hub).call().await })
        .retry(ExponentialBuilder::default().with_max_times(5))
        .await
        .map_err(|e| SessionError::Protocol(format!("reading hub {hub} from the registry: {e}")))?;
    let state = fog_protocol::contracts::HubState::from_code(terms.state);
    if state != fog_protocol::contracts::HubState::Active {
        return Err(SessionError::Protocol(format!(
            "hub {hub} is not active in the registry: it is {state}"
        )));
    }
    Ok(terms.signer)
}

/// Sends a message from a job; a report that cannot be sent is kept in
/// `unsent` for the next session, and a sent one releases its job.
async fn deliver(
    shared: &Shared,
    socket: &mut Socket,
    msg: MinerMessage,
    unsent: &mut Option<MinerMessage>,
) -> Result<(), SessionError> {
    let reported = match &msg {
        MinerMessage::Finished { receipt, .. } => Some(receipt.payload.jobId),
        MinerMessage::Failed { job_id, .. } => Some(*job_id),
        _ => None,
    };
    if let Err(e) = send(socket, msg.clone()).await {
        if reported.is_some() {
            *unsent = Some(msg);
        }
        return Err(e);
    }
    if let Some(job_id) = reported {
        shared
            .jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&job_id);
    }
    Ok(())
}

/// An assignment is this session's hub's, signed by its registered signer.
fn check_assignment(
    shared: &Shared,
    hub: Address,
    hub_signer: Address,
    signed: &SignedAssignment,
) -> Result<(), String> {
    if signed.payload.hub != hub {
        return Err(format!(
            "the assignment names hub {}, not this session's hub",
            signed.payload.hub
        ));
    }
    signed
        .verify_signed_by(shared.runner.domain(), hub_signer)
        .map_err(|e| format!("the assignment's signature: {e}"))
}

/// What a service segment needs from the agent.
fn service_context(shared: &Shared) -> crate::services::Context {
    crate::services::Context {
        runner: Arc::clone(&shared.runner),
        outbox: shared.outbox.clone(),
        work_dir: shared.config.work_dir.clone(),
        hub_url: shared.config.hub_url.clone(),
        http: shared.http.clone(),
    }
}

/// Admits an assignment and starts it, or says why not.
fn take_assignment(
    shared: &Arc<Shared>,
    hub: Address,
    hub_signer: Address,
    signed: SignedAssignment,
    spec: JobSpec,
    auth: Option<fog_protocol::batch::SignedJobAuth>,
) -> MinerMessage {
    let job_id = signed.payload.jobId;
    let reject = |reason: String| MinerMessage::Rejected { job_id, reason };
    if let Err(reason) = check_assignment(shared, hub, hub_signer, &signed) {
        return reject(reason);
    }
    let at = Conditions {
        now: chrono::Utc::now(),
        chain_now: shared.runner.executor().chain_now(),
        load_per_core: crate::host::load_per_core().unwrap_or(0.0),
    };
    let kept_assignment = signed.clone();
    let admitted = match shared.runner.admit(signed.payload, spec.clone(), at) {
        Ok(a) => a,
        Err(e) => return reject(e.to_string()),
    };
    let cancel = CancellationToken::new();
    shared
        .jobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(job_id, cancel.clone());
    let task_shared = Arc::clone(shared);
    tokio::spawn(async move {
        let report = match run_job(&task_shared, admitted, &spec, cancel).await {
            Ok(MinerMessage::Finished {
                receipt,
                output_size,
                failure,
            }) => {
                // Kept before it is reported: with it the miner can settle by itself.
                let kept = crate::settle::KeptReceipt {
                    assignment: kept_assignment,
                    receipt: receipt.clone(),
                    replicas: spec.replicas,
                    auth,
                };
                if let Err(e) = crate::settle::keep(&task_shared.config.work_dir, &kept) {
                    tracing::error!(job = %job_id, error = %e, "keeping the receipt");
                }
                MinerMessage::Finished {
                    receipt,
                    output_size,
                    failure,
                }
            }
            Ok(msg) => msg,
            Err((error, fault)) => {
                tracing::warn!(job = %job_id, %error, ?fault, "job failed");
                MinerMessage::Failed {
                    job_id,
                    error,
                    fault,
                }
            }
        };
        // Waits for a session if there is none. The job stays this miner's
        // (listed in heartbeats) until the report has been sent.
        let _ = task_shared.outbox.send(report).await;
    });
    MinerMessage::Accepted { job_id }
}

/// A request to the hub retried with backoff while the hub is away or busy;
/// a 4xx answer is final.
async fn with_retries<T, F, Fut>(what: &str, f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    f.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(30),
    )
    .when(|e| matches!(e, Attempt::Again(_)))
    .await
    .map_err(|e| match e {
        Attempt::Again(m) | Attempt::Final(m) => format!("{what}: {m}"),
    })
}

#[derive(Debug)]
enum Attempt {
    Again(String),
    Final(String),
}

async fn bearer(token: &Token) -> Result<String, Attempt> {
    token
        .read()
        .await
        .clone()
        .ok_or_else(|| Attempt::Again("no session with the hub".into()))
}

fn classify(status: reqwest::StatusCode, body: String) -> Attempt {
    if status.is_client_error() && status != reqwest::StatusCode::UNAUTHORIZED {
        Attempt::Final(format!("{status}: {body}"))
    } else {
        // 401: the session token changed with a reconnect; 5xx: the hub's trouble.
        Attempt::Again(format!("{status}: {body}"))
    }
}

async fn fetch_input(shared: &Shared, hash: B256, into: &Path) -> Result<(), String> {
    let url = format!(
        "{}/v1/miner/blobs/{hash}",
        shared.config.hub_url.trim_end_matches('/')
    );
    with_retries("fetching an input", || async {
        let token = bearer(&shared.token).await?;
        let response = shared
            .http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Attempt::Again(e.to_string()))?;
        if !response.status().is_success() {
            let status = response.status();
            return Err(classify(status, response.text().await.unwrap_or_default()));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Attempt::Again(e.to_string()))?;
        tokio::fs::write(into, &bytes)
            .await
            .map_err(|e| Attempt::Final(format!("{}: {e}", into.display())))
    })
    .await
}

async fn upload_output(shared: &Shared, job_id: B256, archive: &Path) -> Result<(), String> {
    let url = format!(
        "{}/v1/miner/jobs/{job_id}/output",
        shared.config.hub_url.trim_end_matches('/')
    );
    with_retries("uploading the output", || async {
        let token = bearer(&shared.token).await?;
        let file = tokio::fs::File::open(archive)
            .await
            .map_err(|e| Attempt::Final(format!("{}: {e}", archive.display())))?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let response = shared
            .http
            .put(&url)
            .bearer_auth(token)
            .body(body)
            .send()
            .await
            .map_err(|e| Attempt::Again(e.to_string()))?;
        if response.status().is_success() {
            Ok(())
        } else {
            let status = response.status();
            Err(classify(status, response.text().await.unwrap_or_default()))
        }
    })
    .await
}

/// Fetches the inputs, runs the job, uploads the output; the receipt to send.
async fn run_job(
    shared: &Arc<Shared>,
    admitted: crate::runner::Admitted,
    spec: &JobSpec,
    cancel: CancellationToken,
) -> Result<MinerMessage, (String, Fault)> {
    let miners = |e: String| (e, Fault::Miner);
    let job_id = admitted.assignment().jobId;
    let inputs_dir = shared.config.work_dir.join("inputs");
    tokio::fs::create_dir_all(&inputs_dir)
        .await
        .map_err(|e| miners(format!("{}: {e}", inputs_dir.display())))?;
    let mut inputs = HashMap::new();
    for input in &spec.inputs {
        let path = inputs_dir.join(alloy::hex::encode(input.contentHash));
        if !path.is_file() {
            fetch_input(shared, input.contentHash, &path)
                .await
                .map_err(miners)?;
        }
        inputs.insert(input.contentHash, path);
    }
    let (log_tx, mut log_rx) = mpsc::channel::<crate::executor::LogChunk>(64);
    let outbox = shared.outbox.clone();
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
    let started_outbox = shared.outbox.clone();
    let tell_started = tokio::spawn(async move {
        if started_rx.await.is_ok() {
            let _ = started_outbox.send(MinerMessage::Started { job_id }).await;
        }
    });
    let options = RunOptions {
        logs: Some(log_tx),
        cancel: cancel.clone(),
        started: Some(started_tx),
    };
    let finished = shared.runner.run(admitted, &inputs, options).await;
    let _ = tell_started.await;
    let _ = forward.await;
    let finished = finished.map_err(|e: RunError| (e.to_string(), e.fault()))?;
    let archive = finished.outcome.output_archive.clone();
    if cancel.is_cancelled() {
        // Stopped mid-run: the receipt (empty output, the time used) goes to
        // the hub, which settles it if the buyer's cancel stopped the job, and
        // refuses it if the hub itself took the replica away.
        tracing::info!(job = %job_id, charged = %finished.receipt.payload.amountCharged, "stopped by the hub: reporting the time used");
    }
    let uploaded = upload_output(shared, job_id, &archive).await;
    let _ = tokio::fs::remove_file(&archive).await;
    uploaded.map_err(miners)?;
    Ok(MinerMessage::Finished {
        output_size: finished.outcome.output.size,
        failure: finished.outcome.output_over_limit.clone(),
        receipt: finished.receipt,
    })
}

/// The offer this miner makes now, from its policy.
pub fn offer(policy: &crate::config::Policy, now: chrono::DateTime<chrono::Utc>) -> Offer {
    Offer {
        capacity: policy.capacity.clone(),
        rate: policy.rate.clone(),
        region: policy.region.clone(),
        labels: policy.labels.clone(),
        allows_network: policy.allow_network,
        // Closed now: available until now, i.e. not at all; always open: None.
        available_until: if policy.availability.is_open(now) {
            policy.availability.open_until(now)
        } else {
            Some(now)
        }
        .map(|t| u64::try_from(t.timestamp()).unwrap_or(0)),
        runtime: policy.runtime.clone(),
    }
}
