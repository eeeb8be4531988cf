"""Idempotency keys: scoped to the caller and the command, held to the body first sent with
them, bounded in length and kept for a retention, the same over HTTP, NATS request/reply and
ingest."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
from tally import SIGNING_KEY, definition
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.commands import IDEMPOTENCY_KEY_MAX_LENGTH, Command, Request, fingerprint, forget_command_results
from salesplatform.devstack.pytest_plugin import next_stream_message
from salesplatform.events import Actor, Role
from salesplatform.migrations import _platform_files
from salesplatform.service import Runtime, http_app
from salesplatform.settings import InvalidSettings, settings_for
from salesplatform.store import load_stream

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")
OTHER_REP = Actor(id="r9", role=Role.rep, district="d9", area="a9")


def headers(actor: Actor, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}", "Idempotency-Key": key}


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def http(rt):
    transport = httpx.ASGITransport(app=http_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


async def sheet_versions(rt: Runtime, sheet_id: str) -> int:
    async with rt.pool.acquire() as conn:
        return len(await load_stream(conn, f"sheet-{sheet_id}"))


async def open_sheets(rt: Runtime, *ids: str) -> None:
    for sheet_id in ids:
        assert (await rt.run_command("open_sheet", {"sheet_id": sheet_id, "title": "T"}, REP)).ok


# -- HTTP ---------------------------------------------------------------------------------


async def test_another_callers_key_runs_the_callers_own_command_and_leaks_nothing(rt, http) -> None:
    """One caller's key, sent by another caller on another sheet: the second command is applied
    and answered with its own result, not the first caller's."""
    await open_sheets(rt, "mine", "theirs")
    first = await http.post("/commands/count_visits", json={"sheet_id": "mine", "count": 2}, headers=headers(REP, "K"))
    assert first.status_code == 200 and first.json()["sheet_id"] == "mine"
    second = await http.post(
        "/commands/count_visits", json={"sheet_id": "theirs", "count": 5}, headers=headers(OTHER_REP, "K")
    )
    assert second.status_code == 200, second.text
    assert second.json() == {"sheet_id": "theirs", "total": 5, "version": 2}
    assert await sheet_versions(rt, "theirs") == 2


async def test_one_key_for_two_commands_runs_both(rt, http) -> None:
    r = await http.post("/commands/open_sheet", json={"sheet_id": "k2", "title": "T"}, headers=headers(REP, "K"))
    assert r.status_code == 200
    r = await http.post("/commands/count_visits", json={"sheet_id": "k2", "count": 1}, headers=headers(REP, "K"))
    assert r.status_code == 200 and r.json()["total"] == 1


async def test_the_same_key_and_body_replay_even_with_other_spacing_and_order(rt, http) -> None:
    await open_sheets(rt, "s1")
    first = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 3}, headers=headers(REP, "K"))
    again = await http.post(
        "/commands/count_visits",
        content=b'{ "count": 3,\n  "sheet_id": " s1 " }',
        headers={**headers(REP, "K"), "Content-Type": "application/json"},
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert await sheet_versions(rt, "s1") == 2


async def test_the_same_key_with_another_body_is_refused_and_changes_nothing(rt, http) -> None:
    await open_sheets(rt, "s1")
    await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 3}, headers=headers(REP, "K"))
    r = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 4}, headers=headers(REP, "K"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert r.json()["error"]["field"] == "Idempotency-Key"
    assert await sheet_versions(rt, "s1") == 2


async def test_a_key_longer_than_the_maximum_is_refused_and_one_at_it_taken(rt, http) -> None:
    await open_sheets(rt, "s1")
    long_key = "k" * 6400
    r = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 1}, headers=headers(REP, long_key))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_too_long"
    assert await sheet_versions(rt, "s1") == 1
    at_most = "k" * IDEMPOTENCY_KEY_MAX_LENGTH
    r = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 1}, headers=headers(REP, at_most))
    assert r.status_code == 200, r.text


# -- NATS request/reply --------------------------------------------------------------------


async def request(outside, rt: Runtime, name: str, payload: dict, actor: Actor, key: str) -> dict:
    reply = await outside.request(
        rt.topology.subject("cmd", name), orjson.dumps(payload), headers=headers(actor, key), timeout=10
    )
    return orjson.loads(reply.data)


