"""Command handlers of the sales offices' meetings and assessments: the daily close-out (日清),
weekly claims and performance warnings (考核预警). One function each, registered by `register`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import structlog

from reporting_service.config import OfficeRules
from reporting_service.domain.kpi import month_bounds
from reporting_service.domain.office import DailyClose, Figures, PerformanceFile, WeeklyClaim, monday_of, month_of
from reporting_service.domain.office_commands import ClaimWeeklyTarget, RecordDailyClose, ReviewPerformance
from reporting_service.queries.common import Territory, scope_of
from reporting_service.queries.office import office_place, office_reps_behind
from reporting_service.queries.territory import district_of_active_rep
from salesplatform.clock import business_date
from salesplatform.commands import CommandBus, bound, invalid
from salesplatform.errors import DomainError, NotFound, PermissionDenied
from salesplatform.events import Role, service_actor
from salesplatform.projections import active_schema
from salesplatform.territory import OUTSIDE_LINE
from salesplatform.timers import TimerRun
from salesplatform.uow import UnitOfWork

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

Handler = Callable[[Any, UnitOfWork], Awaitable[dict[str, Any]]]
MANAGERS = {Role.sales_manager, Role.general_manager}
PERFORMANCE_CHECK_SECONDS = 3600.0


async def _office_rep(uow: UnitOfWork, project_id: str, named: str | None) -> str:
    """The rep a close-out or claim is about: a rep for self; a supervisor of the office's
    district or a manager names the rep. The rep must work in the office's district."""
    conn: asyncpg.Connection = uow.conn
    office = await office_place(conn, project_id)
    if office is None:
        raise NotFound(f"project {project_id} has no sales office (yet)", code="unknown_project", field="project_id")
    actor = uow.actor
    if actor.role == Role.rep:
        if named not in (None, actor.id):
            raise PermissionDenied(f"rep {actor.id} records for self only", code="not_yourself")
        rep_id = actor.id
    else:
        if named is None:
            raise invalid("rep_id", "name the rep", code="rep_required")
        if actor.role == Role.supervisor and actor.district != office["district_id"]:
            raise PermissionDenied(f"the office of {project_id} is not in your district", code=OUTSIDE_LINE)
        if actor.role == Role.area_manager and actor.area != office["area_id"]:
            raise PermissionDenied(f"the office of {project_id} is not in your area", code=OUTSIDE_LINE)
        rep_id = named
    where = await district_of_active_rep(conn, rep_id)
    if where != office["district_id"]:
        raise DomainError(f"{rep_id} is not a rep of the office of {project_id}", code="not_an_office_rep")
    return rep_id


async def record_daily_close(cmd: RecordDailyClose, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """A rep's close-out (日清): tomorrow's forecast, and why today's was missed."""
    rep_id = await _office_rep(uow, cmd.project_id, cmd.rep_id)
    today = business_date(uow.clock.now(), timezone)
    day = cmd.business_date or today
    if day > today:
        raise DomainError("a day is closed once it has come", code="day_not_come", field="business_date")
    close = await uow.load(DailyClose, DailyClose.id_for(cmd.project_id, rep_id, day))
    f = cmd.forecast
    changed = close.close(
        cmd.project_id, rep_id, day, Figures(f.deposits, f.subscriptions, f.contracts, f.amount_fen), cmd.miss_reason
    )
    await uow.save(close)
    return {"project_id": cmd.project_id, "rep_id": rep_id, "business_date": day.isoformat(), "changed": changed}


async def claim_weekly_target(cmd: ClaimWeeklyTarget, uow: UnitOfWork, *, timezone: str) -> dict[str, Any]:
    """What a rep claims for the week at the Monday meeting."""
    rep_id = await _office_rep(uow, cmd.project_id, cmd.rep_id)
    today = business_date(uow.clock.now(), timezone)
    week = cmd.week or monday_of(today)
    claim = await uow.load(WeeklyClaim, WeeklyClaim.id_for(cmd.project_id, rep_id, week))
    changed = claim.claim(cmd.project_id, rep_id, week, cmd.subscriptions, cmd.amount_fen, today)
    await uow.save(claim)
    return {"project_id": cmd.project_id, "rep_id": rep_id, "week": week.isoformat(), "changed": changed}


async def review_performance(
    cmd: ReviewPerformance, uow: UnitOfWork, *, timezone: str, rules: OfficeRules
) -> dict[str, Any]:
    """Give the warnings due today to the office reps in the reader's line (考核预警), judged on
    the days already closed: the month up to yesterday."""
    today = business_date(uow.clock.now(), timezone)
    month = cmd.month or month_of(today)
    if month > month_of(today):
        raise DomainError(f"{month} has not begun", code="month_not_begun", field="month")
    first, last = month_bounds(month)
    as_of = min(today - timedelta(days=1), last)
    if as_of < first:  # the month's first day: no day of it is closed yet
        return {"month": month, "as_of": None, "reviewed": 0, "warnings": {}}
    names = ("sales_office", "directory", "targets")
    schemas = {n: await active_schema(uow.conn, n) for n in names}
    reps = await office_reps_behind(uow.conn, schemas, scope_of(uow.actor), Territory(), month=month, as_of=as_of)
    given: dict[str, str] = {}
    files = []
    for rep in reps:
        if not rep["target_fen"]:
            continue  # no target, nothing to fall behind
        file = await uow.load(PerformanceFile, PerformanceFile.id_for(rep["rep_id"], month))
        level = file.review(
            rep["rep_id"],
            month,
            today,
            started=rep["started_on"],
            as_of=as_of,
            target_fen=rep["target_fen"],
            actual_fen=rep["actual_fen"],
            margin_percent=rules.margin_percent,
            escalation_days=rules.escalation_days,
        )
        if level is not None:
            given[rep["rep_id"]] = level
            files.append(file)
    await uow.save(*files)
    return {"month": month, "as_of": as_of.isoformat(), "reviewed": len(reps), "warnings": given}


REVIEW_ACTOR = service_actor("reporting", "performance-review")


async def performance_timer(rt: Runtime) -> TimerRun:
    """The hourly review, by the service itself: a warning due today is given once (its file's
    stream). The run names the reps warned now (`review_performance`), with their levels."""
    outcome = await rt.run_command("review_performance", {}, REVIEW_ACTOR)
    if not outcome.ok:
        log.warning("performance_review_failed", error=outcome.error.to_dict() if outcome.error else None)
        return TimerRun(refused=["review_performance"])
    warnings = (outcome.result or {}).get("warnings") or {}
    if not warnings:
        return TimerRun()
    return TimerRun(done={"review_performance": sorted(warnings)}, facts={"warnings": warnings})


def register(bus: CommandBus, timezone: str, rules: OfficeRules) -> None:
    """Every command of the sales offices' meetings and assessments, one line each."""
    line = {Role.rep, Role.supervisor, Role.area_manager, *MANAGERS}
    bus.command(RecordDailyClose, roles=line)(bound(record_daily_close, timezone=timezone))
    bus.command(ClaimWeeklyTarget, roles=line)(bound(claim_weekly_target, timezone=timezone))
    bus.command(ReviewPerformance, roles={Role.service, Role.system, Role.supervisor, Role.area_manager, *MANAGERS})(
        bound(review_performance, timezone=timezone, rules=rules)
    )
