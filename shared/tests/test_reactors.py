"""Reactors: events turned into commands of the service, run with its bus — once in effect
however often they run, in log order, waiting out outages, never ahead of what they read."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from tally import EventCounts, Sheet, SheetTotals, build_bus, definition, registry
from test_metrics import sample

from salesplatform import metrics, reactors
from salesplatform.clock import SystemClock
from salesplatform.commands import Command, CommandBus, Request
from salesplatform.events import Actor, Role
from salesplatform.projections import Projection, ProjectionRunner, ensure_projection
from salesplatform.reactors import Answer, Reaction, Reactor, ReactorRunner
from salesplatform.service import Runtime
from salesplatform.store import RecordedEvent
from salesplatform.uow import UnitOfWork

CLERK = Actor(id="r1", role=Role.rep, district="d1")


class TallyOpening(Command):
    """Count one visit on the sheet `into` for a sheet opened (only the service sends it)."""

    name = "tally_opening"
    into: str


# A test sets this to make the next tally meet an outage (the database going away).
outages: list[BaseException] = []


def bus_with_reactions() -> CommandBus:
    bus = build_bus(registry, SystemClock())

    @bus.command(TallyOpening, roles={Role.service})
    async def tally_opening(cmd: TallyOpening, uow: UnitOfWork) -> dict[str, Any]:
        if outages:
            raise outages.pop()
        sheet = await uow.get(Sheet, cmd.into)
        sheet.count(1)
        await uow.save(sheet)
        return {"total": sheet.total}

    return bus


class Openings(Reactor):
    """Each sheet opened (but the tally sheets themselves) counts on the sheet its title names."""

    name = "openings"
    event_types = frozenset({"sheet.opened"})

    def __init__(self) -> None:
        self.answers: list[Answer] = []

    async def react(self, conn: asyncpg.Connection, event: RecordedEvent) -> Sequence[Reaction]:
        into = event.data["title"]
        if event.envelope.stream_id == f"sheet-{into}":
            return []
        return [Reaction(TallyOpening.name, {"into": into}, key=into)]

    async def answered(self, conn: asyncpg.Connection, answer: Answer) -> None:
        self.answers.append(answer)


class OpeningsAfterCounts(Openings):
    name = "openings_after_counts"
    after = ("event_counts",)


async def runner_of(db: asyncpg.Pool, *reactors: Reactor) -> ReactorRunner:
    bus = bus_with_reactions()
    bus.pool = db
    async with db.acquire() as conn:
        for p in (SheetTotals(), EventCounts()):
            await ensure_projection(conn, p)
    runner = ReactorRunner(db, bus, list(reactors), "tally")
    await runner.ensure()
    return runner


async def open_sheets(runner: ReactorRunner, *sheets: tuple[str, str]) -> None:
    for sheet_id, title in sheets:
        outcome = await runner.bus.dispatch(Request("open_sheet", {"sheet_id": sheet_id, "title": title}, CLERK))
        assert outcome.ok, outcome.error


async def total(db: asyncpg.Pool, sheet_id: str) -> int:
    async with db.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM events WHERE stream_id = $1 AND event_type = 'sheet.counted'", f"sheet-{sheet_id}"
            )
        )


async def test_each_event_becomes_its_commands_once_as_the_service(db) -> None:
    reactor = Openings()
    runner = await runner_of(db, reactor)
    await open_sheets(runner, ("tally", "tally"), ("a", "tally"), ("b", "tally"))
    assert await runner.run_once() > 0
    assert await total(db, "tally") == 2
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT actor, causation_id FROM events WHERE stream_id = 'sheet-tally' AND event_type = 'sheet.counted'"
        )
        opened = {
            str(r["event_id"])
            for r in await conn.fetch("SELECT event_id FROM events WHERE stream_id IN ('sheet-a', 'sheet-b')")
        }
    assert {r["actor"]["id"] for r in rows} == {"service:tally:openings"}
    assert {r["causation_id"] for r in rows} == opened
    assert [a.result["total"] for a in reactor.answers if a.result] == [1, 2]

    # Delivered again from the start (a crash before the checkpoint moved): the commands are
    # sent again under the same keys and replay their first results; nothing is counted twice.
    async with db.acquire() as conn:
        await conn.execute("UPDATE reactor_checkpoints SET tx_id = '0', position = 0 WHERE name = 'openings'")
    reactor.answers.clear()
    assert await runner.run_once() > 0
    assert await total(db, "tally") == 2
    assert [a.result["total"] for a in reactor.answers if a.result] == [1, 2]
    assert await runner.run_once() == 0  # nothing left


async def test_a_refused_command_is_answered_to_the_reactor_which_moves_on(db) -> None:
    reactor = Openings()
    runner = await runner_of(db, reactor)
    await open_sheets(runner, ("tally", "tally"), ("a", "no-such-sheet"), ("b", "tally"))
    await runner.run_once()
    assert [(a.reaction.payload["into"], a.error.code if a.error else None) for a in reactor.answers] == [
        ("no-such-sheet", "sheet_not_found"),
        ("tally", None),
    ]
    assert await total(db, "tally") == 1


async def test_an_outage_is_waited_out_and_the_event_reacted_to_once(db) -> None:
    reactor = Openings()
    runner = await runner_of(db, reactor)
    await open_sheets(runner, ("tally", "tally"), ("a", "tally"), ("b", "tally"))
    outages.append(ConnectionRefusedError("the database went away"))
    with pytest.raises(ConnectionRefusedError):
        await runner.run_once()
    assert reactor.answers == []  # nothing answered, nothing dead-lettered, the checkpoint kept
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT position FROM reactor_checkpoints WHERE name = 'openings'") == 0
    await runner.run_once()
    assert await total(db, "tally") == 2
    assert [a.error for a in reactor.answers] == [None, None]


async def test_a_reactor_never_runs_ahead_of_the_projections_it_reads(db) -> None:
    reactor = OpeningsAfterCounts()
    runner = await runner_of(db, reactor)
    await open_sheets(runner, ("tally", "tally"), ("a", "tally"))
    assert await runner.run_once() == 0  # event_counts has applied nothing yet
    assert await total(db, "tally") == 0
    await ProjectionRunner(db, [EventCounts()]).run_once()
    assert await runner.run_once() > 0
    assert await total(db, "tally") == 1


async def test_a_busy_runner_gathers_commits_into_few_passes_and_misses_none(db, monkeypatch) -> None:
    """Every commit wakes the runner. Under a stream of commits it lets them gather rather
    than reading the log once per commit, and still reacts to every event."""
    monkeypatch.setattr(reactors, "_BUSY_GATHER_SECONDS", 0.3)
    reactor = Openings()
    runner = await runner_of(db, reactor)
    passes = 0
    react_once = runner.react_once

    async def counted(r: Reactor) -> int:
        nonlocal passes
        passes += 1
        return await react_once(r)

    runner.react_once = counted  # type: ignore[method-assign]
    await open_sheets(runner, ("tally", "tally"))
    task = asyncio.create_task(runner.run())
    try:
        for i in range(40):
            await open_sheets(runner, (f"s{i}", "tally"))
            runner.wake()
            await asyncio.sleep(0.005)
        for _ in range(100):
            if await total(db, "tally") == 40:
                break
            await asyncio.sleep(0.05)
    finally:
        runner.stop()
        await task
    assert await total(db, "tally") == 40
    # 40 commits, each waking the runner; passes only as often as commits gathered (a pass
    # that finds nothing new counts too).
    assert passes <= 15, passes


class Retired(Projection):
    """A catch-up projection an older release ran (it became a reactor since)."""

    name = "retired"
    schema_sql = "CREATE TABLE nothing (id int)"


async def test_metrics_say_how_far_behind_each_reactor_is_and_leave_retired_projections_out(
    service_settings,
) -> None:
    defn = definition()
    defn.build_bus = lambda _registry, _clock: bus_with_reactions()
    defn.reactors = [Openings()]
    async with Runtime(defn, service_settings, run_timers=False) as rt:
        async with rt.pool.acquire() as conn:
            await ensure_projection(conn, Retired())
        rt.reactors.stop()  # the reactor now moves only when told to
        for sheet_id, title in (("tally", "tally"), ("a", "tally")):
            assert (await rt.run_command("open_sheet", {"sheet_id": sheet_id, "title": title}, CLERK)).ok
        await asyncio.sleep(0.2)
        behind = (await metrics.exposition(rt)).decode()
        assert sample(behind, "sales_reactor_positions_behind", reactor="openings") == 2
        assert sample(behind, "sales_projection_positions_behind", projection="event_counts") is not None
        assert sample(behind, "sales_projection_positions_behind", projection="retired") is None
        rt.reactors._stopping.clear()
        await rt.reactors.run_once()
        caught_up = (await metrics.exposition(rt)).decode()
        assert sample(caught_up, "sales_reactor_positions_behind", reactor="openings") == 0
        assert sample(caught_up, "sales_reactor_events_total", reactor="openings") == 2
