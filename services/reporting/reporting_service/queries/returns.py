"""Returns by reason, product and resolution (退货)."""

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

_STATUS = """CASE WHEN r.resolved_on IS NOT NULL THEN 'resolved'
                  WHEN r.rejected_on IS NOT NULL THEN 'rejected'
                  WHEN r.approved_on IS NOT NULL THEN 'approved'
                  WHEN r.inspected_on IS NOT NULL THEN 'inspected'
                  ELSE 'requested' END"""

RETURN_DIMENSIONS = {
    "reason": "r.reason",
    "resolution": "coalesce(r.resolution, 'unresolved')",
    "scope": "r.scope",
    "status": _STATUS,
    "sku": "l.sku",
    "product_group": "coalesce(nullif(l.product_group, ''), sk.product_group, '')",
    "rep": "r.rep_id",
    "district": "r.district_id",
    "area": "r.area_id",
}
LINE_DIMENSIONS = {"sku", "product_group"}


async def returns(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    group_by: list[str],
    page: Page,
) -> Result:
    s = schemas["sales"]
    q = Query()
    q.where("r.requested_on BETWEEN {} AND {}", start, end)
    q.territory(scope, asked, rep="r.rep_id", district="r.district_id", area="r.area_id")
    q.equal("r.customer_id", asked.customer_id)
    keys = [f"{RETURN_DIMENSIONS[g]} AS {g}" for g in group_by]
    groups = ", ".join(str(i + 1) for i in range(len(keys)))
    counts = """
        count(DISTINCT r.return_id) AS returns,
        count(DISTINCT r.return_id) FILTER (WHERE r.approved_on IS NOT NULL) AS approved,
        count(DISTINCT r.return_id) FILTER (WHERE r.rejected_on IS NOT NULL) AS rejected,
        count(DISTINCT r.return_id) FILTER (WHERE r.resolved_on IS NOT NULL) AS resolved
    """
    if LINE_DIMENSIONS & set(group_by):
        # Per line: quantities and amounts of the lines of each SKU or product group.
        sql = f"""
            SELECT {"".join(k + ", " for k in keys)}{counts},
                   sum(l.quantity) AS quantity, sum(l.amount_fen) AS amount_fen
            FROM {s}.returns r JOIN {s}.return_lines l USING (return_id)
            LEFT JOIN {schemas["directory"]}.skus sk ON sk.sku = l.sku
            {q.clause()} {"GROUP BY " + groups if groups else ""}
        """
    else:
        sql = f"""
            SELECT {"".join(k + ", " for k in keys)}{counts},
                   sum(r.quantity) AS quantity, sum(r.amount_fen) AS amount_fen,
                   coalesce(sum(r.resolved_amount_fen), 0) AS resolved_amount_fen
            FROM {s}.returns r
            {q.clause()} {"GROUP BY " + groups if groups else ""}
        """
    return await paged(conn, sql, q.args, page, groups or "1")
