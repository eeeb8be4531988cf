"""The sales offices' reports (案场): lead registers per day and rep, the daily close-out (日清),
weekly targets, performance warnings (考核预警), sales by project, building and layout, the unit
inventory and the deposits due. Lines and deals are joined here, when read (see
projections/sales_office.py), so the order the two services' events arrived in never matters.

Rows belong to a rep (the rep who received the customer, or the rep a deal is credited to) and
to the project's district and area: a rep reads their own rows, a supervisor the district's, an
area manager the area's. The unit inventory belongs to the project: a rep reads their office's.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast

import asyncpg

from reporting_service.domain.kpi import rate
from reporting_service.domain.office import Figures, behind, expected_by_now, forecast_missed
from reporting_service.queries.common import Page, Query, Result, Territory, paged
from salesplatform.projections import active_schema
from salesplatform.territory import Reach

# group_by name → (column in the grouped rows, its name column or None)
LEAD_DIMENSIONS = {"day": "business_date", "rep": "rep_id", "project": "project_id"}
SALES_DIMENSIONS = {"project": "project_id", "building": "building", "layout": "layout_name", "rep": "rep_id"}
INVENTORY_DIMENSIONS = {"project": "project_id", "building": "building", "layout": "layout_name"}
STATUSES = ("unreleased", "available", "reserved", "subscribed", "contracted", "mortgage", "handed_over")


def figure(numerator: int, denominator: int) -> dict[str, Any]:
    """A rate with what it is computed from (no goal: the office sets none)."""
    return {"value": rate(numerator, denominator), "numerator": numerator, "denominator": denominator}


def _names(schemas: dict[str, str], dims: list[str], alias: str = "g") -> tuple[str, str]:
    d, so = schemas["directory"], schemas["sales_office"]
    cols, joins = [], []
    if "rep" in dims:
        cols.append("st.name AS rep_name")
        joins.append(f"LEFT JOIN {d}.staff st ON st.staff_id = {alias}.rep_id")
    if "project" in dims:
        cols.append("pr.name AS project_name")
        joins.append(f"LEFT JOIN {so}.office_projects pr ON pr.project_id = {alias}.project_id")
    return "".join(", " + c for c in cols), " ".join(joins)


async def _rep_district(conn: asyncpg.Connection, schemas: dict[str, str], rep_id: str) -> str | None:
    return cast(
        "str | None",
        await conn.fetchval(f"SELECT district_id FROM {schemas['directory']}.staff WHERE staff_id = $1", rep_id),
    )


async def office_place(conn: asyncpg.Connection, project_id: str) -> asyncpg.Record | None:
    """The district and area of the project's sales office (None: no office known yet)."""
    so = await active_schema(conn, "sales_office")
    return await conn.fetchrow(
        f"SELECT district_id, area_id FROM {so}.office_projects WHERE project_id = $1", project_id
    )


# -- lead registers per day and rep ---------------------------------------------------------------


