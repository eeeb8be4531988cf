"""The benchmark's PostgreSQL statement report: a figure's statements, named by the database they
ran in even after the figure dropped it, and nothing from before the figure started."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from bench import pg_statements as statements
from bench.harness import Stack, markdown
from salesplatform.devstack.servers import PostgresServer, drop_database


async def test_a_figure_sees_its_own_statements_by_database_after_the_drop(scratch_dir: Path) -> None:
    stack = Stack(scratch_dir, pg_statements=True)
    stack.postgres = PostgresServer(scratch_dir / "pg", fsync_off=True, settings=statements.SETTINGS)
    with stack.postgres:
        before = await stack.fresh_database("baseline")
        conn = await asyncpg.connect(before)
        await conn.execute("CREATE TABLE earlier (n int)")
        await conn.close()

        await statements.reset(stack.admin_dsn)  # the figure starts
        dsn = await stack.fresh_database("orders")
        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE ledger (n int)")
        for n in range(50):
            await conn.execute("INSERT INTO ledger VALUES ($1)", n)
        await conn.close()
        await drop_database(stack.admin_dsn, dsn.rsplit("/", 1)[-1])

        top = await statements.top(stack.admin_dsn, stack.databases)

    inserts = [s for s in top if s.query.startswith("INSERT INTO ledger")]
    assert len(inserts) == 1 and inserts[0].calls == 50 and inserts[0].rows == 50
    assert statements.database_kind(inserts[0].database) == "orders"
    assert not any("earlier" in s.query for s in top)  # counted before the reset
    assert 0 < inserts[0].share_percent <= 100
    assert sum(s.share_percent for s in top) <= 100.5

    report = {
        "started_at": "2026-12-06T00:00:00+00:00",
        "mode": "quick",
        "runs": 3,
        "machine": {},
        "baselines": {},
        "figures": [
            {
                "figure": "3",
                "title": "End to end",
                "status": "ok",
                "error": None,
                "measurements": {},
                "ratios": [],
                "goals": [],
                "memory": {},
                "notes": [],
                "details": {"pg_statements": [s.to_dict() for s in top]},
            }
        ],
        "profile": None,
        "seconds": 1,
    }
    text = markdown(report)
    assert "| orders | " in text and "`INSERT INTO ledger VALUES ($1)`" in text
