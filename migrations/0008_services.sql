-- Long-running services (docs/services.md). A service is paid on the
-- batched path in segments: one segment is one miner's stint of one replica
-- and is a batched job of its own, under one of the buyer's pre-signed
-- segment authorisations.
CREATE TABLE services (
    service_id  TEXT PRIMARY KEY,
    buyer       TEXT NOT NULL,
    spec_hash   TEXT NOT NULL,
    -- The ServiceSpec as JSON.
    spec_json   TEXT NOT NULL,
    -- starting | running | stopped | ended
    state       TEXT NOT NULL,
    reason      TEXT,
    created_at  BIGINT NOT NULL,
    ended_at    BIGINT
);
CREATE INDEX services_by_buyer ON services (buyer, created_at);
CREATE INDEX services_by_state ON services (state);

-- The buyer's segment authorisations, in salt order; one is spent per segment.
CREATE TABLE service_auths (
    service_id  TEXT NOT NULL REFERENCES services (service_id),
    seq         BIGINT NOT NULL,
    job_id      TEXT NOT NULL UNIQUE,
    -- The SignedJobAuth as JSON.
    auth_json   TEXT NOT NULL,
    max_payment TEXT NOT NULL,
    deadline    BIGINT NOT NULL,
    used        BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (service_id, seq)
);

-- Segments: which miner ran which authorisation, and its latest receipt.
CREATE TABLE service_segments (
    job_id      TEXT PRIMARY KEY REFERENCES service_auths (job_id),
    service_id  TEXT NOT NULL REFERENCES services (service_id),
    replica     INTEGER NOT NULL,
    miner       TEXT NOT NULL,
    max_charge  TEXT NOT NULL,
    assignment_signature TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    end_reason  TEXT,
    -- Healthy periods the latest receipt covers, and that receipt (JSON).
    periods     BIGINT NOT NULL DEFAULT 0,
    receipt_json TEXT
);
CREATE INDEX service_segments_by_service ON service_segments (service_id, started_at);

CREATE TABLE service_logs (
    service_id  TEXT NOT NULL REFERENCES services (service_id),
    seq         BIGINT NOT NULL,
    miner       TEXT NOT NULL,
    stream      TEXT NOT NULL,
    data        TEXT NOT NULL,
    PRIMARY KEY (service_id, seq)
);
