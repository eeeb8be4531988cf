"""The read side in one place: every lookup of the service's tables, one module per topic, as
module-level functions taking a connection and returning rows. Routes call them and shape the
answer; handlers call them for what a decision needs besides the aggregates."""

from __future__ import annotations

from typing import Any

import asyncpg

from visit_service.domain.access import ListScope


async def fetch(conn: asyncpg.Connection, sql: str, *args: Any) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(sql, *args)
    return rows


async def fetchrow(conn: asyncpg.Connection, sql: str, *args: Any) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(sql, *args)
    return row


def in_scope(scope: ListScope, first_arg: int, table: str = "") -> tuple[str, list[Any]]:
    """` AND district_id = $n …` for the scope, with its arguments numbered from `first_arg`."""
    clauses, args = [], []
    if scope.district_id is not None:
        args.append(scope.district_id)
        clauses.append(f"{table}district_id = ${first_arg + len(args) - 1}")
    if scope.area_id is not None:
        args.append(scope.area_id)
        clauses.append(f"{table}area_id = ${first_arg + len(args) - 1}")
    return (" AND " + " AND ".join(clauses)) if clauses else "", args
