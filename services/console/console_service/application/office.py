"""The sales offices' pages (案场): the office's board of the day, the unit inventory with the
day's sales control (销控), and the office reports (registers, daily close-out 日清, inventory).

The board and the registers come from the customer service's reception, the units from the
orders service's sales control, the reports from the reporting service; each is read with the
viewer's token, and whether the viewer may see an office is the services' decision (a project
outside the viewer's line is answered with their 403, shown as such).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from console_service.application.directory import Names, Option
from console_service.application.pages import (
    CHART_BARS,
    Card,
    Context,
    PageBuilder,
    PageView,
    Select,
    date_filters,
    gather,
)
from console_service.domain import charts
from console_service.domain.charts import Chart
from console_service.domain.money import yuan_number
from console_service.domain.periods import parse_day
from console_service.domain.tables import Column, Table
from salesplatform.events import Role

# Lines and leads the customer service gives in one page (its limit).
CUSTOMER_PAGE = 500
# Leads read for the follow-ups due: all of an office's open leads, so the soonest deadlines are
# among them whatever order the service lists them in.
OPEN_LEADS = 10_000
UNIT_STATUSES = ("unreleased", "available", "reserved", "subscribed", "contracted", "mortgage", "handed_over")
# A unit contracted, in its mortgage or handed over is sold (已售).
SOLD = ("contracted", "mortgage", "handed_over")


async def project_choice(ctx: Context) -> tuple[Select, dict[str, Any] | None]:
    """The office to show: the one asked for, else the first the viewer's line holds. A project
    asked for outside the viewer's line is still asked of the services (they refuse it)."""
    offices = (await ctx.services.get("customer", "/offices", ctx.viewer.token)).get("items", [])
    ids = [o["project_id"] for o in offices]
    asked = ctx.param("project_id")
    chosen = asked or (ids[0] if ids else "")
    options = [Option(o["project_id"], o["name"]) for o in offices]
    if chosen and chosen not in ids:
        options.append(Option(chosen, chosen))
    office = next((o for o in offices if o["project_id"] == chosen), None)
    return Select("project_id", "project", options, chosen), office


def local_time(ctx: Context, value: str | None) -> str:
    """An API timestamp as the company's wall-clock time."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(ctx.zone).strftime("%Y-%m-%d %H:%M")


def rep_name(ctx: Context, names: Names, row: Mapping[str, Any], key: str = "rep_id") -> str:
    return row.get("rep_name") or (names.person(row.get(key)) if row.get(key) else ctx.t("none"))


async def listing(
    ctx: Context, service: str, path: str, params: Mapping[str, Any], rows: int | None = None
) -> dict[str, Any]:
    """A list query's `items` up to the rows the page shows (all of them for a CSV) or `rows`,
    paging through the service's pages, and its `total`."""
    wanted = rows or ctx.rows
    items: list[dict[str, Any]] = []
    while True:
        size = min(CUSTOMER_PAGE, wanted - len(items))
        body = await ctx.services.get(service, path, ctx.viewer.token, {**params, "limit": size, "offset": len(items)})
        items.extend(body.get("items", []))
        total = int(body.get("total", len(items)))
        if not body.get("items") or len(items) >= min(total, wanted):
            return {"items": items, "total": total}


def count_of(rows: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key) or 0) for r in rows)


# -- the office's board (案场看板) -----------------------------------------------------------


