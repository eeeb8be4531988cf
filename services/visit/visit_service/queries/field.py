"""Field execution's tables: route plans, the outlets a plan or a cleanup covers, the monthly
route cleanups and the channels' standard pictures."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from salesplatform.projections import active_schema
from visit_service.domain.standards import OutletOnRecord
from visit_service.projections.directory import CustomerDirectory
from visit_service.projections.field import FieldStandards, RoutePlanBook
from visit_service.projections.visits import RouteBook, VisitBoard
from visit_service.queries import fetch, fetchrow


async def route_plan(conn: asyncpg.Connection, plan_id: str) -> asyncpg.Record | None:
    schema = await active_schema(conn, RoutePlanBook.name)
    return await fetchrow(conn, f"SELECT * FROM {schema}.route_plans WHERE plan_id = $1", plan_id)


async def rep_route_plans(conn: asyncpg.Connection, rep_id: str) -> list[asyncpg.Record]:
    """A rep's route plans, newest first."""
    schema = await active_schema(conn, RoutePlanBook.name)
    return await fetch(
        conn, f"SELECT * FROM {schema}.route_plans WHERE rep_id = $1 ORDER BY requested_at DESC, plan_id", rep_id
    )


async def requested_plans(conn: asyncpg.Connection, limit: int) -> list[str]:
    """The plans asked for and not yet solved, oldest first."""
    schema = await active_schema(conn, RoutePlanBook.name)
    rows = await conn.fetch(
        f"SELECT plan_id FROM {schema}.route_plans WHERE status = 'requested' ORDER BY requested_at, plan_id LIMIT $1",
        limit,
    )
    return [r["plan_id"] for r in rows]


async def outlets_to_plan(conn: asyncpg.Connection, rep_id: str, statuses: Sequence[str]) -> list[asyncpg.Record]:
    """The rep's customers of these statuses with their grades and positions."""
    schema = await active_schema(conn, CustomerDirectory.name)
    return await fetch(
        conn,
        f"SELECT customer_id, grade, latitude, longitude FROM {schema}.customers"
        " WHERE rep_id = $1 AND status = ANY($2::text[]) ORDER BY customer_id",
        rep_id,
        list(statuses),
    )


async def positions(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, tuple[float, float]]:
    """(latitude, longitude) of each of these customers whose position is known."""
    schema = await active_schema(conn, CustomerDirectory.name)
    rows = await conn.fetch(
        f"SELECT customer_id, latitude, longitude FROM {schema}.customers"
        " WHERE customer_id = ANY($1::text[]) AND latitude IS NOT NULL AND longitude IS NOT NULL",
        customer_ids,
    )
    return {r["customer_id"]: (r["latitude"], r["longitude"]) for r in rows}


async def outlets_on_record(conn: asyncpg.Connection, district_id: str) -> list[OutletOnRecord]:
    """Every customer of the district with its routes and its last check-in."""
    customers = await active_schema(conn, CustomerDirectory.name)
    routes = await active_schema(conn, RouteBook.name)
    visits = await active_schema(conn, VisitBoard.name)
    rows = await conn.fetch(
        f"""SELECT c.customer_id, c.rep_id, c.status, c.approved_on,
                   coalesce((SELECT array_agg(r.route_id ORDER BY r.route_id) FROM {routes}.routes r
                             WHERE r.customer_ids @> ARRAY[c.customer_id]), '{{}}') AS route_ids,
                   (SELECT max(v.business_date) FROM {visits}.visits v
                     WHERE v.customer_id = c.customer_id AND v.checked_in_at IS NOT NULL) AS last_visit_on
              FROM {customers}.customers c
             WHERE c.district_id = $1 AND c.registered""",
        district_id,
    )
    return [
        OutletOnRecord(
            r["customer_id"], r["rep_id"], r["status"], r["approved_on"], tuple(r["route_ids"]), r["last_visit_on"]
        )
        for r in rows
    ]


async def closed_cleanup(conn: asyncpg.Connection, cleanup_id: str) -> asyncpg.Record | None:
    """A closed route cleanup: who closed it when, its counts and notes."""
    schema = await active_schema(conn, FieldStandards.name)
    return await fetchrow(
        conn,
        f"SELECT closed_by, closed_on, counts, notes FROM {schema}.route_cleanups WHERE cleanup_id = $1",
        cleanup_id,
    )


async def standard_pictures(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    schema = await active_schema(conn, FieldStandards.name)
    return await fetch(conn, f"SELECT * FROM {schema}.standard_pictures ORDER BY channel")
