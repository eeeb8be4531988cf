"""The customer base as of a day: new, active, dormant, lost, prospects."""

from __future__ import annotations

from datetime import date

import asyncpg

from reporting_service.queries.common import (
    Page,
    Query,
    Result,
    Territory,
    paged,
)
from salesplatform.territory import Reach

BASE_GROUPS = {"rep": "cu.rep_id", "district": "cu.district_id", "area": "cu.area_id", "total": None}


async def customer_base(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    dormant_days: int,
    group_by: str,
    page: Page,
) -> Result:
    d, s = schemas["directory"], schemas["sales"]
    q = Query()
    first, as_of, days = q.param(start), q.param(end), q.param(dormant_days)
    q.territory(scope, asked, rep="cu.rep_id", district="cu.district_id", area="cu.area_id")
    key = BASE_GROUPS[group_by]
    # A customer's status on the day is its last status change by then.
    sql = f"""
        WITH status AS (
            SELECT DISTINCT ON (customer_id) customer_id, status
            FROM {d}.customer_statuses WHERE effective_on <= {as_of}
            ORDER BY customer_id, effective_on DESC, position DESC
        ), became_active AS (
            SELECT customer_id, min(effective_on) AS first_active_on
            FROM {d}.customer_statuses WHERE status = 'active' GROUP BY customer_id
        ), last_order AS (
            SELECT customer_id, max(placed_on) AS last_order_on
            FROM {s}.orders WHERE placed_on <= {as_of} AND (cancelled_on IS NULL OR cancelled_on > {as_of})
            GROUP BY customer_id
        ), classified AS (
            SELECT cu.*, st.status AS status_then, ba.first_active_on, lo.last_order_on,
                   st.status IN ('active', 'dormant') AS trading,
                   (lo.last_order_on > {as_of}::date - {days}::int
                    OR ba.first_active_on > {as_of}::date - {days}::int) AS ordering
            FROM {d}.customers cu
            JOIN status st USING (customer_id)
            LEFT JOIN became_active ba USING (customer_id)
            LEFT JOIN last_order lo USING (customer_id)
        )
        SELECT {key + " AS " + group_by + "_id, " if key else ""}
               count(*) FILTER (WHERE first_active_on BETWEEN {first} AND {as_of}) AS new,
               count(*) FILTER (WHERE trading AND coalesce(ordering, false)) AS active,
               count(*) FILTER (WHERE trading AND NOT coalesce(ordering, false)) AS dormant,
               count(*) FILTER (WHERE status_then = 'lost') AS lost,
               count(*) FILTER (WHERE status_then IN ('pending', 'prospect')) AS prospects
        FROM classified cu
        {q.clause()}
        {"GROUP BY 1" if key else ""}
    """
    result = await paged(conn, sql, q.args, page, "1" if key else "new")
    for item in result.items:
        item.update({"from": start.isoformat(), "as_of": end.isoformat(), "dormant_days": dormant_days})
    return result
