"""Receivables ageing as of a date, collections in a date range, and the credit-rating analysis."""

from __future__ import annotations

from datetime import date

import asyncpg

from reporting_service.domain.kpi import AGEING
from reporting_service.queries.common import (
    Page,
    Query,
    Result,
    Territory,
    paged,
)
from salesplatform.dues import overdue_sql
from salesplatform.territory import Reach

AGEING_GROUPS = {
    "customer": [
        "o.customer_id",
        "cu.name AS customer_name",
        "cu.rep_id",
        "cu.district_id",
        "cu.area_id",
        "cu.credit_limit_fen",
        "cu.payment_terms_days",
    ],
    "rep": ["cu.rep_id"],
    "district": ["cu.district_id"],
    "area": ["cu.area_id"],
    "total": [],
}


def _open_invoices(schemas: dict[str, str], as_of: str) -> str:
    """Each invoice issued by `as_of` with what was still open on that day (less what was paid
    and credited by then), its days past due and whether it was overdue."""
    r = schemas["receivables"]
    return f"""
        SELECT i.invoice_id, i.customer_id,
               i.amount_fen - coalesce(p.paid_fen, 0) - coalesce(c.credited_fen, 0) AS open_fen,
               {as_of}::date - i.due_on AS days_past_due,
               {overdue_sql("i.due_on", f"{as_of}::date")} AS overdue
        FROM {r}.invoices i
        LEFT JOIN (SELECT invoice_id, sum(amount_fen) AS paid_fen FROM {r}.allocations
                   WHERE received_on <= {as_of} GROUP BY invoice_id) p USING (invoice_id)
        LEFT JOIN (SELECT invoice_id, sum(credited_fen) AS credited_fen FROM {r}.credit_notes
                   WHERE credited_on <= {as_of} GROUP BY invoice_id) c USING (invoice_id)
        WHERE i.issued_on <= {as_of}
    """


def _bucket(name: str, first: int | None, last: int | None) -> str:
    bounds = [
        f"o.days_past_due >= {first}" if first is not None else "",
        f"o.days_past_due <= {last}" if last is not None else "",
    ]
    return f"coalesce(sum(o.open_fen) FILTER (WHERE {' AND '.join(b for b in bounds if b)}), 0)::bigint AS {name},"


_BUCKETS = (
    "\n".join(_bucket(*b) for b in AGEING)
    + """
    coalesce(sum(o.open_fen), 0)::bigint AS open_fen,
    coalesce(sum(o.open_fen) FILTER (WHERE o.overdue), 0)::bigint AS past_due_fen,
    count(*) AS open_invoices
"""
)


async def ageing(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    as_of: date,
    group_by: str,
    page: Page,
) -> Result:
    q = Query()
    at = q.param(as_of)
    q.where("o.open_fen > 0")
    q.territory(scope, asked, rep="cu.rep_id", district="cu.district_id", area="cu.area_id")
    q.equal("o.customer_id", asked.customer_id)
    columns = AGEING_GROUPS[group_by]
    keys = [c.split(" AS ")[0] for c in columns]
    sql = f"""
        SELECT {"".join(c + ", " for c in columns)}{_BUCKETS}
        FROM ({_open_invoices(schemas, at)}) o
        LEFT JOIN {schemas["directory"]}.customers cu ON cu.customer_id = o.customer_id
        {q.clause()}
        {"GROUP BY " + ", ".join(keys) if keys else ""}
    """
    order = {
        "customer": "customer_id",
        "rep": "rep_id NULLS LAST",
        "district": "district_id NULLS LAST",
        "area": "area_id NULLS LAST",
        "total": "1",
    }[group_by]
    result = await paged(conn, sql, q.args, page, order)
    for item in result.items:
        item["as_of"] = as_of.isoformat()
    return result


COLLECTION_GROUPS = {
    "customer": ["p.customer_id", "cu.name AS customer_name", "cu.rep_id", "cu.district_id", "cu.area_id"],
    "rep": ["cu.rep_id"],
    "district": ["cu.district_id"],
    "area": ["cu.area_id"],
    "total": [],
}


