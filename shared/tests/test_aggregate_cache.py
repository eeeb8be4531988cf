"""Aggregates kept in memory between commands: a load reads only newer events, and nothing a
transaction did not commit is ever kept."""

from __future__ import annotations

import pytest
import pytest_asyncio
from tally import Sheet, SheetOpened, VisitsCounted, definition, new_event

from salesplatform.aggregate import AggregateCache
from salesplatform.commands import Request
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime
from salesplatform.store import append

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


def sheet(id: str, *counts: int) -> Sheet:
    return Sheet.replay(id, [SheetOpened(title="T", owner="r1"), *(VisitsCounted(count=c) for c in counts)])


@pytest.mark.fast
def test_the_cache_gives_copies_keeps_the_newest_and_stays_bounded() -> None:
    cache = AggregateCache(size=2)
    cache.put([sheet("a", 1, 2)])
    got = cache.get("sheet-a")
    assert got is not None and (got.version, got.total) == (3, 3)
    got.count(5)  # changing the copy leaves the kept one alone
    kept = cache.get("sheet-a")
    assert (kept.total, kept.counts, kept.pending) == (3, [1, 2], [])
    assert got.counts == [1, 2, 5]
    cache.put([sheet("a", 1)])  # an older version does not replace a newer one
    assert cache.get("sheet-a").version == 3
    pending = sheet("b")
    pending.count(1)
    cache.put([pending])  # undecided state is never kept
    assert cache.get("sheet-b") is None
    cache.put([sheet("b"), sheet("c")])
    assert len(cache) == 2 and cache.get("sheet-a") is None  # least recently used went


@pytest.mark.fast
def test_copies_share_the_kept_state_until_an_event_changes_them() -> None:
    cache = AggregateCache()
    cache.put([sheet("a", 1)])
    reader, writer = cache.get("sheet-a"), cache.get("sheet-a")
    assert reader.counts is writer.counts  # a load that only reads copies nothing
    writer.catch_up([VisitsCounted(count=4)])  # newer events read from the log
    writer.count(2)
    assert (writer.version, writer.counts, writer.total) == (3, [1, 4, 2], 7)
    assert (reader.version, reader.counts, reader.total) == (2, [1], 1)
    assert cache.get("sheet-a").counts == [1]
    cache.put([reader])  # a copy that only read is kept as it is; it still shares nothing it changed
    assert cache.get("sheet-a").counts == [1]


async def test_a_load_starts_from_the_cache_and_reads_what_others_appended(rt) -> None:
    await rt.bus.dispatch(Request("open_sheet", {"sheet_id": "a", "title": "T"}, REP))
    await rt.bus.dispatch(Request("count_visits", {"sheet_id": "a", "count": 3}, REP))
    assert rt.bus.aggregates.get("sheet-a").version == 2
    async with rt.pool.acquire() as conn:  # another process appends
        await append(conn, "sheet-a", 2, [new_event(10)])
    outcome = await rt.bus.dispatch(Request("count_visits", {"sheet_id": "a", "count": 1}, REP))
    assert outcome.result == {"sheet_id": "a", "total": 14, "version": 4}
    assert rt.bus.aggregates.get("sheet-a").total == 14


async def test_what_a_rolled_back_batch_saw_is_not_kept(rt) -> None:
    await rt.bus.dispatch(Request("open_sheet", {"sheet_id": "a", "title": "T"}, REP))
    outcomes = await rt.bus.dispatch_many(
        [
            Request("count_visits", {"sheet_id": "a", "count": 5}, REP),
            Request("break_transaction", {}, REP),
        ]
    )
    assert outcomes[0].ok and outcomes[0].result["total"] == 5
    again = await rt.bus.dispatch(Request("count_visits", {"sheet_id": "a", "count": 1}, REP))
    assert again.result == {"sheet_id": "a", "total": 6, "version": 3}
