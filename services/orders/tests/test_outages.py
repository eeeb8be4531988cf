"""Orders placed through ingest while PostgreSQL stops and starts again: every valid order is
placed once, an order for a customer the service does not know is refused as such, and no
order is dead-lettered for the outage."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import nats
import orjson
import pytest
from orders_testkit import REP, SIGNING_KEY, START, add_customer, define_skus
from postgres_faults import own_postgres_server, stop_held_up
from waiting import wait_for

from orders_service.bootstrap import definition
from orders_service.domain.policy import OrderPolicy
from salesplatform.auth import mint
from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import (
    ensure_streams_of,
    nats_login_for_tests,
    settings_for_tests,
    stream_messages,
)
from salesplatform.devstack.servers import create_database
from salesplatform.service import Runtime


@pytest.fixture
def own_postgres():
    with own_postgres_server() as server:
        yield server


@pytest.mark.parametrize("fault", ["pg_ctl stop -m immediate", "pg_ctl stop -m smart"])
async def test_orders_ingested_across_a_postgres_restart_are_placed_once(
    own_postgres, nats_url, unique_prefix, fault
) -> None:
    dsn = await create_database(own_postgres.admin_dsn, "orders_" + uuid.uuid4().hex[:8])
    settings = settings_for_tests(dsn, nats_url, unique_prefix, service="orders", pool_max=6, ingest_batch=50)
    await ensure_streams_of(nats_url, unique_prefix, ("customer", "visit"))
    sender = await nats.connect(nats_url, **nats_login_for_tests("system"))
    token = mint(REP, SIGNING_KEY)
    valid: list[str] = []
    unknown: list[str] = []
    try:
        async with Runtime(definition(OrderPolicy()), settings, clock=FixedClock(START), run_timers=False) as rt:
            await define_skus(rt)
            for customer in ("c1", "c2", "c3"):
                await add_customer(rt, customer)

            async def send(n: int) -> None:
                for i in range(n):
                    key = f"order-{len(valid) + len(unknown)}"
                    customer = "ghost" if i % 10 == 9 else f"c{i % 3 + 1}"
                    (unknown if customer == "ghost" else valid).append(key)
                    await sender.jetstream().publish(
                        rt.topology.subject("ingest", "place_order"),
                        orjson.dumps({"customer_id": customer, "lines": [{"sku": "COLA", "quantity": 1}]}),
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                    )
                    await asyncio.sleep(0.01)

            await send(40)
            sending = asyncio.create_task(send(160))
            await asyncio.sleep(0.5)
            if fault == "pg_ctl stop -m smart":
                await stop_held_up(own_postgres)
            else:
                await asyncio.to_thread(own_postgres.stop_with, "immediate")
            await asyncio.sleep(2.0)
            await asyncio.to_thread(own_postgres.start_again)
            await sending
            await send(20)

            async def drained() -> bool:
                return (await rt.js.stream_info(rt.topology.ingest_stream)).state.messages == 0

            await wait_for(drained, timeout=120)
            async with rt.pool.acquire() as conn:
                placed = await conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'order.placed'")
            assert placed == len(valid)
            dead = await stream_messages(rt.js, rt.topology.dlq_stream)
            reasons = Counter(
                (m.headers["Dlq-Reason"], orjson.loads(m.headers["Dlq-Error"])["error"]["code"]) for m in dead
            )
            assert reasons == Counter({("rejected", "unknown_customer"): len(unknown)})
            results = await stream_messages(rt.js, rt.topology.results_stream)
            assert Counter(m.headers["Idempotency-Key"] for m in results) == Counter(valid + unknown)
    finally:
        await sender.close()
