"""The rep KPI board (KPI看板): field work, deliveries and complaint response per rep, rolled up
by the reps' current districts and areas."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import asyncpg

from reporting_service.domain.kpi import measure
from reporting_service.projections.field import COUNTERS
from reporting_service.queries.common import (
    Page,
    Query,
    Result,
    Territory,
    paged,
)
from salesplatform.territory import Reach

Grouping = Literal["rep", "district", "area", "total"]

_GROUP_COLUMNS = {
    "rep": ["r.rep_id", "st.name AS rep_name", "st.district_id", "st.area_id"],
    "district": ["st.district_id"],
    "area": ["st.area_id"],
    "total": [],
}

_SUMMED = (
    *COUNTERS,
    "planned",
    "unplanned",
    "deliveries",
    "on_time",
    "complaints",
    "complaints_acknowledged",
    "complaints_decided",
    "complaints_within_sla",
)


async def kpi_board(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    start: date,
    end: date,
    group_by: Grouping,
    page: Page,
) -> Result:
    f, s, sq, d = schemas["field_work"], schemas["sales"], schemas["service_quality"], schemas["directory"]
    q = Query()
    first, last = q.param(start), q.param(end)
    q.territory(scope, asked, rep="r.rep_id", district="st.district_id", area="st.area_id")
    field_sums = ", ".join(f"sum({c}) AS {c}" for c in ("planned", "unplanned", *COUNTERS))
    columns = _GROUP_COLUMNS[group_by]
    keys = [c.split(" AS ")[0] for c in columns]
    sums = ", ".join(f"coalesce(sum({c}), 0)::bigint AS {c}" for c in _SUMMED)
    sql = f"""
        WITH work AS (
            SELECT rep_id, {field_sums} FROM {f}.kpi_daily
            WHERE business_date BETWEEN {first} AND {last} GROUP BY rep_id
        ), delivered AS (
            SELECT rep_id, sum(deliveries) AS deliveries, sum(on_time) AS on_time
            FROM {s}.deliveries_daily
            WHERE business_date BETWEEN {first} AND {last} AND rep_id <> '' GROUP BY rep_id
        ), complained AS (
            SELECT coalesce(c.rep_id, cu.rep_id) AS rep_id, count(*) AS complaints,
                   count(*) FILTER (WHERE c.acknowledged_at IS NOT NULL) AS complaints_acknowledged,
                   count(*) FILTER (WHERE c.acknowledged_at IS NOT NULL OR c.breached) AS complaints_decided,
                   count(*) FILTER (WHERE c.acknowledged_within_sla) AS complaints_within_sla
            FROM {sq}.complaints c LEFT JOIN {d}.customers cu ON cu.customer_id = c.customer_id
            WHERE c.received_on BETWEEN {first} AND {last} GROUP BY 1
        ), reps AS (
            SELECT rep_id FROM work UNION SELECT rep_id FROM delivered
            UNION SELECT rep_id FROM complained WHERE rep_id IS NOT NULL
        )
        SELECT {", ".join([*columns, sums])}
        FROM reps r
        LEFT JOIN work USING (rep_id) LEFT JOIN delivered USING (rep_id) LEFT JOIN complained USING (rep_id)
        LEFT JOIN {d}.staff st ON st.staff_id = r.rep_id
        {q.clause()}
        {"GROUP BY " + ", ".join(keys) if keys else ""}
    """
    order = {"rep": "rep_id", "district": "district_id NULLS LAST", "area": "area_id NULLS LAST", "total": "1"}[
        group_by
    ]
    result = await paged(conn, sql, q.args, page, order)
    for item in result.items:
        item["kpis"] = kpis(item)
    return result


def kpis(c: dict[str, Any]) -> dict[str, Any]:
    """Every KPI of the board from the summed counters, each against its goal."""
    return {
        "planned_visit_completion": measure("planned_visit_completion", c["planned_done"], c["planned"]),
        "visit_success": measure("visit_success", c["successful"], c["done"]),
        "suggested_order_adoption": measure("suggested_order_adoption", c["adopted"], c["suggested"]),
        "required_sku_distribution": measure("required_sku_distribution", c["required_present"], c["required_skus"]),
        "price_tag_compliance": measure("price_tag_compliance", c["price_tags_ok"], c["audits"]),
        "display_compliance": measure("display_compliance", c["display_ok"], c["audits"]),
        "cooler_compliance": measure("cooler_compliance", c["coolers_compliant"], c["cooler_checks"]),
        "cooler_misuse": measure("cooler_misuse", c["coolers_misused"], c["cooler_checks"]),
        # Check-ins made at the outlet (within the configured distance) or confirmed by a
        # supervisor, of those whose position could be judged.
        "check_in_verification": measure("check_in_verification", c["check_ins_verified"], c["check_ins_judged"]),
        "on_time_delivery": measure("on_time_delivery", c["on_time"], c["deliveries"]),
        # A complaint counts once its 48 hours are decided: acknowledged, or flagged as breached.
        "complaint_ack_48h": measure("complaint_ack_48h", c["complaints_within_sla"], c["complaints_decided"]),
    }
