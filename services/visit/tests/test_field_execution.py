"""Field execution against a real visit service (PostgreSQL, NATS and its object store): check-ins
judged where the outlet is, a route plan for 40 outlets proposed, adopted and followed by the day
plans, photos that round-trip through the object store and go with an erasure or their
retention, the audit against the standard picture, and the monthly route cleanup."""

from __future__ import annotations

import os
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from field_testdata import DEPOT, hand_made_sheets, outlets
from visit_testkit import AM1, CLERK, MONDAY_9AM, REP1, REP2, SM, SUP1, SUP2, Harness

from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import ensure_streams_of
from salesplatform.service import Runtime, http_app
from salesplatform.store import copy_foreign
from visit_service.adapters.photo_store import PhotoStore, PhotoStoreUnavailable
from visit_service.adapters.reads import visit_rules
from visit_service.application.photos import expire_photos
from visit_service.application.route_plans import propose_route_plans
from visit_service.application.timers import plan_business_day
from visit_service.bootstrap import definition
from visit_service.config import FieldConfig, FieldSettings, PhotoRules
from visit_service.domain.check_in import PositionRules
from visit_service.domain.geo import Point
from visit_service.domain.route_planning import (
    DaySheet,
    PlanningProblem,
    PlanningRules,
    frequency_breaches,
    plan_distance_m,
)
from visit_service.domain.standards import CleanupRules

OUTLET_C1 = Point(31.2304, 121.4737)
OUTLET_C3 = Point(31.2400, 121.4900)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(300_000)


def north_of(p: Point, metres: float) -> dict[str, float]:
    return {"latitude": p.latitude + metres / 111_194.93, "longitude": p.longitude}


def position_set(h: Harness, customer_id: str, p: Point):
    return h.customer(
        "customer.position_set",
        customer_id,
        position={"latitude": p.latitude, "longitude": p.longitude},
        source="card",
        personal=None,
        personal_fields=[],
    )


async def day_plan_visits(h: Harness, customer_ids: list[str], route_id: str = "r1") -> dict[str, str]:
    r = await h.post(
        REP1,
        "define_route",
        {"route_id": route_id, "route_name": "Monday", "weekdays": [1], "customer_ids": customer_ids},
    )
    assert r.status_code == 200, r.text
    await plan_business_day(h.rt)
    plan = (await h.get(REP1, "/day-plan")).json()
    return {v["customer_id"]: v["visit_id"] for v in plan["visits"]}


# -- check-ins -------------------------------------------------------------------------------------


async def test_a_check_in_350_m_away_is_flagged_and_the_supervisor_sees_the_list(world) -> None:
    h = world
    await h.feed("customer", position_set(h, "c1", OUTLET_C1), position_set(h, "c3", OUTLET_C3))
    visits = await day_plan_visits(h, ["c1", "c3"])

    far = north_of(OUTLET_C1, 350)
    r = await h.post(REP1, "check_in", {"visit_id": visits["c1"], **far, "accuracy_m": 12})
    assert r.status_code == 200, r.text
    assert r.json()["flags"] == ["far_from_outlet"] and r.json()["position_verified"] is False
    assert r.json()["distance_m"] == pytest.approx(350, abs=1)
    [event] = await h.events("visit.checked_in")
    assert event["data"]["flags"] == ["far_from_outlet"] and event["data"]["accuracy_m"] == 12
    assert event["data"]["distance_m"] == pytest.approx(350, abs=1) and event["data"]["position_verified"] is False

    # The same coordinates, to the last digit, at another outlet: likely faked.
    r = await h.post(REP1, "check_in", {"visit_id": visits["c3"], **far, "accuracy_m": 5})
    assert r.status_code == 200, r.text
    assert "repeated_coordinates" in r.json()["flags"] and r.json()["position_verified"] is False
    card = (await h.get(REP1, f"/visits/{visits['c3']}")).json()["card"]["check_in"]
    assert card["repeated_at"] == [visits["c1"]] and card["accuracy_m"] == 5

    listed = (await h.get(SUP1, "/check-ins/flagged")).json()
    assert [c["visit_id"] for c in listed["check_ins"]] == sorted([visits["c1"], visits["c3"]])
    assert listed["max_distance_m"] == 200
    [group] = listed["repeated_coordinates"]
    assert sorted(group["visit_ids"]) == sorted([visits["c1"], visits["c3"]])
    assert (await h.get(REP1, "/check-ins/flagged")).status_code == 403
    assert (await h.get(SUP2, "/check-ins/flagged", district_id="d1")).status_code == 403

    # The supervisor vouches the rep was at c1: the outlet's position is corrected from it.
    assert (await h.post(REP1, "confirm_check_in", {"visit_id": visits["c1"]})).status_code == 403
    r = await h.post(SUP1, "confirm_check_in", {"visit_id": visits["c1"], "note": "店面已搬到对面"})
    assert r.status_code == 200, r.text
    [confirmed] = await h.events("visit.check_in_confirmed")
    assert confirmed["data"]["latitude"] == far["latitude"] and confirmed["data"]["previously_verified"] is False
    again = await h.post(SUP1, "confirm_check_in", {"visit_id": visits["c1"]})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_confirmed"


