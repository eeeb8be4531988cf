"""Guarantee 6: rebuild from the log while the old version serves; same result."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from tally import EventCounts, definition

from salesplatform.events import Actor, Role
from salesplatform.projections import (
    RebuildRunning,
    StatementRuns,
    catch_up_once,
    locked_schemas,
    reading,
    rebuild,
    rebuild_states,
)
from salesplatform.service import Runtime

REP = Actor(id="r1", role=Role.rep, district="d1")


async def snapshot(rt: Runtime, projection: str, sql: str) -> list[tuple]:
    async with reading(rt.pool, projection) as conn:
        return [tuple(r) for r in await conn.fetch(sql)]


async def test_rebuild_during_writes_and_queries_equals_incremental(service_settings) -> None:
    async with Runtime(definition(), service_settings) as rt:
        for i in range(20):
            await rt.run_command("open_sheet", {"sheet_id": f"s{i}", "title": f"T{i}"}, REP)
        stop = asyncio.Event()
        query_errors: list[BaseException] = []
        queries = 0

        async def keep_querying() -> None:
            nonlocal queries
            while not stop.is_set():
                try:
                    await snapshot(rt, "sheet_totals", "SELECT * FROM totals")
                    queries += 1
                except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                    query_errors.append(exc)
                await asyncio.sleep(0)

        async def keep_writing() -> None:
            i = 0
            while not stop.is_set():
                await rt.run_command("count_visits", {"sheet_id": f"s{i % 20}", "count": 1}, REP)
                i += 1

        readers = [asyncio.create_task(keep_querying()) for _ in range(3)]
        writer = asyncio.create_task(keep_writing())
        await asyncio.sleep(0.3)
        generation = await rt.rebuild("sheet_totals")
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(writer, *readers)

        assert generation == 2
        assert not query_errors
        assert queries > 0
        incremental = await snapshot(rt, "sheet_totals", "SELECT * FROM totals ORDER BY sheet_id")
        total_counted = await _sum_counted(rt)
        assert sum(r[2] for r in incremental) == total_counted
        # And a second rebuild from scratch gives the very same rows.
        await rt.rebuild("sheet_totals")
        assert await snapshot(rt, "sheet_totals", "SELECT * FROM totals ORDER BY sheet_id") == incremental


async def settled(rt: Runtime, sql: str, expected: list[tuple]) -> list[tuple]:
    """Wait until the catch-up projection shows `expected` (events settle asynchronously)."""
    got: list[tuple] = []
    for _ in range(200):
        await rt.runner.run_once()
        got = await snapshot(rt, "event_counts", sql)
        if got == expected:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"projection shows {got}, expected {expected}")


async def _sum_counted(rt: Runtime) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval(
            "SELECT coalesce(sum((data->>'count')::int), 0) FROM events WHERE event_type = 'sheet.counted'"
        )


async def test_catch_up_projection_rebuild_equals_incremental(service_settings) -> None:
    async with Runtime(definition(), service_settings) as rt:
        for i in range(10):
            await rt.run_command("open_sheet", {"sheet_id": f"s{i}", "title": "T"}, REP)
            await rt.run_command("count_visits", {"sheet_id": f"s{i}", "count": 2}, REP)
        before = await settled(
            rt, "SELECT * FROM counts ORDER BY event_type", [("sheet.counted", 10), ("sheet.opened", 10)]
        )
        await rt.rebuild("event_counts")
        assert await snapshot(rt, "event_counts", "SELECT * FROM counts ORDER BY event_type") == before
        # The runner continues on the new generation without applying anything twice.
        await rt.run_command("count_visits", {"sheet_id": "s0", "count": 1}, REP)
        await settled(rt, "SELECT n FROM counts WHERE event_type = 'sheet.counted'", [(11,)])
        await asyncio.sleep(0.3)
        assert await snapshot(rt, "event_counts", "SELECT n FROM counts WHERE event_type = 'sheet.counted'") == [(11,)]


async def test_redelivered_catch_up_batch_changes_nothing(service_settings) -> None:
    """The checkpoint commits with the change: running the runner again applies nothing."""
    async with Runtime(definition(), service_settings) as rt:
        await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "T"}, REP)
        for _ in range(100):  # the background runner or this one applies it, once settled
            await rt.runner.run_once()
            first = await snapshot(rt, "event_counts", "SELECT * FROM counts")
            if first:
                break
            await asyncio.sleep(0.05)
        assert first == [("sheet.opened", 1)]
        assert await rt.runner.run_once() == 0
        assert await snapshot(rt, "event_counts", "SELECT * FROM counts") == first


async def test_inline_apply_restores_the_callers_search_path(service_settings) -> None:
    """A reactor runs commands from inside its projection schema and must find its own tables
    again after the command's inline projections ran."""
    from tally import SheetTotals, new_event

    from salesplatform.projections import apply_inline
    from salesplatform.store import append

    async with Runtime(definition(), service_settings) as rt:
        async with rt.pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SELECT set_config('search_path', 'p_event_counts_1, public', true)")
                recorded = await append(conn, "sheet-z", 0, [new_event(1)])
                await apply_inline(conn, SheetTotals(), recorded)
                assert await conn.fetchval("SELECT current_setting('search_path')") == "p_event_counts_1, public"


