//! The hub's HTTP API: every request and response body, in one home, used by
//! the hub's handlers and by the `fog` CLI. The OpenAPI document
//! (`hub/openapi.json`) is generated from these types.
//!
//! JSON names are camelCase; amounts are strings of token base units
//! (0x-hex as the hub writes them, decimal accepted); hashes and addresses are 0x-hex. Every error, whatever its status,
//! has one body: [`ErrorBody`] `{"error": {"code", "message"}}`.

use std::fmt;
use std::str::FromStr;

use alloy::primitives::{Address, B256, Signature, U256};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::signing::SignedReceipt;
use crate::types::JobSpec;

/// Defines a state enum: its JSON and stored text (snake_case), `as_str`, `FromStr`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// Where a job is.
    JobState {
        Queued = "queued",
        Running = "running",
        Completed = "completed",
        Failed = "failed",
        Cancelled = "cancelled",
    }
);

impl JobState {
    /// No further change will happen to a job in this state.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

text_enum!(
    /// Where one replica's run on one miner is.
    AssignmentState {
        Assigned = "assigned",
        Running = "running",
        Finished = "finished",
        Failed = "failed",
        Lost = "lost",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
    }
);

impl AssignmentState {
    /// Holds the replica: no other assignment of it may exist meanwhile.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Assigned | Self::Running)
    }
}

text_enum!(
    /// Where a completed job's settlement on chain is.
    SettlementState {
        /// A transaction was sent.
        Pending = "pending",
        Settled = "settled",
        /// The buyer refunded the escrow first.
        Refunded = "refunded",
        /// The job failed or was cancelled: the hub released the escrow to the buyer.
        Released = "released",
        /// The escrow refused the settlement.
        Failed = "failed",
    }
);

impl SettlementState {
    /// Nothing more will happen on chain.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

// ---- errors -------------------------------------------------------------------

/// Every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unprocessable`, `too_early`, `rate_limited`, `quota_exceeded`,
    /// `bad_gateway`, `unavailable`, `internal`.
    pub code: String,
    /// What was wrong and what to do about it.
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

// ---- hub and login -------------------------------------------------------------

/// `GET /v1/hub`: who this hub is on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HubInfo {
    /// The hub's address in the registry.
    #[schema(value_type = schema::Address)]
    pub hub: Address,
    pub chain_id: u64,
    /// The JobEscrow proxy: the EIP-712 verifying contract.
    #[schema(value_type = schema::Address)]
    pub escrow: Address,
    /// The hub's commission in basis points.
    pub fee_bps: u16,
    /// The batched settlement path, when this hub offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchTerms>,
}

/// How a hub takes batched jobs (docs/settlement.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchTerms {
    /// The BatchSettlement proxy: the JobAuth's EIP-712 verifying contract.
    #[schema(value_type = schema::Address)]
    pub contract: Address,
    /// Furthest a JobAuth's deadline may lie from now, in seconds.
    pub auth_horizon_secs: u64,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `POST /v1/auth/challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    #[schema(value_type = schema::Address)]
    pub address: Address,
}

/// A one-time challenge to sign (EIP-191) within a few minutes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Challenge {
    #[schema(value_type = schema::Hash)]
    pub nonce: B256,
    /// The exact text to sign.
    pub message: String,
}

/// `POST /v1/auth/login`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(value_type = schema::Address)]
    pub address: Address,
    #[schema(value_type = schema::Hash)]
    pub nonce: B256,
    /// 65-byte signature of the challenge's message, 0x-hex.
    #[serde(with = "crate::signature_hex")]
    #[schema(value_type = schema::Signature)]
    pub signature: Signature,
}

/// A bearer token for `Authorization: Bearer <token>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Session {
    pub token: String,
    pub expires_in_secs: u64,
}

// ---- quotes and jobs ----------------------------------------------------------------

/// `POST /v1/quote`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    #[schema(value_type = schema::JobSpec)]
    pub spec: JobSpec,
}

