"""The territory directory: the tree of divisions, areas and districts, and the staff."""

from __future__ import annotations

import asyncpg

from customer_service.queries.conditions import Where
from salesplatform.projections import active_schema


async def staff_member(conn: asyncpg.Connection, staff_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM staff WHERE staff_id = $1", staff_id)


async def unit(conn: asyncpg.Connection, unit_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM units WHERE unit_id = $1", unit_id)


async def units(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM units ORDER BY unit_id"))


async def staff(
    conn: asyncpg.Connection,
    *,
    district_id: str | None = None,
    area_id: str | None = None,
    role: str | None = None,
    active: bool | None = None,
) -> list[asyncpg.Record]:
    w = Where()
    w.equal(district_id=district_id, area_id=area_id, role=role, active=active)
    return list(await conn.fetch(f"SELECT * FROM staff WHERE {w.sql()} ORDER BY staff_id", *w.args))


async def staff_names(conn: asyncpg.Connection) -> dict[str, str]:
    """Every staff member's name by id, read beside another projection's connection."""
    schema = await active_schema(conn, "territory_directory")
    return {r["staff_id"]: r["name"] for r in await conn.fetch(f"SELECT staff_id, name FROM {schema}.staff")}