async def test_a_check_in_near_the_outlet_is_verified_and_an_unknown_outlet_is_not_judged(world) -> None:
    h = world
    await h.feed("customer", position_set(h, "c1", OUTLET_C1))
    visits = await day_plan_visits(h, ["c1", "c3"])
    r = await h.post(REP1, "check_in", {"visit_id": visits["c1"], **north_of(OUTLET_C1, 120), "accuracy_m": 20})
    assert r.json()["flags"] == [] and r.json()["position_verified"] is True
    r = await h.post(REP1, "check_in", {"visit_id": visits["c3"], "latitude": 31.3, "longitude": 121.5})
    assert r.json()["flags"] == ["outlet_position_unknown"] and r.json()["position_verified"] is None
    listed = (await h.get(SUP1, "/check-ins/flagged")).json()["check_ins"]
    assert [c["visit_id"] for c in listed] == [visits["c3"]]
    bad = await h.post(
        REP1, "check_in", {"visit_id": visits["c1"], "latitude": 31.2, "longitude": 121.4, "accuracy_m": -1}
    )
    assert bad.status_code == 422


# -- route planning ----------------------------------------------------------------------------------


async def feed_outlets(h: Harness) -> None:
    envelopes = []
    for o in outlets():
        envelopes += [
            h.registered(o.customer_id, "rep-1", "d1", "a1"),
            h.customer("customer.approved", o.customer_id, customer_code=f"K-{o.customer_id}", status="active"),
            h.classified(o.customer_id, o.grade),
            position_set(h, o.customer_id, o.position),
        ]
    await h.feed("customer", *envelopes)


async def test_a_plan_for_40_outlets_keeps_their_frequencies_beats_the_hand_made_routes_and_is_followed(world) -> None:
    h = world
    await feed_outlets(h)
    effective_from = "2026-11-09"  # the Monday after today (Monday 2 November)
    for sheet in hand_made_sheets():
        r = await h.post(
            REP1,
            "define_route",
            {
                "route_id": f"hand-{sheet.week}-{sheet.weekday}",
                "route_name": f"hand W{sheet.week} {sheet.weekday}",
                "weekdays": [sheet.weekday],
                "customer_ids": list(sheet.customer_ids),
                "cycle_weeks": 4,
                "first_week": (h.clock.now().date() + timedelta(days=7 * sheet.week)).isoformat(),
            },
        )
        assert r.status_code == 200, r.text

    r = await h.post(
        SUP1,
        "request_route_plan",
        {"rep_id": "rep-1", "start_latitude": DEPOT.latitude, "start_longitude": DEPOT.longitude},
    )
    assert r.status_code == 200, r.text
    plan_id = r.json()["plan_id"]
    assert r.json()["effective_from"] == effective_from
    assert (await propose_route_plans(h.rt)).count == 1

    plan = (await h.get(SUP1, f"/route-plans/{plan_id}")).json()
    assert plan["status"] == "proposed" and plan["cycle_weeks"] == 4, plan
    sheets = [DaySheet(d["week"], d["weekday"], tuple(d["customer_ids"])) for d in plan["days"]]
    problem = PlanningProblem("rep-1", DEPOT, outlets(), PlanningRules())
    assert frequency_breaches(problem, sheets) == []
    hand_made = plan_distance_m(problem, hand_made_sheets())
    assert plan["distance"]["current_m"] == pytest.approx(hand_made, abs=1)
    assert plan["distance"]["proposed_m"] <= plan["distance"]["current_m"]
    assert plan["distance"]["saved_m"] >= 0 and plan["solver"]["name"] == "ortools"
    [proposed] = await h.events("route_plan.proposed")
    assert proposed["data"]["proposed_distance_m"] == plan["distance"]["proposed_m"]

    # The rep cannot adopt a plan; the supervisor does, and it replaces the hand-made routes.
    assert (await h.post(REP1, "adopt_route_plan", {"plan_id": plan_id})).status_code == 403
    r = await h.post(SUP1, "adopt_route_plan", {"plan_id": plan_id})
    assert r.status_code == 200, r.text
    assert len(r.json()["retired_route_ids"]) == 20 and len(r.json()["route_ids"]) == 20
    routes = (await h.get(REP1, "/routes")).json()["routes"]
    assert {x["plan_id"] for x in routes} == {plan_id} and len(routes) == 20
    again = await h.post(SUP1, "adopt_route_plan", {"plan_id": plan_id})
    assert again.status_code == 409 and again.json()["error"]["code"] == "plan_adopted"

    # The day plans follow it: the plan's first Monday, then its second.
    for week in (1, 2):
        h.clock.set(h.clock.now().replace(day=2) + timedelta(days=7 * week))
        await plan_business_day(h.rt)
        day = (await h.get(REP1, "/day-plan")).json()
        expected = next(d["customer_ids"] for d in plan["days"] if d["week"] == week and d["weekday"] == 1)
        assert [v["customer_id"] for v in day["visits"]] == expected