/// What a spec would cost on this hub now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quote {
    /// Connected miners that could run it now (free resources, window,
    /// placement, network), whatever their price.
    pub fitting_miners: u64,
    /// Connected miners whose whole offer could ever take it (capacity,
    /// placement, network), busy or not: fewer than `replicas` means no
    /// waiting will help.
    pub capable_miners: u64,
    /// The largest capacity any connected miner offers, per resource: what
    /// a spec no miner can take must fit within.
    #[schema(value_type = schema::Resources)]
    pub largest_offer: crate::Resources,
    pub replicas: u16,
    /// At least `replicas` miners fit.
    pub enough_miners: bool,
    /// The floor of the `replicas`-th cheapest fitting miner: what each
    /// replica must be allowed to charge.
    #[schema(value_type = schema::Amount)]
    pub per_replica: U256,
    pub fee_bps: u16,
    /// The least `maxPayment` that covers `replicas × perReplica` plus the
    /// hub's commission.
    #[schema(value_type = schema::Amount)]
    pub suggested_max_payment: U256,
    /// What each replica may charge under the spec's own `maxPayment`.
    #[schema(value_type = schema::Amount)]
    pub max_charge_per_replica: U256,
}

/// `POST /v1/jobs`: a spec the buyer signed, for an escrow already open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubmitRequest {
    /// The escrow's job id.
    #[schema(value_type = schema::Hash)]
    pub job_id: B256,
    #[schema(value_type = schema::JobSpec)]
    pub spec: JobSpec,
    /// The buyer's EIP-712 signature of the spec; its signer is the buyer.
    #[serde(with = "crate::signature_hex")]
    #[schema(value_type = schema::Signature)]
    pub signature: Signature,
    /// Batched settlement (docs/settlement.md): the buyer's authorisation,
    /// instead of an escrow; `jobId` is then its batched id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::SignedJobAuth>)]
    pub auth: Option<crate::batch::SignedJobAuth>,
    /// Batched only: the buyer's EIP-2612 permit for the batch contract, which
    /// the hub carries in its next epoch to fund the buyer's account — no
    /// transaction of the buyer's at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Funding>,
}

/// A buyer's permit for the batch contract to take `value` of its tokens into
/// its own batch account (the token's EIP-2612 domain; owner the buyer,
/// spender the batch contract, the buyer's current permit nonce).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Funding {
    #[schema(value_type = schema::Amount)]
    pub value: U256,
    pub deadline: u64,
    #[serde(with = "crate::signature_hex")]
    #[schema(value_type = schema::Signature)]
    pub signature: Signature,
}

/// The answer to a submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Submitted {
    #[schema(value_type = schema::Hash)]
    pub job_id: B256,
    #[schema(value_type = schema::Hash)]
    pub spec_hash: B256,
    pub state: JobState,
}

/// A job's settlement on chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettlementView {
    /// Absent until the hub first tries to settle.
    pub state: Option<SettlementState>,
    /// The settlement transaction, once sent.
    #[schema(value_type = Option<schema::Hash>)]
    pub tx: Option<B256>,
    pub error: Option<String>,
}

/// A job as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSummary {
    #[schema(value_type = schema::Hash)]
    pub job_id: B256,
    #[schema(value_type = schema::Hash)]
    pub spec_hash: B256,
    pub state: JobState,
    pub error: Option<String>,
    /// The output the replicas agreed on.
    #[schema(value_type = Option<schema::Hash>)]
    pub output_hash: Option<B256>,
    pub replicas: u16,
    pub created_at: i64,
    pub updated_at: i64,
    /// Pass as `before` to list older jobs.
    pub cursor: i64,
    pub settlement: SettlementView,
    /// Unix time after which the job's output, logs and inputs are deleted;
    /// absent while the job is open (they are kept for the retention period
    /// after it closes).
    pub data_expires_at: Option<i64>,
}

/// One replica's run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignmentView {
    #[schema(value_type = schema::Address)]
    pub miner: Address,
    pub replica: u16,
    pub state: AssignmentState,
    #[schema(value_type = schema::Amount)]
    pub max_charge: U256,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<schema::SignedReceipt>)]
    pub receipt: Option<SignedReceipt>,
    /// The hub's signature of the Assignment (for settling the receipt).
    #[serde(with = "crate::signature_hex")]
    #[schema(value_type = schema::Signature)]
    pub assignment_signature: Signature,
}

