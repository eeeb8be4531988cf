"""Dead letters sent again by an operator: an event a projection could not apply is applied
once the projection is fixed, once however often it is replayed; what cannot be sent again is
refused and left as it was."""

from __future__ import annotations

import httpx
import orjson
import pytest_asyncio
from tally import SIGNING_KEY, TEST_ACTOR, definition, new_event
from waiting import wait_for

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import next_stream_message
from salesplatform.events import Actor, Role
from salesplatform.projections import reading
from salesplatform.service import Runtime, http_app
from salesplatform.store import append

OPERATOR = {"Authorization": f"Bearer {mint(Actor(id='ops1', role=Role.operator), SIGNING_KEY)}"}


@pytest_asyncio.fixture
async def rt(service_settings):
    async with Runtime(definition(), service_settings) as runtime:
        yield runtime


@pytest_asyncio.fixture
async def http(rt):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://svc") as client:
        yield client


async def _counted(rt: Runtime) -> int:
    async with reading(rt.pool, "event_counts") as conn:
        return await conn.fetchval("SELECT coalesce(sum(n), 0) FROM counts")


async def test_an_event_a_projection_could_not_apply_is_applied_once_after_the_fix(rt, http) -> None:
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            await append(conn, "sheet-p", 0, [new_event(1, poison=True), new_event(2)])
    rt.runner.wake()
    dead = await next_stream_message(rt.js, rt.topology.dlq_stream)
    await wait_for(lambda: _is(rt, 1))

    # Not fixed yet: the replay fails and the failure is kept, with one more delivery.
    failed = (await http.post(f"/admin/dead-letters/{dead.seq}/replay", headers=OPERATOR)).json()
    assert failed["status"] == "failed" and "poison event" in failed["error"]
    again = (await http.get(f"/admin/dead-letters/{failed['dead_letter']}", headers=OPERATOR)).json()
    assert (again["projection"], again["replay"], again["deliveries"]) == ("event_counts", "projection", 2)

    rt.projection("event_counts").refuses_poison = False  # the fix, deployed
    applied = (await http.post(f"/admin/dead-letters/{again['seq']}/replay?keep=true", headers=OPERATOR)).json()
    twice = (await http.post(f"/admin/dead-letters/{again['seq']}/replay", headers=OPERATOR)).json()
    assert (applied["status"], twice["status"]) == ("applied", "already_applied")
    assert await _counted(rt) == 2
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_failures") == 0
    # Replayed without `keep`: removed.
    assert (await http.get(f"/admin/dead-letters/{again['seq']}", headers=OPERATOR)).status_code == 404


async def _is(rt: Runtime, n: int) -> bool:
    return await _counted(rt) == n


async def test_a_command_whose_personal_fields_were_left_out_is_not_replayed(rt, http, outside) -> None:
    await outside.jetstream().publish(
        rt.topology.subject("ingest", "note_sheet"),
        orjson.dumps({"sheet_id": "none", "note": "王先生腿脚不便"}),
        headers={"Authorization": f"Bearer {mint(TEST_ACTOR, SIGNING_KEY)}"},
    )
    dead = await next_stream_message(rt.js, rt.topology.dlq_stream)
    r = await http.post(f"/admin/dead-letters/{dead.seq}/replay", headers=OPERATOR)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "payload_withheld")
    assert (await http.get(f"/admin/dead-letters/{dead.seq}", headers=OPERATOR)).json()["deliveries"] == 1
    batch = (await http.post("/admin/dead-letters/replay", json={"reason": "rejected"}, headers=OPERATOR)).json()
    assert [(x["seq"], x["status"], x["error"]["code"]) for x in batch["replayed"]] == [
        (dead.seq, "refused", "payload_withheld")
    ]
    purged = (await http.post("/admin/dead-letters/purge", json={"command": "note_sheet"}, headers=OPERATOR)).json()
    assert purged == {"purged": [dead.seq]}


class _DownPool:
    """A pool whose database cannot be reached."""

    def acquire(self):
        raise ConnectionRefusedError("the database is down")


async def test_a_replay_while_the_database_is_down_answers_503_and_keeps_the_dead_letter(rt, http, outside) -> None:
    await outside.jetstream().publish(
        rt.topology.subject("ingest", "count_visits"),
        orjson.dumps({"sheet_id": "missing", "count": 2}),
        headers={"Authorization": f"Bearer {mint(TEST_ACTOR, SIGNING_KEY)}"},
    )
    dead = await next_stream_message(rt.js, rt.topology.dlq_stream)
    pool, rt.bus.pool = rt.bus.pool, _DownPool()
    try:
        r = await http.post(f"/admin/dead-letters/{dead.seq}/replay", headers=OPERATOR)
    finally:
        rt.bus.pool = pool
    assert (r.status_code, r.json()["error"]["code"]) == (503, "unavailable")
    kept = (await http.get(f"/admin/dead-letters/{dead.seq}", headers=OPERATOR)).json()
    assert (kept["seq"], kept["deliveries"]) == (dead.seq, 1)
    assert (await rt.js.stream_info(rt.topology.dlq_stream)).state.messages == 1
