"""Bulk import of historical orders, deliveries and payments from a JSON-lines file.

    python -m orders_service.importer history.jsonl          # ORDERS_DATABASE_URL names the database

Prints the report (counts, totals, rejected records with line, field and message) as JSON; exits
0 when every record was imported (or was imported before), 2 when some were rejected. The same
import is served over HTTP (POST /imports) and, in batches, by the `import_history` command
(orders.ingest.import_history). `bench_import(n)` measures it against a raw COPY of the same
events; the benchmark suite calls it.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import orjson

from orders_service.application.history import ImportReport, import_lines
from orders_service.bootstrap import definition, inline_projections
from orders_service.config import OrderRulesSettings
from orders_service.domain.policy import OrderPolicy
from salesplatform.clock import SystemClock
from salesplatform.events import Actor, Envelope, Role, service_actor
from salesplatform.migrations import migrate
from salesplatform.projections import ensure_projection
from salesplatform.settings import InvalidSettings, settings_for
from salesplatform.store import copy_foreign, init_connection

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
    chunk_size: int = 5000,
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
                inline=inline_projections(),
                chunk_size=chunk_size,
            )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orders_service.importer", description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path, help="JSON lines: one order, delivery or payment record per line")
    parser.add_argument("--chunk-size", type=int, default=5000, help="records per transaction")
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


# -- synthetic history (tests and benchmark) ------------------------------------------------------


def synthetic_history(
    n: int,
    customer_ids: list[str],
    skus: dict[str, int],
    *,
    end: datetime,
    seed: int = 7,
) -> Iterator[dict[str, Any]]:
    """`n` valid records: about half orders, three in ten deliveries, two in ten payments.

    The first half of the customers pay their oldest invoices first, the others pay named
    invoices, so the generator knows what is open without mirroring the importer's ordering.
    `skus` maps SKU → list price in fen. Times run up to `end`.
    """
    rng = random.Random(seed)
    start = end - timedelta(days=365)
    step = (end - start - timedelta(days=3)) / max(n, 1)
    sku_list = sorted(skus)
    oldest_first = set(customer_ids[: len(customer_ids) // 2])
    undelivered: list[tuple[str, str, int, datetime]] = []  # (record id, customer, amount, placed_at)
    open_total: dict[str, int] = {}
    open_named: dict[str, list[list[Any]]] = {}  # customer → [[order record id, open fen]]
    orders = deliveries = payments = 0
    for i in range(n):
        at = start + step * i
        kind = i % 10
        if kind >= 8 and (open_total or open_named):
            payments += 1
            customer = rng.choice(sorted(set(open_total) | set(open_named)))
            record: dict[str, Any] = {
                "kind": "payment",
                "record_id": f"P{payments}",
                "customer_id": customer,
                "received_on": (at + timedelta(days=1)).date().isoformat(),
            }
            if customer in oldest_first:
                amount = min(open_total[customer], rng.randint(1, 400) * 100)
                open_total[customer] -= amount
                if not open_total[customer]:
                    del open_total[customer]
            else:
                entry = rng.choice(open_named[customer])
                amount = min(entry[1], rng.randint(1, 400) * 100)
                entry[1] -= amount
                record["allocations"] = [{"order_record_id": entry[0], "amount_fen": amount}]
                open_named[customer] = [e for e in open_named[customer] if e[1] > 0]
                if not open_named[customer]:
                    del open_named[customer]
            record["amount_fen"] = amount
            yield record
        elif kind >= 5 and undelivered:
            deliveries += 1
            rid, customer, amount, placed_at = undelivered.pop(0)
            yield {
                "kind": "delivery",
                "record_id": f"D{deliveries}",
                "order_record_id": rid,
                "delivered_at": (placed_at + timedelta(hours=rng.randint(2, 30))).isoformat(),
            }
            if customer in oldest_first:
                open_total[customer] = open_total.get(customer, 0) + amount
            else:
                open_named.setdefault(customer, []).append([rid, amount])
        else:
            orders += 1
            customer = rng.choice(customer_ids)
            chosen = rng.sample(sku_list, k=min(len(sku_list), rng.randint(1, 3)))
            lines: list[dict[str, Any]] = [
                {"sku": s, "quantity": rng.randint(1, 48), "unit_price_fen": skus[s] - rng.choice((0, 0, 10))}
                for s in chosen
            ]
            rid = f"H{orders}"
            undelivered.append((rid, customer, sum(x["quantity"] * x["unit_price_fen"] for x in lines), at))
            yield {
                "kind": "order",
                "record_id": rid,
                "customer_id": customer,
                "placed_at": at.isoformat(),
                "lines": lines,
            }


def customer_envelopes(customer_ids: list[str], *, at: datetime, terms_days: int = 30) -> list[Envelope]:
    """The customer service's events for test and benchmark customers (registered, credit set)."""
    actor = service_actor("customer")
    out = []
    for n, cid in enumerate(customer_ids):
        base = {
            "stream_id": f"customer-{cid}",
            "occurred_at": at,
            "recorded_at": at,
            "actor": actor,
            "schema_version": 1,
        }
        out.append(
            Envelope(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"registered:{cid}"),
                event_type="customer.registered",
                stream_version=1,
                data={
                    "customer_id": cid,
                    "name": f"Outlet {n}",
                    "district_id": f"d{n % 4}",
                    "area_id": f"a{n % 2}",
                    "division_id": "v1",
                    "rep_id": f"r{n % 8}",
                    "channel": "retail",
                    "status": "pending",
                },
                **base,
            )
        )
        out.append(
            Envelope(
                event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"credit:{cid}"),
                event_type="customer.credit_limit_set",
                stream_version=2,
                data={
                    "customer_id": cid,
                    "credit_rating": "A",
                    "credit_limit_fen": 10**12,
                    "payment_terms_days": terms_days,
                },
                **base,
            )
        )
    return out