async def office(ctx: Context) -> PageView:
    view = ctx.begin("office", ["office_leads", "performance_warnings"])
    filters = view.filters
    project, chosen = await project_choice(ctx)
    filters.selects.append(project)
    filters.day = parse_day(ctx.param("date")) or ctx.today
    day = filters.day.isoformat()
    if not project.value:
        view.note = "no_office"
        return view
    path = f"/offices/{project.value}"
    token = ctx.viewer.token
    warnings_asked = {"month": f"{filters.day:%Y-%m}"}
    if chosen is not None and ctx.viewer.actor.role is not Role.rep:
        # The office's district; a rep reads only their own warnings, which the report gives
        # them unasked (a district filter is wider than a rep's line, so it would be refused).
        warnings_asked["district_id"] = chosen["district_id"]
    board, walk_ins, calls, walk_in_leads, phone_leads, (warnings, _) = await gather(
        ctx.services.get("customer", f"{path}/board", token, {"date": day}),
        listing(ctx, "customer", f"{path}/registers/walk_in", {"date_from": day, "date_to": day}),
        listing(ctx, "customer", f"{path}/registers/phone", {"date_from": day, "date_to": day}),
        listing(ctx, "customer", "/leads", {"project_id": project.value, "stage": "walk_in"}, OPEN_LEADS),
        listing(ctx, "customer", "/leads", {"project_id": project.value, "stage": "phone"}, OPEN_LEADS),
        ctx.report("/reports/performance-warnings", warnings_asked),
    )
    names = await ctx.names([*board["reps"], *warnings], rep="rep_id")

    queue_place = {rep: n for n, rep in enumerate(board.get("queue", []), start=1)}
    reps = []
    for r in board["reps"]:
        reps.append(
            {
                "rep_id": r["rep_id"],
                "name": rep_name(ctx, names, r),
                "in_turn": queue_place.get(r["rep_id"]),
                "next": r["rep_id"] == board.get("next_in_turn"),
                "signed_in_at": local_time(ctx, r["signed_in_at"]),
                "signed_out_at": local_time(ctx, r["signed_out_at"]),
                "serving": ctx.t("serving_customer") if r["serving_lead_id"] else "",
                "serving_since": local_time(ctx, r["serving_since"]),
                "turns": r["turns"],
                "own_customers": r["own_customers"],
                "duty_receptions": r["duty_receptions"],
            }
        )
    reps.sort(key=lambda r: (r["in_turn"] is None, r["in_turn"] or 0, r["name"]))
    view.tables.append(
        Table(
            "office-rotation",
            "reception_rotation",
            [
                Column("in_turn", "in_turn", "count"),
                Column("name", "rep"),
                Column("next", "next_in_turn", "flag"),
                Column("serving", "serving"),
                Column("serving_since", "serving_since"),
                Column("signed_in_at", "signed_in_at"),
                Column("signed_out_at", "signed_out_at"),
                Column("turns", "turns", "count"),
                Column("own_customers", "own_customers", "count"),
                Column("duty_receptions", "duty_receptions", "count"),
            ],
            reps,
            key="rep_id",
        )
    )
    for register, body in (("walk_in", walk_ins), ("phone", calls)):
        lines = [_register_line(ctx, names, line) for line in body.get("items", [])]
        view.tables.append(
            Table(
                f"register-{register}",
                f"register_{register}",
                [
                    Column("entry_no", "entry_no", "count"),
                    Column("at", "time"),
                    Column("name", "customer"),
                    Column("phone", "phone"),
                    Column("rep", "rep"),
                    Column("basis", "basis"),
                    Column("remark", "remark"),
                    Column("source_channel", "source_channel"),
                    Column("new_lead", "new_lead", "flag"),
                    Column("note", "note"),
                    Column("corrections", "corrections", "count"),
                ],
                lines,
                total=body.get("total"),
                key="entry_no",
            )
        )
    follow_ups = _follow_ups(ctx, names, [*walk_in_leads.get("items", []), *phone_leads.get("items", [])])
    view.tables.append(
        Table(
            "follow-ups-due",
            "follow_ups_due",
            [
                Column("due", "due_by"),
                Column("rule", "rule"),
                Column("name", "customer"),
                Column("rep", "rep"),
                Column("days_left", "days_left", "count"),
                Column("overdue", "overdue", "flag"),
                Column("follow_ups", "follow_ups", "count"),
            ],
            follow_ups[: ctx.rows],
            total=len(follow_ups),
            key="lead_id",
        )
    )
    warned = [_warning_row(ctx, names, w) for w in warnings if w.get("flag") or w.get("behind")]
    view.tables.append(
        Table(
            "performance-warnings",
            "performance_warnings",
            [
                Column("name", "rep"),
                Column("flag", "warning"),
                Column("given_on", "given_on"),
                Column("target_fen", "target_amount", "money"),
                Column("expected_fen", "expected_by_now", "money"),
                Column("actual_fen", "actual", "money"),
                Column("achievement", "achievement", "percent"),
                Column("behind", "behind", "flag"),
            ],
            warned,
            key="rep_id",
        )
    )
    counts = board.get("counts", {})
    next_rep = board.get("next_in_turn")
    view.cards = [
        Card("next_in_turn", names.person(next_rep) if next_rep else ctx.t("none"), "text"),
        Card("walk_ins", counts.get("walk_ins", 0), "count"),
        Card("calls", counts.get("calls", 0), "count"),
        Card("new_customers", counts.get("new_customers", 0), "count"),
        Card("duty_receptions", counts.get("duty_receptions", 0), "count"),
        Card("overdue_follow_ups", sum(1 for f in follow_ups if f["overdue"]), "count"),
        Card("warnings", sum(1 for w in warned if w["flag"]), "count"),
    ]
    shown = reps[: CHART_BARS * 2]
    view.charts.append(
        Chart(
            "office-receptions",
            charts.bars(
                ctx.t("chart_receptions"),
                [r["name"] for r in shown],
                [
                    (ctx.t("turns"), [r["turns"] for r in shown]),
                    (ctx.t("own_customers"), [r["own_customers"] for r in shown]),
                    (ctx.t("duty_receptions"), [r["duty_receptions"] for r in shown]),
                ],
                unit="count",
                stacked=True,
            ),
        )
    )
    return view


