"""When each prospect was last followed up by its rep (the 7-day rule's candidates), and the
same for the sales offices' leads: when a phone lead registered (7 days to come and see) and
when a walk-in was last followed up, and whether a unit is reserved for them.

Catch-up, because visits come from the visit service (`visit.checked_in`) and reservations from
the orders service (`unit.reserved`, `unit.reservation_released`), copied into this service's
log. The follow-up timer reads it to find prospects and leads due; the commands check the rule
again against the log, so a stale row never releases anybody wrongly.
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


# The leads' events this projection follows, and the orders service's reservations.
LEAD_EVENTS = (
    "lead.registered",
    "lead.received",
    "lead.followed_up",
    "lead.lapsed",
    "lead.released",
    "lead.dispute_decided",
)
DEAL_EVENTS = ("unit.reserved", "unit.reservation_released")


class FollowUps(Projection):
    name = "follow_ups"
    code_version = 2
    event_types = frozenset(
        {
            *LEAD_EVENTS,
            *DEAL_EVENTS,
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
        CREATE TABLE lead_follow_ups (
            lead_id      text PRIMARY KEY,
            project_id   text NOT NULL,
            rep_id       text,
            stage        text NOT NULL,           -- phone | walk_in | lapsed | released
            phone_since  timestamptz NOT NULL,    -- a phone lead's 7 days to come and see
            since        timestamptz,             -- a walk-in's last follow-up
            open_deals   integer NOT NULL DEFAULT 0
        );
        CREATE INDEX lead_follow_ups_phone ON lead_follow_ups (phone_since) WHERE stage = 'phone';
        CREATE INDEX lead_follow_ups_walk_in ON lead_follow_ups (since) WHERE stage = 'walk_in';
    """

    async def apply(self, conn: asyncpg.Connection, event: RecordedEvent) -> Iterable[Change]:
        return await self.apply_batch(conn, [event])

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        """Events in order; a run of one kind (contacts logged, visits) is one round trip."""
        runs = StatementRuns(conn)
        changes: list[Change] = []
        for event in events:
            if not self.handles(event):
                continue
            if event.event_type in LEAD_EVENTS or event.event_type in DEAL_EVENTS:
                await _lead(runs, event)
                changes.append({"lead_id": event.data.get("lead_id")})
            else:
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


async def _lead(runs: StatementRuns, event: RecordedEvent) -> None:
    """The 7-day clocks of a lead, as `Lead` keeps them (domain/reception.py)."""
    d = event.data
    lead_id = d.get("lead_id")
    if lead_id is None:
        return
    match event.event_type:
        case "lead.registered":
            at = datetime.fromisoformat(d["at"])
            walk_in = d["source"] == "walk_in"
            await runs.execute(
                "INSERT INTO lead_follow_ups (lead_id, project_id, rep_id, stage, phone_since, since)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (lead_id) DO NOTHING",
                lead_id,
                d["project_id"],
                d["rep_id"],
                "walk_in" if walk_in else "phone",
                at,
                at if walk_in else None,
            )
        case "lead.received":
            at = datetime.fromisoformat(d["at"])
            await runs.execute(
                """
                UPDATE lead_follow_ups SET rep_id = $2,
                    since = CASE
                        WHEN $3 = 'walk_in' AND (stage <> 'walk_in' OR $4 <> 'duty') THEN $6::timestamptz
                        WHEN $3 = 'phone' AND $4 = 'own' AND stage = 'walk_in' AND NOT $5::boolean THEN $6::timestamptz
                        ELSE since END,
                    phone_since = CASE WHEN $3 = 'phone' AND $5::boolean THEN $6::timestamptz ELSE phone_since END,
                    stage = CASE WHEN $3 = 'walk_in' THEN 'walk_in' WHEN $5::boolean THEN 'phone' ELSE stage END
                WHERE lead_id = $1
                """,
                lead_id,
                d["following_rep_id"],
                d["kind"],
                d["basis"],
                d["again"],
                at,
            )
        case "lead.followed_up":
            await runs.execute(
                "UPDATE lead_follow_ups SET since = greatest(since, $2) WHERE lead_id = $1",
                lead_id,
                datetime.fromisoformat(d["at"]),
            )
        case "lead.lapsed" | "lead.released":
            stage = "lapsed" if event.event_type == "lead.lapsed" else "released"
            await runs.execute(
                "UPDATE lead_follow_ups SET stage = $2, rep_id = NULL WHERE lead_id = $1", lead_id, stage
            )
        case "lead.dispute_decided":
            at = datetime.fromisoformat(d["at"])
            await runs.execute(
                "UPDATE lead_follow_ups SET rep_id = $2, phone_since = $3, since = $3,"
                " stage = CASE WHEN stage IN ('lapsed', 'released')"
                " THEN CASE WHEN since IS NULL THEN 'phone' ELSE 'walk_in' END ELSE stage END"
                " WHERE lead_id = $1",
                lead_id,
                d["rep_id"],
                at,
            )
        case "unit.reserved" | "unit.reservation_released":
            step = 1 if event.event_type == "unit.reserved" else -1
            await runs.execute(
                "UPDATE lead_follow_ups SET open_deals = open_deals + $2 WHERE lead_id = $1", lead_id, step
            )
