"""What handlers read besides aggregates, inside the command's transaction: the directory's
view of a rep's customers and, from the log itself, follow-ups and first orders."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import asyncpg

from customer_service.domain.merging import BuyingRecord
from customer_service.projections.follow_ups import RESTARTS
from salesplatform.projections import active_schema

# Cards that still need a rep: everything but merged duplicates and rejected registrations.
_HELD = "status NOT IN ('merged', 'rejected')"


async def customers_held_by(conn: asyncpg.Connection, rep_id: str) -> list[str]:
    schema = await active_schema(conn, "customer_directory")
    rows = await conn.fetch(
        f"SELECT customer_id FROM {schema}.customers WHERE rep_id = $1 AND {_HELD} ORDER BY customer_id", rep_id
    )
    return [r["customer_id"] for r in rows]


async def count_held_by(conn: asyncpg.Connection, rep_id: str) -> int:
    schema = await active_schema(conn, "customer_directory")
    return cast(
        "int", await conn.fetchval(f"SELECT count(*) FROM {schema}.customers WHERE rep_id = $1 AND {_HELD}", rep_id)
    )


async def last_follow_up(conn: asyncpg.Connection, customer_id: str, rep_id: str) -> datetime | None:
    """Latest of: the rep getting the prospect, a contact the rep logged, a visit check-in by
    the rep (a copy of the visit service's event)."""
    return cast(
        "datetime | None",
        await conn.fetchval(
            """
        SELECT greatest(
            (SELECT max(occurred_at) FROM events
              WHERE stream_id = $1 AND origin IS NULL
                AND (event_type = ANY($3::text[])
                     OR (event_type = 'customer.contact_logged' AND data->>'rep_id' = $2))),
            (SELECT max(CASE WHEN data->>'at' ~ '^\\d{4}-\\d{2}-\\d{2}T' THEN (data->>'at')::timestamptz
                             ELSE occurred_at END)
               FROM events
              WHERE origin IS NOT NULL AND data->>'customer_id' = $4 AND event_type = 'visit.checked_in'
                AND data->>'rep_id' = $2))
        """,
            f"customer-{customer_id}",
            rep_id,
            list(RESTARTS),
            customer_id,
        ),
    )


async def buying_record(conn: asyncpg.Connection, customer_id: str) -> BuyingRecord:
    """When the card was registered and when its first order was placed (orders' events)."""
    registered = await conn.fetchrow(
        "SELECT occurred_at, position FROM events WHERE stream_id = $1 AND stream_version = 1",
        f"customer-{customer_id}",
    )
    first = await conn.fetchrow(
        """SELECT data->>'order_id' AS order_id,
                  CASE WHEN data->>'placed_at' ~ '^\\d{4}-\\d{2}-\\d{2}T' THEN (data->>'placed_at')::timestamptz
                       ELSE occurred_at END AS at
             FROM events
            WHERE origin IS NOT NULL AND data->>'customer_id' = $1 AND event_type = 'order.placed'
            ORDER BY at, position LIMIT 1""",
        customer_id,
    )
    return BuyingRecord(
        customer_id,
        registered["occurred_at"],
        first["at"] if first else None,
        first["order_id"] if first else None,
        registered["position"],
    )


async def lead_has_deal(conn: asyncpg.Connection, lead_id: str) -> bool:
    """Whether a unit is reserved for the lead now: the orders service's `unit.reserved`
    events for it outnumber its `unit.reservation_released` ones (copies in this log)."""
    count = await conn.fetchval(
        """
        SELECT coalesce(sum(CASE event_type WHEN 'unit.reserved' THEN 1 ELSE -1 END), 0)
          FROM events
         WHERE origin IS NOT NULL AND data->>'lead_id' = $1
           AND event_type IN ('unit.reserved', 'unit.reservation_released')
        """,
        lead_id,
    )
    return bool(count and count > 0)
