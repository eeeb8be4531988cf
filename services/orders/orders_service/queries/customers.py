"""The local customer directory: the customer service's cards and staff as this service
knows them, and the visit orders that waited for a customer or were refused."""

from __future__ import annotations

from typing import Any

import asyncpg

from orders_service.domain.customers import CustomerCard
from salesplatform.projections import active_schema

DIRECTORY = "customer_directory"

CARD_COLUMNS = (
    "customer_id, status, district_id, area_id, division_id, rep_id, channel, grade,"
    " credit_limit_fen, payment_terms_days, merged_into"
)


async def customer_card(conn: asyncpg.Connection, customer_id: str, *, here: bool = False) -> CustomerCard | None:
    """The customer as the directory knows it. `here`: read the directory generation on the
    search path (a reactor applying inside that projection) instead of the active one."""
    table = "customers" if here else f"{await active_schema(conn, DIRECTORY)}.customers"
    row = await conn.fetchrow(f"SELECT {CARD_COLUMNS} FROM {table} WHERE customer_id = $1", customer_id)
    return CustomerCard(**dict(row)) if row else None


async def customer_cards(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, CustomerCard]:
    schema = await active_schema(conn, DIRECTORY)
    rows = await conn.fetch(
        f"SELECT {CARD_COLUMNS} FROM {schema}.customers WHERE customer_id = ANY($1::text[])",
        customer_ids,
    )
    return {r["customer_id"]: CustomerCard(**dict(r)) for r in rows}


async def place_of_rep(conn: asyncpg.Connection, rep_id: str) -> asyncpg.Record | None:
    """The rep's district and area."""
    schema = await active_schema(conn, DIRECTORY)
    return await conn.fetchrow(f"SELECT district_id, area_id FROM {schema}.staff WHERE staff_id = $1", rep_id)


async def area_of_district(conn: asyncpg.Connection, district_id: str) -> str | None:
    """The area of a district some staff member works in."""
    schema = await active_schema(conn, DIRECTORY)
    area: str | None = await conn.fetchval(
        f"SELECT area_id FROM {schema}.staff WHERE district_id = $1 AND area_id IS NOT NULL LIMIT 1", district_id
    )
    return area


async def parked_orders(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Visit orders parked for a customer not known yet, and what became of them."""
    return list(
        await conn.fetch(
            "SELECT order_id, customer_id, parked_at, reason, outcome, settled_at FROM parked_orders ORDER BY parked_at"
        )
    )


async def parked_for(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    """The envelopes of the visit orders still waiting for the customer, first parked first."""
    return list(
        await conn.fetch(
            "SELECT envelope FROM parked_orders WHERE customer_id = $1 AND outcome IS NULL ORDER BY parked_at, order_id",
            customer_id,
        )
    )


async def parked_envelope(conn: asyncpg.Connection, order_id: str) -> Any:
    """The envelope of the visit event a parked order came in (None: not parked)."""
    return await conn.fetchval("SELECT envelope FROM parked_orders WHERE order_id = $1", order_id)


async def refused_visit_messages(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT * FROM visit_messages_refused ORDER BY at"))
