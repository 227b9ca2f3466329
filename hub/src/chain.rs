//! What the hub reads from the chain: a job's escrow, before the job is
//! scheduled. Reads are retried with backoff, so a chain hiccup delays a
//! submission instead of failing it.

use std::time::Duration;

use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use backon::{ExponentialBuilder, Retryable};
use fog_protocol::contracts::job_escrow::JobEscrow;
use fog_protocol::contracts::{EscrowStatus, HubState};
use fog_protocol::{Address, B256, JobSpec, U256};

/// Why a job's escrow does not back it.
#[derive(Debug, thiserror::Error)]
pub enum EscrowError {
    #[error("no escrow is open for job {0}: open it on chain first")]
    NotOpen(B256),
    #[error("job {job}'s escrow is {status}, not open")]
    Closed { job: B256, status: EscrowStatus },
    #[error("job {job}'s escrow names hub {named}, not this hub ({this})")]
    WrongHub {
        job: B256,
        named: Address,
        this: Address,
    },
    #[error("job {job}'s escrow was opened by {opener}, but the spec is signed by {signer}")]
    WrongBuyer {
        job: B256,
        opener: Address,
        signer: Address,
    },
    #[error("job {job}'s escrow locks spec {locked}, but the spec submitted hashes to {submitted}")]
    WrongSpec {
        job: B256,
        locked: B256,
        submitted: B256,
    },
    #[error("job {job}'s escrow is for {locked} replicas, the spec asks for {asked}")]
    WrongReplicas { job: B256, locked: u16, asked: u16 },
    #[error(
        "job {job}'s escrow deadline {deadline} leaves no room to run the spec ({max_duration} s) and settle ({window} s) from now ({now}): open the escrow with a later deadline"
    )]
    DeadlineTooSoon {
        job: B256,
        deadline: u64,
        now: u64,
        max_duration: u64,
        window: u64,
    },
    #[error("job {job}'s escrow locks {locked}, less than the spec's maxPayment {asked}")]
    Underfunded {
        job: B256,
        locked: U256,
        asked: U256,
    },
    #[error("job {job}'s escrow deadline {deadline} has passed (chain time {now})")]
    Expired { job: B256, deadline: u64, now: u64 },
    #[error(
        "job {job}'s escrow is open but not yet {confirmations} blocks deep: this hub waits for {confirmations} confirmations (reorgs); submit again shortly"
    )]
    Unconfirmed { job: B256, confirmations: u64 },
    #[error("reading the chain: {0}")]
    Rpc(String),
}

/// The escrow as the chain holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Escrow {
    pub buyer: Address,
    pub hub: Address,
    pub spec_hash: B256,
    pub replicas: u16,
    pub max_payment: U256,
    pub deadline: u64,
}

/// A connection to the chain the hub settles on.
#[derive(Clone, Debug)]
pub struct Chain {
    provider: DynProvider,
    escrow: Address,
    hub: Address,
    chain_id: u64,
    /// Blocks an escrow must be buried under before a job is accepted on it.
    confirmations: u64,
    /// The last block timestamp read and when: deadlines are whole seconds,
    /// so one read a second serves every submission in it.
    clock: std::sync::Arc<std::sync::Mutex<Option<(u64, std::time::Instant)>>>,
    /// Every read of the chain's time corrects this clock, which the engine
    /// and the API judge deadlines by.
    chain_clock: std::sync::Arc<fog_protocol::clock::ChainClock>,
}

/// How long a read block timestamp stands for the chain's time.
const CLOCK_TTL: Duration = Duration::from_secs(1);

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(2))
        .with_max_times(5)
}

impl Chain {
    /// Connects to `rpc_url` and reads its chain id.
    pub async fn connect(
        rpc_url: &str,
        escrow: Address,
        hub: Address,
    ) -> Result<Self, EscrowError> {
        let url = rpc_url
            .parse()
            .map_err(|e| EscrowError::Rpc(format!("rpc url {rpc_url:?}: {e}")))?;
        let provider = ProviderBuilder::new().connect_http(url).erased();
        let chain_id = (|| async { provider.get_chain_id().await })
            .retry(backoff())
            .await
            .map_err(|e| EscrowError::Rpc(format!("{rpc_url}: {e}")))?;
        Ok(Self {
            provider,
            escrow,
            hub,
            chain_id,
            confirmations: 0,
            clock: Default::default(),
            chain_clock: Default::default(),
        })
    }

