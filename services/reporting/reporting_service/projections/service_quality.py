"""Complaints and satisfaction surveys, from the visit service's events."""

from __future__ import annotations

import asyncpg

from reporting_service.projections.base import SqlProjection, Statement, keys
from salesplatform.projections import Change

SCHEMA = """
CREATE TABLE complaints (
    complaint_id            text PRIMARY KEY,
    customer_id             text,
    channel                 text,
    category                text,
    severity                text,
    received_at             timestamptz NOT NULL,
    received_on             date NOT NULL,
    rep_id                  text,
    acknowledged_at         timestamptz,
    acknowledged_within_sla boolean,
    breached                boolean NOT NULL DEFAULT false,
    department              text,
    resolved_on             date,
    resolution              text,
    customer_misuse         boolean,
    closed_on               date
);

CREATE TABLE surveys (
    survey_id   text PRIMARY KEY,
    customer_id text,
    period      text NOT NULL,
    rep_id      text,
    satisfied   boolean NOT NULL,
    scores      jsonb,
    recorded_on date NOT NULL
);
"""

COMPLAINT_RECEIVED = """
INSERT INTO complaints (complaint_id, customer_id, channel, category, severity, received_at,
                        received_on, rep_id)
SELECT e.data->>'complaint_id', e.data->>'customer_id', e.data->>'channel', e.data->>'category',
       e.data->>'severity', coalesce((e.data->>'received_at')::timestamptz, e.occurred_at),
       (coalesce((e.data->>'received_at')::timestamptz, e.occurred_at) AT TIME ZONE '__TZ__')::date,
       e.data->>'rep_id'
FROM public.events e
WHERE e.event_type = 'complaint.received' AND __RANGE__
ORDER BY e.tx_id, e.position
ON CONFLICT (complaint_id) DO NOTHING
RETURNING received_on AS day, category, rep_id, customer_id
"""


def _complaint_update(event_type: str, assignments: str, columns: str, *, first_wins: str = "") -> str:
    order = "e.tx_id, e.position" if first_wins else "e.tx_id DESC, e.position DESC"
    guard = f" AND c.{first_wins} IS NULL" if first_wins else ""
    return f"""
UPDATE complaints c SET {assignments}
FROM (
    SELECT DISTINCT ON (e.data->>'complaint_id') e.data->>'complaint_id' AS complaint_id,
           e.occurred_at AS at, (e.occurred_at AT TIME ZONE '__TZ__')::date AS day, {columns}
    FROM public.events e
    WHERE e.event_type = '{event_type}' AND __RANGE__
    ORDER BY e.data->>'complaint_id', {order}
) x
WHERE c.complaint_id = x.complaint_id{guard}
RETURNING c.received_on AS day, c.category, c.rep_id, c.customer_id
"""


COMPLAINT_ACKNOWLEDGED = _complaint_update(
    "complaint.acknowledged",
    "acknowledged_at = coalesce(x.ack_at, x.at), acknowledged_within_sla = x.within_sla",
    "(e.data->>'at')::timestamptz AS ack_at, coalesce((e.data->>'within_sla')::boolean, false) AS within_sla",
    first_wins="acknowledged_at",
)
COMPLAINT_ROUTED = _complaint_update(
    "complaint.routed", "department = x.department", "e.data->>'department' AS department"
)
COMPLAINT_BREACHED = _complaint_update("complaint.sla_breached", "breached = true", "1 AS one")
COMPLAINT_RESOLVED = _complaint_update(
    "complaint.resolved",
    "resolved_on = x.day, resolution = x.resolution, customer_misuse = x.misuse",
    "e.data->>'resolution' AS resolution, (e.data->>'customer_misuse')::boolean AS misuse",
    first_wins="resolved_on",
)
COMPLAINT_CLOSED = _complaint_update("complaint.closed", "closed_on = x.day", "1 AS one", first_wins="closed_on")

SURVEY_RECORDED = """
INSERT INTO surveys
SELECT e.data->>'survey_id', e.data->>'customer_id', e.data->>'period', e.data->>'rep_id',
       coalesce((e.data->>'satisfied')::boolean, false), e.data->'scores',
       (e.occurred_at AT TIME ZONE '__TZ__')::date
FROM public.events e
WHERE e.event_type = 'survey.recorded' AND __RANGE__
ORDER BY e.tx_id, e.position
ON CONFLICT (survey_id) DO NOTHING
RETURNING period, rep_id, customer_id
"""


def _complaint_keys(row: asyncpg.Record) -> list[Change]:
    return list(
        keys(
            {"report": "complaints", "period": row["day"], "category": row["category"]},
            {"report": "kpi", "period": row["day"], "rep_id": row["rep_id"]},
        )
    )


def _survey_keys(row: asyncpg.Record) -> list[Change]:
    return list(keys({"report": "satisfaction", "period": row["period"], "rep_id": row["rep_id"]}))


class ServiceQualityProjection(SqlProjection):
    name = "service_quality"
    code_version = 1
    rebuild_weight = 0.3  # its share of a rebuild of all reports
    schema_sql = SCHEMA
    event_types = frozenset(
        {
            "complaint.received",
            "complaint.acknowledged",
            "complaint.routed",
            "complaint.sla_breached",
            "complaint.resolved",
            "complaint.closed",
            "survey.recorded",
        }
    )
    statements = (
        Statement(frozenset({"complaint.received"}), COMPLAINT_RECEIVED, _complaint_keys),
        Statement(frozenset({"complaint.acknowledged"}), COMPLAINT_ACKNOWLEDGED, _complaint_keys),
        Statement(frozenset({"complaint.routed"}), COMPLAINT_ROUTED, _complaint_keys),
        Statement(frozenset({"complaint.sla_breached"}), COMPLAINT_BREACHED, _complaint_keys),
        Statement(frozenset({"complaint.resolved"}), COMPLAINT_RESOLVED, _complaint_keys),
        Statement(frozenset({"complaint.closed"}), COMPLAINT_CLOSED, _complaint_keys),
        Statement(frozenset({"survey.recorded"}), SURVEY_RECORDED, _survey_keys),
    )
