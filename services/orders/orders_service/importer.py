"""Bulk import of historical orders, deliveries, cancellations and payments from a JSON-lines file.

    python -m orders_service.importer history.jsonl          # ORDERS_DATABASE_URL names the database

Prints the report (counts, totals, rejected records with line, field and message) as JSON; exits
0 when every record was imported (or was imported before), 2 when some were rejected. The same
import is served over HTTP (POST /imports) and, in batches, by the `import_history` command
(orders.ingest.import_history).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import asyncpg

from orders_service.application.history import ImportReport, import_lines
from orders_service.bootstrap import definition, inline_projections
from orders_service.config import OrderRulesSettings
from orders_service.domain.policy import OrderPolicy
from salesplatform.clock import SystemClock
from salesplatform.events import Actor, service_actor
from salesplatform.migrations import migrate
from salesplatform.projections import ensure_projection
from salesplatform.settings import InvalidSettings, settings_for
from salesplatform.store import init_connection

IMPORT_ACTOR = service_actor("orders", "history-import")


async def prepare(conn: asyncpg.Connection) -> None:
    """Tables and read models, for an import into a database the service has not run on yet."""
    defn = definition()
    await migrate(conn, defn.migrations)
    for projection in [*defn.projections, *inline_projections()]:
        await ensure_projection(conn, projection)


async def import_file(
    database_url: str,
    path: Path,
    *,
    policy: OrderPolicy | None = None,
    actor: Actor = IMPORT_ACTOR,
    chunk_size: int = 10_000,
) -> ImportReport:
    policy = policy or OrderRulesSettings().policy()
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2, init=init_connection)
    try:
        async with pool.acquire() as conn:
            await prepare(conn)
        with path.open("rb") as lines:
            return await import_lines(
                pool,
                lines,
                actor=actor,
                clock=SystemClock(),
                policy=policy,
                chunk_size=chunk_size,
            )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_service.importer", description=__doc__.splitlines()[0])
    parser.add_argument(
        "file", type=Path, help="JSON lines: one order, delivery, cancellation or payment record per line"
    )
    parser.add_argument("--chunk-size", type=int, default=10_000, help="records per transaction")
    parser.add_argument("--database-url", help="the orders database (default: ORDERS_DATABASE_URL)")
    args = parser.parse_args(argv)
    if not args.file.exists():
        parser.error(f"{args.file} does not exist")
    database_url = args.database_url
    if not database_url:
        try:
            database_url = settings_for("orders").database_url
        except InvalidSettings as exc:
            parser.error(f"set ORDERS_DATABASE_URL or pass --database-url ({exc})")
    report = asyncio.run(import_file(database_url, args.file, chunk_size=args.chunk_size))
    sys.stdout.write(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return 2 if report.rejected else 0


if __name__ == "__main__":
    raise SystemExit(main())
