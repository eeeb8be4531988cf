-- The reports read the local log by event type within a stretch of it ((tx_id, position) order):
-- a statement for one event type touches only that type's events, however long the stretch.
CREATE INDEX IF NOT EXISTS events_by_type ON events (event_type, tx_id, position);
