//! The hub's durable state, and the only module that speaks SQL.
//!
//! Everything the hub acts on is written here first: a job is stored before
//! it is queued, an assignment before it is sent, a receipt before the job
//! is called complete. The SQL is portable (`$n` parameters, no SQLite-only
//! constructs) so that PostgreSQL can take SQLite's place for multi-replica
//! hubs; only [`Store::open`] knows which engine it talks to.

use std::collections::HashMap;
use std::str::FromStr;

mod services;
pub use services::{AuthRow, SegmentRow, ServiceRow};

use fog_protocol::{Address, B256, JobSpec, Signature, SignedReceipt, U256};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} {value:?} is corrupt: {reason}")]
    Corrupt {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("job {0} already exists")]
    JobExists(B256),
}

fn corrupt(what: &'static str, value: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        what,
        value: value.chars().take(100).collect(),
        reason: reason.to_string(),
    }
}

fn parse<T: FromStr>(what: &'static str, value: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    value.parse().map_err(|e| corrupt(what, value, e))
}

/// Lowercase 0x-hex, the stored form of addresses and hashes.
pub fn hex_addr(a: Address) -> String {
    format!("{a:#x}")
}

pub use fog_protocol::api::{AssignmentState, JobState, SettlementState as Settlement};

/// A stored job.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub job_id: B256,
    pub buyer: Address,
    pub spec: JobSpec,
    pub spec_hash: B256,
    pub signature: Signature,
    pub state: JobState,
    pub error: Option<String>,
    pub output_hash: Option<B256>,
    pub seq: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Where the job's settlement on chain is.
    pub settlement: Option<Settlement>,
    /// The settlement transaction, once sent.
    pub settle_tx: Option<B256>,
    pub settle_error: Option<String>,
    /// When the job stopped needing its data (final, settlement over).
    pub closed_at: Option<i64>,
    /// The buyer's authorisation when the job settles through the batched path.
    pub auth: Option<fog_protocol::batch::SignedJobAuth>,
}

/// A stored assignment.
#[derive(Clone, Debug)]
pub struct AssignmentRow {
    pub id: String,
    pub job_id: B256,
    pub replica: u16,
    pub miner: Address,
    pub max_charge: U256,
    pub signature: Signature,
    pub state: AssignmentState,
    pub error: Option<String>,
    pub receipt: Option<SignedReceipt>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored log chunk, as the API serves it.
pub use fog_protocol::api::LogLine as LogRow;

/// How a key came to own a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    /// The key uploaded its bytes: counted in the key's quota.
    Upload,
    /// A miner uploaded it as the output of the key's job: bounded by the
    /// job's disk, kept with the job.
    Output,
}

impl BlobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Upload => "upload",
            Self::Output => "output",
        }
    }
}

impl FromStr for BlobKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "upload" => Ok(Self::Upload),
            "output" => Ok(Self::Output),
            other => Err(format!("unknown blob kind {other:?}")),
        }
    }
}

/// A key's ownership of a blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OwnedBlob {
    pub hash: B256,
    pub size: u64,
    pub kind: BlobKind,
    pub public: bool,
    pub created_at: i64,
}

/// What one retention sweep deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    /// Jobs whose logs were deleted.
    pub jobs: u64,
    /// Ownerships that lapsed.
    pub ownerships: u64,
    /// Blobs nobody owns or uses any more: their bytes are to be deleted.
    pub blobs: Vec<B256>,
}

/// A miner's record of outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MinerRecord {
    pub completed: u64,
    /// Runs that failed on the miner, or receipts the hub refused.
    pub failed: u64,
    /// Receipts whose output differed from the k that agreed.
    pub disagreed: u64,
    /// Went away (disconnected, crashed) with a job.
    pub dropped: u64,
    /// Held a job past its max duration plus the hub's grace.
    pub timed_out: u64,
}

impl MinerRecord {
    /// Laplace-smoothed share of good outcomes: a new miner starts at 0.5,
    /// and one bad outcome does not sink a long good record.
    pub fn reputation(&self) -> f64 {
        let bad = self.failed + self.disagreed + self.dropped + self.timed_out;
        (self.completed as f64 + 1.0) / ((self.completed + bad) as f64 + 2.0)
    }
}

/// What a miner's run came to, for its record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinerOutcome {
    Completed,
    Failed,
    Disagreed,
    Dropped,
    TimedOut,
}

/// The hub's database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

