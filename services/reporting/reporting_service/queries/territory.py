"""The territory as the local directory holds it (a catch-up projection of the customer
archive's staff and territory): areas, districts and active reps, read by command handlers
inside their transaction."""

from __future__ import annotations

from typing import Literal

import asyncpg

from salesplatform.projections import active_schema


async def area_known(conn: asyncpg.Connection, area_id: str) -> bool:
    """Whether the directory knows the area, itself or by one of its districts."""
    schema = await active_schema(conn, "directory")
    row = await conn.fetchrow(
        f"SELECT area_id FROM {schema}.areas WHERE area_id = $1"
        f" UNION SELECT area_id FROM {schema}.districts WHERE area_id = $1",
        area_id,
    )
    return row is not None


async def district(conn: asyncpg.Connection, district_id: str) -> asyncpg.Record | None:
    """The district's area (None: the directory knows no such district)."""
    schema = await active_schema(conn, "directory")
    return await conn.fetchrow(f"SELECT area_id FROM {schema}.districts WHERE district_id = $1", district_id)


async def active_rep(conn: asyncpg.Connection, staff_id: str) -> asyncpg.Record | None:
    """An active rep's district and area (None: no such active rep)."""
    schema = await active_schema(conn, "directory")
    return await conn.fetchrow(
        f"SELECT district_id, area_id FROM {schema}.staff WHERE staff_id = $1 AND role = 'rep' AND active",
        staff_id,
    )


async def district_of_active_rep(conn: asyncpg.Connection, staff_id: str) -> str | None:
    """An active rep's district (None: no such active rep)."""
    schema = await active_schema(conn, "directory")
    district_id: str | None = await conn.fetchval(
        f"SELECT district_id FROM {schema}.staff WHERE staff_id = $1 AND role = 'rep' AND active", staff_id
    )
    return district_id


async def districts_of_area(conn: asyncpg.Connection, area_id: str) -> list[asyncpg.Record]:
    """Every district of the area with its area, by id."""
    schema = await active_schema(conn, "directory")
    return list(
        await conn.fetch(
            f"SELECT district_id, area_id FROM {schema}.districts WHERE area_id = $1 ORDER BY district_id",
            area_id,
        )
    )


async def active_reps_in(
    conn: asyncpg.Connection, column: Literal["area_id", "district_id"], place_id: str
) -> list[asyncpg.Record]:
    """Every active rep of an area or a district (`column` says which) with their place, by id."""
    schema = await active_schema(conn, "directory")
    return list(
        await conn.fetch(
            f"SELECT staff_id, district_id, area_id FROM {schema}.staff"
            f" WHERE {column} = $1 AND role = 'rep' AND active ORDER BY staff_id",
            place_id,
        )
    )
