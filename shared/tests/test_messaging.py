"""Guarantees 3, 4 and 5: delivery from the outbox, exactly-once effect, no silent loss."""

from __future__ import annotations

import asyncio
import uuid

import nats
import orjson
import pytest
import structlog.testing
from nats.js.api import RetentionPolicy, StreamConfig
from tally import SIGNING_KEY, definition, new_event
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import (
    nats_credentials_for_tests,
    nats_login_for_tests,
    next_stream_message,
    stream_messages,
    write_nats_config_for_tests,
)
from salesplatform.events import Actor, Role
from salesplatform.messaging import (
    ForeignEventConsumer,
    JetStreamPublisher,
    OutboxRelay,
    Topology,
    ensure_streams,
)
from salesplatform.nats_layout import api_prefix
from salesplatform.projections import reading
from salesplatform.service import Consumes, Runtime
from salesplatform.settings import ServiceSettings

REP = Actor(id="r1", role=Role.rep, district="d1")


def board_settings_of(settings: ServiceSettings, database_url: str) -> ServiceSettings:
    """`board`'s settings next to tally's: its own database and NATS user."""
    return settings.model_copy(update={"database_url": database_url, **nats_credentials_for_tests("board")})


async def test_committed_events_reach_jetstream_in_stream_order_with_msg_id(service_settings) -> None:
    async with Runtime(definition(), service_settings) as rt:
        await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
        for _ in range(5):
            await rt.run_command("count_visits", {"sheet_id": "s1", "count": 1}, REP)

        async def all_out() -> bool:
            return (await rt.js.stream_info(rt.topology.event_stream)).state.messages == 6

        await wait_for(all_out)
        msgs = await stream_messages(rt.js, rt.topology.event_stream)
        bodies = [orjson.loads(m.data) for m in msgs]
        assert [b["stream_version"] for b in bodies] == [1, 2, 3, 4, 5, 6]
        assert all(m.headers["Nats-Msg-Id"] == b["event_id"] for m, b in zip(msgs, bodies, strict=False))
        assert msgs[0].subject == rt.topology.event_subject("sheet.opened")
        async with rt.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_events_committed_while_relay_is_down_are_published_once_after_restart(service_settings) -> None:
    """The service dies between commit and publish: the outbox keeps the rows; on restart the
    relay publishes each event exactly once."""
    rt = Runtime(definition(), service_settings)
    await rt.start()
    rt.relay.stop()  # the relay is gone: commits happen, nothing is published
    await asyncio.sleep(0.1)
    for i in range(3):
        await rt.run_command("open_sheet", {"sheet_id": f"d{i}", "title": "M"}, REP)
    assert (await rt.js.stream_info(rt.topology.event_stream)).state.messages == 0
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3
    # crash: no graceful flush
    for t in rt._tasks:
        t.cancel()
    await asyncio.gather(*rt._tasks, return_exceptions=True)
    await rt.nc.close()
    await rt.pool.close()

    async with Runtime(definition(), service_settings) as again:

        async def published() -> bool:
            return (await again.js.stream_info(again.topology.event_stream)).state.messages >= 3

        await wait_for(published)
        await asyncio.sleep(0.3)
        assert (await again.js.stream_info(again.topology.event_stream)).state.messages == 3


async def test_republished_event_is_dropped_by_jetstream(service_settings) -> None:
    """Publish confirmed but the outbox delete lost (crash right after publish): the relay
    sends the same events again and JetStream keeps one copy of each."""
    async with Runtime(definition(), service_settings) as rt:
        rt.relay.stop()
        await asyncio.sleep(0.1)
        await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
        await rt.run_command("count_visits", {"sheet_id": "s1", "count": 1}, REP)
        async with rt.pool.acquire() as conn:
            saved = [r["position"] for r in await conn.fetch("SELECT position FROM outbox")]
            relay = OutboxRelay(rt.pool, JetStreamPublisher(rt.nc), rt.topology)
            assert await relay.publish_pending(conn) == 2
            await conn.execute(
                "INSERT INTO outbox (tx_id, position) SELECT tx_id, position FROM events WHERE position = ANY($1)",
                saved,
            )
            assert await relay.publish_pending(conn) == 2
        info = await rt.js.stream_info(rt.topology.event_stream)
        assert info.state.messages == 2


