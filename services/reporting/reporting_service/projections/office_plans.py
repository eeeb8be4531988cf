"""The sales offices' close-outs, weekly claims and performance warnings as recorded: inline,
so a rep reads the forecast right after recording it."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent

SCHEMA = """
CREATE TABLE daily_closes (
    project_id     text NOT NULL,
    rep_id         text NOT NULL,
    business_date  date NOT NULL,
    deposits       integer NOT NULL,
    subscriptions  integer NOT NULL,
    contracts      integer NOT NULL,
    amount_fen     bigint NOT NULL,
    miss_reason    text,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (project_id, rep_id, business_date)
);
CREATE TABLE weekly_claims (
    project_id     text NOT NULL,
    rep_id         text NOT NULL,
    week           date NOT NULL,
    subscriptions  integer NOT NULL,
    amount_fen     bigint NOT NULL,
    claimed_at     timestamptz NOT NULL,
    PRIMARY KEY (project_id, rep_id, week)
);
CREATE TABLE warnings (
    rep_id          text NOT NULL,
    month           text NOT NULL,
    level           text NOT NULL,
    given_on        date NOT NULL,
    target_fen      bigint NOT NULL,
    expected_fen    bigint NOT NULL,
    actual_fen      bigint NOT NULL,
    margin_percent  integer NOT NULL,
    given_by        text NOT NULL,
    PRIMARY KEY (rep_id, month, level)
);
"""


class OfficePlansProjection(Projection):
    name = "office_plans"
    inline = True
    code_version = 1
    rebuild_weight = 0.05  # its share of a rebuild of all reports
    schema_sql = SCHEMA
    event_types = frozenset({"daily_close.recorded", "weekly_target.claimed", "performance_warning.given"})

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        d = event.data
        at = event.envelope.occurred_at
        match event.event_type:
            case "daily_close.recorded":
                await conn.execute(
                    "INSERT INTO daily_closes VALUES ($1, $2, $3::text::date, $4, $5, $6, $7, $8, $9)"
                    " ON CONFLICT (project_id, rep_id, business_date) DO UPDATE SET deposits = excluded.deposits,"
                    " subscriptions = excluded.subscriptions, contracts = excluded.contracts,"
                    " amount_fen = excluded.amount_fen, miss_reason = excluded.miss_reason,"
                    " recorded_at = excluded.recorded_at",
                    d["project_id"],
                    d["rep_id"],
                    d["business_date"],
                    d["deposits"],
                    d["subscriptions"],
                    d["contracts"],
                    d["amount_fen"],
                    d.get("miss_reason"),
                    at,
                )
                return [{"report": "daily_close", "period": d["business_date"], "rep_id": d["rep_id"]}]
            case "weekly_target.claimed":
                await conn.execute(
                    "INSERT INTO weekly_claims VALUES ($1, $2, $3::text::date, $4, $5, $6)"
                    " ON CONFLICT (project_id, rep_id, week) DO UPDATE SET subscriptions = excluded.subscriptions,"
                    " amount_fen = excluded.amount_fen, claimed_at = excluded.claimed_at",
                    d["project_id"],
                    d["rep_id"],
                    d["week"],
                    d["subscriptions"],
                    d["amount_fen"],
                    at,
                )
                return [{"report": "weekly_targets", "period": d["week"], "rep_id": d["rep_id"]}]
            case _:
                await conn.execute(
                    "INSERT INTO warnings VALUES ($1, $2, $3, $4::text::date, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    d["rep_id"],
                    d["month"],
                    d["level"],
                    d["given_on"],
                    d["target_fen"],
                    d["expected_fen"],
                    d["actual_fen"],
                    d["margin_percent"],
                    event.envelope.actor.id,
                )
                return [{"report": "performance_warnings", "month": d["month"], "rep_id": d["rep_id"]}]
