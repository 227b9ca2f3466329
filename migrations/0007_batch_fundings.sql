-- Buyers' permits for the batch contract that the hub carries in its next
-- epoch: the buyer's deposit into its own account, without a transaction of
-- the buyer's. At most one waits per buyer.
CREATE TABLE batch_fundings (
    owner       TEXT NOT NULL,
    value       TEXT NOT NULL,
    deadline    BIGINT NOT NULL,
    -- the token's permit nonce of the owner when it signed
    nonce       TEXT NOT NULL,
    signature   TEXT NOT NULL,
    -- pending | used | dropped (the permit could no longer be used)
    state       TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX batch_fundings_one_pending ON batch_fundings (owner) WHERE state = 'pending';
