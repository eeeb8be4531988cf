"""Route planning (路序): a plan asked for, proposed by the planner, adopted or rejected by a
supervisor; adoption replaces the rep's routes with the plan's days, and the day plans follow.

The planner runs as the timer `propose_route_plans`: it takes the plans asked for, gathers the
rep's outlets with their positions and grades from the directory, solves in a child process
with the time limit (`adapters/route_solver.py`) and sends `propose_route_plan` (or
`fail_route_plan`) as the system. The proposing handler gathers the same inputs again, checks
the plan against the frequency rules and measures it and the current routes over the same
weeks, so what a proposal says is decided in one place whoever sent it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from salesplatform.commands import CommandBus, Request, invalid
from salesplatform.errors import DomainError
from salesplatform.events import Actor, EventRegistry
from salesplatform.ids import uuid5
from salesplatform.store import load_stream
from salesplatform.timers import TimerRun
from salesplatform.uow import UnitOfWork
from visit_service.adapters.route_solver import solve_in_subprocess
from visit_service.application.handlers import LINE, SUPERVISORS, TIMERS, rep_of, today
from visit_service.application.timers import TIMER_ACTOR
from visit_service.config import FieldConfig, hhmm, minute_of_day
from visit_service.domain.access import ensure_can_act, ensure_supervises
from visit_service.domain.commands import (
    AdoptRoutePlan,
    FailRoutePlan,
    ProposeRoutePlan,
    RejectRoutePlan,
    RequestRoutePlan,
)
from visit_service.domain.events import PlanDay, PlanRules, Unplaced
from visit_service.domain.geo import Point
from visit_service.domain.planning import RouteSheet, cycle_offset_for
from visit_service.domain.route import Route
from visit_service.domain.route_plan import RoutePlan
from visit_service.domain.route_planning import (
    START,
    DaySheet,
    Outlet,
    PlanningProblem,
    PlanningRules,
    check_matrix,
    compare,
    current_sheets,
    day_minutes,
    frequency_breaches,
    loop_distance_m,
    monday_of,
)
from visit_service.queries import field
from visit_service.queries.directory import customer_on_list, rep_territory
from visit_service.queries.routes import rep_route_ids, route_sheets

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

_ROUTE_IDS = uuid.UUID("b7e0c6a2-5d3f-4f8e-9c1a-0e2f4a6b8d13")
PLANNED_STATUSES = ("prospect", "active")  # dormant and lost outlets are for the route cleanup
WEEKDAY_NAMES = {1: "Mon", 2: "Tue", 3: "Wed", 4: "Thu", 5: "Fri", 6: "Sat", 7: "Sun"}


def rules_of(plan: PlanRules) -> PlanningRules:
    return PlanningRules(
        frequency_weeks=dict(plan.frequency_weeks),
        visit_minutes=plan.visit_minutes,
        day_start_minute=minute_of_day(plan.day_start),
        day_end_minute=minute_of_day(plan.day_end),
        workdays=tuple(plan.workdays),
        speed_kmh=plan.speed_kmh,
        time_limit_seconds=plan.time_limit_seconds,
    )


@dataclass(frozen=True)
class PlanningInputs:
    problem: PlanningProblem
    routes: list[RouteSheet]
    other_positions: dict[str, Point]  # outlets on the current routes that are not planned
    unplaced: list[Unplaced]


async def planning_inputs(conn: asyncpg.Connection, plan: RoutePlan) -> PlanningInputs:
    """The rep's outlets to plan (prospect and active ones on the rep's list), their positions
    and grades as the directory knows them now, and the rep's current routes."""
    assert plan.rules is not None
    rows = await field.outlets_to_plan(conn, plan.rep_id, PLANNED_STATUSES)
    outlets = tuple(
        Outlet(r["customer_id"], r["grade"], Point(r["latitude"], r["longitude"]))
        for r in rows
        if r["latitude"] is not None and r["longitude"] is not None
    )
    unplaced = [
        Unplaced(customer_id=r["customer_id"], reason="position_unknown") for r in rows if r["latitude"] is None
    ]
    routes = await route_sheets(conn, plan.rep_id)
    planned = {o.customer_id for o in outlets}
    others = sorted({c for r in routes for c in r.customer_ids} - planned)
    other_positions = {c: Point(*at) for c, at in (await field.positions(conn, others)).items()}
    problem = PlanningProblem(
        rep_id=plan.rep_id,
        start=Point(*plan.start),
        outlets=outlets,
        rules=rules_of(plan.rules),
        matrix=plan.matrix,
    )
    return PlanningInputs(problem, routes, other_positions, unplaced)


