"""The line of command per role: who reads which card, who sees restricted notes, who may
decide what. Out-of-line access is a 403 with a reason, never an empty answer."""

from __future__ import annotations

import pytest_asyncio

from salesplatform.events import Actor, Role


@pytest_asyncio.fixture
async def card_of_r1(archive, org) -> str:
    return await archive.approved(org.r1)


async def test_card_readers_per_role(api, org, card_of_r1) -> None:
    expected = {
        "r1": 200,
        "r2": 403,
        "r3": 403,
        "s1": 200,
        "s2": 403,
        "am1": 200,
        "am2": 403,
        "sm": 200,
        "gm": 200,
        "clerk": 200,
        "inspector": 403,
    }
    codes = {
        "r2": "outside_line",
        "r3": "outside_line",
        "s2": "outside_line",
        "am2": "outside_line",
        "inspector": "role_not_allowed",
    }
    for who, status in expected.items():
        actor = getattr(org, who)
        for path in (f"/customers/{card_of_r1}", f"/customers/{card_of_r1}/history"):
            r = await api.get(actor, path)
            assert r.status_code == status, (who, path, r.text)
            if status == 403:
                assert r.json()["error"]["code"] == codes[who] and r.json()["error"]["message"]


async def test_restricted_notes_only_for_managers_and_the_clerk(api, org, card_of_r1) -> None:
    for who in ("r1", "s1", "am1"):
        card = (await api.get(getattr(org, who), f"/customers/{card_of_r1}")).json()
        owner = card["base"]["owner"]
        assert owner["name"] == "王建国" and owner["phone"] == "13812345678"
        assert not {"personality", "hobbies", "family", "education", "age"} & set(owner), who
        assert card["restricted_fields"] == "hidden"
        registered = (await api.get(getattr(org, who), f"/customers/{card_of_r1}/history")).json()["events"][0]
        assert "hobbies" not in registered["personal"]["base.owner"]
    for who in ("sm", "gm", "clerk"):
        card = (await api.get(getattr(org, who), f"/customers/{card_of_r1}")).json()
        owner = card["base"]["owner"]
        assert owner["hobbies"] == "钓鱼" and owner["age"] == 52 and owner["family"].startswith("妻子")
        assert card["restricted_fields"] == "shown"
        registered = (await api.get(getattr(org, who), f"/customers/{card_of_r1}/history")).json()["events"][0]
        assert registered["personal"]["base.owner"]["education"] == "高中"


async def test_lists_are_the_readers_own_and_out_of_line_filters_are_refused(api, archive, org, card_of_r1) -> None:
    of_r2 = await archive.approved(org.r2)
    of_r3 = await archive.approved(org.r3)
    of_r4 = await archive.approved(org.r4)

    def ids(r) -> set[str]:
        assert r.status_code == 200, r.text
        return {i["customer_id"] for i in r.json()["items"]}

    assert ids(await api.get(org.r1, "/customers")) == {card_of_r1}
    assert ids(await api.get(org.r1, "/customers", rep_id="r1")) == {card_of_r1}
    assert ids(await api.get(org.s1, "/customers")) == {card_of_r1, of_r2}
    assert ids(await api.get(org.s1, "/customers", rep_id="r2")) == {of_r2}
    assert ids(await api.get(org.am1, "/customers")) == {card_of_r1, of_r2, of_r3}
    assert ids(await api.get(org.am1, "/customers", district_id="D2")) == {of_r3}
    assert ids(await api.get(org.clerk, "/customers")) == {card_of_r1, of_r2, of_r3, of_r4}

    refused = [
        (org.r1, {"rep_id": "r2"}, "outside_line"),
        (org.r1, {"district_id": "D2"}, "outside_line"),
        # The own district is more than a rep's own customers: refused, not narrowed.
        (org.r1, {"rep_id": "r1", "district_id": "D1"}, "outside_line"),
        (org.r1, {"area_id": "A2"}, "outside_line"),
        (org.s1, {"district_id": "D2"}, "outside_line"),
        (org.s1, {"area_id": "A1"}, "outside_line"),
        (org.s1, {"rep_id": "r3"}, "outside_line"),
        (org.am1, {"area_id": "A2"}, "outside_line"),
        (org.am1, {"district_id": "D3"}, "outside_line"),
        (org.am1, {"rep_id": "r4"}, "outside_line"),
        (org.inspector, {}, "role_not_allowed"),
    ]
    for actor, params, code in refused:
        for path in ("/customers", "/customers/composition"):
            r = await api.get(actor, path, **params)
            assert r.status_code == 403, (actor.id, params, r.text)
            assert r.json()["error"]["code"] == code, (actor.id, params)


