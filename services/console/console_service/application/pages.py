"""The console's report pages: which reports each page reads (with the viewer's token and the
filters chosen), and the tables, charts and summary figures it shows of them.

Every figure comes from the reporting service's answer for the same filter; the console only
names things (ids → names, terms → the reader's language), formats them and draws them. A
refusal of the API (403 `outside_line` …) is the page's answer, shown as such.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from console_service.adapters.identity import Viewer
from console_service.adapters.services import ApiError, Services
from console_service.application.directory import Directory, Names, Option, TerritoryOptions, territory_options
from console_service.domain import charts, i18n
from console_service.domain.charts import Chart
from console_service.domain.money import yuan_number
from console_service.domain.periods import PRESETS, Range, chosen_range, month_of, parse_day
from console_service.domain.tables import Column, Table

# Rows a page shows of a table; the CSV download has all of them.
PAGE_ROWS = 200
CSV_ROWS = 100_000
# Bars a chart shows (the largest).
CHART_BARS = 15


@dataclass
class Context:
    """One request of a page: who asks, in which language, with which filters."""

    viewer: Viewer
    services: Services
    directory: Directory
    lang: str
    today: date
    zone: ZoneInfo
    params: Mapping[str, str]
    rows: int = PAGE_ROWS
    # The page being built: kept so that a refusal of the API still shows the filters chosen.
    view: PageView | None = None

    def begin(self, page: str, reports: list[str]) -> PageView:
        self.view = PageView(page, reports, Filters())
        return self.view

    @property
    def filters(self) -> Filters:
        return self.view.filters if self.view is not None else Filters()

    def t(self, key: str, **values: object) -> str:
        return i18n.text(key, self.lang, **values)

    def term(self, kind: str, value: object) -> str:
        return i18n.term(kind, value, self.lang)

    def param(self, name: str, allowed: Sequence[str] | None = None, default: str = "") -> str:
        value = (self.params.get(name) or "").strip()
        if allowed is not None and value not in allowed:
            return default
        return value or default

    async def report(self, path: str, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        return await self.services.report(path, self.viewer.token, params, limit=self.rows)

    async def names(self, rows: Sequence[Mapping[str, Any]] = (), **kinds: str) -> Names:
        """The directory, read again if a row names an area, district, rep or SKU it lacks;
        `kinds` maps a kind (area, district, rep, sku) to the row field holding its id."""
        missing = [(kind, row.get(column)) for kind, column in kinds.items() for row in rows]
        return await self.directory.names(self.viewer.token, missing=missing)


@dataclass(frozen=True)
class Select:
    name: str
    label: str  # i18n key
    options: list[Option]
    value: str
    blank: str = ""  # label of the empty choice ("all"), none if empty


@dataclass
class Filters:
    range: Range | None = None
    as_of: date | None = None
    day: date | None = None  # one business date (an office's day)
    month: str | None = None
    territory: TerritoryOptions | None = None
    area_id: str = ""
    district_id: str = ""
    rep_id: str = ""
    selects: list[Select] = field(default_factory=list)
    presets: tuple[str, ...] = PRESETS


@dataclass(frozen=True)
class Card:
    label: str
    value: Any
    kind: str  # money | count | figure | percent
    detail: str = ""


@dataclass
class PageView:
    page: str
    reports: list[str]
    filters: Filters
    tables: list[Table] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    error: ApiError | None = None
    note: str = ""  # an i18n key said instead of the figures (nothing to show the viewer)

    @property
    def live_range(self) -> tuple[date | None, date | None]:
        if self.filters.range is not None:
            return self.filters.range.first, self.filters.range.last
        if self.filters.day is not None:
            return self.filters.day, self.filters.day
        return None, None


PageBuilder = Callable[[Context], Awaitable[PageView]]


# -- common pieces -------------------------------------------------------------------------


async def gather(*calls: Awaitable[Any]) -> list[Any]:
    """Run the API calls together; the first refusal is the page's answer."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


