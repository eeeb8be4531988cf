"""Receivables and returns through the real runtime: payments applied oldest first or as named,
never past what is open; collection notes; a return's whole route, with its refusals, its
corrective action and its credit note."""

from __future__ import annotations

from datetime import timedelta

from orders_testkit import (
    AREA_MANAGER,
    GENERAL_MANAGER,
    INSPECTOR,
    OTHER_AREA_MANAGER,
    REP,
    SALES_MANAGER,
    SUPERVISOR,
    SYSTEM,
    add_customer,
    define_skus,
    event_count,
    ok,
    refused,
)

from salesplatform.commands import Request
from salesplatform.projections import reading


async def delivered_order(rt, customer_id: str = "c1", lines=None) -> dict:
    placed = await ok(
        rt,
        "place_order",
        {
            "customer_id": customer_id,
            "lines": lines or [{"sku": "COLA", "quantity": 10}],
        },
        REP,
    )
    return await ok(rt, "deliver_order", {"order_id": placed["order_id"]}, SYSTEM)


async def invoices(rt, customer_id: str = "c1") -> list[tuple]:
    async with reading(rt.pool, "receivables") as conn:
        rows = await conn.fetch(
            "SELECT order_id, amount_fen, paid_fen, credited_fen, open_fen FROM invoices WHERE customer_id = $1"
            " ORDER BY issued_on, invoice_id",
            customer_id,
        )
    return [tuple(r) for r in rows]


