"""Outages lose nothing: PostgreSQL stopped and restarted under ingest, LISTEN opened again,
failures judged by what they mean, and each outage logged once, as an outage."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import nats
import orjson
import pytest
import pytest_asyncio
import structlog.testing
from postgres_faults import FaultyPostgres, own_postgres_server, stop_held_up
from tally import SIGNING_KEY, definition, new_event
from waiting import wait_for

from salesplatform import metrics
from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import (
    nats_login_for_tests,
    settings_for_tests,
    stream_messages,
    write_nats_config_for_tests,
)
from salesplatform.devstack.servers import NatsServer, create_database
from salesplatform.events import Actor, Role
from salesplatform.messaging import JetStreamPublisher, OutboxRelay, Topology, ensure_streams
from salesplatform.migrations import migrate
from salesplatform.outages import OutageLog, is_contention, is_outage, outage_of
from salesplatform.projections import Projection, catch_up_once, ensure_projection
from salesplatform.service import Runtime, http_app
from salesplatform.store import append, init_connection
from salesplatform.timers import Timer, TimerRun

ERP = Actor(id="erp", role=Role.system)


def _lost_in_cleanup() -> Exception:
    """A rollback that failed on a connection already dead: the loss is what it stands for."""
    try:
        try:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        except asyncpg.exceptions.ConnectionDoesNotExistError:
            raise asyncpg.exceptions.InternalClientError(
                "cannot switch to state 15; another operation (2) is in progress"
            ) from None
    except asyncpg.exceptions.InternalClientError as exc:
        return exc


@pytest.mark.fast
@pytest.mark.parametrize(
    ("error", "dependency", "reason"),
    [
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), "postgresql", "cannot_connect_now"),
        (asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"), "postgresql", "cannot_connect_now"),
        (asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"), "postgresql", "admin_shutdown"),
        (asyncpg.exceptions.CrashShutdownError("terminating connection because of crash of another server process"), "postgresql", "crash_shutdown"),
        (asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"), "postgresql", "too_many_connections"),
        (asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"), "postgresql", "read_only"),
        (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"), "postgresql", "connection_lost"),
        (asyncpg.exceptions.InterfaceError("cannot call Connection.fetch(): connection has been released back to the pool"), "postgresql", "connection_lost"),
        (asyncpg.exceptions.InterfaceError("connection is closed"), "postgresql", "connection_lost"),
        (asyncpg.exceptions.InternalClientError("cannot switch to state 15; another operation (2) is in progress"), "postgresql", "connection_lost"),
        (_lost_in_cleanup(), "postgresql", "connection_lost"),
        (ConnectionRefusedError(111, "Connect call failed"), "network", "ConnectionRefusedError"),
        (TimeoutError(), "network", "timeout"),
        (nats.errors.ConnectionClosedError(), "nats", "ConnectionClosedError"),
        (nats.errors.NoRespondersError(), "nats", "NoRespondersError"),
    ],
)  # fmt: skip
def test_an_outage_is_known_by_what_the_error_means(error: Exception, dependency: str, reason: str) -> None:
    found = outage_of(error)
    assert found is not None and (found.dependency, found.reason) == (dependency, reason)
    assert not is_contention(error)


@pytest.mark.fast
@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.exceptions.DivisionByZeroError("division by zero"),
        asyncpg.exceptions.InterfaceError("cannot perform operation: another operation is in progress"),
        ValueError("bad input"),
        KeyError("x"),
    ],
)
def test_a_fault_of_the_work_itself_is_no_outage(error: Exception) -> None:
    assert not is_outage(error) and not is_contention(error)


@pytest.mark.fast
@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.SerializationError("could not serialize access due to concurrent update"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
    ],
)
def test_serialization_failures_and_deadlocks_are_contention(error: Exception) -> None:
    assert is_contention(error) and not is_outage(error)


@pytest.mark.fast
def test_an_outage_met_in_many_places_is_logged_once_when_it_begins_and_once_when_it_ends() -> None:
    outages = OutageLog("tally")
    down = asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            outages.failed("tally_ingest", down)
            outages.failed("projections", ConnectionRefusedError(111, "refused"))
        outages.recovered("tally_ingest")
        outages.failed("relay", down)
        outages.recovered("projections")
        outages.recovered("relay")
        outages.recovered("relay")
    began = [e for e in logs if e["event"] == "outage_began"]
    ended = [e for e in logs if e["event"] == "outage_ended"]
    assert len(began) == 1 and len(ended) == 1
    assert began[0]["log_level"] == "warning"
    assert (began[0]["dependency"], began[0]["reason"], began[0]["where"]) == (
        "postgresql",
        "cannot_connect_now",
        "tally_ingest",
    )
    assert ended[0]["where"] == ["projections", "relay", "tally_ingest"]
    assert ended[0]["duration_seconds"] >= 0
    assert not outages.ongoing and outages.count == 1


class _FailsOnceWithAReleasedConnection(Projection):
    """Applies like any projection, but its first batch meets a connection released back to
    the pool under it (what a database restart does to a runner's connection)."""

    name = "released_once"
    schema_sql = "CREATE TABLE seen (event_id uuid PRIMARY KEY)"

    def __init__(self) -> None:
        self.failed = False

    async def apply(self, conn, event):
        if not self.failed:
            self.failed = True
            raise asyncpg.exceptions.InterfaceError(
                "cannot call Connection.execute(): connection has been released back to the pool"
            )
        await conn.execute("INSERT INTO seen VALUES ($1)", event.envelope.event_id)
        return []


async def test_a_projection_that_loses_its_connection_records_no_failure_and_applies_later(db) -> None:
    projection = _FailsOnceWithAReleasedConnection()
    async with db.acquire() as conn:
        await ensure_projection(conn, projection)
        async with conn.transaction():
            await append(conn, "sheet-p1", 0, [new_event()])
        with structlog.testing.capture_logs() as logs:
            with pytest.raises(asyncpg.exceptions.InterfaceError):
                await catch_up_once(conn, projection)
            read, _ = await catch_up_once(conn, projection)
        assert read == 1
        assert await conn.fetchval("SELECT count(*) FROM public.projection_failures") == 0
        assert await conn.fetchval("SELECT count(*) FROM p_released_once_1.seen") == 1
    assert not [e for e in logs if e["log_level"] == "error"]


# -- PostgreSQL stopped and started again under a running service ---------------------------------


@pytest.fixture
def own_postgres():
    with own_postgres_server() as server:
        yield server


@pytest_asyncio.fixture
async def tally_on_own_postgres(own_postgres, nats_url, unique_prefix):
    dsn = await create_database(own_postgres.admin_dsn, "tally_" + uuid.uuid4().hex[:8])
    settings = settings_for_tests(dsn, nats_url, unique_prefix, service="tally", max_deliveries=2, ingest_batch=50)
    return settings


async def _stop(server: FaultyPostgres, fault: str) -> None:
    if fault == "kill -9":
        await asyncio.to_thread(server.kill_postmaster)
    elif fault == "pg_ctl stop -m smart":
        await stop_held_up(server)
    else:
        await asyncio.to_thread(server.stop_with, fault.removeprefix("pg_ctl stop -m "))


class Load:
    """Commands sent to a service's ingest, each with a key of its own, every tenth a count on
    a sheet no one opened (refused on its merits). A publish NATS does not confirm is sent
    again with the same key, as an outside system does."""

    def __init__(self, rt: Runtime, sender: nats.NATS, name: str) -> None:
        self.rt = rt
        self.js = sender.jetstream()
        self.name = name
        self.token = mint(ERP, SIGNING_KEY)
        self.valid: list[str] = []
        self.refused: list[str] = []

    async def send(self, n: int) -> None:
        for i in range(n):
            key = f"{self.name}-{len(self.valid) + len(self.refused)}"
            if i % 10 == 9:
                body, command = {"sheet_id": f"never-{key}", "count": 1}, "count_visits"
                self.refused.append(key)
            else:
                body, command = {"sheet_id": key, "title": "M"}, "open_sheet"
                self.valid.append(key)
            while True:
                try:
                    await self.js.publish(
                        self.rt.topology.subject("ingest", command),
                        orjson.dumps(body),
                        headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": key, "Nats-Msg-Id": key},
                        timeout=2,
                    )
                    break
                except (nats.errors.Error, TimeoutError):
                    await asyncio.sleep(0.2)
            await asyncio.sleep(0.01)

    async def check_nothing_lost_or_doubled(self) -> None:
        """Once the queue is empty: every valid command accepted once, every refused one
        dead-lettered with its true reason and nothing else dead-lettered, one result kept for
        each key."""
        rt = self.rt

        async def drained() -> bool:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                return (await rt.js.stream_info(rt.topology.ingest_stream)).state.messages == 0
            return False

        await wait_for(drained, timeout=120)
        async with rt.pool.acquire() as conn:
            opened = Counter(
                r["stream_id"].removeprefix("sheet-")
                for r in await conn.fetch("SELECT stream_id FROM events WHERE event_type = 'sheet.opened'")
            )
        assert opened == Counter(self.valid)
        dead = await stream_messages(rt.js, rt.topology.dlq_stream)
        assert {m.headers["Dlq-Reason"] for m in dead} <= {"rejected"}
        reasons = Counter(
            (m.headers["Idempotency-Key"], orjson.loads(m.headers["Dlq-Error"])["error"]["code"]) for m in dead
        )
        assert reasons == Counter((key, "sheet_not_found") for key in self.refused)
        results = await stream_messages(rt.js, rt.topology.results_stream)
        assert Counter(m.headers["Idempotency-Key"] for m in results) == Counter(self.valid + self.refused)


async def _outage_over(rt: Runtime) -> None:
    """Every loop that met the outage has worked again since (a loop may still be in its
    backoff, up to ten seconds, when the queue is already drained)."""

    async def over() -> bool:
        return not rt.outages.ongoing

    await wait_for(over, timeout=60)


def _logged_as_outages(logs: list[dict], dependencies: set[str]) -> None:
    errors = [e for e in logs if e["log_level"] in ("error", "critical")]
    assert not errors, errors
    began = [e for e in logs if e["event"] == "outage_began"]
    ended = [e for e in logs if e["event"] == "outage_ended"]
    assert began and len(began) == len(ended)
    assert {e["dependency"] for e in began} <= dependencies


@pytest.mark.parametrize(
    "fault", ["pg_ctl stop -m immediate", "pg_ctl stop -m fast", "kill -9", "pg_ctl stop -m smart"]
)
async def test_commands_ingested_across_a_postgres_restart_are_accepted_once_and_none_dead_lettered(
    own_postgres, tally_on_own_postgres, fault
) -> None:
    """Commands keep arriving while PostgreSQL stops (each way it can) and starts again: every
    valid one is accepted exactly once, its result kept once, nothing is dead-lettered for the
    outage, and a count on a sheet never opened is still refused for what it is."""
    sender = await nats.connect(tally_on_own_postgres.nats_url, **nats_login_for_tests("system"))
    try:
        with structlog.testing.capture_logs() as logs:
            async with Runtime(definition(), tally_on_own_postgres) as rt:
                load = Load(rt, sender, fault)
                await load.send(60)
                sending = asyncio.create_task(load.send(200))
                await asyncio.sleep(0.5)
                await _stop(own_postgres, fault)
                await asyncio.sleep(2.0)
                await asyncio.to_thread(own_postgres.start_again)
                await sending
                await load.send(40)
                await load.check_nothing_lost_or_doubled()
                await _outage_over(rt)
        _logged_as_outages(logs, {"postgresql", "network"})
    finally:
        await sender.close()


async def test_commands_ingested_across_a_nats_kill_are_accepted_once_with_one_result_each(
    make_database, unique_prefix
) -> None:
    """kill -9 of NATS while commands stream in, restarted 2 s later on its store: the results
    the service was publishing are kept once each, and nothing is lost or dead-lettered."""
    root = Path(tempfile.mkdtemp(prefix="sp-fault-nats-"))
    server = NatsServer(root / "nats", config_file=write_nats_config_for_tests(root / "nats.conf")).start()
    sender = None
    try:
        settings = settings_for_tests(
            await make_database("tally"), server.url, unique_prefix, service="tally", ingest_batch=50
        )
        sender = await nats.connect(
            server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, **nats_login_for_tests("system")
        )
        with structlog.testing.capture_logs() as logs:
            async with Runtime(definition(), settings) as rt:
                load = Load(rt, sender, "nats")
                await load.send(60)
                sending = asyncio.create_task(load.send(200))
                await asyncio.sleep(0.5)
                await asyncio.to_thread(_kill_nats, server)
                await asyncio.sleep(2.0)
                await asyncio.to_thread(server.start)
                await sending
                await load.send(40)
                await load.check_nothing_lost_or_doubled()
        assert not [e for e in logs if e["log_level"] in ("error", "critical")]
    finally:
        if sender is not None:
            await sender.close()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _kill_nats(server: NatsServer) -> None:
    """kill -9 of the test's own NATS server, by its process."""
    process, server._process = server._process, None
    assert process is not None
    process.kill()
    process.wait(timeout=30)


async def test_commands_sent_while_postgres_is_down_are_answered_unavailable(
    own_postgres, tally_on_own_postgres
) -> None:
    """Over HTTP and request/reply, a command that meets an outage is answered 503
    `unavailable` (send it again, with the same key), not 500, and no error is logged; once the
    server is back the same command with the same key is accepted."""
    token = mint(ERP, SIGNING_KEY)
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "while-down"}
    body = {"sheet_id": "while-down", "title": "M"}
    sender = await nats.connect(tally_on_own_postgres.nats_url, **nats_login_for_tests("system"))
    try:
        async with Runtime(definition(), tally_on_own_postgres) as rt:
            transport = httpx.ASGITransport(app=http_app(rt))
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
                await _stop(own_postgres, "pg_ctl stop -m fast")
                with structlog.testing.capture_logs() as logs:
                    over_http = await http.post("/commands/open_sheet", json=body, headers=headers)
                    reply = await sender.request(
                        rt.topology.subject("cmd", "open_sheet"), orjson.dumps(body), headers=headers, timeout=10
                    )
                assert over_http.status_code == 503
                assert over_http.json()["error"]["code"] == "unavailable"
                assert orjson.loads(reply.data)["status"] == 503
                assert not [e for e in logs if e["log_level"] == "error"]
                await asyncio.to_thread(own_postgres.start_again)

                async def accepted() -> bool:
                    answer = await http.post("/commands/open_sheet", json=body, headers=headers)
                    return answer.status_code == 200

                await wait_for(accepted, timeout=30)
    finally:
        await sender.close()


