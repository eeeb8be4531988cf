"""Dead letters keep what an operator needs and leave out what a command declares personal;
only operators read them."""

from __future__ import annotations

import httpx
import orjson
import pytest_asyncio
from tally import SIGNING_KEY, definition
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.dead_letters import DeadLetterDesk, Selection
from salesplatform.devstack.pytest_plugin import next_stream_message
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime, http_app

REP = Actor(id="r1", role=Role.rep, district="d1")
OPERATOR = Actor(id="ops1", role=Role.operator)
MANAGER = Actor(id="m1", role=Role.sales_manager)


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


async def _ingest(outside, rt: Runtime, name: str, payload: bytes) -> None:
    await outside.jetstream().publish(
        rt.topology.subject("ingest", name), payload, headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"}
    )


async def test_a_rejected_command_keeps_its_payload_without_the_fields_declared_personal(rt, outside) -> None:
    await _ingest(outside, rt, "note_sheet", orjson.dumps({"sheet_id": "none", "note": "王先生腿脚不便"}))
    dead = await next_stream_message(rt.js, rt.topology.dlq_stream)
    assert orjson.loads(dead.data) == {"sheet_id": "none", "note": "[withheld]"}
    assert dead.headers["Dlq-Withheld"] == "note"
    assert "王先生" not in dead.data.decode() and "王先生" not in str(dead.headers)
    assert orjson.loads(dead.headers["Dlq-Error"])["error"]["code"] == "sheet_not_found"


async def test_a_payload_nothing_can_read_is_left_out_whole(rt, outside) -> None:
    await _ingest(outside, rt, "note_sheet", "王先生 not json".encode())
    await _ingest(outside, rt, "no_such_command", orjson.dumps({"note": "王先生"}))
    first = await next_stream_message(rt.js, rt.topology.dlq_stream)
    second = await next_stream_message(rt.js, rt.topology.dlq_stream, after=first.seq)
    for dead in (first, second):
        assert not dead.data and dead.headers["Dlq-Withheld"] == "payload"


async def test_only_operators_read_the_dead_letters(rt, outside) -> None:
    await _ingest(outside, rt, "open_sheet", b'{"sheet_id": 5}')
    await _ingest(outside, rt, "note_sheet", orjson.dumps({"sheet_id": "none", "note": "x"}))
    last = await next_stream_message(rt.js, rt.topology.dlq_stream)
    last = await next_stream_message(rt.js, rt.topology.dlq_stream, after=last.seq)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://svc") as http:
        for actor in (REP, MANAGER):
            r = await http.get("/admin/dead-letters", headers={"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"})
            assert (r.status_code, r.json()["error"]["code"]) == (403, "operator_only")
        headers = {"Authorization": f"Bearer {mint(OPERATOR, SIGNING_KEY)}"}
        listed = (await http.get("/admin/dead-letters", headers=headers)).json()["dead_letters"]
        one = (await http.get("/admin/dead-letters", params={"limit": 1}, headers=headers)).json()["dead_letters"]
    assert [d["payload"] for d in listed] == [{"sheet_id": "none", "note": "[withheld]"}, {"sheet_id": 5}]
    assert [d["reason"] for d in listed] == ["rejected", "rejected"]
    assert "validation_failed" in listed[1]["error"] and listed[0]["seq"] == last.seq
    assert "Authorization" not in listed[0]["headers"]
    assert one == listed[:1]


async def test_a_listing_pages_past_the_newest_window_through_every_dead_letter(rt, outside) -> None:
    """A listing reads the newest sequences one by one; the dead letters older than that window
    are paged through too, however many replays and purges left gaps among them."""
    for n in range(8):
        await _ingest(outside, rt, "note_sheet", orjson.dumps({"sheet_id": f"none-{n}", "note": "x"}))
    await wait_for(lambda: _held(rt, 8))
    desk = DeadLetterDesk(rt, newest_window=3)
    everything = [d.seq for d in await desk.find(Selection(limit=500))]
    assert everything == list(range(8, 0, -1))
    for seq in (6, 7, 8, 2):  # the newest window now holds nothing; a gap among the older ones
        await desk.purge(seq)
    assert [d.seq for d in await desk.find(Selection(limit=500))] == [5, 4, 3, 1]
    assert [d.seq for d in await desk.find(Selection(limit=2))] == [5, 4]
    assert [d.seq for d in await desk.find(Selection(reason="malformed"))] == []


async def _held(rt: Runtime, n: int) -> bool:
    return bool((await rt.js.stream_info(rt.topology.dlq_stream)).state.messages == n)
