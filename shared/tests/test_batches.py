"""Batches of commands in one transaction (ingest, group commit): batched commands' writes are
applied together in waves, and the result is what running them one after the other gives."""

from __future__ import annotations

import asyncio

import pytest_asyncio
import tally
from tally import definition, new_event

from salesplatform.commands import Request
from salesplatform.events import Actor, Role
from salesplatform.projections import reading
from salesplatform.service import Runtime
from salesplatform.store import load_stream
from salesplatform.uow import try_claims

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


def count(sheet: str, n: int = 1, **extra: str) -> Request:
    return Request("count_visits", {"sheet_id": sheet, "count": n}, REP, **extra)


def open_(sheet: str, title: str = "T") -> Request:
    return Request("open_sheet", {"sheet_id": sheet, "title": title}, REP)


async def totals(rt: Runtime) -> dict[str, int]:
    async with reading(rt.pool, "sheet_totals") as conn:
        return dict(await conn.fetch("SELECT sheet_id, total FROM totals"))


async def test_a_wave_is_one_transaction_in_the_order_of_the_batch(rt) -> None:
    outcomes = await rt.bus.dispatch_many([open_(f"s{i}") for i in range(20)])
    assert all(o.ok for o in outcomes)
    async with rt.pool.acquire() as conn:
        rows = await conn.fetch("SELECT stream_id, tx_id::text FROM events ORDER BY position")
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 20
    assert [r["stream_id"] for r in rows] == [f"sheet-s{i}" for i in range(20)]
    assert len({r["tx_id"] for r in rows}) == 1
    assert await totals(rt) == {f"s{i}": 0 for i in range(20)}


async def test_commands_on_one_stream_in_one_batch_each_see_the_last(rt) -> None:
    """Opening a sheet and counting on it three times in one batch: each command reads what the
    one before wrote, as if they ran one by one."""
    outcomes = await rt.bus.dispatch_many([open_("a"), count("a", 2), open_("b"), count("a", 3), count("b")])
    assert [o.ok for o in outcomes] == [True] * 5
    assert [o.result["version"] for o in outcomes] == [1, 2, 1, 3, 2]
    assert outcomes[3].result["total"] == 5
    async with rt.pool.acquire() as conn:
        assert [e.envelope.stream_version for e in await load_stream(conn, "sheet-a")] == [1, 2, 3]
    assert await totals(rt) == {"a": 5, "b": 1}


async def test_a_refused_command_in_a_wave_writes_nothing_and_the_others_apply(rt) -> None:
    outcomes = await rt.bus.dispatch_many([open_("a"), open_("a"), count("nope"), open_("b")])
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert outcomes[1].error.code == "sheet_exists"
    assert outcomes[2].status == 404
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 2


async def test_a_claimed_key_orders_commands_that_read_a_read_model(rt) -> None:
    """Two counts under a cap of 5 over all sheets, in one batch: the second must see the
    first's write in the read model, so it is refused."""
    await rt.bus.dispatch_many([open_("a"), open_("b")])
    capped = [Request("count_within_cap", {"sheet_id": s, "count": 3, "cap": 5}, REP) for s in ("a", "b")]
    outcomes = await rt.bus.dispatch_many(capped)
    assert outcomes[0].ok
    assert not outcomes[1].ok and outcomes[1].error.code == "over_cap"
    assert await totals(rt) == {"a": 3, "b": 0}


async def test_a_command_that_reads_its_own_write_runs_writing_at_once(rt) -> None:
    outcomes = await rt.bus.dispatch_many(
        [
            open_("x"),
            Request("open_and_count", {"sheet_id": "y", "count": 4}, REP),
            count("x"),
        ]
    )
    assert [o.ok for o in outcomes] == [True] * 3
    assert outcomes[1].result == {"sheet_id": "y", "version": 2}
    assert await totals(rt) == {"x": 1, "y": 4}


