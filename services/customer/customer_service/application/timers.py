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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from customer_service.domain.follow_up import release_due_before
from customer_service.domain.reception import lapse_due_before
from salesplatform.events import service_actor
from salesplatform.projections import reading

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

FOLLOW_UP_CHECK_SECONDS = 900.0
FOLLOW_UP_ACTOR = service_actor("customer", "follow-up")
# Refusals that mean "not due after all" (followed up, reassigned, no longer a prospect).
_NOT_DUE = {"followed_up_recently", "rep_changed", "not_prospect", "customer_merged", "customer_rejected"}


@dataclass
class ReleaseRun:
    """What one run of the timer did, by customer id."""

    released: list[str] = field(default_factory=list)
    already_released: list[str] = field(default_factory=list)  # same key seen before: nothing appended
    not_due: list[str] = field(default_factory=list)


async def release_neglected_prospects(rt: Runtime) -> ReleaseRun:
    """Release every prospect due now."""
    due_before = release_due_before(rt.clock.now())
    async with reading(rt.pool, "follow_ups") as conn:
        rows = await conn.fetch(
            "SELECT customer_id, rep_id, since FROM follow_ups"
            " WHERE status = 'prospect' AND rep_id IS NOT NULL AND since < $1 ORDER BY since, customer_id",
            due_before,
        )
    run = ReleaseRun()
    for row in rows:
        outcome = await rt.run_command(
            "release_customer",
            {"customer_id": row["customer_id"], "rep_id": row["rep_id"]},
            FOLLOW_UP_ACTOR,
            idempotency_key=f"release:{row['customer_id']}:{row['rep_id']}:{row['since'].isoformat()}",
        )
        if outcome.ok:
            (run.already_released if outcome.replayed else run.released).append(row["customer_id"])
        elif outcome.error.code in _NOT_DUE:
            run.not_due.append(row["customer_id"])
        else:
            log.warning("release_failed", customer_id=row["customer_id"], error=outcome.error.to_dict())
    if run.released:
        log.info("prospects_released", count=len(run.released))
    return run


@dataclass
class LeadRun:
    """What one run of the timer did to the leads, by lead id."""

    lapsed: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)


# Refusals that mean "not due after all" (followed up, received again, reserved a unit).
_LEAD_NOT_DUE = {"not_due", "rep_changed", "lead_has_a_deal"}


async def release_neglected_leads(rt: Runtime) -> LeadRun:
    """Lapse every phone lead and release every walk-in due now (the same 7 days and the same
    shape as the prospects': a command per lead, keyed by the instant its 7 days ran from)."""
    now = rt.clock.now()
    async with reading(rt.pool, "follow_ups") as conn:
        rows = await conn.fetch(
            "SELECT lead_id, rep_id, stage, phone_since, since FROM lead_follow_ups"
            " WHERE open_deals <= 0 AND ((stage = 'phone' AND phone_since < $1) OR (stage = 'walk_in' AND since < $2))"
            " ORDER BY lead_id",
            lapse_due_before(now),
            release_due_before(now),
        )
    run = LeadRun()
    for row in rows:
        lead_id = row["lead_id"]
        if row["stage"] == "phone":
            outcome = await rt.run_command(
                "lapse_lead",
                {"lead_id": lead_id},
                FOLLOW_UP_ACTOR,
                idempotency_key=f"lapse:{lead_id}:{row['phone_since'].isoformat()}",
            )
            done = run.lapsed
        else:
            outcome = await rt.run_command(
                "release_lead",
                {"lead_id": lead_id, "rep_id": row["rep_id"]},
                FOLLOW_UP_ACTOR,
                idempotency_key=f"release-lead:{lead_id}:{row['rep_id']}:{row['since'].isoformat()}",
            )
            done = run.released
        if outcome.ok:
            if not outcome.replayed:
                done.append(lead_id)
        elif outcome.error.code in _LEAD_NOT_DUE:
            run.not_due.append(lead_id)
        else:
            log.warning("lead_not_released", lead_id=lead_id, error=outcome.error.to_dict())
    if run.lapsed or run.released:
        log.info("leads_released", lapsed=len(run.lapsed), released=len(run.released))
    return run


async def follow_up_rules(rt: Runtime) -> None:
    """The timer's job: the prospects' 7 days, then the leads'."""
    await release_neglected_prospects(rt)
    await release_neglected_leads(rt)
