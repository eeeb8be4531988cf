"""Routes, reassignment, the planning timer, end of the business day, visit approvals and the
24-hour approval SLA — with a real service and a controlled clock."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

from visit_testkit import AM1, REP1, REP2, REP3, SM, SUP1, SUP2, Harness

from salesplatform.projections import reading
from visit_service.application.timers import close_business_days, flag_overdue_approvals, plan_business_day
from visit_service.domain.planning import visit_id_for

MONDAY, TUESDAY = "2026-11-02", "2026-11-03"


async def define_routes(h: Harness) -> None:
    r = await h.post(
        REP1,
        "define_route",
        {
            "route_id": "r-mon-a",
            "route_name": "A Monday morning",
            "weekdays": [1, 3],
            "customer_ids": ["c3", "c1"],
        },
    )
    assert r.status_code == 200, r.text
    r = await h.post(
        SUP1,
        "define_route",
        {
            "route_id": "r-mon-b",
            "rep_id": "rep-1",
            "route_name": "B Monday afternoon",
            "weekdays": [1],
            "customer_ids": ["c2"],
        },
    )
    assert r.status_code == 200, r.text


async def visits_on(h: Harness, day: str) -> list[dict]:
    async with reading(h.rt.pool, "visit_board") as conn:
        rows = await conn.fetch(
            "SELECT * FROM visits WHERE business_date = $1 ORDER BY rep_id, sequence", date.fromisoformat(day)
        )
    return [dict(r) for r in rows]


async def test_routes_are_edited_in_order_and_only_with_the_reps_own_customers(world) -> None:
    h = world
    await define_routes(h)
    r = await h.post(REP1, "add_route_customer", {"route_id": "r-mon-a", "customer_id": "c2", "position": 1})
    assert r.status_code == 200 and r.json()["customer_ids"] == ["c2", "c3", "c1"]
    r = await h.post(REP1, "reorder_route", {"route_id": "r-mon-a", "customer_ids": ["c1", "c2", "c3"]})
    assert r.json()["customer_ids"] == ["c1", "c2", "c3"]
    r = await h.post(REP1, "remove_route_customer", {"route_id": "r-mon-a", "customer_id": "c2"})
    assert r.json()["customer_ids"] == ["c1", "c3"]
    r = await h.post(REP1, "set_route_weekdays", {"route_id": "r-mon-a", "weekdays": [1]})
    assert r.json()["weekdays"] == [1]

    before = await h.event_count()
    # c4 is rep-3's customer: not on rep-1's list.
    r = await h.post(REP1, "add_route_customer", {"route_id": "r-mon-a", "customer_id": "c4"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "customer_not_on_rep_list"
    r = await h.post(REP1, "reorder_route", {"route_id": "r-mon-a", "customer_ids": ["c1"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "reorder_mismatch"
    r = await h.post(REP1, "define_route", {"route_name": "x", "weekdays": [8], "customer_ids": []})
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "weekdays.0"
    assert await h.event_count() == before

    r = await h.get(REP1, "/routes")
    assert [x["route_id"] for x in r.json()["routes"]] == ["r-mon-a", "r-mon-b"]
    r = await h.get(SUP1, "/routes/r-mon-a")
    assert r.status_code == 200 and r.json()["customer_ids"] == ["c1", "c3"]


async def test_a_reassigned_customer_leaves_the_old_reps_routes(world) -> None:
    """The route_reassignment reactor removes it (route.changed, reason customer_reassigned,
    caused by the customer event)."""
    h = world
    await define_routes(h)
    r = await h.post(
        REP2, "define_route", {"route_id": "r-rep2", "route_name": "Rep 2", "weekdays": [1], "customer_ids": ["c5"]}
    )
    assert r.status_code == 200
    assigned = h.customer(
        "customer.assigned",
        "c1",
        rep_id="rep-2",
        district_id="d1",
        area_id="a1",
        previous_rep_id="rep-1",
        reason="rep-1 overloaded",
    )
    released = h.customer("customer.released", "c2", rep_id="rep-1", reason="not followed up in 7 days")
    await h.feed("customer", assigned, released)

    r = await h.get(REP1, "/routes")
    routes = {x["route_id"]: x["customer_ids"] for x in r.json()["routes"]}
    assert routes == {"r-mon-a": ["c3"], "r-mon-b": []}
    changed = await h.events("route.changed")
    assert {(e["data"]["route_id"], e["data"]["customer_id"], e["data"]["reason"]) for e in changed} == {
        ("r-mon-a", "c1", "customer_reassigned"),
        ("r-mon-b", "c2", "customer_reassigned"),
    }
    assert {e["causation_id"] for e in changed} == {str(assigned.event_id), str(released.event_id)}
    # The new rep may now put c1 on a route; the old one may not.
    r = await h.post(REP2, "add_route_customer", {"route_id": "r-rep2", "customer_id": "c1"})
    assert r.status_code == 200
    r = await h.post(REP1, "add_route_customer", {"route_id": "r-mon-a", "customer_id": "c1"})
    assert r.json()["error"]["code"] == "customer_not_on_rep_list"

    # Reacting again from the start of the log (events delivered again) finds nothing left to do.
    before = len(await h.events("route.changed"))
    # The runtime's own reactor runner is stopped first, so that the events are reacted to again
    # here, and not by a pass of its own that began before the checkpoint went back.
    h.rt.reactors.stop()
    await asyncio.wait_for(next(t for t in h.rt._tasks if t.get_name() == "reactors"), 30)
    async with h.rt.pool.acquire() as conn:
        await conn.execute("UPDATE reactor_checkpoints SET tx_id = '0', position = 0 WHERE name = 'route_reassignment'")
    reassignment = next(r for r in h.rt.reactors.reactors if r.name == "route_reassignment")
    assert await h.rt.reactors.react_once(reassignment) > 0
    for _ in range(100):  # the rest of the log, by hand: the runner is stopped
        await h.rt.runner.run_once()
        if not sum([await h.rt.reactors.react_once(r) for r in h.rt.reactors.reactors]):
            break
    assert len(await h.events("route.changed")) == before
    r = await h.get(REP2, "/routes/r-rep2")
    assert r.json()["customer_ids"] == ["c5", "c1"]


async def test_an_older_release_arriving_after_a_newer_claim_leaves_the_route_alone(world) -> None:
    """Copies from the customer service may arrive out of order: the latest assignment in the
    customer's stream decides, so the stale release removes nothing."""
    h = world
    await define_routes(h)
    seeded = h._versions["customer-c1"]
    release = h.customer("customer.released", "c1", version=seeded + 1, rep_id="rep-1", reason="7 days")
    claim = h.customer("customer.claimed", "c1", version=seeded + 2, rep_id="rep-1")
    await h.feed("customer", claim)
    await h.feed("customer", release)
    r = await h.get(REP1, "/routes/r-mon-a")
    assert r.json()["customer_ids"] == ["c3", "c1"]
    assert await h.events("route.changed") == []


