"""Report queries over HTTP: filters, the reader's line of sight, pagination, CSV export.

Every report answers `?format=csv` with the same rows as CSV (nested figures flattened to
`<kpi>.value`, `<kpi>.goal` … columns). A filter outside the reader's line is refused (403),
never narrowed silently.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

import orjson
from fastapi import APIRouter, Depends
from fastapi import Query as Param
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from reporting_service.adapters.rows import ROWS, Row
from reporting_service.application.rebuilds import rebuilds_of
from reporting_service.domain.kpi import DEFAULT_DORMANT_DAYS
from reporting_service.domain.reports import CHANGE_SUBJECTS, REPORTS
from reporting_service.queries import (
    customers,
    field,
    receivables,
    returns,
    sales,
    service_quality,
)
from reporting_service.queries.common import (
    Page,
    ReportQuery,
    Result,
    Territory,
    check_within,
    reading_reports,
    scope_of,
)
from salesplatform.clock import business_date
from salesplatform.commands import invalid
from salesplatform.csv_export import csv_text
from salesplatform.errors import DomainError
from salesplatform.events import Actor, Role
from salesplatform.inputs import Day, Month, Offset
from salesplatform.projections import RebuildRunning
from salesplatform.service import Runtime, http_actor, http_runtime, operator_actor

JSON_PAGE = 100
JSON_PAGE_MAX = 1000
CSV_ROWS_MAX = 100_000

Format = Literal["json", "csv"]
ID = Annotated[str | None, Param(min_length=1, max_length=100)]
From = Annotated[
    Day | None, Param(alias="from", description="first business date (default: first of the month of `to`)")
]
To = Annotated[Day | None, Param(description="last business date (default: today, company time zone)")]


RowT = TypeVar("RowT", bound=Row)


class ReportPage(BaseModel, Generic[RowT]):
    """One page of a report as JSON (`?format=csv`: the same rows as CSV)."""

    report: str
    definition: str | None = Field(description="what the report counts, word for word as in the README")
    filters: dict[str, Any] = Field(description="the filters the page was made with")
    total: int = Field(description="rows of the whole report")
    limit: int
    offset: int
    items: list[RowT] = Field(description="the rows")


def report_responses(report: str) -> dict[int | str, dict[str, Any]]:
    """The documented answer of a report route (they answer with a Response, JSON or CSV): a
    page of the report's own rows."""
    return {200: {"model": ReportPage[ROWS[report]]}}  # type: ignore[valid-type]


class Paging:
    """`limit` and `offset`; CSV exports up to 100,000 rows at once by default."""

    def __init__(
        self,
        format: Annotated[Format, Param(description="json (default) or csv")] = "json",
        limit: Annotated[
            int | None, Param(ge=1, le=CSV_ROWS_MAX, description="rows per page (JSON: at most 1000)")
        ] = None,
        offset: Offset = 0,
    ) -> None:
        if format == "json" and limit is not None and limit > JSON_PAGE_MAX:
            raise invalid(
                "limit", f"a JSON page has at most {JSON_PAGE_MAX} rows; use format=csv for more", "less_than_equal"
            )
        self.format = format
        self.page = Page(limit or (JSON_PAGE if format == "json" else CSV_ROWS_MAX), offset)


def group_list(
    value: str | None, allowed: set[str] | dict[str, Any], default: list[str], field: str = "group_by"
) -> list[str]:
    if value is None:
        return default
    items = [v.strip() for v in value.split(",") if v.strip()]
    wrong = [v for v in items if v not in allowed]
    if wrong:
        raise invalid(field, f"unknown {', '.join(wrong)}; choose from {', '.join(sorted(allowed))}", "enum")
    return list(dict.fromkeys(items))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _flatten(item: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in item.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = "|".join(str(v) for v in value)
        elif isinstance(value, date):
            out[name] = value.isoformat()
        else:
            out[name] = "" if value is None else value
    return out


def respond(report: str, result: Result, paging: Paging, filters: dict[str, Any]) -> Response:
    items = [_plain(i) for i in result.items]
    if paging.format == "csv":
        rows = [_flatten(i) for i in items]
        columns = list(dict.fromkeys(k for row in rows for k in row))
        return Response(
            csv_text(columns, ([row.get(c) for c in columns] for row in rows)),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{report}.csv"',
                "X-Total-Count": str(result.total),
            },
        )
    body = {
        "report": report,
        "definition": REPORTS[report].text if report in REPORTS else None,
        "filters": {k: v for k, v in filters.items() if v is not None},
        "total": result.total,
        "limit": paging.page.limit,
        "offset": paging.page.offset,
        "items": items,
    }
    return Response(orjson.dumps(body, default=str), media_type="application/json")


Served = Annotated[Runtime, Depends(http_runtime)]
Reader = Annotated[Actor, Depends(http_actor)]
Paged = Annotated[Paging, Depends()]


