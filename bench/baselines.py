"""The raw parts, measured in the same run as the figures that are compared with them.

Each function does one run and returns events (or messages) per second. They use the same
321-byte JSON envelope docs/baselines.md was measured with and the same servers as the figures
(PostgreSQL with default fsync settings, nats-server with file-backed JetStream).

- raw nats-py: JetStream publish with one awaited ack at a time; `publish_async` pipelined
  (nats-py's default of at most 4000 pending); a durable pull consumer fetching 500 and acking
  each message.
- raw asyncpg on an events table with a unique (stream_id, version): one INSERT per
  transaction; `executemany` of 500 rows per transaction; COPY (`copy_records_to_table`) of
  5000 rows per transaction; replay through a server-side cursor ordered by id + `orjson.loads`.
- the `eventsourcing` library (PostgreSQL recorder): save one new aggregate with one event.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import nats
import orjson
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

ENVELOPE_BYTES = 321
_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC).isoformat(timespec="microseconds")


def envelope(i: int) -> dict[str, Any]:
    """The i-th benchmark envelope: the platform envelope's main fields, exactly 321 bytes as JSON."""
    body: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=i + 1)),
        "event_type": "order.placed",
        "schema_version": 1,
        "stream_id": f"order-{i // 10:010d}",
        "stream_version": i % 10 + 1,
        "occurred_at": _AT,
        "actor": {"id": "r1", "role": "rep"},
        "data": {"order_id": f"o-{i:010d}", "customer_id": f"c-{i % 5000:06d}", "amount_fen": 125000, "note": ""},
    }
    pad = ENVELOPE_BYTES - len(orjson.dumps(body))
    body["data"]["note"] = "x" * pad
    return body


def envelope_bytes(i: int) -> bytes:
    raw = orjson.dumps(envelope(i))
    assert len(raw) == ENVELOPE_BYTES, len(raw)
    return raw


@dataclass(frozen=True)
class Case:
    """One baseline: a stable key, its label, and what docs/baselines.md quotes for it."""

    key: str
    label: str
    reference: str
    unit: str = "events/s"


CASES: dict[str, Case] = {
    c.key: c
    for c in (
        Case("nats_publish_sync", "JetStream publish, one awaited ack at a time", "5,200", "msgs/s"),
        Case("nats_publish_async", "JetStream publish_async (≤4000 pending)", "36,000", "msgs/s"),
        Case("nats_fetch_ack", "JetStream durable pull, fetch 500, ack each", "17,200", "msgs/s"),
        Case("pg_insert_per_tx", "asyncpg one INSERT per transaction", "1,900"),
        Case("pg_executemany", "asyncpg executemany, 500 rows/tx", "48,000"),
        Case("pg_copy", "asyncpg COPY, 5000 rows/tx", "95,000–113,000"),
        Case("pg_replay", "replay: server cursor by id + orjson.loads", "243,000"),
        Case("es_save_one", "eventsourcing: save 1 aggregate with 1 event", "650–1,050"),
    )
}


# --- NATS ----------------------------------------------------------------------------------------


async def _fresh_stream(js: Any, name: str, subject: str) -> None:
    """A new file-backed stream, as the services' own streams are."""
    with contextlib.suppress(nats.js.errors.NotFoundError):
        await js.delete_stream(name)
    await js.add_stream(StreamConfig(name=name, subjects=[subject], duplicate_window=120.0))


async def nats_publish_sync(nats_url: str, login: dict[str, str], count: int) -> float:
    nc = await nats.connect(nats_url, **login)
    try:
        js = nc.jetstream()
        await _fresh_stream(js, "BENCH_SYNC", "base.bench.event.sync")
        payloads = [envelope_bytes(i) for i in range(count)]
        start = time.perf_counter()
        for p in payloads:
            await js.publish("base.bench.event.sync", p)
        elapsed = time.perf_counter() - start
        await js.delete_stream("BENCH_SYNC")
        return count / elapsed
    finally:
        await nc.close()


async def _publish_pipelined(js: Any, subject: str, payloads: list[bytes]) -> None:
    futures = [await js.publish_async(subject, p) for p in payloads]
    await asyncio.gather(*futures)


async def nats_publish_async(nats_url: str, login: dict[str, str], count: int) -> float:
    nc = await nats.connect(nats_url, **login)
    try:
        js = nc.jetstream()
        await _fresh_stream(js, "BENCH_ASYNC", "base.bench.event.async")
        payloads = [envelope_bytes(i) for i in range(count)]
        start = time.perf_counter()
        await _publish_pipelined(js, "base.bench.event.async", payloads)
        elapsed = time.perf_counter() - start
        await js.delete_stream("BENCH_ASYNC")
        return count / elapsed
    finally:
        await nc.close()