async def test_idempotency_keys_of_a_wave_are_kept_with_its_writes(rt) -> None:
    await rt.bus.dispatch_many([open_("a")])
    first = await rt.bus.dispatch_many([count("a", 2, idempotency_key="k1"), count("a", 2, idempotency_key="k1")])
    assert [o.replayed for o in first] == [False, True]
    again = await rt.bus.dispatch_many([count("a", 2, idempotency_key="k1")])
    assert again[0].replayed and again[0].result == first[0].result
    assert await totals(rt) == {"a": 2}


async def test_a_wave_beaten_by_another_transaction_runs_again_alone(rt) -> None:
    """Another writer appends to a sheet after the batch read it: the wave's append conflicts,
    nothing of it is applied, and its commands run again on their own: no count is lost."""
    await rt.bus.dispatch_many([open_("a"), open_("b")])

    async def sneak_in(sheet: str) -> None:
        if sheet == "a" and not sneaked:
            sneaked.append(True)
            async with rt.pool.acquire() as other:
                head = await other.fetchval("SELECT max(stream_version) FROM events WHERE stream_id = 'sheet-a'")
                from salesplatform.store import append

                await append(other, "sheet-a", head, [new_event(10)])

    sneaked: list[bool] = []
    tally.after_count.append(sneak_in)
    try:
        outcomes = await rt.bus.dispatch_many([count("a", 1), count("b", 1)])
    finally:
        tally.after_count.clear()
    assert [o.ok for o in outcomes] == [True, True]
    assert outcomes[0].result["total"] == 11
    async with rt.pool.acquire() as conn:
        assert [e.data["count"] for e in await load_stream(conn, "sheet-a", 1)] == [10, 1]
        assert len(await load_stream(conn, "sheet-b")) == 2


async def test_a_failing_inline_projection_fails_only_its_command(rt) -> None:
    outcomes = await rt.bus.dispatch_many([open_("a"), open_("boom", "explode"), open_("b")])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].status == 500
    async with rt.pool.acquire() as conn:
        streams = {r[0] for r in await conn.fetch("SELECT stream_id FROM events")}
    assert streams == {"sheet-a", "sheet-b"}


async def test_a_failing_later_wave_keeps_the_wave_before_it(rt) -> None:
    """The count on `a` reads what the first wave writes, so it starts a second wave with the
    failing open; that wave is undone alone (a savepoint) and its good command runs again."""
    outcomes = await rt.bus.dispatch_many([open_("a"), count("a", 2), open_("boom", "explode"), open_("b")])
    assert [o.ok for o in outcomes] == [True, True, False, True]
    assert outcomes[2].status == 500
    async with rt.pool.acquire() as conn:
        assert len({r[0] for r in await conn.fetch("SELECT tx_id FROM events")}) == 1
    assert await totals(rt) == {"a": 2, "b": 0}


async def test_a_statement_fault_in_a_wave_runs_the_batch_again_one_by_one(rt) -> None:
    outcomes = await rt.bus.dispatch_many([open_("a"), Request("break_transaction", {}, REP), open_("b")])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].status == 500
    assert await totals(rt) == {"a": 0, "b": 0}


async def test_writes_beside_the_events_commit_with_their_wave_only(rt) -> None:
    async with rt.pool.acquire() as conn:
        await conn.execute("CREATE TABLE public.sheet_notes (sheet_id text, note text)")
    await rt.bus.dispatch_many([open_("a"), open_("b")])
    note = [Request("note_sheet", {"sheet_id": s, "note": f"on {s}"}, REP) for s in ("a", "nope", "b", "a")]
    outcomes = await rt.bus.dispatch_many(note)
    assert [o.ok for o in outcomes] == [True, False, True, True]
    async with rt.pool.acquire() as conn:
        notes = await conn.fetch("SELECT sheet_id, note FROM public.sheet_notes ORDER BY sheet_id")
    assert [tuple(n) for n in notes] == [("a", "on a"), ("a", "on a"), ("b", "on b")]
    assert await totals(rt) == {"a": 2, "b": 1}


