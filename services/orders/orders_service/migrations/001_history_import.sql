-- What the set-based history import (adapters/bulk_import.py) needs from PostgreSQL.

-- An ISO 8601 date and time with its UTC offset ("2025-03-01T09:30:00+08:00", "…Z"), or NULL
-- when the text is not one: a file's bad value is a rejected record, never a failed import.
CREATE FUNCTION history_timestamptz(t text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN m IS NULL THEN NULL
        WHEN m[1]::int < 1 OR m[2]::int NOT BETWEEN 1 AND 12 OR m[4]::int > 23 OR m[5]::int > 59
             OR coalesce(m[6]::int, 0) > 59 OR coalesce(m[8]::int, 0) > 15 OR coalesce(m[9]::int, 0) > 59 THEN NULL
        WHEN m[3]::int NOT BETWEEN 1 AND
             extract(day FROM make_date(m[1]::int, m[2]::int, 1) + interval '1 month - 1 day')::int THEN NULL
        ELSE t::timestamptz
    END
    FROM regexp_match(t, '^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(?:Z|z|[+-](\d{2})(?::?(\d{2}))?)$') AS m
$$;

-- A calendar date ("2025-03-20"), or NULL when the text is not one.
CREATE FUNCTION history_date(t text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN m IS NULL THEN NULL
        WHEN m[1]::int < 1 OR m[2]::int NOT BETWEEN 1 AND 12 THEN NULL
        WHEN m[3]::int NOT BETWEEN 1 AND
             extract(day FROM make_date(m[1]::int, m[2]::int, 1) + interval '1 month - 1 day')::int THEN NULL
        ELSE make_date(m[1]::int, m[2]::int, m[3]::int)
    END
    FROM regexp_match(t, '^(\d{4})-(\d{2})-(\d{2})$') AS m
$$;

-- A JSON whole number (24, or 24.0 as JSON writers may put it), or NULL.
CREATE FUNCTION history_int(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::text ~ '^-?\d{1,20}(\.0*)?$' THEN v::text::numeric END
$$;

-- A JSON string with surrounding white space removed, or NULL.
CREATE FUNCTION history_text(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN btrim(v #>> '{}', E' \t\n\r\f\v') END
$$;
