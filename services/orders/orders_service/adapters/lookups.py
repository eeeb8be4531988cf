"""Reads a command handler makes before it decides: the local customer directory and the
read models kept inline with this service's own events. Each takes the command's connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

import asyncpg

from orders_service.domain.customers import CustomerCard
from orders_service.domain.ordering import CreditPosition
from orders_service.domain.receivables import OpenInvoice
from orders_service.domain.returns import Returned
from salesplatform.dues import overdue_sql
from salesplatform.projections import active_schema
from salesplatform.uow import Preloaded, UnitOfWork

DIRECTORY = "customer_directory"
# Claimed by commands that change promotions, which orders read.
PROMOTIONS_CLAIM = "promotions"

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
    """What deciding an order needs from the read side."""

    card: CustomerCard | None
    position: CreditPosition
    promotion_ids: list[str]


@dataclass(frozen=True)
class CustomerStanding:
    """A customer's card and credit position as of one business day."""

    card: CustomerCard | None
    position: CreditPosition


async def order_context(
    uow: UnitOfWork,
    customer_id: str,
    skus: list[str],
    day: date,
    *,
    here: bool = False,
) -> OrderContext:
    """The customer card, its credit position (open and overdue invoices, confirmed orders not
    yet invoiced) and the promotions covering these SKUs on `day`: read ahead by the batch
    (`preload_order_contexts`) when it still holds, else read now. `here`: the directory
    generation on the search path (the reactor), as in `customer_card`."""
    standing: Any = Preloaded.MISSING
    promotions: Any = Preloaded.MISSING
    if uow.preloaded is not None and not here:
        standing = uow.preloaded.value("standing", f"{customer_id}@{day}")
        promotions = uow.preloaded.value("promotions", str(day))
    if standing is Preloaded.MISSING or promotions is Preloaded.MISSING:
        standings, promotions = await _read_standings(uow, [customer_id], skus, day, here=here)
        standing = standings[customer_id]
    wanted = set(skus)
    promotion_ids = sorted(p for p, covered in promotions.items() if wanted & covered)
    return OrderContext(standing.card, standing.position, promotion_ids)


async def preload_order_contexts(
    uow: UnitOfWork,
    customer_ids: list[str],
    skus: list[str],
    day: date,
    *,
    claim_of: Callable[[str], str],
) -> dict[str, list[str]]:
    """Read the order contexts of a batch's orders at once, for `order_context` to find. Each
    customer's standing is kept under its claim (`claim_of`): once an order of the batch for
    that customer is written, it is read again. Returns the promotions in scope by id, with
    their SKUs."""
    assert uow.preloaded is not None
    standings, promotions = await _read_standings(uow, customer_ids, skus, day)
    for customer_id, standing in standings.items():
        uow.preloaded.keep("standing", f"{customer_id}@{day}", standing, claim=claim_of(customer_id))
    uow.preloaded.keep("promotions", str(day), promotions, claim=PROMOTIONS_CLAIM)
    return {p: sorted(covered) for p, covered in promotions.items()}


async def _read_standings(
    uow: UnitOfWork,
    customer_ids: list[str],
    skus: list[str],
    day: date,
    *,
    here: bool = False,
) -> tuple[dict[str, CustomerStanding], dict[str, set[str]]]:
    """The standing of each customer (an unknown one has no card), and the promotions running
    on `day` that cover any of `skus` with the SKUs each covers: two statements, whatever the
    number of customers."""
    s = await uow.schemas("receivables", "order_board", "promotions", *(() if here else (DIRECTORY,)))
    customers = "customers" if here else f"{s[DIRECTORY]}.customers"
    rows = await uow.conn.fetch(
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
    standings: dict[str, CustomerStanding] = {}
    for row in rows:
        card = None
        if row["customer_id"] is not None:
            card = CustomerCard(**{k: row[k] for k in CustomerCard.__dataclass_fields__})
        position = CreditPosition(
            open_invoices_fen=row["open_invoices_fen"],
            open_orders_fen=row["open_orders_fen"],
            overdue_fen=row["overdue_fen"],
        )
        standings[row["wanted_id"]] = CustomerStanding(card, position)
    promotions = await uow.conn.fetch(
        f"SELECT promotion_id, skus FROM {s['promotions']}.promotions"
        " WHERE starts_on <= $1 AND ends_on >= $1 AND skus && $2::text[]",
        day,
        sorted(set(skus)),
    )
    return standings, {r["promotion_id"]: set(r["skus"]) for r in promotions}


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


async def customer_cards(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, CustomerCard]:
    schema = await active_schema(conn, DIRECTORY)
    rows = await conn.fetch(
        f"SELECT {_CARD_COLUMNS} FROM {schema}.customers WHERE customer_id = ANY($1::text[])",
        customer_ids,
    )
    return {r["customer_id"]: CustomerCard(**dict(r)) for r in rows}


async def product_groups(conn: asyncpg.Connection) -> dict[str, str]:
    """Every SKU's product group (the catalogue is small)."""
    schema = await active_schema(conn, "catalogue")
    return {r["sku"]: r["product_group"] for r in await conn.fetch(f"SELECT sku, product_group FROM {schema}.skus")}


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


async def open_invoices_of(conn: asyncpg.Connection, customer_ids: list[str]) -> list[asyncpg.Record]:
    schema = await active_schema(conn, "receivables")
    return cast(
        "list[Any]",
        await conn.fetch(
            f"SELECT invoice_id, order_id, customer_id, issued_on, due_on, open_fen FROM {schema}.invoices"
            " WHERE customer_id = ANY($1::text[]) AND open_fen > 0 ORDER BY issued_on, invoice_id",
            customer_ids,
        ),
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


async def unit_count(conn: asyncpg.Connection, project_id: str) -> int:
    schema = await active_schema(conn, "sales_control")
    return cast("int", await conn.fetchval(f"SELECT count(*) FROM {schema}.units WHERE project_id = $1", project_id))
