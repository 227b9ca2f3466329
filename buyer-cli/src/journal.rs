//! The buyer's own record of the jobs it opens, kept on this machine and
//! written **before** the escrow is opened: whatever happens to the hub
//! afterwards, the CLI knows the job, can show it (`fog job list`) and refund
//! it (`fog job refund`). One JSON file per job in `$FOG_JOBS_DIR`, else
//! `$XDG_STATE_HOME/fog/jobs`, else `~/.local/state/fog/jobs`.
//!
//! Opening escrows from one key is serialised across processes with a lock
//! file per key, so several `fog job run` at once never race for the same
//! transaction nonce or permit nonce.

use std::path::{Path, PathBuf};

use alloy::primitives::{Address, B256};
use alloy::sol_types::SolValue;
use fog_protocol::JobSpec;
use serde::{Deserialize, Serialize};

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the job journal {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("no directory for the job journal: set FOG_JOBS_DIR or HOME")]
    NoHome,
}

/// How far a job got, as this machine saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalState {
    /// Recorded; the escrow transaction may or may not have been mined.
    Opening,
    /// The escrow is open on chain.
    Opened,
    /// The hub accepted the signed spec.
    Submitted,
}

impl LocalState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Opened => "opened",
            Self::Submitted => "submitted",
        }
    }
}

/// One job as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalJob {
    pub job_id: B256,
    pub salt: B256,
    pub buyer: Address,
    pub hub: Address,
    pub hub_url: String,
    pub chain_id: u64,
    pub escrow: Address,
    pub spec: JobSpec,
    pub created_at: u64,
    pub open_tx: Option<B256>,
    pub state: LocalState,
}

/// The escrow's job id for `buyer` and `salt`: `keccak256(abi.encode(buyer, salt))`,
/// as `JobEscrow.jobIdFor` computes it.
pub fn job_id_for(buyer: Address, salt: B256) -> B256 {
    alloy::primitives::keccak256((buyer, salt).abi_encode())
}

/// The journal's directory.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// `$FOG_JOBS_DIR`, else the state directory's `fog/jobs`.
    pub fn default_location() -> Result<Self, JournalError> {
        let dir = std::env::var_os("FOG_JOBS_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_STATE_HOME")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from)
                    .or_else(|| {
                        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state"))
                    })
                    .map(|base| base.join("fog/jobs"))
            })
            .ok_or(JournalError::NoHome)?;
        Ok(Self::new(dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, path: &Path, e: impl std::fmt::Display) -> JournalError {
        JournalError::Io {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    }

    /// Writes (or rewrites) a job's record, atomically.
    pub fn record(&self, job: &LocalJob) -> Result<(), JournalError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        let path = self.dir.join(format!("{}.json", job.job_id));
        let tmp = self.dir.join(format!(".{}.json.tmp", job.job_id));
        let text = serde_json::to_vec_pretty(job).map_err(|e| self.io(&path, e))?;
        std::fs::write(&tmp, text).map_err(|e| self.io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| self.io(&path, e))
    }

    /// Every job recorded, newest first (records that do not parse are skipped).
    pub fn list(&self) -> Vec<LocalJob> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut jobs: Vec<LocalJob> = entries
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("0x") && n.ends_with(".json"))
            })
            .filter_map(|e| std::fs::read(e.path()).ok())
            .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
            .collect();
        jobs.sort_by_key(|j| std::cmp::Reverse(j.created_at));
        jobs
    }

    /// Holds the lock of `buyer`'s escrow openings until the guard is dropped.
    pub fn lock_openings(&self, buyer: Address) -> Result<OpeningLock, JournalError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| self.io(&self.dir, e))?;
        let path = self.dir.join(format!(".open-{buyer}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| self.io(&path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| self.io(&path, e))?;
        Ok(OpeningLock { _file: file })
    }
}

/// An exclusive lock on one key's escrow openings; released when dropped
/// (the file's lock goes with its descriptor, also if the process dies).
#[derive(Debug)]
pub struct OpeningLock {
    _file: std::fs::File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_newest_first() {
        let dir = tempfile_dir();
        let journal = Journal::new(dir.clone());
        let job = |t: u64| LocalJob {
            job_id: B256::repeat_byte(t as u8),
            salt: B256::ZERO,
            buyer: Address::ZERO,
            hub: Address::ZERO,
            hub_url: "http://hub".into(),
            chain_id: 1,
            escrow: Address::ZERO,
            spec: JobSpec::default(),
            created_at: t,
            open_tx: None,
            state: LocalState::Opening,
        };
        journal.record(&job(1)).unwrap();
        journal.record(&job(2)).unwrap();
        let mut updated = job(1);
        updated.state = LocalState::Submitted;
        journal.record(&updated).unwrap();
        let listed = journal.list();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].created_at, 2);
        assert_eq!(listed[1].state, LocalState::Submitted);
        let _lock = journal.lock_openings(Address::ZERO).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn job_ids_are_the_escrows() {
        // keccak256(abi.encode(address(0), bytes32(0))): 64 zero bytes.
        assert_eq!(
            job_id_for(Address::ZERO, B256::ZERO),
            alloy::primitives::keccak256([0u8; 64])
        );
    }

    fn tempfile_dir() -> PathBuf {
        let mut bytes = [0u8; 8];
        rand::Rng::fill(&mut rand::thread_rng(), &mut bytes);
        std::env::temp_dir().join(format!("fog-journal-{}", alloy::hex::encode(bytes)))
    }
}