def matrix_problems(problem: PlanningProblem) -> list[str]:
    if problem.matrix is None:
        return []
    return check_matrix(problem.matrix, [START, *(o.customer_id for o in problem.outlets)])


# -- handlers ----------------------------------------------------------------------------------


async def request_route_plan(cmd: RequestRoutePlan, uow: UnitOfWork, *, config: FieldConfig) -> dict[str, Any]:
    """Ask the planner for a rep's routes (numbers not given come from the settings)."""
    rep_id = rep_of(cmd.rep_id, uow.actor)
    where = await rep_territory(uow.conn, rep_id, uow.actor)
    ensure_can_act(uow.actor, where, f"rep {rep_id}'s routes")
    defaults = config.planning
    rules = PlanRules(
        frequency_weeks=dict(cmd.frequency_weeks or defaults.frequency_weeks),
        visit_minutes=cmd.visit_minutes or defaults.visit_minutes,
        day_start=cmd.day_start or hhmm(defaults.day_start_minute),
        day_end=cmd.day_end or hhmm(defaults.day_end_minute),
        workdays=sorted(cmd.workdays or defaults.workdays),
        speed_kmh=cmd.speed_kmh or defaults.speed_kmh,
        time_limit_seconds=cmd.time_limit_seconds or defaults.time_limit_seconds,
    )
    try:
        rules_of(rules)
    except ValueError as exc:
        raise invalid("day_end", str(exc), "bad_rules") from exc
    this_week = monday_of(today(uow, config.timezone))
    effective_from = cmd.effective_from or this_week + timedelta(days=7)
    if effective_from < this_week:
        raise DomainError(
            f"a plan cannot take effect in a past week ({effective_from.isoformat()})",
            code="date_in_past",
            field="effective_from",
        )
    matrix = None
    if cmd.distance_matrix is not None:
        if START not in cmd.distance_matrix.points:
            raise invalid("distance_matrix.points", f'name the start point "{START}" among the points', "start_missing")
        matrix = cmd.distance_matrix.as_mapping()
    plan = await uow.load(RoutePlan, cmd.plan_id or str(uuid.uuid4()))
    plan.request(
        rep_id=rep_id,
        district_id=where.district_id,
        area_id=where.area_id,
        requested_by=uow.actor.id,
        start=(cmd.start_latitude, cmd.start_longitude),
        effective_from=effective_from,
        rules=rules,
        matrix=matrix,
    )
    await uow.save(plan)
    return {"plan_id": plan.id, "status": plan.status, "effective_from": effective_from.isoformat()}


