"""Deadlines: a delivery not done within 24 hours of confirmation (24小时内送货) and a partial
deposit not completed within 24 hours are flagged. Runs as a timer; tests call it directly with
a FixedClock."""

from __future__ import annotations

from typing import Any

import structlog

from salesplatform.events import Actor, Role
from salesplatform.projections import reading
from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

TIMER_ACTOR = Actor(id="orders-deadlines", role=Role.system)


async def check_deadlines(runtime: Runtime) -> dict[str, Any]:
    """Flag what is late now. Each flag is its own command (idempotency key per order), so a
    second run, or two replicas running at once, flags nothing twice."""
    now = runtime.clock.now()
    async with reading(runtime.pool, "order_board") as conn:
        late = await conn.fetch(
            "SELECT order_id FROM orders WHERE status IN ('confirmed', 'dispatched')"
            " AND NOT delivery_overdue AND deliver_by < $1 ORDER BY deliver_by",
            now,
        )
        deposits = await conn.fetch(
            "SELECT order_id FROM orders WHERE deposit_due_by < $1 AND NOT deposit_overdue"
            " AND status NOT IN ('cancelled', 'rejected') ORDER BY deposit_due_by",
            now,
        )
    flagged = {"delivery_overdue": [], "deposit_overdue": []}
    for command, rows, key in (
        ("flag_delivery_overdue", late, "delivery_overdue"),
        ("flag_deposit_overdue", deposits, "deposit_overdue"),
    ):
        for row in rows:
            outcome = await runtime.run_command(
                command,
                {"order_id": row["order_id"]},
                TIMER_ACTOR,
                idempotency_key=f"{command}:{row['order_id']}",
            )
            if outcome.ok and not outcome.replayed:
                flagged[key].append(row["order_id"])
            elif not outcome.ok:
                log.info(
                    "deadline_not_flagged",
                    command=command,
                    order_id=row["order_id"],
                    error=outcome.error.to_dict() if outcome.error else None,
                )
    return flagged
