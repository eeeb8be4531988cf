"""The unit of work in memory (`salesplatform.testing`) runs the real handlers, aggregates and
event registry of the tally domain without servers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tally import TEST_ACTOR, Sheet, SheetOpened, build_bus, registry

from salesplatform.clock import FixedClock
from salesplatform.command import Request
from salesplatform.errors import ConcurrencyConflict
from salesplatform.events import Actor, Role
from salesplatform.testing import (
    MemoryEventStore,
    MemoryResults,
    MemoryUnitOfWork,
    NeedsDatabase,
    StoredEvent,
    dispatch_in_memory,
)

pytestmark = pytest.mark.fast

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore(registry)


@pytest.fixture
def bus():
    return build_bus(registry, FixedClock(NOW))


def request(name: str, actor: Actor = TEST_ACTOR, key: str | None = None, **payload) -> Request:
    return Request(name, payload, actor, idempotency_key=key)


async def test_commands_append_json_events_that_later_loads_replay(bus, store) -> None:
    opened = await dispatch_in_memory(bus, store, request("open_sheet", sheet_id="s1", title="Monday"))
    counted = await dispatch_in_memory(bus, store, request("count_visits", sheet_id="s1", count=3))
    assert opened.ok and counted.ok, (opened, counted)
    assert counted.result == {"sheet_id": "s1", "total": 3, "version": 2}
    stored = store.stored("sheet-s1")
    assert [(e.event_type, e.version, e.data) for e in stored] == [
        ("sheet.opened", 1, {"title": "Monday", "owner": "r1"}),
        ("sheet.counted", 2, {"count": 3}),
    ]
    assert {(e.recorded_at, e.actor.id) for e in stored} == {(NOW, "r1")}
    sheet = await MemoryUnitOfWork(store, bus.clock, TEST_ACTOR).get(Sheet, "s1")
    assert (sheet.title, sheet.total, sheet.version) == ("Monday", 3, 2)


async def test_loads_upcast_old_schema_versions_through_the_registry(bus, store) -> None:
    store.append([StoredEvent("sheet-old", 1, "sheet.opened", 1, {"title": "old"}, NOW, TEST_ACTOR, None, None)], 0)
    (event,) = store.events("sheet-old")
    assert isinstance(event, SheetOpened) and event.owner == "clerk"
    counted = await dispatch_in_memory(bus, store, request("count_visits", sheet_id="old", count=2))
    assert counted.ok and counted.result == {"sheet_id": "old", "total": 2, "version": 2}


async def test_a_handler_that_refuses_after_saving_leaves_the_store_as_it_was(bus, store) -> None:
    await dispatch_in_memory(bus, store, request("open_sheet", sheet_id="s0", title="kept"))
    refused = await dispatch_in_memory(bus, store, request("open_and_count", sheet_id="s1", count=2_000_000))
    assert not refused.ok and refused.error.code == "limit"
    assert store.version("sheet-s1") == 0
    assert [e.stream_id for e in store.log] == ["sheet-s0"]


async def test_the_bus_checks_role_body_and_command_before_the_handler(bus, store) -> None:
    clerk = Actor(id="k1", role=Role.clerk)
    assert (await dispatch_in_memory(bus, store, request("open_sheet", clerk, sheet_id="s1", title="x"))).status == 403
    assert (await dispatch_in_memory(bus, store, request("open_sheet", sheet_id="s1", title=""))).status == 422
    assert (await dispatch_in_memory(bus, store, request("close_sheet", sheet_id="s1"))).status == 404
    assert store.log == []


async def test_a_key_sent_again_replays_and_another_body_is_refused(bus, store) -> None:
    results = MemoryResults()
    await dispatch_in_memory(bus, store, request("open_sheet", sheet_id="s1", title="x"))
    first = await dispatch_in_memory(bus, store, request("count_visits", key="k", sheet_id="s1", count=1), results)
    again = await dispatch_in_memory(bus, store, request("count_visits", key="k", sheet_id="s1", count=1), results)
    other = await dispatch_in_memory(bus, store, request("count_visits", key="k", sheet_id="s1", count=5), results)
    assert first.ok and again.ok and again.replayed and again.result == first.result
    assert other.status == 422 and other.error.code == "idempotency_key_reused"
    assert store.version("sheet-s1") == 2


async def test_a_stale_append_is_a_concurrency_conflict(store) -> None:
    uow = MemoryUnitOfWork(store, FixedClock(NOW), TEST_ACTOR)
    sheet = await uow.load(Sheet, "s1")
    stale = await uow.load(Sheet, "s1")
    sheet.open("first", "r1")
    await uow.save(sheet)
    stale.open("second", "r1")
    with pytest.raises(ConcurrencyConflict):
        await uow.save(stale)
    assert [e.data["title"] for e in store.stored("sheet-s1")] == ["first"]


async def test_a_handler_that_reads_the_database_says_so(bus, store) -> None:
    with pytest.raises(NeedsDatabase):
        await dispatch_in_memory(bus, store, request("break_transaction"))
    await dispatch_in_memory(bus, store, request("open_sheet", sheet_id="s1", title="x"))
    with pytest.raises(NeedsDatabase):
        await dispatch_in_memory(bus, store, request("note_sheet", sheet_id="s1", note="n"))
    assert store.version("sheet-s1") == 1  # the count note_sheet saved went with it
