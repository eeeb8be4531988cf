"""Routes as the route book holds them."""

from __future__ import annotations

import asyncpg

from salesplatform.projections import active_schema
from visit_service.domain.planning import RouteSheet
from visit_service.projections.visits import RouteBook
from visit_service.queries import fetch, fetchrow


async def route(conn: asyncpg.Connection, route_id: str) -> asyncpg.Record | None:
    schema = await active_schema(conn, RouteBook.name)
    return await fetchrow(conn, f"SELECT * FROM {schema}.routes WHERE route_id = $1", route_id)


async def rep_routes(conn: asyncpg.Connection, rep_id: str) -> list[asyncpg.Record]:
    """A rep's routes by name (then id)."""
    schema = await active_schema(conn, RouteBook.name)
    return await fetch(conn, f"SELECT * FROM {schema}.routes WHERE rep_id = $1 ORDER BY name, route_id", rep_id)


async def rep_route_ids(conn: asyncpg.Connection, rep_id: str) -> list[str]:
    """The ids of a rep's routes, in order."""
    schema = await active_schema(conn, RouteBook.name)
    rows = await fetch(conn, f"SELECT route_id FROM {schema}.routes WHERE rep_id = $1 ORDER BY route_id", rep_id)
    return [r["route_id"] for r in rows]


async def route_sheets(conn: asyncpg.Connection, rep_id: str) -> list[RouteSheet]:
    """A rep's routes as the planning reads them, by name (then id)."""
    return [
        RouteSheet(
            r["route_id"],
            r["name"],
            tuple(r["weekdays"]),
            tuple(r["customer_ids"]),
            r["cycle_weeks"],
            r["cycle_offset"],
        )
        for r in await rep_routes(conn, rep_id)
    ]


async def routes_on_weekday(conn: asyncpg.Connection, weekday: int) -> list[asyncpg.Record]:
    """Every route that runs on the ISO weekday (1 = Monday), as the day planning reads it."""
    schema = await active_schema(conn, RouteBook.name)
    return await fetch(
        conn,
        f"SELECT route_id, rep_id, name, weekdays, customer_ids, cycle_weeks, cycle_offset"
        f" FROM {schema}.routes WHERE $1 = ANY(weekdays)",
        weekday,
    )


async def route_ids_with_customer_not_of(conn: asyncpg.Connection, customer_id: str, rep_id: str | None) -> list[str]:
    """The ids of the routes the customer is on whose rep is not `rep_id`, in order."""
    schema = await active_schema(conn, RouteBook.name)
    rows = await fetch(
        conn,
        f"SELECT route_id FROM {schema}.routes WHERE customer_ids @> ARRAY[$1]::text[]"
        " AND rep_id IS DISTINCT FROM $2 ORDER BY route_id",
        customer_id,
        rep_id,
    )
    return [r["route_id"] for r in rows]