async def test_request_reply_keys_are_scoped_and_held_to_their_body(rt, outside) -> None:
    await open_sheets(rt, "mine", "theirs")
    first = await request(outside, rt, "count_visits", {"sheet_id": "mine", "count": 2}, REP, "K")
    assert first["ok"] and first["result"]["sheet_id"] == "mine"
    replayed = await request(outside, rt, "count_visits", {"sheet_id": "mine", "count": 2}, REP, "K")
    assert replayed == first
    other = await request(outside, rt, "count_visits", {"sheet_id": "theirs", "count": 5}, OTHER_REP, "K")
    assert other["ok"] and other["result"] == {"sheet_id": "theirs", "total": 5, "version": 2}
    reused = await request(outside, rt, "count_visits", {"sheet_id": "mine", "count": 9}, REP, "K")
    assert reused["status"] == 422 and reused["error"]["code"] == "idempotency_key_reused"
    too_long = await request(outside, rt, "count_visits", {"sheet_id": "mine", "count": 1}, REP, "k" * 6400)
    assert too_long["status"] == 422 and too_long["error"]["code"] == "idempotency_key_too_long"
    assert await sheet_versions(rt, "mine") == 2
    assert await sheet_versions(rt, "theirs") == 2


# -- ingest --------------------------------------------------------------------------------


async def test_ingest_keys_are_scoped_to_the_tokens_subject_and_held_to_their_body(rt, outside) -> None:
    await open_sheets(rt, "mine", "theirs")
    results = await outside.subscribe(rt.topology.subject("result", ">"))
    await outside.flush()
    js = outside.jetstream()
    ingest = rt.topology.subject("ingest", "count_visits")
    key = str(uuid.uuid4())
    await js.publish(ingest, orjson.dumps({"sheet_id": "mine", "count": 2}), headers=headers(REP, key))
    first = orjson.loads((await results.next_msg(timeout=10)).data)
    assert first["result"]["sheet_id"] == "mine"
    await js.publish(ingest, orjson.dumps({"sheet_id": "theirs", "count": 5}), headers=headers(OTHER_REP, key))
    other = orjson.loads((await results.next_msg(timeout=10)).data)
    assert other["result"] == {"sheet_id": "theirs", "total": 5, "version": 2}

    await js.publish(ingest, orjson.dumps({"sheet_id": "mine", "count": 7}), headers=headers(REP, key))
    reused = await next_stream_message(rt.js, rt.topology.dlq_stream)
    assert reused.headers["Dlq-Reason"] == "rejected"
    assert "idempotency_key_reused" in reused.headers["Dlq-Error"]
    await js.publish(ingest, orjson.dumps({"sheet_id": "mine", "count": 1}), headers=headers(REP, "k" * 6400))

    async def refused_too_long() -> bool:
        info = await rt.js.stream_info(rt.topology.dlq_stream)
        if info.state.messages < 2:
            return False
        msg = await rt.js.get_msg(rt.topology.dlq_stream, info.state.last_seq)
        return "idempotency_key_too_long" in (msg.headers or {}).get("Dlq-Error", "")

    await wait_for(refused_too_long)
    assert await sheet_versions(rt, "mine") == 2
    assert await sheet_versions(rt, "theirs") == 2


# -- batches, migration, retention ---------------------------------------------------------


async def test_a_batch_replays_refuses_and_scopes_keys_like_single_commands(rt) -> None:
    await open_sheets(rt, "mine", "theirs")

    def count(sheet_id: str, n: int, actor: Actor = REP) -> Request:
        return Request("count_visits", {"sheet_id": sheet_id, "count": n}, actor, idempotency_key="B")

    outcomes = await rt.bus.dispatch_many([count("mine", 2), count("mine", 2), count("mine", 3)])
    assert [o.ok for o in outcomes] == [True, True, False]
    assert outcomes[1].replayed and outcomes[1].result == outcomes[0].result
    assert outcomes[2].error.code == "idempotency_key_reused"  # type: ignore[union-attr]
    later = await rt.bus.dispatch_many([count("theirs", 4, OTHER_REP), count("mine", 5)])
    assert later[0].ok and later[0].result == {"sheet_id": "theirs", "total": 4, "version": 2}
    assert later[1].error.code == "idempotency_key_reused"  # type: ignore[union-attr]
    assert await sheet_versions(rt, "mine") == 2


