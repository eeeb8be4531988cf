"""The local directory as handlers and queries read it: customers, staff and territory, the
catalogue, required SKUs and the customers' orders (tables of `projections/directory.py`), and
whether a customer's assignment is its latest (its stream as copied into the log).

Each takes any connection and qualifies tables with the active generation's schema, so it
works inside a command's transaction as well as on a plain pooled connection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import asyncpg

from salesplatform.errors import DomainError, NotFound
from salesplatform.events import Actor
from salesplatform.projections import active_schema
from visit_service.domain.access import Territory
from visit_service.projections.directory import Catalogue, CustomerDirectory


async def customer(conn: asyncpg.Connection, customer_id: str) -> dict[str, Any] | None:
    schema = await active_schema(conn, CustomerDirectory.name)
    row = await conn.fetchrow(f"SELECT * FROM {schema}.customers WHERE customer_id = $1", customer_id)
    return dict(row) if row else None


async def staff_member(conn: asyncpg.Connection, staff_id: str) -> dict[str, Any] | None:
    schema = await active_schema(conn, CustomerDirectory.name)
    row = await conn.fetchrow(f"SELECT * FROM {schema}.staff WHERE staff_id = $1", staff_id)
    return dict(row) if row else None


async def area_of_district(conn: asyncpg.Connection, district_id: str) -> str | None:
    schema = await active_schema(conn, CustomerDirectory.name)
    return cast(
        "str | None", await conn.fetchval(f"SELECT area_id FROM {schema}.districts WHERE district_id = $1", district_id)
    )


async def supervisor_of(conn: asyncpg.Connection, rep_id: str, district_id: str | None) -> str | None:
    """The rep's supervisor as the staff directory names it, else the district's supervisor."""
    schema = await active_schema(conn, CustomerDirectory.name)
    named = await conn.fetchval(
        f"SELECT supervisor_id FROM {schema}.staff WHERE staff_id = $1 AND supervisor_id IS NOT NULL", rep_id
    )
    if named:
        return cast("str | None", named)
    if district_id is None:
        return None
    return cast(
        "str | None",
        await conn.fetchval(
            f"SELECT staff_id FROM {schema}.staff WHERE district_id = $1 AND role = 'supervisor' AND active"
            " ORDER BY staff_id LIMIT 1",
            district_id,
        ),
    )


async def known_skus(conn: asyncpg.Connection, skus: Iterable[str]) -> set[str]:
    schema = await active_schema(conn, Catalogue.name)
    rows = await conn.fetch(f"SELECT sku FROM {schema}.skus WHERE sku = ANY($1::text[])", list(skus))
    return {r["sku"] for r in rows}


async def required_skus(conn: asyncpg.Connection, channel: str | None) -> list[str]:
    if channel is None:
        return []
    schema = await active_schema(conn, Catalogue.name)
    skus = await conn.fetchval(f"SELECT skus FROM {schema}.required_skus WHERE channel = $1", channel)
    return list(skus or [])


async def recent_orders(conn: asyncpg.Connection, customer_id: str, limit: int = 3) -> list[dict[str, int]]:
    """Quantity per SKU of the customer's latest orders, newest first; cancelled and rejected
    orders do not count, nor do rows known only from a delivery (no lines yet)."""
    schema = await active_schema(conn, Catalogue.name)
    rows = await conn.fetch(
        f"SELECT lines FROM {schema}.orders WHERE customer_id = $1 AND lines IS NOT NULL"
        " AND placed_at IS NOT NULL AND status NOT IN ('cancelled', 'rejected')"
        " ORDER BY placed_at DESC, order_id DESC LIMIT $2",
        customer_id,
        limit,
    )
    out: list[dict[str, int]] = []
    for r in rows:
        quantities: dict[str, int] = {}
        for line in r["lines"]:
            quantities[line["sku"]] = quantities.get(line["sku"], 0) + int(line["quantity"])
        out.append(quantities)
    return out


async def order(conn: asyncpg.Connection, order_id: str) -> dict[str, Any] | None:
    schema = await active_schema(conn, Catalogue.name)
    row = await conn.fetchrow(f"SELECT * FROM {schema}.orders WHERE order_id = $1", order_id)
    return dict(row) if row else None


async def previous_order(conn: asyncpg.Connection, customer_id: str, visit_id: str) -> dict[str, Any] | None:
    """The customer's latest order not taken on this visit."""
    schema = await active_schema(conn, Catalogue.name)
    row = await conn.fetchrow(
        f"SELECT * FROM {schema}.orders WHERE customer_id = $1 AND placed_at IS NOT NULL"
        " AND visit_id IS DISTINCT FROM $2 AND status NOT IN ('cancelled', 'rejected')"
        " ORDER BY placed_at DESC, order_id DESC LIMIT 1",
        customer_id,
        visit_id,
    )
    return dict(row) if row else None


