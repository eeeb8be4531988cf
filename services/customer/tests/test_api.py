"""Commands and queries over HTTP with a real runtime: the archive's main paths and the error
codes of bad input (nothing changes on a refusal)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from customer_service.domain.events import CustomerRegistered
from salesplatform.events import Actor, Envelope, Role
from salesplatform.published import PUBLISHED_BY
from salesplatform.store import copy_foreign


async def event_count(rt) -> int:
    async with rt.pool.acquire() as conn:
        return await conn.fetchval("SELECT count(*) FROM events")


async def test_rep_registers_and_supervisor_approves_with_a_district_code(api, org, outlet) -> None:
    r = await api.command(org.r1, "register_customer", outlet())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "pending" and body["verified"] is True
    cid = body["customer_id"]

    card = (await api.get(org.r1, f"/customers/{cid}")).json()
    assert card["status"] == "pending" and card["customer_code"] is None
    assert card["rep_id"] == "r1" and card["territory"] == {"district_id": "D1", "area_id": "A1", "division_id": "N"}
    assert card["name"] == "建国便利店" and card["phone"] == "021-58881234"
    assert card["base"]["owner"]["name"] == "王建国" and card["base"]["industry"] == "便利店"
    assert "hobbies" not in card["base"]["owner"] and card["restricted_fields"] == "hidden"
    assert card["contacts"] == [{"name": "李小红", "phone": "13998765432", "role": "店长", "note": "下午在店"}]
    assert card["characteristics"]["staff_count"] == 4

    approved = await api.ok(org.s1, "approve_customer", {"customer_id": cid, "status": "active"})
    assert approved == {"customer_id": cid, "customer_code": "D1-000001", "status": "active"}
    second = (await api.ok(org.r2, "register_customer", outlet(name="二号店")))["customer_id"]
    assert (await api.ok(org.s1, "approve_customer", {"customer_id": second}))["customer_code"] == "D1-000002"

    card = (await api.get(org.sm, f"/customers/{cid}")).json()
    assert card["customer_code"] == "D1-000001" and card["status"] == "active" and card["approved_by"] == "s1"
    assert card["base"]["owner"]["hobbies"] == "钓鱼" and card["restricted_fields"] == "shown"


async def test_form_data_counts_only_once_verified(api, org, outlet) -> None:
    cid = (await api.ok(org.clerk, "register_customer", outlet(source="customer_form", rep_id="r1")))["customer_id"]
    card = (await api.get(org.r1, f"/customers/{cid}")).json()
    assert card["verified"] is False and card["source"] == "customer_form"

    r = await api.command(org.s1, "approve_customer", {"customer_id": cid})
    assert r.status_code == 409 and r.json()["error"]["code"] == "data_unverified"
    await api.ok(org.clerk, "verify_customer_data", {"customer_id": cid, "note": "电话核实"})
    r = await api.command(org.s1, "verify_customer_data", {"customer_id": cid})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_verified"
    assert (await api.ok(org.s1, "approve_customer", {"customer_id": cid}))["status"] == "prospect"


async def test_rejection_keeps_the_reason(api, org, outlet) -> None:
    cid = (await api.ok(org.r1, "register_customer", outlet()))["customer_id"]
    await api.ok(org.s1, "reject_customer", {"customer_id": cid, "reason": "重复登记"})
    card = (await api.get(org.s1, f"/customers/{cid}")).json()
    assert card["status"] == "rejected" and card["rejection_reason"] == "重复登记"
    r = await api.command(org.s1, "approve_customer", {"customer_id": cid})
    assert r.status_code == 409 and r.json()["error"]["code"] == "customer_rejected"


async def test_bad_input_gets_a_clear_code_and_changes_nothing(rt, api, archive, org, outlet) -> None:
    cid = await archive.approved(org.r1)
    other = await archive.approved(org.r2, name="二号店")
    survivor = await archive.approved(org.r1, name="三号店")
    duplicate = await archive.approved(org.r1, name="三号店(重复)")  # registered later: no order on either
    await archive.run(
        org.s1,
        "merge_customers",
        {"customer_id": duplicate, "survivor_id": survivor, "rule": "same_outlet", "reason": "同一门店"},
    )

    cases: list[tuple[Actor, str, dict[str, Any], int, str, str | None]] = [
        (org.r1, "register_customer", outlet(district_id="D9"), 409, "unknown_district", None),
        (org.sm, "register_customer", outlet(rep_id="nobody"), 409, "unknown_rep", None),
        (org.sm, "register_customer", outlet(), 422, "rep_required", "rep_id"),
        (org.r1, "register_customer", outlet(phone="12345"), 422, "invalid_phone", "phone"),
        (org.r1, "register_customer", outlet(phone="12812345678"), 422, "invalid_phone", "phone"),
        (
            org.r1,
            "register_customer",
            outlet(contacts=[{"name": "x", "phone": "5551234"}]),
            422,
            "invalid_phone",
            "contacts.0.phone",
        ),
        (
            org.sm,
            "set_credit_limit",
            {"customer_id": cid, "credit_rating": "A", "credit_limit_fen": -1, "payment_terms_days": 30},
            422,
            "greater_than_equal",
            "credit_limit_fen",
        ),
        (org.s1, "classify_customer", {"customer_id": cid, "grade": "D", "reason": "x"}, 422, "invalid_grade", "grade"),
        (org.s1, "approve_customer", {"customer_id": cid}, 409, "already_approved", None),
        (
            org.s1,
            "merge_customers",
            {"customer_id": cid, "survivor_id": cid, "rule": "same_outlet", "reason": "x"},
            409,
            "merge_into_self",
            None,
        ),
        (
            org.r1,
            "update_profile",
            {"customer_id": duplicate, "changes": {"address": "新地址"}, "reason": "x"},
            409,
            "customer_merged",
            None,
        ),
        (
            org.r1,
            "update_profile",
            {"customer_id": other, "changes": {"address": "新地址"}, "reason": "x"},
            403,
            "outside_line",
            None,
        ),
        (
            org.r1,
            "update_profile",
            {"customer_id": cid, "changes": {"base.shoe_size": 42}, "reason": "x"},
            422,
            "unknown_field",
            "changes.base.shoe_size",
        ),
        (
            org.r1,
            "update_profile",
            {"customer_id": cid, "changes": {"phone": "110"}, "reason": "x"},
            422,
            "invalid_phone",
            "changes.phone",
        ),
        (org.s1, "assign_customer", {"customer_id": cid, "rep_id": "ghost", "reason": "x"}, 409, "unknown_rep", None),
        (org.r1, "approve_customer", {"customer_id": cid}, 403, "role_not_allowed", None),
        (org.s1, "approve_customer", {"customer_id": "no-such-card"}, 404, "customer_not_found", None),
    ]
    before = await event_count(rt)
    for actor, name, payload, status, code, field in cases:
        r = await api.command(actor, name, payload)
        assert r.status_code == status, (name, code, r.text)
        error = r.json()["error"]
        if status == 422:
            assert any(d["code"] == code and (field is None or d["field"] == field) for d in error["details"]), (
                name,
                error,
            )
        else:
            assert error["code"] == code, (name, error)
            assert error["message"]
    assert await event_count(rt) == before


async def test_classification_by_hand_and_grade_from_sales(api, archive, org) -> None:
    cid = await archive.approved(org.r1)
    r = await api.ok(
        org.s1,
        "classify_customer",
        {"customer_id": cid, "grade": "A", "channel": "chain", "reason": "连锁门店, 重点客户"},
    )
    assert r["grade"] == "A" and r["channel"] == "chain"
    r = await api.command(org.s1, "classify_customer", {"customer_id": cid, "grade": "A", "reason": "again"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "classification_unchanged"

    figures = {"annual_sales_fen": 3_000_000, "order_count": 5, "period": "2025"}
    r = await api.ok(org.system, "recompute_grade", {"customer_id": cid, "figures": figures})
    assert r == {"customer_id": cid, "grade": "C", "changed": True}
    r = await api.ok(org.system, "recompute_grade", {"customer_id": cid, "figures": figures})
    assert r["changed"] is False
    r = await api.command(org.s1, "recompute_grade", {"customer_id": cid, "figures": figures})
    assert r.status_code == 403

    card = (await api.get(org.s1, f"/customers/{cid}")).json()
    assert card["classification"]["grade"] == "C" and card["classification"]["grade_basis"] == "sales"
    assert card["classification"]["channel"] == "chain"
    assert card["classification"]["grade_figures"]["annual_sales_fen"] == 3_000_000


async def test_credit_is_set_by_sales_manager_and_up_only(api, archive, org) -> None:
    cid = await archive.approved(org.r1)
    payload = {"customer_id": cid, "credit_rating": "AA", "credit_limit_fen": 5_000_000, "payment_terms_days": 30}
    for actor in (org.r1, org.s1, org.am1, org.clerk):
        r = await api.command(actor, "set_credit_limit", payload)
        assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"
    await api.ok(org.sm, "set_credit_limit", payload)
    card = (await api.get(org.r1, f"/customers/{cid}")).json()
    assert card["credit"] == {"credit_rating": "AA", "credit_limit_fen": 5_000_000, "payment_terms_days": 30}


async def test_profile_update_replaces_fields_and_seals_personal_ones(rt, api, archive, org) -> None:
    cid = await archive.approved(org.r1)
    r = await api.ok(
        org.r1,
        "update_profile",
        {
            "customer_id": cid,
            "changes": {"characteristics.staff_count": 6, "base.owner.hobbies": "下象棋", "address": "张杨路200号"},
            "reason": "门店搬迁, 扩招店员",
        },
    )
    assert r["changed"] == ["address", "base.owner.hobbies", "characteristics.staff_count"]
    card = (await api.get(org.clerk, f"/customers/{cid}")).json()
    assert card["characteristics"]["staff_count"] == 6 and card["address"] == "张杨路200号"
    assert card["base"]["owner"]["hobbies"] == "下象棋" and card["base"]["owner"]["name"] == "王建国"
    async with rt.pool.acquire() as conn:
        data = await conn.fetchval(
            "SELECT data FROM events WHERE event_type = 'customer.profile_updated' AND stream_id = $1",
            f"customer-{cid}",
        )
    assert data["changes"] == {"characteristics.staff_count": 6, "address": "张杨路200号"}
    assert data["personal_fields"] == ["base.owner.hobbies"] and "下象棋" not in str(data)


async def test_lists_filter_search_and_paginate(api, archive, org) -> None:
    a = await archive.approved(org.r1, name="甲超市", phone="13911112222", channel="chain")
    b = await archive.approved(org.r1, name="乙批发部", channel="wholesale")
    c = await archive.approved(org.r3, name="丙便利店")
    await archive.register(org.r4, name="丁烟酒店")
    await archive.run(org.s1, "classify_customer", {"customer_id": a, "grade": "A", "reason": "大店"})
    await archive.run(
        org.sm,
        "set_credit_limit",
        {"customer_id": b, "credit_rating": "B", "credit_limit_fen": 0, "payment_terms_days": 0},
    )

    everything = (await api.get(org.sm, "/customers")).json()
    assert everything["total"] == 4 and len(everything["items"]) == 4
    page = (await api.get(org.sm, "/customers", limit=2, offset=2)).json()
    assert page["total"] == 4 and [i["customer_id"] for i in page["items"]] == [
        i["customer_id"] for i in everything["items"][2:]
    ]

    def ids(r) -> set[str]:
        return {i["customer_id"] for i in r.json()["items"]}

    assert ids(await api.get(org.sm, "/customers", grade="A")) == {a}
    assert ids(await api.get(org.sm, "/customers", channel="wholesale")) == {b}
    assert ids(await api.get(org.sm, "/customers", credit_rating="B")) == {b}
    assert ids(await api.get(org.sm, "/customers", district_id="D2")) == {c}
    assert ids(await api.get(org.sm, "/customers", area_id="A1")) == {a, b, c}
    assert ids(await api.get(org.sm, "/customers", rep_id="r1")) == {a, b}
    assert ids(await api.get(org.sm, "/customers", q="1111")) == {a}
    assert ids(await api.get(org.sm, "/customers", q="批发")) == {b}
    assert ids(await api.get(org.sm, "/customers", q="D1-000002")) == {b}
    assert len(ids(await api.get(org.sm, "/customers", status="pending"))) == 1
    r = await api.get(org.sm, "/customers", grade="E")
    assert r.status_code == 422


async def test_composition_counts_per_grade_channel_and_district(api, archive, org) -> None:
    a = await archive.approved(org.r1, channel="chain")
    await archive.approved(org.r1)
    await archive.approved(org.r3)
    await archive.register(org.r4)  # pending: not yet part of the customer base
    await archive.run(org.s1, "classify_customer", {"customer_id": a, "grade": "A", "reason": "大店"})

    r = (await api.get(org.sm, "/customers/composition")).json()
    assert r == {
        "total": 3,
        "by_grade": {"A": 1, "ungraded": 2},
        "by_channel": {"chain": 1, "retail": 2},
        "by_district": {"D1": 2, "D2": 1},
    }
    r = (await api.get(org.s1, "/customers/composition")).json()
    assert r["total"] == 2 and r["by_district"] == {"D1": 2}


async def test_assignment_and_reassigning_a_departing_reps_customers(api, archive, org) -> None:
    first = await archive.approved(org.r1)
    pending = await archive.register(org.r1)
    third = await archive.approved(org.r1)

    r = await api.ok(org.s1, "assign_customer", {"customer_id": first, "rep_id": "r2", "reason": "r2 负责张江东片"})
    assert r == {"customer_id": first, "rep_id": "r2", "district_id": "D1"}

    r = await api.command(org.sm, "staff_departed", {"staff_id": "r1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "rep_has_customers"

    # r3 works in D2: supervisor s1 (D1) may not hand customers there; the area manager may.
    spread = {"from_rep_id": "r1", "to_rep_ids": ["r2", "r3"], "reason": "r1 离职"}
    r = await api.command(org.s1, "reassign_all", spread)
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await api.ok(org.am1, "reassign_all", spread)
    assert r["reassigned"] == 2 and sorted(r["to"]["r2"] + r["to"]["r3"]) == sorted([pending, third])
    moved_to_r3 = r["to"]["r3"][0]
    card = (await api.get(org.s2, f"/customers/{moved_to_r3}")).json()
    assert card["rep_id"] == "r3" and card["territory"]["district_id"] == "D2"

    assert (await api.ok(org.sm, "staff_departed", {"staff_id": "r1"}))["active"] is False
    r = await api.command(org.s1, "assign_customer", {"customer_id": first, "rep_id": "r1", "reason": "x"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "unknown_rep"
    assert (await api.get(org.sm, "/customers", rep_id="r1")).json()["total"] == 0


async def test_merge_follows_the_first_order_and_keeps_the_duplicate_pointing(rt, api, archive, org, clock) -> None:
    early = await archive.approved(org.r1, name="王记(老卡)")
    clock.advance(timedelta(days=1))
    late = await archive.approved(org.r1, name="王记(新卡)")
    # The later card placed the first order (orders service), so it wins the clash.
    envelope = Envelope(
        event_id=uuid.uuid4(),
        event_type="order.placed",
        schema_version=1,
        stream_id="order-o1",
        stream_version=1,
        occurred_at=clock.now(),
        recorded_at=clock.now(),
        actor=Actor(id="r1", role=Role.rep),
        data={"order_id": "o1", "customer_id": late, "placed_at": clock.now().isoformat(), "amount_fen": 100},
    )
    async with rt.pool.acquire() as conn:
        await copy_foreign(conn, "ORDERS", [envelope])

    wrong = {"customer_id": late, "survivor_id": early, "rule": "family_members", "reason": "夫妻两张卡"}
    r = await api.command(org.s1, "merge_customers", wrong)
    assert r.status_code == 409 and r.json()["error"]["code"] == "survivor_not_first_buyer"

    right = {"customer_id": early, "survivor_id": late, "rule": "family_members", "reason": "夫妻两张卡"}
    r = await api.ok(org.s1, "merge_customers", right)
    assert "first order wins" in r["rule_reason"] and "o1" in r["rule_reason"]

    card = (await api.get(org.s1, f"/customers/{early}")).json()
    assert card["status"] == "merged" and card["merged_into"] == late
    history = (await api.get(org.s1, f"/customers/{late}/history")).json()["events"]
    assert history[-1]["event_type"] == "customer.duplicate_absorbed" and history[-1]["data"]["duplicate_id"] == early
    assert (await api.get(org.s1, "/customers", status="merged")).json()["total"] == 1
    assert early not in {i["customer_id"] for i in (await api.get(org.s1, "/customers")).json()["items"]}

    r = await api.command(org.s1, "merge_customers", {**right, "customer_id": late, "survivor_id": early})
    assert r.status_code == 409 and r.json()["error"]["code"] == "survivor_merged"


async def test_contracts_are_published_as_json_schemas(api, org) -> None:
    events = (await api.get(org.r1, "/schemas/events")).json()
    for event_type in sorted(PUBLISHED_BY["customer"]):
        assert events[event_type]["x-event-type"] == event_type
    # Every field of the event is in its published schema (which fields other services read is
    # held by tests/test_contracts.py).
    assert set(events["customer.registered"]["properties"]) == set(CustomerRegistered.model_fields)
    commands = (await api.get(org.r1, "/schemas/commands")).json()
    assert {
        "register_customer",
        "approve_customer",
        "reassign_all",
        "erase_personal_data",
        "recompute_grade",
        "claim_customer",
        "log_contact",
        "verify_customer_data",
    } <= set(commands)


async def test_territory_and_staff_queries(api, org) -> None:
    tree = (await api.get(org.r1, "/territory")).json()
    [north] = tree["divisions"]
    assert [a["area_id"] for a in north["areas"]] == ["A1", "A2"]
    assert [d["district_id"] for d in north["areas"][0]["districts"]] == ["D1", "D2"]
    staff = (await api.get(org.s1, "/staff", district_id="D1")).json()["items"]
    assert {s["staff_id"] for s in staff} == {"r1", "r2", "s1"}
    assert next(s for s in staff if s["staff_id"] == "r1")["supervisor_id"] == "s1"


async def test_concurrent_approvals_in_one_district_get_distinct_codes(rt, archive, org) -> None:
    import asyncio

    pending = [await archive.register(org.r1) for _ in range(5)]
    outcomes = await asyncio.gather(
        *(rt.run_command("approve_customer", {"customer_id": cid}, org.s1) for cid in pending)
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
    assert sorted(o.result["customer_code"] for o in outcomes) == [f"D1-{n:06d}" for n in range(1, 6)]


async def test_openapi_describes_commands_and_queries(api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert "/commands/register_customer" in spec["paths"] and "/customers/{customer_id}/history" in spec["paths"]
