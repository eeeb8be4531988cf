"""The local directory of other services' data, built from their events copied into this
service's log: customers, staff and territory (customer service), the catalogue, required SKUs
per channel and the customers' orders (orders service). The visit service never asks another
service; it reads these tables.

Events from different services (and different streams) arrive in no guaranteed order: a
`customer.assigned` may be copied before the `customer.registered` it follows. So every row is
upserted by id, and every column remembers the stream version of the event that last set it
(`versions`): an event for an unknown id creates a placeholder row (`registered`/`defined`
false), a later-arriving older event fills only the columns no newer event has set, and
re-applying an event changes nothing. The result depends only on the events, not on their
arrival order, so a rebuild equals the incremental build.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.published import CUSTOMER_CARD_EVENTS, CUSTOMER_POSITION_EVENTS, STAFF_EVENTS, TERRITORY_EVENTS
from salesplatform.replicas import CARD_PLACEMENT, assigned_staff, staff_table
from salesplatform.store import RecordedEvent

CUSTOMER_EVENTS = sorted(CUSTOMER_CARD_EVENTS | CUSTOMER_POSITION_EVENTS | TERRITORY_EVENTS | STAFF_EVENTS)

ORDERS_EVENTS = [
    "sku.defined",
    "sku.price_set",
    "required_skus.set",
    "order.placed",
    "order.approved",
    "order.rejected",
    "order.confirmed",
    "order.delivered",
    "order.cancelled",
]


async def merge_row(
    conn: asyncpg.Connection, table: str, key_column: str, key: str, version: int, values: dict[str, Any]
) -> dict[str, Any]:
    """Set `values` on the row `key`, column by column, unless a newer event (higher stream
    version) already set that column. Creates the row if it is missing."""
    row = await conn.fetchrow(f"SELECT * FROM {table} WHERE {key_column} = $1 FOR UPDATE", key)
    current: dict[str, Any] = dict(row) if row is not None else {key_column: key, "versions": {}}
    versions: dict[str, int] = dict(current.get("versions") or {})
    for column, value in values.items():
        if version >= versions.get(column, 0):
            current[column] = value
            versions[column] = version
    current["versions"] = versions
    columns = list(current)
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key_column)
    await conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"
        f" ON CONFLICT ({key_column}) DO UPDATE SET {updates}",
        *[current[c] for c in columns],
    )
    return current


class CustomerDirectory(Projection):
    """Customers with their rep, territory, channel and grade; staff; districts and areas."""

    name = "customer_directory"
    event_types = frozenset(CUSTOMER_EVENTS)
    code_version = 2

    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        self.zone = ZoneInfo(timezone)

    schema_sql = (
        f"""
    CREATE TABLE customers (
        customer_id   text PRIMARY KEY,
        registered    boolean NOT NULL DEFAULT false,
        name          text,
        address       text,
        {CARD_PLACEMENT},
        grade         text,
        status        text,
        merged_into   text,
        approved_on   date,
        latitude      double precision,  -- the outlet's position, when known and public
        longitude     double precision,
        versions      jsonb NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX customers_rep ON customers (rep_id);
    CREATE INDEX customers_district ON customers (district_id);
    CREATE INDEX customers_area_grade ON customers (area_id, grade);
    """
        + staff_table("active        boolean NOT NULL DEFAULT true", "versions      jsonb NOT NULL DEFAULT '{}'")
        + """
    CREATE INDEX staff_district ON staff (district_id, role);
    CREATE TABLE districts (
        district_id text PRIMARY KEY,
        name        text,
        area_id     text,
        division_id text,
        versions    jsonb NOT NULL DEFAULT '{}'
    );
    CREATE TABLE areas (
        area_id     text PRIMARY KEY,
        name        text,
        division_id text,
        versions    jsonb NOT NULL DEFAULT '{}'
    );
    """
    )

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        v = event.envelope.stream_version
        match event.event_type:
            case "customer.registered":
                await self._customer(
                    conn,
                    d["customer_id"],
                    v,
                    {
                        "registered": True,
                        "name": d.get("name"),
                        "address": d.get("address"),
                        "district_id": d.get("district_id"),
                        "area_id": d.get("area_id"),
                        "division_id": d.get("division_id"),
                        "rep_id": d.get("rep_id"),
                        "channel": d.get("channel"),
                        "status": d.get("status", "pending"),
                        **_position(d.get("position")),
                    },
                )
            case "customer.approved":
                await self._customer(
                    conn,
                    d["customer_id"],
                    v,
                    {
                        "customer_code": d.get("customer_code"),
                        "status": d.get("status", "active"),
                        # The business date of the approval (company time zone).
                        "approved_on": event.envelope.occurred_at.astimezone(self.zone).date(),
                    },
                )
            case "customer.rejected":
                await self._customer(conn, d["customer_id"], v, {"status": "rejected"})
            case "customer.classified":
                await self._customer(conn, d["customer_id"], v, {"channel": d.get("channel"), "grade": d.get("grade")})
            case "customer.assigned":
                await self._customer(
                    conn,
                    d["customer_id"],
                    v,
                    {
                        "rep_id": d.get("rep_id"),
                        "district_id": d.get("district_id"),
                        "area_id": d.get("area_id"),
                    },
                )
            case "customer.status_changed":
                await self._customer(conn, d["customer_id"], v, {"status": d["status"]})
            case "customer.released":
                await self._customer(conn, d["customer_id"], v, {"rep_id": None})
            case "customer.claimed":
                await self._customer(conn, d["customer_id"], v, {"rep_id": d["rep_id"]})
            case "customer.merged":
                await self._customer(conn, d["customer_id"], v, {"status": "merged", "merged_into": d["survivor_id"]})
            case "customer.profile_updated":
                changes = d.get("changes") or {}
                values = {k: changes[k] for k in ("name", "address") if k in changes}
                if values:
                    await self._customer(conn, d["customer_id"], v, values)
            case "customer.position_set":
                # A sealed position (an individual's home) is unknown here.
                await self._customer(conn, d["customer_id"], v, _position(d.get("position")))
            case "customer.personal_data_erased":
                await self._customer(conn, d["customer_id"], v, {"name": None, "address": None})
            case "staff.assigned":
                await merge_row(
                    conn,
                    "staff",
                    "staff_id",
                    d["staff_id"],
                    v,
                    assigned_staff(d) | {"active": True},
                )
            case "staff.departed":
                await merge_row(conn, "staff", "staff_id", d["staff_id"], v, {"active": False})
            case "territory.district_defined":
                await merge_row(
                    conn,
                    "districts",
                    "district_id",
                    d["district_id"],
                    v,
                    {
                        "name": d.get("name"),
                        "area_id": d.get("area_id"),
                        "division_id": d.get("division_id"),
                    },
                )
            case "territory.area_defined":
                await merge_row(
                    conn,
                    "areas",
                    "area_id",
                    d["area_id"],
                    v,
                    {
                        "name": d.get("name"),
                        "division_id": d.get("division_id"),
                    },
                )
            case _:
                return None
        return [{"event_type": event.event_type}]

    @staticmethod
    async def _customer(conn: asyncpg.Connection, customer_id: str, version: int, values: dict[str, Any]) -> None:
        await merge_row(conn, "customers", "customer_id", customer_id, version, values)


class Catalogue(Projection):
    """SKUs and prices, the required SKUs per channel, and each customer's orders (for the
    usual quantities of the suggested order and the previous-delivery confirmation)."""

    name = "catalogue"
    event_types = frozenset(ORDERS_EVENTS)
    code_version = 1
    schema_sql = """
    CREATE TABLE skus (
        sku             text PRIMARY KEY,
        defined         boolean NOT NULL DEFAULT false,
        name            text,
        brand           text,
        product_group   text,
        package         text,
        list_price_fen  bigint,
        floor_price_fen bigint,
        versions        jsonb NOT NULL DEFAULT '{}'
    );
    CREATE TABLE required_skus (
        channel  text PRIMARY KEY,
        skus     text[] NOT NULL DEFAULT '{}',
        versions jsonb NOT NULL DEFAULT '{}'
    );
    CREATE TABLE orders (
        order_id      text PRIMARY KEY,
        customer_id   text,
        rep_id        text,
        visit_id      text,
        source        text,
        placed_at     timestamptz,
        business_date date,
        lines         jsonb,
        amount_fen    bigint,
        status        text,
        delivered_at  timestamptz,
        on_time       boolean,
        versions      jsonb NOT NULL DEFAULT '{}'
    );
    CREATE INDEX orders_customer ON orders (customer_id, placed_at DESC);
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        d = event.data
        v = event.envelope.stream_version
        match event.event_type:
            case "sku.defined":
                await merge_row(
                    conn,
                    "skus",
                    "sku",
                    d["sku"],
                    v,
                    {
                        "defined": True,
                        "name": d.get("name"),
                        "brand": d.get("brand"),
                        "product_group": d.get("product_group"),
                        "package": d.get("package"),
                        "list_price_fen": d.get("list_price_fen"),
                        "floor_price_fen": d.get("floor_price_fen"),
                    },
                )
            case "sku.price_set":
                # Area prices matter to the orders service; the visit card shows the list price.
                if d.get("area_id") is None:
                    await merge_row(
                        conn,
                        "skus",
                        "sku",
                        d["sku"],
                        v,
                        {
                            "list_price_fen": d.get("list_price_fen"),
                            "floor_price_fen": d.get("floor_price_fen"),
                        },
                    )
            case "required_skus.set":
                await merge_row(conn, "required_skus", "channel", d["channel"], v, {"skus": list(d["skus"])})
            case "order.placed":
                business = d.get("business_date")
                await merge_row(
                    conn,
                    "orders",
                    "order_id",
                    d["order_id"],
                    v,
                    {
                        "customer_id": d.get("customer_id"),
                        "rep_id": d.get("rep_id"),
                        "visit_id": d.get("visit_id"),
                        "source": d.get("source"),
                        "placed_at": _timestamp(d.get("placed_at")) or event.envelope.occurred_at,
                        "business_date": date.fromisoformat(business) if business else None,
                        "lines": [{"sku": ln["sku"], "quantity": ln["quantity"]} for ln in d.get("lines", [])],
                        "amount_fen": d.get("amount_fen"),
                        "status": "placed",
                    },
                )
            case "order.approved" | "order.confirmed" | "order.rejected" | "order.cancelled":
                status = event.event_type.split(".")[1]
                await merge_row(conn, "orders", "order_id", d["order_id"], v, {"status": status})
            case "order.delivered":
                await merge_row(
                    conn,
                    "orders",
                    "order_id",
                    d["order_id"],
                    v,
                    {
                        "customer_id": d.get("customer_id"),
                        "status": "delivered",
                        "delivered_at": _timestamp(d.get("delivered_at")),
                        "on_time": d.get("on_time"),
                    },
                )
            case _:
                return None
        return [{"event_type": event.event_type}]


def _position(position: dict[str, Any] | None) -> dict[str, Any]:
    if not position:
        return {"latitude": None, "longitude": None}
    return {"latitude": position.get("latitude"), "longitude": position.get("longitude")}


def _timestamp(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