async def territory_filters(ctx: Context, filters: Filters) -> dict[str, str]:
    """The territory part of the form and the API parameters it gives."""
    names = await ctx.names()
    filters.territory = territory_options(ctx.viewer.actor, names)
    filters.area_id = ctx.param("area_id")
    filters.district_id = ctx.param("district_id")
    filters.rep_id = ctx.param("rep_id")
    return {"area_id": filters.area_id, "district_id": filters.district_id, "rep_id": filters.rep_id}


def date_filters(ctx: Context, filters: Filters) -> dict[str, str]:
    filters.range = chosen_range(ctx.param("preset"), ctx.param("from"), ctx.param("to"), ctx.today)
    return {"from": filters.range.first.isoformat(), "to": filters.range.last.isoformat()}


def select(ctx: Context, name: str, label: str, values: Sequence[str], default: str, term: str = "") -> Select:
    chosen = ctx.param(name, values, default)
    options = [Option(v, ctx.term(term, v) if term else ctx.t(v)) for v in values]
    return Select(name, label, options, chosen)


def group_name(ctx: Context, names: Names, dimension: str, value: Any) -> str:
    """The name of a group value of a report: a person, place, SKU, or a term."""
    match dimension:
        case "rep":
            return names.person(value) if value else ctx.t("none")
        case "district":
            return names.district(value)
        case "area":
            return names.area(value)
        case "sku":
            return names.sku(value)
    if value is None:
        return ctx.t("none")
    return ctx.term(dimension, value)


def yuan_values(values: Sequence[int | None]) -> list[float | None]:
    return [float(amount) if (amount := yuan_number(v)) is not None else None for v in values]


def percent_values(figures: Sequence[Mapping[str, Any] | None]) -> list[float | None]:
    out: list[float | None] = []
    for f in figures:
        value = f.get("value") if f else None
        out.append(round(float(value) * 100, 2) if value is not None else None)
    return out


def largest(rows: Sequence[dict[str, Any]], key: str, n: int = CHART_BARS) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r.get(key) or 0, reverse=True)[:n]


# -- KPI board (KPI看板) -----------------------------------------------------------------

KPI_FIGURES = (
    "planned_visit_completion",
    "visit_success",
    "suggested_order_adoption",
    "required_sku_distribution",
    "price_tag_compliance",
    "display_compliance",
    "cooler_compliance",
    "cooler_misuse",
    "on_time_delivery",
    "complaint_ack_48h",
)
KPI_GROUPS = ("rep", "district", "area")


