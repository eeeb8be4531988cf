"""The sales offices' reports over HTTP (GET, bearer token): the same answer shape, paging, CSV
export and line of sight as every other report (adapters/http.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Query as Param
from fastapi.responses import Response

from reporting_service.adapters.http import (
    ID,
    From,
    Requested,
    To,
    asked_filters,
    date_range,
    described,
    group_list,
    today,
)
from reporting_service.config import OfficeRules
from reporting_service.domain.kpi import month_bounds
from reporting_service.domain.office import monday_of, month_of
from reporting_service.queries import office
from reporting_service.queries.common import Territory
from salesplatform.inputs import Day, Month
from salesplatform.service import Runtime

Project = Annotated[str | None, Param(min_length=1, max_length=100, description="the project of a sales office")]


def office_route(name: str) -> dict[str, Any]:
    return described(name, "sales office reports")


def rules(runtime: Runtime) -> OfficeRules:
    """The sales offices' business rules, as the service was defined with."""
    found: OfficeRules = runtime.definition.rules
    return found


routes = APIRouter()


@routes.get("/reports/office-leads", **office_route("office_leads"))
async def office_leads(
    req: Requested,
    start: From = None,
    to: To = None,
    project_id: Project = None,
    group_by: Annotated[str | None, Param(description="comma list of day, rep, project (default day,rep)")] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    groups = group_list(group_by, office.LEAD_DIMENSIONS, ["day", "rep"])
    asked = Territory(rep_id, district_id, area_id)
    filters = {"from": first, "to": last, "project_id": project_id, "group_by": groups, **asked_filters(asked)}
    return await req.answer(
        "office_leads",
        asked,
        filters,
        lambda c, s, sc: office.office_leads(
            c, s, sc, asked, start=first, end=last, project_id=project_id, group_by=groups, page=req.paging.page
        ),
    )


@routes.get("/reports/daily-close", **office_route("daily_close"))
async def daily_close(
    req: Requested,
    day: Annotated[Day | None, Param(alias="date", description="business date (default today)")] = None,
    project_id: Project = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    on = day or today(req.runtime)
    asked = Territory(rep_id, district_id, area_id)
    return await req.answer(
        "daily_close",
        asked,
        {"date": on, "project_id": project_id, **asked_filters(asked)},
        lambda c, s, sc: office.daily_close(c, s, sc, asked, day=on, project_id=project_id, page=req.paging.page),
    )


@routes.get("/reports/weekly-targets", **office_route("weekly_targets"))
async def weekly_targets(
    req: Requested,
    week: Annotated[Day | None, Param(description="any day of the week (default this week)")] = None,
    project_id: Project = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    monday = monday_of(week or today(req.runtime))
    asked = Territory(rep_id, district_id, area_id)
    return await req.answer(
        "weekly_targets",
        asked,
        {"week": monday, "project_id": project_id, **asked_filters(asked)},
        lambda c, s, sc: office.weekly_targets(
            c, s, sc, asked, week=monday, today=today(req.runtime), project_id=project_id, page=req.paging.page
        ),
    )


@routes.get("/reports/performance-warnings", **office_route("performance_warnings"))
async def performance_warnings(
    req: Requested,
    month: Annotated[Month | None, Param(description="YYYY-MM, a year 1900–2999 (default this month)")] = None,
    as_of: Annotated[Day | None, Param(description="default today (or the month's last day)")] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    which = month or month_of(today(req.runtime))
    at = as_of or min(today(req.runtime), month_bounds(which)[1])
    asked = Territory(rep_id, district_id, area_id)
    filters = {"month": which, "as_of": at, "margin_percent": rules(req.runtime).margin_percent, **asked_filters(asked)}
    return await req.answer(
        "performance_warnings",
        asked,
        filters,
        lambda c, s, sc: office.performance_warnings(
            c,
            s,
            sc,
            asked,
            month=which,
            as_of=at,
            margin_percent=rules(req.runtime).margin_percent,
            page=req.paging.page,
        ),
    )


@routes.get("/reports/office-sales", **office_route("office_sales"))
async def office_sales(
    req: Requested,
    start: From = None,
    to: To = None,
    project_id: Project = None,
    group_by: Annotated[
        str | None, Param(description="comma list of project, building, layout, rep (default project)")
    ] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    groups = group_list(group_by, office.SALES_DIMENSIONS, ["project"])
    asked = Territory(rep_id, district_id, area_id)
    filters = {"from": first, "to": last, "project_id": project_id, "group_by": groups, **asked_filters(asked)}
    return await req.answer(
        "office_sales",
        asked,
        filters,
        lambda c, s, sc: office.office_sales(
            c, s, sc, asked, start=first, end=last, project_id=project_id, group_by=groups, page=req.paging.page
        ),
    )


@routes.get("/reports/unit-inventory", **office_route("unit_inventory"))
async def unit_inventory(
    req: Requested,
    project_id: Project = None,
    group_by: Annotated[
        str | None, Param(description="comma list of project, building, layout (default project)")
    ] = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    groups = group_list(group_by, office.INVENTORY_DIMENSIONS, ["project"])
    asked = Territory(None, district_id, area_id)
    filters = {"project_id": project_id, "group_by": groups, **asked_filters(asked)}
    return await req.answer(
        "unit_inventory",
        asked,
        filters,
        lambda c, s, sc: office.unit_inventory(
            c, s, sc, asked, project_id=project_id, group_by=groups, page=req.paging.page
        ),
    )


@routes.get("/reports/deposits-due", **office_route("deposits_due"))
async def deposits_due(
    req: Requested,
    project_id: Project = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    asked = Territory(rep_id, district_id, area_id)
    now = req.runtime.clock.now()
    return await req.answer(
        "deposits_due",
        asked,
        {"project_id": project_id, **asked_filters(asked)},
        lambda c, s, sc: office.deposits_due(c, s, sc, asked, project_id=project_id, now=now, page=req.paging.page),
    )