/// `GET /v1/jobs/{jobId}`: a job, its spec and every replica's run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobStatus {
    #[serde(flatten)]
    pub summary: JobSummary,
    #[schema(value_type = schema::JobSpec)]
    pub spec: JobSpec,
    pub assignments: Vec<AssignmentView>,
}

/// `GET /v1/jobs`: the caller's jobs, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobList {
    pub jobs: Vec<JobSummary>,
    /// The cursor of the next page, if there may be one.
    pub next_before: Option<i64>,
}

/// `POST /v1/jobs/{jobId}/cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cancelled {
    #[schema(value_type = schema::Hash)]
    pub job_id: B256,
    /// `cancelled` when no run had started (the escrow is released), else
    /// `running` while the runs are stopped; it ends `cancelled`, the time
    /// they used paid and the rest refunded.
    pub state: JobState,
}

text_enum!(
    /// Which stream a log line came from.
    LogStreamName {
        Stdout = "stdout",
        Stderr = "stderr",
    }
);

/// One line of `GET /v1/jobs/{jobId}/logs` (NDJSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogLine {
    pub seq: i64,
    #[schema(value_type = schema::Address)]
    pub miner: Address,
    pub stream: LogStreamName,
    pub data: String,
}

// ---- blobs -------------------------------------------------------------------------------

/// `PUT /v1/blobs/{hash}` and `GET /v1/blobs/{hash}/info`: a blob the caller
/// owns. The answer is the same whether or not another key stored the same
/// bytes: ownership and quota are per key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlobInfo {
    #[schema(value_type = schema::Hash)]
    pub hash: B256,
    pub size: u64,
    /// Any buyer's spec may name it.
    pub public: bool,
    /// Unix time after which it is deleted unless an open job (or one closed
    /// within the retention period) of the owner uses it.
    pub expires_at: i64,
}

/// The caller's storage at this hub: what it holds and may hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    pub used_bytes: u64,
    pub used_blobs: u64,
    pub max_bytes: u64,
    pub max_blobs: u64,
    /// Token base units the key has in open escrows with this hub.
    #[schema(value_type = schema::Amount)]
    pub stake: U256,
}

// ---- services ----------------------------------------------------------------------------

text_enum!(
    /// Where a service is.
    ServiceState {
        /// Waiting for miners, or for its first replica to answer.
        Starting = "starting",
        /// At least one replica answers its health check.
        Running = "running",
        /// Stopped by its buyer; its last periods are settled.
        Stopped = "stopped",
        /// Stopped by the hub: its budget or authorisations ran out, or it
        /// could not be kept running (see `reason`).
        Ended = "ended",
    }
);

impl ServiceState {
    /// The service will run no more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Stopped | Self::Ended)
    }
}

/// `POST /v1/services`: start a service, paid on the batched path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceUpRequest {
    #[schema(value_type = schema::ServiceSpec)]
    pub spec: crate::service::ServiceSpec,
    /// Segment authorisations (salts `segment_salt(serviceId, 0..)`), each for
    /// the service's spec hash and this hub; together at most `maxSpend`.
    #[schema(value_type = Vec<schema::SignedJobAuth>)]
    pub auths: Vec<crate::batch::SignedJobAuth>,
    /// A permit for the batch contract the hub carries in its next epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Funding>,
}

/// `POST /v1/services/{serviceId}/top-up`: more segment authorisations
/// (the next salts), raising what the service may spend and how long it may run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TopUpRequest {
    #[schema(value_type = Vec<schema::SignedJobAuth>)]
    pub auths: Vec<crate::batch::SignedJobAuth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Funding>,
}

/// One segment: one miner's stint of one replica, settled as one batched job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentView {
    /// Its batched job id.
    #[schema(value_type = schema::Hash)]
    pub job_id: B256,
    #[schema(value_type = schema::Address)]
    pub miner: Address,
    pub replica: u16,
    pub started_at: u64,
    /// Absent while it runs.
    pub ended_at: Option<u64>,
    /// Healthy periods its miner's last receipt covers.
    pub periods: u64,
    /// What the buyer pays for it (commission included).
    #[schema(value_type = schema::Amount)]
    pub amount: U256,
    /// Answers its health check now (a live segment).
    pub healthy: bool,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Its batched settlement, once it ended with a receipt.
    pub settlement: Option<SettlementState>,
}

