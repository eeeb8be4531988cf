"""The local directory of customers and staff, kept from the customer service's events.

The reactor that turns visit orders into orders (`application.reactor`) reads it and never runs
ahead of it, so it judges each visit order against the directory as it stood at least at that
point of the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.published import CUSTOMER_CARD_EVENTS, CUSTOMER_CREDIT_EVENTS, STAFF_EVENTS
from salesplatform.replicas import CARD_PLACEMENT, assigned_staff, staff_table
from salesplatform.store import RecordedEvent

CUSTOMER_EVENTS = CUSTOMER_CARD_EVENTS | CUSTOMER_CREDIT_EVENTS

# customer.<type> → (SQL assignments, data keys feeding $2, $3, …)
_UPDATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "customer.approved": ("status = $2, customer_code = $3", ("status", "customer_code")),
    "customer.rejected": ("status = 'rejected'", ()),
    "customer.classified": (
        "nature = $2, channel = $3, location_type = $4, grade = $5",
        ("nature", "channel", "location_type", "grade"),
    ),
    "customer.credit_limit_set": (
        "credit_rating = $2, credit_limit_fen = $3, payment_terms_days = $4",
        ("credit_rating", "credit_limit_fen", "payment_terms_days"),
    ),
    "customer.assigned": ("rep_id = $2, district_id = $3, area_id = $4", ("rep_id", "district_id", "area_id")),
    "customer.status_changed": ("status = $2", ("status",)),
    "customer.released": ("rep_id = NULL", ()),
    "customer.claimed": ("rep_id = $2", ("rep_id",)),
    "customer.merged": ("status = 'merged', merged_into = $2", ("survivor_id",)),
    "customer.personal_data_erased": ("name = NULL", ()),
}
# Profile fields this directory keeps, when a profile update changes them.
_PROFILE_FIELDS = ("name", "channel", "district_id", "area_id", "division_id")


class CustomerDirectory(Projection):
    name = "customer_directory"
    # 2: the visit orders' tables moved to the reactor (migrations/001_visit_orders.sql).
    code_version = 2
    event_types = CUSTOMER_EVENTS | STAFF_EVENTS
    schema_sql = f"""
    CREATE TABLE customers (
        customer_id         text PRIMARY KEY,
        name                text,
        status              text NOT NULL,
        {CARD_PLACEMENT},
        nature              text,
        location_type       text,
        grade               text,
        credit_rating       text,
        credit_limit_fen    bigint,
        payment_terms_days  integer,
        merged_into         text,
        updated_at          timestamptz NOT NULL
    );
    CREATE INDEX customers_by_rep ON customers (rep_id);
    """ + staff_table("departed boolean NOT NULL DEFAULT false")

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change] | None:
        if event.event_type in STAFF_EVENTS:
            await self._staff(conn, event)
        else:
            await self._customer(conn, event)
        return None

    async def _customer(self, conn: asyncpg.Connection, event: RecordedEvent) -> None:
        d: dict[str, Any] = event.data
        at = event.envelope.occurred_at
        if event.event_type == "customer.registered":
            await conn.execute(
                """
                INSERT INTO customers (customer_id, name, status, district_id, area_id, division_id, rep_id,
                                       channel, nature, location_type, updated_at)
                VALUES ($1, $2, coalesce($3, 'pending'), $4, $5, $6, $7, $8, $9, $10, $11)
                ON CONFLICT (customer_id) DO NOTHING
                """,
                d["customer_id"],
                d.get("name"),
                d.get("status"),
                d.get("district_id"),
                d.get("area_id"),
                d.get("division_id"),
                d.get("rep_id"),
                d.get("channel"),
                d.get("nature"),
                d.get("location_type"),
                at,
            )
            return
        if event.event_type == "customer.profile_updated":
            changes = {k: v for k, v in (d.get("changes") or {}).items() if k in _PROFILE_FIELDS}
            if changes:
                assignments = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, 3))
                await conn.execute(
                    f"UPDATE customers SET {assignments}, updated_at = $2 WHERE customer_id = $1",
                    d["customer_id"],
                    at,
                    *changes.values(),
                )
            return
        assignments, keys = _UPDATES[event.event_type]
        # An event for a card not seen yet (its registration is older than this log) still
        # leaves a row, so nothing the customer service said is lost.
        await conn.execute(
            "INSERT INTO customers (customer_id, status, updated_at) VALUES ($1, 'pending', $2)"
            " ON CONFLICT (customer_id) DO NOTHING",
            d["customer_id"],
            at,
        )
        values = [d.get(k) for k in keys]
        await conn.execute(
            f"UPDATE customers SET {assignments}, updated_at = ${len(keys) + 2} WHERE customer_id = $1",
            d["customer_id"],
            *values,
            at,
        )

    async def _staff(self, conn: asyncpg.Connection, event: RecordedEvent) -> None:
        d = event.data
        if event.event_type == "staff.departed":
            await conn.execute("UPDATE staff SET departed = true WHERE staff_id = $1", d["staff_id"])
            return
        await conn.execute(
            """
            INSERT INTO staff (staff_id, name, role, district_id, area_id, supervisor_id)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (staff_id) DO UPDATE SET name = $2, role = $3, district_id = $4, area_id = $5,
                supervisor_id = $6, departed = false
            """,
            d["staff_id"],
            *assigned_staff(d).values(),
        )
