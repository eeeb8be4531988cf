"""The order board: orders and their lines, the approval queues, late deliveries; and what
deciding an order reads (the customers' credit standing, the promotions running)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import asyncpg

from orders_service.domain.customers import CustomerCard
from orders_service.domain.ordering import CreditPosition
from orders_service.queries.conditions import Where
from orders_service.queries.customers import CARD_COLUMNS, DIRECTORY
from salesplatform.dues import overdue_sql
from salesplatform.projections import active_schema

_CARD_COLUMNS_OF_C = ", ".join("c." + c.strip() for c in CARD_COLUMNS.split(","))


async def order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id)


async def order_lines(conn: asyncpg.Connection, order_id: str) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM order_lines WHERE order_id = $1 ORDER BY line_no", order_id))


async def orders(
    conn: asyncpg.Connection,
    scope: list[tuple[str, Any]],
    *,
    customer_id: str | None,
    rep_id: str | None,
    status: str | None,
    date_from: date | None,
    date_to: date | None,
    limit: int,
    offset: int,
) -> tuple[int, list[asyncpg.Record]]:
    """(how many orders match, the page of them, newest first). `scope`: the reader's
    territory, unless a customer is asked for."""
    where = Where()
    if customer_id:
        where.add("o.customer_id = {}", customer_id)
    else:
        where.within(scope, "o")
    if rep_id:
        where.add("o.rep_id = {}", rep_id)
    if status:
        where.add("o.status = {}", status)
    if date_from:
        where.add("o.business_date >= {}", date_from)
    if date_to:
        where.add("o.business_date <= {}", date_to)
    total = await conn.fetchval(f"SELECT count(*) FROM orders o WHERE {where.sql}", *where.args)
    rows = await conn.fetch(
        f"SELECT o.* FROM orders o WHERE {where.sql} ORDER BY o.placed_at DESC, o.order_id"
        f" LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
        *where.args,
    )
    return total, list(rows)


async def awaiting_approval(
    conn: asyncpg.Connection, role: str, scope: list[tuple[str, Any]], *, limit: int, offset: int
) -> list[asyncpg.Record]:
    """Orders waiting for `role`'s approval in the scope, oldest first."""
    where = Where().add("o.status = 'pending_approval' AND o.required_role = {}", role).within(scope, "o")
    return list(
        await conn.fetch(
            f"SELECT o.* FROM orders o WHERE {where.sql} ORDER BY o.placed_at, o.order_id"
            f" LIMIT {where.param(limit)} OFFSET {where.param(offset)}",
            *where.args,
        )
    )


async def overdue_deliveries(
    conn: asyncpg.Connection, now: datetime, scope: list[tuple[str, Any]]
) -> list[asyncpg.Record]:
    """Confirmed or dispatched orders whose delivery deadline has passed, the oldest first."""
    where = Where().add("o.status IN ('confirmed', 'dispatched') AND o.deliver_by < {}", now).within(scope, "o")
    return list(await conn.fetch(f"SELECT o.* FROM orders o WHERE {where.sql} ORDER BY o.deliver_by", *where.args))


async def deliveries_to_flag(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Orders whose delivery deadline passed before `now` and are not flagged yet, the oldest first."""
    return list(
        await conn.fetch(
            "SELECT order_id FROM orders WHERE status IN ('confirmed', 'dispatched')"
            " AND NOT delivery_overdue AND deliver_by < $1 ORDER BY deliver_by",
            now,
        )
    )


async def deposits_to_flag(conn: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    """Live orders whose deposit deadline passed before `now` and are not flagged yet, the oldest first."""
    return list(
        await conn.fetch(
            "SELECT order_id FROM orders WHERE deposit_due_by < $1 AND NOT deposit_overdue"
            " AND status NOT IN ('cancelled', 'rejected') ORDER BY deposit_due_by",
            now,
        )
    )


async def orders_with_heads(conn: asyncpg.Connection, order_ids: list[str]) -> list[asyncpg.Record]:
    """Stored orders with the version their stream is at (for appending to it)."""
    schema = await active_schema(conn, "order_board")
    return cast(
        "list[Any]",
        await conn.fetch(
            f"""
        SELECT o.order_id, o.customer_id, o.status, o.amount_fen, o.confirmed_at, o.deliver_by,
               (SELECT max(stream_version) FROM events e WHERE e.stream_id = 'order-' || o.order_id) AS version
        FROM {schema}.orders o WHERE o.order_id = ANY($1::text[])
        """,
            order_ids,
        ),
    )


@dataclass(frozen=True)
class CustomerStanding:
    """A customer's card and credit position as of one business day."""

    card: CustomerCard | None
    position: CreditPosition


async def standings(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    customer_ids: list[str],
    skus: list[str],
    day: date,
    *,
    here: bool = False,
) -> tuple[dict[str, CustomerStanding], dict[str, set[str]]]:
    """The standing of each customer (an unknown one has no card), and the promotions running
    on `day` that cover any of `skus` with the SKUs each covers: two statements, whatever the
    number of customers. `schemas`: the generations read (receivables, order board, promotions
    and, unless `here`, the customer directory); `here`: the directory on the search path."""
    s = schemas
    customers = "customers" if here else f"{s[DIRECTORY]}.customers"
    rows = await conn.fetch(
        f"""
        SELECT k.wanted_id, {_CARD_COLUMNS_OF_C},
               coalesce(inv.open_fen, 0)::bigint AS open_invoices_fen,
               coalesce(inv.overdue_fen, 0)::bigint AS overdue_fen,
               coalesce(ord.open_fen, 0)::bigint AS open_orders_fen
        FROM unnest($1::text[]) AS k(wanted_id)
        LEFT JOIN {customers} c ON c.customer_id = k.wanted_id
        LEFT JOIN LATERAL (
            SELECT sum(open_fen) AS open_fen, sum(open_fen) FILTER (WHERE {overdue_sql("i.due_on", "$2")}) AS overdue_fen
              FROM {s["receivables"]}.invoices i WHERE i.customer_id = k.wanted_id AND i.open_fen > 0
        ) inv ON true
        LEFT JOIN LATERAL (
            SELECT sum(amount_fen) AS open_fen FROM {s["order_board"]}.orders o
             WHERE o.customer_id = k.wanted_id AND o.status IN ('confirmed', 'dispatched')
        ) ord ON true
        """,
        sorted(set(customer_ids)),
        day,
    )
    found: dict[str, CustomerStanding] = {}
    for row in rows:
        card = None
        if row["customer_id"] is not None:
            card = CustomerCard(**{k: row[k] for k in CustomerCard.__dataclass_fields__})
        position = CreditPosition(
            open_invoices_fen=row["open_invoices_fen"],
            open_orders_fen=row["open_orders_fen"],
            overdue_fen=row["overdue_fen"],
        )
        found[row["wanted_id"]] = CustomerStanding(card, position)
    promotions = await conn.fetch(
        f"SELECT promotion_id, skus FROM {s['promotions']}.promotions"
        " WHERE starts_on <= $1 AND ends_on >= $1 AND skus && $2::text[]",
        day,
        sorted(set(skus)),
    )
    return found, {r["promotion_id"]: set(r["skus"]) for r in promotions}
