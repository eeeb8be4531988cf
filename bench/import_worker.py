"""The process that runs the orders service's history importer for figure 4.

`bench_import_async(n)` builds a scratch orders database (customers, catalogue), imports `n`
synthetic history records through the importer (`orders_service.application.history`), imports
them again (which must append nothing), and COPYs the same events into a table shaped like
`events`, in a process of its own. It runs as its own process so its memory is measured like a
service's. Job on stdin, result on stdout, both JSON:

    {"records": 20000, "admin_dsn": "postgresql://..."}  ->  {"events": ..., "seconds": ..., ...}
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import multiprocessing
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import structlog

from bench.history_data import customer_envelopes, synthetic_history
from orders_service.application.handlers import build_bus
from orders_service.application.history import import_lines
from orders_service.bootstrap import inline_projections
from orders_service.config import OrderRulesSettings
from orders_service.domain.events import registry
from orders_service.importer import IMPORT_ACTOR, prepare
from orders_service.projections.directory import CustomerDirectory
from salesplatform.clock import SystemClock
from salesplatform.commands import Request
from salesplatform.devstack.servers import create_database, drop_database
from salesplatform.events import Actor, Role
from salesplatform.projections import ProjectionRunner
from salesplatform.store import copy_foreign, init_connection


async def bench_import_async(n: int = 100_000, *, admin_dsn: str) -> dict[str, Any]:
    """Import `n` synthetic records into a scratch database (created and dropped here) and
    compare with a raw COPY of the same events into a plain table."""

    admin = admin_dsn
    name = f"orders_import_bench_{uuid.uuid4().hex[:8]}"
    dsn = await create_database(admin, name)
    policy = OrderRulesSettings().policy()
    now = datetime.now(UTC)
    clock = SystemClock()
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, init=init_connection)
        try:
            async with pool.acquire() as conn:
                await prepare(conn)
                customers = [f"c{i:04d}" for i in range(500)]
                async with conn.transaction():
                    await copy_foreign(conn, "CUSTOMER", customer_envelopes(customers, at=now - timedelta(days=400)))
            await ProjectionRunner(pool, [CustomerDirectory()]).run_once()
            bus = build_bus(registry, clock, policy, inline_projections())
            bus.pool = pool
            skus = {f"SKU-{i:02d}": 200 + 25 * i for i in range(20)}
            boss = Actor(id="m1", role=Role.sales_manager)
            for sku, price in skus.items():
                await bus.dispatch(_define(sku, price, boss))
            with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as handle:
                for record in synthetic_history(n, customers, skus, end=now - timedelta(hours=1)):
                    handle.write(orjson.dumps(record) + b"\n")
                path = Path(handle.name)
            try:
                options: dict[str, Any] = {"actor": IMPORT_ACTOR, "clock": clock, "policy": policy}
                with path.open("rb") as lines:  # noqa: ASYNC230 - a local file read by a one-off job
                    report = await import_lines(pool, lines, **options)
                started = time.perf_counter()
                with path.open("rb") as lines:  # noqa: ASYNC230 - a local file read by a one-off job
                    rerun = await import_lines(pool, lines, **options)
                rerun_seconds = time.perf_counter() - started
            finally:
                path.unlink()  # noqa: ASYNC240 - a local file of a one-off job
        finally:
            await pool.close()
        # In a process of its own: the comparison holds every event in memory at once, which
        # says nothing about the importer's own memory (measured as this process's).
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            raw_seconds = await asyncio.get_running_loop().run_in_executor(pool, _raw_copy_seconds_sync, dsn)
    finally:
        await drop_database(admin, name)
    return {
        "records": report.records,
        "accepted": report.accepted,
        "rejected": len(report.rejected),
        "events": report.events_appended,
        "seconds": round(report.seconds, 3),
        "records_per_second": round(report.records / report.seconds) if report.seconds else None,
        "events_per_second": round(report.events_appended / report.seconds) if report.seconds else None,
        "raw_copy_seconds": round(raw_seconds, 3),
        "total_vs_raw_copy": round(report.seconds / raw_seconds, 2) if raw_seconds else None,
        "rerun_seconds": round(rerun_seconds, 3),
        "rerun_events_appended": rerun.events_appended,
    }


def _define(sku: str, price: int, actor: Actor) -> Any:
    return Request(
        name="define_sku",
        actor=actor,
        payload={
            "sku": sku,
            "name": sku,
            "brand": "Bench",
            "product_group": f"group-{int(sku[-2:]) % 4}",
            "package": "case",
            "list_price_fen": price,
            "floor_price_fen": price - 50,
        },
    )


def _raw_copy_seconds_sync(dsn: str) -> float:
    return asyncio.run(_raw_copy_seconds(dsn))


async def _raw_copy_seconds(dsn: str) -> float:
    """The floor to compare with: a COPY of the same events, as stored, into a table shaped and
    indexed like `events` (no validation, no read models, no outbox)."""
    conn = await asyncpg.connect(dsn)  # the driver's own jsonb codec, which COPY can use
    try:
        rows = await conn.fetch(
            "SELECT stream_id, stream_version, event_id, event_type, schema_version, occurred_at, recorded_at,"
            " correlation_id, causation_id, actor::text, data::text FROM events WHERE causation_id LIKE 'import:%'"
        )
        await conn.execute(
            "CREATE TEMP TABLE raw_copy (LIKE events INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING INDEXES)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "raw_copy",
            records=[tuple(r) for r in rows],
            columns=[
                "stream_id",
                "stream_version",
                "event_id",
                "event_type",
                "schema_version",
                "occurred_at",
                "recorded_at",
                "correlation_id",
                "causation_id",
                "actor",
                "data",
            ],
        )
        return time.perf_counter() - started
    finally:
        await conn.close()


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    job = json.loads(sys.stdin.read())
    result = asyncio.run(bench_import_async(job["records"], admin_dsn=job["admin_dsn"]))
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