async def nats_fetch_ack(nats_url: str, login: dict[str, str], count: int) -> float:
    """Drain a filled stream through a durable pull consumer: fetch 500, ack each (no decode)."""
    nc = await nats.connect(nats_url, **login)
    try:
        js = nc.jetstream()
        await _fresh_stream(js, "BENCH_FETCH", "base.bench.event.fetch")
        await _publish_pipelined(js, "base.bench.event.fetch", [envelope_bytes(i) for i in range(count)])
        await js.add_consumer(
            "BENCH_FETCH",
            ConsumerConfig(
                durable_name="bench_fetch",
                ack_policy=AckPolicy.EXPLICIT,
                max_ack_pending=20_000,
            ),
        )
        psub = await js.pull_subscribe_bind("bench_fetch", "BENCH_FETCH")
        received = 0
        start = time.perf_counter()
        while received < count:
            msgs = await psub.fetch(500, timeout=5)
            for m in msgs:
                await m.ack()
            received += len(msgs)
        await nc.flush()
        elapsed = time.perf_counter() - start
        await psub.unsubscribe()
        await js.delete_stream("BENCH_FETCH")
        return count / elapsed
    finally:
        await nc.close()


# --- PostgreSQL ----------------------------------------------------------------------------------

RAW_TABLE = """
CREATE TABLE IF NOT EXISTS raw_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream_id   text NOT NULL,
    version     integer NOT NULL,
    event_type  text NOT NULL,
    data        jsonb NOT NULL,
    UNIQUE (stream_id, version)
)
"""


def _rows(count: int, offset: int = 0) -> list[tuple[str, int, str, str]]:
    rows = []
    for i in range(offset, offset + count):
        body = envelope(i)
        rows.append((body["stream_id"], body["stream_version"], body["event_type"], orjson.dumps(body).decode()))
    return rows


async def _fresh_table(conn: asyncpg.Connection) -> None:
    await conn.execute("DROP TABLE IF EXISTS raw_events")
    await conn.execute(RAW_TABLE)


async def pg_insert_per_tx(dsn: str, count: int) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await _fresh_table(conn)
        rows = _rows(count)
        sql = "INSERT INTO raw_events (stream_id, version, event_type, data) VALUES ($1, $2, $3, $4)"
        start = time.perf_counter()
        for row in rows:
            async with conn.transaction():
                await conn.execute(sql, *row)
        return count / (time.perf_counter() - start)
    finally:
        await conn.close()


async def pg_executemany(dsn: str, count: int, batch: int = 500) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await _fresh_table(conn)
        rows = _rows(count)
        sql = "INSERT INTO raw_events (stream_id, version, event_type, data) VALUES ($1, $2, $3, $4)"
        start = time.perf_counter()
        for i in range(0, count, batch):
            async with conn.transaction():
                await conn.executemany(sql, rows[i : i + batch])
        return count / (time.perf_counter() - start)
    finally:
        await conn.close()


async def pg_copy(dsn: str, count: int, batch: int = 5000) -> float:
    conn = await asyncpg.connect(dsn)
    try:
        await _fresh_table(conn)
        rows = _rows(count)
        columns = ("stream_id", "version", "event_type", "data")
        start = time.perf_counter()
        for i in range(0, count, batch):
            async with conn.transaction():
                await conn.copy_records_to_table("raw_events", records=rows[i : i + batch], columns=columns)
        return count / (time.perf_counter() - start)
    finally:
        await conn.close()


async def fill_raw_events(dsn: str, count: int) -> None:
    """The table the replay reads: `count` envelopes, loaded by COPY (not timed)."""
    conn = await asyncpg.connect(dsn)
    try:
        await _fresh_table(conn)
        columns = ("stream_id", "version", "event_type", "data")
        for i in range(0, count, 20_000):
            n = min(20_000, count - i)
            await conn.copy_records_to_table("raw_events", records=_rows(n, i), columns=columns)
        await conn.execute("VACUUM ANALYZE raw_events")
    finally:
        await conn.close()


async def pg_replay(dsn: str, count: int) -> float:
    """Read the whole table back in log order and decode every event (fill_raw_events first)."""
    conn = await asyncpg.connect(dsn)
    try:
        seen = 0
        start = time.perf_counter()
        async with conn.transaction():
            async for record in conn.cursor("SELECT data FROM raw_events ORDER BY id", prefetch=5000):
                orjson.loads(record[0])
                seen += 1
        elapsed = time.perf_counter() - start
        if seen != count:
            raise RuntimeError(f"replay read {seen} events, expected {count}")
        return seen / elapsed
    finally:
        await conn.close()


