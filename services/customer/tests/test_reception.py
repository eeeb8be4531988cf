"""The sales office (案场) against real PostgreSQL and NATS: a morning of receptions in turn
with duty reception and returning customers, the registers, the 7-day lapse of a phone lead and
the release of a walk-in, referrals, family members, disputes, corrections and erasure."""

from __future__ import annotations

from datetime import timedelta

import pytest_asyncio

from customer_service.application.timers import release_neglected_leads
from salesplatform.events import Actor, Role

R5 = Actor(id="r5", role=Role.rep, district="D1", area="A1")
PHONES = {name: f"139{n:08d}" for n, name in enumerate("ABCDEFGH", start=1)}


@pytest_asyncio.fixture
async def office(rt, org, archive):
    """Project P1's sales office in district D1, whose reps are r1, r2 and r5."""
    await archive.run(
        org.system, "assign_staff", {"staff_id": "r5", "name": "林五", "role": "rep", "district_id": "D1"}
    )
    await archive.run(org.sm, "open_sales_office", {"project_id": "P1", "name": "滨江一号售楼处", "district_id": "D1"})
    return org


async def code_of(r) -> str:
    return r.json()["error"]["code"]


async def test_a_morning_in_turn_with_duty_reception_and_returning_customers(api, office, clock) -> None:
    org = office
    for rep in (org.r2, org.r1, R5):  # arrival order is the rotation
        await api.ok(rep, "sign_in", {"project_id": "P1"})
    r = await api.command(org.r1, "sign_in", {"project_id": "P1"})
    assert r.status_code == 409 and await code_of(r) == "already_signed_in"
    board = (await api.get(org.s1, "/offices/P1/board")).json()
    assert board["queue"] == ["r2", "r1", "r5"] and board["next_in_turn"] == "r2"

    desk = org.clerk  # the front desk registers arrivals; the rotation names the rep
    a = await api.ok(desk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["A"], "name": "张先生"})
    assert (a["rep_id"], a["basis"], a["entry_no"], a["new_lead"]) == ("r2", "turn", 1, True)
    b = await api.ok(desk, "receive_phone_enquiry", {"project_id": "P1", "phone": PHONES["B"], "name": "李女士"})
    assert (b["rep_id"], b["basis"], b["register"], b["entry_no"]) == ("r1", "turn", "phone", 1)

    # r1 may not take the next walk-in: it is r5's turn (抢客); r2 is serving A.
    r = await api.command(org.r1, "receive_walk_in", {"project_id": "P1", "phone": PHONES["C"]})
    assert r.status_code == 409 and await code_of(r) == "out_of_turn"
    r = await api.command(org.r2, "receive_walk_in", {"project_id": "P1", "phone": PHONES["C"]})
    assert r.status_code == 409 and await code_of(r) == "serving_another_customer"
    c = await api.ok(R5, "receive_walk_in", {"project_id": "P1", "phone": PHONES["C"]})
    assert (c["rep_id"], c["basis"]) == ("r5", "turn")

    # B, who phoned this morning, comes to see: r1's own customer, not a turn.
    clock.advance(timedelta(hours=2))
    b_visit = await api.ok(desk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["B"]})
    assert (b_visit["lead_id"], b_visit["rep_id"], b_visit["basis"]) == (b["lead_id"], "r1", "own")
    assert b_visit["first_visit"] and not b_visit["new_lead"]
    await api.ok(org.r1, "finish_reception", {"project_id": "P1"})
    await api.ok(org.r2, "finish_reception", {"project_id": "P1"})
    d = await api.ok(desk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["D"]})
    assert d["rep_id"] == "r2"  # queue was r2, r1, r5: r2 free again and first

    # A comes back while r2 serves D: r1 (first free) receives A on duty, which is not a turn,
    # so r1 also gets the next new customer.
    a_again = await api.ok(desk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["A"]})
    assert (a_again["rep_id"], a_again["basis"], a_again["remark"], a_again["following_rep_id"]) == (
        "r1",
        "duty",
        "duty",
        "r2",
    )
    r = await api.command(org.r1, "log_lead_follow_up", {"lead_id": a["lead_id"], "channel": "phone"})
    assert r.status_code == 403 and await code_of(r) == "not_your_lead"
    await api.ok(org.r2, "log_lead_follow_up", {"lead_id": a["lead_id"], "channel": "wechat", "note": "发户型图"})
    await api.ok(org.r1, "finish_reception", {"project_id": "P1"})
    await api.ok(R5, "finish_reception", {"project_id": "P1"})
    # r1 and r5 are free: r1, still ahead of r5 in the rotation after the duty, is next.
    e = await api.ok(desk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["E"]})
    assert (e["rep_id"], e["basis"]) == ("r1", "turn")

    # r2 leaves once D is gone; A phones: r2 is absent, so another rep takes the call on duty.
    r = await api.command(org.r2, "sign_out", {"project_id": "P1"})
    assert r.status_code == 409 and await code_of(r) == "still_serving"
    await api.ok(org.r2, "finish_reception", {"project_id": "P1"})
    await api.ok(org.r2, "sign_out", {"project_id": "P1"})
    a_call = await api.ok(desk, "receive_phone_enquiry", {"project_id": "P1", "phone": PHONES["A"]})
    assert (a_call["basis"], a_call["following_rep_id"]) == ("duty", "r2") and a_call["rep_id"] != "r2"

    board = (await api.get(org.sm, "/offices/P1/board")).json()
    reps = {x["rep_id"]: x for x in board["reps"]}
    assert (reps["r1"]["turns"], reps["r1"]["own_customers"], reps["r1"]["duty_receptions"]) == (2, 1, 1)
    assert reps["r2"]["present"] is False and reps["r2"]["turns"] == 2
    assert board["counts"] == {"walk_ins": 6, "calls": 2, "new_customers": 5, "duty_receptions": 2}

    walk_ins = (await api.get(org.sm, "/offices/P1/registers/walk_in")).json()
    assert [x["entry_no"] for x in walk_ins["items"]] == [1, 2, 3, 4, 5, 6]
    assert [(x["rep_id"], x["basis"], x["remark"]) for x in walk_ins["items"]] == [
        ("r2", "turn", None),
        ("r5", "turn", None),
        ("r1", "own", None),
        ("r2", "turn", None),
        ("r1", "duty", "duty"),
        ("r1", "turn", None),
    ]
    assert walk_ins["items"][0]["written"] == {"name": "张先生", "phone": PHONES["A"], "note": None}
    # A rep reads their own lines only; another office's rep none.
    mine = (await api.get(org.r1, "/offices/P1/registers/walk_in")).json()
    assert {x["rep_id"] for x in mine["items"]} == {"r1"}
    r = await api.get(org.r1, "/offices/P1/registers/walk_in", rep_id="r2")
    assert r.status_code == 403
    r = await api.get(org.r3, "/offices/P1/board")
    assert r.status_code == 403 and (await code_of(r)) == "outside_line"


