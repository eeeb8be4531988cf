"""Returns as read: every return with its route through inspection, approval and resolution
(who must approve it and whether it waits for the inspector); rejected ones keep their reason.
Inline: a new return checks what was already returned here."""

from __future__ import annotations

import asyncpg

from orders_service.domain.returns import route_for
from orders_service.projections.base import Run, RunProjection
from salesplatform.published import RETURN_EVENTS


class Returns(RunProjection):
    name = "returns"
    inline = True
    # 2: the route (approver_role, inspection_required), for the approval queue of returns.
    code_version = 2
    event_types = RETURN_EVENTS
    schema_sql = """
    CREATE TABLE returns (
        return_id               text PRIMARY KEY,
        order_id                text NOT NULL,
        customer_id             text NOT NULL,
        scope                   text NOT NULL,
        reason                  text NOT NULL,
        detail                  text NOT NULL,
        status                  text NOT NULL,
        amount_fen              bigint NOT NULL,
        approver_role           text NOT NULL,
        inspection_required     boolean NOT NULL,
        requested_by            text NOT NULL,
        requested_at            timestamptz NOT NULL,
        inspector_id            text,
        inspection_confirmed    boolean,
        inspection_notes        text,
        approver_id             text,
        rejected_reason         text,
        resolution              text,
        resolution_amount_fen   bigint,
        updated_at              timestamptz NOT NULL
    );
    CREATE INDEX returns_by_order ON returns (order_id);
    CREATE INDEX returns_by_status ON returns (status, reason);
    CREATE INDEX returns_awaiting_decision ON returns (approver_role, requested_at)
        WHERE status IN ('requested', 'inspected');
    CREATE TABLE return_lines (
        return_id   text NOT NULL,
        sku         text NOT NULL,
        quantity    integer NOT NULL,
        amount_fen  bigint NOT NULL,
        PRIMARY KEY (return_id, sku)
    );
    CREATE TABLE corrective_actions (
        return_id   text NOT NULL,
        department  text NOT NULL,
        action      text NOT NULL,
        assigned_at timestamptz NOT NULL
    );
    """

    async def on_return_requested(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:
            d = e.data
            route = route_for(d["reason"], d["scope"])
            await conn.execute(
                "INSERT INTO returns (return_id, order_id, customer_id, scope, reason, detail, status,"
                " amount_fen, approver_role, inspection_required, requested_by, requested_at, updated_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, 'requested', $7, $8, $9, $10, $11, $11)",
                d["return_id"],
                d["order_id"],
                d["customer_id"],
                d["scope"],
                d["reason"],
                d["detail"],
                sum(line["amount_fen"] for line in d["lines"]),
                route.approver_role.value,
                route.inspection_required,
                e.envelope.actor.id,
                e.envelope.occurred_at,
            )
            await conn.executemany(
                "INSERT INTO return_lines VALUES ($1, $2, $3, $4)",
                [(d["return_id"], line["sku"], line["quantity"], line["amount_fen"]) for line in d["lines"]],
            )

    async def _update(self, conn: asyncpg.Connection, run: Run, assignments: str, *values: str) -> None:
        for e in run:
            await conn.execute(
                f"UPDATE returns SET {assignments}, updated_at = $2 WHERE return_id = $1",
                e.data["return_id"],
                e.envelope.occurred_at,
                *[e.data[v] for v in values],
            )

    async def on_return_inspected(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._update(
            conn,
            run,
            "status = 'inspected', inspector_id = $3, inspection_confirmed = $4, inspection_notes = $5",
            "inspector_id",
            "confirmed",
            "notes",
        )

    async def on_return_approved(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._update(conn, run, "status = 'approved', approver_id = $3", "approver_id")

    async def on_return_rejected(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._update(conn, run, "status = 'rejected', rejected_reason = $3", "reason")

    async def on_return_resolved(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._update(
            conn,
            run,
            "status = 'resolved', resolution = $3, resolution_amount_fen = $4",
            "resolution",
            "amount_fen",
        )

    async def on_return_goods_received(self, conn: asyncpg.Connection, run: Run) -> None:
        await self._update(conn, run, "status = 'closed'")

    async def on_corrective_action_assigned(self, conn: asyncpg.Connection, run: Run) -> None:
        for e in run:
            await conn.execute(
                "INSERT INTO corrective_actions VALUES ($1, $2, $3, $4)",
                e.data["return_id"],
                e.data["department"],
                e.data["action"],
                e.envelope.occurred_at,
            )