async def test_approval_belongs_to_the_districts_supervisor_or_above(api, archive, org) -> None:
    pending = [await archive.register(org.r1) for _ in range(3)]
    refused = [
        (org.s2, "outside_line"),
        (org.am2, "outside_line"),
        (org.clerk, "role_not_allowed"),
        (org.r1, "role_not_allowed"),
        (org.inspector, "role_not_allowed"),
    ]
    for actor, code in refused:
        r = await api.command(actor, "approve_customer", {"customer_id": pending[0]})
        assert r.status_code == 403 and r.json()["error"]["code"] == code, actor.id
        r = await api.command(actor, "reject_customer", {"customer_id": pending[0], "reason": "x"})
        assert r.status_code == 403, actor.id
    await api.ok(org.s1, "approve_customer", {"customer_id": pending[0]})
    await api.ok(org.am1, "approve_customer", {"customer_id": pending[1]})
    await api.ok(org.gm, "reject_customer", {"customer_id": pending[2], "reason": "地址不实"})


async def test_writes_follow_the_line(api, org, card_of_r1, outlet) -> None:
    change = {"customer_id": card_of_r1, "changes": {"business_status.staff_quality": "好"}, "reason": "走访"}
    for actor, status in (
        (org.r2, 403),
        (org.s2, 403),
        (org.am2, 403),
        (org.inspector, 403),
        (org.r1, 200),
        (org.s1, 200),
        (org.am1, 200),
        (org.clerk, 200),
        (org.sm, 200),
    ):
        r = await api.command(actor, "update_profile", change)
        assert r.status_code == status, (actor.id, r.text)

    r = await api.command(org.r1, "register_customer", outlet(rep_id="r2"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await api.command(org.s2, "register_customer", outlet(rep_id="r1"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await api.command(org.r1, "log_contact", {"customer_id": card_of_r1, "channel": "phone"})
    assert r.status_code == 200
    r = await api.command(org.r2, "log_contact", {"customer_id": card_of_r1, "channel": "phone"})
    assert r.status_code == 403

    for actor in (org.r1, org.s1, org.am1):
        r = await api.command(actor, "erase_personal_data", {"customer_id": card_of_r1})
        assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed", actor.id
    for actor in (org.r1, org.s1, org.clerk):
        r = await api.command(actor, "define_district", {"district_id": "D9", "name": "x", "area_id": "A1"})
        assert r.status_code == 403, actor.id
    r = await api.command(
        org.am2, "assign_staff", {"staff_id": "r9", "name": "新人", "role": "rep", "district_id": "D1"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await api.command(
        org.am1,
        "assign_staff",
        {"staff_id": "r9", "name": "新人", "role": "rep", "district_id": "D1", "supervisor_id": "s1"},
    )
    assert r.status_code == 200


async def test_no_token_no_answer(api, card_of_r1) -> None:
    r = await api.client.get(f"/customers/{card_of_r1}")
    assert r.status_code == 401
    r = await api.client.post("/commands/register_customer", json={})
    assert r.status_code == 401


async def test_the_pool_of_a_district_outside_the_line_is_refused_not_emptied(api, org) -> None:
    for actor, district in ((org.am1, "D3"), (org.s1, "D2"), (org.r1, "D2")):
        r = await api.get(actor, "/customers/pool", district_id=district)
        assert r.status_code == 403, (actor.id, r.text)
        assert r.json()["error"]["code"] == "outside_line"
    for actor, district in ((org.am1, "D2"), (org.s1, "D1"), (org.r1, "D1"), (org.sm, "D3")):
        r = await api.get(actor, "/customers/pool", district_id=district)
        assert r.status_code == 200, (actor.id, r.text)
    r = await api.get(Actor(id="s9", role=Role.supervisor), "/customers/pool")
    assert r.status_code == 403 and r.json()["error"]["code"] == "no_territory"