async def kpi_board(ctx: Context) -> PageView:
    view = ctx.begin("kpi", ["kpi", "sales", "collections"])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = await territory_filters(ctx, filters)
    group = select(ctx, "group_by", "group_by", KPI_GROUPS, "rep", term="level")
    filters.selects.append(group)
    dim = group.value
    asked = {**dates, **territory}
    (board, board_total), (totals, _), (sales, _), (collected, _) = await gather(
        ctx.report("/reports/kpi", {**asked, "group_by": dim}),
        ctx.report("/reports/kpi", {**asked, "group_by": "total"}),
        ctx.report("/reports/sales", {**asked, "period": "total", "group_by": dim}),
        ctx.report("/reports/collections", {**asked, "group_by": dim}),
    )
    key = f"{dim}_id"
    names = await ctx.names([*board, *sales], **{dim: key})
    rows: dict[str, dict[str, Any]] = {}
    for item in board:
        rows[item[key]] = {**item, **item.get("kpis", {})}
    for item in sales:
        row = rows.setdefault(item[key], {key: item[key]})
        row["net_sales"] = item["amount_fen"]
    for item in collected:
        row = rows.setdefault(item[key], {key: item[key]})
        row["collected"] = item["collected_fen"]
    ordered = sorted(rows.values(), key=lambda r: (r.get(key) is None, r.get(key) or ""))
    for row in ordered:
        row["name"] = group_name(ctx, names, dim, row.get(key))
        if dim == "rep":
            row["district"] = names.district(row.get("district_id") or _staff_district(names, row.get(key)))
        for counter in ("planned", "done", "successful", "missed", "net_sales", "collected"):
            row.setdefault(counter, 0)
    columns = [Column("name", dim)]
    if dim == "rep":
        columns.append(Column("district", "district"))
    columns += [
        Column("planned", "planned", "count"),
        Column("done", "done", "count"),
        Column("successful", "successful", "count"),
        Column("missed", "missed", "count"),
        *(Column(f, f, "figure") for f in KPI_FIGURES),
        Column("net_sales", "net_sales", "money"),
        Column("collected", "collected", "money"),
    ]
    view.tables.append(Table("kpi", "kpi", columns, ordered, total=max(board_total, len(ordered)), key=key))

    total = totals[0] if totals else {}
    figures = total.get("kpis", {})
    view.cards = [
        Card("done", total.get("done", 0), "count", f"{ctx.t('planned')} {total.get('planned', 0)}"),
        Card("visit_success", figures.get("visit_success"), "figure"),
        Card("required_sku_distribution", figures.get("required_sku_distribution"), "figure"),
        Card("on_time_delivery", figures.get("on_time_delivery"), "figure"),
        Card("complaint_ack_48h", figures.get("complaint_ack_48h"), "figure"),
        Card("net_sales", sum(r["net_sales"] for r in ordered), "money"),
        Card("collected", sum(r["collected"] for r in ordered), "money"),
    ]
    shown = [r for r in ordered if r.get("visit_success") is not None][: CHART_BARS * 2]
    view.charts.append(
        Chart(
            "kpi-visit-success",
            charts.bars(
                ctx.t("chart_visit_success"),
                [r["name"] for r in shown],
                [(ctx.t("visit_success"), percent_values([r.get("visit_success") for r in shown]))],
                unit="percent",
                goal=85.0,
                goal_label=f"{ctx.t('goal')} 85%",
            ),
        )
    )
    top = largest(ordered, "net_sales")
    view.charts.append(
        Chart(
            "kpi-net-sales",
            charts.bars(
                ctx.t("chart_net_sales_by_rep"),
                [r["name"] for r in top],
                [
                    (ctx.t("net_sales"), yuan_values([r["net_sales"] for r in top])),
                    (ctx.t("collected"), yuan_values([r["collected"] for r in top])),
                ],
                unit="yuan",
            ),
        )
    )
    return view


def _staff_district(names: Names, staff_id: str | None) -> str | None:
    member = names.staff.get(staff_id or "")
    return member.district_id if member else None


# -- sales (日报, 周报, 月报) ----------------------------------------------------------------

SALES_DIMENSIONS = ("rep", "customer", "sku", "product_group", "district", "area")
SALES_PERIODS = ("day", "week", "month")


