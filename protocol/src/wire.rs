//! Versioned messages between a hub and its miners (JSON over WebSocket).
//!
//! Every frame is an [`Envelope`] `{"v": 1, "msg": {"type": "...", ...}}`.
//! A peer reads the version first, so an old peer meeting a newer protocol
//! gets [`WireError::UnsupportedVersion`] rather than a confusing parse error.

use alloy::primitives::{Address, B256, Signature, U256};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::signing::{SignedAssignment, SignedReceipt};
use crate::types::{JobSpec, Resources};

/// The wire protocol version this build speaks.
pub const WIRE_VERSION: u16 = 1;

/// Largest frame a peer must accept; bigger frames are refused unread.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// The longest a miner waits between attempts to reach its hub again. A hub
/// that restarts keeps the assignments of absent miners this much longer
/// than its miner timeout, so a miner in the middle of its backoff is not
/// given up for lost.
pub const MAX_RECONNECT_DELAY: std::time::Duration = std::time::Duration::from_secs(10);

/// The `Upgrade` protocol of a miner's tunnel back to its hub
/// (`GET /v1/miner/tunnel/{tunnel}`): after `101 Switching Protocols` the
/// connection carries the bytes of one TCP connection to a service's port.
pub const TUNNEL_PROTOCOL: &str = "fog-tunnel";

/// Header a miner sends instead of upgrading when it cannot reach the
/// service's port: its value says why, and the hub answers the waiting
/// request with it at once.
pub const TUNNEL_ERROR_HEADER: &str = "x-fog-tunnel-error";

/// Where a miner dials back for tunnel `tunnel`.
pub fn tunnel_path(tunnel: B256) -> String {
    format!("/v1/miner/tunnel/{tunnel}")
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("frame of {0} bytes is larger than the {MAX_FRAME_BYTES} allowed")]
    TooLarge(usize),
    #[error("peer speaks wire protocol version {got}; this build speaks {WIRE_VERSION}")]
    UnsupportedVersion { got: u16 },
    #[error("malformed frame: {0}")]
    Malformed(#[from] serde_json::Error),
}

/// A message with its protocol version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<M> {
    pub v: u16,
    pub msg: M,
}

impl<M: Serialize> Envelope<M> {
    /// Wraps `msg` in the current version.
    pub fn new(msg: M) -> Self {
        Self {
            v: WIRE_VERSION,
            msg,
        }
    }

    /// The JSON frame.
    pub fn encode(&self) -> Result<String, WireError> {
        Ok(serde_json::to_string(self)?)
    }
}

/// Decodes a frame, checking size and version before the body.
pub fn decode<M: DeserializeOwned>(frame: &str) -> Result<M, WireError> {
    #[derive(Deserialize)]
    struct VersionOnly {
        v: u16,
    }
    if frame.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(frame.len()));
    }
    let VersionOnly { v } = serde_json::from_str(frame)?;
    if v != WIRE_VERSION {
        return Err(WireError::UnsupportedVersion { got: v });
    }
    let envelope: Envelope<M> = serde_json::from_str(frame)?;
    Ok(envelope.msg)
}

/// The text a miner signs (EIP-191 personal message) to prove its address
/// to a hub. Binding the hub and chain stops a login being replayed
/// elsewhere; the fresh nonce stops it being replayed later.
pub fn login_message(hub: Address, chain_id: u64, nonce: B256) -> String {
    format!("Fog miner login\nhub: {hub}\nchain: {chain_id}\nnonce: {nonce}")
}

/// The text a buyer signs (EIP-191 personal message) to log in to a hub's
/// API and get a short-lived token; bound to the hub, the chain and a fresh nonce.
pub fn buyer_login_message(hub: Address, chain_id: u64, nonce: B256) -> String {
    format!("Fog buyer login\nhub: {hub}\nchain: {chain_id}\nnonce: {nonce}")
}

/// Price a miner asks, in token base units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceRate {
    /// Per whole core per hour.
    pub per_core_hour: U256,
    /// Per GiB of memory per hour.
    pub per_gib_hour: U256,
}

impl PriceRate {
    /// The most a run with `resources` for `seconds` costs at this rate,
    /// rounded up so that a miner is never paid below its floor.
    pub fn cost(&self, resources: &Resources, seconds: u64) -> U256 {
        const MILLICORE_SECONDS_PER_CORE_HOUR: u64 = 1_000 * 3_600;
        const BYTE_SECONDS_PER_GIB_HOUR: u64 = (1 << 30) * 3_600;
        // Saturating: an absurd rate prices a job out rather than wrapping
        // round to a cheap one.
        let cpu = self
            .per_core_hour
            .saturating_mul(U256::from(resources.cpuMillicores))
            .saturating_mul(U256::from(seconds));
        let mem = self
            .per_gib_hour
            .saturating_mul(U256::from(resources.memoryBytes))
            .saturating_mul(U256::from(seconds));
        cpu.div_ceil(U256::from(MILLICORE_SECONDS_PER_CORE_HOUR))
            .saturating_add(mem.div_ceil(U256::from(BYTE_SECONDS_PER_GIB_HOUR)))
    }
}

/// What a miner offers the hub.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Offer {
    /// Capacity offered in total (not what is free right now).
    pub capacity: Resources,
    /// Price floor.
    pub rate: PriceRate,
    pub region: String,
    /// `key=value` labels.
    pub labels: Vec<String>,
    /// Whether the miner lets jobs reach the network when they ask.
    pub allows_network: bool,
    /// Unix time when the current availability window closes; `None` while
    /// the miner is available without end.
    pub available_until: Option<u64>,
    /// The container runtime jobs run under; absent from miners that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<RuntimeInfo>,
}

