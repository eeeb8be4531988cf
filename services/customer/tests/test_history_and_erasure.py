"""The dynamic archive (every change with who/when/why) and erasure of an individual's
personal data by crypto-shredding, surviving a rebuild of the read side."""

from __future__ import annotations

from datetime import timedelta

import orjson

from salesplatform.commands import Request
from salesplatform.devstack.pytest_plugin import stream_messages

INDIVIDUAL = {
    "name": "刘芳",
    "address": "上海市徐汇区漕溪北路8弄3号",
    "phone": "13700001111",
    "nature": "individual",
    "ownership": None,
    "channel": "retail",
    "location_type": "residential",
    "base": {"owner": {"name": "刘芳", "phone": "13700001111", "hobbies": "烘焙", "age": 35}},
    "contacts": [{"name": "刘芳丈夫", "phone": "13700002222"}],
}
PLAINTEXT = ("刘芳", "漕溪北路", "13700001111", "烘焙", "13700002222")


async def test_history_tells_what_when_who_and_why(api, archive, org, clock) -> None:
    cid = await archive.register(org.r1)
    clock.advance(timedelta(hours=2))
    await api.ok(org.s1, "approve_customer", {"customer_id": cid, "status": "prospect"})
    clock.advance(timedelta(days=1))
    await api.ok(
        org.r1,
        "update_profile",
        {
            "customer_id": cid,
            "changes": {"trading_status.current_problems": "冷柜位置差", "base.owner.hobbies": "下棋"},
            "reason": "第二次拜访",
        },
    )
    clock.advance(timedelta(days=1))
    await api.ok(
        org.sm,
        "set_credit_limit",
        {
            "customer_id": cid,
            "credit_rating": "A",
            "credit_limit_fen": 1_000_000,
            "payment_terms_days": 15,
            "reason": "按时付款",
        },
    )
    await api.ok(org.s1, "change_status", {"customer_id": cid, "status": "active", "reason": "首单已下"})

    events = (await api.get(org.s1, f"/customers/{cid}/history")).json()["events"]
    assert [e["event_type"] for e in events] == [
        "customer.registered",
        "customer.approved",
        "customer.profile_updated",
        "customer.credit_limit_set",
        "customer.status_changed",
    ]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]
    assert [e["by"]["id"] for e in events] == ["r1", "s1", "r1", "sm", "s1"]
    assert events[0]["at"].startswith("2026-03-02T01:30") and events[1]["at"].startswith("2026-03-02T03:30")
    assert events[2]["at"].startswith("2026-03-03T03:30")
    assert [e["reason"] for e in events[2:]] == ["第二次拜访", "按时付款", "首单已下"]
    assert events[2]["data"]["changes"] == {"trading_status.current_problems": "冷柜位置差"}
    assert events[2]["data"]["personal_fields"] == ["base.owner.hobbies"]
    assert events[2]["personal"] == {}  # a supervisor does not see the restricted note
    assert events[1]["data"]["customer_code"] == "D1-000001"

    as_manager = (await api.get(org.sm, f"/customers/{cid}/history")).json()["events"]
    assert as_manager[2]["personal"] == {"base.owner.hobbies": "下棋"}
    assert as_manager[0]["personal"]["base.owner"]["hobbies"] == "钓鱼"  # stale data is kept in the history


