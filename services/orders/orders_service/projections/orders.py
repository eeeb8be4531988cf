"""The order board: every order with its state, lines, approval, delivery and deposit (inline, so
a command sees the orders before it, e.g. a customer's open orders for the credit check)."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from orders_service.projections.base import Run, RunProjection, column, last_per, occurred, runs
from salesplatform.projections import Change
from salesplatform.store import RecordedEvent


def _fold_confirmations(events: list[RecordedEvent]) -> tuple[list[RecordedEvent], dict[int, RecordedEvent]]:
    """An order confirmed at once arrives as `order.placed` then `order.confirmed` (one command,
    an import, a rebuild): its row is written once, confirmed, instead of inserted then updated.
    Only when nothing that changes the order's state lies between the two (an approval does).

    Returns the events left to apply, and the confirmation folded into each placing (by id()).
    """
    placed: dict[str, RecordedEvent] = {}
    folded: dict[int, RecordedEvent] = {}
    dropped: set[int] = set()
    for event in events:
        t = event.event_type
        if t == "order.placed":
            placed[event.data["order_id"]] = event
        elif t == "order.confirmed":
            first = placed.pop(event.data["order_id"], None)
            if first is not None:
                folded[id(first)] = event
                dropped.add(id(event))
        elif t != "order.promotion_declined":
            placed.pop(str(event.data.get("order_id")), None)
    return [e for e in events if id(e) not in dropped], folded


_INSERT_PLACED = """
WITH p AS MATERIALIZED (
    SELECT v, v->'d' AS d FROM jsonb_array_elements($1::jsonb) AS v
), placed AS (
    INSERT INTO orders (order_id, customer_id, rep_id, district_id, area_id, source, visit_id, status,
                        amount_fen, business_date, placed_at, placed_by, confirmed_at, deliver_by, updated_at)
    SELECT d->>'order_id', d->>'customer_id', d->>'rep_id', d->>'district_id', d->>'area_id', d->>'source',
           d->>'visit_id', CASE WHEN v->>'ca' IS NULL THEN 'placed' ELSE 'confirmed' END,
           (d->>'amount_fen')::bigint, (d->>'business_date')::date, (d->>'placed_at')::timestamptz, v->>'by',
           (v->>'ca')::timestamptz, (v->>'db')::timestamptz, (v->>'at')::timestamptz
    FROM p
)
INSERT INTO order_lines (order_id, line_no, sku, product_group, quantity, unit_price_fen, amount_fen,
                         promotion_id, gift_quantity)
SELECT p.d->>'order_id', l.n, l.x->>'sku', l.x->>'product_group', (l.x->>'quantity')::int,
       (l.x->>'unit_price_fen')::bigint, (l.x->>'amount_fen')::bigint, l.x->>'promotion_id',
       coalesce((l.x->>'gift_quantity')::int, 0)
