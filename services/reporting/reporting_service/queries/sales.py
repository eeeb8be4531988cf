"""Sales, composition, target achievement and promotion statistics: sums over `sales_daily`.

Net = delivered less approved returns; amounts in fen, quantities in units.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import asyncpg

from reporting_service.domain.kpi import measure, month_bounds
from reporting_service.queries.common import (
    Page,
    Query,
    Result,
    Territory,
    paged,
)
from salesplatform.territory import Reach

Period = Literal["day", "week", "month", "total"]

# group_by name → column of sales_daily
SALES_DIMENSIONS = {
    "rep": "rep_id",
    "customer": "customer_id",
    "sku": "sku",
    "product_group": "product_group",
    "district": "district_id",
    "area": "area_id",
}

_SUMS = """
    coalesce(sum(s.quantity), 0) AS gross_quantity, coalesce(sum(s.amount_fen), 0) AS gross_amount_fen,
    coalesce(sum(s.returned_quantity), 0) AS returned_quantity,
    coalesce(sum(s.returned_amount_fen), 0) AS returned_amount_fen,
    coalesce(sum(s.quantity - s.returned_quantity), 0) AS quantity,
    coalesce(sum(s.amount_fen - s.returned_amount_fen), 0) AS amount_fen,
    coalesce(sum(s.gift_quantity), 0) AS gift_quantity
"""


def _names(schemas: dict[str, str], dims: list[str]) -> tuple[str, str]:
    """Columns and joins adding the directory's names of grouped reps, customers, territories."""
    d = schemas["directory"]
    cols, joins = [], []
    if "rep" in dims:
        cols.append("st.name AS rep_name")
        joins.append(f"LEFT JOIN {d}.staff st ON st.staff_id = g.rep_id")
    if "customer" in dims:
        cols.append("cu.name AS customer_name")
        joins.append(f"LEFT JOIN {d}.customers cu ON cu.customer_id = g.customer_id")
    if "district" in dims:
        cols.append("di.name AS district_name")
        joins.append(f"LEFT JOIN {d}.districts di ON di.district_id = g.district_id")
    if "area" in dims:
        cols.append("ar.name AS area_name")
        joins.append(f"LEFT JOIN {d}.areas ar ON ar.area_id = g.area_id")
    return "".join(", " + c for c in cols), " ".join(joins)


def sales_filters(
    q: Query,
    scope: Reach,
    asked: Territory,
    start: date,
    end: date,
    *,
    sku: str | None = None,
    product_group: str | None = None,
    alias: str = "s",
) -> None:
    q.where(f"{alias}.business_date BETWEEN {{}} AND {{}}", start, end)
    q.territory(scope, asked, rep=f"{alias}.rep_id", district=f"{alias}.district_id", area=f"{alias}.area_id")
    q.equal(f"{alias}.customer_id", asked.customer_id)
    q.equal(f"{alias}.sku", sku)
    q.equal(f"{alias}.product_group", product_group)


async def sales(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    period: Period,
    group_by: list[str],
    sku: str | None,
    product_group: str | None,
    page: Page,
) -> Result:
    q = Query()
    sales_filters(q, scope, asked, start, end, sku=sku, product_group=product_group)
    keys = [f"s.{SALES_DIMENSIONS[g]}" for g in group_by]
    if period != "total":
        keys.insert(0, f"date_trunc('{period}', s.business_date)::date AS period_start")
    group = ", ".join(k.split(" AS ")[0] for k in keys)
    inner = (
        f"SELECT {', '.join([*keys, _SUMS]) if keys else _SUMS} FROM {schemas['sales']}.sales_daily s"
        f" {q.clause()} {'GROUP BY ' + group if group else ''}"
    )
    names, joins = _names(schemas, group_by)
    sql = f"SELECT g.*{names} FROM ({inner}) AS g {joins}"
    order = (
        ", ".join((["period_start"] if period != "total" else []) + [SALES_DIMENSIONS[g] for g in group_by])
        or "amount_fen DESC"
    )
    return await paged(conn, sql, q.args, page, order)