async def office_leads(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    project_id: str | None,
    group_by: list[str],
    page: Page,
) -> Result:
    so = schemas["sales_office"]
    q = Query()
    q.where("l.business_date BETWEEN {} AND {}", start, end)
    q.territory(scope, asked, rep="l.rep_id", district="p.district_id", area="p.area_id")
    q.equal("l.project_id", project_id)
    dims = [LEAD_DIMENSIONS[g] for g in group_by]
    select = "".join(f"{c}, " for c in dims)
    names, joins = _names(schemas, group_by)
    sql = f"""
    WITH l AS (
        SELECT l.*, p.district_id, p.area_id,
            -- a phone lead who came to see within its 7 days (a later visit is a new walk-in)
            l.register_kind = 'phone' AND l.new_lead AND EXISTS (
                SELECT 1 FROM {so}.office_lines w WHERE w.lead_id = l.lead_id AND w.register_kind = 'walk_in'
                   AND NOT w.new_lead AND w.at > l.at AND w.at <= l.at + interval '7 days') AS came_in_7_days,
            -- the deals of a new customer until they are received as new again (a release)
            (SELECT min(n.business_date) FROM {so}.office_lines n
              WHERE n.lead_id = l.lead_id AND n.new_lead AND n.at > l.at) AS next_new_day
        FROM {so}.office_lines l JOIN {so}.office_projects p USING (project_id)
        {q.clause()}
    ), c AS (
        SELECT l.*,
            l.new_lead AND EXISTS (SELECT 1 FROM {so}.office_deals d WHERE d.lead_id = l.lead_id AND d.kind = k.kind
                AND d.business_date >= l.business_date AND (l.next_new_day IS NULL OR d.business_date < l.next_new_day)) AS reached,
            k.kind
        FROM l CROSS JOIN (VALUES ('reserved'), ('subscribed'), ('contracted')) AS k(kind)
    ), g AS (
        SELECT {select}
            count(*) FILTER (WHERE kind = 'reserved' AND register_kind = 'phone' AND new_lead) AS calls,
            count(*) FILTER (WHERE kind = 'reserved' AND register_kind = 'walk_in' AND new_lead) AS walk_ins,
            count(*) FILTER (WHERE kind = 'reserved' AND register_kind = 'walk_in' AND basis = 'own') AS returning_visits,
            count(*) FILTER (WHERE kind = 'reserved' AND basis = 'duty') AS duty_receptions,
            count(*) FILTER (WHERE kind = 'reserved' AND came_in_7_days) AS first_visits_in_7_days,
            count(*) FILTER (WHERE kind = 'reserved' AND reached) AS deposits,
            count(*) FILTER (WHERE kind = 'subscribed' AND reached) AS subscriptions,
            count(*) FILTER (WHERE kind = 'contracted' AND reached) AS contracts
        FROM c {"GROUP BY " + ", ".join(dims) if dims else ""}
    )
    SELECT g.*{names} FROM g {joins}
    """
    order = ", ".join(dims) if dims else "calls"
    result = await paged(conn, sql, q.args, page, order)
    for row in result.items:
        new = row["calls"] + row["walk_ins"]
        row["new_customers"] = new
        row["first_visit_rate"] = figure(row["first_visits_in_7_days"], row["calls"])
        row["deposit_rate"] = figure(row["deposits"], new)
        row["subscription_rate"] = figure(row["subscriptions"], new)
        row["contract_rate"] = figure(row["contracts"], new)
    return result


# -- the daily close-out (日清) ------------------------------------------------------------------------


def _figures(row: dict[str, Any], prefix: str) -> Figures | None:
    if row.get(f"{prefix}deposits") is None:
        return None
    return Figures(*(row[f"{prefix}{k}"] for k in ("deposits", "subscriptions", "contracts", "amount_fen")))


async def actual_results(
    conn: asyncpg.Connection, schemas: dict[str, str], day: date, rep_id: str, project_id: str
) -> Figures:
    row = await conn.fetchrow(
        f"""SELECT count(*) FILTER (WHERE kind = 'reserved') AS deposits,
                   count(*) FILTER (WHERE kind = 'subscribed') AS subscriptions,
                   count(*) FILTER (WHERE kind = 'contracted') AS contracts,
                   coalesce(sum(amount_fen) FILTER (WHERE kind = 'subscribed'), 0) AS amount_fen
              FROM {schemas["sales_office"]}.office_deals
             WHERE business_date = $1 AND rep_id = $2 AND project_id = $3""",
        day,
        rep_id,
        project_id,
    )
    return Figures(**dict(row))


