"""When each prospect was last followed up by its rep (the 7-day rule's candidates).

Catch-up, because visits come from the visit service (`visit.checked_in`, copied into this
service's log). The follow-up timer reads it to find prospects due for release; the release
command checks the rule again against the log, so a stale row never releases anybody wrongly.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

from salesplatform.projections import Change, Projection, StatementRuns
from salesplatform.store import RecordedEvent

# Events of the card after which the rep's 7 days start again.
RESTARTS = ("customer.approved", "customer.assigned", "customer.claimed", "customer.status_changed")


def visit_time(event: RecordedEvent) -> datetime:
    """The check-in time the visit service recorded (a rep may sync an offline check-in later)."""
    at = event.data.get("at")
    if isinstance(at, str):
        try:
            return datetime.fromisoformat(at)
        except ValueError:
            pass
    return event.envelope.occurred_at


class FollowUps(Projection):
    name = "follow_ups"
    event_types = frozenset(
        {
            "customer.registered",
            "customer.rejected",
            "customer.released",
            "customer.contact_logged",
            "customer.merged",
            "visit.checked_in",
            *RESTARTS,
        }
    )
    schema_sql = """
        CREATE TABLE follow_ups (
            customer_id text PRIMARY KEY,
            rep_id      text,
            status      text NOT NULL,
            since       timestamptz NOT NULL    -- last follow-up, or when the rep got the prospect
        );
        CREATE INDEX follow_ups_due ON follow_ups (since) WHERE status = 'prospect' AND rep_id IS NOT NULL;
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        return await self.apply_batch(conn, [event])

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        """Events in order; a run of one kind (contacts logged, visits) is one round trip."""
        runs = StatementRuns(conn)
        changes: list[Change] = []
        for event in events:
            if self.handles(event):
                await self._apply(runs, event)
                changes.append({"customer_id": event.data["customer_id"]})
        await runs.flush()
        return changes

    @staticmethod
    async def _apply(runs: StatementRuns, event: RecordedEvent) -> None:
        d = event.data
        cid = d["customer_id"]
        at = event.envelope.occurred_at
        match event.event_type:
            case "customer.registered":
                await runs.execute(
                    "INSERT INTO follow_ups VALUES ($1, $2, 'pending', $3) ON CONFLICT (customer_id) DO NOTHING",
                    cid,
                    d["rep_id"],
                    at,
                )
            case "customer.approved" | "customer.status_changed":
                await runs.execute(
                    "UPDATE follow_ups SET status = $2, since = $3 WHERE customer_id = $1", cid, d["status"], at
                )
            case "customer.assigned" | "customer.claimed":
                await runs.execute(
                    "UPDATE follow_ups SET rep_id = $2, since = $3 WHERE customer_id = $1", cid, d["rep_id"], at
                )
            case "customer.released":
                await runs.execute("UPDATE follow_ups SET rep_id = NULL WHERE customer_id = $1", cid)
            case "customer.rejected" | "customer.merged":
                status = "rejected" if event.event_type == "customer.rejected" else "merged"
                await runs.execute("UPDATE follow_ups SET status = $2 WHERE customer_id = $1", cid, status)
            case "customer.contact_logged":
                await _followed_up(runs, cid, d["rep_id"], at)
            case "visit.checked_in":
                await _followed_up(runs, cid, d.get("rep_id"), visit_time(event))


async def _followed_up(runs: StatementRuns, customer_id: str, rep_id: str | None, at: datetime) -> None:
    await runs.execute(
        "UPDATE follow_ups SET since = greatest(since, $3) WHERE customer_id = $1 AND rep_id = $2",
        customer_id,
        rep_id,
        at,
    )