    /// Accept jobs only on escrows `blocks` deep (0: the latest block will do).
    #[must_use]
    pub fn with_confirmations(mut self, blocks: u64) -> Self {
        self.confirmations = blocks;
        self
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    pub fn escrow(&self) -> Address {
        self.escrow
    }

    pub fn hub(&self) -> Address {
        self.hub
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// Reads job `job_id`'s escrow at the latest block.
    pub async fn escrow_of(
        &self,
        job_id: B256,
    ) -> Result<Option<(Escrow, EscrowStatus)>, EscrowError> {
        self.escrow_at(job_id, alloy::eips::BlockId::latest()).await
    }

    /// Reads job `job_id`'s escrow as of block `at`.
    async fn escrow_at(
        &self,
        job_id: B256,
        at: alloy::eips::BlockId,
    ) -> Result<Option<(Escrow, EscrowStatus)>, EscrowError> {
        let contract = JobEscrow::new(self.escrow, &self.provider);
        let job = (|| async { contract.getJob(job_id).block(at).call().await })
            .retry(backoff())
            .await
            .map_err(|e| EscrowError::Rpc(e.to_string()))?;
        let status = EscrowStatus::from_code(job.status);
        if status == EscrowStatus::None {
            return Ok(None);
        }
        Ok(Some((
            Escrow {
                buyer: job.buyer,
                hub: job.hub,
                spec_hash: job.specHash,
                replicas: job.replicas,
                max_payment: U256::from(job.maxPayment),
                deadline: job.deadline.to::<u64>(),
            },
            status,
        )))
    }

    /// This hub's commission (basis points) and assignment signer as the registry holds them.
    pub async fn hub_terms(
        &self,
        registry: Address,
    ) -> Result<(HubState, Address, u16), EscrowError> {
        use fog_protocol::contracts::hub_registry::HubRegistry;
        let contract = HubRegistry::new(registry, &self.provider);
        let terms = (|| async { contract.hubTerms(self.hub).call().await })
            .retry(backoff())
            .await
            .map_err(|e| EscrowError::Rpc(e.to_string()))?;
        Ok((HubState::from_code(terms.state), terms.signer, terms.feeBps))
    }

    /// The chain's time between reads: the machine's clock corrected by the
    /// last block seen (see [`fog_protocol::clock::ChainClock`]).
    pub fn clock(&self) -> fog_protocol::clock::SharedClock {
        self.chain_clock.clone()
    }

    /// The latest block's timestamp: the chain's idea of now, which decides
    /// deadlines (read at most once a second).
    pub async fn now(&self) -> Result<u64, EscrowError> {
        let cached = *self
            .clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((timestamp, read_at)) = cached
            && read_at.elapsed() < CLOCK_TTL
        {
            return Ok(timestamp);
        }
        let timestamp = self.latest_timestamp().await?;
        self.chain_clock.observe(timestamp);
        *self
            .clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((timestamp, std::time::Instant::now()));
        Ok(timestamp)
    }

    async fn latest_timestamp(&self) -> Result<u64, EscrowError> {
        let block = (|| async {
            self.provider
                .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
                .await
        })
        .retry(backoff())
        .await
        .map_err(|e| EscrowError::Rpc(e.to_string()))?
        .ok_or_else(|| EscrowError::Rpc("the node has no latest block".into()))?;
        Ok(block.header.timestamp)
    }

    /// The escrow as of `confirmations` blocks below the latest: what a
    /// reorg of fewer blocks cannot take back.
    async fn confirmed_escrow(
        &self,
        job_id: B256,
    ) -> Result<Option<(Escrow, EscrowStatus)>, EscrowError> {
        if self.confirmations == 0 {
            return self.escrow_of(job_id).await;
        }
        let latest = (|| async { self.provider.get_block_number().await })
            .retry(backoff())
            .await
            .map_err(|e| EscrowError::Rpc(e.to_string()))?;
        let deep = latest.saturating_sub(self.confirmations);
        let confirmed = self
            .escrow_at(job_id, alloy::eips::BlockId::number(deep))
            .await?;
        if confirmed.is_none() && self.escrow_of(job_id).await?.is_some() {
            return Err(EscrowError::Unconfirmed {
                job: job_id,
                confirmations: self.confirmations,
            });
        }
        Ok(confirmed)
    }

    /// Checks that job `job_id`'s escrow is open with this hub, by `buyer`,
    /// for this spec and replica count, with at least the spec's maxPayment
    /// locked and a deadline still ahead, and (with confirmations) buried
    /// deep enough that a reorg cannot undo it.
    pub async fn check_escrow(
        &self,
        job_id: B256,
        buyer: Address,
        spec: &JobSpec,
    ) -> Result<Escrow, EscrowError> {
        let escrow = self.open_escrow(job_id, buyer).await?;
        let job = job_id;
        let submitted = spec.spec_hash();
        if escrow.spec_hash != submitted {
            return Err(EscrowError::WrongSpec {
                job,
                locked: escrow.spec_hash,
                submitted,
            });
        }
        if escrow.replicas != spec.replicas {
            return Err(EscrowError::WrongReplicas {
                job,
                locked: escrow.replicas,
                asked: spec.replicas,
            });
        }
        if escrow.max_payment < spec.maxPayment {
            return Err(EscrowError::Underfunded {
                job,
                locked: escrow.max_payment,
                asked: spec.maxPayment,
            });
        }
        // The hub runs a job only if it can run it whole and still settle before the buyer may
        // refund: otherwise its miners' work could go unpaid.
        let now = self.now().await?;
        let window = fog_protocol::SETTLEMENT_WINDOW_SECS;
        if escrow.deadline
            < now
                .saturating_add(spec.maxDurationSecs)
                .saturating_add(window)
        {
            return Err(EscrowError::DeadlineTooSoon {
                job,
                deadline: escrow.deadline,
                now,
                max_duration: spec.maxDurationSecs,
                window,
            });
        }
        Ok(escrow)
    }

    /// Job `job_id`'s escrow, if it is open with this hub, opened by `buyer`,
    /// with its deadline ahead and (with confirmations) deep enough: what a
    /// buyer has at stake here.
    pub async fn open_escrow(&self, job_id: B256, buyer: Address) -> Result<Escrow, EscrowError> {
        let Some((escrow, status)) = self.confirmed_escrow(job_id).await? else {
            return Err(EscrowError::NotOpen(job_id));
        };
        let job = job_id;
        if status != EscrowStatus::Open {
            return Err(EscrowError::Closed { job, status });
        }
        if escrow.hub != self.hub {
            return Err(EscrowError::WrongHub {
                job,
                named: escrow.hub,
                this: self.hub,
            });
        }
        if escrow.buyer != buyer {
            return Err(EscrowError::WrongBuyer {
                job,
                opener: escrow.buyer,
                signer: buyer,
            });
        }
        let now = self.now().await?;
        if escrow.deadline <= now {
            return Err(EscrowError::Expired {
                job,
                deadline: escrow.deadline,
                now,
            });
        }
        Ok(escrow)
    }
}