async def daily_close(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    day: date,
    project_id: str | None,
    page: Page,
) -> Result:
    so, plans = schemas["sales_office"], schemas["office_plans"]
    q = Query()
    d = q.param(day)
    q.territory(scope, asked, rep="r.rep_id", district="p.district_id", area="p.area_id")
    q.equal("r.project_id", project_id)
    sql = f"""
    WITH reps AS (
        SELECT project_id, rep_id FROM {so}.office_sign_ins WHERE business_date = {d}
        UNION SELECT project_id, rep_id FROM {so}.office_deals WHERE business_date = {d} AND rep_id IS NOT NULL
        UNION SELECT project_id, rep_id FROM {plans}.daily_closes
              WHERE business_date IN ({d}, {d}::date - 1)
    ), actual AS (
        SELECT project_id, rep_id,
               count(*) FILTER (WHERE kind = 'reserved') AS deposits,
               count(*) FILTER (WHERE kind = 'subscribed') AS subscriptions,
               count(*) FILTER (WHERE kind = 'contracted') AS contracts,
               coalesce(sum(amount_fen) FILTER (WHERE kind = 'subscribed'), 0) AS amount_fen
          FROM {so}.office_deals WHERE business_date = {d} GROUP BY project_id, rep_id
    )
    SELECT r.project_id, r.rep_id, st.name AS rep_name, p.district_id, p.area_id,
           coalesce(a.deposits, 0) AS deposits, coalesce(a.subscriptions, 0) AS subscriptions,
           coalesce(a.contracts, 0) AS contracts, coalesce(a.amount_fen, 0) AS amount_fen,
           y.deposits AS f_deposits, y.subscriptions AS f_subscriptions, y.contracts AS f_contracts,
           y.amount_fen AS f_amount_fen,
           t.deposits AS t_deposits, t.subscriptions AS t_subscriptions, t.contracts AS t_contracts,
           t.amount_fen AS t_amount_fen, t.miss_reason, t.business_date IS NOT NULL AS closed
      FROM reps r
      JOIN {so}.office_projects p USING (project_id)
      LEFT JOIN {schemas["directory"]}.staff st ON st.staff_id = r.rep_id
      LEFT JOIN actual a ON a.project_id = r.project_id AND a.rep_id = r.rep_id
      LEFT JOIN {plans}.daily_closes y ON y.project_id = r.project_id AND y.rep_id = r.rep_id
                                       AND y.business_date = {d}::date - 1
      LEFT JOIN {plans}.daily_closes t ON t.project_id = r.project_id AND t.rep_id = r.rep_id
                                       AND t.business_date = {d}
     {q.clause()}
    """
    result = await paged(conn, sql, q.args, page, "project_id, rep_id")
    items = []
    for row in result.items:
        actual = Figures(row["deposits"], row["subscriptions"], row["contracts"], row["amount_fen"])
        forecast, tomorrow = _figures(row, "f_"), _figures(row, "t_")
        missed = forecast is not None and forecast_missed(forecast, actual)
        items.append(
            {
                "project_id": row["project_id"],
                "rep_id": row["rep_id"],
                "rep_name": row["rep_name"],
                "district_id": row["district_id"],
                "area_id": row["area_id"],
                "business_date": day,
                "result": actual.__dict__,
                "forecast": forecast.__dict__ if forecast else None,
                "forecast_missed": missed if forecast else None,
                "miss_reason": row["miss_reason"],
                "reason_missing": missed and not row["miss_reason"],
                "closed": row["closed"],
                "forecast_for_tomorrow": tomorrow.__dict__ if tomorrow else None,
            }
        )
    return Result(items, result.total)


# -- weekly targets -----------------------------------------------------------------------------------


async def weekly_targets(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    week: date,
    today: date,
    project_id: str | None,
    page: Page,
) -> Result:
    so, plans = schemas["sales_office"], schemas["office_plans"]
    q = Query()
    first, last = q.param(week), q.param(week + timedelta(days=6))
    q.where(f"c.week = {first}")
    q.territory(scope, asked, rep="c.rep_id", district="p.district_id", area="p.area_id")
    q.equal("c.project_id", project_id)
    sql = f"""
    SELECT c.project_id, c.rep_id, st.name AS rep_name, p.district_id, p.area_id, c.week,
           c.subscriptions AS claimed_subscriptions, c.amount_fen AS claimed_amount_fen,
           coalesce(a.subscriptions, 0) AS subscriptions, coalesce(a.amount_fen, 0) AS amount_fen
      FROM {plans}.weekly_claims c
      JOIN {so}.office_projects p USING (project_id)
      LEFT JOIN {schemas["directory"]}.staff st ON st.staff_id = c.rep_id
      LEFT JOIN LATERAL (
          SELECT count(*) FILTER (WHERE kind = 'subscribed')
                 - count(*) FILTER (WHERE kind = 'released' AND released_from = 'subscribed') AS subscriptions,
                 coalesce(sum(amount_fen) FILTER (WHERE kind = 'subscribed'), 0)
                 - coalesce(sum(amount_fen) FILTER (WHERE kind = 'released' AND released_from = 'subscribed'), 0)
                   AS amount_fen
            FROM {so}.office_deals d
           WHERE d.project_id = c.project_id AND d.rep_id = c.rep_id AND d.business_date BETWEEN {first} AND {last}
      ) a ON true
     {q.clause()}
    """
    result = await paged(conn, sql, q.args, page, "project_id, rep_id")
    for row in result.items:
        row["subscription_completion"] = figure(row["subscriptions"], row["claimed_subscriptions"])
        row["amount_completion"] = figure(row["amount_fen"], row["claimed_amount_fen"])
        row["week_over"] = today > week + timedelta(days=6)
    return result


