"""Commands over HTTP and NATS, idempotency (guarantee 7), atomic writes (guarantee 2),
permissions, and the structured errors of bad input."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import httpx
import orjson
import pytest
import pytest_asyncio
from tally import SIGNING_KEY, definition, registry
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.commands import Request
from salesplatform.contract import REJECTION_HEADERS, RESULT_HEADERS, CommandRefusal, CommandResult
from salesplatform.devstack.pytest_plugin import next_stream_message
from salesplatform.events import Actor, Envelope, Role
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_app
from salesplatform.store import load_stream

REP = Actor(id="r1", role=Role.rep, district="d1", area="a1")
CLERK = Actor(id="c1", role=Role.clerk)


def bearer(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"}


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def http(rt):
    transport = httpx.ASGITransport(app=http_app(rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        yield client


async def event_count(rt: Runtime) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events")


async def test_http_command_appends_and_inline_projection_is_readable_at_once(rt, http) -> None:
    r = await http.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "Monday"}, headers=bearer(REP))
    assert r.status_code == 200, r.text
    assert r.json() == {"sheet_id": "s1", "version": 1}
    async with reading(rt.pool, "sheet_totals") as conn:
        assert await conn.fetchval("SELECT title FROM totals WHERE sheet_id = 's1'") == "Monday"


async def test_repeated_idempotency_key_returns_first_result_and_appends_nothing(rt, http) -> None:
    await http.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers=bearer(REP))
    headers = {**bearer(REP), "Idempotency-Key": "k-1"}
    first = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 3}, headers=headers)
    before = await event_count(rt)
    again = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": 3}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() == {"sheet_id": "s1", "total": 3, "version": 2}
    assert await event_count(rt) == before


async def test_concurrent_requests_with_one_key_append_once(rt) -> None:
    await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
    outcomes = await asyncio.gather(
        *(
            rt.bus.dispatch(Request("count_visits", {"sheet_id": "s1", "count": 2}, REP, idempotency_key="same"))
            for _ in range(6)
        )
    )
    assert all(o.ok for o in outcomes)
    assert all(o.result == {"sheet_id": "s1", "total": 2, "version": 2} for o in outcomes)
    assert sum(not o.replayed for o in outcomes) == 1
    async with rt.pool.acquire() as conn:
        assert len(await load_stream(conn, "sheet-s1")) == 2


async def test_concurrent_commands_on_one_aggregate_all_apply(rt) -> None:
    """Conflicts between writers are retried by loading again: none is lost, none doubled."""
    await rt.run_command("open_sheet", {"sheet_id": "s1", "title": "M"}, REP)
    outcomes = await asyncio.gather(
        *(rt.run_command("count_visits", {"sheet_id": "s1", "count": 1}, REP) for _ in range(10))
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    async with reading(rt.pool, "sheet_totals") as conn:
        assert await conn.fetchval("SELECT total FROM totals WHERE sheet_id = 's1'") == 10


async def test_failure_in_inline_projection_rolls_back_events_and_outbox(rt) -> None:
    with pytest.raises(RuntimeError):
        await rt.run_command("open_sheet", {"sheet_id": "boom", "title": "explode"}, REP)
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = 'sheet-boom'") == 0
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0


async def test_validation_errors_are_structured_422(rt, http) -> None:
    before = await event_count(rt)
    r = await http.post("/commands/count_visits", json={"sheet_id": "s1", "count": -4, "extra": 1}, headers=bearer(REP))
    assert r.status_code == 422
    details = r.json()["error"]["details"]
    assert {d["field"] for d in details} == {"count", "extra"}
    assert all(d["code"] and d["message"] for d in details)
    r = await http.post("/commands/count_visits", content=b"{not json", headers=bearer(REP))
    assert r.status_code == 422
    assert await event_count(rt) == before


async def test_broken_rule_is_409_with_code_and_changes_nothing(rt, http) -> None:
    await http.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers=bearer(REP))
    before = await event_count(rt)
    r = await http.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers=bearer(REP))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "sheet_exists"
    r = await http.post("/commands/count_visits", json={"sheet_id": "nope", "count": 1}, headers=bearer(REP))
    assert r.status_code == 404
    assert await event_count(rt) == before


async def test_wrong_role_gets_403_and_missing_token_401(rt, http) -> None:
    r = await http.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers=bearer(CLERK))
    assert r.status_code == 403
    assert "clerk" in r.json()["error"]["message"]
    r = await http.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"})
    assert r.status_code == 401
    r = await http.post(
        "/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers={"Authorization": "Bearer forged"}
    )
    assert r.status_code == 401
    assert await event_count(rt) == 0


async def test_a_command_body_over_the_limit_is_413_and_changes_nothing(rt) -> None:
    rt.settings.http_command_max_bytes = 200
    body = orjson.dumps({"sheet_id": "s1", "title": "M" * 300})

    async def chunked():  # no Content-Length: the limit holds while the body is read
        for i in range(0, len(body), 64):
            yield body[i : i + 64]

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://svc") as http:
        declared = await http.post("/commands/open_sheet", content=body, headers=bearer(REP))
        streamed = await http.post("/commands/open_sheet", content=chunked(), headers=bearer(REP))
        small = await http.post("/commands/open_sheet", json={"sheet_id": "s2", "title": "M"}, headers=bearer(REP))
    for r in (declared, streamed):
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
    assert small.status_code == 200, small.text
    assert await event_count(rt) == 1


async def test_a_command_that_fails_unexpectedly_is_a_structured_500_and_changes_nothing(rt, http) -> None:
    r = await http.post("/commands/open_sheet", json={"sheet_id": "boom", "title": "explode"}, headers=bearer(REP))
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal_error", "message": "the command failed"}}
    assert await event_count(rt) == 0


async def test_the_documented_command_route_answers_as_the_gateway_does(rt) -> None:
    """The FastAPI route that documents a command (and serves it where the gateway does not,
    e.g. under a mount prefix) gives the same answers."""
    gateway = http_app(rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway.api), base_url="http://svc") as api:
        ok = await api.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers=bearer(REP))
        again = await api.post("/commands/open_sheet", json={"sheet_id": "s1", "title": "M"}, headers=bearer(REP))
        anonymous = await api.post("/commands/open_sheet", json={"sheet_id": "s2", "title": "M"})
        documented = (await api.get("/openapi.json")).json()
    assert (ok.status_code, ok.json()) == (200, {"sheet_id": "s1", "version": 1})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "sheet_exists")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "missing_token")
    assert "/commands/open_sheet" in documented["paths"]


async def test_nats_request_reply_runs_the_same_handler(rt, outside) -> None:
    subject = rt.topology.subject("cmd", "open_sheet")
    reply = await outside.request(
        subject, orjson.dumps({"sheet_id": "n1", "title": "T"}), headers=bearer(REP), timeout=5
    )
    assert orjson.loads(reply.data) == {"ok": True, "result": {"sheet_id": "n1", "version": 1}}
    reply = await outside.request(subject, b'{"sheet_id": "n1"}', headers=bearer(REP), timeout=5)
    body = orjson.loads(reply.data)
    assert body["ok"] is False and body["status"] == 422
    assert body["error"]["details"][0]["field"] == "title"
    reply = await outside.request(
        subject, orjson.dumps({"sheet_id": "n2", "title": "T"}), headers=bearer(CLERK), timeout=5
    )
    assert orjson.loads(reply.data)["status"] == 403


async def test_a_reply_carries_no_credentials_only_what_correlates_it(rt, outside) -> None:
    subject = rt.topology.subject("cmd", "open_sheet")
    headers = {**bearer(REP), "Idempotency-Key": "sheet-r1", "Correlation-Id": "crm-7", "X-Other": "x"}
    reply = await outside.request(subject, orjson.dumps({"sheet_id": "r1", "title": "T"}), headers=headers, timeout=5)
    assert orjson.loads(reply.data)["ok"] is True
    assert dict(reply.headers or {}) == {"Idempotency-Key": "sheet-r1", "Correlation-Id": "crm-7"}
    refused = await outside.request(subject, b"{}", headers=bearer(REP), timeout=5)
    assert orjson.loads(refused.data)["ok"] is False
    assert not refused.headers


async def test_ingest_publishes_results_and_dead_letters_rejections(rt, outside) -> None:
    results = await outside.subscribe(rt.topology.subject("result", ">"))
    await outside.flush()
    key = str(uuid.uuid4())
    ingest = rt.topology.subject("ingest", "open_sheet")
    js = outside.jetstream()
    await js.publish(
        ingest, orjson.dumps({"sheet_id": "i1", "title": "T"}), headers={**bearer(REP), "Idempotency-Key": key}
    )
    await js.publish(
        ingest, orjson.dumps({"sheet_id": "i1", "title": "T"}), headers={**bearer(REP), "Idempotency-Key": key}
    )
    # Published as an outside program does it, naming the stream it expects to store it.
    await js.publish(ingest, b'{"sheet_id": 5}', headers=bearer(REP), stream=rt.topology.ingest_stream)
    msg = await results.next_msg(timeout=10)
    assert orjson.loads(msg.data)["result"] == {"sheet_id": "i1", "version": 1}
    rejected = await next_stream_message(rt.js, rt.topology.dlq_stream)
    assert rejected.headers["Dlq-Reason"] == "rejected"
    assert "validation_failed" in rejected.headers["Dlq-Error"]
    assert rejected.data == b'{"sheet_id": 5}'
    assert "Authorization" not in rejected.headers  # the sender's token is not kept
    # What the AsyncAPI document says these messages carry is what they carry.
    assert msg.headers["Idempotency-Key"] == key
    assert set(msg.headers) <= set(RESULT_HEADERS["properties"])
    assert set(rejected.headers) <= set(REJECTION_HEADERS["properties"])
    CommandResult.model_validate(orjson.loads(msg.data))
    CommandRefusal.model_validate_json(rejected.headers["Dlq-Error"])
    async with rt.pool.acquire() as conn:
        assert len(await load_stream(conn, "sheet-i1")) == 1

    async def ingest_emptied() -> bool:
        return (await rt.js.stream_info(rt.topology.ingest_stream)).state.messages == 0

    await wait_for(ingest_emptied)  # processed commands leave the stream, tokens and all


@pytest.mark.fast
async def test_upcaster_turns_old_versions_into_current_on_read() -> None:
    old = Envelope.model_validate(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "sheet.opened",
            "schema_version": 1,
            "stream_id": "sheet-1",
            "stream_version": 1,
            "occurred_at": "2026-01-01T00:00:00Z",
            "recorded_at": "2026-01-01T00:00:00Z",
            "actor": {"id": "x", "role": "rep"},
            "data": {"title": "old"},
        }
    )
    event = registry.decode(old)
    assert event.owner == "clerk" and event.title == "old"


@pytest.mark.fast
def test_json_schema_export_lists_every_event_type() -> None:
    schemas = registry.json_schemas()
    assert set(schemas) == {"envelope", "sheet.opened", "sheet.counted"}
    assert schemas["sheet.opened"]["x-schema-version"] == 2
    assert "owner" in schemas["sheet.opened"]["required"]


async def test_group_commit_shares_transactions_and_isolates_failures(rt) -> None:
    """Concurrent commands are committed together, but each keeps its own outcome: a rejected
    or failing one does not undo the others."""
    requests = [Request("open_sheet", {"sheet_id": f"g{i}", "title": "T"}, REP) for i in range(30)]
    requests.append(Request("open_sheet", {"sheet_id": "g0", "title": "T"}, REP))  # duplicate: 409
    requests.append(Request("open_sheet", {"sheet_id": "gx", "title": "explode"}, REP))  # handler fault
    outcomes = await asyncio.gather(*(rt.group.submit(r) for r in requests))
    assert [o.ok for o in outcomes[:30]] == [True] * 30
    assert outcomes[30].status == 409 and outcomes[30].error.code == "sheet_exists"
    assert outcomes[31].status == 500
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events") == 30
        transactions = await conn.fetchval("SELECT count(DISTINCT tx_id) FROM events")
    assert transactions < 30


async def test_asyncapi_document_describes_events_commands_and_ingest(rt, http) -> None:
    r = await http.get("/asyncapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert rt.topology.event_subject("sheet.opened") in addresses
    assert rt.topology.subject("cmd", "open_sheet") in addresses
    assert rt.topology.subject("ingest", "count_visits") in addresses
    schemas = doc["components"]["schemas"]
    opened = next(v for k, v in schemas.items() if k.startswith("SheetOpenedEnvelope"))
    assert "data" in opened["properties"]


async def test_a_deadlock_victim_is_run_again_not_failed(rt) -> None:
    """Two commands save two sheets in opposite orders at the same moment: PostgreSQL aborts
    one as a deadlock victim; the bus runs it again and both take effect."""
    import tally

    await rt.run_command("open_sheet", {"sheet_id": "a", "title": "A"}, REP)
    await rt.run_command("open_sheet", {"sheet_id": "b", "title": "B"}, REP)
    barrier = asyncio.Barrier(2)

    async def line_up() -> None:  # both hold their first sheet before saving the second
        with contextlib.suppress(asyncio.BrokenBarrierError, TimeoutError):
            await asyncio.wait_for(barrier.wait(), 2)

    tally.between_saves.append(line_up)
    try:
        outcomes = await asyncio.gather(
            rt.run_command("count_on_both", {"first": "a", "second": "b"}, REP),
            rt.run_command("count_on_both", {"first": "b", "second": "a"}, REP),
        )
    finally:
        tally.between_saves.clear()
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    async with reading(rt.pool, "sheet_totals") as conn:
        totals = dict(await conn.fetch("SELECT sheet_id, total FROM totals"))
    assert totals == {"a": 2, "b": 2}


async def test_a_key_repeated_within_one_batch_replays_the_first_result(rt) -> None:
    requests = [Request("open_sheet", {"sheet_id": "b1", "title": "T"}, REP, idempotency_key="dup") for _ in range(3)]
    outcomes = await rt.bus.dispatch_many(requests)
    assert [o.ok for o in outcomes] == [True, True, True]
    assert [o.replayed for o in outcomes] == [False, True, True]
    assert outcomes[1].result == outcomes[0].result
    async with rt.pool.acquire() as conn:
        assert len(await load_stream(conn, "sheet-b1")) == 1
