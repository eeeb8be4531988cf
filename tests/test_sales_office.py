"""End to end across services: a sales office's customer received by one rep, released after 7
days without a follow-up, received again by another rep, who is credited when the customer pays
a deposit and signs; the customer service keeps a customer with a unit reserved, and the
reports credit the second rep. Only public commands, queries and NATS in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from running_system import eventually

from customer_service.application.timers import release_neglected_leads
from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from orders_service.queries import sales_control
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.clock import FixedClock, business_date
from salesplatform.events import Actor, Role

MANAGER = Actor(id="m-1", role=Role.sales_manager)
R1 = Actor(id="r-1", role=Role.rep, district="d-1", area="a-1")
R2 = Actor(id="r-2", role=Role.rep, district="d-1", area="a-1")
DESK = Actor(id="k-1", role=Role.clerk)
PHONE = "13912345678"


async def test_a_sale_after_a_release_counts_for_the_rep_who_received_the_customer_again(start_service) -> None:
    clock = FixedClock(datetime(2026, 5, 4, 1, 0, tzinfo=UTC))  # Monday 09:00 in Shanghai
    customer = await start_service(customer_definition(), clock=clock)
    orders = await start_service(orders_definition(), clock=clock)
    reporting = await start_service(reporting_definition(), clock=clock)

    await customer.ok(MANAGER, "define_division", {"division_id": "dv-1", "name": "East"})
    await customer.ok(MANAGER, "define_area", {"area_id": "a-1", "name": "Pudong", "division_id": "dv-1"})
    await customer.ok(MANAGER, "define_district", {"district_id": "d-1", "name": "滨江", "area_id": "a-1"})
    for rep in ("r-1", "r-2"):
        await customer.ok(MANAGER, "assign_staff", {"staff_id": rep, "name": rep, "role": "rep", "district_id": "d-1"})
    await customer.ok(MANAGER, "open_sales_office", {"project_id": "P-1", "name": "滨江一号", "district_id": "d-1"})

    # Units wait for the office to reach the orders service.
    units = [
        {
            "unit_id": f"P-1-{n}",
            "building": "1",
            "unit_no": f"{n}",
            "floor": n // 100,
            "layout_name": "A",
            "rooms": 3,
            "halls": 2,
            "bathrooms": 2,
            "area_sqm": "120.00",
            "orientation": "south",
        }
        for n in (801, 802)
    ]

    async def defined():
        r = await orders.command(MANAGER, "define_units", {"project_id": "P-1", "units": units})
        return r.status_code == 200

    await eventually(defined)
    prices = [{"unit_id": u["unit_id"], "unit_price_fen": 25_000_00, "total_price_fen": 300_000_000} for u in units]
    await orders.ok(MANAGER, "issue_price_list", {"project_id": "P-1", "release": "首开", "prices": prices})

    # Day 1: r-1 receives the walk-in, and never follows them up.
    await customer.ok(R1, "sign_in", {"project_id": "P-1"})
    first = await customer.ok(DESK, "receive_walk_in", {"project_id": "P-1", "phone": PHONE, "name": "周"})
    assert (first["rep_id"], first["basis"]) == ("r-1", "turn")
    await customer.ok(R1, "finish_reception", {"project_id": "P-1"})

    # Day 9: the 7 days ran out; the timer releases the customer.
    clock.advance(timedelta(days=8))
    await customer.runtime.runner.run_once()
    assert (await release_neglected_leads(customer.runtime)).of("release_lead") == [first["lead_id"]]

    # Day 10: the customer comes again; r-2 is next in turn and receives them as new.
    clock.advance(timedelta(days=1))
    await customer.ok(R2, "sign_in", {"project_id": "P-1"})
    await customer.ok(R1, "sign_in", {"project_id": "P-1"})
    again = await customer.ok(DESK, "receive_walk_in", {"project_id": "P-1", "phone": PHONE})
    assert (again["lead_id"], again["rep_id"], again["basis"], again["new_lead"]) == (
        first["lead_id"],
        "r-2",
        "turn",
        True,
    )

    # The deposit, once the orders service knows the customer is r-2's.
    deposit = {
        "unit_id": "P-1-801",
        "lead_id": first["lead_id"],
        "amount_fen": 5_000_000,
        "method": "card",
        "source_of_funds": "family_funds",
    }

    # Wait for it first: a deposit taken while the orders service still saw r-1's lead would be
    # credited to r-1, and kept under its idempotency key.
    async def knows_r2() -> bool:
        async with orders.runtime.pool.acquire() as conn:
            lead = await sales_control.lead(conn, first["lead_id"])
        return lead is not None and lead.rep_id == "r-2"

    await eventually(knows_r2)
    r = await orders.command(MANAGER, "take_deposit", deposit, **{"Idempotency-Key": "deposit-1"})
    assert r.status_code == 200, r.text
    taken = r.json()
    assert taken["credited_rep_id"] == "r-2"
    assert taken["status"] == "reserved" and taken["receipt"]["amount_in_words"] == "人民币伍万元整"
    await orders.ok(
        R2,
        "fill_subscription",
        {"unit_id": "P-1-801", "subscription_no": "RG-1", "payment_plan": "full", "contract_due_on": "2026-05-20"},
    )
    signed = await orders.ok(MANAGER, "sign_subscription", {"unit_id": "P-1-801"})
    assert signed["credited_rep_id"] == "r-2"

    # The customer service knows a unit is reserved for the customer: the 7 days do not release them.
    async def deal_known():
        async with customer.runtime.pool.acquire() as conn:
            return await conn.fetchval(
                "SELECT count(*) FROM events WHERE origin IS NOT NULL AND event_type = 'unit.reserved'"
                " AND data->>'lead_id' = $1",
                first["lead_id"],
            )

    await eventually(deal_known)
    clock.advance(timedelta(days=9))
    await customer.runtime.runner.run_once()
    run = await release_neglected_leads(customer.runtime)
    assert first["lead_id"] not in run.of("release_lead")
    lead = (await customer.get(MANAGER, f"/leads/{first['lead_id']}")).json()
    assert (lead["stage"], lead["rep_id"]) == ("walk_in", "r-2")

    # The reports credit r-2 with the subscription, and count it for r-2's line of day 10.
    day10 = business_date(datetime(2026, 5, 13, 2, 0, tzinfo=UTC)).isoformat()

    async def subscribed():
        r = await reporting.get(
            MANAGER, "/reports/office-sales", **{"from": "2026-05-01"}, to="2026-05-31", group_by="rep"
        )
        items = r.json().get("items", []) if r.status_code == 200 else []
        return items if items and items[0]["subscriptions"] == 1 else None

    sales = await eventually(subscribed)
    assert [(i["rep_id"], i["subscriptions"], i["subscribed_amount_fen"]) for i in sales] == [("r-2", 1, 300_000_000)]
    leads = (await reporting.get(MANAGER, "/reports/office-leads", **{"from": "2026-05-01"}, to="2026-05-31")).json()[
        "items"
    ]
    by_line = {(i["business_date"], i["rep_id"]): (i["walk_ins"], i["subscriptions"]) for i in leads}
    assert by_line == {("2026-05-04", "r-1"): (1, 0), (day10, "r-2"): (1, 1)}