/// The machine's time for the store's own bookkeeping (created, updated,
/// closed): the one clock of `fog_protocol::clock`.
fn now() -> i64 {
    i64::try_from(fog_protocol::clock::unix_now()).unwrap_or(i64::MAX)
}

impl Store {
    /// Opens (creating if needed) the database at `url` (`sqlite://PATH` or
    /// `sqlite::memory:`) and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .foreign_keys(true)
            // WAL with synchronous=NORMAL: a committed write survives the
            // process being killed; only a power loss can take the last ones.
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            // An in-memory database lives in one connection.
            .max_connections(if in_memory { 1 } else { 8 })
            .connect_with(options)
            .await?;
        sqlx::migrate!("../migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    // ---- jobs ---------------------------------------------------------------

    /// Stores a new job as queued.
    pub async fn insert_job(
        &self,
        job_id: B256,
        buyer: Address,
        spec: &JobSpec,
        signature: &Signature,
    ) -> Result<JobRow, StoreError> {
        self.insert_job_with_auth(job_id, buyer, spec, signature, None)
            .await
    }

    /// Stores a new job as queued; with `auth` it settles through the batched path.
    pub async fn insert_job_with_auth(
        &self,
        job_id: B256,
        buyer: Address,
        spec: &JobSpec,
        signature: &Signature,
        auth: Option<&fog_protocol::batch::SignedJobAuth>,
    ) -> Result<JobRow, StoreError> {
        let auth_json = auth
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt("job authorisation", "", e))?;
        let t = now();
        let seq = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(t);
        let spec_json = serde_json::to_string(spec).map_err(|e| corrupt("spec", "", e))?;
        let spec_hash = spec.spec_hash();
        let inserted = sqlx::query(
            "INSERT INTO jobs (job_id, buyer, spec_hash, spec_json, signature, replicas, state, seq, created_at, updated_at, job_auth)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)",
        )
        .bind(job_id.to_string())
        .bind(hex_addr(buyer))
        .bind(spec_hash.to_string())
        .bind(&spec_json)
        .bind(signature.to_string())
        .bind(i64::from(spec.replicas))
        .bind(JobState::Queued.as_str())
        .bind(seq)
        .bind(t)
        .bind(auth_json)
        .execute(&self.pool)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::JobExists(job_id))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(JobRow {
                job_id,
                buyer,
                spec: spec.clone(),
                spec_hash,
                signature: *signature,
                state: JobState::Queued,
                error: None,
                output_hash: None,
                seq,
                created_at: t,
                updated_at: t,
                settlement: None,
                settle_tx: None,
                settle_error: None,
                closed_at: None,
                auth: auth.cloned(),
            }),
        }
    }

    pub async fn job(&self, job_id: B256) -> Result<Option<JobRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"
        )))
        .bind(job_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| job_row(&r)).transpose()
    }

    /// A buyer's jobs, newest first, `limit` at most, older than `before_seq` if given.
    pub async fn jobs_of(
        &self,
        buyer: Address,
        before_seq: Option<i64>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE buyer = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3"
        )))
        .bind(hex_addr(buyer))
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    /// Jobs not yet final, oldest first: what a restarted hub picks up.
    pub async fn unfinished_jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY seq"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    /// Moves a job from one of `from` to `to`; false if it was in none of them.
    pub async fn set_job_state(
        &self,
        job_id: B256,
        from: &[JobState],
        to: JobState,
        error: Option<&str>,
        output_hash: Option<B256>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, error = COALESCE($2, error), output_hash = COALESCE($3, output_hash), updated_at = $4
             WHERE job_id = $5 AND state IN ($6, $7, $8, $9, $10)",
        )
        .bind(to.as_str())
        .bind(error)
        .bind(output_hash.map(|h| h.to_string()))
        .bind(now())
        .bind(job_id.to_string());
        let done = bind_states(done, &from).execute(&self.pool).await?;
        if to.is_final() {
            self.close_if_done(job_id).await?;
        }
        Ok(done.rows_affected() == 1)
    }

    /// Jobs with k agreeing receipts (completed; failed with a paid run;
    /// cancelled mid-run) whose settlement is not final, oldest first.
    pub async fn jobs_to_settle(&self, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE state IN ('completed', 'failed', 'cancelled') AND output_hash IS NOT NULL
               AND (settlement IS NULL OR settlement = 'pending')
             ORDER BY seq LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    /// Failed and cancelled jobs whose escrow the hub has not released yet,
    /// oldest first (a cancelled job whose stopped runs agreed is settled on
    /// their receipts instead: it has an output hash).
    pub async fn jobs_to_release(&self, limit: u32) -> Result<Vec<JobRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {JOB_COLUMNS} FROM jobs
             WHERE state IN ('failed', 'cancelled') AND output_hash IS NULL
               AND (settlement IS NULL OR settlement = 'pending')
             ORDER BY seq LIMIT $1"
        )))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(job_row).collect()
    }

    /// Records where a job's settlement is; a transaction hash once known is kept.
    pub async fn set_settlement(
        &self,
        job_id: B256,
        settlement: Settlement,
        tx: Option<B256>,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET settlement = $1, settle_tx = COALESCE($2, settle_tx), settle_error = $3, updated_at = $4
             WHERE job_id = $5",
        )
        .bind(settlement.as_str())
        .bind(tx.map(|t| t.to_string()))
        .bind(error)
        .bind(now())
        .bind(job_id.to_string())
        .execute(&self.pool)
        .await?;
        self.close_if_done(job_id).await
    }

    /// How many jobs are in each state.
    pub async fn job_counts(&self) -> Result<HashMap<String, i64>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get::<String, _>("state")?, r.try_get::<i64, _>("n")?)))
            .collect()
    }

    // ---- assignments -----------------------------------------------------------

    /// Stores an assignment before it is sent. Fails (unique violation) if
    /// the replica is already live or the miner already holds the job.
    pub async fn insert_assignment(&self, row: &AssignmentRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO assignments (id, job_id, replica, miner, max_charge, signature, state, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&row.id)
        .bind(row.job_id.to_string())
        .bind(i64::from(row.replica))
        .bind(hex_addr(row.miner))
        .bind(row.max_charge.to_string())
        .bind(row.signature.to_string())
        .bind(row.state.as_str())
        .bind(row.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Moves an assignment from one of `from` to `to` (compare and set);
    /// false if it was in none of them.
    pub async fn set_assignment_state(
        &self,
        id: &str,
        from: &[AssignmentState],
        to: AssignmentState,
        error: Option<&str>,
        receipt: Option<&SignedReceipt>,
    ) -> Result<bool, StoreError> {
        let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
        let receipt = receipt
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt("receipt", "", e))?;
        let q = sqlx::query(
            "UPDATE assignments SET state = $1, error = COALESCE($2, error), receipt = COALESCE($3, receipt), updated_at = $4
             WHERE id = $5 AND state IN ($6, $7, $8, $9, $10)",
        )
        .bind(to.as_str())
        .bind(error)
        .bind(receipt)
        .bind(now())
        .bind(id);
        let done = bind_states(q, &from).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn assignments_of(&self, job_id: B256) -> Result<Vec<AssignmentRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE job_id = $1 ORDER BY created_at, id"
        )))
        .bind(job_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(assignment_row).collect()
    }

    pub async fn assignment(&self, id: &str) -> Result<Option<AssignmentRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ASSIGNMENT_COLUMNS} FROM assignments WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| assignment_row(&r)).transpose()
    }

    // ---- blobs: storage, ownership, quotas, retention -------------------------

    /// Records that the bytes of `hash` are stored (idempotent).
    pub async fn record_blob(&self, hash: B256, size: u64, by: Address) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO blobs (hash, size, uploader, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (hash) DO NOTHING",
        )
        .bind(hash.to_string())
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(hex_addr(by))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Makes `owner` an owner of the stored blob `hash` (idempotent) and
    /// returns what it owns. Nothing here depends on other owners.
    pub async fn add_owner(
        &self,
        hash: B256,
        owner: Address,
        size: u64,
        kind: BlobKind,
    ) -> Result<OwnedBlob, StoreError> {
        sqlx::query(
            "INSERT INTO blob_owners (hash, owner, size, kind, public, created_at) VALUES ($1, $2, $3, $4, 0, $5)
             ON CONFLICT (hash, owner) DO NOTHING",
        )
        .bind(hash.to_string())
        .bind(hex_addr(owner))
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .bind(kind.as_str())
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.owned_blob(hash, owner)
            .await?
            .ok_or_else(|| corrupt("blob owner", &hash.to_string(), "vanished after insert"))
    }

    /// What `owner` owns of blob `hash`, if anything.
    pub async fn owned_blob(
        &self,
        hash: B256,
        owner: Address,
    ) -> Result<Option<OwnedBlob>, StoreError> {
        let row = sqlx::query(
            "SELECT size, kind, public, created_at FROM blob_owners WHERE hash = $1 AND owner = $2",
        )
        .bind(hash.to_string())
        .bind(hex_addr(owner))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let kind: String = r.try_get("kind")?;
            Ok(OwnedBlob {
                hash,
                size: u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0),
                kind: parse("blob kind", &kind)?,
                public: r.try_get::<i64, _>("public")? != 0,
                created_at: r.try_get("created_at")?,
            })
        })
        .transpose()
    }

    /// The size of blob `hash` if `user` may name it in a spec: it owns it,
    /// or an owner published it.
    pub async fn usable_blob(&self, hash: B256, user: Address) -> Result<Option<u64>, StoreError> {
        let row = sqlx::query(
            "SELECT size FROM blob_owners WHERE hash = $1 AND (owner = $2 OR public = 1) LIMIT 1",
        )
        .bind(hash.to_string())
        .bind(hex_addr(user))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok(u64::try_from(r.try_get::<i64, _>("size")?).unwrap_or(0)))
            .transpose()
    }

    /// Publishes `owner`'s blob: any buyer's spec may then name it. False if
    /// `owner` has no such blob.
    pub async fn publish_blob(&self, hash: B256, owner: Address) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE blob_owners SET public = 1 WHERE hash = $1 AND owner = $2")
            .bind(hash.to_string())
            .bind(hex_addr(owner))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Bytes and blobs `owner` has uploaded and still holds (its quota's use).
    pub async fn usage(&self, owner: Address) -> Result<(u64, u64), StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS n FROM blob_owners WHERE owner = $1 AND kind = 'upload'",
        )
        .bind(hex_addr(owner))
        .fetch_one(&self.pool)
        .await?;
        let bytes: i64 = row.try_get("bytes")?;
        let n: i64 = row.try_get("n")?;
        Ok((
            u64::try_from(bytes).unwrap_or(0),
            u64::try_from(n).unwrap_or(0),
        ))
    }

    /// Records that job `job_id` uses or produced these blobs.
    pub async fn link_job_blobs(&self, job_id: B256, hashes: &[B256]) -> Result<(), StoreError> {
        for hash in hashes {
            sqlx::query(
                "INSERT INTO job_blobs (job_id, hash) VALUES ($1, $2) ON CONFLICT (job_id, hash) DO NOTHING",
            )
            .bind(job_id.to_string())
            .bind(hash.to_string())
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Whether job `job_id` uses or produced blob `hash`.
    pub async fn job_has_blob(&self, job_id: B256, hash: B256) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 AS one FROM job_blobs WHERE job_id = $1 AND hash = $2")
            .bind(job_id.to_string())
            .bind(hash.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Records an escrow `owner` has open with this hub (idempotent).
    pub async fn add_stake(
        &self,
        job_id: B256,
        owner: Address,
        amount: U256,
        deadline: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO stakes (job_id, owner, amount, deadline) VALUES ($1, $2, $3, $4)
             ON CONFLICT (job_id) DO NOTHING",
        )
        .bind(job_id.to_string())
        .bind(hex_addr(owner))
        .bind(amount.to_string())
        .bind(i64::try_from(deadline).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What `owner` has at stake with this hub at `now`: its recorded
    /// escrows whose deadline is ahead and whose job (if submitted) is not closed.
    pub async fn stake(&self, owner: Address, now: u64) -> Result<U256, StoreError> {
        let rows = sqlx::query(
            "SELECT s.amount FROM stakes s LEFT JOIN jobs j ON j.job_id = s.job_id
             WHERE s.owner = $1 AND s.deadline > $2 AND j.closed_at IS NULL",
        )
        .bind(hex_addr(owner))
        .bind(i64::try_from(now).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().try_fold(U256::ZERO, |sum, r| {
            let amount: String = r.try_get("amount")?;
            Ok(sum.saturating_add(parse::<U256>("stake", &amount)?))
        })
    }

    /// Stamps a job closed once it is final and its settlement is over: its
    /// data is kept for the retention period from then.
    async fn close_if_done(&self, job_id: B256) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE jobs SET closed_at = $1 WHERE job_id = $2 AND closed_at IS NULL
             AND (state IN ('failed', 'cancelled')
                  OR (state = 'completed' AND settlement IN ('settled', 'refunded', 'failed')))",
        )
        .bind(now())
        .bind(job_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes what the retention rules no longer keep, as of `now`:
    /// the logs of jobs closed before `closed_before`; ownership of blobs
    /// made before `unused_before` that no unpurged job of their owner uses;
    /// and stored blobs that nobody owns and no unpurged job uses, whose
    /// hashes are returned for their bytes to be deleted.
    pub async fn purge(
        &self,
        now: i64,
        closed_before: i64,
        unused_before: i64,
    ) -> Result<Purged, StoreError> {
        let mut tx = self.pool.begin().await?;
        let jobs: Vec<String> = sqlx::query_scalar(
            "SELECT job_id FROM jobs WHERE purged_at IS NULL AND closed_at IS NOT NULL AND closed_at < $1",
        )
        .bind(closed_before)
        .fetch_all(&mut *tx)
        .await?;
        for job in &jobs {
            sqlx::query("DELETE FROM job_logs WHERE job_id = $1")
                .bind(job)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM stakes WHERE job_id = $1")
                .bind(job)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE jobs SET purged_at = $1 WHERE job_id = $2")
                .bind(now)
                .bind(job)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM stakes WHERE deadline < $1 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.job_id = stakes.job_id)")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let owners = sqlx::query(
            "DELETE FROM blob_owners WHERE created_at < $1 AND NOT EXISTS (
                 SELECT 1 FROM job_blobs jb JOIN jobs j ON j.job_id = jb.job_id
                 WHERE jb.hash = blob_owners.hash AND j.buyer = blob_owners.owner AND j.purged_at IS NULL)",
        )
        .bind(unused_before)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let orphans: Vec<String> = sqlx::query_scalar(
            "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM blob_owners o WHERE o.hash = blobs.hash)
             AND NOT EXISTS (SELECT 1 FROM job_blobs jb JOIN jobs j ON j.job_id = jb.job_id
                             WHERE jb.hash = blobs.hash AND j.purged_at IS NULL)
             RETURNING hash",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Purged {
            jobs: jobs.len() as u64,
            ownerships: owners,
            blobs: orphans
                .iter()
                .map(|h| parse("blob hash", h))
                .collect::<Result<_, _>>()?,
        })
    }

    // ---- logs ----------------------------------------------------------------

    /// Appends a log chunk; returns its sequence number within the job.
    pub async fn append_log(
        &self,
        job_id: B256,
        miner: Address,
        stream: &str,
        data: &str,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO job_logs (job_id, seq, miner, stream, data)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM job_logs WHERE job_id = $1), $2, $3, $4)
             RETURNING seq",
        )
        .bind(job_id.to_string())
        .bind(hex_addr(miner))
        .bind(stream)
        .bind(data)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("seq")?)
    }

    /// Log chunks after `after_seq`, in order.
    pub async fn logs(
        &self,
        job_id: B256,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, miner, stream, data FROM job_logs WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(job_id.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }

    // ---- miners ----------------------------------------------------------------

    /// Adds one outcome to a miner's record.
    pub async fn record_outcome(
        &self,
        miner: Address,
        outcome: MinerOutcome,
    ) -> Result<(), StoreError> {
        let column = match outcome {
            MinerOutcome::Completed => "completed",
            MinerOutcome::Failed => "failed",
            MinerOutcome::Disagreed => "disagreed",
            MinerOutcome::Dropped => "dropped",
            MinerOutcome::TimedOut => "timed_out",
        };
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO miners (address, {column}, last_seen) VALUES ($1, 1, $2)
             ON CONFLICT (address) DO UPDATE SET {column} = miners.{column} + 1, last_seen = $2"
        )))
        .bind(hex_addr(miner))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A miner's record (zeros for a miner never seen).
    pub async fn miner_record(&self, miner: Address) -> Result<MinerRecord, StoreError> {
        let row = sqlx::query(
            "SELECT completed, failed, disagreed, dropped, timed_out FROM miners WHERE address = $1",
        )
        .bind(hex_addr(miner))
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => MinerRecord::default(),
            Some(r) => record_of(&r)?,
        })
    }

    /// Every miner the hub has a record of, with its last outcome's time.
    pub async fn miner_records(&self) -> Result<Vec<(Address, MinerRecord, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT address, completed, failed, disagreed, dropped, timed_out, last_seen FROM miners ORDER BY address",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    parse("miner address", &r.try_get::<String, _>("address")?)?,
                    record_of(r)?,
                    r.try_get::<i64, _>("last_seen")?,
                ))
            })
            .collect()
    }
}

