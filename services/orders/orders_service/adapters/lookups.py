"""Reads a command handler makes before it decides: the local customer directory and the
read models kept inline with this service's own events. Each takes the command's connection."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import asyncpg

from salesplatform.errors import ConcurrencyConflict
from salesplatform.projections import active_schema
from salesplatform.uow import UnitOfWork

from orders_service.domain.customers import CustomerCard
from orders_service.domain.ordering import CreditPosition
from orders_service.domain.receivables import OpenInvoice
from orders_service.domain.returns import Returned

DIRECTORY = "customer_directory"

_CARD_COLUMNS = (
    "customer_id, status, district_id, area_id, division_id, rep_id, channel, grade,"
    " credit_limit_fen, payment_terms_days, merged_into"
)


_CARD_COLUMNS_OF_C = ", ".join("c." + c.strip() for c in _CARD_COLUMNS.split(","))


async def customer_card(conn: asyncpg.Connection, customer_id: str, *, here: bool = False) -> CustomerCard | None:
    """The customer as the directory knows it. `here`: read the directory generation on the
    search path (a reactor applying inside that projection) instead of the active one."""
    table = "customers" if here else f"{await active_schema(conn, DIRECTORY)}.customers"
    row = await conn.fetchrow(f"SELECT {_CARD_COLUMNS} FROM {table} WHERE customer_id = $1", customer_id)
    return CustomerCard(**dict(row)) if row else None


@dataclass(frozen=True)
class OrderContext:
    """What deciding an order needs from the read side, fetched in one round trip."""

    card: CustomerCard | None
    position: CreditPosition
    promotion_ids: list[str]


async def order_context(
    uow: UnitOfWork, customer_id: str, skus: list[str], day: date, *, here: bool = False,
) -> OrderContext:
    """The customer card, its credit position (open and overdue invoices, confirmed orders not
    yet invoiced) and the promotions covering these SKUs on `day`. `here`: the directory
    generation on the search path (the reactor), as in `customer_card`."""
    s = await uow.schemas("receivables", "order_board", "promotions", *(() if here else (DIRECTORY,)))
    customers = "customers" if here else f"{s[DIRECTORY]}.customers"
    row = await uow.conn.fetchrow(
        f"""
        SELECT {_CARD_COLUMNS_OF_C},
               (SELECT coalesce(sum(open_fen), 0)::bigint FROM {s["receivables"]}.invoices i
                 WHERE i.customer_id = $1 AND i.open_fen > 0) AS open_invoices_fen,
               (SELECT coalesce(sum(open_fen), 0)::bigint FROM {s["receivables"]}.invoices i
                 WHERE i.customer_id = $1 AND i.open_fen > 0 AND i.due_on < $3) AS overdue_fen,
               (SELECT coalesce(sum(amount_fen), 0)::bigint FROM {s["order_board"]}.orders o
                 WHERE o.customer_id = $1 AND o.status IN ('confirmed', 'dispatched')) AS open_orders_fen,
               (SELECT coalesce(array_agg(promotion_id ORDER BY promotion_id), '{{}}')
                  FROM {s["promotions"]}.promotions p
                 WHERE p.starts_on <= $3 AND p.ends_on >= $3 AND p.skus && $2::text[]) AS promotion_ids
        FROM (SELECT 1) AS one LEFT JOIN {customers} c ON c.customer_id = $1
        """,
        customer_id, skus, day,
    )
    card = None
    if row["customer_id"] is not None:
        card = CustomerCard(**{k: row[k] for k in CustomerCard.__dataclass_fields__})
    position = CreditPosition(
        open_invoices_fen=row["open_invoices_fen"], open_orders_fen=row["open_orders_fen"],
        overdue_fen=row["overdue_fen"],
    )
    return OrderContext(card, position, list(row["promotion_ids"]))


async def open_invoices(conn: asyncpg.Connection, customer_id: str) -> list[OpenInvoice]:
    schema = await active_schema(conn, "receivables")
    rows = await conn.fetch(
        f"SELECT invoice_id, issued_on, due_on, open_fen FROM {schema}.invoices"
        " WHERE customer_id = $1 AND open_fen > 0 ORDER BY issued_on, invoice_id",
        customer_id,
    )
    return [OpenInvoice(**dict(r)) for r in rows]


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


async def known_skus(conn: asyncpg.Connection, skus: list[str]) -> set[str]:
    schema = await active_schema(conn, "catalogue")
    rows = await conn.fetch(f"SELECT sku FROM {schema}.skus WHERE sku = ANY($1::text[])", skus)
    return {r["sku"] for r in rows}


async def lock(conn: asyncpg.Connection, key: str) -> None:
    """Serialise commands that check a sum over several streams (a customer's open invoices, an
    order's returns). An advisory lock writes nothing, so the events append stays the
    transaction's first write. Two batches of commands (group commit) taking the same keys in
    opposite order deadlock; PostgreSQL breaks that by failing one wait, which is turned into a
    conflict so the bus runs that command again on its own."""
    try:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
    except asyncpg.DeadlockDetectedError as exc:
        raise ConcurrencyConflict(f"{key} is being changed by another transaction") from exc


async def customer_cards(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, CustomerCard]:
    schema = await active_schema(conn, DIRECTORY)
    rows = await conn.fetch(
        f"SELECT {_CARD_COLUMNS} FROM {schema}.customers WHERE customer_id = ANY($1::text[])", customer_ids,
    )
    return {r["customer_id"]: CustomerCard(**dict(r)) for r in rows}


async def product_groups(conn: asyncpg.Connection) -> dict[str, str]:
    """Every SKU's product group (the catalogue is small)."""
    schema = await active_schema(conn, "catalogue")
    return {r["sku"]: r["product_group"] for r in await conn.fetch(f"SELECT sku, product_group FROM {schema}.skus")}


async def orders_with_heads(conn: asyncpg.Connection, order_ids: list[str]) -> list[asyncpg.Record]:
    """Stored orders with the version their stream is at (for appending to it)."""
    schema = await active_schema(conn, "order_board")
    return await conn.fetch(
        f"""
        SELECT o.order_id, o.customer_id, o.status, o.amount_fen, o.confirmed_at, o.deliver_by,
               (SELECT max(stream_version) FROM events e WHERE e.stream_id = 'order-' || o.order_id) AS version
        FROM {schema}.orders o WHERE o.order_id = ANY($1::text[])
        """,
        order_ids,
    )


async def open_invoices_of(conn: asyncpg.Connection, customer_ids: list[str]) -> list[asyncpg.Record]:
    schema = await active_schema(conn, "receivables")
    return await conn.fetch(
        f"SELECT invoice_id, order_id, customer_id, issued_on, due_on, open_fen FROM {schema}.invoices"
        " WHERE customer_id = ANY($1::text[]) AND open_fen > 0 ORDER BY issued_on, invoice_id",
        customer_ids,
    )