async def test_the_planning_timer_plans_the_day_in_route_order_once(world) -> None:
    h = world
    await define_routes(h)
    result = await plan_business_day(h.rt)
    assert result.facts == {"business_date": MONDAY} and result.count == 3
    # Runs again (another tick, another replica): nothing new.
    assert (await plan_business_day(h.rt)).count == 0
    visits = await visits_on(h, MONDAY)
    assert [(v["customer_id"], v["sequence"], v["route_id"]) for v in visits] == [
        ("c3", 1, "r-mon-a"),
        ("c1", 2, "r-mon-a"),
        ("c2", 3, "r-mon-b"),
    ]
    assert [v["visit_id"] for v in visits] == [visit_id_for("rep-1", c, date(2026, 11, 2)) for c in ("c3", "c1", "c2")]
    assert len(await h.events("visit.planned")) == 3
    # c2 is an A-grade customer: its visit asks the supervisor.
    requested = await h.events("visit.approval_requested")
    assert [(e["data"]["customer_id"], e["data"]["reason"]) for e in requested] == [("c2", "key_account")]

    r = await h.get(REP1, "/day-plan")
    plan = r.json()
    assert plan["business_date"] == MONDAY
    assert [(v["customer_id"], v["status"]) for v in plan["visits"]] == [
        ("c3", "planned"),
        ("c1", "planned"),
        ("c2", "planned"),
    ]
    assert plan["visits"][2]["approval"]["status"] == "pending"
    # A future day shows what the routes will give, not yet planned.
    r = await h.get(REP1, "/day-plan", date="2026-11-04")
    assert [(v["customer_id"], v["status"]) for v in r.json()["visits"]] == [
        ("c3", "not_yet_planned"),
        ("c1", "not_yet_planned"),
    ]