async def customer_names(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, str | None]:
    """The directory's name of each customer it knows."""
    if not customer_ids:
        return {}
    schema = await active_schema(conn, CustomerDirectory.name)
    rows = await conn.fetch(
        f"SELECT customer_id, name FROM {schema}.customers WHERE customer_id = ANY($1::text[])", customer_ids
    )
    return {r["customer_id"]: r["name"] for r in rows}


async def reps_of(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, str | None]:
    """The rep of each of the customers the directory knows, unless merged away or rejected."""
    schema = await active_schema(conn, CustomerDirectory.name)
    rows = await conn.fetch(
        f"SELECT customer_id, rep_id FROM {schema}.customers"
        " WHERE customer_id = ANY($1::text[]) AND status IS DISTINCT FROM 'merged'"
        " AND status IS DISTINCT FROM 'rejected'",
        customer_ids,
    )
    return {r["customer_id"]: r["rep_id"] for r in rows}


async def assignment_superseded(
    conn: asyncpg.Connection, stream_id: str, stream_version: int, assignments: list[str]
) -> bool:
    """Whether the customer's stream (its copy in this log) goes on past `stream_version` with another assignment."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM public.events WHERE stream_id = $1 AND stream_version > $2"
            " AND event_type = ANY($3::text[]))",
            stream_id,
            stream_version,
            assignments,
        )
    )


async def catalogue(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """Every SKU, and the required SKUs of every channel."""
    schema = await active_schema(conn, Catalogue.name)
    skus = await conn.fetch(
        f"SELECT sku, defined, name, brand, product_group, package, list_price_fen, floor_price_fen"
        f" FROM {schema}.skus ORDER BY sku"
    )
    required = await conn.fetch(f"SELECT channel, skus FROM {schema}.required_skus ORDER BY channel")
    return skus, required


# -- what decisions need of it (refused when missing) ----------------------------------------


async def customer_on_list(conn: asyncpg.Connection, customer_id: str, rep_id: str) -> dict[str, Any]:
    """The customer's directory row, if the customer is on the rep's list (assigned to the rep
    and not merged away); anything else is refused."""
    row = await customer(conn, customer_id)
    if row is None:
        raise DomainError(
            f"customer {customer_id} is not in the customer directory",
            code="customer_not_on_rep_list",
            field="customer_id",
        )
    if row["rep_id"] != rep_id or row["status"] in ("merged", "rejected"):
        raise DomainError(
            f"customer {customer_id} is not on rep {rep_id}'s list",
            code="customer_not_on_rep_list",
            field="customer_id",
        )
    return row


async def known_customer(conn: asyncpg.Connection, customer_id: str) -> dict[str, Any]:
    row = await customer(conn, customer_id)
    if row is None:
        raise NotFound(f"customer {customer_id} is not in the customer directory", code="unknown_customer")
    return row


async def rep_territory(conn: asyncpg.Connection, rep_id: str, actor: Actor) -> Territory:
    """Where a rep works: from the staff directory; a rep acting for themselves before the
    directory knows them is placed by their own token."""
    row = await staff_member(conn, rep_id)
    if row is not None:
        return Territory(rep_id, row["district_id"], row["area_id"])
    if actor.id == rep_id:
        return Territory(rep_id, actor.district, actor.area)
    return Territory(rep_id, None, None)
