"""Query routes (HTTP GET). Every read checks the territory line and answers 403 with the
reason when the caller is outside it; lists are never silently narrowed to empty."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Query

from salesplatform.clock import business_date
from salesplatform.commands import invalid
from salesplatform.errors import NotFound
from salesplatform.events import Actor, Role
from salesplatform.inputs import Day, Offset
from salesplatform.openapi import answers
from salesplatform.projections import active_schema
from salesplatform.service import Runtime, http_actor
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
from visit_service.domain.access import ListScope, Territory, ensure_can_read, list_scope
from visit_service.domain.planning import RouteSheet, stops_for, visit_id_for
from visit_service.projections import directory
from visit_service.projections.directory import Catalogue, CustomerDirectory
from visit_service.projections.visits import ComplaintBook, FieldRecords, RouteBook, VisitBoard

# The half-yearly satisfaction goals (满意度): 95% within one year, 97% within two, 98% within three.
SATISFACTION_GOALS = {"year_1": 0.95, "year_2": 0.97, "year_3": 0.98}
MAX_RANGE_DAYS = 366


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


def router(runtime: Runtime) -> APIRouter:
    api = APIRouter(tags=["queries"])

    def today() -> date:
        return business_date(runtime.clock.now(), runtime.settings.timezone)

    async def rep_territory(conn: asyncpg.Connection, rep_id: str, actor: Actor) -> Territory:
        row = await directory.staff_member(conn, rep_id)
        if row is not None:
            return Territory(rep_id, row["district_id"], row["area_id"])
        if actor.id == rep_id:
            return Territory(rep_id, actor.district, actor.area)
        return Territory(rep_id, None, None)

    def rep_param(rep_id: str | None, actor: Actor) -> str:
        if rep_id is not None:
            return rep_id
        if actor.role is Role.rep:
            return actor.id
        raise invalid("rep_id", "name the rep: ?rep_id=…", "missing")

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

    # -- visits -------------------------------------------------------------------------------

    @api.get(
        "/day-plan", summary="A rep's visits for a day in route order", response_model=None, responses=answers(DayPlan)
    )
    async def day_plan(
        rep_id: str | None = None, on: Day | None = Query(None, alias="date"), actor: Actor = Depends(http_actor)
    ) -> dict[str, Any]:
        """Route visits in route order, then approved unplanned visits. For today and later
        days, route stops the planning timer has not planned yet are shown as `not_yet_planned`
        (from the routes as they are now)."""
        rep = rep_param(rep_id, actor)
        day = on or today()
        async with runtime.pool.acquire() as conn:
            ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s day plan")
            schema = await active_schema(conn, VisitBoard.name)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.visits WHERE rep_id = $1 AND business_date = $2"
                " AND status <> 'cancelled' AND (planned OR approval_status = 'approved')"
                " ORDER BY planned DESC, sequence, visit_id",
                rep,
                day,
            )
            visits = [_visit_view(r) for r in rows]
            if day >= today():
                routes_schema = await active_schema(conn, RouteBook.name)
                sheets = [
                    RouteSheet(
                        r["route_id"],
                        r["name"],
                        tuple(r["weekdays"]),
                        tuple(r["customer_ids"]),
                        r["cycle_weeks"],
                        r["cycle_offset"],
                    )
                    for r in await conn.fetch(f"SELECT * FROM {routes_schema}.routes WHERE rep_id = $1", rep)
                ]
                have = {v["customer_id"] for v in visits}
                for stop in stops_for(sheets, day):
                    if stop.customer_id not in have:
                        visits.append(
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
                        )
                visits.sort(key=lambda v: (not v["planned"], v["sequence"]))
            names = await _customer_names(conn, [v["customer_id"] for v in visits])
        for v in visits:
            v["customer_name"] = names.get(v["customer_id"])
        return {"rep_id": rep, "business_date": day, "visits": visits}

    @api.get(
        "/visits/{visit_id}",
        summary="A visit with its visit card",
        response_model=None,
        responses=answers(VisitWithCard),
    )
    async def get_visit(visit_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            schema = await active_schema(conn, VisitBoard.name)
            row = await conn.fetchrow(f"SELECT * FROM {schema}.visits WHERE visit_id = $1", visit_id)
            if row is None:
                raise NotFound(f"visit {visit_id} does not exist", code="visit_not_found")
            ensure_can_read(actor, Territory(row["rep_id"], row["district_id"], row["area_id"]), f"visit {visit_id}")
            names = await _customer_names(conn, [row["customer_id"]])
        return _visit_view(row) | {"customer_name": names.get(row["customer_id"]), "card": _card(row)}

    @api.get("/visits", summary="A rep's visits in a date range", response_model=None, responses=answers(RepVisits))
    async def rep_visits(
        rep_id: str | None = None,
        from_: Day | None = Query(None, alias="from"),
        to: Day | None = None,
        status: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
        offset: Offset = 0,
        actor: Actor = Depends(http_actor),
    ) -> dict[str, Any]:
        rep = rep_param(rep_id, actor)
        end = to or today()
        start = from_ or end
        if start > end or (end - start) > timedelta(days=MAX_RANGE_DAYS):
            raise invalid("from", f"give a range of at most {MAX_RANGE_DAYS} days with from ≤ to", "bad_range")
        async with runtime.pool.acquire() as conn:
            ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s visits")
            schema = await active_schema(conn, VisitBoard.name)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.visits WHERE rep_id = $1 AND business_date BETWEEN $2 AND $3"
                " AND ($4::text IS NULL OR status = $4)"
                " ORDER BY business_date, planned DESC, sequence, visit_id LIMIT $5 OFFSET $6",
                rep,
                start,
                end,
                status,
                limit,
                offset,
            )
            total = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.visits WHERE rep_id = $1 AND business_date BETWEEN $2 AND $3"
                " AND ($4::text IS NULL OR status = $4)",
                rep,
                start,
                end,
                status,
            )
        return {
            "rep_id": rep,
            "from": start,
            "to": end,
            "total": total,
            "limit": limit,
            "offset": offset,
            "visits": [_visit_view(r) for r in rows],
        }

    @api.get(
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
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            await _ensure_customer_readable(conn, customer_id, actor)
            schema = await active_schema(conn, VisitBoard.name)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.visits WHERE customer_id = $1"
                " ORDER BY business_date DESC, visit_id LIMIT $2 OFFSET $3",
                customer_id,
                limit,
                offset,
            )
        return {
            "customer_id": customer_id,
            "limit": limit,
            "offset": offset,
            "visits": [_visit_view(r) | {"card": _card(r)} for r in rows],
        }

    # -- approvals ----------------------------------------------------------------------------

    async def approval_scope(
        conn: asyncpg.Connection, actor: Actor, supervisor_id: str | None, district_id: str | None, area_id: str | None
    ) -> ListScope:
        if supervisor_id is not None:
            supervisor = await directory.staff_member(conn, supervisor_id)
            if supervisor is None:
                if supervisor_id != actor.id:
                    raise NotFound(f"staff member {supervisor_id} is not in the directory", code="unknown_staff")
                district_id = actor.district
            else:
                district_id = supervisor["district_id"]
        return await scope_for(conn, actor, district_id, area_id, "visit approvals")

    @api.get(
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
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            scope = await approval_scope(conn, actor, supervisor_id, district_id, area_id)
            schema = await active_schema(conn, VisitBoard.name)
            where, args = scope_sql(scope, 1)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.visits WHERE approval_status = 'pending'{where}"
                " ORDER BY approval_overdue DESC, approval_due_at, visit_id",
                *args,
            )
        return {"district_id": scope.district_id, "area_id": scope.area_id, "approvals": [_visit_view(r) for r in rows]}

    @api.get(
        "/approvals/overdue",
        summary="Visit approvals unanswered for more than 24 hours",
        response_model=None,
        responses=answers(OverdueApprovals),
    )
    async def overdue_approvals(
        district_id: str | None = None, area_id: str | None = None, actor: Actor = Depends(http_actor)
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district_id, area_id, "visit approvals")
            schema = await active_schema(conn, VisitBoard.name)
            where, args = scope_sql(scope, 2)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.visits WHERE approval_status = 'pending'"
                f" AND (approval_overdue OR approval_due_at <= $1){where} ORDER BY approval_due_at, visit_id",
                runtime.clock.now(),
                *args,
            )
        return {"approvals": [_visit_view(r) for r in rows]}

    # -- complaints ---------------------------------------------------------------------------

    @api.get(
        "/complaints/overdue",
        summary="Complaints not acknowledged within 48 hours",
        response_model=None,
        responses=answers(OverdueComplaints),
    )
    async def overdue_complaints(
        district_id: str | None = None, area_id: str | None = None, actor: Actor = Depends(http_actor)
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district_id, area_id, "complaints")
            schema = await active_schema(conn, ComplaintBook.name)
            where, args = scope_sql(scope, 2)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.complaints WHERE status = 'received'"
                f" AND (sla_breached OR acknowledge_by < $1){where} ORDER BY acknowledge_by, complaint_id",
                runtime.clock.now(),
                *args,
            )
        return {"complaints": [dict(r) for r in rows]}

    @api.get(
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
    ) -> dict[str, Any]:
        """Not yet closed. `department=unrouted` lists those not routed yet."""
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district_id, area_id, "complaints")
            schema = await active_schema(conn, ComplaintBook.name)
            where, args = scope_sql(scope, 1)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.complaints WHERE status <> 'closed'{where} ORDER BY received_at, complaint_id",
                *args,
            )
        by_department: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_department.setdefault(r["department"] or "unrouted", []).append(dict(r))
        if department is not None:
            by_department = {department: by_department.get(department, [])}
        return {"departments": by_department}

    @api.get("/complaints/{complaint_id}", summary="One complaint", response_model=None, responses=answers(Complaint))
    async def get_complaint(complaint_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            schema = await active_schema(conn, ComplaintBook.name)
            row = await conn.fetchrow(f"SELECT * FROM {schema}.complaints WHERE complaint_id = $1", complaint_id)
        if row is None:
            raise NotFound(f"complaint {complaint_id} does not exist", code="complaint_not_found")
        where = Territory(row["rep_id"], row["district_id"], row["area_id"])
        ensure_can_read(actor, where, f"complaint {complaint_id}")
        return dict(row)

    # -- routes -------------------------------------------------------------------------------

    @api.get("/routes", summary="A rep's routes", response_model=None, responses=answers(RepRoutes))
    async def rep_routes(rep_id: str | None = None, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        rep = rep_param(rep_id, actor)
        async with runtime.pool.acquire() as conn:
            ensure_can_read(actor, await rep_territory(conn, rep, actor), f"rep {rep}'s routes")
            schema = await active_schema(conn, RouteBook.name)
            rows = await conn.fetch(f"SELECT * FROM {schema}.routes WHERE rep_id = $1 ORDER BY name, route_id", rep)
        return {"rep_id": rep, "routes": [dict(r) for r in rows]}

    @api.get("/routes/{route_id}", summary="One route", response_model=None, responses=answers(Route))
    async def get_route(route_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            schema = await active_schema(conn, RouteBook.name)
            row = await conn.fetchrow(f"SELECT * FROM {schema}.routes WHERE route_id = $1", route_id)
            if row is None:
                raise NotFound(f"route {route_id} does not exist", code="route_not_found")
            ensure_can_read(actor, await rep_territory(conn, row["rep_id"], actor), f"route {route_id}")
        return dict(row)

    # -- surveys and key accounts ---------------------------------------------------------------

    @api.get(
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
    ) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district_id, area_id, "survey results")
            schema = await active_schema(conn, FieldRecords.name)
            where, args = scope_sql(scope, 2)
            row = await conn.fetchrow(
                f"SELECT count(*) AS surveys, count(*) FILTER (WHERE satisfied) AS satisfied"
                f" FROM {schema}.surveys WHERE period = $1{where}",
                period,
                *args,
            )
            questions = await conn.fetch(
                f"SELECT q.key AS question, round(avg(q.value::int), 2)::float AS average, count(*) AS answers"
                f" FROM {schema}.surveys, jsonb_each_text(scores) AS q WHERE period = $1{where}"
                " GROUP BY q.key ORDER BY q.key",
                period,
                *args,
            )
        surveys, satisfied = row["surveys"], row["satisfied"]
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

    @api.get(
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
    ) -> dict[str, Any]:
        day = as_of or today()
        since = _one_year_before(day)
        async with runtime.pool.acquire() as conn:
            scope = await scope_for(conn, actor, district_id, area_id, "key accounts")
            customers = await active_schema(conn, CustomerDirectory.name)
            reports = await active_schema(conn, FieldRecords.name)
            where, args = scope_sql(scope, 3, "c.")
            rows = await conn.fetch(
                f"SELECT c.customer_id, c.name, c.rep_id, c.district_id, c.area_id,"
                f" (SELECT max(filed_on) FROM {reports}.key_account_reports r WHERE r.customer_id = c.customer_id)"
                f" AS last_report_on"
                f" FROM {customers}.customers c WHERE c.grade = 'A'"
                f" AND c.status IS DISTINCT FROM 'merged' AND NOT EXISTS ("
                f"   SELECT 1 FROM {reports}.key_account_reports r WHERE r.customer_id = c.customer_id"
                f"   AND r.filed_on > $1 AND r.filed_on <= $2){where}"
                " ORDER BY c.customer_id",
                since,
                day,
                *args,
            )
        return {"as_of": day, "since": since, "customers": [dict(r) for r in rows]}

    @api.get(
        "/customers/{customer_id}/key-account-reports",
        summary="A customer's key-account visit reports",
        response_model=None,
        responses=answers(KeyAccountReports),
    )
    async def customer_reports(customer_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            await _ensure_customer_readable(conn, customer_id, actor)
            schema = await active_schema(conn, FieldRecords.name)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.key_account_reports WHERE customer_id = $1 ORDER BY filed_on DESC, report_id",
                customer_id,
            )
        return {"customer_id": customer_id, "reports": [dict(r) for r in rows]}

    @api.get(
        "/reps/{rep_id}/coaching",
        summary="Coaching notes of a rep",
        response_model=None,
        responses=answers(RepCoaching),
    )
    async def rep_coaching(rep_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            ensure_can_read(actor, await rep_territory(conn, rep_id, actor), f"rep {rep_id}'s coaching notes")
            schema = await active_schema(conn, FieldRecords.name)
            rows = await conn.fetch(
                f"SELECT * FROM {schema}.coaching WHERE rep_id = $1 ORDER BY business_date DESC, coaching_id", rep_id
            )
        return {"rep_id": rep_id, "coaching": [dict(r) for r in rows]}

    # -- the directory --------------------------------------------------------------------------

    @api.get(
        "/directory/customers/{customer_id}",
        summary="The directory's row of a customer",
        response_model=None,
        responses=answers(DirectoryCustomer),
    )
    async def directory_customer(customer_id: str, actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        """What this service knows of a customer; `registered: false` marks a placeholder made
        by an event that arrived before the registration."""
        async with runtime.pool.acquire() as conn:
            row = await _ensure_customer_readable(conn, customer_id, actor)
        row.pop("versions", None)
        return row

    @api.get(
        "/directory/skus",
        summary="The catalogue as this service knows it",
        response_model=None,
        responses=answers(DirectorySkus),
    )
    async def directory_skus(actor: Actor = Depends(http_actor)) -> dict[str, Any]:
        async with runtime.pool.acquire() as conn:
            schema = await active_schema(conn, Catalogue.name)
            rows = await conn.fetch(
                f"SELECT sku, defined, name, brand, product_group, package, list_price_fen, floor_price_fen"
                f" FROM {schema}.skus ORDER BY sku"
            )
            required = await conn.fetch(f"SELECT channel, skus FROM {schema}.required_skus ORDER BY channel")
        return {"skus": [dict(r) for r in rows], "required_skus": {r["channel"]: r["skus"] for r in required}}

    return api


async def _ensure_customer_readable(conn: asyncpg.Connection, customer_id: str, actor: Actor) -> dict[str, Any]:
    row = await directory.customer(conn, customer_id)
    if row is None:
        raise NotFound(f"customer {customer_id} is not in the customer directory", code="unknown_customer")
    ensure_can_read(actor, Territory(row["rep_id"], row["district_id"], row["area_id"]), f"customer {customer_id}")
    return row


async def _customer_names(conn: asyncpg.Connection, customer_ids: list[str]) -> dict[str, str | None]:
    if not customer_ids:
        return {}
    schema = await active_schema(conn, CustomerDirectory.name)
    rows = await conn.fetch(
        f"SELECT customer_id, name FROM {schema}.customers WHERE customer_id = ANY($1::text[])", customer_ids
    )
    return {r["customer_id"]: r["name"] for r in rows}


def _one_year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)
