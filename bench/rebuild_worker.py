"""The process that rebuilds the reporting projections for figure 5, while a task keeps reading
every projection through `reading()` and counts the reads that fail. Each run has two passes:

- platform: `salesplatform.projections.rebuild(pool, [projection])` for each projection in turn;
- together: `salesplatform.projections.rebuild(pool, reports)`, one pass over the log for all
  the reports, switched together.

It runs as its own process so that its memory is measured like a service's. It reads its job as
JSON on stdin and prints the result as one JSON line on stdout:

    {"dsn": ..., "runs": 3, "readable": [...], "projections": [...], "platform": true, "together": [...]}
        ->  {"runs": [{"seconds": {...}, "together_seconds": ..., "reads": ..., ...}]}
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from typing import Any

import asyncpg
import structlog
import uvloop

QUERY_PAUSE_SECONDS = 0.01  # about a hundred reads a second: a busy dashboard, not a flood


def projections_by_name(names: list[str]) -> list[Any]:
    from reporting_service.bootstrap import definition
    from salesplatform.clock import SystemClock

    defn = definition()
    bus = defn.build_bus(defn.registry, SystemClock())
    every = {p.name: p for p in defn.projections + bus.inline_projections}
    return [every[n] for n in names]


class Reader:
    """Reads every projection in a loop during the rebuilds; a read that fails is counted."""

    def __init__(self, pool: asyncpg.Pool, names: list[str]) -> None:
        self.pool = pool
        self.names = names
        self.reads = 0
        self.failures = 0
        self.failure_samples: list[str] = []
        self._stop = asyncio.Event()

    async def run(self) -> None:
        from salesplatform.projections import reading

        while not self._stop.is_set():
            for name in self.names:
                try:
                    async with reading(self.pool, name) as conn:
                        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                        for row in tables:
                            await conn.fetchval(
                                f'SELECT count(*) FROM (SELECT 1 FROM "{row["tablename"]}" LIMIT 100) AS t'
                            )
                    self.reads += 1
                except Exception as exc:  # noqa: BLE001 - counted and reported: the figure's goal is zero
                    self.failures += 1
                    if len(self.failure_samples) < 5:
                        self.failure_samples.append(f"{name}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(QUERY_PAUSE_SECONDS)

    def stop(self) -> None:
        self._stop.set()


async def rebuild_all(job: dict[str, Any]) -> dict[str, Any]:
    from salesplatform.projections import rebuild
    from salesplatform.store import init_connection

    projections = projections_by_name(job["projections"]) if job.get("platform", True) else []
    together = projections_by_name(job.get("together") or [])
    pool = await asyncpg.create_pool(job["dsn"], min_size=2, max_size=4, init=init_connection)
    runs = []
    try:
        for _ in range(job["runs"]):
            reader = Reader(pool, job["readable"])
            reading_task = asyncio.create_task(reader.run())
            seconds: dict[str, float] = {}
            run: dict[str, Any] = {}
            try:
                for projection in projections:
                    start = time.perf_counter()
                    await rebuild(pool, [projection])
                    seconds[projection.name] = time.perf_counter() - start
                if together:
                    start = time.perf_counter()
                    try:
                        await rebuild(pool, together)
                        run["together_seconds"] = time.perf_counter() - start
                    except Exception as exc:  # noqa: BLE001 - reported with the figure; the platform pass stands
                        run["together_error"] = f"{type(exc).__name__}: {exc}"
            finally:
                reader.stop()
                await reading_task
            failed = await _failed_events(pool)
            runs.append(
                {
                    **run,
                    "seconds": seconds,
                    "reads": reader.reads,
                    "read_failures": reader.failures,
                    "read_failure_samples": reader.failure_samples,
                    "apply_failures": failed,
                }
            )
    finally:
        await pool.close()
    return {"runs": runs, "together_available": bool(together)}


async def _failed_events(pool: asyncpg.Pool) -> int:
    """Events a projection could not apply (kept in projection_failures): a sign the synthetic
    history does not fit the projections, reported with the figure."""
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM projection_failures"))


def main() -> int:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    job = json.loads(sys.stdin.read())
    # An operator's rebuild runs in the service (`POST /admin/projections/{name}/rebuild`), whose
    # server runs on uvloop: so does this stand-in for it.
    result = uvloop.run(rebuild_all(job))
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
