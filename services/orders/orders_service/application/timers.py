"""Deadlines: a delivery not done within 24 hours of confirmation (24小时内送货) and a partial
deposit not completed within 24 hours — on an order, or on a unit of a sales office — are
flagged. Runs as a timer; tests call it directly with a FixedClock."""

from __future__ import annotations

from typing import TYPE_CHECKING

from orders_service.queries import orders, sales_control
from salesplatform.events import service_actor
from salesplatform.projections import reading
from salesplatform.timers import SystemCommand, TimerRun, send_system_commands

if TYPE_CHECKING:
    from salesplatform.service import Runtime

TIMER_ACTOR = service_actor("orders", "deadlines")
# Refusals that mean "not late after all" (delivered or deposited meanwhile).
_NOT_DUE = {"not_yet_overdue", "nothing_overdue"}


async def check_deadlines(runtime: Runtime) -> TimerRun:
    """Flag what is late now (`flag_delivery_overdue`, `flag_deposit_overdue` by order id,
    `flag_unit_deposit_overdue` by unit id). Each flag is its own command (idempotency key per
    order), so a second run, or two replicas running at once, flags nothing twice."""
    now = runtime.clock.now()
    async with reading(runtime.pool, "order_board") as conn:
        late = await orders.deliveries_to_flag(conn, now)
        deposits = await orders.deposits_to_flag(conn, now)
    async with reading(runtime.pool, "sales_control") as conn:
        units = await sales_control.unit_deposits_to_flag(conn, now)
    commands = [
        *(
            SystemCommand(name, {"order_id": r["order_id"]}, f"{name}:{r['order_id']}", r["order_id"])
            for name, rows in (("flag_delivery_overdue", late), ("flag_deposit_overdue", deposits))
            for r in rows
        ),
        # The same 24 hours on the sales offices' units; the key names the deadline too, so a
        # reservation released and made again is flagged again.
        *(
            SystemCommand(
                "flag_unit_deposit_overdue",
                {"unit_id": r["unit_id"]},
                f"flag_unit_deposit_overdue:{r['unit_id']}:{r['deposit_due_by'].isoformat()}",
                r["unit_id"],
            )
            for r in units
        ),
    ]
    return await send_system_commands(runtime, TIMER_ACTOR, commands, not_due=_NOT_DUE)
