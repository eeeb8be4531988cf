"""Dead letters respect erasure: a rejected command's personal data is sealed with the key of
the customer it names (or left out where there is no key), so once the customer is erased no
stream of the service holds it in plaintext: not the dead letters, the ingest queue, the
results or the events."""

from __future__ import annotations

import httpx
import orjson

from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import (
    TEST_SIGNING_KEY,
    connected_as,
    next_stream_message,
    stream_messages,
)
from salesplatform.events import Actor, Role
from salesplatform.service import http_app

OPERATOR = Actor(id="ops1", role=Role.operator)
INDIVIDUAL = {
    "name": "刘芳",
    "address": "上海市徐汇区漕溪北路8弄3号",
    "phone": "13700001111",
    "nature": "individual",
    "ownership": None,
    "base": {"owner": {"name": "刘芳", "phone": "13700001111", "hobbies": "烘焙", "age": 35}},
    "contacts": [{"name": "刘芳丈夫", "phone": "13700002222"}],
}
PLAINTEXT = ("刘芳", "漕溪北路", "13700001111", "烘焙", "13700002222")
# What the rejected commands carried, besides the card's own personal data.
REJECTED_PLAINTEXT = ("13799998888", "周三下午在家", "刘芳的女儿", "赵六", "13600000000", "赵六家门口")


async def _every_stream(rt) -> str:
    """Every message of every stream in the service's account, bodies and headers."""
    out = []
    async for info in _streams(rt):
        for msg in await stream_messages(rt.js, info):
            out.append((msg.data or b"").decode(errors="replace") + str(msg.headers or {}))
    return "\n".join(out)


async def _streams(rt):
    for info in await rt.js.streams_info():
        yield info.config.name


async def test_a_rejected_command_of_an_erased_customer_leaves_no_plaintext_in_any_stream(
    rt, api, archive, org, outlet
) -> None:
    person = (await api.ok(org.r1, "register_customer", outlet(**INDIVIDUAL)))["customer_id"]
    await api.ok(org.s1, "approve_customer", {"customer_id": person, "status": "active"})
    outsider = Actor(id="r4", role=Role.rep, district="D3", area="A2")  # another area's rep: refused
    rejected = [
        (
            outsider,
            "update_profile",
            {
                "customer_id": person,
                "changes": {"phone": "13799998888", "contacts": [{"name": "刘芳的女儿", "phone": "13700003333"}]},
                "reason": "电话换了",
            },
        ),
        (outsider, "log_contact", {"customer_id": person, "channel": "phone", "note": "周三下午在家"}),
        # A new customer for a rep who does not exist: no customer, so no key to seal with.
        (
            org.clerk,
            "register_customer",
            outlet(
                name="赵六",
                phone="13600000000",
                address="赵六家门口",
                nature="individual",
                ownership=None,
                rep_id="nobody",
            ),
        ),
    ]
    async with connected_as(rt.settings.nats_url, "system") as outside:
        for actor, name, payload in rejected:
            await outside.jetstream().publish(
                rt.topology.subject("ingest", name),
                orjson.dumps(payload),
                headers={"Authorization": f"Bearer {mint(actor, TEST_SIGNING_KEY)}"},
            )
    seen: list = []
    for _ in rejected:
        seen.append(await next_stream_message(rt.js, rt.topology.dlq_stream, after=seen[-1].seq if seen else 0))
    assert [m.headers["Dlq-Reason"] for m in seen] == ["rejected"] * 3
    assert [m.headers.get("Dlq-Sealed") for m in seen] == [f"customer-{person}"] * 2 + [None]
    assert orjson.loads(seen[2].data)["name"] == "[withheld]" and "contacts" in seen[2].headers["Dlq-Withheld"]
    await rt.relay_flush()
    before = await _every_stream(rt)
    assert all(text not in before for text in (*PLAINTEXT, *REJECTED_PLAINTEXT)), "plaintext before the erasure"

    # While the customer's key exists, an operator can read what was refused.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://c") as http:
        operator = {"Authorization": f"Bearer {mint(OPERATOR, TEST_SIGNING_KEY)}"}
        shown = (await http.get("/admin/dead-letters", headers=operator)).json()["dead_letters"]
        assert shown[1]["payload"]["note"] == "周三下午在家"
        assert shown[2]["payload"]["changes"]["phone"] == "13799998888"

        await api.ok(org.clerk, "erase_personal_data", {"customer_id": person, "reason": "本人申请删除"})
        await rt.relay_flush()
        shown = (await http.get("/admin/dead-letters", headers=operator)).json()["dead_letters"]
    assert [d["payload"].get("sealed") for d in shown[1:]] == ["[erased]", "[erased]"]
    after = await _every_stream(rt)
    assert all(text not in after for text in (*PLAINTEXT, *REJECTED_PLAINTEXT))
    assert (await rt.js.stream_info(rt.topology.ingest_stream)).state.messages == 0
    assert person in after  # the streams were read: ids and figures stay


async def test_a_sealed_command_is_replayed_opened_while_its_customer_keeps_its_keys(rt, archive, org) -> None:
    """A supervisor hands a customer to a rep the archive does not know yet: refused, and the
    dead letter sealed with the customer's key. Once the rep is assigned an operator replays it
    (opened with that key); after an erasure nothing can be replayed."""
    kept = await archive.approved(org.r1)
    erased = await archive.approved(org.r1, name="刘芳", phone="13700001111", nature="individual", ownership=None)
    async with connected_as(rt.settings.nats_url, "system") as outside:
        for customer_id in (kept, erased):
            await outside.jetstream().publish(
                rt.topology.subject("ingest", "assign_customer"),
                orjson.dumps({"customer_id": customer_id, "rep_id": "r9", "reason": "接手片区"}),
                headers={"Authorization": f"Bearer {mint(org.s1, TEST_SIGNING_KEY)}"},
            )
    first = await next_stream_message(rt.js, rt.topology.dlq_stream)
    second = await next_stream_message(rt.js, rt.topology.dlq_stream, after=first.seq)
    assert first.headers["Dlq-Sealed"] == f"customer-{kept}" and "接手片区" not in first.data.decode()

    await archive.run(
        org.sm,
        "assign_staff",
        {"staff_id": "r9", "name": "新人", "role": "rep", "district_id": "D1", "supervisor_id": "s1"},
    )
    await archive.run(org.clerk, "erase_personal_data", {"customer_id": erased, "reason": "本人申请删除"})
    operator = {"Authorization": f"Bearer {mint(OPERATOR, TEST_SIGNING_KEY)}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://c") as http:
        applied = (await http.post(f"/admin/dead-letters/{first.seq}/replay", headers=operator)).json()
        refused = await http.post(f"/admin/dead-letters/{second.seq}/replay", headers=operator)
    assert applied["status"] == "applied" and applied["result"]["rep_id"] == "r9"
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "payload_erased")
    async with rt.pool.acquire() as conn:
        actor = await conn.fetchval(
            "SELECT actor FROM events WHERE stream_id = $1 ORDER BY stream_version DESC LIMIT 1", f"customer-{kept}"
        )
    assert (actor["id"], actor["replayed_by"]) == ("s1", "ops1")