def capped(sheet: str, n: int = 3, cap: int = 5, *, declared: bool = True) -> Request:
    name = "count_within_cap" if declared else "count_within_cap_undeclared"
    return Request(name, {"sheet_id": sheet, "count": n, "cap": cap}, REP)


async def _hold_first_capped_count(rt: Runtime, first, second) -> tuple[list, list]:
    """Runs `first` until its capped count has read the totals and decided, then `second`
    while the first's transaction is still open; then lets the first commit. Also returns the
    streams of the events committed while the first was held."""
    decided, release = asyncio.Event(), asyncio.Event()

    async def hold(sheet_id: str) -> None:
        if sheet_id == "a":
            decided.set()
            await release.wait()

    async with rt.pool.acquire() as conn:
        last = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    tally.after_cap_check.append(hold)
    try:
        first_task = asyncio.create_task(first())
        await asyncio.wait_for(decided.wait(), 10)
        second_task = asyncio.create_task(second())
        await asyncio.sleep(0.3)  # the second is now waiting for the first's claim, or done
        async with rt.pool.acquire() as conn:
            during = [
                r[0]
                for r in await conn.fetch(
                    "SELECT stream_id FROM events WHERE position > $1 ORDER BY position",
                    last,
                )
            ]
        release.set()
        first_out, second_out = await asyncio.wait_for(asyncio.gather(first_task, second_task), 10)
    finally:
        tally.after_cap_check.clear()
    return [first_out, second_out], during


async def test_a_claim_orders_commands_of_concurrent_batches(rt) -> None:
    """Two batches in concurrent transactions each count 3 under a cap of 5: the second must
    not decide on totals the first is about to change. The claim is declared, so the second
    batch tries it ahead and finds it held: its other command commits at once, the capped
    count waits for the first to commit, then is refused."""
    await rt.bus.dispatch_many([open_("a"), open_("b"), open_("c")])
    (first, second), during = await _hold_first_capped_count(
        rt,
        lambda: rt.bus.dispatch_many([capped("a")]),
        lambda: rt.bus.dispatch_many([capped("b"), count("c")]),
    )
    assert during == ["sheet-c"]
    assert first[0].ok
    assert not second[0].ok and second[0].error.code == "over_cap"
    assert second[1].ok
    assert await totals(rt) == {"a": 3, "b": 0, "c": 1}


async def test_a_claim_made_only_in_a_handler_is_not_waited_for_in_a_batch(rt) -> None:
    """The same with a claim the batch cannot take ahead: the second batch does not wait (its
    other command commits while the first is held); the capped count runs again alone after
    it, waits for the first's claim, and is refused."""
    await rt.bus.dispatch_many([open_("a"), open_("b"), open_("c")])
    (first, second), during = await _hold_first_capped_count(
        rt,
        lambda: rt.bus.dispatch_many([capped("a")]),
        lambda: rt.bus.dispatch_many([capped("b", declared=False), count("c")]),
    )
    assert during == ["sheet-c"]
    assert first[0].ok
    assert not second[0].ok and second[0].error.code == "over_cap"
    assert second[1].ok
    assert await totals(rt) == {"a": 3, "b": 0, "c": 1}


async def test_a_claim_orders_commands_run_alone(rt) -> None:
    await rt.bus.dispatch_many([open_("a"), open_("b")])
    (first, second), _ = await _hold_first_capped_count(
        rt,
        lambda: rt.bus.dispatch(capped("a")),
        lambda: rt.bus.dispatch(capped("b")),
    )
    assert first.ok
    assert not second.ok and second.error.code == "over_cap"
    assert await totals(rt) == {"a": 3, "b": 0}


async def test_claims_are_released_at_commit(rt) -> None:
    await rt.bus.dispatch_many([open_("a"), open_("b")])
    assert (await rt.bus.dispatch_many([capped("a", 1)]))[0].ok
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            assert await try_claims(conn, ["all-sheets"]) == ["all-sheets"]
    assert (await rt.bus.dispatch(capped("b", 1))).ok