/// `GET /v1/services/{serviceId}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceStatus {
    #[schema(value_type = schema::Hash)]
    pub service_id: B256,
    #[schema(value_type = schema::Hash)]
    pub spec_hash: B256,
    pub state: ServiceState,
    pub reason: Option<String>,
    /// Path on this hub that reaches the service (`/s/<serviceId>/`).
    pub path: String,
    #[schema(value_type = schema::ServiceSpec)]
    pub spec: crate::service::ServiceSpec,
    /// Every segment, oldest first.
    pub segments: Vec<SegmentView>,
    /// What its segments cost so far.
    #[schema(value_type = schema::Amount)]
    pub spent: U256,
    /// What its unused authorisations still allow.
    #[schema(value_type = schema::Amount)]
    pub authorised: U256,
    /// Segment authorisations the hub holds, used or not: a top-up's
    /// authorisations take the salts from this index on.
    pub authorisations: u64,
    pub created_at: u64,
    pub ended_at: Option<u64>,
}

/// A service as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceSummary {
    #[schema(value_type = schema::Hash)]
    pub service_id: B256,
    pub state: ServiceState,
    pub path: String,
    /// Replicas answering now.
    pub healthy_replicas: u16,
    pub replicas: u16,
    #[schema(value_type = schema::Amount)]
    pub spent: U256,
    pub created_at: u64,
}

/// `GET /v1/services`: the caller's services, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceList {
    pub services: Vec<ServiceSummary>,
}

/// Schemas of the chain types (declared with `sol!`), for the OpenAPI
/// document only: the real types are in [`crate::types`] and [`crate::signing`].
pub mod schema {
    #![allow(dead_code, non_snake_case, missing_debug_implementations)]
    use utoipa::ToSchema;

    /// 32 bytes, 0x-hex.
    #[derive(ToSchema)]
    #[schema(as = Hash, value_type = String, pattern = r"^0x[0-9a-fA-F]{64}$")]
    pub struct Hash(String);

    /// An Ethereum address, 0x-hex.
    #[derive(ToSchema)]
    #[schema(as = Address, value_type = String, pattern = r"^0x[0-9a-fA-F]{40}$")]
    pub struct Address(String);

    /// A 65-byte signature r‖s‖v, 0x-hex.
    #[derive(ToSchema)]
    #[schema(as = Signature, value_type = String, pattern = r"^0x[0-9a-fA-F]{130}$")]
    pub struct Signature(String);

    /// A uint256 amount of token base units: 0x-hex (as the hub writes it) or decimal.
    #[derive(ToSchema)]
    #[schema(as = Amount, value_type = String, pattern = r"^(0x[0-9a-fA-F]{1,64}|[0-9]{1,78})$")]
    pub struct Amount(String);

    /// How the hub checks a service (the EIP-712 `HealthCheck`).
    #[derive(ToSchema)]
    #[schema(as = HealthCheck)]
    pub struct HealthCheck {
        /// GET path; a status below 400 is healthy.
        path: String,
        #[schema(minimum = 1, maximum = 3600)]
        intervalSecs: u32,
        /// Consecutive failures before the replica is restarted elsewhere.
        #[schema(minimum = 1, maximum = 100)]
        failures: u16,
    }

