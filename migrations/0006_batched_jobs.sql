-- A job settled through the batched path carries its buyer's signed JobAuth
-- (JSON) instead of an escrow; NULL for per-job escrow jobs.
ALTER TABLE jobs ADD COLUMN job_auth TEXT;
-- batch_jobs.state also takes 'unfunded': the buyer's batch account could not
-- pay the job when its epoch was committed (it spent the balance elsewhere).
