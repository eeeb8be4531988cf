-- The sales offices' leads (客户登记): their names and phones are personal data, sealed in the
-- events with a key per lead (crypto-shredding, as for customer cards). Erasing a lead's
-- personal data deletes its keys and its phone index rows.
CREATE TABLE lead_keys (
    key_id      uuid PRIMARY KEY,
    lead_id     text NOT NULL,
    key         bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX lead_keys_by_lead ON lead_keys (lead_id, created_at DESC);

-- Who a phone number belongs to in a sales office (业务判定: a customer is known by the phone
-- number left at reception). The number itself is never stored: each row keeps its
-- HMAC-SHA256 under the personal search key. Written with the events that give a lead the
-- number, in the same transaction; one lead per number and office (the first to register it).
CREATE TABLE lead_phones (
    project_id  text NOT NULL,
    phone_term  bytea NOT NULL,
    lead_id     text NOT NULL,
    PRIMARY KEY (project_id, phone_term)
);
CREATE INDEX lead_phones_by_lead ON lead_phones (lead_id);

-- The search key exists before any command needs it: a command writes nothing before its
-- events (the transaction that orders the log starts with them). 32 bytes from two random
-- UUIDs (244 random bits); the personal search projection uses the same row.
INSERT INTO personal_search_key (id, key)
VALUES (1, decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'))
ON CONFLICT (id) DO NOTHING;

-- The orders service's events about a lead (units reserved and released), looked up by lead:
-- a lead with a unit reserved is not released by the 7-day rule.
CREATE INDEX events_foreign_by_lead ON events ((data->>'lead_id'), event_type)
    WHERE origin IS NOT NULL;
