"""Guarantees 1, 2 and 8: optimistic concurrency, atomic write, no skipped late commits."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from salesplatform.errors import ConcurrencyConflict
from salesplatform.events import Actor, Role
from salesplatform.store import (
    LOG_START,
    LogPosition,
    NewEvent,
    StreamAppend,
    append,
    append_streams,
    load_stream,
    read_log,
)

ACTOR = Actor(id="r1", role=Role.rep, district="d1")


def ev(n: int = 1, type_: str = "sheet.counted") -> NewEvent:
    now = datetime.now(UTC)
    return NewEvent(type_, 1, {"count": n}, now, now, ACTOR)


async def test_append_and_load_in_order(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await append(conn, "sheet-a", 0, [ev(1), ev(2)])
        await append(conn, "sheet-a", 2, [ev(3)])
        stored = await load_stream(conn, "sheet-a")
    assert [e.envelope.stream_version for e in stored] == [1, 2, 3]
    assert [e.data["count"] for e in stored] == [1, 2, 3]


async def test_several_streams_append_together_all_or_nothing(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await append(conn, "sheet-b", 0, [ev(9)])
        async with conn.transaction():
            recorded = await append_streams(
                conn,
                [StreamAppend("sheet-a", 0, [ev(1), ev(2)]), StreamAppend("sheet-b", 1, [ev(3)])],
                outbox=True,
            )
        # What append returns is what the log holds, event for event.
        stored = [*await load_stream(conn, "sheet-a"), *await load_stream(conn, "sheet-b", 1)]
        assert [r.envelope for r in recorded] == [s.envelope for s in stored]
        assert [(r.position, r.tx_id) for r in recorded] == [(s.position, s.tx_id) for s in stored]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 3
        # One stale stream refuses the whole append.
        with pytest.raises(ConcurrencyConflict):
            async with conn.transaction():
                await append_streams(conn, [StreamAppend("sheet-c", 0, [ev()]), StreamAppend("sheet-a", 1, [ev()])])
        assert await load_stream(conn, "sheet-c") == []


async def test_stale_or_future_expected_version_is_refused(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await append(conn, "sheet-a", 0, [ev()])
        with pytest.raises(ConcurrencyConflict):
            await append(conn, "sheet-a", 0, [ev()])
        with pytest.raises(ConcurrencyConflict):
            await append(conn, "sheet-a", 5, [ev()])
        assert len(await load_stream(conn, "sheet-a")) == 1


async def test_concurrent_appenders_exactly_one_wins(db: asyncpg.Pool) -> None:
    """Both writers read version 0 and append inside open transactions at the same time."""
    both_inside = asyncio.Barrier(8)

    async def writer(i: int) -> str:
        async with db.acquire() as conn:
            try:
                async with conn.transaction():
                    await both_inside.wait()
                    await append(conn, "sheet-race", 0, [ev(i)])
                return "won"
            except ConcurrencyConflict:
                return "lost"

    results = await asyncio.gather(*(writer(i) for i in range(8)))
    assert results.count("won") == 1
    async with db.acquire() as conn:
        assert len(await load_stream(conn, "sheet-race")) == 1


async def test_late_committing_transaction_is_not_skipped(db: asyncpg.Pool) -> None:
    """T1 takes position p first but commits after T2 (position p+1). A catch-up reader that
    reads in between must not move past p without having seen it."""
    seen: list[str] = []
    checkpoint = LOG_START
    t1 = await db.acquire()
    tx1 = t1.transaction()
    await tx1.start()
    try:
        await append(t1, "sheet-late", 0, [ev(1)])  # position p, not committed yet
        async with db.acquire() as t2:
            await append(t2, "sheet-early", 0, [ev(2)])  # position p+1, committed
        async with db.acquire() as reader:
            batch = await read_log(reader, checkpoint, 100)
            seen += [e.envelope.stream_id for e in batch]
            if batch:
                checkpoint = LogPosition(batch[-1].tx_id, batch[-1].position)
            # Without the gap policy the reader returns sheet-early and moves past sheet-late.
            unsafe = await read_log(reader, checkpoint, 100, settled_only=False)
            assert [e.envelope.stream_id for e in unsafe] == ["sheet-early"]
        await tx1.commit()
    finally:
        await db.release(t1)
    async with db.acquire() as reader:
        batch = await read_log(reader, checkpoint, 100)
        seen += [e.envelope.stream_id for e in batch]
    assert sorted(seen) == ["sheet-early", "sheet-late"]
    assert len(seen) == 2


async def test_stream_order_matches_log_order_when_ids_are_taken_out_of_order(db: asyncpg.Pool) -> None:
    """A transaction that took its id before another writer must not extend the stream that
    writer just extended: the log (read in id order) would show version 2 before version 1."""
    old = await db.acquire()
    tx = old.transaction()
    await tx.start()
    try:
        await append(old, "sheet-other", 0, [ev()])  # takes an id now
        async with db.acquire() as young:
            await append(young, "sheet-x", 0, [ev()])  # younger id, committed
        with pytest.raises(ConcurrencyConflict):
            await append(old, "sheet-x", 1, [ev()])
    finally:
        await tx.rollback()
        await db.release(old)


async def test_global_log_reads_in_batches_without_loss(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        for i in range(25):
            await append(conn, f"sheet-{i % 5}", i // 5, [ev(i)])
        at, got = LOG_START, []
        while batch := await read_log(conn, at, 7):
            got += batch
            at = LogPosition(batch[-1].tx_id, batch[-1].position)
    assert len(got) == 25
    assert len({e.envelope.event_id for e in got}) == 25


async def test_reading_some_types_moves_past_the_others_and_misses_none(db: asyncpg.Pool) -> None:
    from salesplatform.store import read_log_of_types

    async with db.acquire() as conn:
        for i in range(30):
            await append(conn, f"sheet-{i}", 0, [ev(i, "sheet.opened" if i % 3 == 0 else "sheet.counted")])
        at, found, scanned_total = LOG_START, [], 0
        while True:
            events, scanned, at = await read_log_of_types(conn, at, 7, {"sheet.opened"})
            if not scanned:
                break
            scanned_total += scanned
            found += events
    assert scanned_total == 30
    assert [e.data["count"] for e in found] == list(range(0, 30, 3))


async def test_reading_some_types_does_not_skip_a_late_commit(db: asyncpg.Pool) -> None:
    from salesplatform.store import read_log_of_types

    late = await db.acquire()
    tx = late.transaction()
    await tx.start()
    try:
        await append(late, "sheet-late", 0, [ev(1, "sheet.opened")])
        async with db.acquire() as conn:
            await append(conn, "sheet-early", 0, [ev(2, "sheet.opened")])
            events, scanned, at = await read_log_of_types(conn, LOG_START, 100, {"sheet.opened"})
            assert (events, scanned, at) == ([], 0, LOG_START)
        await tx.commit()
    finally:
        await db.release(late)
    async with db.acquire() as conn:
        events, scanned, _ = await read_log_of_types(conn, LOG_START, 100, {"sheet.opened"})
    assert sorted(e.envelope.stream_id for e in events) == ["sheet-early", "sheet-late"]


async def test_copies_of_foreign_events_are_kept_once_and_returned_as_stored(db: asyncpg.Pool) -> None:
    from salesplatform.store import copy_foreign

    async with db.acquire() as conn:
        async with conn.transaction():
            own = await append(conn, "sheet-a", 0, [ev(1), ev(2)])
        foreign = [r.envelope.model_copy(update={"event_id": uuid.uuid4(), "stream_id": "visit-v1"}) for r in own]
        first = await copy_foreign(conn, "OTHER", foreign)
        again = await copy_foreign(conn, "OTHER", foreign)
        logged = await read_log(conn, LOG_START, 10)
    assert again == []
    assert [(r.position, r.tx_id, r.envelope, r.origin) for r in first] == [
        (r.position, r.tx_id, r.envelope, r.origin) for r in logged[2:]
    ]
    assert [r.origin for r in first] == ["OTHER", "OTHER"]


async def test_an_append_for_the_relay_wakes_listeners_once_it_commits(db: asyncpg.Pool) -> None:
    heard: list[str] = []
    async with db.acquire() as listener, db.acquire() as conn:

        def hear(_conn: object, _pid: int, channel: str, _payload: str) -> None:
            heard.append(channel)

        await listener.add_listener("events", hear)
        async with conn.transaction():
            await append_streams(
                conn, [StreamAppend("sheet-a", 0, [ev(1)]), StreamAppend("sheet-b", 0, [ev(2)])], outbox=True
            )
            await asyncio.sleep(0.2)
            assert heard == []  # not before the commit
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.02)
        await append(conn, "sheet-c", 0, [ev(3)])  # not queued for the relay: no notice
        await asyncio.sleep(0.2)
        await listener.remove_listener("events", hear)
    assert heard == ["events"]


@pytest.mark.fast
def test_a_trusted_model_is_the_model_construct_gives() -> None:
    from salesplatform.events import Envelope, trusted

    now = ev().occurred_at
    actor = trusted(Actor, id="r1", role=Role.rep, district="d1", area=None, replayed_by=None)
    assert actor == Actor.model_construct(id="r1", role=Role.rep, district="d1", area=None)
    values = {
        "event_id": uuid.uuid4(),
        "event_type": "sheet.counted",
        "schema_version": 1,
        "stream_id": "sheet-1",
        "stream_version": 2,
        "occurred_at": now,
        "recorded_at": now,
        "correlation_id": "c",
        "causation_id": None,
        "actor": actor,
        "data": {"count": 3},
        "metadata": None,
    }
    envelope, constructed = trusted(Envelope, **values), Envelope.model_construct(**values)
    assert envelope == constructed and envelope.model_fields_set == constructed.model_fields_set
    assert envelope.to_json() == constructed.to_json()
    assert Envelope.from_json(envelope.to_json()) == envelope
    with pytest.raises(Exception, match="frozen"):
        envelope.stream_version = 3  # type: ignore[misc]


async def test_events_read_back_are_the_events_written(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        async with conn.transaction():
            written = await append_streams(conn, [StreamAppend("sheet-r", 0, [ev(1), ev(2)])])
        read = await load_stream(conn, "sheet-r")
    assert [r.envelope for r in read] == [w.envelope for w in written]
    assert [(r.position, r.tx_id) for r in read] == [(w.position, w.tx_id) for w in written]
    assert read[0].envelope.actor is read[1].envelope.actor  # one actor instance for both
