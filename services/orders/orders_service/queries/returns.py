"""Returns (退回产品处理单): the requests, their lines and corrective actions, the queues."""

from __future__ import annotations

from typing import Any

import asyncpg

from orders_service.domain.returns import Returned
from orders_service.queries.conditions import Where
from salesplatform.projections import active_schema


async def returned_so_far(conn: asyncpg.Connection, order_id: str) -> dict[str, Returned]:
    """What earlier returns of the order take back (rejected ones take back nothing)."""
    schema = await active_schema(conn, "returns")
    rows = await conn.fetch(
        f"SELECT l.sku, sum(l.quantity)::bigint AS quantity, sum(l.amount_fen)::bigint AS amount_fen"
        f" FROM {schema}.returns r JOIN {schema}.return_lines l USING (return_id)"
        " WHERE r.order_id = $1 AND r.status <> 'rejected' GROUP BY l.sku",
        order_id,
    )
    return {r["sku"]: Returned(r["quantity"], r["amount_fen"]) for r in rows}


async def returns_of_order(conn: asyncpg.Connection, order_id: str) -> list[asyncpg.Record]:
    schema = await active_schema(conn, "returns")
    return list(
        await conn.fetch(
            f"SELECT return_id, status, reason, scope, amount_fen FROM {schema}.returns WHERE order_id = $1"
            " ORDER BY requested_at",
            order_id,
        )
    )


async def awaiting_decision(
    conn: asyncpg.Connection, role: str, scope: list[tuple[str, Any]], *, limit: int, offset: int
) -> list[asyncpg.Record]:
    """Returns `role` approves that wait for a decision (inspected, or needing no
    inspection), with their order's rep and territory, oldest request first."""
    board = await active_schema(conn, "order_board")
    where = Where().add(
        "r.approver_role = {} AND (r.status = 'inspected' OR (r.status = 'requested' AND NOT r.inspection_required))",
        role,
    )
    where.within(scope, "o")
    return list(
        await conn.fetch(
            f"SELECT r.*, o.rep_id, o.district_id, o.area_id FROM returns r"
            f" JOIN {board}.orders o USING (order_id) WHERE {where.sql}"
            f" ORDER BY r.requested_at, r.return_id LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
            *where.args,
        )
    )


async def lines_of(conn: asyncpg.Connection, return_ids: list[str]) -> list[asyncpg.Record]:
    """The lines of these returns, by return and SKU."""
    return list(
        await conn.fetch(
            "SELECT return_id, sku, quantity, amount_fen FROM return_lines"
            " WHERE return_id = ANY($1::text[]) ORDER BY return_id, sku",
            return_ids,
        )
    )


async def returns(
    conn: asyncpg.Connection,
    scope: list[tuple[str, Any]],
    *,
    status: str | None,
    reason: str | None,
    limit: int,
    offset: int,
) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """(counts and amounts by status and reason over the scope, the page of returns asked
    for, newest first)."""
    board = await active_schema(conn, "order_board")
    where = Where().within(scope, "o")
    counts = await conn.fetch(
        f"SELECT r.status, r.reason, count(*) AS n, sum(r.amount_fen)::bigint AS amount_fen"
        f" FROM returns r JOIN {board}.orders o USING (order_id) WHERE {where.sql}"
        " GROUP BY r.status, r.reason ORDER BY r.status, r.reason",
        *where.args,
    )
    if status:
        where.add("r.status = {}", status)
    if reason:
        where.add("r.reason = {}", reason)
    rows = await conn.fetch(
        f"SELECT r.* FROM returns r JOIN {board}.orders o USING (order_id) WHERE {where.sql}"
        f" ORDER BY r.requested_at DESC, r.return_id LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
        *where.args,
    )
    return list(counts), list(rows)


async def return_request(conn: asyncpg.Connection, return_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM returns WHERE return_id = $1", return_id)


async def territory_of_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order's rep, district and area."""
    board = await active_schema(conn, "order_board")
    return await conn.fetchrow(f"SELECT rep_id, district_id, area_id FROM {board}.orders WHERE order_id = $1", order_id)


async def return_lines(conn: asyncpg.Connection, return_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT sku, quantity, amount_fen FROM return_lines WHERE return_id = $1", return_id))


async def corrective_actions(conn: asyncpg.Connection, return_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT department, action, assigned_at FROM corrective_actions WHERE return_id = $1", return_id
        )
    )
