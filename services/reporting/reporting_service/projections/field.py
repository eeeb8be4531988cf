"""The reps' field work for the KPI board, from the visit service's events.

Every visit event carries the visit's business date (company time zone), so a visit synced a
day late still lands on the day it was made. One row per day × rep holds the counters every
visit KPI is a ratio of.
"""

from __future__ import annotations

import asyncpg

from reporting_service.projections.base import SqlProjection, Statement, keys
from salesplatform.projections import Change

SCHEMA = """
CREATE TABLE visits (
    visit_id      text PRIMARY KEY,
    rep_id        text NOT NULL,
    customer_id   text,
    business_date date NOT NULL,
    planned       boolean NOT NULL
);

CREATE TABLE kpi_daily (
    business_date      date NOT NULL,
    rep_id             text NOT NULL,
    planned            integer NOT NULL DEFAULT 0,  -- visits on the plan (visit.planned, planned)
    unplanned          integer NOT NULL DEFAULT 0,
    done               integer NOT NULL DEFAULT 0,  -- visit.checked_out
    planned_done       integer NOT NULL DEFAULT 0,  -- checked out and on the plan
    successful         integer NOT NULL DEFAULT 0,  -- checked out with successful = true
    missed             integer NOT NULL DEFAULT 0,
    orders_taken       integer NOT NULL DEFAULT 0,
    refused            integer NOT NULL DEFAULT 0,
    suggested          integer NOT NULL DEFAULT 0,  -- visit.order_suggested
    adopted            integer NOT NULL DEFAULT 0,  -- order_taken with suggested_adopted
    audits             integer NOT NULL DEFAULT 0,
    required_skus      integer NOT NULL DEFAULT 0,
    required_present   integer NOT NULL DEFAULT 0,
    price_tags_ok      integer NOT NULL DEFAULT 0,
    display_ok         integer NOT NULL DEFAULT 0,
    cooler_checks      integer NOT NULL DEFAULT 0,
    coolers_compliant  integer NOT NULL DEFAULT 0,
    coolers_misused    integer NOT NULL DEFAULT 0,
    check_ins          integer NOT NULL DEFAULT 0,  -- visit.checked_in
    check_ins_judged   integer NOT NULL DEFAULT 0,  -- whose position could be judged
    check_ins_verified integer NOT NULL DEFAULT 0,  -- at the outlet, or confirmed by a supervisor
    PRIMARY KEY (business_date, rep_id)
);
"""

COUNTERS = (
    "done",
    "planned_done",
    "successful",
    "missed",
    "orders_taken",
    "refused",
    "suggested",
    "adopted",
    "audits",
    "required_skus",
    "required_present",
    "price_tags_ok",
    "display_ok",
    "cooler_checks",
    "coolers_compliant",
    "coolers_misused",
    "check_ins",
    "check_ins_judged",
    "check_ins_verified",
)

VISIT_PLANNED = """
WITH new AS (
    INSERT INTO visits
    SELECT e.data->>'visit_id', e.data->>'rep_id', e.data->>'customer_id',
           (e.data->>'business_date')::date, coalesce((e.data->>'planned')::boolean, true)
    FROM public.events e
    WHERE e.event_type = 'visit.planned' AND __RANGE__
    ORDER BY e.tx_id, e.position
    ON CONFLICT (visit_id) DO NOTHING
    RETURNING business_date, rep_id, planned
)
INSERT INTO kpi_daily AS t (business_date, rep_id, planned, unplanned)
SELECT business_date, rep_id, count(*) FILTER (WHERE planned), count(*) FILTER (WHERE NOT planned)
FROM new GROUP BY business_date, rep_id
ON CONFLICT (business_date, rep_id) DO UPDATE SET
    planned = t.planned + excluded.planned, unplanned = t.unplanned + excluded.unplanned
RETURNING business_date AS day, rep_id
"""

_COUNTED_TYPES = (
    "visit.checked_out",
    "visit.missed",
    "visit.order_taken",
    "visit.order_refused",
    "visit.order_suggested",
    "visit.merchandising_audited",
    "visit.cooler_checked",
    "visit.checked_in",
    "visit.check_in_confirmed",
)

