"""The territory lines over HTTP: reps on their own routes and visits, supervisors on their
team's, area managers on their area's, the clerk reads only; out of line is a 403 with the
reason, never an empty answer."""

from __future__ import annotations

import pytest
from visit_testkit import AM1, AM2, CLERK, REP1, REP2, REP3, SM, SUP1, SUP2, Harness

from salesplatform.events import Actor, Role
from visit_service.application.timers import plan_business_day

INSPECTOR = Actor(id="insp-1", role=Role.inspector)


@pytest.fixture
async def visit_id(world) -> str:
    h: Harness = world
    r = await h.post(
        REP1, "define_route", {"route_id": "r1", "route_name": "Monday", "weekdays": [1], "customer_ids": ["c1"]}
    )
    assert r.status_code == 200
    await plan_business_day(h.rt)
    return (await h.get(REP1, "/day-plan")).json()["visits"][0]["visit_id"]


async def test_acting_on_a_visit_follows_the_line(world, visit_id) -> None:
    h = world
    check_in = {"visit_id": visit_id, "latitude": 31.2, "longitude": 121.4}
    before = await h.event_count()
    for actor, code in (
        (REP2, "outside_line"),
        (SUP2, "outside_line"),
        (AM2, "outside_line"),
        (CLERK, "role_not_allowed"),
        (INSPECTOR, "role_not_allowed"),
    ):
        r = await h.post(actor, "check_in", check_in)
        assert r.status_code == 403, (actor.id, r.text)
        assert r.json()["error"]["code"] == code
    r = await h.post(REP2, "check_in", check_in)
    assert "belongs to rep rep-1, not to rep rep-2" in r.json()["error"]["message"]
    r = await h.post(SUP2, "check_in", check_in)
    assert "district d1" in r.json()["error"]["message"]
    assert await h.event_count() == before
    # The team's supervisor may act on the rep's visit.
    r = await h.post(SUP1, "check_in", check_in)
    assert r.status_code == 200


async def test_reading_follows_the_line_and_the_clerk_reads_everything(world, visit_id) -> None:
    h = world
    for actor in (REP1, SUP1, AM1, SM, CLERK):
        assert (await h.get(actor, f"/visits/{visit_id}")).status_code == 200, actor.id
        assert (await h.get(actor, "/day-plan", rep_id="rep-1")).status_code == 200, actor.id
        assert (await h.get(actor, "/customers/c1/visits")).status_code == 200, actor.id
    for actor in (REP2, SUP2, AM2, INSPECTOR):
        for path, params in (
            (f"/visits/{visit_id}", {}),
            ("/day-plan", {"rep_id": "rep-1"}),
            ("/visits", {"rep_id": "rep-1"}),
            ("/customers/c1/visits", {}),
            ("/routes", {"rep_id": "rep-1"}),
            ("/routes/r1", {}),
        ):
            r = await h.get(actor, path, **params)
            assert r.status_code == 403, (actor.id, path, r.text)
            code = "role_not_allowed" if actor is INSPECTOR else "outside_line"
            assert r.json()["error"]["code"] == code and r.json()["error"]["message"]
    r = await h.get(SUP1, "/day-plan")
    assert r.status_code == 422 and r.json()["error"]["details"][0]["field"] == "rep_id"
    r = await h.http.get("/day-plan")
    assert r.status_code == 401


async def test_lists_across_customers_are_for_supervisors_and_up_in_their_scope(world) -> None:
    h = world
    for path in (
        "/approvals/queue",
        "/approvals/overdue",
        "/complaints/open",
        "/complaints/overdue",
        "/key-accounts/without-report",
    ):
        r = await h.get(REP1, path)
        assert r.status_code == 403, path
        assert (await h.get(SUP1, path)).status_code == 200, path
        assert (await h.get(CLERK, path)).status_code == 200, path
        r = await h.get(SUP1, path, district_id="d2")
        assert r.status_code == 403, path
        r = await h.get(AM1, path, district_id="d3")  # d3 lies in area a2
        assert r.status_code == 403, path
        assert (await h.get(AM1, path, district_id="d2")).status_code == 200, path
    r = await h.get(SUP1, "/approvals/queue", supervisor_id="sup-2")
    assert r.status_code == 403


async def test_routes_and_visits_are_made_only_for_reps_in_the_line(world) -> None:
    h = world
    r = await h.post(REP1, "define_route", {"rep_id": "rep-2", "route_name": "x", "weekdays": [1]})
    assert r.status_code == 403
    r = await h.post(SUP2, "define_route", {"rep_id": "rep-1", "route_name": "x", "weekdays": [1]})
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await h.post(SUP1, "define_route", {"route_name": "x", "weekdays": [1]})
    assert r.status_code == 422  # a supervisor names the rep
    r = await h.post(REP3, "request_unplanned_visit", {"customer_id": "c1", "rep_id": "rep-1"})
    assert r.status_code == 403
    r = await h.post(
        CLERK,
        "receive_complaint",
        {"customer_id": "c1", "channel": "phone", "category": "quality", "severity": "low", "description": "x"},
    )
    assert r.status_code == 403
    r = await h.post(
        REP3,
        "receive_complaint",
        {"customer_id": "c1", "channel": "phone", "category": "quality", "severity": "low", "description": "x"},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "outside_line"
    r = await h.post(
        REP1, "plan_visit", {"rep_id": "rep-1", "customer_id": "c1", "business_date": "2026-11-02", "sequence": 1}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_not_allowed"
    r = await h.post(REP2, "record_survey", {"customer_id": "c1", "scores": {"q": 5}, "satisfied": True})
    assert r.status_code == 403