FROM p CROSS JOIN LATERAL jsonb_array_elements(p.d->'lines') WITH ORDINALITY AS l(x, n)
"""


class OrderBoard(RunProjection):
    name = "order_board"
    inline = True
    code_version = 2
    event_types = frozenset(
        {
            "order.placed",
            "order.approval_required",
            "order.approved",
            "order.rejected",
            "order.confirmed",
            "order.dispatched",
            "order.delivered",
            "order.delivery_overdue",
            "order.delivery_confirmed",
            "order.cancelled",
            "order.promotion_declined",
            "order.deposit_recorded",
            "order.deposit_completed",
            "order.deposit_overdue",
        }
    )
    schema_sql = """
    CREATE TABLE orders (
        order_id            text PRIMARY KEY,
        customer_id         text NOT NULL,
        rep_id              text,
        district_id         text,
        area_id             text,
        source              text NOT NULL,
        visit_id            text,
        status              text NOT NULL,
        amount_fen          bigint NOT NULL,
        business_date       date NOT NULL,
        placed_at           timestamptz NOT NULL,
        placed_by           text NOT NULL,
        approval_reasons    text[] NOT NULL DEFAULT '{}',
        required_role       text,
        approved_by         text,
        reject_reason       text,
        cancel_reason       text,
        confirmed_at        timestamptz,
        deliver_by          timestamptz,
        dispatched_at       timestamptz,
        delivered_at        timestamptz,
        on_time             boolean,
        delivery_overdue    boolean NOT NULL DEFAULT false,
        delivery_confirmed  boolean,
        deposit_agreed_fen  bigint NOT NULL DEFAULT 0,
        deposit_total_fen   bigint NOT NULL DEFAULT 0,
        deposit_due_by      timestamptz,
        deposit_overdue     boolean NOT NULL DEFAULT false,
        promotion_notes     jsonb NOT NULL DEFAULT '[]',
        updated_at          timestamptz NOT NULL
    );
    CREATE INDEX orders_by_customer ON orders (customer_id, business_date);
    CREATE INDEX orders_by_rep ON orders (rep_id, business_date);
    CREATE INDEX orders_awaiting_approval ON orders (required_role, placed_at) WHERE status = 'pending_approval';
    CREATE INDEX orders_awaiting_delivery ON orders (deliver_by) WHERE status IN ('confirmed', 'dispatched');
    -- A customer's open orders, for the credit check of every new order: as many rows to read
    -- as orders still open, however many the customer placed before.
    CREATE INDEX orders_open_by_customer ON orders (customer_id) INCLUDE (amount_fen)
        WHERE status IN ('confirmed', 'dispatched');
    CREATE INDEX orders_partial_deposit ON orders (deposit_due_by) WHERE deposit_due_by IS NOT NULL;
    CREATE TABLE order_lines (
        order_id        text NOT NULL,
        line_no         integer NOT NULL,
        sku             text NOT NULL,
        product_group   text NOT NULL,
        quantity        integer NOT NULL,
        unit_price_fen  bigint NOT NULL,
        amount_fen      bigint NOT NULL,
        promotion_id    text,
        gift_quantity   integer NOT NULL,
        PRIMARY KEY (order_id, line_no)
    );
    """

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        kept, confirmations = _fold_confirmations([e for e in events if self.handles(e)])
        for event_type, run in runs(kept):
            if event_type == "order.placed":
                await self.on_order_placed(conn, run, confirmations)
            else:
                await self.handler(event_type)(conn, run)
        return []

    async def on_order_placed(
        self,
        conn: asyncpg.Connection,
        run: Run,
        confirmations: dict[int, RecordedEvent] | None = None,
    ) -> None:
        # The events' data go as one jsonb document, unpacked by PostgreSQL: one statement for
        # orders and lines, and no array of values per column to build and encode here.
        confirmations = confirmations or {}
        placings = []
        for e in run:
            c = confirmations.get(id(e))
            placings.append(
                {
                    "d": e.data,
                    "by": e.envelope.actor.id,
                    "at": (c or e).envelope.occurred_at,
                    "ca": c.data["confirmed_at"] if c else None,
                    "db": c.data["deliver_by"] if c else None,
                }
            )
        await conn.execute(_INSERT_PLACED, placings)

    async def _set(self, conn: asyncpg.Connection, run: Run, assignments: str, *arrays: tuple[str, list[Any]]) -> None:
        """UPDATE orders from arrays: `arrays` are (sql type, values) aligned with order ids."""
        params = ", ".join(f"${i + 3}::{t}[]" for i, (t, _) in enumerate(arrays))
        names = ", ".join(f"v{i}" for i in range(len(arrays)))
        await conn.execute(
            f"""
            UPDATE orders o SET {assignments}, updated_at = u.at
            FROM unnest($1::text[], $2::timestamptz[]{", " + params if arrays else ""})
                 AS u(order_id, at{", " + names if arrays else ""})
            WHERE o.order_id = u.order_id
            """,
            column(run, "order_id"),
            occurred(run),
            *[values for _, values in arrays],
        )

    async def on_order_approval_required(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(
            conn,
            run,
            "status = 'pending_approval', required_role = u.v0, approval_reasons = string_to_array(u.v1, ',')",
            ("text", column(run, "required_role")),
            ("text", [",".join(e.data["reasons"]) for e in run]),
        )

    async def on_order_approved(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(conn, run, "status = 'approved', approved_by = u.v0", ("text", column(run, "approver_id")))

    async def on_order_rejected(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(conn, run, "status = 'rejected', reject_reason = u.v0", ("text", column(run, "reason")))

    async def on_order_confirmed(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(
            conn,
            run,
            "status = 'confirmed', confirmed_at = u.v0::timestamptz, deliver_by = u.v1::timestamptz",
            ("text", column(run, "confirmed_at")),
            ("text", column(run, "deliver_by")),
        )

    async def on_order_dispatched(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(conn, run, "status = 'dispatched', dispatched_at = u.at")

    async def on_order_delivered(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(
            conn,
            run,
            "status = 'delivered', delivered_at = u.v0::timestamptz, on_time = u.v1",
            ("text", column(run, "delivered_at")),
            ("boolean", column(run, "on_time")),
        )

    async def on_order_delivery_overdue(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._set(conn, last_per(run, "order_id"), "delivery_overdue = true")

    async def on_order_delivery_confirmed(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(conn, run, "delivery_confirmed = u.v0", ("boolean", column(run, "delivered")))

    async def on_order_cancelled(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(conn, run, "status = 'cancelled', cancel_reason = u.v0", ("text", column(run, "reason")))

    async def on_order_promotion_declined(self, conn: asyncpg.Connection, run: Run) -> None:
        # Several promotions may be declined for one order: append them all, in order.
        notes = [
            orjson.dumps({"promotion_id": e.data["promotion_id"], "reason": e.data["reason"]}).decode() for e in run
        ]
        await conn.execute(
            """
            UPDATE orders o SET promotion_notes = o.promotion_notes || n.notes
            FROM (SELECT order_id, jsonb_agg(note::jsonb ORDER BY ord) AS notes
                  FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(order_id, note, ord)
                  GROUP BY order_id) n
            WHERE o.order_id = n.order_id
            """,
            column(run, "order_id"),
            notes,
        )

    async def on_order_deposit_recorded(self, conn: asyncpg.Connection, run: Run) -> None:
        run = last_per(run, "order_id")
        await self._set(
            conn,
            run,
            "deposit_agreed_fen = u.v0, deposit_total_fen = u.v1, deposit_due_by = u.v2::timestamptz",
            ("bigint", column(run, "agreed_fen")),
            ("bigint", column(run, "total_fen")),
            ("text", column(run, "due_by")),
        )

    async def on_order_deposit_completed(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._set(conn, last_per(run, "order_id"), "deposit_due_by = NULL")

    async def on_order_deposit_overdue(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._set(conn, last_per(run, "order_id"), "deposit_overdue = true")
