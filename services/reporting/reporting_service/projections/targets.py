"""Targets as set: inline, so a manager reads a target right after setting it."""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent

SCHEMA = """
CREATE TABLE targets (
    target_id     text PRIMARY KEY,
    month         text NOT NULL,
    level         text NOT NULL,
    subject_id    text NOT NULL,
    product_group text,
    amount_fen    bigint NOT NULL,
    set_by        text NOT NULL,
    set_at        timestamptz NOT NULL
);
CREATE INDEX targets_by_month ON targets (month, level, subject_id);
"""


class TargetsProjection(Projection):
    name = "targets"
    inline = True
    code_version = 1
    rebuild_weight = 0.1  # its share of a rebuild of all reports
    schema_sql = SCHEMA
    event_types = frozenset({"target.set"})

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        d = event.data
        await conn.execute(
            "INSERT INTO targets VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (target_id) DO UPDATE SET amount_fen = excluded.amount_fen,"
            " set_by = excluded.set_by, set_at = excluded.set_at",
            d["target_id"],
            d["month"],
            d["level"],
            d["subject_id"],
            d.get("product_group"),
            d["amount_fen"],
            event.envelope.actor.id,
            event.envelope.occurred_at,
        )
        key = {"month": d["month"], "level": d["level"], "subject_id": d["subject_id"]}
        return [{"report": "targets", **key}, {"report": "target_achievement", **key}]