async def propose_route_plan(cmd: ProposeRoutePlan, uow: UnitOfWork) -> dict[str, Any]:
    """The planner's result: checked against the frequency rules and measured against the
    current routes over the same weeks."""
    plan = await uow.get(RoutePlan, cmd.plan_id)
    inputs = await planning_inputs(uow.conn, plan)
    problem = inputs.problem
    sheets = [DaySheet(d.week, d.weekday, tuple(d.customer_ids)) for d in cmd.days]
    breaches = frequency_breaches(problem, sheets)
    if breaches:
        raise DomainError(
            "the plan breaks the rules: " + "; ".join(f"{b.customer_id or 'plan'}: {b.problem}" for b in breaches[:10]),
            code="plan_breaks_rules",
        )
    weeks = problem.cycle_weeks
    comparison = compare(
        problem, current_sheets(inputs.routes, plan.effective_from, weeks), sheets, inputs.other_positions
    )
    days = [
        PlanDay(
            week=s.week,
            weekday=s.weekday,
            customer_ids=list(s.customer_ids),
            distance_m=round(loop_distance_m(problem, s.customer_ids), 1),
            minutes=round(day_minutes(problem, s.customer_ids), 1),
        )
        for s in sorted(sheets, key=lambda s: (s.week, s.weekday))
    ]
    plan.propose(
        cycle_weeks=weeks,
        days=days,
        current_distance_m=comparison.current_m,
        proposed_distance_m=comparison.proposed_m,
        unplaced=inputs.unplaced,
        unmeasured=comparison.unmeasured,
        solver=cmd.solver,
    )
    await uow.save(plan)
    return {
        "plan_id": plan.id,
        "status": plan.status,
        "current_distance_m": comparison.current_m,
        "proposed_distance_m": comparison.proposed_m,
    }


async def fail_route_plan(cmd: FailRoutePlan, uow: UnitOfWork) -> dict[str, Any]:
    """The planner found no plan (with the reason)."""
    plan = await uow.get(RoutePlan, cmd.plan_id)
    plan.fail(cmd.reason)
    await uow.save(plan)
    return {"plan_id": plan.id, "status": plan.status}


async def adopt_route_plan(cmd: AdoptRoutePlan, uow: UnitOfWork) -> dict[str, Any]:
    """A supervisor adopts the proposal: the rep's routes are retired and one route per day of
    the plan takes their place (running every cycle of weeks), so the day plans follow it."""
    plan = await uow.get(RoutePlan, cmd.plan_id)
    ensure_supervises(uow.actor, await rep_territory(uow.conn, plan.rep_id, uow.actor), f"rep {plan.rep_id}'s routes")
    plan.check_decider(uow.actor.id)
    for customer_id in sorted({c for d in plan.days for c in d.customer_ids}):
        try:
            await customer_on_list(uow.conn, customer_id, plan.rep_id)
        except DomainError as exc:
            raise DomainError(
                f"{exc.message}: the plan is out of date; ask for a new one", code="plan_outdated"
            ) from exc
    current = await rep_route_ids(uow.conn, plan.rep_id)
    retired = []
    for route_id in current:
        route = await uow.get(Route, route_id)
        route.retire(f"replaced by route plan {plan.id}", plan.id)
        retired.append(route)
    created = []
    for day in plan.days:
        if not day.customer_ids:
            continue
        route = await uow.load(Route, str(uuid5(_ROUTE_IDS, f"{plan.id}:{day.week}:{day.weekday}")))
        route.define(
            plan.rep_id,
            f"W{day.week} {WEEKDAY_NAMES[day.weekday]}" if plan.cycle_weeks > 1 else WEEKDAY_NAMES[day.weekday],
            [day.weekday],
            day.customer_ids,
            cycle_weeks=plan.cycle_weeks,
            cycle_offset=cycle_offset_for(plan.effective_from, day.week, plan.cycle_weeks),
            plan_id=plan.id,
        )
        created.append(route)
    plan.adopt(uow.actor.id, [r.id for r in created], [r.id for r in retired])
    await uow.save(*retired, *created, plan)
    return {
        "plan_id": plan.id,
        "status": plan.status,
        "route_ids": [r.id for r in created],
        "retired_route_ids": [r.id for r in retired],
    }


async def reject_route_plan(cmd: RejectRoutePlan, uow: UnitOfWork) -> dict[str, Any]:
    plan = await uow.get(RoutePlan, cmd.plan_id)
    ensure_supervises(uow.actor, await rep_territory(uow.conn, plan.rep_id, uow.actor), f"rep {plan.rep_id}'s routes")
    plan.reject(uow.actor.id, cmd.reason)
    await uow.save(plan)
    return {"plan_id": plan.id, "status": plan.status}