async def test_a_phone_lead_not_seen_in_7_days_lapses_and_comes_back_as_a_new_walk_in(rt, api, office, clock) -> None:
    org = office
    await api.ok(org.r1, "sign_in", {"project_id": "P1"})
    await api.ok(org.r2, "sign_in", {"project_id": "P1"})
    call = await api.ok(org.clerk, "receive_phone_enquiry", {"project_id": "P1", "phone": PHONES["F"], "name": "王"})
    assert call["rep_id"] == "r1"
    lead = (await api.get(org.r1, f"/leads/{call['lead_id']}")).json()
    assert lead["stage"] == "phone" and lead["phones"] == [PHONES["F"]] and lead["name"] == "王"
    assert lead["come_to_see_by"].startswith((clock.now() + timedelta(days=7)).date().isoformat())

    clock.advance(timedelta(days=7))
    await rt.runner.run_once()
    assert (await release_neglected_leads(rt)).of("lapse_lead") == []  # exactly 7 days is not "more than 7"
    clock.advance(timedelta(minutes=1))
    await rt.runner.run_once()
    run = await release_neglected_leads(rt)
    assert run.of("lapse_lead") == [call["lead_id"]]
    assert (await release_neglected_leads(rt)).of("lapse_lead") == []  # a rerun lapses nobody twice
    lead = (await api.get(org.sm, f"/leads/{call['lead_id']}")).json()
    assert lead["stage"] == "lapsed" and lead["rep_id"] is None
    assert lead["history"][-1]["event"] == "lead.lapsed"

    # The caller comes on day 8: an ordinary walk-in, received in turn by whoever is next.
    for rep in (org.r2, org.r1):
        await api.ok(rep, "sign_in", {"project_id": "P1"})
    visit = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["F"]})
    assert (visit["lead_id"], visit["rep_id"], visit["basis"], visit["new_lead"]) == (
        call["lead_id"],
        "r2",
        "turn",
        True,
    )
    lead = (await api.get(org.r2, f"/leads/{call['lead_id']}")).json()
    assert lead["stage"] == "walk_in" and lead["rep_id"] == "r2"
    r = await api.get(org.r1, f"/leads/{call['lead_id']}")
    assert r.status_code == 403