async def sales(ctx: Context) -> PageView:
    view = ctx.begin("sales", ["sales"])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = await territory_filters(ctx, filters)
    period = Select(
        "period",
        "granularity",
        [Option("day", ctx.t("day")), Option("week", ctx.t("week_period")), Option("month", ctx.t("month_period"))],
        ctx.param("period", SALES_PERIODS, "day"),
    )
    dim = select(ctx, "dim", "group_by", SALES_DIMENSIONS, "rep")
    filters.selects += [period, dim]
    asked = {**dates, **territory}
    (trend, _), (grouped, total) = await gather(
        ctx.report("/reports/sales", {**asked, "period": period.value}),
        ctx.report("/reports/sales", {**asked, "period": "total", "group_by": dim.value}),
    )
    key = dim.value if dim.value in ("sku", "product_group") else f"{dim.value}_id"
    names = await ctx.names(grouped, **({dim.value: key} if dim.value in ("rep", "district", "area", "sku") else {}))
    rows = sorted(grouped, key=lambda r: r.get("amount_fen") or 0, reverse=True)
    for row in rows:
        named = row.get(f"{dim.value}_name") if dim.value in ("rep", "customer", "district", "area") else None
        row["name"] = named or group_name(ctx, names, dim.value, row.get(key))
        if dim.value == "sku":
            row["group"] = ctx.term("product_group", names.skus.get(row.get("sku") or "", ("", ""))[1])
    columns = [Column("name", dim.value)]
    if dim.value == "sku":
        columns.append(Column("group", "product_group"))
    columns += [
        Column("quantity", "quantity", "count"),
        Column("gross_amount_fen", "gross_amount", "money"),
        Column("returned_amount_fen", "returned_amount", "money"),
        Column("amount_fen", "net_sales", "money"),
        Column("gift_quantity", "gift_quantity", "count"),
    ]
    view.tables.append(Table(f"sales-by-{dim.value}", "sales", columns, rows, total=total, key=key))
    periods = sorted(trend, key=lambda r: r["period_start"])
    trend_rows = [
        {
            "period_start": r["period_start"],
            "quantity": r["quantity"],
            "gross_amount_fen": r["gross_amount_fen"],
            "returned_amount_fen": r["returned_amount_fen"],
            "amount_fen": r["amount_fen"],
        }
        for r in periods
    ]
    view.tables.append(
        Table(
            f"sales-per-{period.value}",
            "chart_sales_trend",
            [
                Column("period_start", "period_start"),
                Column("quantity", "quantity", "count"),
                Column("gross_amount_fen", "gross_amount", "money"),
                Column("returned_amount_fen", "returned_amount", "money"),
                Column("amount_fen", "net_sales", "money"),
            ],
            trend_rows,
            key="period_start",
        )
    )
    view.cards = [
        Card("net_sales", sum(r["amount_fen"] for r in periods), "money"),
        Card("gross_amount", sum(r["gross_amount_fen"] for r in periods), "money"),
        Card("returned_amount", sum(r["returned_amount_fen"] for r in periods), "money"),
        Card("quantity", sum(r["quantity"] for r in periods), "count"),
    ]
    view.charts.append(
        Chart(
            "sales-trend",
            charts.trend(
                ctx.t("chart_sales_trend"),
                [r["period_start"] for r in periods],
                [(ctx.t("net_sales"), yuan_values([r["amount_fen"] for r in periods]))],
                unit="yuan",
            ),
        )
    )
    top = rows[:10]
    view.charts.append(
        Chart(
            "sales-top",
            charts.bars(
                f"{ctx.t('chart_top')} · {ctx.t(dim.value)}",
                [r["name"] for r in top],
                [(ctx.t("net_sales"), yuan_values([r["amount_fen"] for r in top]))],
                unit="yuan",
            ),
        )
    )
    return view


# -- target achievement (销售指标完成率) ----------------------------------------------------


async def targets(ctx: Context) -> PageView:
    view = ctx.begin("targets", ["target_achievement", "targets"])
    filters = view.filters
    filters.month = month_of(ctx.param("month"), ctx.today)
    level = Select(
        "level",
        "level",
        [Option(v, ctx.term("level", v)) for v in ("rep", "district", "area")],
        ctx.param("level", ("rep", "district", "area"), ""),
        blank="all",
    )
    filters.selects.append(level)
    rows, total = await ctx.report("/reports/targets", {"month": filters.month, "level": level.value})
    names = await ctx.names()
    for row in rows:
        row["level_name"] = ctx.term("level", row["level"])
        row["name"] = group_name(ctx, names, row["level"], row["subject_id"])
        row["group"] = ctx.term("product_group", row["product_group"]) if row.get("product_group") else ctx.t("all")
        row["progress"] = row["achievement"]
        row["on_track_text"] = ctx.t("on_track_yes") if row.get("on_track") else ctx.t("on_track_no")
    rows.sort(key=lambda r: (("area", "district", "rep").index(r["level"]), r["subject_id"], r["product_group"] or ""))
    view.tables.append(
        Table(
            "targets",
            "targets",
            [
                Column("level_name", "level"),
                Column("name", "subject"),
                Column("group", "product_group"),
                Column("target_fen", "target_amount", "money"),
                Column("actual_fen", "actual", "money"),
                Column("progress", "achievement", "progress"),
                Column("expected_by_now_fen", "expected_by_now", "money"),
                Column("on_track_text", "on_track"),
            ],
            rows,
            total=total,
            key="target_id",
        )
    )
    shown = [r for r in rows if not r.get("product_group")][: CHART_BARS * 2]
    expected = None
    if shown and shown[0]["target_fen"]:
        expected = round(shown[0]["expected_by_now_fen"] / shown[0]["target_fen"] * 100, 1)
    view.charts.append(
        Chart(
            "targets-achievement",
            charts.bars(
                ctx.t("achievement"),
                [f"{r['name']}" for r in shown],
                [(ctx.t("achievement"), percent_values([r["achievement"] for r in shown]))],
                unit="percent",
                goal=expected,
                goal_label=f"{ctx.t('expected_by_now')} {expected}%" if expected is not None else "",
            ),
        )
    )
    return view


