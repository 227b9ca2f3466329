//! The miner's job runner: admission against the policy and free capacity,
//! the sandboxed run, and the signed receipt.
//!
//! Admission and running are two steps so that an agent can answer its hub
//! at once ("accepted" or "rejected, because …") and then run. An
//! [`Admitted`] job holds its share of the capacity until it is dropped, so
//! any number of jobs can run at once without overcommitting the offer.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use fog_protocol::charge::prorated;
use fog_protocol::{
    Address, Assignment, B256, Eip712Domain, JobSpec, PrivateKeySigner, Receipt, SignatureError,
    SignedReceipt,
};

use crate::admission::{Capacity, Conditions, Rejection, Reservation, admit};
use crate::config::Policy;
use crate::executor::{ExecError, Executor, Outcome, RunOptions};

/// Why an assignment was not run to a receipt.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the assignment names miner {named}, but this miner is {me}")]
    WrongMiner { named: Address, me: Address },
    #[error("the assignment is for spec {assigned}, but the spec sent hashes to {actual}")]
    SpecMismatch { assigned: B256, actual: B256 },
    #[error("job {0} is already running on this miner")]
    AlreadyRunning(B256),
    #[error("rejected: {0}")]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("signing the receipt: {0}")]
    Sign(#[from] SignatureError),
}

impl RunError {
    /// Whose fault the failure is (see [`ExecError::fault`]).
    pub fn fault(&self) -> fog_protocol::wire::Fault {
        match self {
            Self::Exec(e) => e.fault(),
            _ => fog_protocol::wire::Fault::Miner,
        }
    }
}

/// Runs assignments on this miner.
#[derive(Debug)]
pub struct Runner {
    executor: Executor,
    policy: Policy,
    capacity: Capacity,
    key: PrivateKeySigner,
    domain: Eip712Domain,
    running: Arc<Mutex<HashSet<B256>>>,
}

/// A job that passed admission; it holds its capacity and its job id until dropped.
#[derive(Debug)]
pub struct Admitted {
    assignment: Assignment,
    spec: JobSpec,
    _reservation: Reservation,
    _slot: RunningSlot,
}

impl Admitted {
    pub fn assignment(&self) -> &Assignment {
        &self.assignment
    }
}

/// Marks a job id as running; unmarks it when dropped.
#[derive(Debug)]
struct RunningSlot {
    job_id: B256,
    running: Arc<Mutex<HashSet<B256>>>,
}

impl Drop for RunningSlot {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.job_id);
    }
}

/// A run that reached an outcome, with the miner's signed receipt for it.
#[derive(Debug)]
pub struct Finished {
    pub receipt: SignedReceipt,
    pub outcome: Outcome,
}

impl Runner {
    /// `domain` is the deployment's EIP-712 domain (chain id and escrow), under
    /// which receipts are signed.
    pub fn new(
        executor: Executor,
        policy: Policy,
        key: PrivateKeySigner,
        domain: Eip712Domain,
    ) -> Self {
        let policy = policy.with_runtime(executor.runtime().clone());
        Self {
            executor,
            capacity: Capacity::new(policy.capacity.clone()),
            policy,
            key,
            domain,
            running: Arc::default(),
        }
    }

