"""A visit over HTTP from check-in to check-out, the order handover on NATS, the visit card
queries, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import orjson
from visit_testkit import CLERK, REP1, SUP1, Harness, bearer

from visit_service.application.timers import plan_business_day
from visit_service.domain.planning import order_id_for

MONDAY = "2026-11-02"
T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


async def planned_visit(h: Harness, customer_id: str = "c1") -> str:
    r = await h.post(
        REP1, "define_route", {"route_id": "r1", "route_name": "Monday", "weekdays": [1], "customer_ids": [customer_id]}
    )
    assert r.status_code == 200, r.text
    await plan_business_day(h.rt)
    plan = (await h.get(REP1, "/day-plan")).json()
    return plan["visits"][0]["visit_id"]


async def order_history(h: Harness) -> None:
    """c1's orders, oldest first: the oldest falls outside the last three."""
    await h.feed(
        "orders",
        h.order_placed("o0", "c1", {"cola": 100}, T0),
        h.order_placed("o1", "c1", {"cola": 12, "juice": 3}, T0 + timedelta(days=7)),
        h.order_placed("o2", "c1", {"cola": 8}, T0 + timedelta(days=14)),
        h.order_placed("o3", "c1", {"cola": 10, "water": 4}, T0 + timedelta(days=21)),
        h.order_placed("o-other", "c4", {"cola": 50}, T0 + timedelta(days=22)),
    )


async def test_a_visit_through_the_eight_steps_hands_the_order_over(world) -> None:
    h = world
    await order_history(h)
    visit_id = await planned_visit(h)

    r = await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.47})
    assert r.status_code == 200 and r.json()["status"] == "checked_in"

    r = await h.post(
        REP1,
        "count_stock",
        {
            "visit_id": visit_id,
            "lines": [
                {"sku": "cola", "shelf_qty": 2, "store_qty": 3},
                {"sku": "sprite", "shelf_qty": 4, "store_qty": 0},
            ],
        },
    )
    assert r.status_code == 200, r.text
    # usual (last 3 orders): cola 10, water 4/3, juice 1; retail requires cola and water.
    # cola 15 − 5 = 10; juice 1.5 → 2; water 2 (and required, missing: ≥ 2); sprite no history.
    assert r.json()["suggested"] == [
        {"sku": "cola", "quantity": 10},
        {"sku": "juice", "quantity": 2},
        {"sku": "water", "quantity": 2},
    ]

    r = await h.post(
        REP1,
        "audit_merchandising",
        {"visit_id": visit_id, "present_skus": ["cola", "sprite"], "price_tags_ok": True, "display_ok": False},
    )
    assert r.status_code == 200 and r.json()["missing_skus"] == ["water"]
    for cooler, light in (("k-1", True), ("k-2", False)):
        r = await h.post(
            REP1,
            "check_cooler",
            {
                "visit_id": visit_id,
                "cooler_id": cooler,
                "at_outlet": True,
                "best_position": True,
                "powered": True,
                "light_on": light,
                "clean": True,
                "working": True,
                "required_packs": True,
                "misused": False,
            },
        )
        assert r.status_code == 200, r.text
    r = await h.post(
        REP1,
        "observe_competitor",
        {
            "visit_id": visit_id,
            "brand": "Rival",
            "product": "Rival Cola",
            "price_fen": 250,
            "promotion": "2 for 1",
            "stock_age_days": 40,
        },
    )
    assert r.status_code == 200

    r = await h.post(
        REP1,
        "take_order",
        {
            "visit_id": visit_id,
            "lines": [
                {"sku": "cola", "quantity": 10, "unit_price_fen": 290},
                {"sku": "juice", "quantity": 2},
                {"sku": "water", "quantity": 3},
            ],
        },
    )
    assert r.status_code == 200, r.text
    order_id = r.json()["order_id"]
    assert order_id == order_id_for(visit_id)

    r = await h.post(REP1, "confirm_delivery", {"visit_id": visit_id, "delivered": True})
    assert r.status_code == 200 and r.json()["order_id"] == "o3"
    r = await h.post(REP1, "check_out", {"visit_id": visit_id})
    assert r.status_code == 200 and r.json()["successful"] is True

    # The handover: visit.order_taken on NATS with exactly the contract's fields.
    subject = h.rt.topology.event_subject("visit.order_taken")
    msg = None
    for _ in range(200):
        try:
            msg = await h.rt.js.get_last_msg(h.rt.topology.event_stream, subject)
            break
        except Exception:  # noqa: BLE001 - not published yet: the relay runs after commit
            await asyncio.sleep(0.05)
    assert msg is not None
    body = orjson.loads(msg.data)
    assert body["event_type"] == "visit.order_taken" and body["stream_id"] == f"visit-{visit_id}"
    assert body["data"] == {
        "visit_id": visit_id,
        "rep_id": "rep-1",
        "customer_id": "c1",
        "business_date": MONDAY,
        "order_id": order_id,
        "lines": [
            {"sku": "cola", "quantity": 10, "unit_price_fen": 290},
            {"sku": "juice", "quantity": 2, "unit_price_fen": None},
            {"sku": "water", "quantity": 3, "unit_price_fen": None},
        ],
        "suggested_adopted": True,
    }
    assert msg.headers["Nats-Msg-Id"] == body["event_id"]

    # Every visit event names the visit, rep, customer and business day.
    for e in await h.events():
        if e["event_type"].startswith("visit."):
            assert {"visit_id", "rep_id", "customer_id", "business_date"} <= set(e["data"]), e

    # The visit card.
    card = (await h.get(SUP1, f"/visits/{visit_id}")).json()
    assert card["status"] == "checked_out" and card["successful"] is True
    assert card["customer_name"] == "Outlet c1"
    steps = card["card"]
    assert steps["check_in"]["latitude"] == 31.23
    assert steps["stock"][0] == {"sku": "cola", "shelf_qty": 2, "store_qty": 3}
    assert steps["merchandising"]["missing_skus"] == ["water"] and steps["merchandising"]["display_ok"] is False
    assert [c["compliant"] for c in steps["coolers"]] == [True, False]
    assert steps["competitors"][0]["brand"] == "Rival"
    assert steps["order"]["order_id"] == order_id and steps["order"]["suggested_adopted"] is True
    assert steps["previous_delivery"] == {"order_id": "o3", "delivered": True}
    assert steps["check_out"] is not None

    r = await h.get(REP1, "/visits", **{"from": "2026-11-01", "to": "2026-11-30"})
    assert r.json()["total"] == 1 and r.json()["visits"][0]["visit_id"] == visit_id
    r = await h.get(CLERK, "/customers/c1/visits")
    assert [v["visit_id"] for v in r.json()["visits"]] == [visit_id]
    assert r.json()["visits"][0]["card"]["order"]["order_id"] == order_id


