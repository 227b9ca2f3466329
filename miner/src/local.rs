//! Local mode (`fog-miner exec`): one job through the same runner and
//! sandbox as a hub's assignments, without a hub, so an operator can test a
//! machine and tests can drive the executor from the command line.
//!
//! There is no hub to assign the job, so the miner states the assignment
//! itself: job id = the spec hash unless given, hub = the zero address unless
//! given, max charge = the spec's `maxPayment / replicas` unless given. The
//! receipt is signed as for a real job, under the domain given (a devnet's by
//! default); it only settles on chain if a hub really assigned that job.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use fog_protocol::output::{OutputError, sha256_reader};
use fog_protocol::{Address, Assignment, B256, JobSpec, U256};

/// Why a local job could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("{path}: {reason}")]
    Spec { path: PathBuf, reason: String },
    #[error("--input {path}: {reason}")]
    Input { path: PathBuf, reason: String },
    #[error("the spec's input {path:?} (sha256 {hash}) was not given with --input")]
    MissingInput { path: String, hash: B256 },
    #[error("unpacking the output: {0}")]
    Output(#[from] OutputError),
}

/// Reads a job spec (JSON, unknown fields refused) from `path`.
pub fn read_spec(path: &Path) -> Result<JobSpec, LocalError> {
    let bad = |reason: String| LocalError::Spec {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("not a valid job spec: {e}")))
}

/// Hashes each input file and matches it to the spec's inputs by content.
/// A file the spec does not name, or an input of the spec without a file,
/// is an error: the buyer's spec fixes exactly what the job sees.
pub fn match_inputs(
    spec: &JobSpec,
    files: &[PathBuf],
) -> Result<HashMap<B256, PathBuf>, LocalError> {
    let mut by_hash = HashMap::new();
    for path in files {
        let bad = |reason: String| LocalError::Input {
            path: path.clone(),
            reason,
        };
        let file = File::open(path).map_err(|e| bad(e.to_string()))?;
        let hash = sha256_reader(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
        if !spec.inputs.iter().any(|i| i.contentHash == hash) {
            return Err(bad(format!(
                "its sha256 {hash} is not among the spec's inputs"
            )));
        }
        by_hash.insert(hash, path.clone());
    }
    if let Some(missing) = spec
        .inputs
        .iter()
        .find(|i| !by_hash.contains_key(&i.contentHash))
    {
        return Err(LocalError::MissingInput {
            path: missing.path.clone(),
            hash: missing.contentHash,
        });
    }
    Ok(by_hash)
}

/// The assignment a local job runs under (see the module docs).
pub fn local_assignment(
    spec: &JobSpec,
    miner: Address,
    job_id: Option<B256>,
    hub: Option<Address>,
    max_charge: Option<U256>,
) -> Assignment {
    let spec_hash = spec.spec_hash();
    Assignment {
        jobId: job_id.unwrap_or(spec_hash),
        specHash: spec_hash,
        hub: hub.unwrap_or(Address::ZERO),
        miner,
        maxCharge: max_charge.unwrap_or_else(|| spec.maxPayment / U256::from(spec.replicas.max(1))),
    }
}
