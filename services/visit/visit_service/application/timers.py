"""Periodic jobs: plan the business day from routes, close the day (missed visits), and the two
SLA timers (visit approvals 24 h, complaint acknowledgement 48 h).

Each job reads what is due from the read models and sends commands as the service itself; the
aggregates decide again (a visit checked in meanwhile is not missed, an approval answered
meanwhile is not flagged), so a job may run any number of times, on any number of replicas.
Every command carries an idempotency key derived from what it is about.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from salesplatform.clock import business_date
from salesplatform.events import service_actor
from salesplatform.timers import SystemCommand, TimerRun, send_system_commands
from visit_service.domain.planning import RouteSheet, stops_for, visit_id_for
from visit_service.queries import complaints, directory, visits
from visit_service.queries import routes as route_book

if TYPE_CHECKING:
    from salesplatform.service import Runtime

TIMER_ACTOR = service_actor("visit", "timers")


async def plan_business_day(rt: Runtime) -> TimerRun:
    """Plan today's route visits (company time zone) for every rep, in route order
    (`plan_visit`, by visit id; `facts` names the business date)."""
    day = business_date(rt.clock.now(), rt.settings.timezone)
    weekday = day.isoweekday()
    async with rt.pool.acquire() as conn:
        routes = await route_book.routes_on_weekday(conn, weekday)
        existing = await visits.visit_ids_of_day(conn, day)
        customer_ids = sorted({c for r in routes for c in r["customer_ids"]})
        reps = await directory.reps_of(conn, customer_ids)
    sheets: dict[str, list[RouteSheet]] = defaultdict(list)
    for r in routes:
        # A customer reassigned a moment ago may still be on the old rep's route until the
        # reactor has run; it is planned for nobody rather than for the wrong rep.
        eligible = tuple(c for c in r["customer_ids"] if reps.get(c) == r["rep_id"])
        sheets[r["rep_id"]].append(
            RouteSheet(r["route_id"], r["name"], tuple(r["weekdays"]), eligible, r["cycle_weeks"], r["cycle_offset"])
        )
    commands = []
    for rep_id, rep_routes in sorted(sheets.items()):
        for stop in stops_for(rep_routes, day):
            visit_id = visit_id_for(rep_id, stop.customer_id, day)
            if visit_id in existing:
                continue
            commands.append(
                SystemCommand(
                    "plan_visit",
                    {
                        "rep_id": rep_id,
                        "customer_id": stop.customer_id,
                        "business_date": day.isoformat(),
                        "route_id": stop.route_id,
                        "sequence": stop.sequence,
                    },
                    f"plan_visit:{visit_id}",
                    visit_id,
                )
            )
    run = await send_system_commands(rt, TIMER_ACTOR, commands, not_due={"customer_not_on_rep_list"})
    run.facts["business_date"] = day.isoformat()
    return run


async def close_business_days(rt: Runtime) -> TimerRun:
    """Every visit of an ended business day that was never checked in becomes missed
    (`mark_visit_missed`, by visit id)."""
    today = business_date(rt.clock.now(), rt.settings.timezone)
    async with rt.pool.acquire() as conn:
        due = await visits.planned_before(conn, today)
    commands = [
        SystemCommand(
            "mark_visit_missed", {"visit_id": r["visit_id"]}, f"mark_visit_missed:{r['visit_id']}", r["visit_id"]
        )
        for r in due
    ]
    return await send_system_commands(rt, TIMER_ACTOR, commands, not_due={"not_missable"})


async def flag_overdue_approvals(rt: Runtime) -> TimerRun:
    """Approval requests unanswered for 24 hours are flagged to the supervisor
    (`flag_approval_overdue`, by visit id)."""
    now = rt.clock.now()
    async with rt.pool.acquire() as conn:
        due = await visits.approvals_to_flag(conn, now)
    commands = [
        SystemCommand(
            "flag_approval_overdue",
            {"visit_id": r["visit_id"]},
            f"flag_approval_overdue:{r['visit_id']}",
            r["visit_id"],
        )
        for r in due
    ]
    return await send_system_commands(rt, TIMER_ACTOR, commands, not_due={"no_approval_pending", "already_flagged"})


async def flag_breached_complaints(rt: Runtime) -> TimerRun:
    """Complaints not acknowledged within 48 hours are flagged as breached
    (`flag_complaint_breach`, by complaint id)."""
    now = rt.clock.now()
    async with rt.pool.acquire() as conn:
        due = await complaints.breaches_to_flag(conn, now)
    commands = [
        SystemCommand(
            "flag_complaint_breach",
            {"complaint_id": r["complaint_id"]},
            f"flag_complaint_breach:{r['complaint_id']}",
            r["complaint_id"],
        )
        for r in due
    ]
    return await send_system_commands(rt, TIMER_ACTOR, commands, not_due={"already_acknowledged", "already_flagged"})