# -- the planner (a timer) -----------------------------------------------------------------------


async def load_plan(conn: asyncpg.Connection, registry: EventRegistry, plan_id: str) -> RoutePlan:
    events = await load_stream(conn, RoutePlan.stream_id_for(plan_id))
    return RoutePlan.replay(plan_id, [registry.decode(e.envelope) for e in events])


async def propose_route_plans(rt: Runtime, *, batch: int = 5) -> TimerRun:
    """Solve the plans asked for, oldest first, one at a time (each in a child process); the
    run names the plans proposed (`propose_route_plan`) and failed (`fail_route_plan`)."""
    async with rt.pool.acquire() as conn:
        due = await field.requested_plans(conn, batch)
    run = TimerRun()
    for plan_id in due:
        async with rt.pool.acquire() as conn:
            plan = await load_plan(conn, rt.registry, plan_id)
            inputs = await planning_inputs(conn, plan)
        problems = matrix_problems(inputs.problem)
        if problems:
            request = _failure(plan_id, "the distance matrix is incomplete: " + "; ".join(problems[:5]), TIMER_ACTOR)
        else:
            result = await solve_in_subprocess(inputs.problem)
            log.info("route_plan_solved", plan_id=plan_id, status=result.status, seconds=round(result.seconds, 2))
            if result.status == "solved":
                request = Request(
                    "propose_route_plan",
                    {
                        "plan_id": plan_id,
                        "days": [
                            {"week": s.week, "weekday": s.weekday, "customer_ids": list(s.customer_ids)}
                            for s in result.sheets
                        ],
                        "solver": result.describe(),
                    },
                    TIMER_ACTOR,
                    idempotency_key=f"propose_route_plan:{plan_id}",
                )
            else:
                request = _failure(plan_id, result.reason or result.status, TIMER_ACTOR)
        outcome = await rt.bus.dispatch(request)
        if not outcome.ok and outcome.error is not None and outcome.error.code == "plan_breaks_rules":
            request = _failure(plan_id, outcome.error.message, TIMER_ACTOR)
            outcome = await rt.bus.dispatch(request)
        if outcome.ok:
            if outcome.replayed:
                run.already.append(plan_id)
            else:
                run.done.setdefault(request.name, []).append(plan_id)
        elif outcome.error is not None and outcome.error.code.startswith("plan_"):
            run.not_due.append(plan_id)  # answered meanwhile
        else:
            run.refused.append(plan_id)
            log.warning(
                "route_plan_not_recorded",
                plan_id=plan_id,
                code=outcome.error.code if outcome.error else None,
                error=outcome.error.message if outcome.error else None,
            )
    return run


def _failure(plan_id: str, reason: str, actor: Actor) -> Request:
    return Request(
        "fail_route_plan",
        {"plan_id": plan_id, "reason": reason[:2000]},
        actor,
        idempotency_key=f"fail_route_plan:{plan_id}",
    )


def register(bus: CommandBus, config: FieldConfig) -> None:
    """The route planning commands on the service's bus."""
    bus.command(RequestRoutePlan, roles=LINE, summary="Ask the planner for a rep's routes (路序)")(
        partial(request_route_plan, config=config)
    )
    bus.command(ProposeRoutePlan, roles=TIMERS, summary="The planner's proposal of a route plan")(propose_route_plan)
    bus.command(FailRoutePlan, roles=TIMERS, summary="The planner found no route plan")(fail_route_plan)
    bus.command(AdoptRoutePlan, roles=SUPERVISORS, summary="Adopt a proposed route plan: it replaces the routes")(
        adopt_route_plan
    )
    bus.command(RejectRoutePlan, roles=SUPERVISORS, summary="Reject a proposed route plan")(reject_route_plan)
