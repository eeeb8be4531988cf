"""Deadlines: a delivery not done within 24 hours of confirmation (24小时内送货) and a partial
deposit not completed within 24 hours — on an order, or on a unit of a sales office — are
flagged. Runs as a timer; tests call it directly with a FixedClock."""

from __future__ import annotations

from typing import Any

import structlog

from salesplatform.events import service_actor
from salesplatform.projections import reading
from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

TIMER_ACTOR = service_actor("orders", "deadlines")


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
    async with reading(runtime.pool, "sales_control") as conn:
        units = await conn.fetch(
            "SELECT unit_id, deposit_due_by FROM units"
            " WHERE status = 'reserved' AND deposit_due_by < $1 AND NOT deposit_overdue"
            " ORDER BY deposit_due_by, unit_id",
            now,
        )
    flagged: dict[str, list[str]] = {"delivery_overdue": [], "deposit_overdue": [], "unit_deposit_overdue": []}
    for command, key, field, due in (
        ("flag_delivery_overdue", "delivery_overdue", "order_id", [(r["order_id"], "") for r in late]),
        ("flag_deposit_overdue", "deposit_overdue", "order_id", [(r["order_id"], "") for r in deposits]),
        # The same 24 hours on the sales offices' units; the key names the deadline too, so a
        # reservation released and made again is flagged again.
        (
            "flag_unit_deposit_overdue",
            "unit_deposit_overdue",
            "unit_id",
            [(r["unit_id"], f":{r['deposit_due_by'].isoformat()}") for r in units],
        ),
    ):
        for id_, deadline in due:
            outcome = await runtime.run_command(
                command, {field: id_}, TIMER_ACTOR, idempotency_key=f"{command}:{id_}{deadline}"
            )
            if outcome.ok and not outcome.replayed:
                flagged[key].append(id_)
            elif not outcome.ok:
                log.info(
                    "deadline_not_flagged",
                    command=command,
                    id=id_,
                    error=outcome.error.to_dict() if outcome.error else None,
                )
    return flagged