async def test_rebuild_switch_does_not_lose_a_copy_still_committing(service_settings) -> None:
    """A catch-up projection is rebuilt while a consumer's copy transaction is still open and a
    younger transaction has already committed: the open one's events must still be applied
    once it commits (the switch must not move the checkpoint past them)."""
    import uuid
    from datetime import datetime

    from tally import new_event

    from salesplatform.events import Envelope
    from salesplatform.store import append, copy_foreign

    async with Runtime(definition(), service_settings) as rt:
        rt.runner.stop()  # drive the projection by hand
        now = datetime.now(UTC)
        foreign = Envelope(
            event_id=uuid.uuid4(),
            event_type="other.happened",
            schema_version=1,
            stream_id="other-1",
            stream_version=1,
            occurred_at=now,
            recorded_at=now,
            actor=REP,
            data={},
        )
        copier = await rt.pool.acquire()
        tx = copier.transaction()
        await tx.start()
        try:
            await copy_foreign(copier, "OTHER", [foreign])  # older transaction, still open
            async with rt.pool.acquire() as conn:
                await append(conn, "sheet-young", 0, [new_event(1)])  # younger, committed
            await rt.rebuild("event_counts")
            await tx.commit()
        finally:
            await rt.pool.release(copier)
        for _ in range(100):
            await rt.runner.run_once()
            rows = dict(await snapshot(rt, "event_counts", "SELECT event_type, n FROM counts"))
            if rows.get("other.happened"):
                break
            await asyncio.sleep(0.05)
        assert rows == {"other.happened": 1, "sheet.counted": 1}


async def test_a_catch_up_batch_waits_for_the_disk_only_when_it_appended_events(db) -> None:
    """Read-model batches commit without waiting for the disk; a batch whose projection appended
    events (a reactor) keeps the synchronous commit every event gets."""
    from tally import new_event

    from salesplatform.projections import Projection, catch_up_once, ensure_projection
    from salesplatform.store import append

    settings: list[str] = []

    class Recording(Projection):
        name = "recording"
        schema_sql = "CREATE TABLE seen (n int)"

        def __init__(self, react: bool) -> None:
            self.react = react

        async def apply_batch(self, conn, events):
            await conn.execute("INSERT INTO seen VALUES (1)")
            if self.react:
                await append(conn, f"reaction-{len(settings)}", 0, [new_event()])
            return []

    async with db.acquire() as conn:
        await ensure_projection(conn, Recording(False))
        for react in (False, True):
            async with conn.transaction():
                await append(conn, f"sheet-{react}", 0, [new_event()])

            class Watching:
                """The connection, noting synchronous_commit as the batch leaves it for its commit."""

                def __getattr__(self, name):
                    return getattr(conn, name)

                async def execute(self, query, *args):
                    result = await conn.execute(query, *args)
                    if "synchronous_commit" in query:
                        settings.append(await conn.fetchval("SHOW synchronous_commit"))
                    return result

            assert (await catch_up_once(Watching(), Recording(react)))[0] >= 1
    assert settings == ["off", "on"]


async def test_statement_runs_keep_order_and_send_a_run_at_once(db) -> None:
    async with db.acquire() as conn:
        await conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY, v int NOT NULL)")
        await conn.execute("INSERT INTO t VALUES ('a', 1), ('b', 1)")
        sent: list[int] = []

        class Counting:
            async def executemany(self, sql, args):
                sent.append(len(args))
                return await conn.executemany(sql, args)

        runs = StatementRuns(Counting())  # type: ignore[arg-type]
        for k in ("a", "b", "a"):
            await runs.execute("UPDATE t SET v = v + 1 WHERE k = $1", k)
        await runs.execute("UPDATE t SET v = v * 10 WHERE k = $1", "a")
        await runs.execute("UPDATE t SET v = v + 1 WHERE k = $1", "a")
        await runs.flush()
        assert sent == [3, 1, 1]
        assert dict(await conn.fetch("SELECT k, v FROM t")) == {"a": 31, "b": 2}  # (1 + 2) * 10 + 1


