"""Complaints with the 48-hour SLA timer, satisfaction surveys against the goals, key-account
reports, coaching notes and delivery spot checks — over HTTP with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from visit_testkit import AM1, CLERK, REP1, REP3, SM, SUP1, SUP2, SYSTEM, Harness

from visit_service.application.timers import flag_breached_complaints


async def receive(h: Harness, customer_id: str, category: str, actor=REP1, **extra) -> str:
    r = await h.post(
        actor,
        "receive_complaint",
        {
            "customer_id": customer_id,
            "channel": "phone",
            "category": category,
            "severity": "high",
            "description": f"{category} problem",
            **extra,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["complaint_id"]


async def test_a_complaint_goes_from_received_to_closed_with_the_customers_confirmation(world) -> None:
    h = world
    cid = await receive(h, "c1", "quality")
    [received] = await h.events("complaint.received")
    assert received["data"]["rep_id"] == "rep-1" and received["data"]["received_at"] == "2026-11-02T01:00:00Z"

    h.clock.advance(timedelta(hours=5))
    r = await h.post(REP1, "acknowledge_complaint", {"complaint_id": cid})
    assert r.status_code == 200
    [ack] = await h.events("complaint.acknowledged")
    assert ack["data"]["within_sla"] is True
    r = await h.post(SUP1, "route_complaint", {"complaint_id": cid})
    assert r.json()["department"] == "production"
    r = await h.get(SUP1, "/complaints/open", department="production")
    assert [c["complaint_id"] for c in r.json()["departments"]["production"]] == [cid]

    r = await h.post(
        SUP1,
        "resolve_complaint",
        {"complaint_id": cid, "resolution": "customer misuse, explained", "customer_misuse": True},
    )
    assert r.status_code == 200
    r = await h.post(REP1, "close_complaint", {"complaint_id": cid, "customer_confirmed": False})
    assert r.status_code == 422
    r = await h.post(REP1, "close_complaint", {"complaint_id": cid, "customer_confirmed": True})
    assert r.status_code == 200 and r.json()["status"] == "closed"
    [closed] = await h.events("complaint.closed")
    assert closed["data"] == {"complaint_id": cid, "customer_confirmed": True}
    r = await h.get(SUP1, "/complaints/open")
    assert r.json()["departments"] == {}
    r = await h.get(REP1, f"/complaints/{cid}")
    assert r.json()["customer_misuse"] is True and r.json()["status"] == "closed"
    r = await h.get(REP3, f"/complaints/{cid}")
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"


async def test_a_complaint_not_acknowledged_in_48_hours_is_flagged_by_the_timer(world) -> None:
    h = world
    late = await receive(h, "c1", "logistics")
    on_time = await receive(h, "c2", "service")
    other_district = await receive(h, "c4", "technical", actor=REP3)
    # Received by the hotline 10 hours ago: its 48 hours run from then.
    earlier = await receive(
        h, "c3", "quality", actor=SYSTEM, received_at=(h.clock.now() - timedelta(hours=10)).isoformat()
    )
    assert (await h.post(REP1, "acknowledge_complaint", {"complaint_id": on_time})).status_code == 200

    h.clock.advance(timedelta(hours=38, minutes=1))  # 48 h 1 min after `earlier`
    assert (await flag_breached_complaints(h.rt)).count == 1
    h.clock.advance(timedelta(hours=10))
    assert (await flag_breached_complaints(h.rt)).count == 2
    assert (await flag_breached_complaints(h.rt)).count == 0
    breached = [e["data"] for e in await h.events("complaint.sla_breached")]
    assert breached[0] == {"complaint_id": earlier, "customer_id": "c3"}
    assert sorted(breached[1:], key=lambda d: d["customer_id"]) == [
        {"complaint_id": late, "customer_id": "c1"},
        {"complaint_id": other_district, "customer_id": "c4"},
    ]
    r = await h.get(SUP1, "/complaints/overdue")
    assert {c["complaint_id"] for c in r.json()["complaints"]} == {earlier, late}
    r = await h.get(SM, "/complaints/overdue")
    assert len(r.json()["complaints"]) == 3
    # Acknowledged late: recorded as outside the SLA.
    r = await h.post(REP1, "acknowledge_complaint", {"complaint_id": late})
    assert r.status_code == 200
    ack = (await h.events("complaint.acknowledged"))[-1]
    assert ack["data"]["complaint_id"] == late and ack["data"]["within_sla"] is False
    # A complaint cannot be received in the future.
    r = await h.post(
        REP1,
        "receive_complaint",
        {
            "customer_id": "c1",
            "channel": "phone",
            "category": "quality",
            "severity": "low",
            "description": "x",
            "received_at": (h.clock.now() + timedelta(hours=1)).isoformat(),
        },
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "received_in_future"


async def test_open_complaints_by_department_and_the_default_routes(world) -> None:
    h = world
    ids = {cat: await receive(h, "c1", cat) for cat in ("quality", "technical", "logistics", "service")}
    for cid in ids.values():
        assert (await h.post(SUP1, "acknowledge_complaint", {"complaint_id": cid})).status_code == 200
        assert (await h.post(SUP1, "route_complaint", {"complaint_id": cid})).status_code == 200
    unrouted = await receive(h, "c2", "quality")
    r = await h.get(AM1, "/complaints/open")
    departments = {d: [c["complaint_id"] for c in cs] for d, cs in r.json()["departments"].items()}
    assert departments == {
        "production": [ids["quality"]],
        "technical": [ids["technical"]],
        "logistics": [ids["logistics"]],
        "sales": [ids["service"]],
        "unrouted": [unrouted],
    }
    r = await h.post(SUP1, "route_complaint", {"complaint_id": unrouted, "department": "logistics"})
    assert r.json()["error"]["code"] == "not_acknowledged"
    r = await h.get(SUP2, "/complaints/open", district_id="d1")
    assert r.status_code == 403 and "district d2" in r.json()["error"]["message"]
    r = await h.get(REP1, "/complaints/open")
    assert r.status_code == 403


async def test_satisfaction_surveys_once_per_half_year_against_the_goals(world) -> None:
    h = world
    for customer, satisfied in (("c1", True), ("c2", True), ("c3", False)):
        r = await h.post(
            REP1,
            "record_survey",
            {"customer_id": customer, "scores": {"quality": 5, "delivery": 3}, "satisfied": satisfied},
        )
        assert r.status_code == 200 and r.json()["period"] == "2026H2"
    r = await h.post(
        REP3, "record_survey", {"customer_id": "c4", "scores": {"quality": 4}, "satisfied": True, "period": "2026H2"}
    )
    assert r.status_code == 200
    r = await h.post(REP1, "record_survey", {"customer_id": "c1", "scores": {"quality": 5}, "satisfied": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "survey_exists"
    r = await h.post(
        REP1, "record_survey", {"customer_id": "c1", "scores": {"quality": 6}, "satisfied": True, "period": "2026H1"}
    )
    assert r.status_code == 422
    r = await h.post(
        REP1, "record_survey", {"customer_id": "c1", "scores": {"quality": 5}, "satisfied": True, "period": "2027H1"}
    )
    assert r.json()["error"]["code"] == "period_in_future"

    r = await h.get(SUP1, "/surveys/results", period="2026H2")
    result = r.json()
    assert (result["surveys"], result["satisfied"]) == (3, 2)
    assert abs(result["satisfied_share"] - 2 / 3) < 1e-9
    assert result["goals"] == {
        "year_1": {"share": 0.95, "met": False},
        "year_2": {"share": 0.97, "met": False},
        "year_3": {"share": 0.98, "met": False},
    }
    assert {q["question"]: q["average"] for q in result["questions"]} == {"delivery": 3.0, "quality": 5.0}
    r = await h.get(SUP2, "/surveys/results", period="2026H2")
    assert (r.json()["surveys"], r.json()["goals"]["year_3"]["met"]) == (1, True)
    r = await h.get(SM, "/surveys/results", period="2026H2")
    assert r.json()["surveys"] == 4


async def test_key_accounts_without_a_report_in_twelve_months(world) -> None:
    h = world
    # A-grade: c2 (rep-1, d1) and c5 (rep-2, d1).
    r = await h.get(SUP1, "/key-accounts/without-report")
    assert [c["customer_id"] for c in r.json()["customers"]] == ["c2", "c5"]
    r = await h.post(
        REP1,
        "file_key_account_report",
        {
            "customer_id": "c2",
            "summary": "Main account, growing",
            "issues": [
                {"department": "delivery", "description": "two late deliveries"},
                {"department": "quality", "description": "dented cans"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    [filed] = await h.events("key_account_report.filed")
    assert filed["data"]["issues"][0] == {"department": "delivery", "description": "two late deliveries"}
    r = await h.get(SUP1, "/key-accounts/without-report")
    assert [c["customer_id"] for c in r.json()["customers"]] == ["c5"]
    # A year and a day later the report no longer counts.
    r = await h.get(SUP1, "/key-accounts/without-report", as_of="2027-11-03")
    assert [c["customer_id"] for c in r.json()["customers"]] == ["c2", "c5"]
    assert r.json()["customers"][0]["last_report_on"] == "2026-11-02"
    r = await h.get(CLERK, "/customers/c2/key-account-reports")
    assert len(r.json()["reports"]) == 1
    r = await h.post(
        REP1,
        "file_key_account_report",
        {
            "customer_id": "c2",
            "summary": "x",
            "issues": [{"department": "marketing", "description": "x"}],
        },
    )
    assert r.status_code == 422
    r = await h.post(REP1, "file_key_account_report", {"customer_id": "c2", "summary": "x", "visit_id": "v-none"})
    assert r.json()["error"]["code"] == "visit_not_for_customer"


async def test_coaching_and_delivery_spot_checks_are_supervisor_work(world) -> None:
    h = world
    await h.feed("orders", h.order_placed("o9", "c1", {"cola": 5}, datetime(2026, 11, 1, 2, tzinfo=UTC)))
    r = await h.post(
        SUP1,
        "record_coaching",
        {
            "rep_id": "rep-1",
            "notes": "rode along the Monday route",
            "strengths": ["greeting"],
            "improvements": ["cooler checks"],
        },
    )
    assert r.status_code == 200, r.text
    [note] = await h.events("coaching.recorded")
    assert note["data"]["supervisor_id"] == "sup-1" and note["data"]["rep_id"] == "rep-1"
    r = await h.get(REP1, "/reps/rep-1/coaching")
    assert r.json()["coaching"][0]["improvements"] == ["cooler checks"]
    r = await h.post(SUP2, "record_coaching", {"rep_id": "rep-1", "notes": "x"})
    assert r.status_code == 403
    r = await h.post(REP1, "record_coaching", {"rep_id": "rep-1", "notes": "x"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"

    r = await h.post(
        SUP1,
        "spot_check_delivery",
        {
            "order_id": "o9",
            "customer_id": "c1",
            "delivered": True,
            "on_time": True,
            "quantities_match": False,
            "notes": "1 case short",
        },
    )
    assert r.status_code == 200, r.text
    [check] = await h.events("delivery.spot_checked")
    assert check["data"]["quantities_match"] is False and check["data"]["checked_by"] == "sup-1"
    r = await h.post(
        SUP1,
        "spot_check_delivery",
        {"order_id": "o9", "customer_id": "c2", "delivered": True, "quantities_match": True},
    )
    assert r.json()["error"]["code"] == "order_not_for_customer"