fn record_of(r: &sqlx::sqlite::SqliteRow) -> Result<MinerRecord, StoreError> {
    let count = |column: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(r.try_get::<i64, _>(column)?).unwrap_or(0))
    };
    Ok(MinerRecord {
        completed: count("completed")?,
        failed: count("failed")?,
        disagreed: count("disagreed")?,
        dropped: count("dropped")?,
        timed_out: count("timed_out")?,
    })
}

const JOB_COLUMNS: &str = "job_id, buyer, spec_hash, spec_json, signature, state, error, output_hash, seq, created_at, updated_at, settlement, settle_tx, settle_error, closed_at, job_auth";
const ASSIGNMENT_COLUMNS: &str = "id, job_id, replica, miner, max_charge, signature, state, error, receipt, created_at, updated_at";

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds up to five states to `IN ($a, …)`, repeating the first to fill.
fn bind_states<'q>(mut q: Query<'q>, states: &[&'static str]) -> Query<'q> {
    for i in 0..5 {
        q = q.bind(states.get(i).or(states.first()).copied().unwrap_or(""));
    }
    q
}

fn job_row(r: &sqlx::sqlite::SqliteRow) -> Result<JobRow, StoreError> {
    let text = |c: &str| r.try_get::<String, _>(c);
    let spec_json = text("spec_json")?;
    Ok(JobRow {
        job_id: parse("job id", &text("job_id")?)?,
        buyer: parse("buyer", &text("buyer")?)?,
        spec: serde_json::from_str(&spec_json).map_err(|e| corrupt("spec", &spec_json, e))?,
        spec_hash: parse("spec hash", &text("spec_hash")?)?,
        signature: parse("signature", &text("signature")?)?,
        state: parse("job state", &text("state")?)?,
        error: r.try_get("error")?,
        output_hash: r
            .try_get::<Option<String>, _>("output_hash")?
            .map(|h| parse("output hash", &h))
            .transpose()?,
        seq: r.try_get("seq")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        settlement: r
            .try_get::<Option<String>, _>("settlement")?
            .map(|s| parse("settlement", &s))
            .transpose()?,
        settle_tx: r
            .try_get::<Option<String>, _>("settle_tx")?
            .map(|t| parse("settlement transaction", &t))
            .transpose()?,
        settle_error: r.try_get("settle_error")?,
        closed_at: r.try_get("closed_at")?,
        auth: r
            .try_get::<Option<String>, _>("job_auth")?
            .map(|j| serde_json::from_str(&j).map_err(|e| corrupt("job authorisation", &j, e)))
            .transpose()?,
    })
}

fn assignment_row(r: &sqlx::sqlite::SqliteRow) -> Result<AssignmentRow, StoreError> {
    let text = |c: &str| r.try_get::<String, _>(c);
    let replica: i64 = r.try_get("replica")?;
    Ok(AssignmentRow {
        id: text("id")?,
        job_id: parse("job id", &text("job_id")?)?,
        replica: u16::try_from(replica).map_err(|e| corrupt("replica", &replica.to_string(), e))?,
        miner: parse("miner", &text("miner")?)?,
        max_charge: parse("max charge", &text("max_charge")?)?,
        signature: parse("signature", &text("signature")?)?,
        state: parse("assignment state", &text("state")?)?,
        error: r.try_get("error")?,
        receipt: r
            .try_get::<Option<String>, _>("receipt")?
            .map(|j| serde_json::from_str(&j).map_err(|e| corrupt("receipt", &j, e)))
            .transpose()?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

// ---- the batched settlement path ---------------------------------------------

/// An epoch this hub committed, as `BatchSettlement` stored and emitted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochRow {
    pub index: u32,
    pub root: B256,
    pub ledger_hash: B256,
    pub committed_at: u64,
    pub entries: Vec<U256>,
    pub tx: B256,
}

/// A buyer's permit the hub carries in its next epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FundingRow {
    pub owner: Address,
    pub value: U256,
    pub deadline: u64,
    /// The owner's token permit nonce when it signed.
    pub nonce: U256,
    pub signature: Signature,
}

/// A batched job's place: in an epoch's tree, or still waiting.
#[derive(Clone, Debug)]
pub struct BatchJobRow {
    pub job: fog_protocol::batch::BatchedJob,
    pub state: String,
    /// (epoch, leaf index) once committed.
    pub place: Option<(u32, u32)>,
}

impl Store {
    /// What `buyer` has authorised for batched jobs not yet settled or given
    /// up: its account must cover this and any new authorisation.
    pub async fn outstanding_batched(&self, buyer: Address) -> Result<U256, StoreError> {
        let rows = sqlx::query(
            "SELECT spec_json FROM jobs WHERE buyer = $1 AND job_auth IS NOT NULL
               AND (settlement IS NULL OR settlement = 'pending')",
        )
        .bind(hex_addr(buyer))
        .fetch_all(&self.pool)
        .await?;
        let mut total = U256::ZERO;
        for r in &rows {
            let json: String = r.try_get("spec_json")?;
            let spec: JobSpec =
                serde_json::from_str(&json).map_err(|e| corrupt("spec", &json, e))?;
            total = total.saturating_add(spec.maxPayment);
        }
        Ok(total)
    }

    /// Queues a completed batched job for the next epoch.
    pub async fn add_batch_job(
        &self,
        job: &fog_protocol::batch::BatchedJob,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_string(job).map_err(|e| corrupt("batched job", "", e))?;
        let deadline = i64::try_from(job.auth.payload.deadline).unwrap_or(i64::MAX);
        let inserted = sqlx::query(
            "INSERT INTO batch_jobs (job_id, buyer, body, deadline, state, created_at)
             VALUES ($1, $2, $3, $4, 'pending', $5)",
        )
        .bind(job.job_id().to_string())
        .bind(hex_addr(job.buyer))
        .bind(&body)
        .bind(deadline)
        .bind(now())
        .execute(&self.pool)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::JobExists(job.job_id()))
            }
            Err(e) => Err(e.into()),
            Ok(_) => Ok(()),
        }
    }

    /// Pending jobs whose deadline is after `after`, oldest first, at most `limit`.
    pub async fn pending_batch_jobs(
        &self,
        after: u64,
        limit: u32,
    ) -> Result<Vec<fog_protocol::batch::BatchedJob>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM batch_jobs WHERE state = 'pending' AND deadline > $1
             ORDER BY created_at, job_id LIMIT $2",
        )
        .bind(i64::try_from(after).unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(batch_body).collect()
    }

    /// Gives up pending jobs whose deadline is at or before `until`: too late
    /// for an epoch (the contract would call it late inclusion); their miners
    /// claim them. Returns how many.
    pub async fn expire_batch_jobs(&self, until: u64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE batch_jobs SET state = 'expired' WHERE state = 'pending' AND deadline <= $1",
        )
        .bind(i64::try_from(until).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Keeps a buyer's permit for the next epoch; false if one already waits.
    pub async fn add_funding(&self, f: &FundingRow) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO batch_fundings (owner, value, deadline, nonce, signature, state, created_at)
             VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
        )
        .bind(hex_addr(f.owner))
        .bind(format!("{:#x}", f.value))
        .bind(i64::try_from(f.deadline).unwrap_or(i64::MAX))
        .bind(format!("{:#x}", f.nonce))
        .bind(f.signature.to_string())
        .bind(now())
        .execute(&self.pool)
        .await;
        match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e.into()),
            Ok(_) => Ok(true),
        }
    }

    /// The permits waiting for an epoch.
    pub async fn pending_fundings(&self) -> Result<Vec<FundingRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT owner, value, deadline, nonce, signature FROM batch_fundings WHERE state = 'pending' ORDER BY created_at",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let text = |c: &str| r.try_get::<String, _>(c);
                let deadline: i64 = r.try_get("deadline")?;
                Ok(FundingRow {
                    owner: parse("funding owner", &text("owner")?)?,
                    value: parse("funding value", &text("value")?)?,
                    deadline: u64::try_from(deadline)
                        .map_err(|e| corrupt("funding deadline", &deadline.to_string(), e))?,
                    nonce: parse("funding nonce", &text("nonce")?)?,
                    signature: parse("funding signature", &text("signature")?)?,
                })
            })
            .collect()
    }

    /// What `owner`'s waiting permit will deposit (zero if none).
    pub async fn pending_funding_of(&self, owner: Address) -> Result<U256, StoreError> {
        let row =
            sqlx::query("SELECT value FROM batch_fundings WHERE state = 'pending' AND owner = $1")
                .bind(hex_addr(owner))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| parse("funding value", &r.try_get::<String, _>("value")?))
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// Marks `owner`'s waiting permit `used` (carried in an epoch) or `dropped`.
    pub async fn close_funding(&self, owner: Address, used: bool) -> Result<(), StoreError> {
        sqlx::query("UPDATE batch_fundings SET state = $1 WHERE state = 'pending' AND owner = $2")
            .bind(if used { "used" } else { "dropped" })
            .bind(hex_addr(owner))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Gives up `buyer`'s pending batched jobs: its account cannot pay them.
    pub async fn unfund_batch_jobs(&self, buyer: Address) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE batch_jobs SET state = 'unfunded' WHERE state = 'pending' AND buyer = $1",
        )
        .bind(hex_addr(buyer))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Records a committed epoch and each job's leaf, at once.
    pub async fn record_epoch(&self, epoch: &EpochRow, jobs: &[B256]) -> Result<(), StoreError> {
        let entries: Vec<String> = epoch.entries.iter().map(|e| format!("{e:#x}")).collect();
        let entries = serde_json::to_string(&entries).map_err(|e| corrupt("entries", "", e))?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO batch_epochs (idx, root, ledger_hash, committed_at, entries, tx)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(i64::from(epoch.index))
        .bind(epoch.root.to_string())
        .bind(epoch.ledger_hash.to_string())
        .bind(i64::try_from(epoch.committed_at).unwrap_or(i64::MAX))
        .bind(&entries)
        .bind(epoch.tx.to_string())
        .execute(&mut *tx)
        .await?;
        for (leaf, job_id) in jobs.iter().enumerate() {
            sqlx::query(
                "UPDATE batch_jobs SET state = 'committed', epoch = $1, leaf = $2 WHERE job_id = $3",
            )
            .bind(i64::from(epoch.index))
            .bind(i64::try_from(leaf).unwrap_or(i64::MAX))
            .bind(job_id.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn epoch(&self, index: u32) -> Result<Option<EpochRow>, StoreError> {
        let row = sqlx::query(
            "SELECT idx, root, ledger_hash, committed_at, entries, tx FROM batch_epochs WHERE idx = $1",
        )
        .bind(i64::from(index))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            let text = |c: &str| r.try_get::<String, _>(c);
            let idx: i64 = r.try_get("idx")?;
            let at: i64 = r.try_get("committed_at")?;
            let entries: Vec<String> =
                serde_json::from_str(&text("entries")?).map_err(|e| corrupt("entries", "", e))?;
            Ok(EpochRow {
                index: u32::try_from(idx).map_err(|e| corrupt("epoch", &idx.to_string(), e))?,
                root: parse("root", &text("root")?)?,
                ledger_hash: parse("ledger hash", &text("ledger_hash")?)?,
                committed_at: u64::try_from(at)
                    .map_err(|e| corrupt("commit time", &at.to_string(), e))?,
                entries: entries
                    .iter()
                    .map(|e| parse("entry", e))
                    .collect::<Result<_, _>>()?,
                tx: parse("epoch transaction", &text("tx")?)?,
            })
        })
        .transpose()
    }

    /// An epoch's jobs in leaf order (the tree is rebuilt from them).
    pub async fn epoch_jobs(
        &self,
        index: u32,
    ) -> Result<Vec<fog_protocol::batch::BatchedJob>, StoreError> {
        let rows = sqlx::query("SELECT body FROM batch_jobs WHERE epoch = $1 ORDER BY leaf")
            .bind(i64::from(index))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(batch_body).collect()
    }

    pub async fn batch_job(&self, job_id: B256) -> Result<Option<BatchJobRow>, StoreError> {
        let row = sqlx::query("SELECT body, state, epoch, leaf FROM batch_jobs WHERE job_id = $1")
            .bind(job_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let epoch: Option<i64> = r.try_get("epoch")?;
            let leaf: Option<i64> = r.try_get("leaf")?;
            let place = match (epoch, leaf) {
                (Some(e), Some(l)) => Some((
                    u32::try_from(e).map_err(|x| corrupt("epoch", &e.to_string(), x))?,
                    u32::try_from(l).map_err(|x| corrupt("leaf", &l.to_string(), x))?,
                )),
                _ => None,
            };
            Ok(BatchJobRow {
                job: batch_body(&r)?,
                state: r.try_get("state")?,
                place,
            })
        })
        .transpose()
    }
}

/// A stored log chunk (job or service logs share the shape).
fn log_row(r: &sqlx::sqlite::SqliteRow) -> Result<LogRow, StoreError> {
    let miner: String = r.try_get("miner")?;
    Ok(LogRow {
        seq: r.try_get("seq")?,
        miner: parse("miner", &miner)?,
        stream: parse("log stream", &r.try_get::<String, _>("stream")?)?,
        data: r.try_get("data")?,
    })
}

fn batch_body(r: &sqlx::sqlite::SqliteRow) -> Result<fog_protocol::batch::BatchedJob, StoreError> {
    let body: String = r.try_get("body")?;
    serde_json::from_str(&body).map_err(|e| corrupt("batched job", &body, e))
}
