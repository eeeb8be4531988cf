-- Begin a catch-up batch of one projection in one round trip: its catch-up lock (one runner at
-- a time), then its switch lock shared, then, in a new snapshot taken after both are held, its
-- active generation with the checkpoint (a rebuild's switch is committed and seen, or waits).
-- The lock keys are the ones salesplatform.projections uses.
CREATE FUNCTION public.start_catch_up(projection_name text)
RETURNS TABLE (active_schema text, active_generation integer, checkpoint_tx bigint, checkpoint_position bigint)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('catch-up:' || projection_name));
    PERFORM pg_advisory_xact_lock_shared(hashtext('projection:' || projection_name));
    RETURN QUERY
        SELECT g.schema_name, g.generation, g.tx_id::text::bigint, g.position
          FROM public.projections p
          JOIN public.projection_generations g ON g.name = p.name AND g.generation = p.generation
         WHERE p.name = projection_name;
END
$$;