    /// A service spec (the EIP-712 `ServiceSpec`); see docs/services.md.
    #[derive(ToSchema)]
    #[schema(as = ServiceSpec)]
    pub struct ServiceSpec {
        salt: Hash,
        #[schema(
            pattern = r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9._/:-]+@sha256:[0-9a-f]{64})$",
            max_length = 512
        )]
        image: String,
        command: Vec<String>,
        env: Vec<EnvVar>,
        resources: Resources,
        #[schema(minimum = 1, maximum = 65535)]
        port: u16,
        health: HealthCheck,
        #[schema(maximum = 1)]
        network: u8,
        placement: Placement,
        #[schema(minimum = 1, maximum = 16)]
        replicas: u16,
        #[schema(minimum = 5, maximum = 86400)]
        periodSecs: u32,
        pricePerPeriod: Amount,
        maxSpend: Amount,
    }

    /// A job spec (the EIP-712 `JobSpec`); see the README for each field.
    #[derive(ToSchema)]
    #[schema(as = JobSpec)]
    pub struct JobSpec {
        /// `name[:tag]@sha256:<64 hex>` or a local image id `sha256:<64 hex>`.
        #[schema(
            pattern = r"^(sha256:[0-9a-f]{64}|[A-Za-z0-9._/:-]+@sha256:[0-9a-f]{64})$",
            max_length = 512
        )]
        image: String,
        command: Vec<String>,
        env: Vec<EnvVar>,
        inputs: Vec<InputBlob>,
        /// Absolute directory inside the container.
        outputPath: String,
        resources: Resources,
        maxDurationSecs: u64,
        /// 0: no network; 1: outbound.
        #[schema(maximum = 1)]
        network: u8,
        placement: Placement,
        replicas: u16,
        maxPayment: Amount,
        deadline: u64,
    }

    #[derive(ToSchema)]
    #[schema(as = EnvVar)]
    pub struct EnvVar {
        name: String,
        value: String,
    }

    #[derive(ToSchema)]
    #[schema(as = InputBlob)]
    pub struct InputBlob {
        contentHash: Hash,
        size: u64,
        /// Relative to `/fog/in`.
        path: String,
    }

    #[derive(ToSchema)]
    #[schema(as = Resources)]
    pub struct Resources {
        cpuMillicores: u64,
        memoryBytes: u64,
        diskBytes: u64,
        gpuCount: u32,
    }

    #[derive(ToSchema)]
    #[schema(as = Placement)]
    pub struct Placement {
        region: String,
        /// `key=value`; `fog.isolation=gvisor` asks for a gVisor miner.
        labels: Vec<String>,
    }

    /// A miner-signed receipt.
    #[derive(ToSchema)]
    #[schema(as = SignedReceipt)]
    pub struct SignedReceipt {
        payload: Receipt,
        signature: Signature,
    }

    #[derive(ToSchema)]
    #[schema(as = Receipt)]
    pub struct Receipt {
        jobId: Hash,
        specHash: Hash,
        hub: Address,
        miner: Address,
        imageId: Hash,
        outputHash: Hash,
        exitCode: i32,
        startedAt: u64,
        endedAt: u64,
        cpuTimeMs: u64,
        peakMemoryBytes: u64,
        amountCharged: Amount,
    }

    /// A buyer's permission for one batched job (docs/settlement.md).
    #[derive(ToSchema)]
    #[schema(as = JobAuth)]
    pub struct JobAuth {
        salt: Hash,
        specHash: Hash,
        hub: Address,
        maxPayment: Amount,
        deadline: u64,
        replicas: u16,
        maxFeeBps: u16,
    }

    /// A buyer-signed JobAuth (EIP-712, the BatchSettlement domain).
    #[derive(ToSchema)]
    #[schema(as = SignedJobAuth)]
    pub struct SignedJobAuth {
        payload: JobAuth,
        signature: Signature,
    }

    /// A committed epoch.
    #[derive(ToSchema)]
    #[schema(as = EpochRef)]
    pub struct EpochRef {
        hub: Address,
        index: u32,
        root: Hash,
        ledgerHash: Hash,
        committedAt: u64,
    }

    /// A job's leaf in its epoch's Merkle tree.
    #[derive(ToSchema)]
    #[schema(as = Leaf)]
    pub struct Leaf {
        jobId: Hash,
        buyer: Address,
        authHash: Hash,
        receiptsCommitment: Hash,
        total: Amount,
        deadline: u64,
        signerVersion: u16,
        feeBps: u16,
    }

    /// Where a batched job was settled: its epoch, its leaf and the leaf's Merkle proof.
    #[derive(ToSchema)]
    #[schema(as = JobProof)]
    pub struct JobProof {
        epoch: EpochRef,
        leaf: Leaf,
        proof: Vec<Hash>,
        receipts: Vec<SignedReceipt>,
    }
}