async def test_a_locked_schema_is_read_after_a_switch_in_progress_commits(service_settings) -> None:
    """A rebuild switches a projection's schema holding its lock exclusively; a transaction
    locking it meanwhile waits, and then reads the schema switched to, not the one before."""
    async with Runtime(definition(), service_settings) as rt:
        async with rt.pool.acquire() as switcher, rt.pool.acquire() as reader:
            switch = switcher.transaction()
            await switch.start()
            await switcher.execute("SELECT pg_advisory_xact_lock(hashtext('projection:sheet_totals'))")
            await switcher.execute("UPDATE projections SET active_schema = 'switched' WHERE name = 'sheet_totals'")
            async with reader.transaction():
                waiting = asyncio.create_task(locked_schemas(reader, ["sheet_totals", "event_counts"], {}))
                await asyncio.sleep(0.3)
                assert not waiting.done()
                await switch.commit()
                schemas = await asyncio.wait_for(waiting, 10)
            assert schemas["sheet_totals"] == "switched"
            assert schemas["event_counts"].startswith("p_event_counts_")


async def test_a_catch_up_begun_during_a_switch_applies_to_the_generation_switched_to(service_settings) -> None:
    """The catch-up runner takes the projection's lock shared before it reads the active
    generation and its checkpoint: a batch begun while a rebuild switches waits, then applies
    to the new generation and moves its checkpoint, not the old one's."""
    projection = EventCounts()
    async with Runtime(definition(), service_settings) as rt:
        rt.runner.stop()
        await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
        async with rt.pool.acquire() as switcher, rt.pool.acquire() as runner:
            old = await switcher.fetchrow(
                "SELECT generation, schema_name, tx_id, position FROM projection_generations"
                " WHERE name = 'event_counts' AND status = 'active'"
            )
            switch = switcher.transaction()
            await switch.start()
            await switcher.execute("SELECT pg_advisory_xact_lock(hashtext('projection:event_counts'))")
            await switcher.execute(
                f"CREATE SCHEMA p_event_counts_9; SET LOCAL search_path = p_event_counts_9;"
                f" {projection.schema_sql}; SET LOCAL search_path = public"
            )
            await switcher.execute(
                "INSERT INTO projection_generations (name, generation, schema_name, code_version, status, tx_id,"
                " position) VALUES ('event_counts', 9, 'p_event_counts_9', $1, 'active', $2, $3)",
                projection.code_version,
                old["tx_id"],
                old["position"],
            )
            await switcher.execute(
                "UPDATE projection_generations SET status = 'retired' WHERE name = 'event_counts' AND generation = $1",
                old["generation"],
            )
            await switcher.execute(
                "UPDATE projections SET active_schema = 'p_event_counts_9', generation = 9 WHERE name = 'event_counts'"
            )
            waiting = asyncio.create_task(catch_up_once(runner, projection))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            await switch.commit()
            scanned, _ = await asyncio.wait_for(waiting, 10)
            assert scanned >= 1
            generations = {
                r["generation"]: (r["tx_id"], r["position"], r["events_applied"])
                for r in await switcher.fetch(
                    "SELECT generation, tx_id, position, events_applied FROM projection_generations"
                    " WHERE name = 'event_counts'"
                )
            }
            assert generations[old["generation"]][:2] == (old["tx_id"], old["position"])
            assert generations[9][2] >= 1
            assert (
                await switcher.fetchval("SELECT n FROM p_event_counts_9.counts WHERE event_type = 'sheet.opened'") == 1
            )


