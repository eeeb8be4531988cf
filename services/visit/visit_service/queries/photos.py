"""Photos of visits as the photo book holds them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import asyncpg

from salesplatform.projections import active_schema
from salesplatform.store import RecordedEvent
from visit_service.domain.access import ListScope
from visit_service.projections.field import PhotoBook
from visit_service.projections.visits import VisitBoard
from visit_service.queries import fetch, fetchrow, in_scope

VERDICTS = {"pending": " AND p.verdict IS NULL", "reviewed": " AND p.verdict IS NOT NULL", "all": ""}


async def is_attached(conn: asyncpg.Connection, photo_id: str) -> bool:
    schema = await active_schema(conn, PhotoBook.name)
    return bool(await conn.fetchval(f"SELECT 1 FROM {schema}.photos WHERE photo_id = $1", photo_id))


async def visit_photos(conn: asyncpg.Connection, visit_id: str) -> list[asyncpg.Record]:
    schema = await active_schema(conn, PhotoBook.name)
    return await fetch(conn, f"SELECT * FROM {schema}.photos WHERE visit_id = $1 ORDER BY taken_at, photo_id", visit_id)


async def photo(conn: asyncpg.Connection, visit_id: str, photo_id: str) -> asyncpg.Record | None:
    schema = await active_schema(conn, PhotoBook.name)
    return await fetchrow(
        conn, f"SELECT * FROM {schema}.photos WHERE visit_id = $1 AND photo_id = $2", visit_id, photo_id
    )


async def for_review(
    conn: asyncpg.Connection,
    start: date,
    end: date,
    status: Literal["pending", "reviewed", "all"],
    scope: ListScope,
) -> list[asyncpg.Record]:
    """Photos kept, of visits in the date range, with the visit's merchandising audit."""
    photos = await active_schema(conn, PhotoBook.name)
    visits = await active_schema(conn, VisitBoard.name)
    where, args = in_scope(scope, 3, "p.")
    return await fetch(
        conn,
        f"SELECT p.*, v.merchandising FROM {photos}.photos p"
        f" LEFT JOIN {visits}.visits v ON v.visit_id = p.visit_id"
        f" WHERE p.removed IS NULL AND p.business_date BETWEEN $1 AND $2{VERDICTS[status]}{where}"
        " ORDER BY p.business_date, p.taken_at, p.photo_id",
        start,
        end,
        *args,
    )


async def taken_before(conn: asyncpg.Connection, cutoff: datetime, limit: int) -> list[asyncpg.Record]:
    """Photos not removed, taken at or before `cutoff`, oldest first."""
    schema = await active_schema(conn, PhotoBook.name)
    return await fetch(
        conn,
        f"SELECT visit_id, photo_id FROM {schema}.photos WHERE removed IS NULL AND taken_at <= $1"
        " ORDER BY taken_at, photo_id LIMIT $2",
        cutoff,
        limit,
    )


async def visits_with_photos_of(conn: asyncpg.Connection, customer_id: str, before: RecordedEvent) -> list[str]:
    """The visits of the customer that had a photo attached before `before` in the log's order
    (read from the log itself, so a replay finds the same)."""
    rows = await conn.fetch(
        "SELECT DISTINCT data->>'visit_id' AS visit_id FROM public.events"
        " WHERE event_type = 'visit.photo_attached' AND origin IS NULL AND data->>'customer_id' = $1"
        " AND (tx_id, position) < ($2::text::xid8, $3) ORDER BY 1",
        customer_id,
        str(before.tx_id),
        before.position,
    )
    return [r["visit_id"] for r in rows]
