"""The sales offices (案场): offices, each day's sign-in sheet, the registers and the leads
(the office directory), and whether a unit is reserved for a lead (the orders service's events
copied into the log)."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from customer_service.queries.conditions import Where
from salesplatform.projections import active_schema


async def offices(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM offices ORDER BY project_id"))


async def office(conn: asyncpg.Connection, project_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM offices WHERE project_id = $1", project_id)


async def sign_ins(conn: asyncpg.Connection, project_id: str, day: date) -> list[asyncpg.Record]:
    """The day's sign-in sheet in order of arrival."""
    return list(
        await conn.fetch(
            "SELECT * FROM sign_ins WHERE project_id = $1 AND business_date = $2 ORDER BY place", project_id, day
        )
    )


async def day_counts(conn: asyncpg.Connection, project_id: str, day: date) -> dict[str, Any]:
    """The day's walk-ins, calls, new customers and duty receptions."""
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE register = 'walk_in') AS walk_ins,"
        " count(*) FILTER (WHERE register = 'phone') AS calls,"
        " count(*) FILTER (WHERE new_lead) AS new_customers,"
        " count(*) FILTER (WHERE basis = 'duty') AS duty_receptions"
        " FROM register_entries WHERE project_id = $1 AND business_date = $2",
        project_id,
        day,
    )
    return dict(row)


async def register_entries(
    conn: asyncpg.Connection,
    project_id: str,
    register: str,
    *,
    date_from: date | None,
    date_to: date | None,
    rep_id: str | None,
    limit: int,
    offset: int,
) -> tuple[int, list[asyncpg.Record]]:
    """(how many lines match, the page of them in number order)."""
    w = Where()
    w.equal(project_id=project_id, register=register)
    if date_from is not None:
        w.add("business_date >= {}", date_from)
    if date_to is not None:
        w.add("business_date <= {}", date_to)
    w.equal(rep_id=rep_id)
    total = await conn.fetchval(f"SELECT count(*) FROM register_entries WHERE {w.sql()}", *w.args)
    rows = await conn.fetch(
        f"SELECT * FROM register_entries WHERE {w.sql()} ORDER BY entry_no LIMIT {limit} OFFSET {offset}", *w.args
    )
    return total, list(rows)


async def leads(
    conn: asyncpg.Connection,
    *,
    project_id: str | None = None,
    rep_id: str | None = None,
    stage: str | None = None,
    district_id: str | None = None,
    area_id: str | None = None,
    limit: int,
    offset: int,
) -> tuple[int, list[asyncpg.Record]]:
    """(how many leads match, the page of them in order of registration)."""
    w = Where()
    w.equal(project_id=project_id, rep_id=rep_id, stage=stage, district_id=district_id, area_id=area_id)
    total = await conn.fetchval(f"SELECT count(*) FROM leads WHERE {w.sql()}", *w.args)
    rows = await conn.fetch(
        f"SELECT * FROM leads WHERE {w.sql()} ORDER BY registered_at, lead_id LIMIT {limit} OFFSET {offset}", *w.args
    )
    return total, list(rows)


async def lead(conn: asyncpg.Connection, lead_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM leads WHERE lead_id = $1", lead_id)


# -- inside a command's transaction --------------------------------------------------------------


async def register_line_parts(conn: asyncpg.Connection, project_id: str, register: str, entry_no: int) -> list[str]:
    """The sealed parts of a register line, first written first."""
    schema = await active_schema(conn, "office_directory")
    parts = await conn.fetchval(
        f"SELECT personal FROM {schema}.register_entries WHERE project_id = $1 AND register = $2 AND entry_no = $3",
        project_id,
        register,
        entry_no,
    )
    return list(parts or [])


async def lead_has_deal(conn: asyncpg.Connection, lead_id: str) -> bool:
    """Whether a unit is reserved for the lead now: the orders service's `unit.reserved`
    events for it outnumber its `unit.reservation_released` ones (copies in this log)."""
    count = await conn.fetchval(
        """
        SELECT coalesce(sum(CASE event_type WHEN 'unit.reserved' THEN 1 ELSE -1 END), 0)
          FROM events
         WHERE origin IS NOT NULL AND data->>'lead_id' = $1
           AND event_type IN ('unit.reserved', 'unit.reservation_released')
        """,
        lead_id,
    )
    return bool(count and count > 0)
