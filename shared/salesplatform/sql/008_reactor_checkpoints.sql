-- Where each reactor (salesplatform.reactors) has got to in the log: the events up to here have
-- had their commands answered. One row per reactor, made when the service first runs it.
CREATE TABLE public.reactor_checkpoints (
    name        text PRIMARY KEY,
    tx_id       xid8 NOT NULL DEFAULT '0',
    position    bigint NOT NULL DEFAULT 0,
    reacted     bigint NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
