"""Queries of field execution (HTTP GET): flagged check-ins, route plans with the current and
proposed travel side by side, the monthly route cleanup and the standard pictures. Held to the
territory line like every query: outside it, 403 with the reason."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from salesplatform.commands import invalid
from salesplatform.errors import NotFound
from salesplatform.events import Actor
from salesplatform.inputs import Day, Month
from salesplatform.openapi import answers
from salesplatform.service import Runtime, http_actor, http_runtime
from visit_service.adapters.answers import (
    FlaggedCheckIns,
    RepRoutePlans,
    RouteCleanup,
    RoutePlan,
    StandardPictures,
)
from visit_service.adapters.reads import VisitRules, date_range, read_in_scope, rep_param, scope_for, today, visit_rules
from visit_service.domain.access import ensure_can_read
from visit_service.domain.standards import CLEANUP_SECTIONS, cleanup_id_for, cleanup_report, month_end
from visit_service.queries import directory, field, visits
from visit_service.queries.directory import rep_territory


def _check_in_view(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "visit_id": r["visit_id"],
        "rep_id": r["rep_id"],
        "customer_id": r["customer_id"],
        "business_date": r["business_date"],
        "district_id": r["district_id"],
        "at": r["checked_in_at"],
        "latitude": r["latitude"],
        "longitude": r["longitude"],
        "accuracy_m": r["accuracy_m"],
        "distance_m": r["distance_m"],
        "position_verified": r["position_verified"],
        "flags": r["position_flags"],
        "repeated_at": r["repeated_at"],
        "confirmed_by": r["confirmed_by"],
    }


def _plan_view(r: asyncpg.Record, names: dict[str, str | None]) -> dict[str, Any]:
    plan = dict(r)
    current, proposed = plan.pop("current_distance_m"), plan.pop("proposed_distance_m")
    plan["distance"] = (
        None
        if proposed is None
        else {
            "current_m": current,
            "proposed_m": proposed,
            "saved_m": round(current - proposed, 1),
            "saved_share": round((current - proposed) / current, 4) if current else None,
        }
    )
    for day in plan.get("days") or []:
        day["customers"] = [{"customer_id": c, "name": names.get(c)} for c in day["customer_ids"]]
    return plan


router = APIRouter(tags=["field execution"])


@router.get(
    "/check-ins/flagged",
    summary="Check-ins not verified where the outlet is, for the supervisor",
    response_model=None,
    responses=answers(FlaggedCheckIns),
)
async def flagged_check_ins(
    district_id: str | None = None,
    area_id: str | None = None,
    from_: Day | None = Query(None, alias="from"),
    to: Day | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
    rules: VisitRules = Depends(visit_rules),
) -> dict[str, Any]:
    """Check-ins in the date range that are not verified: too far from the outlet (with
    the distance), read too coarsely, at coordinates repeated at another outlet, or at an
    outlet whose position is unknown; and every set of identical coordinates used at more
    than one outlet (likely faked), with all its check-ins."""
    start, end = date_range(from_, to, today(runtime, rules.config.timezone))
    scope, (rows, repeated) = await read_in_scope(
        runtime,
        actor,
        district_id,
        area_id,
        "check-ins",
        lambda conn, scope: visits.flagged_check_ins(conn, start, end, scope),
    )
    return {
        "from": start,
        "to": end,
        "district_id": scope.district_id,
        "area_id": scope.area_id,
        "max_distance_m": rules.config.positions.max_distance_m,
        "check_ins": [_check_in_view(r) for r in rows],
        "repeated_coordinates": [dict(r) for r in repeated],
    }


@router.get(
    "/route-plans",
    summary="A rep's route plans, newest first",
    response_model=None,
    responses=answers(RepRoutePlans),
)
async def rep_route_plans(
    rep_id: str | None = None, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    rep = rep_param(rep_id or None, actor)
    async with runtime.pool.acquire() as conn:
        ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s route plans")
        rows = await field.rep_route_plans(conn, rep)
    return {"rep_id": rep, "plans": [_plan_view(r, {}) for r in rows]}


@router.get(
    "/route-plans/{plan_id}",
    summary="A route plan: its days, and current against proposed travel",
    response_model=None,
    responses=answers(RoutePlan),
)
async def get_route_plan(
    plan_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        row = await field.route_plan(conn, plan_id)
        if row is None:
            raise NotFound(f"route plan {plan_id} does not exist", code="route_plan_not_found")
        ensure_can_read(actor, await rep_territory(conn, row["rep_id"], actor), f"route plan {plan_id}")
        ids = sorted({c for d in row["days"] or [] for c in d["customer_ids"]})
        names = await directory.customer_names(conn, ids)
    return _plan_view(row, names)


@router.get(
    "/route-cleanup",
    summary="The monthly route cleanup (线路清理) of a district",
    response_model=None,
    responses=answers(RouteCleanup),
)
async def route_cleanup(
    month: Month,
    district_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
    rules: VisitRules = Depends(visit_rules),
) -> dict[str, Any]:
    """Outlets on no route, on a route but not visited for the configured days, dormant or
    lost but still on a route, and newly approved ones waiting to be added; as of today
    (or the month's last day, for a past month), with whether the cleanup is closed."""
    district = district_id or actor.district
    if district is None:
        raise invalid("district_id", "name the district: ?district_id=…", "missing")
    config = rules.config
    async with runtime.pool.acquire() as conn:
        scope = await scope_for(conn, actor, district, None, "the route cleanup")
        outlets = await field.outlets_on_record(conn, district)
        as_of = min(today(runtime, config.timezone), month_end(month))
        report = cleanup_report(outlets, as_of, config.cleanup)
        by_id = {o.customer_id: o for o in outlets}
        names = await directory.customer_names(conn, sorted({c for ids in report.values() for c in ids}))
        closed = await field.closed_cleanup(conn, cleanup_id_for(district, month))
    return {
        "district_id": scope.district_id or district,
        "month": month,
        "as_of": as_of,
        "rules": {
            "unvisited_days": config.cleanup.unvisited_days,
            "new_outlet_days": config.cleanup.new_outlet_days,
        },
        "counts": {k: len(report[k]) for k in CLEANUP_SECTIONS},
        "sections": {
            k: [
                {
                    "customer_id": c,
                    "name": names.get(c),
                    "rep_id": by_id[c].rep_id,
                    "status": by_id[c].status,
                    "route_ids": list(by_id[c].route_ids),
                    "last_visit_on": by_id[c].last_visit_on,
                    "approved_on": by_id[c].approved_on,
                }
                for c in report[k]
            ]
            for k in CLEANUP_SECTIONS
        },
        "closed": dict(closed) if closed else None,
    }


@router.get(
    "/standard-pictures",
    summary="The channels' standard pictures (成功图象) as checklists",
    response_model=None,
    responses=answers(StandardPictures),
)
async def standard_pictures(
    actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        rows = await field.standard_pictures(conn)
    return {"standard_pictures": [dict(r) for r in rows]}
