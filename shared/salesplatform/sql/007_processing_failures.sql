-- When each message a consumer keeps failing on first failed, kept until the message is
-- dead-lettered (its `Dlq-First-Failed`), so a restart in between does not forget it. A row is
-- one durable consumer's message by its stream sequence; `stored_at` is when JetStream stored
-- the message, which tells a row of a stream made again (after a restore) from this one's.
CREATE TABLE processing_failures (
    durable      text        NOT NULL,
    stream_seq   bigint      NOT NULL,
    stored_at    timestamptz NOT NULL,
    first_failed timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (durable, stream_seq)
);
-- Rows of messages that went through after failing are removed by age.
CREATE INDEX processing_failures_first_failed ON processing_failures (first_failed);
