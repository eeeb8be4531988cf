"""Periodic jobs: plan the business day from routes, close the day (missed visits), and the two
SLA timers (visit approvals 24 h, complaint acknowledgement 48 h).

Each job reads what is due from the read models and sends commands as the service itself; the
aggregates decide again (a visit checked in meanwhile is not missed, an approval answered
meanwhile is not flagged), so a job may run any number of times, on any number of replicas.
Every command carries an idempotency key derived from what it is about.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from salesplatform.clock import business_date
from salesplatform.commands import Outcome, Request
from salesplatform.events import service_actor
from salesplatform.projections import active_schema
from visit_service.domain.planning import RouteSheet, stops_for, visit_id_for
from visit_service.projections.directory import CustomerDirectory
from visit_service.projections.visits import ComplaintBook, RouteBook, VisitBoard

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

TIMER_ACTOR = service_actor("visit", "timers")
_CHUNK = 200


async def dispatch_all(rt: Runtime, requests: Sequence[Request], expected_refusals: set[str]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for start in range(0, len(requests), _CHUNK):
        outcomes.extend(await rt.bus.dispatch_many(list(requests[start : start + _CHUNK])))
    for request, outcome in zip(requests, outcomes, strict=False):
        if not outcome.ok and outcome.error is not None and outcome.error.code not in expected_refusals:
            log.warning(
                "timer_command_refused",
                command=request.name,
                payload=request.payload,
                code=outcome.error.code,
                error=outcome.error.message,
            )
    return outcomes


def _done(outcomes: Sequence[Outcome]) -> int:
    return sum(1 for o in outcomes if o.ok and not o.replayed and (o.result or {}).get("created", True))


async def plan_business_day(rt: Runtime) -> dict[str, Any]:
    """Plan today's route visits (company time zone) for every rep, in route order."""
    day = business_date(rt.clock.now(), rt.settings.timezone)
    weekday = day.isoweekday()
    async with rt.pool.acquire() as conn:
        routes_schema = await active_schema(conn, RouteBook.name)
        visits_schema = await active_schema(conn, VisitBoard.name)
        directory_schema = await active_schema(conn, CustomerDirectory.name)
        routes = await conn.fetch(
            f"SELECT route_id, rep_id, name, weekdays, customer_ids, cycle_weeks, cycle_offset"
            f" FROM {routes_schema}.routes WHERE $1 = ANY(weekdays)",
            weekday,
        )
        existing = {
            r["visit_id"]
            for r in await conn.fetch(f"SELECT visit_id FROM {visits_schema}.visits WHERE business_date = $1", day)
        }
        customer_ids = sorted({c for r in routes for c in r["customer_ids"]})
        reps = {
            r["customer_id"]: r["rep_id"]
            for r in await conn.fetch(
                f"SELECT customer_id, rep_id FROM {directory_schema}.customers"
                " WHERE customer_id = ANY($1::text[]) AND status IS DISTINCT FROM 'merged'"
                " AND status IS DISTINCT FROM 'rejected'",
                customer_ids,
            )
        }
    sheets: dict[str, list[RouteSheet]] = defaultdict(list)
    for r in routes:
        # A customer reassigned a moment ago may still be on the old rep's route until the
        # reactor has run; it is planned for nobody rather than for the wrong rep.
        eligible = tuple(c for c in r["customer_ids"] if reps.get(c) == r["rep_id"])
        sheets[r["rep_id"]].append(
            RouteSheet(r["route_id"], r["name"], tuple(r["weekdays"]), eligible, r["cycle_weeks"], r["cycle_offset"])
        )
    requests = []
    for rep_id, rep_routes in sorted(sheets.items()):
        for stop in stops_for(rep_routes, day):
            visit_id = visit_id_for(rep_id, stop.customer_id, day)
            if visit_id in existing:
                continue
            requests.append(
                Request(
                    name="plan_visit",
                    payload={
                        "rep_id": rep_id,
                        "customer_id": stop.customer_id,
                        "business_date": day.isoformat(),
                        "route_id": stop.route_id,
                        "sequence": stop.sequence,
                    },
                    actor=TIMER_ACTOR,
                    idempotency_key=f"plan_visit:{visit_id}",
                )
            )
    outcomes = await dispatch_all(rt, requests, {"customer_not_on_rep_list"})
    return {"business_date": day.isoformat(), "planned": _done(outcomes)}


async def close_business_days(rt: Runtime) -> dict[str, Any]:
    """Every visit of an ended business day that was never checked in becomes missed."""
    today = business_date(rt.clock.now(), rt.settings.timezone)
    async with rt.pool.acquire() as conn:
        schema = await active_schema(conn, VisitBoard.name)
        due = await conn.fetch(
            f"SELECT visit_id FROM {schema}.visits WHERE status = 'planned' AND business_date < $1"
            " ORDER BY business_date, visit_id",
            today,
        )
    requests = [
        Request(
            "mark_visit_missed",
            {"visit_id": r["visit_id"]},
            TIMER_ACTOR,
            idempotency_key=f"mark_visit_missed:{r['visit_id']}",
        )
        for r in due
    ]
    outcomes = await dispatch_all(rt, requests, {"not_missable"})
    return {"missed": _done(outcomes)}


async def flag_overdue_approvals(rt: Runtime) -> dict[str, Any]:
    """Approval requests unanswered for 24 hours are flagged to the supervisor."""
    now = rt.clock.now()
    async with rt.pool.acquire() as conn:
        schema = await active_schema(conn, VisitBoard.name)
        due = await conn.fetch(
            f"SELECT visit_id FROM {schema}.visits WHERE approval_status = 'pending'"
            " AND NOT approval_overdue AND approval_due_at <= $1 ORDER BY approval_due_at",
            now,
        )
    requests = [
        Request(
            "flag_approval_overdue",
            {"visit_id": r["visit_id"]},
            TIMER_ACTOR,
            idempotency_key=f"flag_approval_overdue:{r['visit_id']}",
        )
        for r in due
    ]
    outcomes = await dispatch_all(rt, requests, {"no_approval_pending", "already_flagged"})
    return {"flagged": _done(outcomes)}


async def flag_breached_complaints(rt: Runtime) -> dict[str, Any]:
    """Complaints not acknowledged within 48 hours are flagged as breached."""
    now = rt.clock.now()
    async with rt.pool.acquire() as conn:
        schema = await active_schema(conn, ComplaintBook.name)
        due = await conn.fetch(
            f"SELECT complaint_id FROM {schema}.complaints WHERE status = 'received'"
            " AND NOT sla_breached AND acknowledge_by < $1 ORDER BY acknowledge_by",
            now,
        )
    requests = [
        Request(
            "flag_complaint_breach",
            {"complaint_id": r["complaint_id"]},
            TIMER_ACTOR,
            idempotency_key=f"flag_complaint_breach:{r['complaint_id']}",
        )
        for r in due
    ]
    outcomes = await dispatch_all(rt, requests, {"already_acknowledged", "already_flagged"})
    return {"flagged": _done(outcomes)}
