-- What an event keeps besides its payload: the W3C trace context of the command that recorded
-- it (`traceparent`, `tracestate`), so the trace goes on where the event is published, copied
-- and applied. Empty (NULL) when tracing is off. Nullable: the release before this one writes
-- events without it during a rolling update.
ALTER TABLE public.events ADD COLUMN IF NOT EXISTS metadata jsonb;

-- Why a rebuild stopped, on the generation it was building: any replica (and an operator's
-- tool) reads a rebuild's state from here, not from the memory of the replica running it.
ALTER TABLE public.projection_generations ADD COLUMN IF NOT EXISTS error text;