VISIT_WORK = f"""
WITH ev AS (
    SELECT e.event_type AS t, e.data AS d, (e.data->>'business_date')::date AS day,
           e.data->>'rep_id' AS rep_id
    FROM public.events e
    WHERE e.event_type IN ({", ".join(f"'{t}'" for t in _COUNTED_TYPES)}) AND __RANGE__
), counted AS (
    SELECT ev.day, ev.rep_id,
        count(*) FILTER (WHERE t = 'visit.checked_out') AS done,
        count(*) FILTER (WHERE t = 'visit.checked_out' AND v.planned) AS planned_done,
        count(*) FILTER (WHERE t = 'visit.checked_out' AND (d->>'successful')::boolean) AS successful,
        count(*) FILTER (WHERE t = 'visit.missed') AS missed,
        count(*) FILTER (WHERE t = 'visit.order_taken') AS orders_taken,
        count(*) FILTER (WHERE t = 'visit.order_refused') AS refused,
        count(*) FILTER (WHERE t = 'visit.order_suggested') AS suggested,
        count(*) FILTER (WHERE t = 'visit.order_taken' AND (d->>'suggested_adopted')::boolean) AS adopted,
        count(*) FILTER (WHERE t = 'visit.merchandising_audited') AS audits,
        coalesce(sum(jsonb_array_length(d->'required_skus'))
                 FILTER (WHERE t = 'visit.merchandising_audited'), 0) AS required_skus,
        coalesce(sum((SELECT count(*) FROM jsonb_array_elements_text(d->'required_skus') AS s
                       WHERE d->'present_skus' ? s))
                 FILTER (WHERE t = 'visit.merchandising_audited'), 0) AS required_present,
        count(*) FILTER (WHERE t = 'visit.merchandising_audited' AND (d->>'price_tags_ok')::boolean) AS price_tags_ok,
        count(*) FILTER (WHERE t = 'visit.merchandising_audited' AND (d->>'display_ok')::boolean) AS display_ok,
        count(*) FILTER (WHERE t = 'visit.cooler_checked') AS cooler_checks,
        count(*) FILTER (WHERE t = 'visit.cooler_checked' AND (d->>'compliant')::boolean) AS coolers_compliant,
        count(*) FILTER (WHERE t = 'visit.cooler_checked' AND (d->>'misused')::boolean) AS coolers_misused,
        count(*) FILTER (WHERE t = 'visit.checked_in') AS check_ins,
        -- A check-in is judged when the outlet's position was known (position_verified true or
        -- false; events from before the check carry none), or when a supervisor confirmed it.
        count(*) FILTER (WHERE (t = 'visit.checked_in' AND d->>'position_verified' IS NOT NULL)
                            OR (t = 'visit.check_in_confirmed' AND d->>'previously_verified' IS NULL))
            AS check_ins_judged,
        count(*) FILTER (WHERE (t = 'visit.checked_in' AND (d->>'position_verified')::boolean)
                            OR (t = 'visit.check_in_confirmed'
                                AND (d->>'previously_verified') IS DISTINCT FROM 'true'))
            AS check_ins_verified
    FROM ev
    -- One index lookup per check-out (LIMIT 1 keeps it a per-row lookup): hashing the whole
    -- visits table for every stretch would grow with the log.
    LEFT JOIN LATERAL (
        SELECT v.planned FROM visits v
        WHERE ev.t = 'visit.checked_out' AND v.visit_id = ev.d->>'visit_id' LIMIT 1
    ) v ON true
    GROUP BY ev.day, ev.rep_id
)
INSERT INTO kpi_daily AS t (business_date, rep_id, {", ".join(COUNTERS)})
SELECT day, rep_id, {", ".join(COUNTERS)} FROM counted
ON CONFLICT (business_date, rep_id) DO UPDATE SET
    {", ".join(f"{c} = t.{c} + excluded.{c}" for c in COUNTERS)}
RETURNING business_date AS day, rep_id
"""


def _kpi_keys(row: asyncpg.Record) -> list[Change]:
    return list(keys({"report": "kpi", "period": row["day"], "rep_id": row["rep_id"]}))


class FieldWorkProjection(SqlProjection):
    name = "field_work"
    code_version = 2
    rebuild_weight = 2.0  # its share of a rebuild of all reports
    schema_sql = SCHEMA
    event_types = frozenset({"visit.planned", *_COUNTED_TYPES})
    statements = (
        Statement(frozenset({"visit.planned"}), VISIT_PLANNED, _kpi_keys),
        Statement(frozenset(_COUNTED_TYPES), VISIT_WORK, _kpi_keys),
    )
