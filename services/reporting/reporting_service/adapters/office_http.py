"""The sales offices' reports over HTTP (GET, bearer token): the same answer shape, paging, CSV
export and line of sight as every other report (adapters/http.py)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Query as Param
from fastapi.responses import Response

from reporting_service.adapters.http import ID, From, Paging, To, _asked, _group_list, report_responses, respond
from reporting_service.config import OfficeRules
from reporting_service.domain.kpi import month_bounds
from reporting_service.domain.office import monday_of, month_of
from reporting_service.domain.reports import REPORTS
from reporting_service.queries import office
from reporting_service.queries.common import ReportQuery, Result, Territory, check_within, reading_reports, scope_of
from salesplatform.clock import business_date
from salesplatform.commands import invalid
from salesplatform.events import Actor
from salesplatform.inputs import Day, Month
from salesplatform.service import http_actor

Project = Annotated[str | None, Param(min_length=1, max_length=100, description="the project of a sales office")]


def router(runtime: Any, rules: OfficeRules) -> APIRouter:
    api = APIRouter()
    tz = runtime.settings.timezone

    def today() -> date:
        return business_date(runtime.clock.now(), tz)

    def date_range(start: date | None, end: date | None) -> tuple[date, date]:
        end = end or today()
        start = start or end.replace(day=1)
        if start > end:
            raise invalid("from", "the range starts after it ends", "date_range")
        return start, end

    def describe(name: str) -> dict[str, Any]:
        d = REPORTS[name]
        return {
            "summary": d.title,
            "description": d.text,
            "tags": ["sales office reports"],
            "responses": report_responses(name),
        }

    async def run(actor: Actor, asked: Territory, query: ReportQuery) -> Result:
        scope = scope_of(actor)
        async with reading_reports(runtime.pool) as (conn, schemas):
            await check_within(conn, schemas, scope, asked)
            return await query(conn, schemas, scope)

    @api.get("/reports/office-leads", **describe("office_leads"))
    async def office_leads(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
        start: From = None,
        to: To = None,
        project_id: Project = None,
        group_by: Annotated[str | None, Param(description="comma list of day, rep, project (default day,rep)")] = None,
        rep_id: ID = None,
        district_id: ID = None,
        area_id: ID = None,
    ) -> Response:
        first, last = date_range(start, to)
        groups = _group_list(group_by, office.LEAD_DIMENSIONS, ["day", "rep"])
        asked = Territory(rep_id, district_id, area_id)
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.office_leads(
                c, s, sc, asked, start=first, end=last, project_id=project_id, group_by=groups, page=paging.page
            ),
        )
        filters = {"from": first, "to": last, "project_id": project_id, "group_by": groups, **_asked(asked)}
        return respond("office_leads", result, paging, filters)

    @api.get("/reports/daily-close", **describe("daily_close"))
    async def daily_close(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
        day: Annotated[Day | None, Param(alias="date", description="business date (default today)")] = None,
        project_id: Project = None,
        rep_id: ID = None,
        district_id: ID = None,
        area_id: ID = None,
    ) -> Response:
        on = day or today()
        asked = Territory(rep_id, district_id, area_id)
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.daily_close(c, s, sc, asked, day=on, project_id=project_id, page=paging.page),
        )
        return respond("daily_close", result, paging, {"date": on, "project_id": project_id, **_asked(asked)})

    @api.get("/reports/weekly-targets", **describe("weekly_targets"))
    async def weekly_targets(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
        week: Annotated[Day | None, Param(description="any day of the week (default this week)")] = None,
        project_id: Project = None,
        rep_id: ID = None,
        district_id: ID = None,
        area_id: ID = None,
    ) -> Response:
        monday = monday_of(week or today())
        asked = Territory(rep_id, district_id, area_id)
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.weekly_targets(
                c, s, sc, asked, week=monday, today=today(), project_id=project_id, page=paging.page
            ),
        )
        return respond("weekly_targets", result, paging, {"week": monday, "project_id": project_id, **_asked(asked)})

    @api.get("/reports/performance-warnings", **describe("performance_warnings"))
    async def performance_warnings(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
        month: Annotated[Month | None, Param(description="YYYY-MM, a year 1900–2999 (default this month)")] = None,
        as_of: Annotated[Day | None, Param(description="default today (or the month's last day)")] = None,
        rep_id: ID = None,
        district_id: ID = None,
        area_id: ID = None,
    ) -> Response:
        which = month or month_of(today())
        at = as_of or min(today(), month_bounds(which)[1])
        asked = Territory(rep_id, district_id, area_id)
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.performance_warnings(
                c, s, sc, asked, month=which, as_of=at, margin_percent=rules.margin_percent, page=paging.page
            ),
        )
        filters = {"month": which, "as_of": at, "margin_percent": rules.margin_percent, **_asked(asked)}
        return respond("performance_warnings", result, paging, filters)

    @api.get("/reports/office-sales", **describe("office_sales"))
    async def office_sales(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
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
        first, last = date_range(start, to)
        groups = _group_list(group_by, office.SALES_DIMENSIONS, ["project"])
        asked = Territory(rep_id, district_id, area_id)
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.office_sales(
                c, s, sc, asked, start=first, end=last, project_id=project_id, group_by=groups, page=paging.page
            ),
        )
        filters = {"from": first, "to": last, "project_id": project_id, "group_by": groups, **_asked(asked)}
        return respond("office_sales", result, paging, filters)

    @api.get("/reports/unit-inventory", **describe("unit_inventory"))
    async def unit_inventory(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
        project_id: Project = None,
        group_by: Annotated[
            str | None, Param(description="comma list of project, building, layout (default project)")
        ] = None,
        district_id: ID = None,
        area_id: ID = None,
    ) -> Response:
        groups = _group_list(group_by, office.INVENTORY_DIMENSIONS, ["project"])
        asked = Territory(None, district_id, area_id)
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.unit_inventory(
                c, s, sc, asked, project_id=project_id, group_by=groups, page=paging.page
            ),
        )
        filters = {"project_id": project_id, "group_by": groups, **_asked(asked)}
        return respond("unit_inventory", result, paging, filters)

    @api.get("/reports/deposits-due", **describe("deposits_due"))
    async def deposits_due(
        actor: Annotated[Actor, Depends(http_actor)],
        paging: Annotated[Paging, Depends()],
        project_id: Project = None,
        rep_id: ID = None,
        district_id: ID = None,
        area_id: ID = None,
    ) -> Response:
        asked = Territory(rep_id, district_id, area_id)
        now = runtime.clock.now()
        result = await run(
            actor,
            asked,
            lambda c, s, sc: office.deposits_due(c, s, sc, asked, project_id=project_id, now=now, page=paging.page),
        )
        return respond("deposits_due", result, paging, {"project_id": project_id, **_asked(asked)})

    return api
