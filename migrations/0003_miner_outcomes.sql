-- Outcomes a miner's record keeps apart.
-- A miner that holds an assignment past the job's max duration plus the
-- hub's grace (pull time, upload) without a receipt has timed out: its own
-- outcome in the miner's record, apart from failures and drops.
ALTER TABLE miners ADD COLUMN timed_out BIGINT NOT NULL DEFAULT 0;
-- A receipt whose output differed from the k that agreed: counted apart from
-- runs that failed, so an operator tells a cheat from a broken machine.
ALTER TABLE miners ADD COLUMN disagreed BIGINT NOT NULL DEFAULT 0;