/// The placement label a miner carries for its isolation class
/// (`fog.isolation=gvisor`); a spec that lists it in `placement.labels` runs
/// only on such miners. Miners set it from their runtime; operators cannot.
pub const ISOLATION_LABEL: &str = "fog.isolation";

/// How strongly a miner's runtime isolates a job from the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// Namespaces and cgroups of the host kernel (runc), container root = host root.
    Container,
    /// The engine remaps container users to unprivileged host users (userns-remap).
    Userns,
    /// gVisor (`runsc`): a user-space kernel between the job and the host kernel.
    Gvisor,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Container => "container",
            Self::Userns => "userns",
            Self::Gvisor => "gvisor",
        }
    }

    /// The placement label that names this class (`fog.isolation=<class>`).
    pub fn label(self) -> String {
        format!("{ISOLATION_LABEL}={}", self.as_str())
    }
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Isolation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "container" => Ok(Self::Container),
            "userns" => Ok(Self::Userns),
            "gvisor" => Ok(Self::Gvisor),
            other => Err(format!(
                "unknown isolation {other:?}: one of container, userns, gvisor"
            )),
        }
    }
}

/// The runtime a miner's engine runs jobs with, as the miner found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeInfo {
    /// The engine's name for it (`runc`, `runsc`).
    pub name: String,
    /// What the runtime binary reports (`1.1.5+ds1`), or `unknown`.
    pub version: String,
    pub isolation: Isolation,
}

/// Standard stream a log chunk came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
}

/// Messages a miner sends to its hub.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum MinerMessage {
    /// First frame: who the miner claims to be.
    Hello { miner: Address, agent: String },
    /// Answer to [`HubMessage::Challenge`]: signature of [`login_message`].
    Login {
        #[serde(with = "crate::signature_hex")]
        signature: Signature,
    },
    /// Current offer; sent after login and whenever it changes.
    Offer { offer: Offer },
    /// Liveness and load.
    Heartbeat {
        seq: u64,
        free: Resources,
        running: Vec<B256>,
        /// Service segments whose containers this miner keeps running.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        services: Vec<B256>,
    },
    /// The miner took the assignment and is preparing it (image, inputs).
    Accepted { job_id: B256 },
    /// The container started: preparation is over and the job's max
    /// duration counts from now (image pulls never count against it).
    Started { job_id: B256 },
    /// The miner will not run the assignment.
    Rejected { job_id: B256, reason: String },
    /// A chunk of the container's output.
    Log {
        job_id: B256,
        stream: LogStream,
        data: String,
    },
    /// The job ran; its archive has been uploaded under `receipt.outputHash`.
    Finished {
        receipt: SignedReceipt,
        output_size: u64,
        /// Set when the job's output was over its limit (`output too large:
        /// N bytes, limit M`): the run was performed and its receipt is for
        /// it, but the archive is only the note saying so, and the job fails.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
    },
    /// A service segment's container is running and its port may be tried.
    ServiceStarted { job_id: B256 },
    /// A service segment's container is gone (it exited, could not start, or
    /// was stopped); `error` says why when it was not asked to stop.
    ServiceStopped {
        job_id: B256,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Answer to [`HubMessage::Usage`]: the segment's cumulative receipt.
    Usage { receipt: SignedReceipt },
    /// The miner is leaving: it takes nothing new, and asks for its service
    /// segments to be handed over to other miners before it stops them.
    Drain,
    /// The job could not be run to a receipt.
    Failed {
        job_id: B256,
        error: String,
        /// Whose fault: the job's own (another miner would fail it too) or
        /// this miner's. Absent from older miners: the miner's.
        #[serde(default)]
        fault: Fault,
    },
}

/// Whose fault a failed run was.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// The miner's (its engine, disk, network): another miner may succeed.
    #[default]
    Miner,
    /// The job's own (its image cannot be had, its spec or inputs are wrong,
    /// its output is over the limit): any miner would fail it the same way.
    Job,
}

/// Messages a hub sends to a miner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum HubMessage {
    /// Prove your address: sign [`login_message`] with these values.
    Challenge {
        hub: Address,
        chain_id: u64,
        nonce: B256,
    },
    /// Login accepted.
    Welcome {
        session: String,
        heartbeat_interval_ms: u64,
    },
    /// Run this job. Inputs are fetched from the hub by content hash.
    Assign {
        assignment: SignedAssignment,
        spec: Box<JobSpec>,
        /// A batched job's buyer authorisation: with it and its receipt the
        /// miner can claim the job on chain itself if the hub never commits it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth: Option<Box<crate::batch::SignedJobAuth>>,
    },
    /// Stop working on this job.
    Cancel { job_id: B256, reason: String },
    /// Keep this service running: one segment (`assignment.jobId`) of it,
    /// paid under `auth` per period the hub counts healthy.
    RunService {
        assignment: SignedAssignment,
        spec: Box<crate::service::ServiceSpec>,
        auth: Box<crate::batch::SignedJobAuth>,
    },
    /// Sign the segment's cumulative receipt for `periods` healthy periods.
    Usage { job_id: B256, periods: u64 },
    /// Stop the segment's container; the hub pays up to its last receipt.
    StopService { job_id: B256, reason: String },
    /// Open a tunnel to the segment's port: connect back to the hub at
    /// `/v1/miner/tunnel/{tunnel}` and carry bytes both ways.
    OpenTunnel { job_id: B256, tunnel: B256 },
    /// The hub refused the last frame, or is closing the session.
    Error { message: String },
}
