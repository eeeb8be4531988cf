"""The follow-up timer: releases prospects their rep left for more than 7 days, and does the
same for the sales offices' leads: a phone lead not seen within 7 days lapses, a walk-in not
followed up for more than 7 days is released (unless a unit is reserved for them).

It runs `release_customer` as the service itself (`service:customer:follow-up`) for each
candidate the follow-up projection shows. The idempotency key names the customer, the rep and the follow-up it was measured
from, so a rerun (or a second replica) releases nobody twice, while a prospect that is
claimed, neglected again and due again gets a new key. The command checks the rule against
the log once more; a candidate followed up in the meantime is refused and stays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from customer_service.domain.follow_up import release_due_before
from customer_service.domain.reception import lapse_due_before
from customer_service.queries import follow_ups
from salesplatform.events import service_actor
from salesplatform.projections import reading
from salesplatform.timers import SystemCommand, TimerRun, send_system_commands

if TYPE_CHECKING:
    from salesplatform.service import Runtime

FOLLOW_UP_CHECK_SECONDS = 900.0
FOLLOW_UP_ACTOR = service_actor("customer", "follow-up")
# Refusals that mean "not due after all" (followed up, reassigned, no longer a prospect).
_NOT_DUE = {"followed_up_recently", "rep_changed", "not_prospect", "customer_merged", "customer_rejected"}
# Refusals that mean "not due after all" (followed up, received again, reserved a unit).
_LEAD_NOT_DUE = {"not_due", "rep_changed", "lead_has_a_deal"}


async def release_neglected_prospects(rt: Runtime) -> TimerRun:
    """Release every prospect due now (`release_customer`, by customer id)."""
    due_before = release_due_before(rt.clock.now())
    async with reading(rt.pool, "follow_ups") as conn:
        rows = await follow_ups.prospects_due(conn, due_before)
    commands = [
        SystemCommand(
            "release_customer",
            {"customer_id": row["customer_id"], "rep_id": row["rep_id"]},
            f"release:{row['customer_id']}:{row['rep_id']}:{row['since'].isoformat()}",
            row["customer_id"],
        )
        for row in rows
    ]
    return await send_system_commands(rt, FOLLOW_UP_ACTOR, commands, not_due=_NOT_DUE)


async def release_neglected_leads(rt: Runtime) -> TimerRun:
    """Lapse every phone lead (`lapse_lead`) and release every walk-in (`release_lead`) due now,
    by lead id (the same 7 days and the same shape as the prospects': a command per lead,
    keyed by the instant its 7 days ran from)."""
    now = rt.clock.now()
    async with reading(rt.pool, "follow_ups") as conn:
        rows = await follow_ups.leads_due(conn, lapse_due_before(now), release_due_before(now))
    commands = [
        SystemCommand(
            "lapse_lead",
            {"lead_id": r["lead_id"]},
            f"lapse:{r['lead_id']}:{r['phone_since'].isoformat()}",
            r["lead_id"],
        )
        if r["stage"] == "phone"
        else SystemCommand(
            "release_lead",
            {"lead_id": r["lead_id"], "rep_id": r["rep_id"]},
            f"release-lead:{r['lead_id']}:{r['rep_id']}:{r['since'].isoformat()}",
            r["lead_id"],
        )
        for r in rows
    ]
    return await send_system_commands(rt, FOLLOW_UP_ACTOR, commands, not_due=_LEAD_NOT_DUE)


async def follow_up_rules(rt: Runtime) -> TimerRun:
    """The timer's job: the prospects' 7 days, then the leads'."""
    run = await release_neglected_prospects(rt)
    return run.add(await release_neglected_leads(rt))
