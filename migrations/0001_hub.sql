-- The hub's durable state. Portable SQL (SQLite now, PostgreSQL later):
-- text hex for addresses, hashes and token amounts, BIGINT unix seconds.

-- A buyer's job, accepted once its escrow was seen open on chain.
CREATE TABLE jobs (
    job_id      TEXT PRIMARY KEY,
    buyer       TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    spec_json   TEXT NOT NULL,
    signature   TEXT NOT NULL,
    replicas    INTEGER NOT NULL,
    -- queued | running | completed | failed | cancelled
    state       TEXT NOT NULL,
    error       TEXT,
    output_hash TEXT,
    seq         BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX jobs_by_buyer ON jobs (buyer, seq);
CREATE INDEX jobs_by_state ON jobs (state, seq);

-- One replica's run on one miner. A replica is reassigned by a new row.
CREATE TABLE assignments (
    id          TEXT PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs (job_id),
    replica     INTEGER NOT NULL,
    miner       TEXT NOT NULL,
    max_charge  TEXT NOT NULL,
    signature   TEXT NOT NULL,
    -- assigned | running | finished | failed | lost | cancelled
    state       TEXT NOT NULL,
    error       TEXT,
    receipt     TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
-- Never two live assignments of one replica.
CREATE UNIQUE INDEX assignments_one_live_per_replica
    ON assignments (job_id, replica) WHERE state IN ('assigned', 'running');
-- k distinct miners: a miner holds at most one live or finished replica of a job.
CREATE UNIQUE INDEX assignments_distinct_miners
    ON assignments (job_id, miner) WHERE state IN ('assigned', 'running', 'finished');
CREATE INDEX assignments_by_state ON assignments (state);

-- Content-addressed blobs (inputs uploaded by buyers, outputs by miners).
CREATE TABLE blobs (
    hash        TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    uploader    TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Job logs as the miners stream them.
CREATE TABLE job_logs (
    job_id      TEXT NOT NULL REFERENCES jobs (job_id),
    seq         BIGINT NOT NULL,
    miner       TEXT NOT NULL,
    stream      TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Each miner's record, which the scheduler weighs.
CREATE TABLE miners (
    address     TEXT PRIMARY KEY,
    completed   BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    dropped     BIGINT NOT NULL DEFAULT 0,
    last_seen   BIGINT NOT NULL
);