class _RangeTotals:
    """A projection that reads `sheet.counted` from the log itself, stretch by stretch."""

    @staticmethod
    def make(calls: list[tuple], poison_fails_range: bool = False):
        from salesplatform.projections import Projection

        class RangeTotals(Projection):
            name = "range_totals"
            reads_log = True
            event_types = frozenset({"sheet.counted"})
            schema_sql = "CREATE TABLE totals (n bigint NOT NULL); INSERT INTO totals VALUES (0)"

            async def apply_range(self, conn, after, upto, present, *, changes=True):
                calls.append(("range", after, upto, present))
                stretch = (
                    f"(e.tx_id, e.position) > ('{after.tx_id}'::xid8, {after.position})"
                    f" AND (e.tx_id, e.position) <= ('{upto.tx_id}'::xid8, {upto.position})"
                )
                if poison_fails_range and await conn.fetchval(
                    f"SELECT count(*) FROM public.events e WHERE {stretch} AND e.data ? 'poison'"
                ):
                    raise ValueError("poison in the stretch")
                await conn.execute(
                    "UPDATE totals SET n = n + (SELECT coalesce(sum((e.data->>'count')::int), 0)"
                    f" FROM public.events e WHERE {stretch} AND e.event_type = 'sheet.counted')"
                )
                return [{"stretch": upto.position}]

            async def apply(self, conn, event):
                calls.append(("event", event.position))
                if event.data.get("poison"):
                    raise ValueError("poison event")
                await conn.execute("UPDATE totals SET n = n + $1", event.data["count"])
                return [{"event": event.position}]

        return RangeTotals()


async def _append_raw(conn, stream: str, *events) -> None:
    from salesplatform.store import append

    async with conn.transaction():
        await append(conn, stream, 0, list(events))


async def test_a_projection_that_reads_the_log_gets_the_stretch_not_the_events(db) -> None:
    from datetime import datetime

    from tally import TEST_ACTOR, new_event

    from salesplatform.projections import ensure_projection
    from salesplatform.store import NewEvent

    now = datetime.now(UTC)
    calls: list[tuple] = []
    projection = _RangeTotals.make(calls)
    async with db.acquire() as conn:
        await ensure_projection(conn, projection)
        await _append_raw(
            conn,
            "sheet-a",
            NewEvent("sheet.opened", 2, {"title": "A", "owner": "r1"}, now, now, TEST_ACTOR),
            new_event(2),
            new_event(3),
        )
        await _append_raw(conn, "sheet-b", new_event(5))
        scanned, changes = await catch_up_once(conn, projection)
        assert scanned == 4
        assert [c[0] for c in calls] == ["range"] and calls[0][3] == frozenset({"sheet.counted"})
        assert changes == [{"stretch": calls[0][2].position}]
        row = await conn.fetchrow(
            "SELECT g.position, g.events_applied FROM projection_generations g WHERE g.name = 'range_totals'"
        )
        assert tuple(row) == (calls[0][2].position, 3)
        assert await conn.fetchval("SELECT n FROM p_range_totals_1.totals") == 10
        # Only other types: the checkpoint moves on, nothing is applied.
        await _append_raw(
            conn, "sheet-c", NewEvent("sheet.opened", 2, {"title": "C", "owner": "r1"}, now, now, TEST_ACTOR)
        )
        assert (await catch_up_once(conn, projection))[0] == 1
        assert len(calls) == 1
        assert await catch_up_once(conn, projection) == (0, [])
        # The next stretch starts where the last one ended.
        await _append_raw(conn, "sheet-d", new_event(7))
        await catch_up_once(conn, projection)
        assert calls[1][1] > calls[0][2]
        assert await conn.fetchval("SELECT n FROM p_range_totals_1.totals") == 17


async def test_a_stretch_that_fails_is_applied_event_by_event_and_the_failing_event_kept(db) -> None:
    from tally import new_event

    from salesplatform.projections import ensure_projection

    calls: list[tuple] = []
    failed: list[tuple] = []
    projection = _RangeTotals.make(calls, poison_fails_range=True)

    async def on_failure(name, event, error):
        failed.append((name, event.position, error))

    async with db.acquire() as conn:
        await ensure_projection(conn, projection)
        await _append_raw(conn, "sheet-a", new_event(2), new_event(1, poison=True), new_event(4))
        scanned, changes = await catch_up_once(conn, projection, on_failure=on_failure)
        assert scanned == 3
        # The stretch once, then the platform's guarded way, event by event.
        assert calls[0][0] == "range" and {c[0] for c in calls[1:]} == {"event"}
        assert await conn.fetchval("SELECT n FROM p_range_totals_1.totals") == 6
        positions = sorted({c[1] for c in calls[1:]})
        poison = positions[1]
        assert [(n, p) for n, p, _ in failed] == [("range_totals", poison)]
        assert await conn.fetchval("SELECT position FROM projection_failures WHERE name = 'range_totals'") == poison
        assert len(changes) == 2
        assert await catch_up_once(conn, projection, on_failure=on_failure) == (0, [])