async def test_a_plan_request_with_bad_numbers_changes_nothing_and_an_impossible_one_fails(world) -> None:
    h = world
    await feed_outlets(h)
    before = await h.event_count()
    for payload in (
        {"start_latitude": 95, "start_longitude": 121.4},
        {"start_latitude": 31.2, "start_longitude": 121.4, "workdays": [1, 8]},
        {"start_latitude": 31.2, "start_longitude": 121.4, "day_start": "18:00", "day_end": "09:00"},
        {"start_latitude": 31.2, "start_longitude": 121.4, "distance_matrix": {"points": ["start"], "meters": [[0]]}},
        {
            "start_latitude": 31.2,
            "start_longitude": 121.4,
            "distance_matrix": {"points": ["start", "o00"], "meters": [[0, 1], [1]]},
        },
    ):
        r = await h.post(REP1, "request_route_plan", payload)
        assert r.status_code == 422, (payload, r.text)
    r = await h.post(
        REP1, "request_route_plan", {"start_latitude": 31.2, "start_longitude": 121.4, "effective_from": "2026-11-10"}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_monday"
    assert await h.event_count() == before

    # Four-hour visits do not fit: the planner says so.
    r = await h.post(
        REP1, "request_route_plan", {"start_latitude": 31.2, "start_longitude": 121.4, "visit_minutes": 240}
    )
    plan_id = r.json()["plan_id"]
    await propose_route_plans(h.rt)
    plan = (await h.get(REP1, f"/route-plans/{plan_id}")).json()
    assert plan["status"] == "failed" and "do not fit" in plan["failure"]


# -- photos, the standard picture, erasure and retention ---------------------------------------------


async def upload(h: Harness, visit_id: str, data: bytes, content_type: str = "image/jpeg", kind: str = "shelf"):
    headers = {"Content-Type": content_type, **(await _auth(REP1))}
    return await h.http.post(f"/visits/{visit_id}/photos", params={"kind": kind}, content=data, headers=headers)


async def _auth(actor) -> dict[str, str]:
    from visit_testkit import bearer

    return bearer(actor)


async def store_of(h: Harness) -> PhotoStore:
    store = PhotoStore()
    await store.bind(h.rt.js, h.rt.topology)
    return store


async def test_a_photo_round_trips_through_the_object_store_and_is_gone_after_erasure(world) -> None:
    h = world
    visits = await day_plan_visits(h, ["c1", "c3"])
    visit_id = visits["c1"]
    early = await upload(h, visit_id, JPEG)
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_checked_in"
    await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.47})

    r = await upload(h, visit_id, JPEG)
    assert r.status_code == 200, r.text
    photo = r.json()
    assert photo["size_bytes"] == len(JPEG) and photo["digest"].startswith("SHA-256=")
    content = await h.get(SUP1, f"/visits/{visit_id}/photos/{photo['photo_id']}")
    assert content.status_code == 200 and content.content == JPEG
    assert content.headers["content-type"] == "image/jpeg"
    [attached] = await h.events("visit.photo_attached")
    assert attached["data"]["object_name"] == photo["object_name"] == f"{visit_id}/{photo['photo_id']}"
    assert attached["data"]["digest"] == photo["digest"]
    # The same photo sent again is the same photo.
    assert (await upload(h, visit_id, JPEG)).json()["photo_id"] == photo["photo_id"]
    assert len(await h.events("visit.photo_attached")) == 1
    store = await store_of(h)
    assert await store.get(photo["object_name"]) == JPEG

    # Another outlet's visit keeps its photo through c1's erasure.
    await h.post(REP1, "check_in", {"visit_id": visits["c3"], "latitude": 31.24, "longitude": 121.49})
    other = (await upload(h, visits["c3"], JPEG[:1000], kind="cooler")).json()

    await h.feed("customer", h.customer("customer.personal_data_erased", "c1", reason="本人申请删除"))
    [removed] = await h.events("visit.photo_removed")
    assert removed["data"]["photo_id"] == photo["photo_id"] and removed["data"]["reason"] == "erasure"
    assert await store.get(photo["object_name"]) is None
    gone = await h.get(SUP1, f"/visits/{visit_id}/photos/{photo['photo_id']}")
    assert gone.status_code == 410
    assert await store.get(other["object_name"]) == JPEG[:1000]
    # Reacting again from the start of the log finds nothing more to remove.
    async with h.rt.pool.acquire() as conn:
        await conn.execute("UPDATE reactor_checkpoints SET tx_id = '0', position = 0 WHERE name = 'photo_erasure'")
    assert await h.rt.reactors.run_once() > 0
    assert len(await h.events("visit.photo_removed")) == 1