async def test_a_walk_in_not_followed_up_is_released_and_belongs_to_who_receives_them_again(
    rt, api, office, clock
) -> None:
    org = office
    await api.ok(org.r1, "sign_in", {"project_id": "P1"})
    first = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["G"]})
    await api.ok(org.r1, "finish_reception", {"project_id": "P1"})
    clock.advance(timedelta(days=5))
    await api.ok(org.r1, "log_lead_follow_up", {"lead_id": first["lead_id"], "channel": "phone"})
    clock.advance(timedelta(days=7, minutes=1))  # 12 days after the visit, 7 after the call
    await rt.runner.run_once()
    run = await release_neglected_leads(rt)
    assert run.of("release_lead") == [first["lead_id"]]
    r = await api.command(org.r1, "log_lead_follow_up", {"lead_id": first["lead_id"], "channel": "phone"})
    assert r.status_code == 409 and await code_of(r) == "lead_not_followed"

    await api.ok(org.r2, "sign_in", {"project_id": "P1"})
    await api.ok(org.r1, "sign_in", {"project_id": "P1"})
    again = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["G"]})
    assert (again["rep_id"], again["basis"], again["following_rep_id"], again["new_lead"]) == ("r2", "turn", "r2", True)


async def test_referrals_family_members_disputes_corrections_and_erasure(rt, api, office) -> None:
    org = office
    await api.ok(org.r1, "sign_in", {"project_id": "P1"})
    await api.ok(org.r2, "sign_in", {"project_id": "P1"})
    a = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["A"], "name": "赵"})
    assert a["rep_id"] == "r1"

    # A refers a friend: r1 took down the friend's number, so the friend is r1's when they come.
    friend = await api.ok(
        org.r1, "register_referral", {"project_id": "P1", "referrer_lead_id": a["lead_id"], "phone": PHONES["H"]}
    )
    r = await api.command(
        org.r2, "register_referral", {"project_id": "P1", "referrer_lead_id": a["lead_id"], "phone": PHONES["C"]}
    )
    assert r.status_code == 403  # only the referring customer's rep
    r = await api.command(
        org.sm, "register_referral", {"project_id": "P1", "referrer_lead_id": a["lead_id"], "phone": PHONES["H"]}
    )
    assert r.status_code == 409 and await code_of(r) == "phone_already_registered"
    visit = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["H"]})
    assert (visit["lead_id"], visit["rep_id"], visit["basis"]) == (friend["lead_id"], "r2", "duty")  # r1 is busy

    # A's wife is the same customer; A's brother is not.
    await api.ok(org.r1, "finish_reception", {"project_id": "P1"})
    await api.ok(org.r2, "finish_reception", {"project_id": "P1"})
    wife = await api.ok(
        org.clerk,
        "receive_walk_in",
        {
            "project_id": "P1",
            "phone": PHONES["B"],
            "name": "赵太太",
            "related_to": {"lead_id": a["lead_id"], "relation": "spouse"},
        },
    )
    assert (wife["lead_id"], wife["rep_id"], wife["basis"]) == (a["lead_id"], "r1", "own")
    brother = await api.ok(
        org.clerk,
        "receive_walk_in",
        {"project_id": "P1", "phone": PHONES["C"], "related_to": {"lead_id": a["lead_id"], "relation": "sibling"}},
    )
    assert brother["lead_id"] != a["lead_id"] and brother["basis"] == "turn"
    card = (await api.get(org.r1, f"/leads/{a['lead_id']}")).json()
    assert card["phones"] == [PHONES["A"], PHONES["B"]] and card["members"][0]["relation"] == "spouse"

    # Reps who cannot agree: the sales manager decides, with a reason.
    r = await api.command(org.s1, "decide_lead_dispute", {"lead_id": brother["lead_id"], "rep_id": "r1", "reason": "x"})
    assert r.status_code == 403
    decided = await api.ok(
        org.sm, "decide_lead_dispute", {"lead_id": brother["lead_id"], "rep_id": "r1", "reason": "同一家人由r1跟进"}
    )
    assert decided["rep_id"] == "r1"

    # A line written wrongly is corrected beside it, with the reason; the wrong number no
    # longer finds the customer, the right one does.
    r = await api.command(
        org.s1, "correct_register_entry", {"project_id": "P1", "register": "walk_in", "entry_no": 1, "reason": "x"}
    )
    assert r.status_code == 403
    await api.ok(
        org.sm,
        "correct_register_entry",
        {"project_id": "P1", "register": "walk_in", "entry_no": 1, "phone": PHONES["G"], "reason": "号码记错一位"},
    )
    line = (await api.get(org.sm, "/offices/P1/registers/walk_in")).json()["items"][0]
    assert line["written"]["phone"] == PHONES["A"] and line["corrected"]["phone"] == PHONES["G"]
    assert line["corrections"][0]["reason"] == "号码记错一位"
    await api.ok(org.r1, "finish_reception", {"project_id": "P1"})  # A and his wife left
    again = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["G"]})
    assert again["lead_id"] == a["lead_id"]
    await api.ok(org.r1, "finish_reception", {"project_id": "P1"})
    stranger = await api.ok(org.clerk, "receive_walk_in", {"project_id": "P1", "phone": PHONES["A"]})
    assert stranger["lead_id"] != a["lead_id"] and stranger["new_lead"]

    # Erasure: names and phones are gone from the lead and its register lines, the line stays.
    erased = await api.ok(org.clerk, "erase_lead_personal_data", {"lead_id": a["lead_id"], "reason": "客户要求"})
    assert erased["keys_destroyed"] == 1 and erased["phones_forgotten"] == 2
    card = (await api.get(org.sm, f"/leads/{a['lead_id']}")).json()
    assert card["personal_data"] == "erased" and card["phones"] == [] and card["name"] is None
    line = (await api.get(org.sm, "/offices/P1/registers/walk_in")).json()["items"][0]
    assert line["written"] == {"name": None, "phone": None, "note": None} and line["entry_no"] == 1
    async with rt.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1 AND data::text LIKE $2", f"lead-{a['lead_id']}", "%139%"
        )
    assert stored == 0  # the numbers were never in the events in plain text


async def test_a_supervisors_token_without_a_district_is_refused_the_leads_not_answered_empty(api, office) -> None:
    """The leads list follows the line of command: a supervisor's token that names no district
    is refused (403 `no_territory`), never answered with an empty list."""
    listed = await api.get(office.s1, "/leads", project_id="P1")
    assert listed.status_code == 200, listed.text
    nowhere = Actor(id="s9", role=Role.supervisor)
    refused = await api.get(nowhere, "/leads", project_id="P1")
    assert refused.status_code == 403 and (await code_of(refused)) == "no_territory"
    nowhere_area = Actor(id="am9", role=Role.area_manager)
    refused = await api.get(nowhere_area, "/leads")
    assert refused.status_code == 403 and (await code_of(refused)) == "no_territory"
