"""Read models are functions of the log: rebuilt from it they equal the ones kept up to date,
and rebuilding the directory (which places visit orders) places nothing again."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from orders_testkit import (
    AREA_MANAGER,
    REP,
    SALES_MANAGER,
    SKUS,
    START,
    SYSTEM,
    add_customer,
    define_skus,
    event_count,
    feed_customers,
    ok,
)

from bench.history_data import customer_envelopes, synthetic_history
from orders_service.application.history import import_lines
from orders_service.domain.policy import OrderPolicy
from orders_service.importer import IMPORT_ACTOR
from salesplatform.events import Envelope
from salesplatform.projections import reading
from salesplatform.store import copy_foreign

TABLES = {
    "order_board": ["orders", "order_lines"],
    "receivables": ["invoices", "payments", "allocations", "credit_notes", "collection_notes"],
    "promotions": ["promotions", "promotion_orders"],
    "returns": ["returns", "return_lines", "corrective_actions"],
    "catalogue": ["skus", "area_prices", "required_skus"],
    "customer_directory": ["customers"],
}


async def snapshot(rt, projection: str) -> dict[str, list]:
    out = {}
    async with reading(rt.pool, projection) as conn:
        for table in TABLES[projection]:
            rows = await conn.fetch(f"SELECT * FROM {table}")
            out[table] = sorted(orjson.dumps(dict(r), default=str, option=orjson.OPT_SORT_KEYS) for r in rows)
    return out


async def test_every_read_model_rebuilds_to_what_it_was(rt, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1", credit_limit_fen=20_000)
    customers = [f"h{i}" for i in range(10)]
    await feed_customers(rt, customer_envelopes(customers, at=START - timedelta(days=90)))
    history = synthetic_history(600, customers, {s: p for s, (p, _, _) in SKUS.items()}, end=START - timedelta(days=1))
    placed = START - timedelta(hours=20)
    approval = {
        "required_role": "sales_manager",
        "reasons": ["below_floor_price"],
        "approver_id": "m1",
        "approved_at": (placed + timedelta(hours=1)).isoformat(),
    }
    later = [  # an order approved then delivered, and one cancelled
        {"kind": "order", "record_id": "RB-1", "customer_id": "h1", "placed_at": placed.isoformat()}
        | {"lines": [{"sku": "TEA", "quantity": 3, "unit_price_fen": 300}], "approval": approval},
        {"kind": "delivery", "record_id": "RB-D1", "order_record_id": "RB-1", "delivered_at": START.isoformat()},
        {"kind": "order", "record_id": "RB-2", "customer_id": "h2", "placed_at": placed.isoformat()}
        | {"lines": [{"sku": "COLA", "quantity": 2, "unit_price_fen": 300}]},
        {"kind": "cancellation", "record_id": "RB-X2", "order_record_id": "RB-2"}
        | {"cancelled_at": START.isoformat(), "reason": "duplicate order"},
    ]
    imported = await import_lines(
        rt.pool,
        [orjson.dumps(r) for r in [*history, *later]],
        actor=IMPORT_ACTOR,
        clock=clock,
        policy=OrderPolicy(),
        chunk_size=250,
    )
    assert imported.rejected == [] and imported.cancellations == 1
    await ok(rt, "set_required_skus", {"channel": "retail", "skus": ["COLA"]}, SALES_MANAGER)
    await ok(
        rt,
        "plan_promotion",
        {
            "name": "p",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
            "skus": ["TEA"],
            "gift_rule": {"buy": 3, "get": 1},
            "budget_fen": 5_000,
        },
        SYSTEM,
    )
    a = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "TEA", "quantity": 7}]}, REP)
    b = await ok(
        rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 9, "unit_price_fen": 260}]}, REP
    )
    await ok(rt, "approve_order", {"order_id": b["order_id"]}, AREA_MANAGER)
    await ok(rt, "record_deposit", {"order_id": b["order_id"], "amount_fen": 1000}, REP)
    await ok(rt, "deliver_order", {"order_id": a["order_id"]}, SYSTEM)
    await ok(rt, "deliver_order", {"order_id": b["order_id"]}, SYSTEM)
    await ok(rt, "record_payment", {"customer_id": "c1", "amount_fen": 1500}, REP)
    await ok(rt, "add_collection_note", {"customer_id": "c1", "note": "call again"}, REP)
    ret = await ok(
        rt,
        "request_return",
        {
            "order_id": b["order_id"],
            "lines": [{"sku": "COLA", "quantity": 2}],
            "scope": "part",
            "reason": "wrong_shipment",
            "wrong_shipment_kind": "model",
        },
        REP,
    )
    await ok(rt, "approve_return", {"return_id": ret["return_id"]}, SALES_MANAGER)
    await ok(
        rt,
        "resolve_return",
        {"return_id": ret["return_id"], "resolution": "credit_note", "amount_fen": 520},
        SALES_MANAGER,
    )
    taken = Envelope(
        event_id=uuid.uuid4(),
        event_type="visit.order_taken",
        schema_version=1,
        stream_id="visit-v1",
        stream_version=1,
        occurred_at=START,
        recorded_at=START,
        actor=REP,
        data={
            "visit_id": "v1",
            "rep_id": "r1",
            "customer_id": "c1",
            "business_date": "2026-03-02",
            "order_id": str(uuid.uuid4()),
            "lines": [{"sku": "WATER", "quantity": 3, "unit_price_fen": None}],
            "suggested_adopted": False,
        },
    )
    parked = taken.model_copy(
        update={
            "event_id": uuid.uuid4(),
            "stream_id": "visit-v2",
            "data": {**taken.data, "customer_id": "late", "order_id": str(uuid.uuid4())},
        }
    )
    async with rt.pool.acquire() as conn:
        async with conn.transaction():
            await copy_foreign(conn, "VISIT", [taken, parked])
    await rt.runner.run_once()
    await rt.reactors.run_once()

    before = {name: await snapshot(rt, name) for name in TABLES}
    events = await event_count(rt)
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM parked_orders WHERE outcome IS NULL") == 1
    assert before["order_board"]["orders"]
    for name in TABLES:
        await rt.rebuild(name)
    after = {name: await snapshot(rt, name) for name in TABLES}
    for name in TABLES:
        assert after[name] == before[name], name
    assert await event_count(rt) == events  # the reactor placed nothing a second time
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM projection_failures") == 0
