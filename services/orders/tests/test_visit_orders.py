"""Orders from visits (visit.order_taken) and delivery confirmations (visit.delivery_confirmed):
once per visit event however often it arrives, parked while the customer is unknown, refused
with a reason when a rule says no — through the local log and through real NATS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from orders_testkit import REP, START, SYSTEM, add_customer, customer_events, define_skus, feed_customers, ok

from salesplatform.devstack.pytest_plugin import connected_as
from salesplatform.events import Envelope
from salesplatform.messaging import ensure_streams
from salesplatform.projections import reading
from salesplatform.store import copy_foreign


def visit_event(event_type: str, visit_id: str, version: int, **data: Any) -> Envelope:
    at = START + timedelta(minutes=version)
    return Envelope(
        event_id=uuid.uuid4(),
        event_type=event_type,
        schema_version=1,
        stream_id=f"visit-{visit_id}",
        stream_version=version,
        occurred_at=at,
        recorded_at=at,
        actor=REP,
        correlation_id=f"visit-{visit_id}",
        data={"visit_id": visit_id, "rep_id": REP.id, "business_date": "2026-03-02", **data},
    )


def order_taken(customer_id: str = "c1", lines: list[dict] | None = None, visit_id: str | None = None) -> Envelope:
    return visit_event(
        "visit.order_taken",
        visit_id or str(uuid.uuid4()),
        6,
        customer_id=customer_id,
        order_id=str(uuid.uuid4()),
        lines=lines or [{"sku": "COLA", "quantity": 24, "unit_price_fen": None}],
        suggested_adopted=True,
    )


async def deliver_from_visit(rt, *envelopes: Envelope) -> None:
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            await copy_foreign(conn, "VISIT", list(envelopes))
    await rt.runner.run_once()
    await rt.reactors.run_once()


async def orders_of(rt, order_id: str) -> list:
    async with rt.pool.acquire() as conn:
        return await conn.fetch(
            "SELECT event_type, actor, causation_id FROM events WHERE stream_id = $1 ORDER BY stream_version",
            f"order-{order_id}",
        )


async def directory(rt, sql: str, *args: Any) -> list:
    async with reading(rt.pool, "customer_directory") as conn:
        return await conn.fetch(sql, *args)


async def test_an_order_taken_on_a_visit_is_placed_once(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    taken = order_taken()
    await deliver_from_visit(rt, taken)
    events = await orders_of(rt, taken.data["order_id"])
    assert [e["event_type"] for e in events] == ["order.placed", "order.confirmed"]
    # Placed by the service's reactor, caused by the visit event, judged as the rep's order.
    assert events[0]["actor"]["id"] == "service:orders:visit_orders"
    assert events[0]["causation_id"] == str(taken.event_id)
    async with reading(rt.pool, "order_board") as conn:
        row = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", taken.data["order_id"])
    assert (row["source"], row["visit_id"], row["rep_id"], row["amount_fen"]) == (
        "visit",
        taken.data["visit_id"],
        "r1",
        7200,
    )
    # Redelivered copy, the reactor sending its commands again over the same log (a crash
    # before its checkpoint), and the same order in a new envelope: nothing is placed twice.
    await deliver_from_visit(rt, taken)
    # The runtime's own reactor loop stops first, so that the pass below is the one that reads
    # the log again from the reset checkpoint (the loop, woken by the commits, could take it).
    rt.reactors.stop()
    await next(t for t in rt._tasks if t.get_name() == "reactors")
    rt.reactors._stopping.clear()
    async with rt.pool.acquire() as conn:
        await conn.execute("UPDATE reactor_checkpoints SET tx_id = '0', position = 0 WHERE name = 'visit_orders'")
    assert await rt.reactors.run_once() > 0
    await deliver_from_visit(rt, taken.model_copy(update={"event_id": uuid.uuid4()}))
    assert len(await orders_of(rt, taken.data["order_id"])) == 2


async def test_an_order_for_a_customer_not_yet_known_is_parked_and_placed_when_it_arrives(rt) -> None:
    await define_skus(rt)
    taken = order_taken("c9")
    await deliver_from_visit(rt, taken)
    assert await orders_of(rt, taken.data["order_id"]) == []
    parked = await directory(rt, "SELECT order_id, reason, outcome FROM parked_orders")
    assert [tuple(r) for r in parked] == [(taken.data["order_id"], "unknown_customer", None)]
    await feed_customers(rt, customer_events("c9"))
    events = await orders_of(rt, taken.data["order_id"])
    assert [e["event_type"] for e in events] == ["order.placed", "order.confirmed"]
    parked = await directory(rt, "SELECT outcome FROM parked_orders WHERE order_id = $1", taken.data["order_id"])
    assert parked[0]["outcome"] == "placed"
    async with reading(rt.pool, "order_board") as conn:
        row = await conn.fetchrow(
            "SELECT business_date, placed_at FROM orders WHERE order_id = $1", taken.data["order_id"]
        )
    assert str(row["business_date"]) == "2026-03-02" and row["placed_at"] == taken.occurred_at


async def test_a_visit_order_that_breaks_a_rule_is_kept_with_the_reason(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    unknown_sku = order_taken(lines=[{"sku": "GIN", "quantity": 1, "unit_price_fen": None}])
    below_floor = order_taken(lines=[{"sku": "COLA", "quantity": 1, "unit_price_fen": 10}])
    no_quantity = order_taken(lines=[{"sku": "COLA", "quantity": 0, "unit_price_fen": None}])
    await deliver_from_visit(rt, unknown_sku, below_floor, no_quantity)
    refused = await directory(rt, "SELECT order_id, code FROM visit_messages_refused")
    assert {(r["order_id"], r["code"]) for r in refused} == {
        (unknown_sku.data["order_id"], "unknown_sku"),
        (below_floor.data["order_id"], "price_below_floor"),
        (no_quantity.data["order_id"], "validation_failed"),
    }
    for envelope in (unknown_sku, below_floor, no_quantity):
        assert await orders_of(rt, envelope.data["order_id"]) == []
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_failures") == 0


async def test_the_reps_delivery_confirmation_reaches_the_order(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    taken = order_taken()
    await deliver_from_visit(rt, taken)
    await ok(rt, "deliver_order", {"order_id": taken.data["order_id"]}, SYSTEM)
    confirmed = visit_event(
        "visit.delivery_confirmed",
        str(uuid.uuid4()),
        5,
        customer_id="c1",
        order_id=taken.data["order_id"],
        delivered=True,
    )
    await deliver_from_visit(rt, confirmed)
    events = await orders_of(rt, taken.data["order_id"])
    assert events[-1]["event_type"] == "order.delivery_confirmed"
    unknown = visit_event(
        "visit.delivery_confirmed", str(uuid.uuid4()), 5, customer_id="c1", order_id="no-such-order", delivered=True
    )
    await deliver_from_visit(rt, unknown)
    refused = await directory(rt, "SELECT code FROM visit_messages_refused WHERE event_id = $1", unknown.event_id)
    assert refused[0]["code"] == "order_not_found"


async def test_an_order_taken_published_on_nats_becomes_an_order(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    visit = rt.topology.of("visit")
    taken = order_taken()
    async with connected_as(rt.settings.nats_url, "visit") as visit_service:
        js = visit_service.jetstream()
        await ensure_streams(js, visit)
        ack = await js.publish(
            visit.event_subject("visit.order_taken"),
            taken.to_json(),
            headers={"Nats-Msg-Id": str(taken.event_id)},
        )
        assert ack.stream == visit.event_stream
        # published twice (a relay retry): JetStream and the local log keep one
        await js.publish(
            visit.event_subject("visit.order_taken"),
            taken.to_json(),
            headers={"Nats-Msg-Id": str(taken.event_id)},
        )
    for _ in range(200):
        events = await orders_of(rt, taken.data["order_id"])
        if events:
            break
        await asyncio.sleep(0.05)
    assert [e["event_type"] for e in events] == ["order.placed", "order.confirmed"]
    async with reading(rt.pool, "order_board") as conn:
        assert await conn.fetchval("SELECT source FROM orders WHERE order_id = $1", taken.data["order_id"]) == "visit"
