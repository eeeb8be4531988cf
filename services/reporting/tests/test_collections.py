"""Collections (回款): payments received in a date range, and the part of them that came after
the due date of the invoices they paid, per customer and the customer's current rep, district
and area; the change notices of a payment name the report."""

from __future__ import annotations

import asyncio

import orjson
from reporting_testkit import MANAGER, REP_R1, SUP_D1, Month, auth, by, local

NOV = {"from_": "2026-11-01", "to": "2026-11-30"}


def on_time_payment(month: Month) -> list:
    """c1 (rep r1) pays 500 of i1 (due 12-02) on 11-28, in time, and 300 of i7 (due 11-10), late."""
    return [
        month.ev(
            "orders",
            "payment-p3",
            "payment.received",
            {
                "payment_id": "pay3",
                "customer_id": "c1",
                "amount_fen": 800,
                "received_on": "2026-11-28",
                "allocations": [{"invoice_id": "i1", "amount_fen": 500}, {"invoice_id": "i7", "amount_fen": 300}],
            },
            local("2026-11-28"),
        )
    ]


async def test_collections_in_a_range_per_customer_rep_and_total(month) -> None:
    h = month
    # In November only c4's 10000 (for i5, due 10-01: late) came in.
    customers = by(await h.report("/reports/collections", MANAGER, **NOV), "customer_id")
    assert {c: (x["payments"], x["collected_fen"], x["overdue_collected_fen"]) for c, x in customers.items()} == {
        "c4": (1, 10000, 10000)
    }
    assert customers["c4"]["rep_id"] == "r3" and customers["c4"]["customer_name"]

    nats = h.rt.nc
    notices: asyncio.Queue[dict] = asyncio.Queue()

    async def on_notice(msg) -> None:
        await notices.put(orjson.loads(msg.data))

    sub = await nats.subscribe(h.rt.topology.subject("changed", "collections"), cb=on_notice)
    await h.feed(on_time_payment(Month()))
    notice = await asyncio.wait_for(notices.get(), 10)
    await sub.unsubscribe()
    assert notice["report"] == "collections"
    assert {"period": "2026-11-28", "customer_id": "c1"} in notice["changes"]

    customers = by(await h.report("/reports/collections", MANAGER, **NOV), "customer_id")
    assert (customers["c1"]["collected_fen"], customers["c1"]["overdue_collected_fen"]) == (800, 300)
    reps = by(await h.report("/reports/collections", MANAGER, **NOV, group_by="rep"), "rep_id")
    assert {r: x["collected_fen"] for r, x in reps.items()} == {"r1": 800, "r3": 10000}
    [total] = await h.report("/reports/collections", MANAGER, from_="2026-08-01", to="2026-11-30", group_by="total")
    assert (total["payments"], total["collected_fen"], total["overdue_collected_fen"]) == (3, 11800, 11300)
    # A range before any payment is empty; the rep sees the own customers only.
    assert await h.report("/reports/collections", MANAGER, from_="2026-09-01", to="2026-10-31") == []
    assert set(by(await h.report("/reports/collections", REP_R1, **NOV), "customer_id")) == {"c1"}
    assert set(by(await h.report("/reports/collections", SUP_D1, **NOV, group_by="rep"), "rep_id")) == {"r1"}
    refused = await h.client.get("/reports/collections", params={"rep_id": "r3"}, headers=auth(REP_R1))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "outside_line"