async def test_bad_input_gets_clear_codes_and_changes_nothing(world) -> None:
    h = world
    visit_id = await planned_visit(h)
    before = await h.event_count()

    async def refused(name: str, payload: dict, status: int, code: str) -> dict:
        r = await h.post(REP1, name, {"visit_id": visit_id, **payload})
        assert r.status_code == status, (name, r.text)
        assert r.json()["error"]["code"] == code, (name, r.text)
        return r.json()["error"]

    await refused("check_out", {}, 409, "not_checked_in")
    await refused("take_order", {"lines": [{"sku": "cola", "quantity": 1}]}, 409, "not_checked_in")
    await refused("count_stock", {"lines": [{"sku": "cola", "shelf_qty": 1, "store_qty": 0}]}, 409, "not_checked_in")
    assert await h.event_count() == before

    r = await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.2, "longitude": 121.4})
    assert r.status_code == 200
    before = await h.event_count()
    await refused("check_in", {"latitude": 31.2, "longitude": 121.4}, 409, "already_checked_in")
    error = await refused(
        "count_stock", {"lines": [{"sku": "fanta", "shelf_qty": 1, "store_qty": 0}]}, 409, "unknown_sku"
    )
    assert error["field"] == "lines"
    error = await refused(
        "count_stock", {"lines": [{"sku": "cola", "shelf_qty": -1, "store_qty": 0}]}, 422, "validation_failed"
    )
    assert error["details"][0]["field"] == "lines.0.shelf_qty"
    await refused("take_order", {"lines": [{"sku": "cola", "quantity": -2}]}, 422, "validation_failed")
    await refused("take_order", {"lines": [{"sku": "fanta", "quantity": 2}]}, 409, "unknown_sku")
    await refused("check_in", {"latitude": 91, "longitude": 0}, 422, "validation_failed")
    await refused("confirm_delivery", {"delivered": True}, 409, "no_previous_order")
    await refused("confirm_delivery", {"order_id": "nope", "delivered": True}, 409, "order_not_for_customer")
    await refused("check_out", {}, 409, "order_outcome_missing")
    r = await h.post(REP1, "check_in", {"visit_id": "no-such-visit", "latitude": 0, "longitude": 0})
    assert r.status_code == 404 and r.json()["error"]["code"] == "visit_not_found"
    assert await h.event_count() == before

    # A refusal is an outcome; the retried command with the same key returns the first result.
    headers_key = {"Idempotency-Key": "refuse-1"}
    first = await h.http.post(
        "/commands/refuse_order",
        json={"visit_id": visit_id, "reason": "shop closing"},
        headers=bearer(REP1) | headers_key,
    )
    again = await h.http.post(
        "/commands/refuse_order",
        json={"visit_id": visit_id, "reason": "shop closing"},
        headers=bearer(REP1) | headers_key,
    )
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert len(await h.events("visit.order_refused")) == 1
    r = await h.post(REP1, "check_out", {"visit_id": visit_id})
    assert r.json()["successful"] is False


async def test_a_visit_only_on_its_business_day(world) -> None:
    h = world
    visit_id = await planned_visit(h)
    h.clock.advance(timedelta(days=1))
    r = await h.post(REP1, "check_in", {"visit_id": visit_id, "latitude": 31.2, "longitude": 121.4})
    assert r.status_code == 409 and r.json()["error"]["code"] == "visit_not_today"


async def test_the_published_contract_lists_every_event_and_command(h) -> None:
    events = (await h.http.get("/schemas/events")).json()
    taken = events["visit.order_taken"]
    assert set(taken["properties"]) == {
        "visit_id",
        "rep_id",
        "customer_id",
        "business_date",
        "order_id",
        "lines",
        "suggested_adopted",
    }
    assert {
        "route.defined",
        "visit.missed",
        "complaint.sla_breached",
        "survey.recorded",
        "key_account_report.filed",
        "coaching.recorded",
        "delivery.spot_checked",
    } <= set(events)
    commands = (await h.http.get("/schemas/commands")).json()
    assert {"check_in", "take_order", "approve_visit", "receive_complaint", "record_survey"} <= set(commands)
    assert (await h.http.get("/openapi.json")).status_code == 200