async def test_erasure_removes_personal_data_for_good_and_keeps_the_figures(rt, api, archive, org, outlet) -> None:
    person = (await api.ok(org.r1, "register_customer", outlet(**INDIVIDUAL)))["customer_id"]
    company = await archive.approved(org.r1)
    await api.ok(org.s1, "approve_customer", {"customer_id": person, "status": "active"})
    await api.ok(
        org.sm,
        "set_credit_limit",
        {"customer_id": person, "credit_rating": "B", "credit_limit_fen": 200_000, "payment_terms_days": 7},
    )
    await api.ok(org.system, "recompute_grade", {"customer_id": person, "figures": {"annual_sales_fen": 6_000_000}})
    await api.ok(org.r1, "log_contact", {"customer_id": person, "channel": "phone", "note": "刘芳说周末在家"})

    # Before: the card shows the person; other services only ever see a label.
    card = (await api.get(org.clerk, f"/customers/{person}")).json()
    assert (card["name"], card["address"], card["phone"]) == ("刘芳", INDIVIDUAL["address"], "13700001111")
    assert card["base"]["owner"]["hobbies"] == "烘焙" and card["personal_data"] == "present"
    listed = (await api.get(org.clerk, "/customers", q="individual")).json()["items"]
    assert [i["customer_id"] for i in listed] == [person] and listed[0]["address"] == "[personal data]"

    async def raw_log() -> str:
        async with rt.pool.acquire() as conn:
            rows = await conn.fetch("SELECT data::text FROM events")
            return "\n".join(r[0] for r in rows)

    log_text = await raw_log()
    assert all(text not in log_text for text in PLAINTEXT)  # sealed from the start

    r = await api.ok(org.clerk, "erase_personal_data", {"customer_id": person, "reason": "本人申请删除"})
    assert r == {"customer_id": person, "keys_destroyed": 1}
    r = await api.command(org.clerk, "erase_personal_data", {"customer_id": person})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_erased"

    async def check_erased() -> None:
        card = (await api.get(org.sm, f"/customers/{person}")).json()
        assert card["personal_data"] == "erased"
        assert card["name"] == f"individual customer {person[:8]}"
        assert card["address"] == card["phone"] == "[erased]"
        assert card["base"]["owner"] is None and card["contacts"] == []
        # figures and ids stay
        assert card["customer_code"] == "D1-000002" and card["classification"]["grade"] == "B"
        assert card["credit"]["credit_limit_fen"] == 200_000 and card["rep_id"] == "r1"
        history = (await api.get(org.sm, f"/customers/{person}/history")).json()["events"]
        assert history[0]["personal"] == "erased"
        assert next(e for e in history if e["event_type"] == "customer.contact_logged")["personal"] == "erased"
        assert history[-1]["event_type"] == "customer.personal_data_erased" and history[-1]["by"]["id"] == "k1"
        other = (await api.get(org.sm, f"/customers/{company}")).json()
        assert other["base"]["owner"]["hobbies"] == "钓鱼" and other["personal_data"] == "present"

    await check_erased()
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM customer_keys WHERE customer_id = $1", person) == 0
        schema = await conn.fetchval("SELECT active_schema FROM projections WHERE name = 'customer_directory'")
        assert await conn.fetchval(f"SELECT personal FROM {schema}.customers WHERE customer_id = $1", person) == []

    generation = await rt.rebuild("customer_directory")
    assert generation == 2
    await check_erased()
    async with rt.pool.acquire() as conn:
        rebuilt = await conn.fetchrow("SELECT * FROM p_customer_directory_2.customers WHERE customer_id = $1", person)
    assert all(text not in str(dict(rebuilt)) for text in PLAINTEXT)
    log_text = await raw_log()
    assert all(text not in log_text for text in PLAINTEXT)

    # What JetStream keeps is the sealed form too.
    await rt.relay_flush()
    customer_events = rt.topology.subject("event", "customer.")
    published = [
        orjson.loads(m.data)
        for m in await stream_messages(rt.js, rt.topology.event_stream)
        if m.subject.startswith(customer_events)
    ]
    assert any(m["data"]["customer_id"] == person for m in published)
    assert all(text not in str(published) for text in PLAINTEXT)

    # New personal data after the erasure gets a new key and shows again.
    await api.ok(
        org.clerk,
        "update_profile",
        {"customer_id": person, "changes": {"phone": "13900009999"}, "reason": "客户重新留了电话"},
    )
    card = (await api.get(org.sm, f"/customers/{person}")).json()
    assert card["phone"] == "13900009999" and card["personal_data"] == "present"


async def test_an_individuals_nature_is_fixed(api, org, outlet) -> None:
    person = (await api.ok(org.r1, "register_customer", outlet(**INDIVIDUAL)))["customer_id"]
    r = await api.command(org.s1, "classify_customer", {"customer_id": person, "nature": "company", "reason": "x"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "individual_nature_fixed"


async def test_contacts_logged_in_one_batch_with_an_erasure_seal_with_the_key_of_their_moment(
    rt,
    archive,
    org,
) -> None:
    """A batch reads its customers' keys ahead; an erasure in the batch is seen by the contact
    logged after it, which seals with a new key, not the destroyed one."""
    person = await archive.approved(org.r1)
    async with rt.pool.acquire() as conn:
        before = await conn.fetchval("SELECT key_id::text FROM customer_keys WHERE customer_id = $1", person)
    contact = {"customer_id": person, "channel": "phone"}
    outcomes = await rt.bus.dispatch_many(
        [
            Request("log_contact", {**contact, "note": "上午来电"}, org.r1),
            Request("erase_personal_data", {"customer_id": person, "reason": "本人申请删除"}, org.clerk),
            Request("log_contact", {**contact, "note": "下午又来电"}, org.r1),
        ]
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    async with rt.pool.acquire() as conn:
        keys = [r[0] for r in await conn.fetch("SELECT key_id::text FROM customer_keys WHERE customer_id = $1", person)]
        contacts = [
            r[0]
            for r in await conn.fetch(
                "SELECT data::text FROM events WHERE stream_id = $1 AND event_type = 'customer.contact_logged'"
                " ORDER BY stream_version",
                f"customer-{person}",
            )
        ]
    assert len(keys) == 1 and keys[0] != before
    assert before in contacts[0] and keys[0] in contacts[1]