# -- composition (客户构成分析) -------------------------------------------------------------

COMPOSITION_BY = ("grade", "product_group", "sku", "channel", "district", "area", "credit_rating")


async def composition(ctx: Context) -> PageView:
    view = ctx.begin("composition", ["composition"])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = await territory_filters(ctx, filters)
    by = select(ctx, "by", "group_by", COMPOSITION_BY, "grade")
    filters.selects.append(by)
    rows, total = await ctx.report("/reports/composition", {**dates, **territory, "by": by.value})
    key = f"{by.value}_id" if by.value in ("district", "area") else by.value
    names = await ctx.names(rows, **({by.value: key} if by.value in ("district", "area", "sku") else {}))
    for row in rows:
        row["name"] = group_name(ctx, names, by.value, row.get(key))
    rows.sort(key=lambda r: r.get("amount_fen") or 0, reverse=True)
    view.tables.append(
        Table(
            f"composition-by-{by.value}",
            "composition",
            [
                Column("name", by.value),
                Column("quantity", "quantity", "count"),
                Column("amount_fen", "net_sales", "money"),
                Column("amount_share", "amount_share", "percent"),
                Column("quantity_share", "quantity_share", "percent"),
            ],
            rows,
            total=total,
            key=key,
        )
    )
    view.charts.append(
        Chart(
            "composition-share",
            charts.pie(
                f"{ctx.t('net_sales')} · {ctx.t(by.value)}",
                [(r["name"], float(yuan_number(r["amount_fen"]) or 0)) for r in rows[:12] if r["amount_fen"] > 0],
                unit="yuan",
            ),
        )
    )
    return view


# -- receivables ageing (应收账款账龄) ------------------------------------------------------

AGEING = ("not_due", "d1_30", "d31_60", "d61_90", "d90_plus")
RECEIVABLE_GROUPS = ("customer", "rep", "district", "area")


