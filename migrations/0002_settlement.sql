-- Settlement of completed jobs on chain.
-- settlement: NULL (not yet tried) | pending (a transaction was sent) |
-- settled | refunded (the buyer refunded first) | failed (the escrow refused).
ALTER TABLE jobs ADD COLUMN settlement TEXT;
ALTER TABLE jobs ADD COLUMN settle_tx TEXT;
ALTER TABLE jobs ADD COLUMN settle_error TEXT;
CREATE INDEX jobs_to_settle ON jobs (state, settlement);