# -- performance warnings (考核预警) ------------------------------------------------------------------


async def office_reps_behind(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    month: str,
    as_of: date,
) -> list[dict[str, Any]]:
    """Every rep who signed in at a sales office in the month up to `as_of`, with the first day
    they did (`started_on`), the month's target (rep level, all products) and the subscriptions
    signed up to `as_of` net of subscriptions released."""
    so, d, t = schemas["sales_office"], schemas["directory"], schemas["targets"]
    first = date(int(month[:4]), int(month[5:]), 1)
    q = Query()
    start, end, which = q.param(first), q.param(as_of), q.param(month)
    q.territory(scope, asked, rep="r.rep_id", district="r.district_id", area="r.area_id")
    rows = await conn.fetch(
        f"""
        WITH r AS (
            SELECT DISTINCT ON (s.rep_id) s.rep_id, s.project_id, p.district_id, p.area_id,
                   min(s.business_date) OVER (PARTITION BY s.rep_id) AS started_on
              FROM {so}.office_sign_ins s JOIN {so}.office_projects p USING (project_id)
             WHERE s.business_date BETWEEN {start} AND {end}
             ORDER BY s.rep_id, s.business_date DESC
        )
        SELECT r.rep_id, st.name AS rep_name, r.project_id, r.district_id, r.area_id, r.started_on,
               tg.amount_fen AS target_fen,
               coalesce((SELECT sum(CASE WHEN kind = 'subscribed' THEN amount_fen ELSE -amount_fen END)
                           FROM {so}.office_deals x
                          WHERE x.rep_id = r.rep_id AND x.business_date BETWEEN {start} AND {end}
                            AND (x.kind = 'subscribed' OR (x.kind = 'released' AND x.released_from = 'subscribed'))),
                        0)::bigint AS actual_fen
          FROM r
          LEFT JOIN {d}.staff st ON st.staff_id = r.rep_id
          LEFT JOIN {t}.targets tg ON tg.month = {which} AND tg.level = 'rep' AND tg.subject_id = r.rep_id
                                   AND tg.product_group IS NULL
         {q.clause()}
         ORDER BY r.rep_id
        """,
        *q.args,
    )
    return [dict(r) for r in rows]


async def performance_warnings(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    month: str,
    as_of: date,
    margin_percent: int,
    page: Page,
) -> Result:
    reps = await office_reps_behind(conn, schemas, scope, asked, month=month, as_of=as_of)
    warnings = await conn.fetch(
        f"SELECT rep_id, level, given_on, target_fen, expected_fen, actual_fen, margin_percent"
        f" FROM {schemas['office_plans']}.warnings WHERE month = $1 ORDER BY rep_id, given_on, level",
        month,
    )
    history: dict[str, list[dict[str, Any]]] = {}
    for w in warnings:
        entry = dict(w)
        history.setdefault(entry.pop("rep_id"), []).append(entry)
    items = []
    for r in reps:
        given = history.get(r["rep_id"], [])
        target = r["target_fen"]
        expected = expected_by_now(target, r["started_on"], as_of) if target is not None else None
        items.append(
            {
                **r,
                "month": month,
                "as_of": as_of,
                "expected_fen": expected,
                "achievement": figure(r["actual_fen"], target) if target else None,
                "behind": behind(r["actual_fen"], expected, margin_percent) if expected is not None else None,
                "flag": given[-1]["level"] if given else None,
                "history": given,
            }
        )
    total = len(items)
    return Result(items[page.offset : page.offset + page.limit], total)


# -- sales by project, building, layout; inventory; deposits due ---------------------------------------