async def receivables(ctx: Context) -> PageView:
    view = ctx.begin("receivables", ["receivables"])
    filters = view.filters
    filters.as_of = parse_day(ctx.param("as_of")) or ctx.today
    territory = await territory_filters(ctx, filters)
    group = select(ctx, "group_by", "group_by", RECEIVABLE_GROUPS, "customer")
    filters.selects.append(group)
    asked = {**territory, "as_of": filters.as_of.isoformat()}
    (rows, total), (totals, _) = await gather(
        ctx.report("/reports/receivables", {**asked, "group_by": group.value}),
        ctx.report("/reports/receivables", {**asked, "group_by": "total"}),
    )
    key = f"{group.value}_id"
    names = await ctx.names(rows, **({group.value: key} if group.value != "customer" else {"rep": "rep_id"}))
    for row in rows:
        row["name"] = row.get("customer_name") or group_name(ctx, names, group.value, row.get(key))
        if group.value == "customer":
            row["rep"] = names.person(row.get("rep_id"))
    rows.sort(key=lambda r: r.get("open_fen") or 0, reverse=True)
    columns = [Column("name", group.value)]
    if group.value == "customer":
        columns += [Column("rep", "rep"), Column("credit_limit_fen", "credit_limit", "money")]
    columns += [Column(b, b, "money") for b in AGEING]
    columns += [
        Column("open_fen", "open_amount", "money"),
        Column("past_due_fen", "past_due", "money"),
        Column("open_invoices", "open_invoices", "count"),
    ]
    view.tables.append(Table(f"receivables-by-{group.value}", "receivables", columns, rows, total=total, key=key))
    whole = totals[0] if totals else {}
    view.cards = [
        Card("open_amount", whole.get("open_fen", 0), "money"),
        Card("past_due", whole.get("past_due_fen", 0), "money"),
        Card("d90_plus", whole.get("d90_plus", 0), "money"),
        Card("open_invoices", whole.get("open_invoices", 0), "count"),
    ]
    view.charts.append(
        Chart(
            "receivables-ageing",
            charts.bars(
                ctx.t("chart_ageing"),
                [ctx.t(b) for b in AGEING],
                [(ctx.t("open_amount"), yuan_values([whole.get(b, 0) for b in AGEING]))],
                unit="yuan",
            ),
        )
    )
    top = rows[:CHART_BARS]
    view.charts.append(
        Chart(
            "receivables-by-group",
            charts.bars(
                f"{ctx.t('open_amount')} · {ctx.t(group.value)}",
                [r["name"] for r in top],
                [(ctx.t(b), yuan_values([r.get(b, 0) for r in top])) for b in AGEING],
                unit="yuan",
                stacked=True,
            ),
        )
    )
    return view


# -- returns (退货) ----------------------------------------------------------------------

RETURN_GROUPS = ("reason", "resolution", "reason,resolution", "sku", "product_group", "status", "scope", "rep")


async def returns(ctx: Context) -> PageView:
    view = ctx.begin("returns", ["returns"])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = await territory_filters(ctx, filters)
    group = Select(
        "group_by",
        "group_by",
        [Option(v, " + ".join(ctx.t(p) for p in v.split(","))) for v in RETURN_GROUPS],
        ctx.param("group_by", RETURN_GROUPS, "reason"),
    )
    filters.selects.append(group)
    dims = group.value.split(",")
    rows, total = await ctx.report("/reports/returns", {**dates, **territory, "group_by": group.value})
    names = await ctx.names(rows, **{d: d for d in dims if d in ("rep", "sku")})
    for row in rows:
        for d in dims:
            row[f"{d}_name"] = group_name(ctx, names, d, row.get(d))
    rows.sort(key=lambda r: r.get("amount_fen") or 0, reverse=True)
    columns = [Column(f"{d}_name", d) for d in dims] + [
        Column("returns", "returns_count", "count"),
        Column("approved", "approved", "count"),
        Column("rejected", "rejected", "count"),
        Column("resolved", "resolved", "count"),
        Column("quantity", "quantity", "count"),
        Column("amount_fen", "amount", "money"),
        Column("resolved_amount_fen", "resolved_amount", "money"),
    ]
    view.tables.append(Table("returns-by-" + "-".join(dims), "returns", columns, rows, total=total))
    view.cards = [
        Card("returns_count", sum(r["returns"] for r in rows), "count"),
        Card("amount", sum(r["amount_fen"] for r in rows), "money"),
        Card("approved", sum(r["approved"] for r in rows), "count"),
        Card("rejected", sum(r["rejected"] for r in rows), "count"),
    ]
    first = dims[0]
    by_first: dict[str, int] = {}
    for row in rows:
        by_first[row[f"{first}_name"]] = by_first.get(row[f"{first}_name"], 0) + (row.get("amount_fen") or 0)
    view.charts.append(
        Chart(
            "returns-share",
            charts.pie(
                f"{ctx.t('amount')} · {ctx.t(first)}",
                [(name, float(yuan_number(fen) or 0)) for name, fen in by_first.items() if fen > 0],
                unit="yuan",
            ),
        )
    )
    return view


# -- complaints (投诉) -------------------------------------------------------------------

