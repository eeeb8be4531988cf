"""Rolling updates: a release's migrations run apart from its replicas (the migration Job), and
the release before it keeps serving beside it on the migrated schema and the same streams.

Release N is the platform's tally service; release N+1 is the same code with an expand
migration (a table N does not know) and a new optional field on an event it writes
(`sheet.counted` gets `channel`), as a release that follows the expand/contract rule looks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import orjson
import pytest
from running_system import SIGNING_KEY, Service, eventually
from tally import CountVisits, Sheet, SheetOpened, VisitsCounted, build_bus, definition
from tally import _opened_v1_to_v2 as opened_v1_to_v2

from salesplatform.auth import mint
from salesplatform.clock import Clock
from salesplatform.commands import CommandBus
from salesplatform.devstack.pytest_plugin import nats_login_for_tests, settings_for_tests
from salesplatform.errors import InvalidInput
from salesplatform.events import Actor, EventRegistry, Role
from salesplatform.messaging import Topology
from salesplatform.migrations import MigrationsPending, migrate, pending
from salesplatform.projections import Projection, ensure_projection
from salesplatform.service import Runtime, ServiceDefinition, http_app, migrate_database
from salesplatform.uow import UnitOfWork

ROOT = Path(__file__).resolve().parents[1]
REP = Actor(id="r1", role=Role.rep, district="d1")
SHEETS = 6

# --- release N+1 -----------------------------------------------------------------------------

EXPAND_MIGRATION = """
-- Release N+1: the channels a visit may be counted through. A new table: release N, which
-- does not know it, keeps working.
CREATE TABLE sheet_channels (channel text PRIMARY KEY);
INSERT INTO sheet_channels VALUES ('phone'), ('visit');
"""


class VisitsCountedWithChannel(VisitsCounted):
    """`sheet.counted` of release N+1: an optional field, the schema version unchanged."""

    channel: str | None = None


class CountVisitsWithChannel(CountVisits):
    channel: str | None = None


def next_registry() -> EventRegistry:
    registry_n1 = EventRegistry([SheetOpened, VisitsCountedWithChannel])
    registry_n1.upcaster("sheet.opened", 1)(opened_v1_to_v2)
    return registry_n1


def next_bus(reg: EventRegistry, clock: Clock) -> CommandBus:
    bus = build_bus(reg, clock)
    bus.specs.pop("count_visits")

    @bus.command(CountVisitsWithChannel, roles={Role.rep, Role.supervisor, Role.system}, batched=True)
    async def count_visits(cmd: CountVisitsWithChannel, uow: UnitOfWork) -> dict[str, Any]:
        if cmd.channel is not None and not await uow.conn.fetchval(
            "SELECT true FROM public.sheet_channels WHERE channel = $1", cmd.channel
        ):
            raise InvalidInput(f"no channel {cmd.channel}", code="unknown_channel", field="channel")
        sheet = await uow.get(Sheet, cmd.sheet_id)
        sheet.count(cmd.count)  # the rules of release N, then its event with the new field
        sheet.pending[-1] = VisitsCountedWithChannel(count=cmd.count, channel=cmd.channel)
        await uow.save(sheet)
        return {"sheet_id": cmd.sheet_id, "total": sheet.total, "version": sheet.version}

    return bus


def next_release(migrations: Path) -> ServiceDefinition:
    release = definition()
    release.registry = next_registry()
    release.build_bus = next_bus
    release.migrations = migrations
    return release


# --- helpers ---------------------------------------------------------------------------------


async def _serve(stack: contextlib.AsyncExitStack, release: ServiceDefinition, settings: Any) -> Service:
    runtime = await stack.enter_async_context(Runtime(release, settings, run_timers=False))
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(runtime)), base_url="http://tally")
    )
    return Service(runtime, client)


async def _stream_message_ids(nats_url: str, stream: str) -> list[str]:
    """The Nats-Msg-Id of every message the stream holds, in order."""
    nc = await nats.connect(nats_url, **nats_login_for_tests("tally"))
    try:
        js = nc.jetstream()
        last = (await js.stream_info(stream)).state.last_seq
        ids = []
        for seq in range(1, last + 1):
            msg = await js.get_msg(stream, seq)
            ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
        return ids
    finally:
        await nc.close()


async def test_two_releases_serve_side_by_side_on_one_database_and_stream(
    make_database: Any, nats_url: str, unique_prefix: str, tmp_path: Path
) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "001_sheet_channels.sql").write_text(EXPAND_MIGRATION)
    dsn = await make_database("rolling")
    settings_n = settings_for_tests(dsn, nats_url, unique_prefix, service="tally")
    settings_n1 = settings_for_tests(dsn, nats_url, unique_prefix, service="tally", migrate_at_start=False)
    topology = Topology("tally", unique_prefix)
    token = mint(REP, SIGNING_KEY)
    expected_counts = 0

    async with contextlib.AsyncExitStack() as stack:
        release_n = await _serve(stack, definition(), settings_n)
        for i in range(SHEETS):
            await release_n.ok(REP, "open_sheet", {"sheet_id": f"s{i}", "title": f"Route {i}"})

        # The migration Job of N+1, while N serves; then N+1's replica, which does not migrate.
        assert await migrate_database(next_release(migrations), settings_n1) == ["service/001_sheet_channels.sql"]
        release_n1 = await _serve(stack, next_release(migrations), settings_n1)

        nc = await nats.connect(nats_url, **nats_login_for_tests("system"))  # an outside system
        stack.push_async_callback(nc.close)
        js = nc.jetstream()
        counted = 0

        async def by_request(i: int) -> dict[str, Any]:
            # The command queue group: whichever release's replica takes it.
            reply = await nc.request(
                topology.subject("cmd", "count_visits"),
                orjson.dumps({"sheet_id": f"s{i % SHEETS}", "count": 1}),
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"rr-{i}"},
                timeout=10,
            )
            return orjson.loads(reply.data)

        for i in range(30):
            # N+1 writes events with the new field; N then loads the same sheets, so it reads them.
            channel = ("phone", "visit", None)[i % 3]
            await release_n1.ok(REP, "count_visits", {"sheet_id": f"s{i % SHEETS}", "count": 2, "channel": channel})
            await release_n.ok(REP, "count_visits", {"sheet_id": f"s{i % SHEETS}", "count": 3})
            counted += 5
            answer = await by_request(i)
            assert answer["ok"], answer
            counted += 1
        # Asynchronous commands: one work queue that both releases' ingest loops take from.
        for i in range(60):
            await js.publish(
                topology.subject("ingest", "count_visits"),
                orjson.dumps({"sheet_id": f"s{i % SHEETS}", "count": 1}),
                headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"ingest-{i}"},
            )
            counted += 1
        expected_counts = 30 * 3 + 60

        async def all_counted() -> bool:
            async with release_n.runtime.pool.acquire() as conn:
                n = await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'sheet.counted'")
            return bool(n == expected_counts)

        await eventually(all_counted, timeout=60)
        # A redelivered ingest message is recognised by its key, whichever release sees it.
        await js.publish(
            topology.subject("ingest", "count_visits"),
            orjson.dumps({"sheet_id": "s0", "count": 1}),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "ingest-0"},
        )
        await asyncio.sleep(1.0)
        for release in (release_n, release_n1):
            await release.runtime.relay_flush()

        async with release_n.runtime.pool.acquire() as conn:
            rows = await conn.fetch("SELECT stream_id, stream_version, event_id, data FROM events ORDER BY position")
            totals = dict(await conn.fetch("SELECT sheet_id, total FROM p_sheet_totals_1.totals"))
            failures = await conn.fetchval("SELECT count(*) FROM projection_failures")
        counted_rows = [r for r in rows if r["stream_version"] > 1]
        assert len(counted_rows) == expected_counts
        assert sum(r["data"]["count"] for r in counted_rows) == counted
        assert sum(1 for r in counted_rows if r["data"].get("channel")) == 20
        # Every stream gapless, every event once.
        by_stream: dict[str, list[int]] = {}
        for r in rows:
            by_stream.setdefault(r["stream_id"], []).append(r["stream_version"])
        assert all(versions == list(range(1, len(versions) + 1)) for versions in by_stream.values())
        assert sum(totals.values()) == counted
        assert failures == 0

        # Each release loads a sheet the other wrote to, and goes on from its total.
        by_n = await release_n.runtime.run_command("count_visits", {"sheet_id": "s1", "count": 1}, REP)
        by_n1 = await release_n1.runtime.run_command("count_visits", {"sheet_id": "s1", "count": 1}, REP)
        assert by_n.ok and by_n1.ok
        assert (by_n.result["total"], by_n1.result["total"]) == (totals["s1"] + 1, totals["s1"] + 2)

        # The stream holds each event exactly once, though both releases ran a relay.
        async def relayed() -> list[str] | None:
            ids = await _stream_message_ids(nats_url, topology.event_stream)
            return ids if len(ids) >= len(rows) + 2 else None

        ids = await eventually(relayed, timeout=30)
        async with release_n.runtime.pool.acquire() as conn:
            event_ids = [str(r[0]) for r in await conn.fetch("SELECT event_id FROM events ORDER BY position")]
        assert sorted(ids) == sorted(event_ids)
        assert len(set(ids)) == len(ids)
        # Nothing was dead-lettered by either release.
        assert (await release_n.runtime.js.stream_info(topology.dlq_stream)).state.messages == 0


async def test_replicas_that_do_not_migrate_wait_for_the_migration_job(
    make_database: Any, nats_url: str, unique_prefix: str
) -> None:
    dsn = await make_database("waits")
    settings = settings_for_tests(
        dsn, nats_url, unique_prefix, service="tally", migrate_at_start=False, migration_wait_seconds=30
    )
    runtime = Runtime(definition(), settings, run_timers=False)
    starting = asyncio.create_task(runtime.start())
    await asyncio.sleep(1.0)
    assert not starting.done()  # nothing migrated yet: it waits, it does not migrate itself
    conn = await asyncpg.connect(dsn)
    try:
        assert "platform/001_platform.sql" in await pending(conn)
        await migrate(conn)  # the Job
    finally:
        await conn.close()
    await asyncio.wait_for(starting, timeout=30)
    try:
        assert (await runtime.ready())["database"]
    finally:
        await runtime.stop()

    never = settings_for_tests(
        await make_database("never"),
        nats_url,
        unique_prefix,
        service="tally",
        migrate_at_start=False,
        migration_wait_seconds=0.5,
    )
    with pytest.raises(MigrationsPending, match="migrate"):
        await Runtime(definition(), never, run_timers=False).start()


async def test_the_migrate_command_only_migrates(make_database: Any, nats_url: str) -> None:
    """`python -m customer_service migrate` through the images' launcher: the customer
    service's migrations are applied, no server is started, and a second run changes nothing."""
    dsn = await make_database("job")
    env = {
        **os.environ,
        "SALESPLATFORM_SERVICE": "customer",
        "CUSTOMER_DATABASE_URL": dsn,
        "CUSTOMER_HTTP_PORT": "1",  # would fail to bind if it tried to serve
        "NATS_URL": "nats://127.0.0.1:1",  # unreachable: the Job never needs NATS
        # nor keys: no AUTH_JWKS* is set
    }
    command = [sys.executable, "-m", "salesplatform.launch", "migrate"]
    first = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    assert '"migrations_done"' in first.stdout and "service/001_customer_keys.sql" in first.stdout
    conn = await asyncpg.connect(dsn)
    try:
        names = {r[0] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        assert {"service/001_customer_keys.sql", "service/002_personal_search_key.sql"} <= names
        assert await conn.fetchval("SELECT count(*) FROM projections") == 0  # the service never started
    finally:
        await conn.close()
    again = await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and '"applied": []' in again.stdout

    wrong = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "salesplatform.launch", "migrat"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode != 0 and "usage" in wrong.stderr


class _Counts(Projection):
    name = "release_counts"
    schema_sql = "CREATE TABLE counts (n int)"


async def test_older_code_does_not_rebuild_a_newer_projection_back(make_database: Any) -> None:
    """During a rolling update, a replica of release N restarting after N+1 switched a
    projection to its new code version keeps the new generation instead of rebuilding back."""
    conn = await asyncpg.connect(await make_database("generations"))
    try:
        await migrate(conn)
        newer, older, newest = _Counts(), _Counts(), _Counts()
        newer.code_version, older.code_version, newest.code_version = 2, 1, 3  # type: ignore[misc]
        assert not await ensure_projection(conn, newer)  # new: generation 1 at version 2
        assert not await ensure_projection(conn, older)  # older code: no rebuild back
        assert await ensure_projection(conn, newest)  # newer code: rebuild due
    finally:
        await conn.close()