# --- the eventsourcing library -----------------------------------------------------------------


_peer_classes: tuple[type, type] | None = None


def _peer() -> tuple[type, type]:
    """The peer's aggregate and application, defined once (the library registers topics)."""
    global _peer_classes
    if _peer_classes is None:
        from eventsourcing.application import Application
        from eventsourcing.domain import Aggregate, event

        class PeerOrder(Aggregate):
            @event("Placed")
            def __init__(self, customer_id: str, amount_fen: int, note: str) -> None:
                self.customer_id = customer_id
                self.amount_fen = amount_fen
                self.note = note

        class PeerOrders(Application[uuid.UUID]):
            pass

        _peer_classes = (PeerOrder, PeerOrders)
    return _peer_classes


def es_save_one(dsn: str, count: int) -> float:
    """Save `count` new aggregates of one event each with eventsourcing's PostgreSQL recorder.

    Synchronous (the library is); each save is its own transaction, as in the library's own
    one-aggregate-per-call benchmark.
    """
    order_cls, app_cls = _peer()
    parts = urlsplit(dsn)
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.path.lstrip("/"),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_PASSWORD": parts.password or "",
        "POSTGRES_POOL_SIZE": "2",
    }
    app = app_cls(env=env)
    try:
        # A payload of about the size of the other baselines' data.
        note = "x" * 160
        app.save(order_cls(customer_id="c-warmup", amount_fen=1, note=note))
        start = time.perf_counter()
        for i in range(count):
            app.save(order_cls(customer_id=f"c-{i:08d}", amount_fen=125000, note=note))
        return count / (time.perf_counter() - start)
    finally:
        app.close()


# --- the run -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Events per run of each baseline."""

    nats_publish_sync: int
    nats_publish_async: int
    nats_fetch_ack: int
    pg_insert_per_tx: int
    pg_executemany: int
    pg_copy: int
    pg_replay: int
    es_save_one: int


QUICK = Sizes(1_500, 15_000, 15_000, 600, 15_000, 40_000, 60_000, 300)
FULL = Sizes(10_000, 100_000, 100_000, 5_000, 100_000, 250_000, 1_000_000, 3_000)


async def measure(
    stack: Any,
    keys: list[str],
    sizes: Sizes,
    runs: int,
    say: Callable[[str], None] = print,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The baselines named by `keys`, `runs` times each, on fresh tables and streams.
    Returns (measurements by key, errors by key)."""
    from bench.harness import Measurement, error_text

    results: dict[str, Measurement] = {}
    errors: dict[str, str] = {}
    if not keys:
        return results, errors
    dsn = await stack.fresh_database("baseline")
    es_dsn = await stack.fresh_database("baseline_es") if "es_save_one" in keys else dsn
    nats_url = stack.nats.url
    login = stack.login("bench")  # the raw baselines run in an account of their own

    async def in_thread(fn: Callable[[str, int], float], target: str, n: int) -> float:
        return await asyncio.to_thread(fn, target, n)

    jobs: Mapping[str, Callable[[int], Any]] = {
        "nats_publish_sync": lambda n: nats_publish_sync(nats_url, login, n),
        "nats_publish_async": lambda n: nats_publish_async(nats_url, login, n),
        "nats_fetch_ack": lambda n: nats_fetch_ack(nats_url, login, n),
        "pg_insert_per_tx": lambda n: pg_insert_per_tx(dsn, n),
        "pg_executemany": lambda n: pg_executemany(dsn, n),
        "pg_copy": lambda n: pg_copy(dsn, n),
        "pg_replay": lambda n: pg_replay(dsn, n),
        "es_save_one": lambda n: in_thread(es_save_one, es_dsn, n),
    }
    try:
        for key in keys:
            case = CASES[key]
            m = Measurement(key, case.label, case.unit)
            n = getattr(sizes, key)
            try:
                if key == "pg_replay":
                    await fill_raw_events(dsn, n)
                for _ in range(runs):
                    m.add(await jobs[key](n))
            except Exception as exc:  # noqa: BLE001 - reported with the run's results
                errors[key] = error_text(exc)
            if m.runs:
                results[key] = m
            say(f"baseline {case.label}: " + (f"{m.median:,.0f} {case.unit}" if m.runs else "error " + errors[key]))
    finally:
        await stack.drop_database(dsn)
        if es_dsn != dsn:
            await stack.drop_database(es_dsn)
    return results, errors