async def _listening(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query = 'LISTEN \"events\"' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


async def test_a_service_listens_again_after_postgres_restarts(own_postgres, tally_on_own_postgres) -> None:
    """After a restart the service opens its LISTEN session again, so a new event is applied
    and published on its notification. Polling is set to a minute: only the notification can
    bring the event in within the wait."""
    settings = tally_on_own_postgres.model_copy(update={"poll_interval": 60.0})
    async with Runtime(definition(), settings) as rt:
        assert await _listening(settings.database_url) == 1
        await _stop(own_postgres, "pg_ctl stop -m fast")
        await asyncio.to_thread(own_postgres.start_again)

        async def listening_again() -> bool:
            return await _listening(settings.database_url) == 1

        await wait_for(listening_again, timeout=60)
        assert rt.listener is not None and rt.listener.sessions == 2

        async def runs() -> bool:
            try:
                outcome = await rt.run_command("open_sheet", {"sheet_id": "after", "title": "M"}, ERP)
            except Exception:  # noqa: BLE001 - the pool may still hand out a connection the restart closed
                return False
            return outcome.ok

        await wait_for(runs, timeout=30)

        async def applied_and_published() -> bool:
            async with rt.pool.acquire() as conn:
                counted = await conn.fetchval("SELECT n FROM p_event_counts_1.counts WHERE event_type = 'sheet.opened'")
            info = await rt.js.stream_info(rt.topology.event_stream)
            return counted == 1 and info.state.messages == 1

        await wait_for(applied_and_published, timeout=20)


async def test_the_relay_listens_again_after_postgres_restarts(own_postgres, nats_url, unique_prefix) -> None:
    """The relay on its own (no service around it to wake it), polling once a minute: after a
    restart an event committed is published on its notification, so the relay has taken a new
    session and listens on it."""
    dsn = await create_database(own_postgres.admin_dsn, "relay_" + uuid.uuid4().hex[:8])
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, init=init_connection)
    nc = await nats.connect(nats_url, **nats_login_for_tests("tally"))
    topology = Topology("tally", unique_prefix)
    relay = OutboxRelay(pool, JetStreamPublisher(nc), topology, poll_interval=60.0)
    task = None
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        await ensure_streams(nc.jetstream(), topology)
        task = asyncio.create_task(relay.run())

        async def committed(sheet: str) -> bool:
            try:
                async with pool.acquire() as conn, conn.transaction():
                    await append(conn, f"sheet-{sheet}", 0, [new_event()], outbox=True)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                return False  # a connection the restart closed: tried again
            return True

        async def published(n: int) -> bool:
            return (await nc.jetstream().stream_info(topology.event_stream)).state.messages == n

        await wait_for(lambda: committed("before"))
        await wait_for(lambda: published(1), timeout=20)
        await _stop(own_postgres, "pg_ctl stop -m fast")
        await asyncio.to_thread(own_postgres.start_again)
        await wait_for(lambda: committed("after"), timeout=30)
        await wait_for(lambda: published(2), timeout=20)
    finally:
        relay.stop()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        await nc.close()
        await pool.close()


async def test_a_timer_that_meets_an_outage_runs_again_soon_and_logs_no_failure(service_settings) -> None:
    runs: list[str] = []

    async def job(rt: Runtime) -> TimerRun:
        runs.append("run")
        if len(runs) <= 2:
            raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")
        return TimerRun()

    defn = definition()
    defn.timers = [Timer("check", 3600.0, job)]
    with structlog.testing.capture_logs() as logs:
        async with Runtime(defn, service_settings) as rt:

            async def ran_three_times() -> bool:
                return len(runs) >= 3

            await wait_for(ran_three_times, timeout=30)
            scraped = (await metrics.exposition(rt)).decode()
    assert 'sales_outages_total{service="tally"} 1.0' in scraped
    assert 'sales_outage_ongoing{service="tally"} 0.0' in scraped
    assert not [e for e in logs if e["event"] == "timer_failed"]
    assert [e["where"] for e in logs if e["event"] == "outage_began"] == ["timer:check"]
    assert len([e for e in logs if e["event"] == "outage_ended"]) == 1
