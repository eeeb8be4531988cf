"""Queries of field execution (HTTP GET): flagged check-ins, route plans with the current and
proposed travel side by side, the monthly route cleanup and the standard pictures. Held to the
territory line like every query: outside it, 403 with the reason."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from salesplatform.clock import business_date
from salesplatform.commands import invalid
from salesplatform.errors import NotFound
from salesplatform.events import Actor, Role
from salesplatform.inputs import Day, Month
from salesplatform.openapi import answers
from salesplatform.projections import active_schema
from salesplatform.service import Runtime, http_actor
from visit_service.adapters.answers import (
    FlaggedCheckIns,
    RepRoutePlans,
    RouteCleanup,
    RoutePlan,
    StandardPictures,
)
from visit_service.application.field_work import outlets_on_record
from visit_service.config import FieldConfig
from visit_service.domain.access import ListScope, Territory, ensure_can_read, list_scope
from visit_service.domain.standards import CLEANUP_SECTIONS, cleanup_id_for, cleanup_report, month_end
from visit_service.projections import directory
from visit_service.projections.directory import CustomerDirectory
from visit_service.projections.field import FieldStandards, RoutePlanBook
from visit_service.projections.visits import VisitBoard

MAX_RANGE_DAYS = 366


async def scope_for(
    conn: asyncpg.Connection, actor: Actor, district_id: str | None, area_id: str | None, what: str
) -> ListScope:
    district_area = await directory.area_of_district(conn, district_id) if district_id else None
    return await list_scope(actor, district_id, area_id, district_area, what)


def scope_sql(scope: ListScope, first_arg: int, table: str = "") -> tuple[str, list[Any]]:
    """` AND district_id = $n …` for the scope, with its arguments numbered from `first_arg`."""
    clauses, args = [], []
    if scope.district_id is not None:
        args.append(scope.district_id)
        clauses.append(f"{table}district_id = ${first_arg + len(args) - 1}")
    if scope.area_id is not None:
        args.append(scope.area_id)
        clauses.append(f"{table}area_id = ${first_arg + len(args) - 1}")
    return (" AND " + " AND ".join(clauses)) if clauses else "", args


async def rep_territory(conn: asyncpg.Connection, rep_id: str, actor: Actor) -> Territory:
    row = await directory.staff_member(conn, rep_id)
    if row is not None:
        return Territory(rep_id, row["district_id"], row["area_id"])
    if actor.id == rep_id:
        return Territory(rep_id, actor.district, actor.area)
    return Territory(rep_id, None, None)


def date_range(start: date | None, end: date | None, today: date) -> tuple[date, date]:
    end = end or today
    start = start or end
    if start > end or (end - start) > timedelta(days=MAX_RANGE_DAYS):
        raise invalid("from", f"give a range of at most {MAX_RANGE_DAYS} days with from ≤ to", "bad_range")
    return start, end


async def customer_names(conn: asyncpg.Connection, ids: list[str]) -> dict[str, str | None]:
    schema = await active_schema(conn, CustomerDirectory.name)
    rows = await conn.fetch(
        f"SELECT customer_id, name FROM {schema}.customers WHERE customer_id = ANY($1::text[])", ids
    )
    return {r["customer_id"]: r["name"] for r in rows}


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


def router(runtime: Runtime, *, config: FieldConfig) -> APIRouter:
    api = APIRouter(tags=["field execution"])

    def today() -> date:
        return business_date(runtime.clock.now(), config.timezone)

    @api.get(
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
    ) -> dict[str, Any]:
        """Check-ins in the date range that are not verified: too far from the outlet (with
        the distance), read too coarsely, at coordinates repeated at another outlet, or at an
        outlet whose position is unknown; and every set of identical coordinates used at more
        than one outlet (likely faked), with all its check-ins."""
        start, end = date_range(from_, to, today())
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district_id, area_id, "check-ins")
            schema = await active_schema(conn, VisitBoard.name)
            where, args = scope_sql(scope, 3)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.visits WHERE checked_in_at IS NOT NULL AND business_date BETWEEN $1 AND $2"
                f" AND position_verified IS DISTINCT FROM true{where} ORDER BY business_date, rep_id, visit_id",
                start,
                end,
                *args,
            )
            repeated = await conn.fetch(
                f"SELECT latitude, longitude, array_agg(visit_id ORDER BY checked_in_at, visit_id) AS visit_ids,"
                f" array_agg(DISTINCT customer_id) AS customer_ids FROM {schema}.visits"
                f" WHERE checked_in_at IS NOT NULL AND business_date BETWEEN $1 AND $2{where}"
                " GROUP BY latitude, longitude HAVING count(DISTINCT customer_id) > 1 ORDER BY latitude, longitude",
                start,
                end,
                *args,
            )
        return {
            "from": start,
            "to": end,
            "district_id": scope.district_id,
            "area_id": scope.area_id,
            "max_distance_m": config.positions.max_distance_m,
            "check_ins": [_check_in_view(r) for r in rows],
            "repeated_coordinates": [dict(r) for r in repeated],
        }

    @api.get(
        "/route-plans",
        summary="A rep's route plans, newest first",
        response_model=None,
        responses=answers(RepRoutePlans),
    )
    async def rep_route_plans(rep_id: str | None = None, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        rep = rep_id or (actor.id if actor.role is Role.rep else None)
        if rep is None:
            raise invalid("rep_id", "name the rep: ?rep_id=…", "missing")
        async with runtime.pool.acquire() as conn:
            ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s route plans")
            schema = await active_schema(conn, RoutePlanBook.name)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.route_plans WHERE rep_id = $1 ORDER BY requested_at DESC, plan_id", rep
            )
        return {"rep_id": rep, "plans": [_plan_view(r, {}) for r in rows]}

    @api.get(
        "/route-plans/{plan_id}",
        summary="A route plan: its days, and current against proposed travel",
        response_model=None,
        responses=answers(RoutePlan),
    )
    async def get_route_plan(plan_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            schema = await active_schema(conn, RoutePlanBook.name)
            row = await conn.fetchrow(f"SELECT * FROM {schema}.route_plans WHERE plan_id = $1", plan_id)
            if row is None:
                raise NotFound(f"route plan {plan_id} does not exist", code="route_plan_not_found")
            ensure_can_read(actor, await rep_territory(conn, row["rep_id"], actor), f"route plan {plan_id}")
            ids = sorted({c for d in row["days"] or [] for c in d["customer_ids"]})
            names = await customer_names(conn, ids)
        return _plan_view(row, names)

    @api.get(
        "/route-cleanup",
        summary="The monthly route cleanup (线路清理) of a district",
        response_model=None,
        responses=answers(RouteCleanup),
    )
    async def route_cleanup(
        month: Month,
        district_id: str | None = None,
        actor: Actor = Depends(http_actor),
    ) -> dict[str, Any]:
        """Outlets on no route, on a route but not visited for the configured days, dormant or
        lost but still on a route, and newly approved ones waiting to be added; as of today
        (or the month's last day, for a past month), with whether the cleanup is closed."""
        district = district_id or actor.district
        if district is None:
            raise invalid("district_id", "name the district: ?district_id=…", "missing")
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district, None, "the route cleanup")
            outlets = await outlets_on_record(conn, district)
            as_of = min(today(), month_end(month))
            report = cleanup_report(outlets, as_of, config.cleanup)
            by_id = {o.customer_id: o for o in outlets}
            names = await customer_names(conn, sorted({c for ids in report.values() for c in ids}))
            standards = await active_schema(conn, FieldStandards.name)
            closed = await conn.fetchrow(
                f"SELECT closed_by, closed_on, counts, notes FROM {standards}.route_cleanups WHERE cleanup_id = $1",
                cleanup_id_for(district, month),
            )
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

    @api.get(
        "/standard-pictures",
        summary="The channels' standard pictures (成功图象) as checklists",
        response_model=None,
        responses=answers(StandardPictures),
    )
    async def standard_pictures(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            schema = await active_schema(conn, FieldStandards.name)
            rows = await conn.fetch(f"SELECT * FROM {schema}.standard_pictures ORDER BY channel")
        return {"standard_pictures": [dict(r) for r in rows]}

    return api
