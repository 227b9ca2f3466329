-- The batched settlement path (docs/settlement.md): completed jobs waiting
-- for an epoch, and the epochs this hub committed with each job's place in
-- its Merkle tree (what proofs and challenge answers are rebuilt from).
CREATE TABLE batch_jobs (
    job_id      TEXT PRIMARY KEY,
    buyer       TEXT NOT NULL,
    -- The BatchedJob (JobAuth, signer version, commission, receipts with
    -- their assignments) as JSON.
    body        TEXT NOT NULL,
    deadline    BIGINT NOT NULL,
    -- pending | committed | expired (its deadline came first: miners claim it)
    state       TEXT NOT NULL,
    epoch       BIGINT,
    leaf        BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX batch_jobs_by_state ON batch_jobs (state, deadline);
CREATE INDEX batch_jobs_by_epoch ON batch_jobs (epoch, leaf);

CREATE TABLE batch_epochs (
    idx          BIGINT PRIMARY KEY,
    root         TEXT NOT NULL,
    ledger_hash  TEXT NOT NULL,
    committed_at BIGINT NOT NULL,
    -- The packed ledger entries, JSON array of 0x-hex words.
    entries      TEXT NOT NULL,
    tx           TEXT NOT NULL
);