COMPLAINT_GROUPS = ("category", "severity", "channel", "department")


async def complaints(ctx: Context) -> PageView:
    view = ctx.begin("complaints", ["complaints"])
    filters = view.filters
    dates = date_filters(ctx, filters)
    territory = await territory_filters(ctx, filters)
    group = select(ctx, "group_by", "group_by", COMPLAINT_GROUPS, "category")
    filters.selects.append(group)
    rows, total = await ctx.report("/reports/complaints", {**dates, **territory, "group_by": group.value})
    kind = "complaint_channel" if group.value == "channel" else group.value
    for row in rows:
        row["name"] = ctx.term(kind, row.get(group.value)) if row.get(group.value) else ctx.t("none")
    rows.sort(key=lambda r: r.get("received") or 0, reverse=True)
    view.tables.append(
        Table(
            f"complaints-by-{group.value}",
            "complaints",
            [
                Column("name", group.value),
                Column("received", "received", "count"),
                Column("acknowledged", "acknowledged", "count"),
                Column("acknowledged_within_sla", "acknowledged_within_sla", "count"),
                Column("breached", "breached", "count"),
                Column("awaiting_acknowledgement", "awaiting_acknowledgement", "count"),
                Column("resolved", "resolved", "count"),
                Column("closed", "closed", "count"),
                Column("customer_misuse", "customer_misuse", "count"),
                Column("sla_compliance", "sla_compliance", "figure"),
            ],
            rows,
            total=total,
            key=group.value,
        )
    )
    received = sum(r["received"] for r in rows)
    within = sum(r["acknowledged_within_sla"] for r in rows)
    judged = sum(r["sla_compliance"]["denominator"] for r in rows)
    view.cards = [
        Card("received", received, "count"),
        Card("awaiting_acknowledgement", sum(r["awaiting_acknowledgement"] for r in rows), "count"),
        Card("breached", sum(r["breached"] for r in rows), "count"),
        Card(
            "sla_compliance",
            {
                "value": round(within / judged, 4) if judged else None,
                "numerator": within,
                "denominator": judged,
                "goal": 1.0,
                "met": (within == judged) if judged else None,
            },
            "figure",
        ),
    ]
    view.charts.append(
        Chart(
            "complaints-sla",
            charts.bars(
                ctx.t("chart_complaints"),
                [r["name"] for r in rows],
                [
                    (ctx.t("acknowledged_within_sla"), [r["acknowledged_within_sla"] for r in rows]),
                    (ctx.t("breached"), [r["breached"] for r in rows]),
                    (ctx.t("awaiting_acknowledgement"), [r["awaiting_acknowledgement"] for r in rows]),
                    (
                        ctx.t("acknowledged"),
                        [r["acknowledged"] - r["acknowledged_within_sla"] for r in rows],
                    ),
                ],
                unit="count",
                stacked=True,
            ),
        )
    )
    return view


# -- satisfaction (满意度调查) ------------------------------------------------------------

SATISFACTION_GROUPS = ("", "rep", "district", "area")