async def test_batches_asked_for_at_once_are_published_one_after_the_other(service_settings) -> None:
    """A flush asked for while the relay is publishing (shutdown, an operator's tool) waits
    for the batch in flight instead of failing, and every event is published once."""
    async with Runtime(definition(), service_settings) as rt:
        rt.relay.stop()
        await asyncio.sleep(0.1)
        for i in range(4):
            await rt.run_command("open_sheet", {"sheet_id": f"c{i}", "title": "M"}, REP)
        async with rt.pool.acquire() as first, rt.pool.acquire() as second:
            relay = OutboxRelay(rt.pool, JetStreamPublisher(rt.nc), rt.topology)
            published = await asyncio.gather(relay.publish_pending(first), relay.publish_pending(second))
            assert sorted(published) == [0, 4]
            assert await first.fetchval("SELECT count(*) FROM outbox") == 0
        msgs = await stream_messages(rt.js, rt.topology.event_stream)
        assert [orjson.loads(m.data)["stream_id"] for m in msgs] == [f"sheet-c{i}" for i in range(4)]


async def test_unconfirmed_publishes_stay_in_the_outbox_after_the_confirmed_prefix(service_settings) -> None:
    """JetStream confirms the first two events of a batch and never the third: the relay deletes
    only the first two outbox rows and reports the failure; the rest is sent again later."""
    async with Runtime(definition(), service_settings) as rt:
        rt.relay.stop()
        await asyncio.sleep(0.1)
        for i in range(4):
            await rt.run_command("open_sheet", {"sheet_id": f"u{i}", "title": "M"}, REP)

        class SilentAfterTwo(JetStreamPublisher):
            """JetStream, but the third publish and later never arrive, so are never acknowledged."""

            sent = 0

            async def _send(self, *args, **kwargs):
                self.sent += 1
                if self.sent <= 2:
                    await super()._send(*args, **kwargs)

        relay = OutboxRelay(rt.pool, SilentAfterTwo(rt.nc), rt.topology, ack_timeout=0.3)
        async with rt.pool.acquire() as conn:
            first = await conn.fetchval("SELECT min(position) FROM outbox")
            with pytest.raises(ConnectionError):
                await relay.publish_pending(conn)
            left = [r[0] for r in await conn.fetch("SELECT position FROM outbox ORDER BY position")]
            assert len(left) == 2 and min(left) > first + 1
            assert await OutboxRelay(rt.pool, JetStreamPublisher(rt.nc), rt.topology).publish_pending(conn) == 2
        assert (await rt.js.stream_info(rt.topology.event_stream)).state.messages == 4


async def test_a_message_no_stream_takes_is_refused_and_the_rest_of_its_batch_confirmed(service_settings) -> None:
    async with Runtime(definition(), service_settings) as rt:
        publisher = JetStreamPublisher(rt.nc)
        subject = rt.topology.event_subject("sheet.opened")
        results = await publisher.publish(
            [
                (subject, b'{"n": 1}', {"Nats-Msg-Id": f"m-{uuid.uuid4()}"}),
                # tally may announce on `changed` (core NATS): no stream takes it
                (rt.topology.subject("changed", uuid.uuid4().hex), b'{"n": 2}', {"Nats-Msg-Id": f"m-{uuid.uuid4()}"}),
                (subject, b'{"n": 3}', {"Nats-Msg-Id": f"m-{uuid.uuid4()}"}),
            ],
            timeout=10,
        )
        await publisher.close()
    assert results[0] is None and results[2] is None
    assert results[1] == "not stored: status 503"


async def test_acknowledgements_of_a_batch_given_up_do_not_count_for_the_next(service_settings) -> None:
    """A batch whose answers did not come in time is given up; when they come, during the next
    batch, they are not taken for that batch's answers."""
    async with Runtime(definition(), service_settings) as rt:
        rt.relay.stop()
        publisher = JetStreamPublisher(rt.nc)
        subject = rt.topology.event_subject("sheet.opened")
        given_up = await publisher.publish([(subject, b"{}", {"Nats-Msg-Id": f"a-{i}"}) for i in range(50)], timeout=0)
        next_batch = await publisher.publish(
            [(subject, b"{}", {"Nats-Msg-Id": f"b-{i}"}) for i in range(3)], timeout=10
        )
        stored = (await rt.js.stream_info(rt.topology.event_stream)).state.messages
        await publisher.close()
    assert given_up == ["no acknowledgement within 0 s"] * 50
    assert next_batch == [None, None, None]
    assert stored == 53


