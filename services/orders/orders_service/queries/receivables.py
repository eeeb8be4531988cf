"""Receivables: invoices, payments with their allocations, collection notes."""

from __future__ import annotations

from typing import Any, cast

import asyncpg

from orders_service.domain.receivables import OpenInvoice
from orders_service.queries.conditions import Where
from orders_service.queries.customers import DIRECTORY
from salesplatform.projections import active_schema


async def open_invoices(conn: asyncpg.Connection, customer_id: str) -> list[OpenInvoice]:
    """The customer's invoices with something still to pay, oldest first."""
    schema = await active_schema(conn, "receivables")
    rows = await conn.fetch(
        f"SELECT invoice_id, issued_on, due_on, open_fen FROM {schema}.invoices"
        " WHERE customer_id = $1 AND open_fen > 0 ORDER BY issued_on, invoice_id",
        customer_id,
    )
    return [OpenInvoice(**dict(r)) for r in rows]


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


async def open_invoices_with_customers(
    conn: asyncpg.Connection, *, customer_id: str | None, scope: list[tuple[str, Any]]
) -> list[asyncpg.Record]:
    """Open invoices with their customer's name and rep, by customer and date of issue: the
    customer asked for, else every customer in the scope."""
    directory = await active_schema(conn, DIRECTORY)
    where = Where().add("i.open_fen > 0")
    if customer_id:
        where.add("i.customer_id = {}", customer_id)
    else:
        where.within(scope, "c")
    return list(
        await conn.fetch(
            f"SELECT i.customer_id, c.name, c.rep_id, i.invoice_id, i.issued_on, i.due_on, i.open_fen"
            f" FROM invoices i LEFT JOIN {directory}.customers c USING (customer_id)"
            f" WHERE {where.sql} ORDER BY i.customer_id, i.issued_on",
            *where.args,
        )
    )


async def invoice_of_order(conn: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    schema = await active_schema(conn, "receivables")
    return await conn.fetchrow(f"SELECT * FROM {schema}.invoices WHERE order_id = $1", order_id)


async def invoices(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT * FROM invoices WHERE customer_id = $1 ORDER BY issued_on, invoice_id", customer_id)
    )


async def payments(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    """The customer's payments in order, each with its allocations (JSON)."""
    return list(
        await conn.fetch(
            "SELECT p.*, coalesce(json_agg(json_build_object('invoice_id', a.invoice_id, 'amount_fen',"
            " a.amount_fen)) FILTER (WHERE a.invoice_id IS NOT NULL), '[]') AS allocations"
            " FROM payments p LEFT JOIN allocations a USING (payment_id) WHERE p.customer_id = $1"
            " GROUP BY p.payment_id ORDER BY p.received_on, p.payment_id",
            customer_id,
        )
    )


async def collection_notes(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    return list(
        await conn.fetch("SELECT * FROM collection_notes WHERE customer_id = $1 ORDER BY noted_at", customer_id)
    )