async def office_sales(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    project_id: str | None,
    group_by: list[str],
    page: Page,
) -> Result:
    so = schemas["sales_office"]
    q = Query()
    q.where("x.business_date BETWEEN {} AND {}", start, end)
    q.territory(scope, asked, rep="x.rep_id", district="p.district_id", area="p.area_id")
    q.equal("x.project_id", project_id)
    dims = [SALES_DIMENSIONS[g] for g in group_by]
    select = "".join(f"{c}, " for c in dims)
    names, joins = _names(schemas, group_by)
    sql = f"""
    WITH x AS (
        SELECT x.*, u.building, u.layout_name FROM {so}.office_deals x
          JOIN {so}.office_units u USING (unit_id) JOIN {so}.office_projects p ON p.project_id = x.project_id
        {q.clause()}
    ), g AS (
        SELECT {select}
            count(*) FILTER (WHERE kind = 'reserved') AS reservations,
            count(*) FILTER (WHERE kind = 'subscribed') AS subscriptions,
            coalesce(sum(amount_fen) FILTER (WHERE kind = 'subscribed'), 0) AS subscribed_amount_fen,
            count(*) FILTER (WHERE kind = 'contracted') AS contracts,
            coalesce(sum(amount_fen) FILTER (WHERE kind = 'contracted'), 0) AS contracted_amount_fen,
            count(*) FILTER (WHERE kind = 'handed_over') AS handovers,
            count(*) FILTER (WHERE kind = 'released') AS releases
        FROM x {"GROUP BY " + ", ".join(dims) if dims else ""}
    )
    SELECT g.*{names} FROM g {joins}
    """
    return await paged(conn, sql, q.args, page, ", ".join(dims) if dims else "subscriptions")


async def _inventory_scope(conn: asyncpg.Connection, schemas: dict[str, str], scope: Reach) -> Reach:
    """The project rows a reader sees: a rep those of the own district (their office)."""
    if scope.rep_id is None:
        return scope
    return Reach(district_id=await _rep_district(conn, schemas, scope.rep_id) or "-")


async def unit_inventory(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    project_id: str | None,
    group_by: list[str],
    page: Page,
) -> Result:
    so = schemas["sales_office"]
    scope = await _inventory_scope(conn, schemas, scope)
    q = Query()
    q.territory(
        scope, Territory(None, asked.district_id, asked.area_id), rep="NULL", district="p.district_id", area="p.area_id"
    )
    q.equal("u.project_id", project_id)
    dims = [INVENTORY_DIMENSIONS[g] for g in group_by]
    select = "".join(f"u.{c}, " for c in dims)
    names, joins = _names(schemas, group_by)
    counts = ", ".join(f"count(*) FILTER (WHERE u.status = '{s}') AS {s}" for s in STATUSES)
    sql = f"""
    WITH g AS (
        SELECT {select} count(*) AS units, {counts},
               coalesce(sum(u.total_price_fen) FILTER (WHERE u.status = 'available'), 0) AS available_value_fen,
               coalesce(sum(u.area_sqm) FILTER (WHERE u.status = 'available'), 0) AS available_area_sqm
          FROM {so}.office_units u JOIN {so}.office_projects p USING (project_id)
         {q.clause()} {"GROUP BY " + ", ".join(f"u.{c}" for c in dims) if dims else ""}
    )
    SELECT g.*{names} FROM g {joins}
    """
    return await paged(conn, sql, q.args, page, ", ".join(dims) if dims else "units")


async def deposits_due(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    project_id: str | None,
    now: Any,
    page: Page,
) -> Result:
    so = schemas["sales_office"]
    q = Query()
    q.where("u.status = 'reserved' AND u.deposit_due_by IS NOT NULL")
    q.territory(scope, asked, rep="u.credited_rep_id", district="p.district_id", area="p.area_id")
    q.equal("u.project_id", project_id)
    at = q.param(now)
    sql = f"""
    SELECT u.unit_id, u.project_id, u.building, u.unit_no, u.lead_id, u.credited_rep_id AS rep_id,
           st.name AS rep_name, u.deposit_agreed_fen, u.deposit_total_fen,
           u.deposit_agreed_fen - u.deposit_total_fen AS missing_fen, u.deposit_due_by,
           u.deposit_overdue OR u.deposit_due_by < {at} AS overdue
      FROM {so}.office_units u JOIN {so}.office_projects p USING (project_id)
      LEFT JOIN {schemas["directory"]}.staff st ON st.staff_id = u.credited_rep_id
     {q.clause()}
    """
    return await paged(conn, sql, q.args, page, "deposit_due_by, unit_id")