async def satisfaction(ctx: Context) -> PageView:
    view = ctx.begin("satisfaction", ["satisfaction"])
    filters = view.filters
    territory = await territory_filters(ctx, filters)
    group = Select(
        "group_by",
        "group_by",
        [Option(v, ctx.term("level", v)) for v in SATISFACTION_GROUPS if v],
        ctx.param("group_by", SATISFACTION_GROUPS, ""),
        blank="total",
    )
    filters.selects.append(group)
    rows, total = await ctx.report("/reports/satisfaction", {**territory, "group_by": group.value})
    key = f"{group.value}_id" if group.value else ""
    names = await ctx.names(rows, **({group.value: key} if group.value else {}))
    for row in rows:
        row["goal"] = row["satisfaction"]["goal"]
        if key:
            row["name"] = group_name(ctx, names, group.value, row.get(key))
    rows.sort(key=lambda r: (r["period"], r.get(key, "") or ""))
    columns = [Column("period", "half_year")]
    if key:
        columns.append(Column("name", group.value))
    columns += [
        Column("surveys", "surveys", "count"),
        Column("satisfied", "satisfied", "count"),
        Column("satisfaction", "satisfaction_rate", "figure"),
        Column("goal", "goal", "percent"),
    ]
    view.tables.append(Table("satisfaction", "satisfaction", columns, rows, total=total, key="period"))
    if not key:
        view.charts.append(
            Chart(
                "satisfaction-trend",
                charts.trend(
                    ctx.t("chart_satisfaction"),
                    [r["period"] for r in rows],
                    [
                        (ctx.t("satisfaction_rate"), percent_values([r["satisfaction"] for r in rows])),
                        (ctx.t("goal"), [round(r["goal"] * 100, 2) for r in rows]),
                    ],
                    unit="percent",
                    step_goal=True,
                ),
            )
        )
    else:
        shown = rows[-CHART_BARS * 2 :]
        view.charts.append(
            Chart(
                "satisfaction-by-group",
                charts.bars(
                    ctx.t("chart_satisfaction"),
                    [f"{r['name']} {r['period']}" for r in shown],
                    [(ctx.t("satisfaction_rate"), percent_values([r["satisfaction"] for r in shown]))],
                    unit="percent",
                    goal=round(shown[-1]["goal"] * 100, 2) if shown else None,
                    goal_label=ctx.t("goal"),
                ),
            )
        )
    return view


# -- customer base (客户构成) -------------------------------------------------------------

BASE_GROUPS = ("total", "rep", "district", "area")
BASE_STATES = ("new", "active", "dormant", "lost", "prospects")


async def customer_base(ctx: Context) -> PageView:
    view = ctx.begin("customer_base", ["customer_base"])
    filters = view.filters
    filters.range = chosen_range(ctx.param("preset"), ctx.param("from"), ctx.param("to"), ctx.today)
    territory = await territory_filters(ctx, filters)
    group = select(ctx, "group_by", "group_by", BASE_GROUPS, "total")
    filters.selects.append(group)
    dormant = ctx.param("dormant_days")
    dormant_days = dormant if dormant.isdigit() and 1 <= int(dormant) <= 3650 else "60"
    filters.selects.append(
        Select("dormant_days", "dormant_days", [Option(d, d) for d in ("30", "60", "90", "180")], dormant_days)
    )
    rows, total = await ctx.report(
        "/reports/customer-base",
        {
            **territory,
            "from": filters.range.first.isoformat(),
            "as_of": filters.range.last.isoformat(),
            "group_by": group.value,
            "dormant_days": dormant_days,
        },
    )
    key = f"{group.value}_id" if group.value != "total" else ""
    names = await ctx.names(rows, **({group.value: key} if key else {}))
    for row in rows:
        row["name"] = group_name(ctx, names, group.value, row.get(key)) if key else ctx.t("total")
    columns = [Column("name", group.value if key else "total")] + [Column(s, s, "count") for s in BASE_STATES]
    view.tables.append(Table("customer-base", "customer_base", columns, rows, total=total, key=key or "name"))
    whole = {s: sum(r.get(s) or 0 for r in rows) for s in BASE_STATES}
    view.cards = [Card(s, whole[s], "count") for s in BASE_STATES]
    top = largest(rows, "active", CHART_BARS * 2)
    view.charts.append(
        Chart(
            "customer-base",
            charts.bars(
                ctx.t("chart_customer_base"),
                [r["name"] for r in top],
                [(ctx.t(s), [r.get(s) or 0 for r in top]) for s in ("active", "dormant", "lost", "prospects")],
                unit="count",
                stacked=True,
            ),
        )
    )
    return view


PAGES: dict[str, PageBuilder] = {
    "kpi": kpi_board,
    "sales": sales,
    "targets": targets,
    "composition": composition,
    "receivables": receivables,
    "returns": returns,
    "complaints": complaints,
    "satisfaction": satisfaction,
    "customer_base": customer_base,
}