async def test_commands_sent_before_the_service_first_starts_wait_for_it(service_settings) -> None:
    """The ingest stream is a work queue: what is published before any consumer exists is
    kept (an interest-based stream would drop it) and leaves only once processed."""
    nc = await nats.connect(service_settings.nats_url, **nats_login_for_tests("tally"))
    sender = await nats.connect(service_settings.nats_url, **nats_login_for_tests("system"))
    try:
        js = nc.jetstream()
        topo = Topology("tally", service_settings.stream_prefix)
        await ensure_streams(js, topo)
        token = mint(REP, SIGNING_KEY)
        await sender.jetstream().publish(
            topo.subject("ingest", "open_sheet"),
            orjson.dumps({"sheet_id": "early", "title": "M"}),
            headers={"Authorization": f"Bearer {token}"},
        )
        assert (await js.stream_info(topo.ingest_stream)).state.messages == 1
        async with Runtime(definition(), service_settings) as rt:

            async def processed() -> bool:
                return (await js.stream_info(topo.ingest_stream)).state.messages == 0

            await wait_for(processed)
            async with rt.pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = 'sheet-early'") == 1
    finally:
        await nc.close()
        await sender.close()


async def test_dead_letters_are_kept_for_the_days_set(service_settings) -> None:
    settings = service_settings.model_copy(update={"dead_letter_days": 7})
    async with Runtime(definition(), settings) as rt:
        config = (await rt.js.stream_info(rt.topology.dlq_stream)).config
        assert config.max_age == 7 * 86_400
        assert (await rt.js.stream_info(rt.topology.ingest_stream)).config.retention == RetentionPolicy.WORK_QUEUE


async def test_an_ingest_stream_made_before_it_was_a_work_queue_is_kept_and_served(service_settings) -> None:
    """JetStream cannot turn a stream into a work queue in place: the service starts on the
    stream as it is, says so, and runs the commands in it."""
    nc = await nats.connect(service_settings.nats_url, **nats_login_for_tests("tally"))
    sender = await nats.connect(service_settings.nats_url, **nats_login_for_tests("system"))
    try:
        js = nc.jetstream()
        topo = Topology("tally", service_settings.stream_prefix)
        await js.add_stream(StreamConfig(name=topo.ingest_stream, subjects=[topo.subject("ingest", ">")]))
        with structlog.testing.capture_logs() as logs:
            async with Runtime(definition(), service_settings) as rt:
                await sender.jetstream().publish(
                    topo.subject("ingest", "open_sheet"),
                    orjson.dumps({"sheet_id": "old", "title": "M"}),
                    headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"},
                )

                async def ran() -> bool:
                    async with rt.pool.acquire() as conn:
                        return await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = 'sheet-old'") == 1

                await wait_for(ran)
        assert (await js.stream_info(topo.ingest_stream)).config.retention == RetentionPolicy.LIMITS
        kept = [entry for entry in logs if entry["event"] == "stream_retention_kept"]
        assert kept and kept[0]["stream"] == topo.ingest_stream and kept[0]["wanted"] == "workqueue"
    finally:
        await nc.close()
        await sender.close()


async def test_relay_backs_off_while_nats_is_down_and_resumes(make_database, unique_prefix, tmp_path) -> None:
    from salesplatform.devstack.pytest_plugin import settings_for_tests
    from salesplatform.devstack.servers import NatsServer

    server = NatsServer(tmp_path / "nats", config_file=write_nats_config_for_tests(tmp_path / "nats.conf"))
    server.start()
    try:
        settings = settings_for_tests(await make_database("relay"), server.url, unique_prefix, service="tally")
        async with Runtime(definition(), settings) as rt:
            await rt.run_command("open_sheet", {"sheet_id": "before", "title": "M"}, REP)
            await wait_for(lambda: _outbox_empty(rt))
            server.stop()
            await rt.run_command("open_sheet", {"sheet_id": "during", "title": "M"}, REP)
            await asyncio.sleep(1.0)
            async with rt.pool.acquire() as conn:
                assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
            server.start()
            await wait_for(lambda: _outbox_empty(rt), timeout=30)
            info = await rt.js.stream_info(rt.topology.event_stream)
            assert info.state.messages == 2
    finally:
        server.stop()


