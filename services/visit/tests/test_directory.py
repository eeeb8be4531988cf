"""The local directory of customers, staff, catalogue and orders, fed by other services'
events: out-of-order arrival, the real NATS path, and rebuild."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
from visit_testkit import REP1, SUP1, Harness

from salesplatform.devstack.pytest_plugin import connected_as
from salesplatform.messaging import ensure_streams
from salesplatform.projections import reading


async def directory_row(h: Harness, customer_id: str) -> dict | None:
    async with reading(h.rt.pool, "customer_directory") as conn:
        row = await conn.fetchrow("SELECT * FROM customers WHERE customer_id = $1", customer_id)
    return dict(row) if row else None


async def test_an_assignment_arriving_before_the_registration_makes_a_placeholder_the_registration_fills(h) -> None:
    # In the customer service: registered (v1), approved (v2), assigned to rep-2 (v3).
    registered = h.registered("c7", "rep-1", "d1", "a1", name="Lucky Store", version=1)
    approved = h.customer(
        "customer.approved", "c7", version=2, customer_code="K-7", status="active", approved_by="sup-1"
    )
    assigned = h.customer(
        "customer.assigned",
        "c7",
        version=3,
        rep_id="rep-2",
        district_id="d2",
        area_id="a1",
        previous_rep_id="rep-1",
        reason="rebalance",
    )

    await h.feed("customer", assigned)
    placeholder = await directory_row(h, "c7")
    assert placeholder is not None
    assert placeholder["registered"] is False
    assert (placeholder["rep_id"], placeholder["district_id"], placeholder["name"]) == ("rep-2", "d2", None)

    await h.feed("customer", registered)
    row = await directory_row(h, "c7")
    # The registration fills what only it knows, and does not undo the later assignment.
    assert row["registered"] is True
    assert (row["name"], row["channel"], row["status"]) == ("Lucky Store", "retail", "pending")
    assert (row["rep_id"], row["district_id"]) == ("rep-2", "d2")

    await h.feed("customer", approved)
    row = await directory_row(h, "c7")
    assert (row["status"], row["customer_code"], row["rep_id"]) == ("active", "K-7", "rep-2")

    # A redelivered event changes nothing (same event id: not copied twice).
    await h.feed("customer", assigned)
    async with h.rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = 'customer-c7'") == 3


async def test_a_delivery_known_before_its_order_keeps_both_facts(h) -> None:
    delivered = h.envelope(
        "order.delivered",
        "order-o1",
        {
            "order_id": "o1",
            "customer_id": "c1",
            "delivered_at": "2026-11-01T03:00:00+00:00",
            "on_time": True,
        },
        version=4,
    )
    placed = h.order_placed("o1", "c1", {"cola": 5}, datetime(2026, 10, 31, 2, tzinfo=UTC))
    placed = placed.model_copy(update={"stream_version": 1})
    await h.feed("orders", delivered)
    await h.feed("orders", placed)
    async with reading(h.rt.pool, "catalogue") as conn:
        row = await conn.fetchrow("SELECT * FROM orders WHERE order_id = 'o1'")
    assert row["status"] == "delivered" and row["on_time"] is True
    assert row["lines"] == [{"sku": "cola", "quantity": 5}]


async def test_customer_registered_through_real_nats_reaches_the_directory(h) -> None:
    """The path of production: the customer service publishes to its stream, the consumer
    copies the envelope into this service's log, the directory applies it."""
    customer_topology = h.rt.topology.of("customer")
    envelope = h.registered("c-nats", "rep-1", "d1", "a1", name="Via NATS")
    async with connected_as(h.rt.settings.nats_url, "customer") as customer:
        await ensure_streams(customer.jetstream(), customer_topology)
        ack = await customer.jetstream().publish(
            customer_topology.event_subject("customer.registered"),
            envelope.to_json(),
            headers={"Nats-Msg-Id": str(envelope.event_id)},
        )
    assert ack.stream == customer_topology.event_stream
    for _ in range(200):
        row = await directory_row(h, "c-nats")
        if row is not None:
            break
        await asyncio.sleep(0.05)
    assert row is not None and row["name"] == "Via NATS" and row["rep_id"] == "rep-1"
    async with h.rt.pool.acquire() as conn:
        origin = await conn.fetchval("SELECT origin FROM events WHERE event_id = $1", envelope.event_id)
    assert origin == customer_topology.event_stream
    # And the rep can now use the customer.
    r = await h.post(REP1, "define_route", {"route_name": "NATS", "weekdays": [2], "customer_ids": ["c-nats"]})
    assert r.status_code == 200, r.text
    body = orjson.loads(r.content)
    assert body["customer_ids"] == ["c-nats"]


async def test_directory_rebuild_equals_the_incremental_build(world) -> None:
    h = world
    await h.feed(
        "customer",
        h.customer(
            "customer.assigned",
            "c3",
            rep_id="rep-2",
            district_id="d1",
            area_id="a1",
            previous_rep_id="rep-1",
            reason="x",
        ),
    )
    sql = "SELECT customer_id, registered, name, rep_id, district_id, channel, grade, status FROM customers ORDER BY 1"
    async with reading(h.rt.pool, "customer_directory") as conn:
        before = [tuple(r) for r in await conn.fetch(sql)]
    assert await h.rt.rebuild("customer_directory") == 2
    async with reading(h.rt.pool, "customer_directory") as conn:
        assert [tuple(r) for r in await conn.fetch(sql)] == before
    r = await h.get(SUP1, "/directory/customers/c3")
    assert r.status_code == 200 and r.json()["rep_id"] == "rep-2"
