"""What the edge does with input it cannot take: text PostgreSQL cannot store (a NUL, a lone
surrogate) is refused with 422 naming the field over HTTP, NATS request/reply and ingest, and
nothing changes; what the service seals takes any text and gives it back; pages have bounds;
every refusal, Starlette's own included, has the one error body."""

from __future__ import annotations

import asyncio
import uuid

import nats
import orjson
import pytest_asyncio

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, nats_login_for_tests

NUL = "建国\x00便利店"


@pytest_asyncio.fixture
async def system(rt):
    nc = await nats.connect(rt.settings.nats_url, **nats_login_for_tests("system"))
    yield nc
    await nc.close()


def bearer(actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, TEST_SIGNING_KEY)}"}


async def customer_count(rt) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events WHERE stream_id LIKE 'customer-%'")


def unstorable(body: dict, field: str) -> None:
    error = body["error"]
    assert error["code"] == "validation_failed", body
    assert [(d["field"], d["code"]) for d in error["details"]] == [(field, "unstorable_text")], body


async def test_a_nul_in_plain_text_is_422_naming_the_field_over_http(api, rt, org, outlet) -> None:
    refused = await api.command(org.r1, "register_customer", outlet(name=NUL))
    assert refused.status_code == 422
    unstorable(refused.json(), "name")

    cid = (await api.ok(org.r1, "register_customer", outlet()))["customer_id"]
    before = await customer_count(rt)
    changed = await api.command(
        org.r1,
        "update_profile",
        {"customer_id": cid, "changes": {"trading_status.current_problems": "冷柜\x00坏了"}, "reason": "拜访"},
    )
    assert changed.status_code == 422
    unstorable(changed.json(), "changes.trading_status.current_problems")
    assert await customer_count(rt) == before


async def test_a_lone_surrogate_is_422_too(api, org, outlet) -> None:
    body = orjson.dumps(outlet()).replace("建国便利店".encode(), b"\\ud800shop")
    refused = await api.client.post(
        "/commands/register_customer", content=body, headers={**bearer(org.r1), "Content-Type": "application/json"}
    )
    # The JSON parser refuses it before any field is read: 422 all the same, never a 500.
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "validation_failed"


async def test_a_nul_over_nats_is_422_not_unavailable(rt, system, org, outlet) -> None:
    reply = await system.request(
        rt.topology.subject("cmd", "register_customer"),
        orjson.dumps(outlet(name=NUL)),
        headers=bearer(org.r1),
        timeout=10,
    )
    answer = orjson.loads(reply.data)
    assert answer["ok"] is False and answer["status"] == 422
    unstorable(answer, "name")


async def test_a_nul_over_ingest_is_rejected_as_422(rt, system, org, outlet) -> None:
    js = system.jetstream()
    rejected = await system.subscribe(rt.topology.subject("dlq", "rejected"))
    await js.publish(
        rt.topology.subject("ingest", "register_customer"),
        orjson.dumps(outlet(name=NUL)),
        headers={**bearer(org.r1), "Nats-Msg-Id": str(uuid.uuid4())},
    )
    msg = await rejected.next_msg(timeout=30)
    answer = orjson.loads(msg.headers["Dlq-Error"])
    assert answer["status"] == 422
    unstorable(answer, "name")
    await asyncio.sleep(0)
    assert await customer_count(rt) == 0


async def test_sealed_personal_data_takes_a_nul_and_gives_it_back(api, org, outlet) -> None:
    person = "刘\x00芳"
    cid = (
        await api.ok(
            org.r1,
            "register_customer",
            outlet(
                name=person,
                nature="individual",
                ownership=None,
                contacts=[{"name": "店\x00长", "phone": "13998765432"}],
            ),
        )
    )["customer_id"]
    card = (await api.get(org.r1, f"/customers/{cid}")).json()
    assert card["name"] == person
    assert card["contacts"][0]["name"] == "店\x00长"


async def test_query_parameters_are_storable_and_bounded(api, org) -> None:
    nul_query = await api.client.get("/customers", params={"q": "a\x00b"}, headers=bearer(org.sm))
    assert nul_query.status_code == 422
    unstorable(nul_query.json(), "q")
    nul_path = await api.client.get("/customers/a%00b", headers=bearer(org.sm))
    assert nul_path.status_code == 422
    unstorable(nul_path.json(), "customer_id")
    for offset in ("9223372036854775808", "1000001", "-1"):
        page = await api.get(org.sm, "/customers", offset=offset)
        assert page.status_code == 422, offset
        assert page.json()["error"]["details"][0]["field"] == "query.offset"
    assert (await api.get(org.sm, "/customers", offset=1_000_000)).status_code == 200


async def test_every_refusal_has_the_one_error_body(api, org) -> None:
    unknown = await api.client.get("/no/such/path", headers=bearer(org.sm))
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    wrong_method = await api.client.delete("/customers", headers=bearer(org.sm))
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    unknown_command = await api.client.post("/commands/no_such_command", json={}, headers=bearer(org.sm))
    assert unknown_command.status_code == 404
    assert unknown_command.json()["error"]["code"] == "not_found"
    bad_enum = await api.get(org.sm, "/customers", grade="Z")
    assert bad_enum.status_code == 422
    assert bad_enum.json()["error"]["details"][0]["field"] == "query.grade"
    anonymous = await api.client.get("/customers")
    assert anonymous.status_code == 401 and set(anonymous.json()["error"]) >= {"code", "message"}