# -- benchmark ----------------------------------------------------------------------------------


def _admin_dsn() -> str:
    dsn = os.environ.get("TEST_POSTGRES_ADMIN_DSN")
    if dsn:
        return dsn
    stack = Path(".run/stack.json")
    if stack.exists() and json.loads(stack.read_text()).get("pid") is not None:  # kept after a stop
        return cast("str", json.loads(stack.read_text())["postgres_admin_dsn"])
    raise RuntimeError("bench_import needs a PostgreSQL server: run `make run`, or set TEST_POSTGRES_ADMIN_DSN")


async def bench_import_async(n: int = 100_000, *, admin_dsn: str | None = None) -> dict[str, Any]:
    """Import `n` synthetic records into a scratch database (created and dropped here) and
    compare with a raw COPY of the same events into a plain table."""
    from orders_service.application.handlers import build_bus
    from orders_service.domain.events import registry
    from orders_service.projections.directory import CustomerDirectory
    from salesplatform.devstack.servers import create_database, drop_database
    from salesplatform.projections import ProjectionRunner

    admin = admin_dsn or _admin_dsn()
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
            inline = inline_projections()
            bus = build_bus(registry, clock, policy, inline)
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
                options: dict[str, Any] = {"actor": IMPORT_ACTOR, "clock": clock, "policy": policy, "inline": inline}
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
        "append_seconds": round(report.timings.get("append", 0.0), 3),
        "read_model_seconds": round(report.timings.get("read_models", 0.0), 3),
        "raw_copy_seconds": round(raw_seconds, 3),
        "append_vs_raw_copy": round(report.timings.get("append", 0.0) / raw_seconds, 2) if raw_seconds else None,
        "total_vs_raw_copy": round(report.seconds / raw_seconds, 2) if raw_seconds else None,
        "rerun_seconds": round(rerun_seconds, 3),
        "rerun_events_appended": rerun.events_appended,
    }


def _define(sku: str, price: int, actor: Actor) -> Any:
    from salesplatform.commands import Request

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


def bench_import(n: int = 100_000, *, admin_dsn: str | None = None) -> dict[str, Any]:
    """Blocking form of `bench_import_async` (callable with or without a running event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(bench_import_async(n, admin_dsn=admin_dsn))
    result: dict[str, Any] = {}
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.update(asyncio.run(bench_import_async(n, admin_dsn=admin_dsn)))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    worker = threading.Thread(target=run, name="bench-import")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return result


if __name__ == "__main__":
    raise SystemExit(main())
