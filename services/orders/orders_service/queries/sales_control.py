"""Sales control (销控): the sales offices and leads the customer service described, the
units of each project with their deals, price lists, the day's changes and checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from orders_service.queries.conditions import Where
from salesplatform.projections import active_schema

UNIT_COLUMNS = (
    "unit_id, project_id, building, unit_no, floor, layout_name, rooms, halls, bathrooms, area_sqm, orientation,"
    " position, status, release, unit_price_fen, total_price_fen, lead_id, credited_rep_id, deal_price_fen,"
    " deposit_agreed_fen, deposit_total_fen, deposit_due_by, deposit_overdue, subscription_no, subscription_state,"
    " subscription_price_fen, payment_plan, contract_no, status_since"
)


@dataclass(frozen=True)
class Office:
    """A project's sales office as the customer service described it."""

    project_id: str
    name: str
    district_id: str
    area_id: str


@dataclass(frozen=True)
class KnownLead:
    lead_id: str
    project_id: str
    rep_id: str | None
    stage: str


async def office(conn: asyncpg.Connection, project_id: str) -> Office | None:
    schema = await active_schema(conn, "sales_offices")
    row = await conn.fetchrow(
        f"SELECT project_id, name, district_id, area_id FROM {schema}.offices WHERE project_id = $1", project_id
    )
    return Office(**dict(row)) if row else None


async def lead(conn: asyncpg.Connection, lead_id: str) -> KnownLead | None:
    schema = await active_schema(conn, "sales_offices")
    row = await conn.fetchrow(
        f"SELECT lead_id, project_id, rep_id, stage FROM {schema}.leads WHERE lead_id = $1", lead_id
    )
    return KnownLead(**dict(row)) if row else None


async def unit_ids(conn: asyncpg.Connection, project_id: str) -> set[str]:
    """Every unit of the project."""
    schema = await active_schema(conn, "sales_control")
    return {
        r["unit_id"] for r in await conn.fetch(f"SELECT unit_id FROM {schema}.units WHERE project_id = $1", project_id)
    }


async def units(
    conn: asyncpg.Connection,
    project_id: str,
    *,
    status: str | None,
    building: str | None,
    layout_name: str | None,
    limit: int,
    offset: int,
) -> tuple[dict[str, int], int, list[asyncpg.Record]]:
    """(counts by status over the building/layout asked, how many units match, the page of
    them in building, floor and number order)."""
    where = Where().add("project_id = {}", project_id)
    if building is not None:
        where.add("building = {}", building)
    if layout_name is not None:
        where.add("layout_name = {}", layout_name)
    counts = await conn.fetch(f"SELECT status, count(*) AS n FROM units WHERE {where.sql} GROUP BY status", *where.args)
    if status is not None:
        where.add("status = {}", status)
    total = await conn.fetchval(f"SELECT count(*) FROM units WHERE {where.sql}", *where.args)
    rows = await conn.fetch(
        f"SELECT {UNIT_COLUMNS} FROM units WHERE {where.sql}"
        f" ORDER BY building, floor, unit_no LIMIT {limit} OFFSET {offset}",
        *where.args,
    )
    return {r["status"]: r["n"] for r in counts}, total, list(rows)


async def unit(conn: asyncpg.Connection, unit_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow(f"SELECT {UNIT_COLUMNS} FROM units WHERE unit_id = $1", unit_id)


async def receipts(conn: asyncpg.Connection, unit_id: str) -> list[Any]:
    """The unit's receipts in number order."""
    return [
        r["receipt"]
        for r in await conn.fetch("SELECT receipt FROM receipts WHERE unit_id = $1 ORDER BY receipt_no", unit_id)
    ]


async def price_lists(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """Every price set, by release, building, floor and number."""
    return list(
        await conn.fetch(
            "SELECT p.release, p.unit_id, u.building, u.unit_no, u.layout_name, u.area_sqm, p.unit_price_fen,"
            " p.total_price_fen, p.set_at, p.set_by, p.reason"
            " FROM price_lists p JOIN units u USING (unit_id) WHERE p.project_id = $1"
            " ORDER BY p.release, u.building, u.floor, u.unit_no",
            project_id,
        )
    )


async def unit_statuses(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """Every unit's status and deal, by building, floor and number."""
    return list(
        await conn.fetch(
            "SELECT unit_id, building, unit_no, layout_name, status, lead_id, credited_rep_id,"
            " deposit_total_fen, deposit_agreed_fen, deposit_due_by, deposit_overdue, subscription_state"
            " FROM units WHERE project_id = $1 ORDER BY building, floor, unit_no",
            project_id,
        )
    )


async def changes_on(conn: asyncpg.Connection, project_id: str, day: date) -> list[asyncpg.Record]:
    """Every change of a unit on the business day, in order."""
    return list(
        await conn.fetch(
            "SELECT c.at, c.unit_id, u.building, u.unit_no, c.event_type, c.status_before, c.status_after,"
            " c.lead_id, c.rep_id, c.amount_fen, c.by FROM unit_changes c JOIN units u USING (unit_id)"
            " WHERE c.project_id = $1 AND c.business_date = $2 ORDER BY c.position",
            project_id,
            day,
        )
    )


async def checks_on(conn: asyncpg.Connection, project_id: str, day: date) -> list[asyncpg.Record]:
    """The sales-control checks recorded on the business day, in order."""
    return list(
        await conn.fetch(
            "SELECT checked_by, role, at, units, discrepancies FROM checks"
            " WHERE project_id = $1 AND business_date = $2 ORDER BY position",
            project_id,
            day,
        )
    )


async def available_units(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT unit_id, building, unit_no, layout_name, rooms, halls, bathrooms, area_sqm, orientation,"
            " position, total_price_fen FROM units WHERE project_id = $1 AND status = 'available'",
            project_id,
        )
    )


async def deposits_due(conn: asyncpg.Connection, project_id: str) -> list[asyncpg.Record]:
    """Reserved units whose agreed deposit is not complete, the earliest deadline first."""
    return list(
        await conn.fetch(
            "SELECT unit_id, building, unit_no, lead_id, credited_rep_id, deposit_agreed_fen, deposit_total_fen,"
            " deposit_agreed_fen - deposit_total_fen AS missing_fen, deposit_due_by, deposit_overdue"
            " FROM units WHERE project_id = $1 AND status = 'reserved' AND deposit_due_by IS NOT NULL"
            " ORDER BY deposit_due_by, unit_id",
            project_id,
        )
    )


async def unit_deposits_to_flag(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Reserved units whose deposit deadline passed before `now` and are not flagged yet, the oldest first."""
    return list(
        await conn.fetch(
            "SELECT unit_id, deposit_due_by FROM units"
            " WHERE status = 'reserved' AND deposit_due_by < $1 AND NOT deposit_overdue"
            " ORDER BY deposit_due_by, unit_id",
            now,
        )
    )