    /// The miner's address: receipts are signed by it and assignments must name it.
    pub fn address(&self) -> Address {
        self.key.address()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn capacity(&self) -> &Capacity {
        &self.capacity
    }

    pub fn executor(&self) -> &Executor {
        &self.executor
    }

    /// Ids of the jobs admitted and not yet finished.
    pub fn running(&self) -> Vec<B256> {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .copied()
            .collect()
    }

    /// Signs `message` (EIP-191) with the miner's key: the hub login.
    pub fn sign_message(&self, message: &str) -> Result<fog_protocol::Signature, SignatureError> {
        use alloy::signers::SignerSync;
        Ok(self.key.sign_message_sync(message.as_bytes())?)
    }

    /// The EIP-712 domain receipts are signed under.
    pub fn domain(&self) -> &Eip712Domain {
        &self.domain
    }

    /// Checks the assignment against this miner and the spec, then the spec
    /// against the policy, and reserves its resources. The caller has already
    /// checked that the assignment is signed by the hub's assignment key.
    pub fn admit(
        &self,
        assignment: Assignment,
        spec: JobSpec,
        at: Conditions,
    ) -> Result<Admitted, RunError> {
        let actual = spec.spec_hash();
        self.admit_as(assignment, spec, actual, at)
    }

    /// Admits one segment of a service: the assignment names the service's
    /// spec hash; `job` is the container run for it ([`ServiceSpec::job_view`]).
    ///
    /// [`ServiceSpec::job_view`]: fog_protocol::service::ServiceSpec::job_view
    pub fn admit_service(
        &self,
        assignment: Assignment,
        service: &fog_protocol::service::ServiceSpec,
        job: JobSpec,
        at: Conditions,
    ) -> Result<Admitted, RunError> {
        self.admit_as(assignment, job, service.spec_hash(), at)
    }

    /// Signs a receipt with this miner's key under the escrow's domain.
    pub fn sign_receipt(&self, receipt: Receipt) -> Result<SignedReceipt, RunError> {
        Ok(SignedReceipt::sign(receipt, &self.key, &self.domain)?)
    }

    fn admit_as(
        &self,
        assignment: Assignment,
        spec: JobSpec,
        actual: B256,
        at: Conditions,
    ) -> Result<Admitted, RunError> {
        let me = self.address();
        if assignment.miner != me {
            return Err(RunError::WrongMiner {
                named: assignment.miner,
                me,
            });
        }
        if assignment.specHash != actual {
            return Err(RunError::SpecMismatch {
                assigned: assignment.specHash,
                actual,
            });
        }
        let slot = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            if !running.insert(assignment.jobId) {
                return Err(RunError::AlreadyRunning(assignment.jobId));
            }
            RunningSlot {
                job_id: assignment.jobId,
                running: Arc::clone(&self.running),
            }
        };
        let reservation = admit(
            &self.policy,
            &self.capacity,
            &spec,
            assignment.maxCharge,
            at,
        )?;
        Ok(Admitted {
            assignment,
            spec,
            _reservation: reservation,
            _slot: slot,
        })
    }

    /// Runs an admitted job and signs the receipt of its outcome. A non-zero
    /// exit, a timeout or an out-of-memory kill is an outcome and gets a
    /// receipt; a job that could not be started (missing image, bad inputs)
    /// is an error. The capacity is released when this returns.
    pub async fn run(
        &self,
        admitted: Admitted,
        inputs: &HashMap<B256, PathBuf>,
        options: RunOptions,
    ) -> Result<Finished, RunError> {
        let a = &admitted.assignment;
        let outcome = self
            .executor
            .run(a.jobId, &admitted.spec, inputs, options)
            .await?;
        let receipt = Receipt {
            jobId: a.jobId,
            specHash: a.specHash,
            hub: a.hub,
            miner: self.address(),
            imageId: outcome.image_id,
            outputHash: outcome.output.sha256,
            exitCode: outcome.exit_code,
            startedAt: outcome.started_at,
            endedAt: outcome.ended_at,
            cpuTimeMs: outcome.cpu_time_ms,
            peakMemoryBytes: outcome.peak_memory_bytes,
            amountCharged: prorated(
                a.maxCharge,
                admitted.spec.maxDurationSecs,
                outcome.wall_time,
                outcome.timed_out,
            ),
        };
        let receipt = SignedReceipt::sign(receipt, &self.key, &self.domain)?;
        tracing::info!(
            job = %a.jobId,
            exit_code = outcome.exit_code,
            output = %outcome.output.sha256,
            charged = %receipt.payload.amountCharged,
            "job finished"
        );
        Ok(Finished { receipt, outcome })
    }
}