async def test_results_stored_before_keys_were_scoped_still_replay(service_settings) -> None:
    """A deployed database has results recorded by the release before: after the migration
    their keys still answer with them."""
    conn = await asyncpg.connect(service_settings.database_url)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (name text PRIMARY KEY, applied_at timestamptz DEFAULT now())"
        )
        for name, sql in _platform_files():
            if name < "platform/006":
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
        await conn.execute(
            "INSERT INTO command_results (command, idempotency_key, result) VALUES ('count_visits', 'old', $1)",
            '{"sheet_id": "s0", "total": 9, "version": 4}',
        )
    finally:
        await conn.close()
    async with Runtime(definition(), service_settings) as rt:
        outcome = await rt.bus.dispatch(
            Request("count_visits", {"sheet_id": "s0", "count": 1}, REP, idempotency_key="old")
        )
        assert outcome.ok and outcome.replayed
        assert outcome.result == {"sheet_id": "s0", "total": 9, "version": 4}


async def test_results_older_than_the_retention_are_forgotten(rt) -> None:
    await open_sheets(rt, "s1")
    first = await rt.bus.dispatch(Request("count_visits", {"sheet_id": "s1", "count": 1}, REP, idempotency_key="R"))
    assert first.ok
    async with rt.pool.acquire() as conn:
        assert await forget_command_results(conn, 1.0) == 0
        await conn.execute("UPDATE command_results SET recorded_at = now() - interval '2 hours'")
        assert await forget_command_results(conn, 1.0) == 1
    again = await rt.bus.dispatch(Request("count_visits", {"sheet_id": "s1", "count": 1}, REP, idempotency_key="R"))
    assert again.ok and not again.replayed and again.result["total"] == 2  # type: ignore[index]


async def test_concurrent_callers_with_one_key_each_get_their_own_result(rt) -> None:
    await open_sheets(rt, "mine", "theirs")
    outcomes = await asyncio.gather(
        *(
            rt.bus.dispatch(Request("count_visits", {"sheet_id": s, "count": 1}, a, idempotency_key="C"))
            for s, a in [("mine", REP), ("theirs", OTHER_REP)] * 3
        )
    )
    assert all(o.ok for o in outcomes)
    assert {o.result["sheet_id"] for o in outcomes[0::2]} == {"mine"}  # type: ignore[index]
    assert {o.result["sheet_id"] for o in outcomes[1::2]} == {"theirs"}  # type: ignore[index]
    assert await sheet_versions(rt, "mine") == await sheet_versions(rt, "theirs") == 2


def test_the_retention_must_outlast_the_ingest_queue(service_settings) -> None:
    """A queued message redelivered after its result was forgotten would run twice."""
    assert service_settings.idempotency_retention_hours > service_settings.ingest_max_queue_hours
    with pytest.raises(InvalidSettings, match="retention"):
        settings_for("tally", database_url="postgresql://x/y", idempotency_retention_hours=24)


@pytest.mark.fast
def test_a_body_has_one_fingerprint_across_releases_and_default_values() -> None:
    """A release whose command gained an optional field computes the fingerprint the previous
    release stored for the same body (in a rolling update either may run a redelivered
    message); a field sent with its default value changes nothing either."""

    class CountVisits(Command):
        name = "count_visits"
        sheet_id: str
        count: int

    class CountVisitsWithChannel(CountVisits):
        channel: str | None = None

    before = fingerprint(CountVisits(sheet_id="s1", count=2))
    assert fingerprint(CountVisitsWithChannel(sheet_id="s1", count=2)) == before
    assert fingerprint(CountVisitsWithChannel(sheet_id="s1", count=2, channel=None)) == before
    assert fingerprint(CountVisitsWithChannel(sheet_id="s1", count=2, channel="phone")) != before
    assert fingerprint(CountVisits(sheet_id="s1", count=3)) != before
