-- Take the shared locks of several projections and read their active schemas in one round trip.
-- Each statement of a volatile PL/pgSQL function sees a new snapshot, so the schemas are read
-- after the locks are held: a rebuild's switch (which holds a lock exclusively) is either
-- committed and seen, or waits until this transaction ends. The lock key is the one
-- salesplatform.projections uses: hashtext('projection:' || name).
CREATE FUNCTION public.lock_projections(names text[]) RETURNS TABLE (name text, active_schema text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(hashtext('projection:' || n))
       FROM (SELECT DISTINCT unnest(names) AS n ORDER BY 1) AS wanted;
    RETURN QUERY SELECT p.name, p.active_schema FROM public.projections p WHERE p.name = ANY(names);
END
$$;