async def collections(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    group_by: str,
    page: Page,
) -> Result:
    """Payments received in the range, and the part of them that paid invoices after their due
    date, per customer or the customer's current rep, district or area."""
    r = schemas["receivables"]
    q = Query()
    first, last = q.param(start), q.param(end)
    q.where(f"p.received_on BETWEEN {first} AND {last}")
    q.territory(scope, asked, rep="cu.rep_id", district="cu.district_id", area="cu.area_id")
    q.equal("p.customer_id", asked.customer_id)
    columns = COLLECTION_GROUPS[group_by]
    keys = [c.split(" AS ")[0] for c in columns]
    sql = f"""
        SELECT {"".join(c + ", " for c in columns)}
               count(*) AS payments,
               coalesce(sum(p.amount_fen), 0)::bigint AS collected_fen,
               coalesce(sum(late.amount_fen), 0)::bigint AS overdue_collected_fen
        FROM {r}.payments p
        LEFT JOIN (SELECT a.payment_id, sum(a.amount_fen) AS amount_fen
                   FROM {r}.allocations a JOIN {r}.invoices i USING (invoice_id)
                   WHERE a.received_on BETWEEN {first} AND {last}
                     AND {overdue_sql("i.due_on", "a.received_on")}
                   GROUP BY a.payment_id) late USING (payment_id)
        LEFT JOIN {schemas["directory"]}.customers cu ON cu.customer_id = p.customer_id
        {q.clause()}
        {"GROUP BY " + ", ".join(keys) if keys else ""}
    """
    order = {
        "customer": "customer_id",
        "rep": "rep_id NULLS LAST",
        "district": "district_id NULLS LAST",
        "area": "area_id NULLS LAST",
        "total": "1",
    }[group_by]
    return await paged(conn, sql, q.args, page, order)


async def credit(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    as_of: date,
    group_by: str,
    page: Page,
) -> Result:
    """Per credit rating (or customer): customers, their limits, sales in the period and the
    receivables open on `as_of` against the limits."""
    d, s = schemas["directory"], schemas["sales"]
    q = Query()
    at, first, last = q.param(as_of), q.param(start), q.param(end)
    q.where("cu.status IN ('active', 'dormant', 'lost', 'prospect')")
    q.territory(scope, asked, rep="cu.rep_id", district="cu.district_id", area="cu.area_id")
    q.equal("cu.customer_id", asked.customer_id)
    per_customer = f"""
        SELECT cu.customer_id, cu.name AS customer_name, coalesce(cu.credit_rating, 'unrated') AS credit_rating,
               cu.credit_limit_fen, cu.payment_terms_days, cu.rep_id, cu.district_id, cu.area_id,
               coalesce(sold.amount_fen, 0)::bigint AS sales_amount_fen,
               coalesce(owed.open_fen, 0)::bigint AS open_fen,
               coalesce(owed.past_due_fen, 0)::bigint AS past_due_fen
        FROM {d}.customers cu
        LEFT JOIN (SELECT customer_id, sum(amount_fen - returned_amount_fen) AS amount_fen
                   FROM {s}.sales_daily WHERE business_date BETWEEN {first} AND {last}
                   GROUP BY customer_id) sold USING (customer_id)
        LEFT JOIN (SELECT customer_id, sum(open_fen) AS open_fen,
                          sum(open_fen) FILTER (WHERE overdue) AS past_due_fen
                   FROM ({_open_invoices(schemas, at)}) o WHERE open_fen > 0
                   GROUP BY customer_id) owed USING (customer_id)
        {q.clause()}
    """
    if group_by == "customer":
        sql = f"""SELECT c.*, c.credit_limit_fen IS NOT NULL AND c.open_fen > c.credit_limit_fen AS over_limit,
                         c.credit_limit_fen - c.open_fen AS headroom_fen FROM ({per_customer}) c"""
        order = "customer_id"
    else:
        sql = f"""
            SELECT c.credit_rating, count(*) AS customers,
                   coalesce(sum(c.credit_limit_fen), 0)::bigint AS credit_limit_fen,
                   sum(c.sales_amount_fen)::bigint AS sales_amount_fen,
                   sum(c.open_fen)::bigint AS open_fen, sum(c.past_due_fen)::bigint AS past_due_fen,
                   count(*) FILTER (WHERE c.credit_limit_fen IS NOT NULL AND c.open_fen > c.credit_limit_fen)
                       AS customers_over_limit
            FROM ({per_customer}) c GROUP BY c.credit_rating
        """
        order = "credit_rating"
    result = await paged(conn, sql, q.args, page, order)
    total_sales = sum(i["sales_amount_fen"] for i in result.items) if group_by != "customer" else None
    for item in result.items:
        item["as_of"] = as_of.isoformat()
        if group_by != "customer":
            item["limit_used"] = (
                round(item["open_fen"] / item["credit_limit_fen"], 4) if item["credit_limit_fen"] else None
            )
            item["sales_share"] = round(item["sales_amount_fen"] / total_sales, 4) if total_sales else None
    return result
