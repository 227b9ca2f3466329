-- Buyer data isolation, quotas and retention.
--
-- `blobs` stays the physical, content-addressed store (deduplicated by hash).
-- Who may use a blob is per key: every key that uploaded its bytes owns it,
-- and an output belongs to the buyer of the job whose miner uploaded it.
-- Answers and quotas depend only on the caller's own rows, never on whether
-- another key holds the same bytes.
CREATE TABLE blob_owners (
    hash        TEXT NOT NULL,
    owner       TEXT NOT NULL,
    size        BIGINT NOT NULL,
    -- upload (counted in the owner's quota) | output (bounded by the job's disk)
    kind        TEXT NOT NULL,
    -- 1: the owner published it; any buyer's spec may name it
    public      INTEGER NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (hash, owner)
);
CREATE INDEX blob_owners_by_owner ON blob_owners (owner, kind);
INSERT INTO blob_owners (hash, owner, size, kind, public, created_at)
    SELECT hash, uploader, size, 'upload', 0, created_at FROM blobs;

-- Which blobs a job uses (its inputs) or produced (its replicas' outputs):
-- a blob is kept while a job of its owner that uses it is open, and for the
-- retention period after that job closed.
CREATE TABLE job_blobs (
    job_id      TEXT NOT NULL REFERENCES jobs (job_id),
    hash        TEXT NOT NULL,
    PRIMARY KEY (job_id, hash)
);
CREATE INDEX job_blobs_by_hash ON job_blobs (hash);

-- What a key has at stake with this hub: escrows it named when uploading
-- (checked on chain) and escrows of jobs it submitted. Amounts are 0x-hex
-- token base units, summed by the hub.
CREATE TABLE stakes (
    job_id      TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    amount      TEXT NOT NULL,
    deadline    BIGINT NOT NULL
);
CREATE INDEX stakes_by_owner ON stakes (owner);

-- When a job stopped needing its data: final, and its settlement over.
ALTER TABLE jobs ADD COLUMN closed_at BIGINT;
-- When its logs and data were deleted after the retention period.
ALTER TABLE jobs ADD COLUMN purged_at BIGINT;
UPDATE jobs SET closed_at = updated_at
    WHERE state IN ('failed', 'cancelled')
       OR (state = 'completed' AND settlement IN ('settled', 'refunded', 'failed'));
CREATE INDEX jobs_to_purge ON jobs (closed_at) WHERE purged_at IS NULL;
