-- Crypto-shredding of personal data. Personal fields are stored in event payloads only sealed
-- (AES-GCM) with a data key of their customer; the keys live here and never in events. Erasing
-- a customer's personal data deletes its keys: every stored and published copy of the sealed
-- fields becomes unreadable, and a projection rebuilt from the log shows them as erased.
CREATE TABLE customer_keys (
    key_id      uuid PRIMARY KEY,
    customer_id text NOT NULL,
    key         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX customer_keys_by_customer ON customer_keys (customer_id, created_at DESC);

-- Other services' events about a customer, looked up by customer: visit check-ins (the 7-day
-- follow-up rule) and first orders (which card survives a merge).
CREATE INDEX events_foreign_by_customer ON events ((data->>'customer_id'), event_type)
    WHERE origin IS NOT NULL;
