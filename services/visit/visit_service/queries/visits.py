"""Visits as the visit board holds them: a rep's day and range, a customer's history, the
approvals waiting, check-ins to look at again."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from salesplatform.projections import active_schema
from visit_service.domain.access import ListScope
from visit_service.projections.visits import VisitBoard
from visit_service.queries import fetch, fetchrow, in_scope


async def visit(conn: asyncpg.Connection, visit_id: str) -> asyncpg.Record | None:
    schema = await active_schema(conn, VisitBoard.name)
    return await fetchrow(conn, f"SELECT * FROM {schema}.visits WHERE visit_id = $1", visit_id)


async def day_plan(conn: asyncpg.Connection, rep_id: str, day: date) -> list[asyncpg.Record]:
    """A rep's route visits of the day in route order, then the approved unplanned ones."""
    schema = await active_schema(conn, VisitBoard.name)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.visits WHERE rep_id = $1 AND business_date = $2"
        " AND status <> 'cancelled' AND (planned OR approval_status = 'approved')"
        " ORDER BY planned DESC, sequence, visit_id",
        rep_id,
        day,
    )


async def rep_visits(
    conn: asyncpg.Connection, rep_id: str, start: date, end: date, status: str | None, limit: int, offset: int
) -> tuple[list[asyncpg.Record], int]:
    """A page of a rep's visits in the date range (of one status, if given), and how many in all."""
    schema = await active_schema(conn, VisitBoard.name)
    where = (
        f"FROM {schema}.visits WHERE rep_id = $1 AND business_date BETWEEN $2 AND $3"
        " AND ($4::text IS NULL OR status = $4)"
    )
    rows = await conn.fetch(
        f"SELECT * {where} ORDER BY business_date, planned DESC, sequence, visit_id LIMIT $5 OFFSET $6",
        rep_id,
        start,
        end,
        status,
        limit,
        offset,
    )
    total: int = await conn.fetchval(f"SELECT count(*) {where}", rep_id, start, end, status)
    return rows, total


async def customer_visits(conn: asyncpg.Connection, customer_id: str, limit: int, offset: int) -> list[asyncpg.Record]:
    schema = await active_schema(conn, VisitBoard.name)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.visits WHERE customer_id = $1 ORDER BY business_date DESC, visit_id LIMIT $2 OFFSET $3",
        customer_id,
        limit,
        offset,
    )


async def next_unplanned_sequence(conn: asyncpg.Connection, rep_id: str, day: date) -> int:
    """The place after the last one taken in the rep's day."""
    schema = await active_schema(conn, VisitBoard.name)
    last = await conn.fetchval(
        f"SELECT max(sequence) FROM {schema}.visits WHERE rep_id = $1 AND business_date = $2", rep_id, day
    )
    return int(last or 0) + 1


async def pending_approvals(conn: asyncpg.Connection, scope: ListScope) -> list[asyncpg.Record]:
    """Visits waiting for approval, overdue first."""
    schema = await active_schema(conn, VisitBoard.name)
    where, args = in_scope(scope, 1)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.visits WHERE approval_status = 'pending'{where}"
        " ORDER BY approval_overdue DESC, approval_due_at, visit_id",
        *args,
    )


async def overdue_approvals(conn: asyncpg.Connection, now: datetime, scope: ListScope) -> list[asyncpg.Record]:
    schema = await active_schema(conn, VisitBoard.name)
    where, args = in_scope(scope, 2)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.visits WHERE approval_status = 'pending'"
        f" AND (approval_overdue OR approval_due_at <= $1){where} ORDER BY approval_due_at, visit_id",
        now,
        *args,
    )


async def visit_ids_of_day(conn: asyncpg.Connection, day: date) -> set[str]:
    """The ids of every visit of the business day, planned or not."""
    schema = await active_schema(conn, VisitBoard.name)
    return {
        r["visit_id"] for r in await fetch(conn, f"SELECT visit_id FROM {schema}.visits WHERE business_date = $1", day)
    }


async def planned_before(conn: asyncpg.Connection, day: date) -> list[asyncpg.Record]:
    """Visits still planned on a business day before `day`, by day and id."""
    schema = await active_schema(conn, VisitBoard.name)
    return await fetch(
        conn,
        f"SELECT visit_id FROM {schema}.visits WHERE status = 'planned' AND business_date < $1"
        " ORDER BY business_date, visit_id",
        day,
    )


async def approvals_to_flag(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Approvals still pending and not flagged whose deadline is `now` or earlier, the oldest first."""
    schema = await active_schema(conn, VisitBoard.name)
    return await fetch(
        conn,
        f"SELECT visit_id FROM {schema}.visits WHERE approval_status = 'pending'"
        " AND NOT approval_overdue AND approval_due_at <= $1 ORDER BY approval_due_at",
        now,
    )


async def checked_in_at(
    conn: asyncpg.Connection, latitude: float, longitude: float, other_than: str, since: date
) -> list[str]:
    """Visits to outlets other than `other_than` checked in at exactly these coordinates since
    `since`."""
    schema = await active_schema(conn, VisitBoard.name)
    rows = await conn.fetch(
        f"SELECT visit_id FROM {schema}.visits WHERE latitude = $1 AND longitude = $2 AND customer_id <> $3"
        " AND checked_in_at IS NOT NULL AND business_date >= $4 ORDER BY visit_id LIMIT 20",
        latitude,
        longitude,
        other_than,
        since,
    )
    return [r["visit_id"] for r in rows]


async def _unverified_check_ins(
    conn: asyncpg.Connection, start: date, end: date, scope: ListScope
) -> list[asyncpg.Record]:
    """Check-ins in the date range whose position is not verified."""
    schema = await active_schema(conn, VisitBoard.name)
    where, args = in_scope(scope, 3)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.visits WHERE checked_in_at IS NOT NULL AND business_date BETWEEN $1 AND $2"
        f" AND position_verified IS DISTINCT FROM true{where} ORDER BY business_date, rep_id, visit_id",
        start,
        end,
        *args,
    )


async def _repeated_coordinates(
    conn: asyncpg.Connection, start: date, end: date, scope: ListScope
) -> list[asyncpg.Record]:
    """Identical coordinates checked in at more than one outlet in the date range, with their
    visits and customers."""
    schema = await active_schema(conn, VisitBoard.name)
    where, args = in_scope(scope, 3)
    return await fetch(
        conn,
        f"SELECT latitude, longitude, array_agg(visit_id ORDER BY checked_in_at, visit_id) AS visit_ids,"
        f" array_agg(DISTINCT customer_id) AS customer_ids FROM {schema}.visits"
        f" WHERE checked_in_at IS NOT NULL AND business_date BETWEEN $1 AND $2{where}"
        " GROUP BY latitude, longitude HAVING count(DISTINCT customer_id) > 1 ORDER BY latitude, longitude",
        start,
        end,
        *args,
    )


async def flagged_check_ins(
    conn: asyncpg.Connection, start: date, end: date, scope: ListScope
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Check-ins to look at again: those not verified, and coordinates repeated at outlets."""
    return (
        await _unverified_check_ins(conn, start, end, scope),
        await _repeated_coordinates(conn, start, end, scope),
    )