def today(runtime: Runtime) -> date:
    """The business date now, in the company time zone."""
    return business_date(runtime.clock.now(), runtime.settings.timezone)


def date_range(runtime: Runtime, start: date | None, end: date | None) -> tuple[date, date]:
    """A report's range of business dates: `end` defaults to today, `start` to the first of
    the month of `end`; a range that starts after it ends is refused."""
    end = end or today(runtime)
    start = start or end.replace(day=1)
    if start > end:
        raise invalid("from", "the range starts after it ends", "date_range")
    return start, end


def described(name: str, tag: str) -> dict[str, Any]:
    """A report route's summary, description, tag and documented answer."""
    d = REPORTS[name]
    return {"summary": d.title, "description": d.text, "tags": [tag], "responses": report_responses(name)}


class ReportRequest:
    """A request for a report (FastAPI dependency): the runtime that answers it, the reader
    and the page asked for."""

    def __init__(self, runtime: Served, actor: Reader, paging: Paged) -> None:
        self.runtime = runtime
        self.actor = actor
        self.paging = paging

    async def answer(
        self,
        report: str,
        asked: Territory,
        filters: dict[str, Any],
        query: ReportQuery,
        *,
        extra_roles: frozenset[Role] = frozenset(),
    ) -> Response:
        """A page of `report` (JSON or CSV): its query runs once the filters `asked` are checked
        to lie within the reader's line of sight (403 otherwise)."""
        scope = scope_of(self.actor, extra_roles=extra_roles)
        async with reading_reports(self.runtime.pool) as (conn, schemas):
            await check_within(conn, schemas, scope, asked)
            result = await query(conn, schemas, scope)
        return respond(report, result, self.paging, filters)


Requested = Annotated[ReportRequest, Depends()]


def report_route(name: str) -> dict[str, Any]:
    return described(name, "reports")


routes = APIRouter()


@routes.get("/reports", tags=["reports"], summary="Every report and what it counts")
async def list_reports(runtime: Served, actor: Reader) -> dict[str, Any]:
    return {
        "reports": {name: {"title": d.title, "definition": d.text} for name, d in REPORTS.items()},
        "changes": {"subject": runtime.topology.subject("changed", "<report>"), "reports": list(CHANGE_SUBJECTS)},
    }