async def test_photos_over_the_limit_or_not_images_are_refused_and_nothing_is_kept(world) -> None:
    h = world
    visit_id = (await day_plan_visits(h, ["c1"]))["c1"]
    await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.47})
    before = await h.event_count()
    limit = FieldSettings().photo_max_bytes
    too_big = await upload(h, visit_id, b"\xff\xd8\xff" + bytes(limit))
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "photo_too_large"
    text = await upload(h, visit_id, b"hello", content_type="text/plain")
    assert text.status_code == 415 and text.json()["error"]["code"] == "unsupported_photo_type"
    lying = await upload(h, visit_id, JPEG, content_type="image/png")
    assert lying.status_code == 415 and lying.json()["error"]["code"] == "photo_content_mismatch"
    other_rep = await h.http.post(
        f"/visits/{visit_id}/photos",
        params={"kind": "shelf"},
        content=JPEG,
        headers={"Content-Type": "image/jpeg", **(await _auth(REP2))},
    )
    assert other_rep.status_code == 403
    assert await h.event_count() == before
    # A reference to bytes the store does not hold is refused.
    r = await h.post(
        REP1,
        "attach_photo",
        {
            "visit_id": visit_id,
            "photo_id": "p-1",
            "kind": "shelf",
            "object_name": f"{visit_id}/p-1",
            "digest": "SHA-256=AAAA",
            "size_bytes": 10,
            "content_type": "image/jpeg",
        },
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "photo_not_stored"


async def test_the_audit_ticks_the_channels_standard_picture_and_the_supervisor_reviews_the_photo(world) -> None:
    h = world
    items = [
        {"code": "cooler_front", "description": "冰柜在店门口第一位置"},
        {"code": "brand_block", "description": "品牌陈列成块, 与视线平齐"},
        {"code": "price_tags", "description": "每个排面都有价签"},
    ]
    assert (await h.post(SUP1, "define_standard_picture", {"channel": "retail", "items": items})).status_code == 403
    assert (await h.post(SM, "define_standard_picture", {"channel": "retail", "items": items})).status_code == 200
    pictures = (await h.get(CLERK, "/standard-pictures")).json()["standard_pictures"]
    assert [p["channel"] for p in pictures] == ["retail"] and len(pictures[0]["items"]) == 3

    visit_id = (await day_plan_visits(h, ["c1"]))["c1"]
    await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.47})
    photo_id = (await upload(h, visit_id, JPEG, kind="display")).json()["photo_id"]
    audit = {"visit_id": visit_id, "present_skus": ["cola", "water"], "price_tags_ok": True, "display_ok": True}
    ticked = {"cooler_front": True, "brand_block": False, "price_tags": True}
    no_photo = await h.post(REP1, "audit_merchandising", audit | {"checklist": ticked})
    assert no_photo.status_code == 409 and no_photo.json()["error"]["code"] == "photo_required"
    unknown = await h.post(REP1, "audit_merchandising", audit | {"checklist": {"shelf": True}, "photo_ids": [photo_id]})
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "unknown_checklist_item"
    r = await h.post(REP1, "audit_merchandising", audit | {"checklist": ticked, "photo_ids": [photo_id]})
    assert r.status_code == 200, r.text
    assert r.json()["standard_met"] is False and r.json()["missing_items"] == ["brand_block"]
    [audited] = await h.events("visit.merchandising_audited")
    assert audited["data"]["standard_items"] == ["cooler_front", "brand_block", "price_tags"]
    assert audited["data"]["photo_ids"] == [photo_id] and audited["data"]["standard_met"] is False

    queue = (await h.get(SUP1, "/photos/review")).json()["photos"]
    assert [p["photo_id"] for p in queue] == [photo_id]
    assert queue[0]["audit"] == {
        "standard_met": False,
        "missing_items": ["brand_block"],
        "checklist": ticked,
        "cites_this_photo": True,
    }
    assert (await h.get(REP1, "/photos/review")).status_code == 403
    assert (
        await h.post(REP1, "review_photo", {"visit_id": visit_id, "photo_id": photo_id, "verdict": "confirmed"})
    ).status_code == 403
    r = await h.post(
        AM1, "review_photo", {"visit_id": visit_id, "photo_id": photo_id, "verdict": "disputed", "note": "看不到冰柜"}
    )
    assert r.status_code == 200, r.text
    assert (await h.get(SUP1, "/photos/review")).json()["photos"] == []
    reviewed = (await h.get(SUP1, "/photos/review", status="reviewed")).json()["photos"]
    assert reviewed[0]["verdict"] == "disputed" and reviewed[0]["reviewed_by"] == "am-1"


