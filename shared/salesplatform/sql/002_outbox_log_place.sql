-- The outbox names each pending event by its place in the log, (tx_id, position), so the relay
-- reaches the events through the log's own index (events_global_order) instead of scanning it.
ALTER TABLE outbox ADD COLUMN tx_id xid8;
UPDATE outbox o SET tx_id = e.tx_id FROM events e WHERE e.position = o.position;
ALTER TABLE outbox ALTER COLUMN tx_id SET NOT NULL;