def _register_line(ctx: Context, names: Names, line: Mapping[str, Any]) -> dict[str, Any]:
    shown = line.get("corrected") or line.get("written") or {}
    return {
        "entry_no": line["entry_no"],
        "at": local_time(ctx, line.get("at")),
        "name": shown.get("name") or "",
        "phone": shown.get("phone") or "",
        "note": shown.get("note") or "",
        "rep": rep_name(ctx, names, line),
        "basis": ctx.term("basis", line.get("basis")),
        "remark": ctx.term("remark", line.get("remark")) if line.get("remark") else "",
        "source_channel": line.get("source_channel") or "",
        "new_lead": line.get("new_lead"),
        "corrections": len(line.get("corrections") or []),
    }


def _follow_ups(ctx: Context, names: Names, leads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Leads with a 7-day deadline: a phone lead must come to see (R4), a walk-in be followed
    up (R5); soonest first."""
    now = datetime.now(ctx.zone)
    rows = []
    for lead in leads:
        deadline = lead.get("come_to_see_by") or lead.get("follow_up_by")
        if not deadline:
            continue
        due = datetime.fromisoformat(deadline)
        rows.append(
            {
                "lead_id": lead["lead_id"],
                "due": local_time(ctx, deadline),
                "due_at": due,
                "rule": ctx.t("rule_come_to_see" if lead.get("come_to_see_by") else "rule_follow_up"),
                "name": lead.get("name") or "",
                "rep": rep_name(ctx, names, lead),
                "days_left": max((due.astimezone(ctx.zone).date() - now.date()).days, 0),
                "overdue": due < now,
                "follow_ups": lead.get("follow_ups") or 0,
            }
        )
    rows.sort(key=lambda r: r["due_at"])
    return rows


def _warning_row(ctx: Context, names: Names, w: Mapping[str, Any]) -> dict[str, Any]:
    history = w.get("history") or []
    achievement = w.get("achievement")
    return {
        "rep_id": w["rep_id"],
        "name": rep_name(ctx, names, w),
        "flag": ctx.term("warning", w.get("flag")) if w.get("flag") else "",
        "given_on": history[-1]["given_on"] if history else "",
        "target_fen": w.get("target_fen"),
        "expected_fen": w.get("expected_fen"),
        "actual_fen": w.get("actual_fen"),
        "achievement": achievement.get("value") if isinstance(achievement, dict) else None,
        "behind": w.get("behind"),
    }


# -- the unit inventory and the day's sales control (销控) ---------------------------------


async def units(ctx: Context) -> PageView:
    view = ctx.begin("units", [])
    filters = view.filters
    project, _ = await project_choice(ctx)
    status = Select(
        "status",
        "status",
        [Option(s, ctx.term("unit_status", s)) for s in UNIT_STATUSES],
        ctx.param("status", UNIT_STATUSES, ""),
        blank="all",
    )
    filters.selects += [project, status]
    filters.day = parse_day(ctx.param("date")) or ctx.today
    if not project.value:
        view.note = "no_office"
        return view
    token = ctx.viewer.token
    inventory, control = await gather(
        ctx.services.get(
            "orders",
            f"/projects/{project.value}/units",
            token,
            {"status": status.value, "limit": min(max(ctx.rows, 1), 2000)},
        ),
        ctx.services.get(
            "orders", f"/projects/{project.value}/sales-control", token, {"date": filters.day.isoformat()}
        ),
    )
    names = await ctx.names([*inventory["items"], *control["changes"]], rep="credited_rep_id")
    rows = [
        {
            "unit_id": u["unit_id"],
            "building": u["building"],
            "unit_no": u["unit_no"],
            "floor": u["floor"],
            "layout": f"{u['layout_name']} · {u['layout']}",
            "area_sqm": u["area_sqm"],
            "orientation": ctx.term("orientation", u.get("orientation")),
            "position": u.get("position") or "",
            "total_price_fen": u.get("total_price_fen"),
            "status": ctx.term("unit_status", u["status"]),
            "rep": names.person(u["credited_rep_id"]) if u.get("credited_rep_id") else "",
            "deal_price_fen": u.get("deal_price_fen"),
            "subscription": ctx.term("subscription_state", u.get("subscription_state"))
            if u.get("subscription_state")
            else "",
        }
        for u in inventory["items"]
    ]
    view.tables.append(
        Table(
            "units",
            "unit_inventory",
            [
                Column("building", "building"),
                Column("unit_no", "unit_no"),
                Column("floor", "floor", "count"),
                Column("layout", "layout"),
                Column("area_sqm", "area_sqm"),
                Column("orientation", "orientation"),
                Column("position", "position"),
                Column("total_price_fen", "total_price", "money"),
                Column("status", "status"),
                Column("rep", "rep"),
                Column("deal_price_fen", "deal_price", "money"),
                Column("subscription", "subscription"),
            ],
            rows,
            total=inventory.get("total"),
            key="unit_id",
        )
    )
    changes = [
        {
            "at": local_time(ctx, c.get("at")),
            "unit": f"{c['building']}-{c['unit_no']}",
            "event": ctx.term("unit_event", c.get("event_type")),
            "before": ctx.term("unit_status", c.get("status_before")) if c.get("status_before") else "",
            "after": ctx.term("unit_status", c.get("status_after")) if c.get("status_after") else "",
            "rep": names.person(c["rep_id"]) if c.get("rep_id") else "",
            "amount_fen": c.get("amount_fen"),
            "by": names.person(c["by"]) if isinstance(c.get("by"), str) else "",
        }
        for c in control["changes"]
    ]
    view.tables.append(
        Table(
            "sales-control-changes",
            "sales_control_changes",
            [
                Column("at", "time"),
                Column("unit", "unit"),
                Column("event", "change"),
                Column("before", "status_before"),
                Column("after", "status_after"),
                Column("rep", "rep"),
                Column("amount_fen", "amount", "money"),
                Column("by", "recorded_by"),
            ],
            changes,
        )
    )
    counts = inventory.get("counts", {})
    view.cards = [
        Card("units_total", sum(counts.values()), "count"),
        Card("available", counts.get("available", 0), "count"),
        Card("reserved", counts.get("reserved", 0), "count"),
        Card("subscribed", counts.get("subscribed", 0), "count"),
        Card("sold", sum(counts.get(s, 0) for s in SOLD), "count"),
        Card("changes_today", len(changes), "count"),
    ]
    view.charts.append(
        Chart(
            "units-by-status",
            charts.pie(
                ctx.t("chart_units_by_status"),
                [(ctx.term("unit_status", s), counts[s]) for s in UNIT_STATUSES if counts.get(s)],
                unit="count",
            ),
        )
    )
    return view


# -- the office reports (案场报表) ---------------------------------------------------------


async def office_reports(ctx: Context) -> PageView:
    view = ctx.begin(
        "office_reports",
        ["office_leads", "daily_close", "weekly_targets", "office_sales", "unit_inventory", "deposits_due"],
    )
    filters = view.filters
    project, _ = await project_choice(ctx)
    filters.selects.append(project)
    dates = date_filters(ctx, filters)
    if not project.value:
        view.note = "no_office"
        return view
    asked = {"project_id": project.value}
    (
        (leads, leads_total),
        (closes, closes_total),
        (claims, claims_total),
        (layouts, layouts_total),
        (inventory, _),
        (deposits, deposits_total),
    ) = await gather(
        ctx.report("/reports/office-leads", {**asked, **dates, "group_by": "rep"}),
        ctx.report("/reports/daily-close", {**asked, "date": dates["to"]}),
        ctx.report("/reports/weekly-targets", {**asked, "week": dates["to"]}),
        ctx.report("/reports/office-sales", {**asked, **dates, "group_by": "layout"}),
        ctx.report("/reports/unit-inventory", {**asked, "group_by": "building"}),
        ctx.report("/reports/deposits-due", asked),
    )
    names = await ctx.names([*leads, *closes, *claims, *deposits], rep="rep_id")
    for row in leads:
        row["name"] = rep_name(ctx, names, row)
        for rate in ("first_visit_rate", "deposit_rate", "subscription_rate", "contract_rate"):
            row[rate] = (row.get(rate) or {}).get("value")
    leads.sort(key=lambda r: r["name"])
    view.tables.append(
        Table(
            "office-leads",
            "office_leads",
            [
                Column("name", "rep"),
                Column("calls", "calls", "count"),
                Column("walk_ins", "walk_ins", "count"),
                Column("returning_visits", "returning_visits", "count"),
                Column("duty_receptions", "duty_receptions", "count"),
                Column("first_visits_in_7_days", "first_visits_in_7_days", "count"),
                Column("first_visit_rate", "first_visit_rate", "percent"),
                Column("deposits", "deposits", "count"),
                Column("subscriptions", "subscriptions", "count"),
                Column("contracts", "contracts", "count"),
                Column("subscription_rate", "subscription_rate", "percent"),
            ],
            leads,
            total=leads_total,
            key="rep_id",
        )
    )
    close_rows = [_close_row(ctx, names, c) for c in closes]
    close_rows.sort(key=lambda r: r["name"])
    view.tables.append(
        Table(
            "daily-close",
            "daily_close",
            [
                Column("name", "rep"),
                Column("deposits", "deposits", "count"),
                Column("subscriptions", "subscriptions", "count"),
                Column("contracts", "contracts", "count"),
                Column("amount_fen", "subscribed_amount", "money"),
                Column("forecast", "forecast"),
                Column("forecast_missed", "forecast_missed", "flag"),
                Column("miss_reason", "miss_reason"),
                Column("closed", "closed_out", "flag"),
                Column("tomorrow", "forecast_for_tomorrow"),
            ],
            close_rows,
            total=closes_total,
            key="rep_id",
        )
    )
    for row in claims:
        row["name"] = rep_name(ctx, names, row)
        row["subscription_completion"] = (row.get("subscription_completion") or {}).get("value")
        row["amount_completion"] = (row.get("amount_completion") or {}).get("value")
    claims.sort(key=lambda r: r["name"])
    view.tables.append(
        Table(
            "weekly-targets",
            "weekly_targets",
            [
                Column("week", "week_of"),
                Column("name", "rep"),
                Column("claimed_subscriptions", "claimed_subscriptions", "count"),
                Column("subscriptions", "subscriptions", "count"),
                Column("subscription_completion", "completion", "percent"),
                Column("claimed_amount_fen", "claimed_amount", "money"),
                Column("amount_fen", "subscribed_amount", "money"),
                Column("amount_completion", "amount_completion", "percent"),
                Column("week_over", "week_over", "flag"),
            ],
            claims,
            total=claims_total,
            key="rep_id",
        )
    )
    layouts.sort(key=lambda r: str(r.get("layout_name")))
    view.tables.append(
        Table(
            "office-sales-by-layout",
            "office_sales_by_layout",
            [
                Column("layout_name", "layout"),
                Column("reservations", "deposits", "count"),
                Column("subscriptions", "subscriptions", "count"),
                Column("subscribed_amount_fen", "subscribed_amount", "money"),
                Column("contracts", "contracts", "count"),
                Column("contracted_amount_fen", "contracted_amount", "money"),
                Column("handovers", "handovers", "count"),
                Column("releases", "releases", "count"),
            ],
            layouts,
            total=layouts_total,
            key="layout_name",
        )
    )
    for row in inventory:
        row["sold"] = sum(int(row.get(s) or 0) for s in SOLD)
    inventory.sort(key=lambda r: str(r.get("building")))
    view.tables.append(
        Table(
            "unit-inventory",
            "unit_inventory_by_building",
            [
                Column("building", "building"),
                Column("units", "units_total", "count"),
                Column("unreleased", "unreleased", "count"),
                Column("available", "available", "count"),
                Column("reserved", "reserved", "count"),
                Column("subscribed", "subscribed", "count"),
                Column("sold", "sold", "count"),
                Column("available_value_fen", "available_value", "money"),
            ],
            inventory,
            key="building",
        )
    )
    deposit_rows = [
        {
            "unit_id": d["unit_id"],
            "unit": f"{d['building']}-{d['unit_no']}",
            "rep": rep_name(ctx, names, d),
            "deposit_agreed_fen": d.get("deposit_agreed_fen"),
            "deposit_total_fen": d.get("deposit_total_fen"),
            "missing_fen": d.get("missing_fen"),
            "due": local_time(ctx, d.get("deposit_due_by")),
            "overdue": d.get("overdue"),
        }
        for d in deposits
    ]
    view.tables.append(
        Table(
            "deposits-due",
            "deposits_due",
            [
                Column("unit", "unit"),
                Column("rep", "rep"),
                Column("deposit_agreed_fen", "deposit_agreed", "money"),
                Column("deposit_total_fen", "deposit_paid", "money"),
                Column("missing_fen", "deposit_missing", "money"),
                Column("due", "due_by"),
                Column("overdue", "overdue", "flag"),
            ],
            deposit_rows,
            total=deposits_total,
            key="unit_id",
        )
    )
    view.cards = [
        Card("calls", count_of(leads, "calls"), "count"),
        Card("walk_ins", count_of(leads, "walk_ins"), "count"),
        Card("deposits", count_of(leads, "deposits"), "count"),
        Card("subscriptions", count_of(leads, "subscriptions"), "count"),
        Card("subscribed_amount", sum(int(r.get("amount_fen") or 0) for r in close_rows), "money"),
        Card("available", count_of(inventory, "available"), "count"),
        Card("deposits_due", len(deposit_rows), "count"),
    ]
    shown = leads[: CHART_BARS * 2]
    view.charts.append(
        Chart(
            "office-leads",
            charts.bars(
                ctx.t("chart_office_leads"),
                [r["name"] for r in shown],
                [
                    (ctx.t(k), [r.get(k) or 0 for r in shown])
                    for k in ("calls", "walk_ins", "deposits", "subscriptions")
                ],
                unit="count",
            ),
        )
    )
    view.charts.append(
        Chart(
            "office-inventory",
            charts.bars(
                ctx.t("chart_units_by_status"),
                [str(r["building"]) for r in inventory],
                [
                    (ctx.term("unit_status", s), [r.get(s) or 0 for r in inventory])
                    for s in ("available", "reserved", "subscribed")
                ]
                + [(ctx.t("sold"), [r["sold"] for r in inventory])],
                unit="count",
                stacked=True,
            ),
        )
    )
    return view


def _figures_text(ctx: Context, figures: Mapping[str, Any] | None) -> str:
    if not figures:
        return ""
    amount = yuan_number(figures.get("amount_fen"))
    return (
        f"{ctx.t('deposits')} {figures.get('deposits', 0)} · {ctx.t('subscriptions')} {figures.get('subscriptions', 0)}"
        f" · {ctx.t('contracts')} {figures.get('contracts', 0)} · ¥{amount:,}"
    )


def _close_row(ctx: Context, names: Names, c: Mapping[str, Any]) -> dict[str, Any]:
    result = c.get("result") or {}
    return {
        "rep_id": c["rep_id"],
        "name": rep_name(ctx, names, c),
        "deposits": result.get("deposits", 0),
        "subscriptions": result.get("subscriptions", 0),
        "contracts": result.get("contracts", 0),
        "amount_fen": result.get("amount_fen", 0),
        "forecast": _figures_text(ctx, c.get("forecast")),
        "forecast_missed": c.get("forecast_missed"),
        "miss_reason": c.get("miss_reason") or (ctx.t("reason_missing") if c.get("reason_missing") else ""),
        "closed": c.get("closed"),
        "tomorrow": _figures_text(ctx, c.get("forecast_for_tomorrow")),
    }


OFFICE_PAGES: dict[str, PageBuilder] = {"office": office, "units": units, "office_reports": office_reports}