async def test_photos_are_deleted_after_their_retention(world) -> None:
    h = world
    visit_id = (await day_plan_visits(h, ["c1"]))["c1"]
    await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.47})
    photo = (await upload(h, visit_id, JPEG)).json()
    config = FieldSettings().config()
    h.clock.advance(timedelta(days=config.photos.retention_days) - timedelta(minutes=1))
    assert (await expire_photos(h.rt, config=config)).count == 0
    h.clock.advance(timedelta(minutes=1))
    assert (await expire_photos(h.rt, config=config)).count == 1
    assert (await expire_photos(h.rt, config=config)).count == 0
    [removed] = await h.events("visit.photo_removed")
    assert removed["data"]["reason"] == "retention"
    assert await (await store_of(h)).get(photo["object_name"]) is None


# -- the monthly route cleanup -------------------------------------------------------------------------


async def test_the_monthly_route_cleanup_lists_its_four_kinds_and_is_closed_once(world) -> None:
    h = world
    visits = await day_plan_visits(h, ["c1", "c2"])
    await h.post(REP1, "check_in", {"visit_id": visits["c1"], "latitude": 31.23, "longitude": 121.47})
    h.clock.advance(timedelta(days=40))  # Saturday 12 December
    await h.feed(
        "customer",
        h.registered("c6", "rep-1", "d1", "a1"),
        h.customer("customer.approved", "c6", customer_code="K-c6", status="prospect"),
        h.customer("customer.status_changed", "c2", status="lost", reason="关店"),
    )
    r = await h.get(SUP1, "/route-cleanup", month="2026-12")
    assert r.status_code == 200, r.text
    report = r.json()
    sections = {k: [o["customer_id"] for o in v] for k, v in report["sections"].items()}
    # c1 was last visited 40 days ago; c2 is lost but on the route; c3 (rep-1) and c5
    # (rep-2) are on no route; c6 was approved today.
    assert sections == {
        "no_route": ["c3", "c5"],
        "unvisited": ["c1"],
        "inactive_on_route": ["c2"],
        "new_waiting": ["c6"],
    }
    assert report["closed"] is None and report["counts"]["no_route"] == 2
    assert (await h.get(REP1, "/route-cleanup", month="2026-12")).status_code == 403
    assert (await h.post(REP1, "close_route_cleanup", {"month": "2026-12"})).status_code == 403
    future = await h.post(SUP1, "close_route_cleanup", {"month": "2027-01"})
    assert future.status_code == 409 and future.json()["error"]["code"] == "month_in_future"
    r = await h.post(SUP1, "close_route_cleanup", {"month": "2026-12", "notes": "c2 下线, c6 加入线路1"})
    assert r.status_code == 200 and r.json()["counts"] == {
        "no_route": 2,
        "unvisited": 1,
        "inactive_on_route": 1,
        "new_waiting": 1,
    }
    again = await h.post(SUP1, "close_route_cleanup", {"month": "2026-12"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_closed"
    closed = (await h.get(SUP1, "/route-cleanup", month="2026-12")).json()["closed"]
    assert closed["closed_by"] == "sup-1" and closed["counts"]["unvisited"] == 1
    [event] = await h.events("route_cleanup.closed")
    assert event["data"]["outlets"]["inactive_on_route"] == ["c2"]


async def test_an_erasure_waits_while_the_photo_store_is_unreachable_and_is_never_lost(world, monkeypatch) -> None:
    h = world
    visit_id = (await day_plan_visits(h, ["c1"]))["c1"]
    await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.47})
    photo = (await upload(h, visit_id, JPEG)).json()

    async def unreachable(store: PhotoStore, name: str) -> bool:
        raise PhotoStoreUnavailable("the photo store cannot be reached")

    monkeypatch.setattr(PhotoStore, "delete", unreachable)
    async with h.rt.pool.acquire() as conn:
        async with conn.transaction():
            await copy_foreign(
                conn, h.rt.topology.of("customer").event_stream, [h.customer("customer.personal_data_erased", "c1")]
            )
    await h.rt.runner.run_once()
    for _ in range(3):
        with pytest.raises(PhotoStoreUnavailable):
            await h.rt.reactors.run_once()
    assert await h.events("visit.photo_removed") == []
    async with h.rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_failures") == 0
    store = await store_of(h)
    assert await store.get(photo["object_name"]) == JPEG

    monkeypatch.undo()  # the store is back
    await h.rt.reactors.run_once()
    [removed] = await h.events("visit.photo_removed")
    assert removed["data"]["reason"] == "erasure"
    assert await store.get(photo["object_name"]) is None