@routes.get("/reports/sales", **report_route("sales"))
async def sales_report(
    req: Requested,
    start: From = None,
    to: To = None,
    period: Annotated[sales.Period, Param()] = "day",
    group_by: Annotated[
        str | None, Param(description="comma list of rep, customer, sku, product_group, district, area")
    ] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
    sku: ID = None,
    product_group: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    groups = group_list(group_by, sales.SALES_DIMENSIONS, [])
    asked = Territory(rep_id, district_id, area_id, customer_id)
    return await req.answer(
        "sales",
        asked,
        {
            "from": first,
            "to": last,
            "period": period,
            "group_by": groups,
            **asked_filters(asked),
            "sku": sku,
            "product_group": product_group,
        },
        lambda c, s, sc: sales.sales(
            c,
            s,
            sc,
            asked,
            start=first,
            end=last,
            period=period,
            group_by=groups,
            sku=sku,
            product_group=product_group,
            page=req.paging.page,
        ),
    )


@routes.get("/reports/composition", **report_route("composition"))
async def composition_report(
    req: Requested,
    start: From = None,
    to: To = None,
    by: Annotated[
        Literal["grade", "channel", "credit_rating", "product_group", "sku", "district", "area"], Param()
    ] = "grade",
    classification: Annotated[
        Literal["at_sale", "current"],
        Param(
            description="grade, channel and credit rating: those in force on the sale's day (default),"
            " or the customer's current classification"
        ),
    ] = "at_sale",
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    asked = Territory(rep_id, district_id, area_id)
    return await req.answer(
        "composition",
        asked,
        {"from": first, "to": last, "by": by, "classification": classification, **asked_filters(asked)},
        lambda c, s, sc: sales.composition(
            c, s, sc, asked, start=first, end=last, by=by, classification=classification, page=req.paging.page
        ),
    )


@routes.get("/reports/credit", **report_route("credit"))
async def credit_report(
    req: Requested,
    start: From = None,
    to: To = None,
    as_of: Annotated[Day | None, Param(description="day of the open receivables (default: `to`)")] = None,
    group_by: Annotated[Literal["credit_rating", "customer"], Param()] = "credit_rating",
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    at = as_of or last
    asked = Territory(rep_id, district_id, area_id, customer_id)
    return await req.answer(
        "credit",
        asked,
        {"from": first, "to": last, "as_of": at, "group_by": group_by, **asked_filters(asked)},
        lambda c, s, sc: receivables.credit(
            c, s, sc, asked, start=first, end=last, as_of=at, group_by=group_by, page=req.paging.page
        ),
    )


@routes.get("/reports/kpi", **report_route("kpi"))
async def kpi_report(
    req: Requested,
    start: From = None,
    to: To = None,
    group_by: Annotated[field.Grouping, Param()] = "rep",
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    asked = Territory(rep_id, district_id, area_id)
    return await req.answer(
        "kpi",
        asked,
        {"from": first, "to": last, "group_by": group_by, **asked_filters(asked)},
        lambda c, s, sc: field.kpi_board(
            c, s, sc, asked, start=first, end=last, group_by=group_by, page=req.paging.page
        ),
    )


@routes.get("/reports/targets", **report_route("target_achievement"))
async def targets_report(
    req: Requested,
    month: Annotated[Month | None, Param(description="YYYY-MM, a year 1900–2999 (default: this month)")] = None,
    as_of: Annotated[Day | None, Param(description="month to date up to this day (default: today)")] = None,
    level: Annotated[Literal["rep", "district", "area"] | None, Param()] = None,
    subject_id: Annotated[str | None, Param(min_length=1, max_length=100, description="needs `level`")] = None,
    product_group: ID = None,
) -> Response:
    at = as_of or today(req.runtime)
    which = month or f"{at.year:04d}-{at.month:02d}"
    if subject_id is not None and level is None:
        raise invalid("subject_id", "say which level the subject is: level=rep|district|area", "missing_level")
    # A subject outside the reader's line is refused like any other filter.
    asked = Territory(**({f"{level}_id": subject_id} if subject_id else {}))
    return await req.answer(
        "target_achievement",
        asked,
        {"month": which, "as_of": at, "level": level, "subject_id": subject_id, "product_group": product_group},
        lambda c, s, sc: sales.target_achievement(
            c,
            s,
            sc,
            month=which,
            as_of=at,
            level=level,
            subject_id=subject_id,
            product_group=product_group,
            page=req.paging.page,
        ),
    )


@routes.get("/reports/receivables", **report_route("receivables"))
async def receivables_report(
    req: Requested,
    as_of: Annotated[Day | None, Param(description="default: today")] = None,
    group_by: Annotated[Literal["customer", "rep", "district", "area", "total"], Param()] = "customer",
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
) -> Response:
    at = as_of or today(req.runtime)
    asked = Territory(rep_id, district_id, area_id, customer_id)
    return await req.answer(
        "receivables",
        asked,
        {"as_of": at, "group_by": group_by, **asked_filters(asked)},
        lambda c, s, sc: receivables.ageing(c, s, sc, asked, as_of=at, group_by=group_by, page=req.paging.page),
    )


@routes.get("/reports/collections", **report_route("collections"))
async def collections_report(
    req: Requested,
    start: From = None,
    to: To = None,
    group_by: Annotated[Literal["customer", "rep", "district", "area", "total"], Param()] = "customer",
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    asked = Territory(rep_id, district_id, area_id, customer_id)
    return await req.answer(
        "collections",
        asked,
        {"from": first, "to": last, "group_by": group_by, **asked_filters(asked)},
        lambda c, s, sc: receivables.collections(
            c, s, sc, asked, start=first, end=last, group_by=group_by, page=req.paging.page
        ),
    )


@routes.get("/reports/returns", **report_route("returns"))
async def returns_report(
    req: Requested,
    start: From = None,
    to: To = None,
    group_by: Annotated[
        str | None,
        Param(description="comma list of reason, sku, product_group, resolution, scope, status, rep, district, area"),
    ] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    groups = group_list(group_by, returns.RETURN_DIMENSIONS, ["reason"])
    asked = Territory(rep_id, district_id, area_id, customer_id)
    # Inspectors re-inspect returned goods, so they read the returns report (all of it).
    return await req.answer(
        "returns",
        asked,
        {"from": first, "to": last, "group_by": groups, **asked_filters(asked)},
        lambda c, s, sc: returns.returns(c, s, sc, asked, start=first, end=last, group_by=groups, page=req.paging.page),
        extra_roles=frozenset({Role.inspector}),
    )


@routes.get("/reports/complaints", **report_route("complaints"))
async def complaints_report(
    req: Requested,
    start: From = None,
    to: To = None,
    group_by: Annotated[str | None, Param(description="comma list of category, severity, channel, department")] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, to)
    groups = group_list(group_by, service_quality.COMPLAINT_DIMENSIONS, ["category"])
    asked = Territory(rep_id, district_id, area_id, customer_id)
    return await req.answer(
        "complaints",
        asked,
        {"from": first, "to": last, "group_by": groups, **asked_filters(asked)},
        lambda c, s, sc: service_quality.complaints(
            c, s, sc, asked, start=first, end=last, group_by=groups, page=req.paging.page
        ),
    )


@routes.get("/reports/promotions", **report_route("promotions"))
async def promotions_report(
    req: Requested,
    promotion_id: ID = None,
    active_on: Annotated[Day | None, Param(description="only promotions running on this day")] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    asked = Territory(rep_id, district_id, area_id)
    return await req.answer(
        "promotions",
        asked,
        {"promotion_id": promotion_id, "active_on": active_on, **asked_filters(asked)},
        lambda c, s, sc: sales.promotions(
            c, s, sc, asked, promotion_id=promotion_id, active_on=active_on, page=req.paging.page
        ),
    )


@routes.get("/reports/satisfaction", **report_route("satisfaction"))
async def satisfaction_report(
    req: Requested,
    from_period: Annotated[str | None, Param(pattern=r"^[0-9]{4}H[12]$")] = None,
    to_period: Annotated[str | None, Param(pattern=r"^[0-9]{4}H[12]$")] = None,
    group_by: Annotated[
        str | None, Param(description="comma list of rep, district, area (the period is always a group)")
    ] = None,
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
    customer_id: ID = None,
) -> Response:
    groups = group_list(group_by, service_quality.SATISFACTION_DIMENSIONS, [])
    asked = Territory(rep_id, district_id, area_id, customer_id)
    return await req.answer(
        "satisfaction",
        asked,
        {"from_period": from_period, "to_period": to_period, "group_by": groups, **asked_filters(asked)},
        lambda c, s, sc: service_quality.satisfaction(
            c, s, sc, asked, from_period=from_period, to_period=to_period, group_by=groups, page=req.paging.page
        ),
    )


@routes.get("/reports/customer-base", **report_route("customer_base"))
async def customer_base_report(
    req: Requested,
    start: From = None,
    as_of: Annotated[Day | None, Param(description="default: today")] = None,
    dormant_days: Annotated[int, Param(ge=1, le=3650)] = DEFAULT_DORMANT_DAYS,
    group_by: Annotated[Literal["total", "rep", "district", "area"], Param()] = "total",
    rep_id: ID = None,
    district_id: ID = None,
    area_id: ID = None,
) -> Response:
    first, last = date_range(req.runtime, start, as_of)
    asked = Territory(rep_id, district_id, area_id)
    return await req.answer(
        "customer_base",
        asked,
        {"from": first, "as_of": last, "dormant_days": dormant_days, "group_by": group_by, **asked_filters(asked)},
        lambda c, s, sc: customers.customer_base(
            c, s, sc, asked, start=first, end=last, dormant_days=dormant_days, group_by=group_by, page=req.paging.page
        ),
    )


@routes.get("/schemas/changes", tags=["contract"], summary="The change notices report consumers subscribe to")
async def change_schema(runtime: Served) -> dict[str, Any]:
    return {
        "subject": runtime.topology.subject("changed", "<report>"),
        "transport": "core NATS (at most once; re-read the report after a reconnect)",
        "reports": list(CHANGE_SUBJECTS),
        "body": {
            "report": "the report name (the last subject token)",
            "projection": "the read model that changed, or rebuild-all",
            "changes": "list of keys that changed: period (YYYY-MM-DD) or month (YYYY-MM), "
            "rep_id, district_id, area_id, customer_id, category, reason, "
            "promotion_id, level, subject_id, as fit the report",
            "rebuilt": "a change {rebuilt: true} after a rebuild switched: re-read everything",
        },
    }


@routes.post(
    "/admin/rebuild-all",
    tags=["operations"],
    status_code=202,
    summary="Rebuild every report projection in one pass over the log, then switch",
)
async def rebuild_all(
    runtime: Served,
    actor: Annotated[Actor, Depends(operator_actor)],
    projections: Annotated[str | None, Param(description="comma list of projection names (default: all)")] = None,
) -> Any:
    """Reads this service's own copy of the log once and builds a new generation of each
    projection while the current ones keep answering; then switches all of them in one
    transaction. Progress: GET /admin/projections (`rebuilds`)."""
    rebuilds = rebuilds_of(runtime)
    try:
        chosen = rebuilds.projections([n.strip() for n in projections.split(",") if n.strip()] if projections else None)
    except LookupError as exc:
        raise invalid("projections", f"unknown projection {exc}", "enum") from None
    try:
        await rebuilds.start(chosen)
    except RebuildRunning as exc:
        raise DomainError(str(exc), code="rebuild_running") from None
    return JSONResponse({"status": "started", "projections": [p.name for p in chosen]}, status_code=202)


def asked_filters(asked: Territory) -> dict[str, Any]:
    return {
        "rep_id": asked.rep_id,
        "district_id": asked.district_id,
        "area_id": asked.area_id,
        "customer_id": asked.customer_id,
    }