async def test_payments_apply_oldest_first_partially_and_never_past_the_open_amount(rt, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    first = await delivered_order(rt)  # 3,000
    clock.advance(timedelta(days=1))
    second = await delivered_order(rt, lines=[{"sku": "TEA", "quantity": 5}])  # 2,000
    paid = await ok(rt, "record_payment", {"customer_id": "c1", "amount_fen": 3500}, REP)
    assert [(a["invoice_id"], a["amount_fen"]) for a in paid["allocations"]] == [
        (first["invoice_id"], 3000),
        (second["invoice_id"], 500),
    ]
    assert [r[2:] for r in await invoices(rt)] == [(3000, 0, 0), (500, 0, 1500)]
    before = await event_count(rt)
    assert await refused(rt, "record_payment", {"customer_id": "c1", "amount_fen": 1501}, REP) == (
        409,
        "payment_exceeds_open_amount",
    )
    assert await refused(
        rt,
        "record_payment",
        {
            "customer_id": "c1",
            "amount_fen": 100,
            "allocations": [{"invoice_id": first["invoice_id"], "amount_fen": 100}],
        },
        REP,
    ) == (409, "invoice_not_open")
    assert await refused(rt, "record_payment", {"customer_id": "c1", "amount_fen": 0}, REP) == (
        422,
        "validation_failed",
    )
    assert await refused(rt, "record_payment", {"customer_id": "zz", "amount_fen": 1}, REP) == (404, "unknown_customer")
    assert await event_count(rt) == before
    await ok(
        rt,
        "record_payment",
        {
            "customer_id": "c1",
            "amount_fen": 1500,
            "received_on": "2026-03-05",
            "allocations": [{"invoice_id": second["invoice_id"], "amount_fen": 1500}],
        },
        SYSTEM,
    )
    assert [r[4] for r in await invoices(rt)] == [0, 0]
    await ok(
        rt,
        "add_collection_note",
        {
            "customer_id": "c1",
            "note": "owner promised the rest on Friday",
            "promised_on": "2026-03-06",
        },
        REP,
    )
    async with reading(rt.pool, "receivables") as conn:
        assert await conn.fetchval("SELECT note FROM collection_notes WHERE customer_id = 'c1'") == (
            "owner promised the rest on Friday"
        )


async def test_concurrent_payments_never_overpay_an_invoice(rt) -> None:
    import asyncio

    await define_skus(rt)
    await add_customer(rt, "c1")
    await delivered_order(rt)  # 3,000 open
    outcomes = await asyncio.gather(
        *[rt.run_command("record_payment", {"customer_id": "c1", "amount_fen": 1000}, REP) for _ in range(5)]
    )
    assert sum(o.ok for o in outcomes) == 3
    assert {o.error.code for o in outcomes if not o.ok} == {"payment_exceeds_open_amount"}
    assert [r[4] for r in await invoices(rt)] == [0]
    # the same through group commit, where concurrent commands share transactions
    await delivered_order(rt)
    await add_customer(rt, "c2")
    await delivered_order(rt, "c2")
    requests = [
        Request(name="record_payment", payload={"customer_id": customer, "amount_fen": 1000}, actor=REP)
        for _ in range(4)
        for customer in ("c2", "c1")
    ]
    outcomes = await asyncio.gather(*[rt.group.submit(r) for r in requests])
    assert sum(o.ok for o in outcomes) == 6
    assert {o.error.code for o in outcomes if not o.ok} == {"payment_exceeds_open_amount"}
    assert [r[4] for r in await invoices(rt, "c1")] == [0, 0]
    assert [r[4] for r in await invoices(rt, "c2")] == [0]


async def test_a_quality_return_of_the_whole_batch_goes_through_inspection_to_the_general_manager(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    delivered = await delivered_order(rt, lines=[{"sku": "COLA", "quantity": 10}, {"sku": "TEA", "quantity": 2}])
    order_id = delivered["order_id"]
    before = await event_count(rt)
    assert await refused(
        rt,
        "request_return",
        {
            "order_id": order_id,
            "lines": [{"sku": "COLA", "quantity": 11}],
            "scope": "part",
            "reason": "quality_defect",
        },
        REP,
    ) == (409, "return_exceeds_delivered")
    assert await refused(
        rt,
        "request_return",
        {
            "order_id": order_id,
            "scope": "part",
            "reason": "wrong_shipment",
            "lines": [{"sku": "COLA", "quantity": 1}],
        },
        REP,
    ) == (422, "validation_failed")  # a wrong shipment says what was wrong
    assert await event_count(rt) == before
    ret = await ok(
        rt,
        "request_return",
        {
            "return_id": "ret-1",
            "order_id": order_id,
            "scope": "whole_batch",
            "reason": "quality_defect",
            "detail": "cans leaking",
        },
        REP,
    )
    assert (ret["amount_fen"], ret["inspection_required"], ret["approver_role"]) == (3800, True, "general_manager")
    assert await refused(rt, "approve_return", {"return_id": "ret-1"}, GENERAL_MANAGER) == (409, "inspection_required")
    assert await refused(rt, "record_return_inspection", {"return_id": "ret-1", "confirmed": True}, SUPERVISOR) == (
        403,
        "role_not_allowed",
    )
    await ok(
        rt,
        "record_return_inspection",
        {
            "return_id": "ret-1",
            "confirmed": True,
            "notes": "seam defect",
            "department": "production",
            "corrective_action": "check the seaming machine",
        },
        INSPECTOR,
    )
    assert await refused(rt, "approve_return", {"return_id": "ret-1"}, AREA_MANAGER) == (403, "approval_beyond_rights")
    assert await refused(rt, "approve_return", {"return_id": "ret-1"}, SALES_MANAGER) == (403, "approval_beyond_rights")
    await ok(rt, "approve_return", {"return_id": "ret-1", "reason": "seaming defect confirmed"}, GENERAL_MANAGER)
    async with rt.pool.acquire() as conn:
        decided = await conn.fetchval("SELECT data FROM events WHERE event_type = 'return.approved'")
    assert (decided["approver_id"], decided["reason"]) == ("gm1", "seaming defect confirmed")
    assert await refused(
        rt, "resolve_return", {"return_id": "ret-1", "resolution": "credit_note", "amount_fen": 3801}, GENERAL_MANAGER
    ) == (409, "resolution_exceeds_return")
    await ok(
        rt, "resolve_return", {"return_id": "ret-1", "resolution": "credit_note", "amount_fen": 3800}, GENERAL_MANAGER
    )
    await ok(rt, "receive_returned_goods", {"return_id": "ret-1"}, SYSTEM)
    async with reading(rt.pool, "returns") as conn:
        row = await conn.fetchrow("SELECT status, inspection_confirmed, approver_id, resolution FROM returns")
        action = await conn.fetchrow("SELECT department, action FROM corrective_actions WHERE return_id = 'ret-1'")
    assert tuple(row) == ("closed", True, "gm1", "credit_note")
    assert tuple(action) == ("production", "check the seaming machine")
    assert [r[3:] for r in await invoices(rt)] == [(3800, 0)]  # the credit note settles the invoice
    assert await refused(
        rt,
        "request_return",
        {
            "order_id": order_id,
            "lines": [{"sku": "COLA", "quantity": 1}],
            "scope": "part",
            "reason": "transit_damage",
        },
        REP,
    ) == (409, "return_exceeds_delivered")


async def test_the_other_routes_and_a_rejection_that_keeps_its_reason(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    order_id = (await delivered_order(rt, lines=[{"sku": "COLA", "quantity": 20}]))["order_id"]

    async def request(reason: str, quantity: int, **extra) -> str:
        return (
            await ok(
                rt,
                "request_return",
                {
                    "order_id": order_id,
                    "lines": [{"sku": "COLA", "quantity": quantity}],
                    "scope": "part",
                    "reason": reason,
                    **extra,
                },
                REP,
            )
        )["return_id"]

    wrong = await request("wrong_shipment", 2, wrong_shipment_kind="grade", detail="sent the 1.25L")
    assert await refused(rt, "approve_return", {"return_id": wrong}, AREA_MANAGER) == (403, "approval_beyond_rights")
    await ok(rt, "approve_return", {"return_id": wrong}, SALES_MANAGER)

    transit = await request("transit_damage", 2)
    assert await refused(rt, "approve_return", {"return_id": transit}, SUPERVISOR) == (403, "approval_beyond_rights")
    assert await refused(rt, "approve_return", {"return_id": transit}, OTHER_AREA_MANAGER) == (403, "outside_line")
    await ok(rt, "approve_return", {"return_id": transit}, AREA_MANAGER)

    selection = await request("selection_error", 3)
    assert await refused(rt, "approve_return", {"return_id": selection}, SALES_MANAGER) == (409, "inspection_required")
    await ok(rt, "record_return_inspection", {"return_id": selection, "confirmed": True}, INSPECTOR)
    await ok(rt, "approve_return", {"return_id": selection}, SALES_MANAGER)

    part = await request("quality_defect", 4)
    await ok(rt, "record_return_inspection", {"return_id": part, "confirmed": False, "notes": "no defect"}, INSPECTOR)
    assert await refused(rt, "approve_return", {"return_id": part}, AREA_MANAGER) == (409, "inspection_not_confirmed")
    await ok(rt, "reject_return", {"return_id": part, "reason": "no defect found on re-inspection"}, AREA_MANAGER)

    # the rejected one gives its quantity back: 20 − 2 − 2 − 3 = 13 may still be returned
    assert await refused(
        rt,
        "request_return",
        {
            "order_id": order_id,
            "lines": [{"sku": "COLA", "quantity": 14}],
            "scope": "part",
            "reason": "transit_damage",
        },
        REP,
    ) == (409, "return_exceeds_delivered")
    await request("transit_damage", 13)

    async with reading(rt.pool, "returns") as conn:
        rows = {
            r["return_id"]: tuple(r)[1:]
            for r in await conn.fetch("SELECT return_id, status, reason, detail, rejected_reason FROM returns")
        }
    assert rows[wrong] == ("approved", "wrong_shipment", "grade: sent the 1.25L", None)
    assert rows[part] == ("rejected", "quality_defect", "", "no defect found on re-inspection")
    async with rt.pool.acquire() as conn:  # nothing about a return is deleted
        assert await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"return-{part}") == 3


async def test_a_return_needs_a_delivered_order(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    placed = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}]}, REP)
    assert await refused(
        rt,
        "request_return",
        {
            "order_id": placed["order_id"],
            "lines": [{"sku": "COLA", "quantity": 1}],
            "scope": "part",
            "reason": "transit_damage",
        },
        REP,
    ) == (409, "order_not_delivered")
