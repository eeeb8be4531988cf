"""Query routes (HTTP GET). Every read checks the territory line and answers 403 with the
reason when the caller is outside it; lists are never silently narrowed to empty."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from salesplatform.errors import NotFound
from salesplatform.events import Actor
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import answers
from salesplatform.service import Runtime, http_actor, http_runtime
from visit_service.adapters.answers import (
    ApprovalQueue,
    Complaint,
    CustomerVisits,
    DayPlan,
    DirectoryCustomer,
    DirectorySkus,
    KeyAccountReports,
    KeyAccountsWithoutReport,
    OpenComplaints,
    OverdueApprovals,
    OverdueComplaints,
    RepCoaching,
    RepRoutes,
    RepVisits,
    Route,
    SurveyResults,
    VisitWithCard,
)
from visit_service.adapters.reads import (
    date_range,
    read_in_scope,
    readable_customer,
    readable_visit,
    rep_param,
    scope_for,
    today,
)
from visit_service.domain.access import ListScope, ensure_can_read, territory_of
from visit_service.domain.planning import RouteSheet, stops_for, visit_id_for
from visit_service.queries import complaints, directory, records, routes, visits
from visit_service.queries.directory import rep_territory

# The half-yearly satisfaction goals (满意度): 95% within one year, 97% within two, 98% within three.
SATISFACTION_GOALS = {"year_1": 0.95, "year_2": 0.97, "year_3": 0.98}


def _visit_view(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    r = dict(row)
    return {
        "visit_id": r["visit_id"],
        "rep_id": r["rep_id"],
        "customer_id": r["customer_id"],
        "business_date": r["business_date"],
        "route_id": r["route_id"],
        "planned": r["planned"],
        "sequence": r["sequence"],
        "district_id": r["district_id"],
        "area_id": r["area_id"],
        "status": r["status"],
        "successful": r["successful"],
        "approval": None
        if r["approval_status"] is None
        else {
            "status": r["approval_status"],
            "reason": r["approval_reason"],
            "requested_by": r["requested_by"],
            "requested_at": r["requested_at"],
            "due_at": r["approval_due_at"],
            "overdue": r["approval_overdue"],
            "supervisor_id": r["overdue_supervisor_id"],
            "approver_id": r["approver_id"],
            "decided_at": r["decided_at"],
            "rejection_reason": r["rejection_reason"],
        },
    }


def _card(row: asyncpg.Record) -> dict[str, Any]:
    """The visit card (ODC卡) step by step."""
    r = dict(row)
    return {
        "check_in": None
        if r["checked_in_at"] is None
        else {
            "at": r["checked_in_at"],
            "latitude": r["latitude"],
            "longitude": r["longitude"],
            "accuracy_m": r["accuracy_m"],
            "distance_m": r["distance_m"],
            "position_verified": r["position_verified"],
            "flags": r["position_flags"],
            "repeated_at": r["repeated_at"],
            "confirmed_by": r["confirmed_by"],
        },
        "stock": r["stock"],
        "merchandising": r["merchandising"],
        "coolers": r["coolers"],
        "competitors": r["competitors"],
        "suggested_order": r["suggested"],
        "order": None
        if r["order_id"] is None
        else {
            "order_id": r["order_id"],
            "lines": r["order_lines"],
            "suggested_adopted": r["suggested_adopted"],
        },
        "refusal_reason": r["refusal_reason"],
        "previous_delivery": r["delivery"],
        "check_out": None if r["checked_out_at"] is None else {"at": r["checked_out_at"]},
        "missed_at": r["missed_at"],
    }


router = APIRouter(tags=["queries"])


def business_day(runtime: Runtime) -> date:
    return today(runtime, runtime.settings.timezone)


# -- visits -----------------------------------------------------------------------------------


@router.get(
    "/day-plan", summary="A rep's visits for a day in route order", response_model=None, responses=answers(DayPlan)
)
async def day_plan(
    rep_id: str | None = None,
    on: Day | None = Query(None, alias="date"),
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    """Route visits in route order, then approved unplanned visits. For today and later
    days, route stops the planning timer has not planned yet are shown as `not_yet_planned`
    (from the routes as they are now)."""
    rep = rep_param(rep_id, actor)
    day = on or business_day(runtime)
    async with runtime.pool.acquire() as conn:
        ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s day plan")
        planned = [_visit_view(r) for r in await visits.day_plan(conn, rep, day)]
        if day >= business_day(runtime):
            planned = _with_stops_not_yet_planned(planned, await routes.route_sheets(conn, rep), rep, day)
        names = await directory.customer_names(conn, [v["customer_id"] for v in planned])
    for v in planned:
        v["customer_name"] = names.get(v["customer_id"])
    return {"rep_id": rep, "business_date": day, "visits": planned}


def _with_stops_not_yet_planned(
    planned: list[dict[str, Any]], sheets: list[RouteSheet], rep: str, day: date
) -> list[dict[str, Any]]:
    """The day's visits and, after them in route order, the routes' stops not planned yet."""
    have = {v["customer_id"] for v in planned}
    stops = [
        {
            "visit_id": visit_id_for(rep, stop.customer_id, day),
            "rep_id": rep,
            "customer_id": stop.customer_id,
            "business_date": day,
            "route_id": stop.route_id,
            "planned": True,
            "sequence": stop.sequence,
            "status": "not_yet_planned",
        }
        for stop in stops_for(sheets, day)
        if stop.customer_id not in have
    ]
    return sorted(planned + stops, key=lambda v: (not v["planned"], v["sequence"]))


@router.get(
    "/visits/{visit_id}",
    summary="A visit with its visit card",
    response_model=None,
    responses=answers(VisitWithCard),
)
async def get_visit(
    visit_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        row = await readable_visit(conn, visit_id, actor)
        names = await directory.customer_names(conn, [row["customer_id"]])
    return _visit_view(row) | {"customer_name": names.get(row["customer_id"]), "card": _card(row)}


@router.get("/visits", summary="A rep's visits in a date range", response_model=None, responses=answers(RepVisits))
async def rep_visits(
    rep_id: str | None = None,
    from_: Day | None = Query(None, alias="from"),
    to: Day | None = None,
    status: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    rep = rep_param(rep_id, actor)
    start, end = date_range(from_, to, business_day(runtime))
    async with runtime.pool.acquire() as conn:
        ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s visits")
        rows, total = await visits.rep_visits(conn, rep, start, end, status, limit, offset)
    return {
        "rep_id": rep,
        "from": start,
        "to": end,
        "total": total,
        "limit": limit,
        "offset": offset,
        "visits": [_visit_view(r) for r in rows],
    }


@router.get(
    "/customers/{customer_id}/visits",
    summary="A customer's visit history",
    response_model=None,
    responses=answers(CustomerVisits),
)
async def customer_visits(
    customer_id: str,
    limit: int = Query(100, ge=1, le=1000),
    offset: Offset = 0,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        await readable_customer(conn, customer_id, actor)
        rows = await visits.customer_visits(conn, customer_id, limit, offset)
    return {
        "customer_id": customer_id,
        "limit": limit,
        "offset": offset,
        "visits": [_visit_view(r) | {"card": _card(r)} for r in rows],
    }


# -- approvals --------------------------------------------------------------------------------


async def approval_scope(
    conn: asyncpg.Connection, actor: Actor, supervisor_id: str | None, district_id: str | None, area_id: str | None
) -> ListScope:
    """The approvals a supervisor answers (their district), or the district and area asked for."""
    if supervisor_id is not None:
        supervisor = await directory.staff_member(conn, supervisor_id)
        if supervisor is None:
            if supervisor_id != actor.id:
                raise NotFound(f"staff member {supervisor_id} is not in the directory", code="unknown_staff")
            district_id = actor.district
        else:
            district_id = supervisor["district_id"]
    return await scope_for(conn, actor, district_id, area_id, "visit approvals")


@router.get(
    "/approvals/queue",
    summary="Visit approvals waiting for a supervisor (overdue first)",
    response_model=None,
    responses=answers(ApprovalQueue),
)
async def approval_queue(
    supervisor_id: str | None = None,
    district_id: str | None = None,
    area_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        scope = await approval_scope(conn, actor, supervisor_id, district_id, area_id)
        rows = await visits.pending_approvals(conn, scope)
    return {"district_id": scope.district_id, "area_id": scope.area_id, "approvals": [_visit_view(r) for r in rows]}


@router.get(
    "/approvals/overdue",
    summary="Visit approvals unanswered for more than 24 hours",
    response_model=None,
    responses=answers(OverdueApprovals),
)
async def overdue_approvals(
    district_id: str | None = None,
    area_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    now = runtime.clock.now()
    _, rows = await read_in_scope(
        runtime,
        actor,
        district_id,
        area_id,
        "visit approvals",
        lambda conn, scope: visits.overdue_approvals(conn, now, scope),
    )
    return {"approvals": [_visit_view(r) for r in rows]}


# -- complaints -------------------------------------------------------------------------------


@router.get(
    "/complaints/overdue",
    summary="Complaints not acknowledged within 48 hours",
    response_model=None,
    responses=answers(OverdueComplaints),
)
async def overdue_complaints(
    district_id: str | None = None,
    area_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    now = runtime.clock.now()
    _, rows = await read_in_scope(
        runtime, actor, district_id, area_id, "complaints", lambda conn, scope: complaints.overdue(conn, now, scope)
    )
    return {"complaints": [dict(r) for r in rows]}


@router.get(
    "/complaints/open",
    summary="Open complaints, by department",
    response_model=None,
    responses=answers(OpenComplaints),
)
async def open_complaints(
    department: str | None = None,
    district_id: str | None = None,
    area_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    """Not yet closed. `department=unrouted` lists those not routed yet."""
    _, rows = await read_in_scope(runtime, actor, district_id, area_id, "complaints", complaints.still_open)
    by_department: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_department.setdefault(r["department"] or "unrouted", []).append(dict(r))
    if department is not None:
        by_department = {department: by_department.get(department, [])}
    return {"departments": by_department}


@router.get("/complaints/{complaint_id}", summary="One complaint", response_model=None, responses=answers(Complaint))
async def get_complaint(
    complaint_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        row = await complaints.complaint(conn, complaint_id)
    if row is None:
        raise NotFound(f"complaint {complaint_id} does not exist", code="complaint_not_found")
    ensure_can_read(actor, territory_of(row), f"complaint {complaint_id}")
    return dict(row)


# -- routes -----------------------------------------------------------------------------------


@router.get("/routes", summary="A rep's routes", response_model=None, responses=answers(RepRoutes))
async def rep_routes(
    rep_id: str | None = None, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    rep = rep_param(rep_id, actor)
    async with runtime.pool.acquire() as conn:
        ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s routes")
        rows = await routes.rep_routes(conn, rep)
    return {"rep_id": rep, "routes": [dict(r) for r in rows]}


@router.get("/routes/{route_id}", summary="One route", response_model=None, responses=answers(Route))
async def get_route(
    route_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        row = await routes.route(conn, route_id)
        if row is None:
            raise NotFound(f"route {route_id} does not exist", code="route_not_found")
        ensure_can_read(actor, await rep_territory(conn, row["rep_id"], actor), f"route {route_id}")
    return dict(row)


# -- surveys and key accounts -----------------------------------------------------------------


@router.get(
    "/surveys/results",
    summary="Satisfaction per half year against the 95/97/98% goals",
    response_model=None,
    responses=answers(SurveyResults),
)
async def survey_results(
    period: str = Query(..., pattern=r"^20[0-9]{2}H[12]$"),
    district_id: str | None = None,
    area_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    scope, (totals, questions) = await read_in_scope(
        runtime, actor, district_id, area_id, "survey results", lambda conn, scope: records.surveys(conn, period, scope)
    )
    surveys, satisfied = totals["surveys"], totals["satisfied"]
    share = satisfied / surveys if surveys else None
    return {
        "period": period,
        "district_id": scope.district_id,
        "area_id": scope.area_id,
        "surveys": surveys,
        "satisfied": satisfied,
        "satisfied_share": share,
        "goals": {
            name: {"share": goal, "met": share is not None and share >= goal}
            for name, goal in SATISFACTION_GOALS.items()
        },
        "questions": [dict(q) for q in questions],
    }


@router.get(
    "/key-accounts/without-report",
    summary="A-grade customers without a visit report in 12 months",
    response_model=None,
    responses=answers(KeyAccountsWithoutReport),
)
async def key_accounts_without_report(
    as_of: Day | None = None,
    district_id: str | None = None,
    area_id: str | None = None,
    actor: Actor = Depends(http_actor),
    runtime: Runtime = Depends(http_runtime),
) -> dict[str, Any]:
    day = as_of or business_day(runtime)
    since = _one_year_before(day)
    _, rows = await read_in_scope(
        runtime,
        actor,
        district_id,
        area_id,
        "key accounts",
        lambda conn, scope: records.key_accounts_without_report(conn, since, day, scope),
    )
    return {"as_of": day, "since": since, "customers": [dict(r) for r in rows]}


@router.get(
    "/customers/{customer_id}/key-account-reports",
    summary="A customer's key-account visit reports",
    response_model=None,
    responses=answers(KeyAccountReports),
)
async def customer_reports(
    customer_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        await readable_customer(conn, customer_id, actor)
        rows = await records.key_account_reports(conn, customer_id)
    return {"customer_id": customer_id, "reports": [dict(r) for r in rows]}


@router.get(
    "/reps/{rep_id}/coaching",
    summary="Coaching notes of a rep",
    response_model=None,
    responses=answers(RepCoaching),
)
async def rep_coaching(
    rep_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        ensure_can_read(actor, await rep_territory(conn, rep_id, actor), f"rep {rep_id}'s coaching notes")
        rows = await records.coaching(conn, rep_id)
    return {"rep_id": rep_id, "coaching": [dict(r) for r in rows]}


# -- the directory ----------------------------------------------------------------------------


@router.get(
    "/directory/customers/{customer_id}",
    summary="The directory's row of a customer",
    response_model=None,
    responses=answers(DirectoryCustomer),
)
async def directory_customer(
    customer_id: str, actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    """What this service knows of a customer; `registered: false` marks a placeholder made
    by an event that arrived before the registration."""
    async with runtime.pool.acquire() as conn:
        row = await readable_customer(conn, customer_id, actor)
    row.pop("versions", None)
    return row


@router.get(
    "/directory/skus",
    summary="The catalogue as this service knows it",
    response_model=None,
    responses=answers(DirectorySkus),
)
async def directory_skus(
    actor: Actor = Depends(http_actor), runtime: Runtime = Depends(http_runtime)
) -> dict[str, Any]:
    async with runtime.pool.acquire() as conn:
        skus, required = await directory.catalogue(conn)
    return {"skus": [dict(r) for r in skus], "required_skus": {r["channel"]: r["skus"] for r in required}}


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)