async def test_at_the_end_of_the_business_day_visits_not_done_are_missed(world) -> None:
    h = world
    await define_routes(h)
    await plan_business_day(h.rt)
    c3, c1, c2 = await visits_on(h, MONDAY)
    r = await h.post(REP1, "check_in", {"visit_id": c3["visit_id"], "latitude": 31.2, "longitude": 121.4})
    assert r.status_code == 200

    # 23:59 Shanghai (15:59 UTC): the day is not over.
    h.clock.set(h.clock.now().replace(hour=15, minute=59))
    assert (await close_business_days(h.rt)).count == 0
    # Midnight in Shanghai: it is.
    h.clock.advance(timedelta(minutes=1))
    assert (await close_business_days(h.rt)).count == 2
    assert (await close_business_days(h.rt)).count == 0
    missed = await h.events("visit.missed")
    assert sorted(e["data"]["visit_id"] for e in missed) == sorted([c1["visit_id"], c2["visit_id"]])
    assert all(e["data"]["business_date"] == MONDAY for e in missed)
    r = await h.get(REP1, f"/visits/{c1['visit_id']}")
    assert r.json()["status"] == "missed"
    # A missed visit cannot be checked in afterwards.
    r = await h.post(REP1, "check_in", {"visit_id": c1["visit_id"], "latitude": 31.2, "longitude": 121.4})
    assert r.status_code == 409 and r.json()["error"]["code"] == "visit_missed"
    # Tuesday's plan comes from Tuesday's routes: none.
    run = await plan_business_day(h.rt)
    assert run.facts == {"business_date": TUESDAY} and run.count == 0


async def test_unplanned_visit_approval_and_the_24_hour_sla(world) -> None:
    h = world
    r = await h.post(REP1, "request_unplanned_visit", {"customer_id": "c1"})
    assert r.status_code == 200, r.text
    visit_id = r.json()["visit_id"]
    assert r.json()["approval"] == "pending"
    # The same customer on the same day again: refused.
    r = await h.post(REP1, "request_unplanned_visit", {"customer_id": "c1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_planned"
    # Not checked in before the approval; not in the day plan either.
    r = await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.2, "longitude": 121.4})
    assert r.json()["error"]["code"] == "approval_pending"
    assert (await h.get(REP1, "/day-plan")).json()["visits"] == []

    r = await h.get(SUP1, "/approvals/queue")
    assert [a["visit_id"] for a in r.json()["approvals"]] == [visit_id]
    assert (await h.get(SUP2, "/approvals/queue")).json()["approvals"] == []
    r = await h.get(SM, "/approvals/queue", supervisor_id="sup-1")
    assert [a["visit_id"] for a in r.json()["approvals"]] == [visit_id]

    # 23 hours: not overdue; 24 hours: flagged to rep-1's supervisor.
    h.clock.advance(timedelta(hours=23))
    assert (await flag_overdue_approvals(h.rt)).count == 0
    h.clock.advance(timedelta(hours=1))
    assert (await flag_overdue_approvals(h.rt)).count == 1
    assert (await flag_overdue_approvals(h.rt)).count == 0
    [overdue] = await h.events("visit.approval_overdue")
    assert overdue["data"]["supervisor_id"] == "sup-1" and overdue["data"]["visit_id"] == visit_id
    r = await h.get(SUP1, "/approvals/overdue")
    assert [a["visit_id"] for a in r.json()["approvals"]] == [visit_id]
    assert r.json()["approvals"][0]["approval"]["overdue"] is True

    # Another district's supervisor may not answer; the area manager may.
    r = await h.post(SUP2, "approve_visit", {"visit_id": visit_id})
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await h.post(AM1, "approve_visit", {"visit_id": visit_id, "reason": "key account, quarterly review"})
    assert r.status_code == 200 and r.json()["approval"] == "approved"
    [approved] = await h.events("visit.approved")
    assert (approved["data"]["approver_id"], approved["data"]["reason"]) == ("am-1", "key account, quarterly review")
    assert (await h.get(SUP1, "/approvals/queue")).json()["approvals"] == []


async def test_approving_ones_own_request_is_refused_and_a_rejection_cancels(world) -> None:
    h = world
    r = await h.post(
        SUP1, "request_unplanned_visit", {"customer_id": "c1", "rep_id": "rep-1", "business_date": TUESDAY}
    )
    visit_id = r.json()["visit_id"]
    before = await h.event_count()
    r = await h.post(SUP1, "approve_visit", {"visit_id": visit_id})
    assert r.status_code == 403 and r.json()["error"]["code"] == "own_request"
    r = await h.post(REP1, "approve_visit", {"visit_id": visit_id})
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"
    assert await h.event_count() == before
    r = await h.post(AM1, "reject_visit", {"visit_id": visit_id, "reason": "no budget for extra visits"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await h.get(REP1, f"/visits/{visit_id}")
    assert r.json()["approval"]["rejection_reason"] == "no budget for extra visits"
    # A day in the past cannot be asked for; nor a customer of another rep.
    r = await h.post(REP1, "request_unplanned_visit", {"customer_id": "c1", "business_date": "2026-11-01"})
    assert r.json()["error"]["code"] == "date_in_past"
    r = await h.post(REP3, "request_unplanned_visit", {"customer_id": "c1"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "customer_not_on_rep_list"
