"""The customer archive: the directory's cards and lists, and what the log tells of a card
(its history, its follow-ups, its first order)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg

from customer_service.domain.merging import BuyingRecord
from customer_service.projections.follow_ups import RESTARTS
from customer_service.queries.conditions import Where
from salesplatform.projections import active_schema

# What a list shows of a card.
SUMMARY_COLUMNS = (
    "customer_id, customer_code, name, address, phone, status, nature, channel, location_type, grade, "
    "district_id, area_id, rep_id, credit_rating, verified, merged_into, registered_at"
)
# Cards that still need a rep: everything but merged duplicates and rejected registrations.
_HELD = "status NOT IN ('merged', 'rejected')"


@dataclass(frozen=True)
class Filters:
    rep_id: str | None = None
    district_id: str | None = None
    area_id: str | None = None
    grade: str | None = None
    channel: str | None = None
    status: str | None = None
    credit_rating: str | None = None
    q: str | None = None


def _where(
    scope: list[tuple[str, str]], f: Filters, default_statuses: list[str] | None, found: list[str] | None = None
) -> Where:
    """`scope`: (column, value) conditions of the reader's part of the archive; `found`:
    customers the text `f.q` matched in their sealed personal data."""
    w = Where()
    for column, value in scope:
        w.add(f"{column} = {{}}", value)
    w.equal(
        rep_id=f.rep_id,
        district_id=f.district_id,
        area_id=f.area_id,
        grade=f.grade,
        channel=f.channel,
        credit_rating=f.credit_rating,
    )
    if f.status is not None:
        w.add("status = {}", f.status)
    elif default_statuses is not None:
        w.add("status = ANY({}::text[])", default_statuses)
    else:
        w.add("status <> {}", "merged")
    if f.q:
        pattern = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        w.add(
            "(name ILIKE {0} OR phone ILIKE {0} OR address ILIKE {0} OR customer_code ILIKE {0}"
            " OR customer_id = ANY({1}::text[]))",
            pattern,
            found or [],
        )
    return w


async def _page(conn: asyncpg.Connection, columns: str, w: Where, limit: int, offset: int) -> tuple[int, list[Any]]:
    total = await conn.fetchval(f"SELECT count(*) FROM customers WHERE {w.sql()}", *w.args)
    rows = await conn.fetch(
        f"SELECT {columns} FROM customers WHERE {w.sql()}"
        f" ORDER BY registered_at, customer_id LIMIT {limit} OFFSET {offset}",
        *w.args,
    )
    return total, list(rows)


async def customers(
    conn: asyncpg.Connection,
    scope: list[tuple[str, str]],
    f: Filters,
    found: list[str],
    *,
    limit: int,
    offset: int,
) -> tuple[int, list[asyncpg.Record]]:
    """(how many cards match, the page of them in order of registration); merged cards only
    when asked for."""
    return await _page(conn, SUMMARY_COLUMNS, _where(scope, f, None, found), limit, offset)


async def composition(
    conn: asyncpg.Connection, scope: list[tuple[str, str]], f: Filters, found: list[str], statuses: list[str]
) -> dict[str, Any]:
    """The total and the counts per grade, channel and district (`statuses` unless asked)."""
    w = _where(scope, f, statuses, found)
    out: dict[str, Any] = {"total": await conn.fetchval(f"SELECT count(*) FROM customers WHERE {w.sql()}", *w.args)}
    for dimension in ("grade", "channel", "district_id"):
        rows = await conn.fetch(
            f"SELECT coalesce({dimension}, 'ungraded') AS k, count(*) AS n FROM customers"
            f" WHERE {w.sql()} GROUP BY 1 ORDER BY 1",
            *w.args,
        )
        key = "by_district" if dimension == "district_id" else f"by_{dimension}"
        out[key] = {r["k"]: r["n"] for r in rows}
    return out


async def pool(
    conn: asyncpg.Connection, scope: list[tuple[str, str]], *, limit: int, offset: int
) -> tuple[int, list[asyncpg.Record]]:
    """Released prospects nobody holds, in the reader's part of the archive."""
    w = Where()
    w.add("status = {}", "prospect")
    w.add("rep_id IS NULL")
    for column, value in scope:
        w.add(f"{column} = {{}}", value)
    return await _page(conn, f"{SUMMARY_COLUMNS}, released_from", w, limit, offset)


async def card(conn: asyncpg.Connection, customer_id: str) -> asyncpg.Record | None:
    return await conn.fetchrow("SELECT * FROM customers WHERE customer_id = $1", customer_id)


async def card_events(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    """Every event of the card's stream, in order."""
    return list(
        await conn.fetch(
            "SELECT stream_version, event_type, occurred_at, actor, data FROM public.events"
            " WHERE stream_id = $1 ORDER BY stream_version",
            f"customer-{customer_id}",
        )
    )


async def found_by_terms(conn: asyncpg.Connection, blinded: list[bytes]) -> list[str]:
    """Customers some of whose sealed names or phones have these blind-index terms."""
    rows = await conn.fetch("SELECT DISTINCT customer_id FROM personal_terms WHERE term = ANY($1::bytea[])", blinded)
    return [r["customer_id"] for r in rows]


# -- inside a command's transaction --------------------------------------------------------------


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


async def confirmation_superseded(
    conn: asyncpg.Connection, event_type: str, customer_id: str, tx_id: int, position: int
) -> bool:
    """Whether a later event of `event_type` (a later confirmed check-in) names the customer."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM public.events WHERE event_type = $1 AND data->>'customer_id' = $2"
            " AND (tx_id, position) > ($3::text::xid8, $4))",
            event_type,
            customer_id,
            str(tx_id),
            position,
        )
    )


async def position_set_by(conn: asyncpg.Connection, customer_id: str, cause_id: str) -> bool:
    """Whether the card's position was already set because of the event `cause_id`."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM public.events WHERE stream_id = $1 AND event_type = 'customer.position_set'"
            " AND causation_id = $2)",
            f"customer-{customer_id}",
            cause_id,
        )
    )