async def _outbox_empty(rt: Runtime) -> bool:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_consumer_copies_foreign_events_once_even_when_redelivered(service_settings, make_database) -> None:
    """Two services: `board` keeps copies of `tally` events and counts them (catch-up
    projection). The same events published again change nothing."""
    board_settings = board_settings_of(service_settings, await make_database("board"))
    async with (
        Runtime(definition("tally"), service_settings) as tally,
        Runtime(definition("board", consumes=[Consumes("tally")]), board_settings) as board,
    ):
        await tally.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
        await tally.run_command("count_visits", {"sheet_id": "s1", "count": 2}, REP)

        async def counted() -> bool:
            async with reading(board.pool, "event_counts") as conn:
                return await conn.fetchval("SELECT coalesce(sum(n), 0) FROM counts") == 2

        await wait_for(counted)
        # Redeliver: publish the very same messages again under new message ids.
        msgs = await stream_messages(tally.js, tally.topology.event_stream)
        for m in msgs:
            await tally.js.publish(m.subject, m.data, headers={"Nats-Msg-Id": str(uuid.uuid4())})
        await wait_for(lambda: _consumer_drained(board))
        await asyncio.sleep(0.5)
        async with reading(board.pool, "event_counts") as conn:
            assert await conn.fetchval("SELECT sum(n) FROM counts") == 2
        async with board.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM events WHERE origin IS NOT NULL") == 2