# by → (the column of the row, the expression grouped by). Grade, channel and credit rating are
# those in force on the row's day (`k`), or the card's current ones (`c`) when asked for.
COMPOSITION_DIMENSIONS = {
    "grade": ("grade", "coalesce({t}.grade, 'ungraded')"),
    "channel": ("channel", "coalesce({t}.channel, 'unknown')"),
    "credit_rating": ("credit_rating", "coalesce({t}.credit_rating, 'unrated')"),
    "product_group": ("product_group", "s.product_group"),
    "sku": ("sku", "s.sku"),
    "district": ("district_id", "s.district_id"),
    "area": ("area_id", "s.area_id"),
}
Classification = Literal["at_sale", "current"]


def _classes_at_sale(directory: str) -> str:
    """The card's classification on the row's business date: the last change on or before that
    day; for a day before the first one known (history imported later), the first one."""
    return f"""
        LEFT JOIN LATERAL (
            SELECT k.grade, k.channel, k.credit_rating FROM {directory}.customer_classes k
            WHERE k.customer_id = s.customer_id
            ORDER BY k.effective_on <= s.business_date DESC,
                     CASE WHEN k.effective_on <= s.business_date THEN k.effective_on END DESC,
                     CASE WHEN k.effective_on <= s.business_date THEN k.position END DESC,
                     k.effective_on, k.position
            LIMIT 1
        ) k ON true
    """


async def composition(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    by: str,
    classification: Classification = "at_sale",
    page: Page,
) -> Result:
    q = Query()
    sales_filters(q, scope, asked, start, end)
    column, key = COMPOSITION_DIMENSIONS[by]
    d = schemas["directory"]
    if classification == "at_sale":
        classes = _classes_at_sale(d)
        key = key.format(t="k")
    else:
        classes = f"LEFT JOIN {d}.customers c ON c.customer_id = s.customer_id"
        key = key.format(t="c")
    sql = f"""
        SELECT {key} AS {column},
               sum(s.quantity - s.returned_quantity) AS quantity,
               sum(s.amount_fen - s.returned_amount_fen) AS amount_fen
        FROM {schemas["sales"]}.sales_daily s
        {classes}
        {q.clause()} GROUP BY 1
    """
    result = await paged(
        conn,
        f"SELECT g.*, sum(g.amount_fen) OVER () AS _all_amount,"
        f" sum(g.quantity) OVER () AS _all_quantity FROM ({sql}) g",
        q.args,
        page,
        "amount_fen DESC, 1",
    )
    for item in result.items:
        all_amount, all_quantity = item.pop("_all_amount"), item.pop("_all_quantity")
        item["amount_share"] = round(item["amount_fen"] / all_amount, 4) if all_amount else None
        item["quantity_share"] = round(item["quantity"] / all_quantity, 4) if all_quantity else None
    return result


async def target_achievement(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    *,
    month: str,
    as_of: date,
    level: str | None,
    subject_id: str | None,
    product_group: str | None,
    page: Page,
) -> Result:
    first, last = month_bounds(month)
    upto = min(as_of, last)
    d, s = schemas["directory"], schemas["sales"]
    q = Query()
    q.where("t.month = {}", month)
    q.equal("t.level", level)
    q.equal("t.subject_id", subject_id)
    q.equal("t.product_group", product_group)
    # The subject's place in the territory, for the reader's line.
    placed = """
        CASE t.level WHEN 'rep' THEN st.district_id WHEN 'district' THEN t.subject_id END AS district_id,
        CASE t.level WHEN 'rep' THEN st.area_id WHEN 'district' THEN di.area_id ELSE t.subject_id END AS area_id
    """
    if scope.rep_id is not None:
        q.where("t.level = 'rep' AND t.subject_id = {}", scope.rep_id)
    elif scope.district_id is not None:
        q.where(
            "((t.level = 'district' AND t.subject_id = {}) OR (t.level = 'rep' AND st.district_id = {}))",
            scope.district_id,
            scope.district_id,
        )
    elif scope.area_id is not None:
        q.where(
            "((t.level = 'area' AND t.subject_id = {}) OR (t.level = 'district' AND di.area_id = {})"
            " OR (t.level = 'rep' AND st.area_id = {}))",
            scope.area_id,
            scope.area_id,
            scope.area_id,
        )
    start_p, end_p = q.param(first), q.param(upto)
    sql = f"""
        SELECT t.target_id, t.month, t.level, t.subject_id, t.product_group, t.amount_fen AS target_fen,
               {placed},
               (SELECT coalesce(sum(x.amount_fen - x.returned_amount_fen), 0)
                  FROM {s}.sales_daily x
                 WHERE x.business_date BETWEEN {start_p} AND {end_p}
                   AND CASE t.level WHEN 'rep' THEN x.rep_id = t.subject_id
                                    WHEN 'district' THEN x.district_id = t.subject_id
                                    ELSE x.area_id = t.subject_id END
                   AND (t.product_group IS NULL OR x.product_group = t.product_group)) AS actual_fen
        FROM {schemas["targets"]}.targets t
        LEFT JOIN {d}.staff st ON t.level = 'rep' AND st.staff_id = t.subject_id
        LEFT JOIN {d}.districts di ON t.level = 'district' AND di.district_id = t.subject_id
        {q.clause()}
    """
    result = await paged(conn, sql, q.args, page, "level, subject_id, product_group NULLS FIRST")
    elapsed = max((upto - first).days + 1, 0)
    days = (last - first).days + 1
    for item in result.items:
        target = item["target_fen"]
        item["as_of"] = upto.isoformat()
        item["achievement"] = measure("target_achievement", item["actual_fen"], target)
        expected = target * elapsed // days
        item["expected_by_now_fen"] = expected
        item["on_track"] = item["actual_fen"] >= expected
    return result


