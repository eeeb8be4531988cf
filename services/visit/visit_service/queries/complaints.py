"""Complaints as the complaint book holds them."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from salesplatform.projections import active_schema
from visit_service.domain.access import ListScope
from visit_service.projections.visits import ComplaintBook
from visit_service.queries import fetch, fetchrow, in_scope


async def complaint(conn: asyncpg.Connection, complaint_id: str) -> asyncpg.Record | None:
    schema = await active_schema(conn, ComplaintBook.name)
    return await fetchrow(conn, f"SELECT * FROM {schema}.complaints WHERE complaint_id = $1", complaint_id)


async def overdue(conn: asyncpg.Connection, now: datetime, scope: ListScope) -> list[asyncpg.Record]:
    """Complaints not acknowledged in time, the longest overdue first."""
    schema = await active_schema(conn, ComplaintBook.name)
    where, args = in_scope(scope, 2)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.complaints WHERE status = 'received'"
        f" AND (sla_breached OR acknowledge_by < $1){where} ORDER BY acknowledge_by, complaint_id",
        now,
        *args,
    )


async def breaches_to_flag(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Complaints not acknowledged by their deadline before `now` and not flagged yet, the oldest first."""
    schema = await active_schema(conn, ComplaintBook.name)
    return await fetch(
        conn,
        f"SELECT complaint_id FROM {schema}.complaints WHERE status = 'received'"
        " AND NOT sla_breached AND acknowledge_by < $1 ORDER BY acknowledge_by",
        now,
    )


async def still_open(conn: asyncpg.Connection, scope: ListScope) -> list[asyncpg.Record]:
    """Complaints not closed, oldest first."""
    schema = await active_schema(conn, ComplaintBook.name)
    where, args = in_scope(scope, 1)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.complaints WHERE status <> 'closed'{where} ORDER BY received_at, complaint_id",
        *args,
    )