async def _consumer_drained(rt: Runtime) -> bool:
    c = rt.consumers[0]
    info = await c.js.consumer_info(c.stream, c.durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_poison_message_goes_to_dlq_with_reason_and_next_is_processed(service_settings, make_database) -> None:
    board_settings = board_settings_of(service_settings, await make_database("board"))
    async with (
        Runtime(definition("tally"), service_settings) as tally,
        Runtime(definition("board", consumes=[Consumes("tally")]), board_settings) as board,
    ):
        subject = tally.topology.event_subject("sheet.opened")
        await tally.js.publish(subject, b"this is not an event", headers={"Nats-Msg-Id": "poison-1"})
        await tally.run_command("open_sheet", {"sheet_id": "after", "title": "M"}, REP)

        dead = await next_stream_message(board.js, board.topology.dlq_stream)
        assert dead.headers["Dlq-Reason"] == "malformed"
        assert dead.data == b"this is not an event"
        assert dead.headers["Original-Msg-Id"] == "poison-1"
        assert dead.headers["Dlq-Error"]

        async def after_processed() -> bool:
            async with reading(board.pool, "event_counts") as conn:
                return await conn.fetchval("SELECT coalesce(sum(n), 0) FROM counts") == 1

        await wait_for(after_processed)


async def test_event_a_projection_cannot_apply_is_dead_lettered_and_skipped(service_settings) -> None:
    """An event the projection fails on is kept in projection_failures and sent to the DLQ;
    the events after it are applied."""
    async with Runtime(definition(), service_settings) as rt:
        async with rt.pool.acquire() as conn:
            from salesplatform.store import append

            async with conn.transaction():
                await append(conn, "sheet-p", 0, [new_event(1, poison=True), new_event(2)])
        rt.runner.wake()
        dead = await next_stream_message(rt.js, rt.topology.dlq_stream)
        assert dead.headers["Projection"] == "event_counts"
        assert "poison event" in dead.headers["Dlq-Error"]

        async def good_one_applied() -> bool:
            async with reading(rt.pool, "event_counts") as conn:
                return await conn.fetchval("SELECT coalesce(sum(n), 0) FROM counts") == 1

        await wait_for(good_one_applied)
        async with rt.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM projection_failures") == 1


class _FailingPool:
    """A pool whose next `failures` acquisitions raise `error`; then the real pool's."""

    def __init__(self, pool, error: Exception, failures: int) -> None:
        self.pool, self.error, self.failures = pool, error, failures
        self.refused = 0

    def acquire(self):
        if self.refused < self.failures:
            self.refused += 1
            raise self.error
        return self.pool.acquire()


async def _watch(
    tally: Runtime,
    settings,
    make_database,
    pool_error: Exception | None = None,
    failures: int = 1_000_000,
    max_deliveries: int = 3,
):
    """A runtime of its own (`board`, consuming nothing itself) and a consumer copying tally's
    events into it, through a pool that fails as told; the caller starts the consumer."""
    board = Runtime(definition("board"), board_settings_of(settings, await make_database("board")))
    await board.start()
    pool = board.pool if pool_error is None else _FailingPool(board.pool, pool_error, failures)
    consumer = ForeignEventConsumer(
        pool,
        board.nc.jetstream(prefix=api_prefix("tally")),
        board.dead_letters,
        source=tally.topology,
        consumer_service="board",
        batch_size=10,
        max_deliveries=max_deliveries,
    )
    return board, consumer, pool


async def _copies(board: Runtime) -> list[str]:
    async with board.pool.acquire() as conn:
        return [
            r[0] for r in await conn.fetch("SELECT stream_id FROM events WHERE origin IS NOT NULL ORDER BY position")
        ]


async def _dead_letters(rt: Runtime) -> int:
    return (await rt.js.stream_info(rt.topology.dlq_stream)).state.messages


async def test_failing_processing_is_retried_then_dead_lettered(service_settings, make_database) -> None:
    """A batch whose effect cannot commit (not for an outage) is nak'ed, retried with
    backoff and, after the bounded number of deliveries, dead-lettered; it is never acked away
    without a trace."""
    async with Runtime(definition("tally"), service_settings) as tally:
        board, consumer, _ = await _watch(tally, service_settings, make_database, ValueError("cannot keep this"))
        await tally.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
        task = asyncio.create_task(consumer.run())
        try:
            dead = await next_stream_message(board.js, board.topology.dlq_stream, timeout=20)
            assert dead.headers["Dlq-Reason"] == "processing_failed"
            assert "cannot keep this" in dead.headers["Dlq-Error"]
            assert orjson.loads(dead.data)["event_type"] == "sheet.opened"
        finally:
            consumer.stop()
            await asyncio.gather(task, return_exceptions=True)
            await board.stop()


async def test_events_wait_out_a_database_outage_and_are_never_dead_lettered(service_settings, make_database) -> None:
    """The database is unreachable for longer than the deliveries a failing message gets:
    the events are handed back and wait, and are kept once it is back."""
    async with Runtime(definition("tally"), service_settings) as tally:
        for i in range(3):
            await tally.run_command("open_sheet", {"sheet_id": f"o{i}", "title": "M"}, REP)
        board, consumer, pool = await _watch(
            tally,
            service_settings,
            make_database,
            ConnectionRefusedError("database unreachable"),
            failures=4,
            max_deliveries=2,
        )
        task = asyncio.create_task(consumer.run())
        try:

            async def kept() -> bool:
                return len(await _copies(board)) == 3

            await wait_for(kept, timeout=30)
            assert pool.refused == 4
            assert await _copies(board) == ["sheet-o0", "sheet-o1", "sheet-o2"]
            assert await _dead_letters(board) == 0
        finally:
            consumer.stop()
            await asyncio.gather(task, return_exceptions=True)
            await board.stop()


async def test_an_event_that_fails_in_a_batch_is_dead_lettered_alone(service_settings, make_database) -> None:
    """One event PostgreSQL cannot store (a NUL character in its JSON) fails the batch it
    came in: the others of the batch are kept, and only it goes to the dead-letter stream."""
    async with Runtime(definition("tally"), service_settings) as tally:
        await tally.run_command("open_sheet", {"sheet_id": "before", "title": "M"}, REP)
        subject = tally.topology.event_subject("sheet.opened")
        poison = {
            "event_id": str(uuid.uuid4()),
            "event_type": "sheet.opened",
            "schema_version": 2,
            "stream_id": "sheet-nul",
            "stream_version": 1,
            "occurred_at": "2026-01-01T00:00:00Z",
            "recorded_at": "2026-01-01T00:00:00Z",
            "actor": {"id": "r1", "role": "rep"},
            "data": {"title": "bad\u0000", "owner": "r1"},
        }
        await tally.js.publish(subject, orjson.dumps(poison), headers={"Nats-Msg-Id": poison["event_id"]})
        await tally.run_command("open_sheet", {"sheet_id": "after", "title": "M"}, REP)

        async def published() -> bool:
            return (await tally.js.stream_info(tally.topology.event_stream)).state.messages == 3

        await wait_for(published)
        board, consumer, _ = await _watch(tally, service_settings, make_database, max_deliveries=2)
        task = asyncio.create_task(consumer.run())
        try:
            dead = await next_stream_message(board.js, board.topology.dlq_stream, timeout=20)
            assert dead.headers["Dlq-Reason"] == "processing_failed"
            assert orjson.loads(dead.data)["stream_id"] == "sheet-nul"
            assert await _copies(board) == ["sheet-before", "sheet-after"]
            await asyncio.sleep(0.3)
            assert await _dead_letters(board) == 1
        finally:
            consumer.stop()
            await asyncio.gather(task, return_exceptions=True)
            await board.stop()


@pytest.mark.fast
@pytest.mark.parametrize("bad", [b"", b"[]", b'{"event_type": "x"}'])
def test_envelope_rejects_bad_payloads(bad: bytes) -> None:
    from pydantic import ValidationError

    from salesplatform.events import Envelope

    with pytest.raises(ValidationError):
        Envelope.from_json(bad)


async def test_events_pending_before_the_outbox_named_log_places_are_still_published(service_settings) -> None:
    """A database whose outbox rows predate migration 002 (positions only): the migration gives
    them their transaction ids and the relay publishes them."""
    import asyncpg

    from salesplatform import migrations
    from salesplatform.store import init_connection

    dsn = service_settings.database_url
    conn = await asyncpg.connect(dsn)
    await init_connection(conn)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        first = migrations._platform_files()[0]
        await conn.execute(first[1])
        await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", first[0])
        async with conn.transaction():
            position = await conn.fetchval(
                "INSERT INTO events (stream_id, stream_version, event_id, event_type, schema_version, occurred_at,"
                " recorded_at, actor, data) VALUES ('sheet-old', 1, $1, 'sheet.counted', 1, now(), now(), $2, $3)"
                " RETURNING position",
                uuid.uuid4(),
                {"id": "r1", "role": "rep"},
                {"count": 1},
            )
            await conn.execute("INSERT INTO outbox (position) VALUES ($1)", position)
    finally:
        await conn.close()
    async with Runtime(definition(), service_settings) as rt:  # migrates, then relays

        async def published_and_cleared() -> bool:
            # The relay deletes the confirmed row after JetStream has the message: wait for both.
            async with rt.pool.acquire() as conn:
                cleared = await conn.fetchval("SELECT count(*) FROM outbox") == 0
            return cleared and (await rt.js.stream_info(rt.topology.event_stream)).state.messages == 1

        await wait_for(published_and_cleared)


async def test_the_relay_clears_the_outbox_of_dead_rows_as_it_goes(service_settings, monkeypatch) -> None:
    from salesplatform import messaging

    monkeypatch.setattr(messaging, "VACUUM_EVERY", 3)
    async with Runtime(definition(), service_settings) as rt:
        for i in range(4):
            await rt.run_command("open_sheet", {"sheet_id": f"v{i}", "title": "M"}, REP)

        async def vacuumed() -> bool:
            async with rt.pool.acquire() as conn:
                await conn.execute("SELECT pg_stat_clear_snapshot()")
                return bool(
                    await conn.fetchval("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'outbox'")
                )

        await wait_for(vacuumed)


async def test_an_idle_pipeline_carries_an_event_without_waiting_for_more(
    service_settings, make_database, monkeypatch
) -> None:
    """The waits that gather work into larger batches apply only to a busy relay, consumer or
    projection runner: with every such wait made two seconds long, one event of an idle
    service still reaches another service's projection within a second and a half."""
    from salesplatform import messaging, projections

    monkeypatch.setattr(messaging, "COALESCE_SECONDS", 2.0)
    monkeypatch.setattr(messaging, "_GATHER_SECONDS", 2.0)
    monkeypatch.setattr(projections, "COALESCE_SECONDS", 2.0)
    board_settings = board_settings_of(service_settings, await make_database("board"))
    async with (
        Runtime(definition("tally"), service_settings) as tally,
        Runtime(definition("board", consumes=[Consumes("tally")]), board_settings) as board,
    ):
        await asyncio.sleep(2.5)  # whatever starting up left busy has gone idle
        started = asyncio.get_running_loop().time()
        await tally.run_command("open_sheet", {"sheet_id": "idle", "title": "M"}, REP)

        async def counted() -> bool:
            async with reading(board.pool, "event_counts") as conn:
                return await conn.fetchval("SELECT coalesce(sum(n), 0) FROM counts") == 1

        await wait_for(counted)
        assert asyncio.get_running_loop().time() - started < 1.5
