"""The follow-up timer: releases prospects their rep left for more than 7 days.

It runs `release_customer` as the system actor for each candidate the follow-up projection
shows. The idempotency key names the customer, the rep and the follow-up it was measured
from, so a rerun (or a second replica) releases nobody twice, while a prospect that is
claimed, neglected again and due again gets a new key. The command checks the rule against
the log once more; a candidate followed up in the meantime is refused and stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from customer_service.domain.follow_up import release_due_before
from salesplatform.events import SYSTEM_ACTOR
from salesplatform.projections import reading

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

FOLLOW_UP_CHECK_SECONDS = 900.0
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
            SYSTEM_ACTOR,
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
