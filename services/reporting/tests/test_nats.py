"""Through real NATS: other services' events arrive on their JetStream streams, the reports change,
and report consumers hear of it on `reporting.changed.<report>`."""

from __future__ import annotations

import asyncio

import nats
import orjson
from reporting_testkit import MANAGER, Month, local

from salesplatform.devstack.pytest_plugin import nats_login_for_tests
from salesplatform.messaging import event_headers


async def test_published_order_events_reach_the_reports_and_subscribers_hear_of_it(h) -> None:
    rt = h.rt
    listener = await nats.connect(rt.settings.nats_url, **nats_login_for_tests("system"))  # an outside system
    producer = await nats.connect(rt.settings.nats_url, **nats_login_for_tests("orders"))  # the orders service
    heard: asyncio.Queue = asyncio.Queue()

    async def on_change(msg) -> None:
        await heard.put((msg.subject, orjson.loads(msg.data)))

    await listener.subscribe(rt.topology.subject("changed", "*"), cb=on_change)
    await listener.flush()
    try:
        m = Month()
        events = m.order(
            "o1",
            "c1",
            "r1",
            "d1",
            "a1",
            "2026-11-02",
            [("s1", "beverage", 10, 100), ("s2", "beverage", 4, 250)],
            delivered_at=local("2026-11-02", 15),
        )
        js = producer.jetstream()
        orders = rt.topology.of("orders")
        for _, envelope in events:
            await js.publish(
                orders.event_subject(envelope.event_type), envelope.to_json(), headers=event_headers(envelope)
            )
        # Published again (a producer's retry): dropped by JetStream or by the local copy.
        for _, envelope in events:
            await js.publish(
                orders.event_subject(envelope.event_type), envelope.to_json(), headers=event_headers(envelope)
            )

        subject, body = await _wait_for(heard, "sales")
        assert subject == rt.topology.subject("changed", "sales")
        assert body["projection"] == "sales"
        assert {"period": "2026-11-02", "rep_id": "r1", "district_id": "d1", "area_id": "a1"} in body["changes"]

        [day] = await h.report("/reports/sales", MANAGER, from_="2026-11-01", to="2026-11-30")
        assert (day["period_start"], day["amount_fen"], day["quantity"]) == ("2026-11-02", 2000, 14)
        async with rt.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM events WHERE origin IS NOT NULL") == len(events)

        # A manager's new target is announced too.
        await h.feed(m.organisation())
        ok = await h.command(
            "set_target", {"month": "2026-11", "level": "rep", "subject_id": "r1", "amount_fen": 5000}, MANAGER
        )
        assert ok.status_code == 200
        _, body = await _wait_for(heard, "targets")
        assert body["changes"] == [{"month": "2026-11", "level": "rep", "subject_id": "r1"}]
    finally:
        await listener.close()
        await producer.close()


async def _wait_for(heard: asyncio.Queue, report: str, timeout: float = 15.0) -> tuple[str, dict]:
    async def next_of_report() -> tuple[str, dict]:
        while True:
            subject, body = await heard.get()
            if body["report"] == report:
                return subject, body

    return await asyncio.wait_for(next_of_report(), timeout)
