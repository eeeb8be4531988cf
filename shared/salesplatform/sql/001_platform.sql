-- The platform's tables, the same in every service database.

-- The event log. (stream_id, stream_version) is the whole optimistic-concurrency story.
-- `tx_id` is the writing transaction's id: the global log is read in (tx_id, position) order,
-- only below the oldest transaction still running, so a transaction that commits late is
-- never skipped by a catch-up reader (positions from a sequence can commit out of order).
-- `origin` is NULL for this service's own events and the source stream for copies of other
-- services' events, which are kept so every projection can be rebuilt from this log alone.
CREATE TABLE events (
    position        bigint GENERATED ALWAYS AS IDENTITY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text NOT NULL,
    stream_version  integer NOT NULL CHECK (stream_version >= 1),
    event_id        uuid NOT NULL UNIQUE,
    event_type      text NOT NULL,
    schema_version  integer NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL,
    correlation_id  text,
    causation_id    text,
    actor           jsonb NOT NULL,
    data            jsonb NOT NULL,
    origin          text,
    PRIMARY KEY (stream_id, stream_version)
);
CREATE UNIQUE INDEX events_global_order ON events (tx_id, position);

-- Events committed but not yet confirmed by JetStream; written in the append's transaction.
CREATE TABLE outbox (
    position bigint PRIMARY KEY
);

-- Results of commands that carried an idempotency key.
CREATE TABLE command_results (
    command         text NOT NULL,
    idempotency_key text NOT NULL,
    result          jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (command, idempotency_key)
);

-- Read models: every projection has numbered generations, each in its own schema with its own
-- checkpoint; `projections.active_schema` names the one that answers queries.
CREATE TABLE projections (
    name            text PRIMARY KEY,
    active_schema   text NOT NULL,
    generation      integer NOT NULL,
    code_version    integer NOT NULL
);
CREATE TABLE projection_generations (
    name            text NOT NULL,
    generation      integer NOT NULL,
    schema_name     text NOT NULL,
    code_version    integer NOT NULL,
    status          text NOT NULL,  -- building | active | retired
    tx_id           xid8 NOT NULL DEFAULT '0',
    position        bigint NOT NULL DEFAULT 0,
    events_applied  bigint NOT NULL DEFAULT 0,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (name, generation)
);

-- Events a projection could not apply after retries: kept with the reason, skipped, never lost.
CREATE TABLE projection_failures (
    name        text NOT NULL,
    event_id    uuid NOT NULL,
    position    bigint NOT NULL,
    error       text NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, event_id)
);