async def promotions(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    promotion_id: str | None,
    active_on: date | None,
    page: Page,
) -> Result:
    s, d = schemas["sales"], schemas["directory"]
    q = Query()
    q.equal("p.promotion_id", promotion_id)
    if active_on is not None:
        q.where("{} BETWEEN p.starts_on AND p.ends_on", active_on)
    sq = Query(args=q.args)
    sq.territory(scope, asked, rep="x.rep_id", district="x.district_id", area="x.area_id")
    within = sq.clause("AND")

    # Sales of the promotion's SKUs to its channels (all, when it names none) in a period.
    def period_sales(first: str, last: str) -> str:
        return f"""(SELECT coalesce(sum(x.amount_fen - x.returned_amount_fen), 0) AS amount_fen,
                           coalesce(sum(x.quantity - x.returned_quantity), 0) AS quantity
                      FROM {s}.sales_daily x
                      LEFT JOIN {d}.customers c ON c.customer_id = x.customer_id
                     WHERE x.business_date BETWEEN {first} AND {last}
                       AND (cardinality(p.skus) = 0 OR x.sku = ANY(p.skus))
                       AND (cardinality(p.channels) = 0 OR c.channel = ANY(p.channels)) {within})"""

    sql = f"""
        SELECT p.promotion_id, p.name, p.starts_on, p.ends_on, p.skus, p.channels, p.budget_fen,
               coalesce(cost.spent_fen, 0) AS spent_fen,
               p.budget_fen - coalesce(cost.spent_fen, 0) AS budget_left_fen,
               promoted.quantity AS promoted_quantity, promoted.amount_fen AS promoted_amount_fen,
               promoted.gifts AS gifts_issued,
               during.quantity AS period_quantity, during.amount_fen AS period_amount_fen,
               before.quantity AS before_quantity, before.amount_fen AS before_amount_fen,
               (p.starts_on - (p.ends_on - p.starts_on + 1)) AS before_starts_on,
               (p.starts_on - 1) AS before_ends_on
        FROM {s}.promotions p
        LEFT JOIN LATERAL (SELECT sum(cost_fen) AS spent_fen FROM {s}.promotion_costs c
                           WHERE c.promotion_id = p.promotion_id) cost ON true
        LEFT JOIN LATERAL (SELECT coalesce(sum(x.quantity - x.returned_quantity), 0) AS quantity,
                                  coalesce(sum(x.amount_fen - x.returned_amount_fen), 0) AS amount_fen,
                                  coalesce(sum(x.gift_quantity), 0) AS gifts
                           FROM {s}.sales_daily x WHERE x.promotion_id = p.promotion_id {within}) promoted ON true
        LEFT JOIN LATERAL {period_sales("p.starts_on", "p.ends_on")} during ON true
        LEFT JOIN LATERAL {period_sales("p.starts_on - (p.ends_on - p.starts_on + 1)", "p.starts_on - 1")} before ON true
        {q.clause()}
    """
    result = await paged(conn, sql, q.args, page, "starts_on, promotion_id")
    for item in result.items:
        before, during = item["before_amount_fen"], item["period_amount_fen"]
        item["uplift"] = round(during / before - 1, 4) if before else None
        item["budget_used"] = round(item["spent_fen"] / item["budget_fen"], 4) if item["budget_fen"] else None
    return result
