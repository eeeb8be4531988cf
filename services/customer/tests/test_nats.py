"""The same commands over NATS from an outside system: request/reply and asynchronous ingest,
and the events on the CUSTOMER stream other services read."""

from __future__ import annotations

import asyncio
import uuid

import nats
import orjson
import pytest_asyncio

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, nats_login_for_tests, stream_messages


@pytest_asyncio.fixture
async def client(rt):
    nc = await nats.connect(rt.settings.nats_url, **nats_login_for_tests("system"))
    yield nc
    await nc.close()


def headers(rt, actor, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, TEST_SIGNING_KEY)}", **extra}


async def request(rt, nc, actor, name: str, payload: dict) -> dict:
    reply = await nc.request(
        rt.topology.subject("cmd", name), orjson.dumps(payload), timeout=5, headers=headers(rt, actor)
    )
    return orjson.loads(reply.data)


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_register_and_approve_by_request_reply(rt, client, org, outlet) -> None:
    registered = await request(rt, client, org.r1, "register_customer", outlet())
    assert registered["ok"] is True and registered["result"]["status"] == "pending"
    cid = registered["result"]["customer_id"]

    refused = await request(rt, client, org.s2, "approve_customer", {"customer_id": cid})
    assert refused == {"ok": False, "status": 403, "error": refused["error"]}
    assert refused["error"]["code"] == "outside_line"
    bad = await request(rt, client, org.r1, "register_customer", outlet(phone="999"))
    assert bad["status"] == 422 and bad["error"]["details"][0]["code"] == "invalid_phone"

    approved = await request(rt, client, org.s1, "approve_customer", {"customer_id": cid, "status": "active"})
    assert approved["result"]["customer_code"] == "D1-000001"
    again = await request(rt, client, org.s1, "approve_customer", {"customer_id": cid})
    assert again["status"] == 409 and again["error"]["code"] == "already_approved"


async def test_ingest_runs_commands_from_other_systems(rt, client, org) -> None:
    results: list[dict] = []

    async def collect(msg) -> None:
        results.append(orjson.loads(msg.data))

    await client.subscribe(rt.topology.subject("result", "define_district"), cb=collect)
    js = client.jetstream()
    msg_id = str(uuid.uuid4())
    for _ in range(2):  # a redelivered message defines the district once
        await js.publish(
            rt.topology.subject("ingest", "define_district"),
            orjson.dumps({"district_id": "D7", "name": "临港小区", "area_id": "A1"}),
            headers=headers(rt, org.system, **{"Nats-Msg-Id": msg_id, "Idempotency-Key": msg_id}),
        )

    async def defined() -> bool:
        async with rt.pool.acquire() as conn:
            return await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = 'territory-D7'") == 1

    await wait_for(defined)
    await wait_for(lambda: asyncio.sleep(0, result=bool(results)))
    assert results[0]["ok"] is True and results[0]["result"]["district_id"] == "D7"


async def test_events_reach_the_customer_stream_with_personal_data_sealed(rt, archive, org) -> None:
    cid = await archive.approved(org.r1)
    await rt.relay_flush()
    customer_events = rt.topology.subject("event", "customer.")
    msgs = [m for m in await stream_messages(rt.js, rt.topology.event_stream) if m.subject.startswith(customer_events)]
    bodies = [orjson.loads(m.data) for m in msgs]
    assert [b["event_type"] for b in bodies] == ["customer.registered", "customer.approved"]
    assert msgs[0].subject == rt.topology.event_subject("customer.registered")
    data = bodies[0]["data"]
    assert data["customer_id"] == cid and data["name"] == "建国便利店" and data["district_id"] == "D1"
    assert data["area_id"] == "A1" and data["division_id"] == "N" and data["rep_id"] == "r1"
    assert data["source"] == "rep_visit" and data["status"] == "pending"
    assert data["personal"].startswith("v1.") and data["personal_fields"] == ["base.owner", "contacts"]
    raw = msgs[0].data.decode()
    assert "王建国" not in raw and "钓鱼" not in raw and "李小红" not in raw
    assert bodies[1]["data"] == {
        "customer_id": cid,
        "customer_code": "D1-000001",
        "status": "active",
        "approved_by": "sm",
    }
