"""Field records: satisfaction surveys, key-account visit reports and coaching notes."""

from __future__ import annotations

from datetime import date

import asyncpg

from salesplatform.projections import active_schema
from visit_service.domain.access import ListScope
from visit_service.projections.directory import CustomerDirectory
from visit_service.projections.visits import FieldRecords
from visit_service.queries import fetch, in_scope


async def _totals(conn: asyncpg.Connection, period: str, scope: ListScope) -> asyncpg.Record:
    """How many surveys of the half year, and how many satisfied."""
    schema = await active_schema(conn, FieldRecords.name)
    where, args = in_scope(scope, 2)
    row = await conn.fetchrow(
        f"SELECT count(*) AS surveys, count(*) FILTER (WHERE satisfied) AS satisfied"
        f" FROM {schema}.surveys WHERE period = $1{where}",
        period,
        *args,
    )
    assert row is not None  # an aggregate always has its row
    return row


async def _questions(conn: asyncpg.Connection, period: str, scope: ListScope) -> list[asyncpg.Record]:
    """The average score of each question of the half year's surveys."""
    schema = await active_schema(conn, FieldRecords.name)
    where, args = in_scope(scope, 2)
    return await fetch(
        conn,
        f"SELECT q.key AS question, round(avg(q.value::int), 2)::float AS average, count(*) AS answers"
        f" FROM {schema}.surveys, jsonb_each_text(scores) AS q WHERE period = $1{where}"
        " GROUP BY q.key ORDER BY q.key",
        period,
        *args,
    )


async def surveys(
    conn: asyncpg.Connection, period: str, scope: ListScope
) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """The half year's surveys: how many, how many satisfied; each question's average score."""
    return await _totals(conn, period, scope), await _questions(conn, period, scope)


async def key_accounts_without_report(
    conn: asyncpg.Connection, since: date, day: date, scope: ListScope
) -> list[asyncpg.Record]:
    """A-grade customers with no key-account report filed after `since` up to `day`."""
    customers = await active_schema(conn, CustomerDirectory.name)
    reports = await active_schema(conn, FieldRecords.name)
    where, args = in_scope(scope, 3, "c.")
    return await fetch(
        conn,
        f"SELECT c.customer_id, c.name, c.rep_id, c.district_id, c.area_id,"
        f" (SELECT max(filed_on) FROM {reports}.key_account_reports r WHERE r.customer_id = c.customer_id)"
        f" AS last_report_on"
        f" FROM {customers}.customers c WHERE c.grade = 'A'"
        f" AND c.status IS DISTINCT FROM 'merged' AND NOT EXISTS ("
        f"   SELECT 1 FROM {reports}.key_account_reports r WHERE r.customer_id = c.customer_id"
        f"   AND r.filed_on > $1 AND r.filed_on <= $2){where}"
        " ORDER BY c.customer_id",
        since,
        day,
        *args,
    )


async def key_account_reports(conn: asyncpg.Connection, customer_id: str) -> list[asyncpg.Record]:
    schema = await active_schema(conn, FieldRecords.name)
    return await fetch(
        conn,
        f"SELECT * FROM {schema}.key_account_reports WHERE customer_id = $1 ORDER BY filed_on DESC, report_id",
        customer_id,
    )


async def coaching(conn: asyncpg.Connection, rep_id: str) -> list[asyncpg.Record]:
    schema = await active_schema(conn, FieldRecords.name)
    return await fetch(
        conn, f"SELECT * FROM {schema}.coaching WHERE rep_id = $1 ORDER BY business_date DESC, coaching_id", rep_id
    )
