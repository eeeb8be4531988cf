-- The key of the blind index of personal names and phones (projection personal_search): terms
-- are kept as HMAC-SHA256 under it, never in plain text. One row, made on first use.
CREATE TABLE personal_search_key (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea NOT NULL
);
