"""Complaints by category with their 48-hour SLA, and customer satisfaction by half-year."""

from __future__ import annotations

from datetime import date

import asyncpg

from reporting_service.domain.kpi import measure, rate, satisfaction_goal
from reporting_service.queries.common import (
    Page,
    Query,
    Result,
    Territory,
    paged,
)
from salesplatform.territory import Reach

COMPLAINT_DIMENSIONS = {
    "category": "x.category",
    "severity": "x.severity",
    "channel": "x.channel",
    "department": "x.department",
}


def _customer_line(q: Query, scope: Reach, asked: Territory) -> None:
    # A complaint or survey belongs to its rep (or the customer's rep) and the customer's place.
    q.territory(scope, asked, rep="coalesce(x.rep_id, cu.rep_id)", district="cu.district_id", area="cu.area_id")
    q.equal("x.customer_id", asked.customer_id)


async def complaints(
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
    q = Query()
    q.where("x.received_on BETWEEN {} AND {}", start, end)
    _customer_line(q, scope, asked)
    keys = [f"{COMPLAINT_DIMENSIONS[g]} AS {g}" for g in group_by]
    sql = f"""
        SELECT {"".join(k + ", " for k in keys)}
               count(*) AS received,
               count(*) FILTER (WHERE x.acknowledged_at IS NOT NULL) AS acknowledged,
               count(*) FILTER (WHERE x.acknowledged_within_sla) AS acknowledged_within_sla,
               count(*) FILTER (WHERE x.breached) AS breached,
               count(*) FILTER (WHERE x.acknowledged_at IS NULL AND NOT x.breached) AS awaiting_acknowledgement,
               count(*) FILTER (WHERE x.acknowledged_at IS NOT NULL OR x.breached) AS decided,
               count(*) FILTER (WHERE x.resolved_on IS NOT NULL) AS resolved,
               count(*) FILTER (WHERE x.closed_on IS NOT NULL) AS closed,
               count(*) FILTER (WHERE x.customer_misuse) AS customer_misuse
        FROM {schemas["service_quality"]}.complaints x
        LEFT JOIN {schemas["directory"]}.customers cu ON cu.customer_id = x.customer_id
        {q.clause()}
        {"GROUP BY " + ", ".join(str(i + 1) for i in range(len(keys))) if keys else ""}
    """
    result = await paged(conn, sql, q.args, page, ", ".join(group_by) or "1")
    for item in result.items:
        # Only complaints whose 48 hours are decided (acknowledged, or flagged as breached) count.
        item["sla_compliance"] = measure("complaint_ack_48h", item["acknowledged_within_sla"], item.pop("decided"))
    return result


SATISFACTION_DIMENSIONS = {
    "rep": "coalesce(x.rep_id, cu.rep_id)",
    "district": "cu.district_id",
    "area": "cu.area_id",
}


async def satisfaction(
    conn: asyncpg.Connection,
    schemas: dict[str, str],
    scope: Reach,
    asked: Territory,
    *,
    from_period: str | None,
    to_period: str | None,
    group_by: list[str],
    page: Page,
) -> Result:
    sq = schemas["service_quality"]
    # The programme's first survey sets the year count for the 95 / 97 / 98% goals.
    first_period = await conn.fetchval(f"SELECT min(period) FROM {sq}.surveys")
    q = Query()
    if from_period:
        q.where("x.period >= {}", from_period)
    if to_period:
        q.where("x.period <= {}", to_period)
    _customer_line(q, scope, asked)
    keys = ["x.period AS period"] + [f"{SATISFACTION_DIMENSIONS[g]} AS {g}_id" for g in group_by]
    sql = f"""
        SELECT {", ".join(keys)}, count(*) AS surveys, count(*) FILTER (WHERE x.satisfied) AS satisfied
        FROM {sq}.surveys x
        LEFT JOIN {schemas["directory"]}.customers cu ON cu.customer_id = x.customer_id
        {q.clause()}
        GROUP BY {", ".join(str(i + 1) for i in range(len(keys)))}
    """
    result = await paged(conn, sql, q.args, page, ", ".join(str(i + 1) for i in range(len(keys))))
    for item in result.items:
        goal = satisfaction_goal(item["period"], first_period)
        value = rate(item["satisfied"], item["surveys"])
        item["satisfaction"] = {
            "value": value,
            "numerator": item["satisfied"],
            "denominator": item["surveys"],
            "goal": goal,
            "met": None if value is None else value >= goal - 1e-9,
        }
        item["first_period"] = first_period
    return result