async def test_several_projections_rebuild_in_one_pass_and_switch_together(service_settings) -> None:
    """An inline and a catch-up projection rebuilt together, the log cut into stretches of 3
    events over two lanes, while commands keep coming: both switch in one transaction to rows
    equal to the incremental ones, and the runner goes on from their checkpoints."""
    async with Runtime(definition(), service_settings) as rt:
        for i in range(10):
            await rt.run_command("open_sheet", {"sheet_id": f"s{i}", "title": "T"}, REP)
            await rt.run_command("count_visits", {"sheet_id": f"s{i}", "count": 2}, REP)
        stop = asyncio.Event()

        async def keep_writing() -> None:
            i = 0
            while not stop.is_set():
                await rt.run_command("count_visits", {"sheet_id": f"s{i % 10}", "count": 1}, REP)
                i += 1

        writer = asyncio.create_task(keep_writing())
        started: list[dict[str, int]] = []
        progress: list[int] = []
        generations = await rebuild(
            rt.pool,
            [rt.projection("sheet_totals"), rt.projection("event_counts")],
            stretch_events=3,
            lanes=2,
            on_started=started.append,
            on_progress=progress.append,
        )
        stop.set()
        await writer
        assert generations == {"sheet_totals": 2, "event_counts": 2} and started == [generations]
        assert progress and progress == sorted(progress)
        async with rt.pool.acquire() as conn:
            active = dict(await conn.fetch("SELECT name, active_schema FROM projections"))
        assert active == {"sheet_totals": "p_sheet_totals_2", "event_counts": "p_event_counts_2"}
        totals = await snapshot(rt, "sheet_totals", "SELECT sum(total) FROM totals")
        assert totals == [(await _sum_counted(rt),)]
        counted = await _count_of(rt, "sheet.counted")
        await settled(rt, "SELECT n FROM counts WHERE event_type = 'sheet.counted'", [(counted,)])


async def _count_of(rt: Runtime, event_type: str) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events WHERE event_type = $1", event_type)


async def test_a_projection_being_rebuilt_is_not_rebuilt_twice_at_once(service_settings) -> None:
    """A second rebuild of a projection whose rebuild runs is refused, and leaves the running
    one to finish: it neither drops its generation nor marks it failed."""
    async with Runtime(definition(), service_settings) as rt:
        for i in range(5):
            await rt.run_command("open_sheet", {"sheet_id": f"s{i}", "title": "T"}, REP)
        holding = asyncio.Event()
        release = asyncio.Event()

        async def held(applied: int) -> None:
            holding.set()
            await release.wait()

        first = asyncio.create_task(rebuild(rt.pool, [rt.projection("sheet_totals")], on_progress=held))
        await holding.wait()
        with pytest.raises(RebuildRunning):
            await rt.rebuild("sheet_totals")
        async with rt.pool.acquire() as conn:
            states = await rebuild_states(conn)
        assert states["sheet_totals"]["status"] == "running" and states["sheet_totals"]["generation"] == 2
        release.set()
        assert await first == {"sheet_totals": 2}
        assert len(await snapshot(rt, "sheet_totals", "SELECT * FROM totals")) == 5


async def test_a_rebuild_loads_a_stretch_a_few_events_at_a_time(service_settings, monkeypatch) -> None:
    """A projection that loads its events gets a long stretch a few events of the log at a
    time, and ends with the rows an incremental build has."""
    import salesplatform.projections as projections

    async with Runtime(definition(), service_settings) as rt:
        for i in range(6):
            await rt.run_command("open_sheet", {"sheet_id": f"s{i}", "title": "T"}, REP)
            await rt.run_command("count_visits", {"sheet_id": f"s{i}", "count": i + 1}, REP)
        incremental = await snapshot(rt, "sheet_totals", "SELECT * FROM totals ORDER BY sheet_id")
        totals = rt.projection("sheet_totals")
        batches: list[int] = []
        apply_batch = totals.apply_batch

        async def counted(conn, events):
            batches.append(len(events))
            return await apply_batch(conn, events)

        monkeypatch.setattr(totals, "apply_batch", counted)
        monkeypatch.setattr(projections, "LOADED_EVENTS", 4)
        assert await rebuild(rt.pool, [totals]) == {"sheet_totals": 2}
        assert sum(batches) == 12 and max(batches) <= 4
        assert await snapshot(rt, "sheet_totals", "SELECT * FROM totals ORDER BY sheet_id") == incremental
