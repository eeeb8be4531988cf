"""End to end across services: a customer registered and approved in the customer service, a
SKU defined in the orders service, a route visit in the visit service whose order is taken;
the orders service creates that order from `visit.order_taken`, and its delivery comes back to
the visit service for the rep to confirm on the next visit. Only public commands, queries and
NATS in between."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from running_system import eventually

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from salesplatform.clock import FixedClock, business_date
from salesplatform.events import Actor, Role
from visit_service.bootstrap import definition as visit_definition

MANAGER = Actor(id="m-1", role=Role.sales_manager)
SUPERVISOR = Actor(id="s-1", role=Role.supervisor, district="d-1", area="a-1")
REP = Actor(id="r-1", role=Role.rep, district="d-1", area="a-1")
SYSTEM = Actor(id="planner", role=Role.system)


async def test_order_taken_on_a_visit_becomes_an_order_and_its_delivery_returns(start_service) -> None:
    customer = await start_service(customer_definition())
    orders = await start_service(orders_definition())
    clock = FixedClock(datetime.now(UTC))
    visit = await start_service(visit_definition(), clock=clock)

    # Territory, people and a new outlet, approved by the supervisor.
    await customer.ok(MANAGER, "define_division", {"division_id": "dv-1", "name": "East"})
    await customer.ok(MANAGER, "define_area", {"area_id": "a-1", "name": "Pudong", "division_id": "dv-1"})
    await customer.ok(MANAGER, "define_district", {"district_id": "d-1", "name": "Lujiazui", "area_id": "a-1"})
    await customer.ok(
        MANAGER, "assign_staff", {"staff_id": "s-1", "name": "Wang", "role": "supervisor", "district_id": "d-1"}
    )
    await customer.ok(
        MANAGER,
        "assign_staff",
        {"staff_id": "r-1", "name": "Li", "role": "rep", "district_id": "d-1", "supervisor_id": "s-1"},
    )
    registered = await customer.ok(
        REP,
        "register_customer",
        {
            "customer_id": "c-1",
            "name": "Fresh Mart",
            "address": "1 Century Ave",
            "phone": "13800138000",
            "nature": "company",
            "channel": "retail",
            "location_type": "residential",
        },
    )
    assert registered["customer_id"] == "c-1"
    await customer.ok(SUPERVISOR, "approve_customer", {"customer_id": "c-1", "status": "active"})

    # The catalogue, and the SKU reaching the visit service's directory.
    await orders.ok(
        MANAGER,
        "define_sku",
        {
            "sku": "COLA-330",
            "name": "Cola 330ml",
            "brand": "Cola",
            "product_group": "soft drinks",
            "package": "can",
            "list_price_fen": 250,
            "floor_price_fen": 200,
        },
    )

    # A route for the rep; the visit service knows the customer only from customer events.
    async def route_defined():
        r = await visit.command(
            REP,
            "define_route",
            {
                "route_id": "rt-1",
                "route_name": "Monday",
                "weekdays": [1, 2, 3, 4, 5, 6, 7],
                "customer_ids": ["c-1"],
            },
        )
        return r.status_code == 200

    await eventually(route_defined)

    today = business_date(clock.now())
    planned = await visit.ok(
        SYSTEM,
        "plan_visit",
        {
            "rep_id": "r-1",
            "customer_id": "c-1",
            "business_date": today.isoformat(),
            "route_id": "rt-1",
            "sequence": 1,
        },
    )
    visit_id = planned["visit_id"]

    await visit.ok(REP, "check_in", {"visit_id": visit_id, "latitude": 31.23, "longitude": 121.5})

    async def stock_counted():  # once the SKU has reached the visit service's catalogue
        r = await visit.command(
            REP, "count_stock", {"visit_id": visit_id, "lines": [{"sku": "COLA-330", "shelf_qty": 2, "store_qty": 0}]}
        )
        return r.status_code == 200

    await eventually(stock_counted)
    taken = await visit.ok(REP, "take_order", {"visit_id": visit_id, "lines": [{"sku": "COLA-330", "quantity": 24}]})
    order_id = taken["order_id"]
    await visit.ok(REP, "check_out", {"visit_id": visit_id})

    # The orders service creates the order from visit.order_taken.
    async def order_created():
        r = await orders.get(MANAGER, f"/orders/{order_id}")
        return r.json() if r.status_code == 200 else None

    body = await eventually(order_created)
    order = body["order"]
    assert order["customer_id"] == "c-1"
    assert order["source"] == "visit"
    assert order["visit_id"] == visit_id
    assert [(line["sku"], line["quantity"], line["unit_price_fen"]) for line in body["lines"]] == [
        ("COLA-330", 24, 250)
    ]
    assert order["amount_fen"] == 24 * 250

    # Redelivery of the same visit event creates nothing twice.
    async with orders.runtime.pool.acquire() as conn:
        placed = await conn.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'order.placed' AND data->>'order_id' = $1", order_id
        )
    assert placed == 1

    # Deliver it; the rep confirms the delivery on the next visit.
    if order["status"] != "confirmed":
        await orders.ok(MANAGER, "approve_order", {"order_id": order_id})
    await orders.ok(MANAGER, "dispatch_order", {"order_id": order_id})
    await orders.ok(MANAGER, "deliver_order", {"order_id": order_id})

    # The rep's next visit to the outlet, the next business day.
    clock.advance(timedelta(days=1))
    tomorrow = business_date(clock.now())
    next_visit = await visit.ok(
        SYSTEM,
        "plan_visit",
        {
            "rep_id": "r-1",
            "customer_id": "c-1",
            "business_date": tomorrow.isoformat(),
            "route_id": "rt-1",
            "sequence": 1,
        },
    )
    await visit.ok(REP, "check_in", {"visit_id": next_visit["visit_id"], "latitude": 31.23, "longitude": 121.5})

    async def delivery_known():  # order.delivered has reached the visit service
        r = await visit.command(
            REP, "confirm_delivery", {"visit_id": next_visit["visit_id"], "order_id": order_id, "delivered": True}
        )
        return r.status_code == 200

    await eventually(delivery_known)

    async def delivery_confirmed():
        r = await orders.get(MANAGER, f"/orders/{order_id}")
        return r.status_code == 200 and r.json()["order"]["delivery_confirmed"] is True

    await eventually(delivery_confirmed)
