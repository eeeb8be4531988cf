"""The HTTP side: commands with bearer tokens, and every query with its territory line."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from orders_testkit import (
    AREA_MANAGER,
    CLERK,
    CUSTOMER_SERVICE,
    INSPECTOR,
    OTHER_REP,
    REP,
    SALES_MANAGER,
    SIGNING_KEY,
    START,
    SUPERVISOR,
    SYSTEM,
    add_customer,
    define_skus,
    feed_customers,
    ok,
)

from salesplatform.auth import mint
from salesplatform.events import Actor, Envelope, Role
from salesplatform.service import http_app

OTHER_SUPERVISOR = Actor(id="s2", role=Role.supervisor, district="d2", area="a1")


@pytest.fixture
async def http(rt):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://orders") as client:
        yield client


def auth(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(actor, SIGNING_KEY)}"}


async def get(http, actor: Actor, path: str, **params) -> httpx.Response:
    return await http.get(path, params=params, headers=auth(actor))


async def staff(rt, staff_id: str, district: str) -> None:
    await feed_customers(
        rt,
        [
            Envelope(
                event_id=uuid.uuid4(),
                event_type="staff.assigned",
                schema_version=1,
                stream_id=f"staff-{staff_id}",
                stream_version=1,
                occurred_at=START,
                recorded_at=START,
                actor=CUSTOMER_SERVICE,
                data={
                    "staff_id": staff_id,
                    "name": staff_id,
                    "role": "rep",
                    "district_id": district,
                    "area_id": "a1",
                    "supervisor_id": None,
                },
            )
        ],
    )


async def test_commands_over_http_need_a_token_and_answer_with_error_codes(rt, http) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    body = {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 2}]}
    assert (await http.post("/commands/place_order", json=body)).status_code == 401
    placed = await http.post("/commands/place_order", json=body, headers=auth(REP))
    assert placed.status_code == 200 and placed.json()["status"] == "confirmed"
    bad = await http.post(
        "/commands/place_order", json={**body, "lines": [{"sku": "COLA", "quantity": 0}]}, headers=auth(REP)
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "lines.0.quantity"
    unknown = await http.post(
        "/commands/place_order", json={**body, "lines": [{"sku": "GIN", "quantity": 1}]}, headers=auth(REP)
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_sku"
    schemas = (await http.get("/schemas/events")).json()
    assert {"order.placed", "invoice.issued", "return.requested", "promotion.cost_incurred"} <= set(schemas)


async def test_order_queries_follow_the_territory_line(rt, http) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    await add_customer(rt, "c2", rep_id="r2")
    await add_customer(rt, "c3", rep_id="r3", district_id="d2")
    await staff(rt, "r2", "d1")
    await staff(rt, "r3", "d2")
    mine = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}]}, REP)
    await ok(rt, "place_order", {"customer_id": "c2", "lines": [{"sku": "COLA", "quantity": 1}]}, OTHER_REP)
    await ok(rt, "place_order", {"customer_id": "c3", "lines": [{"sku": "TEA", "quantity": 1}]}, SYSTEM)

    one = await get(http, REP, f"/orders/{mine['order_id']}")
    assert one.status_code == 200
    body = one.json()
    assert [h["event_type"] for h in body["history"]] == ["order.placed", "order.confirmed"]
    assert body["history"][0]["actor"]["id"] == "r1" and body["lines"][0]["sku"] == "COLA"
    assert (await get(http, OTHER_REP, f"/orders/{mine['order_id']}")).status_code == 403
    assert (await get(http, CLERK, f"/orders/{mine['order_id']}")).status_code == 200
    assert (await get(http, REP, "/orders/nope")).status_code == 404

    assert [o["customer_id"] for o in (await get(http, REP, "/orders")).json()["orders"]] == ["c1"]
    assert {o["customer_id"] for o in (await get(http, SUPERVISOR, "/orders")).json()["orders"]} == {"c1", "c2"}
    assert (await get(http, SALES_MANAGER, "/orders", status="confirmed")).json()["total"] == 3
    assert (await get(http, REP, "/orders", customer_id="c2")).status_code == 403
    assert (await get(http, REP, "/orders", rep_id="r2")).status_code == 403
    assert (await get(http, SUPERVISOR, "/orders", rep_id="r3")).status_code == 403
    by_rep = await get(http, SUPERVISOR, "/orders", rep_id="r2")
    assert [o["customer_id"] for o in by_rep.json()["orders"]] == ["c2"]
    dated = await get(http, SALES_MANAGER, "/orders", date_from="2026-03-03")
    assert dated.json()["total"] == 0


async def test_a_token_without_its_territory_is_refused_not_answered_empty(rt, http) -> None:
    """The same answer as every other service: 403 no_territory, never an empty list."""
    for actor in (Actor(id="s9", role=Role.supervisor), Actor(id="a9", role=Role.area_manager)):
        for path in ("/orders", "/returns"):
            r = await get(http, actor, path)
            assert r.status_code == 403, (actor.id, path, r.text)
            assert r.json()["error"]["code"] == "no_territory"


async def test_approval_queue_per_role(rt, http) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1", credit_limit_fen=None)
    cheap = await ok(
        rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1, "unit_price_fen": 280}]}, REP
    )
    big = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 40_000}]}, REP)
    queue = (await get(http, AREA_MANAGER, "/approvals")).json()
    assert queue["role"] == "area_manager" and [o["order_id"] for o in queue["orders"]] == [cheap["order_id"]]
    top = (await get(http, SALES_MANAGER, "/approvals")).json()
    assert [o["order_id"] for o in top["orders"]] == [big["order_id"]]
    assert (await get(http, SALES_MANAGER, "/approvals", role="area_manager")).status_code == 200
    assert (await get(http, SUPERVISOR, "/approvals", role="sales_manager")).status_code == 403


async def test_returns_wait_in_the_queue_of_the_role_their_route_names_until_decided(rt, http, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    await add_customer(rt, "c9", rep_id="r9", district_id="d9", area_id="a9")

    async def delivered(customer_id: str, rep: Actor) -> str:
        placed = await ok(
            rt, "place_order", {"customer_id": customer_id, "lines": [{"sku": "COLA", "quantity": 10}]}, rep
        )
        await ok(rt, "deliver_order", {"order_id": placed["order_id"]}, SYSTEM)
        return placed["order_id"]

    async def request(order_id: str, reason: str, rep: Actor, **extra: str) -> str:
        payload = {"order_id": order_id, "scope": "part", "reason": reason, "lines": [{"sku": "COLA", "quantity": 1}]}
        clock.advance(timedelta(minutes=1))  # oldest request first
        return (await ok(rt, "request_return", {**payload, **extra}, rep))["return_id"]

    far_rep = Actor(id="r9", role=Role.rep, district="d9", area="a9")
    damaged = await request(await delivered("c1", REP), "transit_damage", REP)
    defect = await request(await delivered("c1", REP), "quality_defect", REP)
    wrong = await request(await delivered("c1", REP), "wrong_shipment", REP, wrong_shipment_kind="model")
    elsewhere = await request(await delivered("c9", far_rep), "transit_damage", far_rep)

    async def queue(actor: Actor, **params: str) -> list[str]:
        r = await get(http, actor, "/approvals/returns", **params)
        assert r.status_code == 200, r.text
        return [x["return_id"] for x in r.json()["returns"]]

    # The area manager decides transit damage and part quality defects, the latter once inspected;
    # another area's return is not in the queue.
    assert await queue(AREA_MANAGER) == [damaged]
    await ok(rt, "record_return_inspection", {"return_id": defect, "confirmed": True}, INSPECTOR)
    assert await queue(AREA_MANAGER) == [damaged, defect]
    listed = (await get(http, AREA_MANAGER, "/approvals/returns")).json()["returns"]
    assert listed[0]["lines"] == [{"sku": "COLA", "quantity": 1, "amount_fen": 300}]
    assert (listed[0]["rep_id"], listed[0]["approver_role"]) == ("r1", "area_manager")
    assert await queue(SALES_MANAGER) == [wrong]
    assert await queue(SALES_MANAGER, role="area_manager") == [damaged, defect, elsewhere]
    assert (await get(http, AREA_MANAGER, "/approvals/returns", role="sales_manager")).status_code == 403
    assert await queue(SUPERVISOR) == []
    # A decision takes it out of the queue.
    await ok(rt, "approve_return", {"return_id": damaged}, AREA_MANAGER)
    await ok(rt, "reject_return", {"return_id": defect, "reason": "outside the return period"}, AREA_MANAGER)
    assert await queue(AREA_MANAGER) == []


async def test_overdue_deliveries_receivables_ageing_and_returns(rt, http, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1", payment_terms_days=30)
    late = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}, REP)
    done = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "TEA", "quantity": 10}]}, REP)
    await ok(rt, "deliver_order", {"order_id": done["order_id"]}, SYSTEM)
    clock.advance(timedelta(hours=30))
    overdue = (await get(http, SUPERVISOR, "/deliveries/overdue")).json()
    assert [o["order_id"] for o in overdue["orders"]] == [late["order_id"]]
    await ok(rt, "deliver_order", {"order_id": late["order_id"]}, SYSTEM)
    await ok(rt, "record_payment", {"customer_id": "c1", "amount_fen": 1000}, REP)

    ageing = (await get(http, REP, "/receivables", as_of="2026-04-20")).json()
    [row] = ageing["customers"]
    # 4,000 issued 2 Mar (49 days, past its 1 Apr due date), 1,000 of it paid; 3,000 issued 3 Mar
    assert (row["customer_id"], row["open_fen"], row["overdue_fen"]) == ("c1", 6000, 6000)
    assert (row["days_0_30_fen"], row["days_31_60_fen"], row["days_61_90_fen"], row["days_over_90_fen"]) == (
        0,
        6000,
        0,
        0,
    )
    assert ageing["totals"]["open_fen"] == 6000
    detail = (await get(http, REP, "/receivables/c1", as_of="2026-03-10")).json()
    assert detail["ageing"]["days_0_30_fen"] == 6000 and detail["ageing"]["overdue_fen"] == 0
    assert detail["payments"][0]["allocations"] == [
        {"invoice_id": detail["invoices"][0]["invoice_id"], "amount_fen": 1000}
    ]
    assert (await get(http, OTHER_REP, "/receivables/c1")).status_code == 403
    assert (await get(http, OTHER_REP, "/receivables")).json()["customers"] == []

    ret = await ok(
        rt,
        "request_return",
        {
            "order_id": late["order_id"],
            "lines": [{"sku": "COLA", "quantity": 1}],
            "scope": "part",
            "reason": "transit_damage",
        },
        REP,
    )
    listed = (await get(http, REP, "/returns", status="requested", reason="transit_damage")).json()
    assert [r["return_id"] for r in listed["returns"]] == [ret["return_id"]]
    assert listed["counts"] == [{"status": "requested", "reason": "transit_damage", "n": 1, "amount_fen": 300}]
    assert (await get(http, REP, "/returns", reason="quality_defect")).json()["returns"] == []
    one = (await get(http, INSPECTOR, f"/returns/{ret['return_id']}")).json()
    assert one["return"]["status"] == "requested" and one["history"][0]["event_type"] == "return.requested"
    assert (await get(http, OTHER_REP, f"/returns/{ret['return_id']}")).status_code == 403


async def test_catalogue_promotions_and_visit_order_problems(rt, http) -> None:
    await define_skus(rt)
    await ok(
        rt,
        "set_sku_price",
        {"sku": "COLA", "area_id": "a1", "list_price_fen": 310, "floor_price_fen": 260},
        SALES_MANAGER,
    )
    await ok(rt, "set_required_skus", {"channel": "retail", "skus": ["COLA", "TEA"]}, SALES_MANAGER)
    await ok(
        rt,
        "plan_promotion",
        {
            "name": "Tea week",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-07",
            "skus": ["TEA"],
            "discount_percent": 5,
            "budget_fen": 10_000,
        },
        SALES_MANAGER,
    )
    skus = (await get(http, REP, "/catalogue/skus")).json()["skus"]
    cola = next(s for s in skus if s["sku"] == "COLA")
    assert cola["area_prices"] == [{"area_id": "a1", "list_price_fen": 310, "floor_price_fen": 260}]
    assert (await get(http, REP, "/catalogue/required-skus")).json()["channels"] == {"retail": ["COLA", "TEA"]}
    [promotion] = (await get(http, REP, "/promotions")).json()["promotions"]
    assert (promotion["name"], promotion["spent_fen"], promotion["budget_fen"]) == ("Tea week", 0, 10_000)
    assert (await get(http, REP, "/visit-orders")).status_code == 403
    assert (await get(http, SUPERVISOR, "/visit-orders")).json() == {"parked": [], "refused": []}
    assert (await get(http, REP, "/catalogue/skus")).status_code == 200
    assert (await get(http, OTHER_SUPERVISOR, "/deliveries/overdue")).json()["orders"] == []
