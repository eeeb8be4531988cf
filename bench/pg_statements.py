"""Where PostgreSQL spends its time during a figure: `pg_stat_statements`, when the run was asked
for it (`--pg-statements`).

py-spy shows where a service process spends its CPU; in figures 2 and 3 PostgreSQL uses as much
CPU per event as the services, and only the server can say which statements that is. The module
needs `shared_preload_libraries = pg_stat_statements`, so the run's own PostgreSQL is started
with it (`SETTINGS`); its counters are reset when a figure starts (after the figure's baselines)
and read when it ends. Loading the module costs the server a little on every statement, which is
why it is not on by default: the figures of a run with it are not compared with one without.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

SETTINGS = {"shared_preload_libraries": "pg_stat_statements", "pg_stat_statements.track": "all"}
TOP = 12
QUERY_CHARS = 160


@dataclass(frozen=True)
class Statement:
    database: str
    total_ms: float
    calls: int
    rows: int
    mean_us: float
    share_percent: float  # of the execution time of every statement counted
    query: str  # whitespace folded, cut at QUERY_CHARS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


async def reset(admin_dsn: str) -> None:
    """Start counting afresh (the extension is created in the admin database the first time)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        await conn.execute("SELECT pg_stat_statements_reset()")
    finally:
        await conn.close()


async def top(admin_dsn: str, dropped: Mapping[int, str], limit: int = TOP) -> list[Statement]:
    """The statements with the most execution time since `reset`, in every database, with the
    share each had of all of it. A figure drops its databases when it ends: `dropped` names
    them by oid."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT s.dbid, d.datname AS database, s.total_exec_time, s.calls, s.rows,
                   s.total_exec_time / nullif(sum(s.total_exec_time) OVER (), 0) AS share,
                   left(regexp_replace(s.query, '\\s+', ' ', 'g'), $2) AS query
            FROM pg_stat_statements s LEFT JOIN pg_database d ON d.oid = s.dbid
            WHERE s.query NOT LIKE '%pg_stat_statements%'
            ORDER BY s.total_exec_time DESC LIMIT $1
            """,
            limit,
            QUERY_CHARS,
        )
    finally:
        await conn.close()
    return [
        Statement(
            database=r["database"] or dropped.get(r["dbid"], "?"),
            total_ms=round(r["total_exec_time"], 1),
            calls=r["calls"],
            rows=r["rows"],
            mean_us=round(1000 * r["total_exec_time"] / r["calls"], 1) if r["calls"] else 0.0,
            share_percent=round(100 * (r["share"] or 0.0), 1),
            query=r["query"],
        )
        for r in rows
    ]


async def oid_of(admin_dsn: str, database: str) -> int:
    conn = await asyncpg.connect(admin_dsn)
    try:
        return int(await conn.fetchval("SELECT oid FROM pg_database WHERE datname = $1", database))
    finally:
        await conn.close()


def database_kind(name: str) -> str:
    """A figure's databases are named `<kind>_<random>`: the kind says whose statements they were."""
    head, _, tail = name.rpartition("_")
    return head if head and len(tail) == 8 else name


def markdown_rows(statements: list[dict[str, Any]]) -> list[str]:
    """A figure's statements as a Markdown table."""
    lines = [
        "| database | share | total ms | calls | mean µs | rows | statement |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for s in statements:
        query = s["query"].replace("|", "\\|")
        lines.append(
            f"| {database_kind(s['database'])} | {s['share_percent']:.1f}% | {s['total_ms']:,.0f} | {s['calls']:,} "
            f"| {s['mean_us']:,.0f} | {s['rows']:,} | `{query}` |"
        )
    return lines
