-- A miner that holds an assignment past the job's max duration plus the
-- hub's grace (pull time, upload) without a receipt has timed out: its own
-- outcome in the miner's record, apart from failures and drops.
ALTER TABLE miners ADD COLUMN timed_out BIGINT NOT NULL DEFAULT 0;
