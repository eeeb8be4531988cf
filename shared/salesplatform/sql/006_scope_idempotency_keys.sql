-- An Idempotency-Key is scoped to its caller and command, and the hash of the body it was
-- first used with is kept, so the same key with another body is refused instead of answered
-- with the first result (Stripe's and the IETF Idempotency-Key draft's semantics).
--
-- Expand only: rows recorded before this migration, and rows the previous release writes
-- while a rolling update runs, have the actor '' and no fingerprint; they keep answering their
-- (command, key) until the retention deletes them. The key stays in front of the primary key,
-- so the previous release's lookup by (command, key) still uses the index.
ALTER TABLE command_results ADD COLUMN actor_id text NOT NULL DEFAULT '';
ALTER TABLE command_results ADD COLUMN fingerprint text;
ALTER TABLE command_results DROP CONSTRAINT command_results_pkey;
ALTER TABLE command_results ADD PRIMARY KEY (command, idempotency_key, actor_id);
-- The retention deletes by age.
CREATE INDEX command_results_recorded_at ON command_results (recorded_at);