async def test_the_routes_answer_with_the_numbers_the_service_was_defined_with(visit_settings) -> None:
    """The routes are built once, with their module; each request reads the running service's
    field numbers and photo store (its definition's rules), not the defaults."""
    config = FieldConfig(
        positions=PositionRules(max_distance_m=75.0),
        photos=PhotoRules(max_bytes=1024),
        cleanup=CleanupRules(unvisited_days=45, new_outlet_days=10),
    )
    clock = FixedClock(MONDAY_9AM)
    await ensure_streams_of(visit_settings.nats_url, visit_settings.stream_prefix, ("customer", "orders"))
    async with Runtime(definition("Asia/Shanghai", config=config), visit_settings, clock=clock, run_timers=False) as rt:
        transport = httpx.ASGITransport(app=http_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://visit") as client:
            h = Harness(rt, clock, client)
            await h.seed()
            flagged = await h.get(SUP1, "/check-ins/flagged")
            assert flagged.status_code == 200, flagged.text
            assert flagged.json()["max_distance_m"] == 75.0
            cleanup = await h.get(SUP1, "/route-cleanup", month="2026-11")
            assert cleanup.status_code == 200, cleanup.text
            assert cleanup.json()["rules"] == {"unvisited_days": 45, "new_outlet_days": 10}
            # Over this service's 1 KiB (well under the default 5 MiB): refused before anything.
            too_big = await upload(h, "any-visit", b"\xff\xd8\xff" + bytes(2048))
            assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "photo_too_large"


def test_a_definition_without_the_visit_rules_is_named_in_the_error() -> None:
    runtime = SimpleNamespace(definition=SimpleNamespace(rules=None))
    with pytest.raises(TypeError, match="carries None as its rules, not VisitRules"):
        visit_rules(runtime)
