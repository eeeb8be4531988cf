"""Orders through the real runtime (PostgreSQL, NATS): placing, approval, delivery and its
deadline, deposits, promotions, cancellation, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from orders_testkit import (
    AREA_MANAGER,
    CLERK,
    OTHER_AREA_MANAGER,
    OTHER_REP,
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

from orders_service.application.ordering import customer_claim
from orders_service.application.timers import check_deadlines
from salesplatform.commands import Request
from salesplatform.projections import reading
from salesplatform.uow import try_claims


async def order_row(rt, order_id: str) -> dict:
    async with reading(rt.pool, "order_board") as conn:
        return dict(await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", order_id))


async def test_small_order_is_confirmed_at_once_at_the_regions_list_price(rt) -> None:
    await define_skus(rt)
    await ok(
        rt,
        "set_sku_price",
        {"sku": "TEA", "area_id": "a1", "list_price_fen": 420, "floor_price_fen": 330},
        AREA_MANAGER,
    )
    await add_customer(rt, "c1")
    result = await ok(
        rt,
        "place_order",
        {
            "customer_id": "c1",
            "lines": [{"sku": "COLA", "quantity": 10}, {"sku": "TEA", "quantity": 2}],
        },
        REP,
    )
    assert result["status"] == "confirmed"
    assert [(x["sku"], x["unit_price_fen"], x["amount_fen"]) for x in result["lines"]] == [
        ("COLA", 300, 3000),
        ("TEA", 420, 840),
    ]
    row = await order_row(rt, result["order_id"])
    assert (row["status"], row["amount_fen"], row["rep_id"], row["district_id"], row["area_id"]) == (
        "confirmed",
        3840,
        "r1",
        "d1",
        "a1",
    )
    assert row["deliver_by"] == row["confirmed_at"] + timedelta(hours=24)


async def test_an_idempotency_key_places_one_order_however_often_it_is_sent(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    payload = {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}], "idempotency_key": "phone-77"}
    first = await ok(rt, "place_order", payload, REP)
    before = await event_count(rt)
    again = await ok(rt, "place_order", payload, REP)
    assert again["order_id"] == first["order_id"] and again["already_placed"] is True
    # the platform's Idempotency-Key header answers with the first result as well
    header = await ok(rt, "place_order", {**payload, "idempotency_key": None}, REP, idempotency_key="k-1")
    replay = await rt.run_command("place_order", {**payload, "idempotency_key": None}, REP, idempotency_key="k-1")
    assert replay.replayed and replay.result["order_id"] == header["order_id"]
    assert await event_count(rt) == before + 2  # only the header's order: placed, confirmed


async def test_an_order_over_the_threshold_waits_for_the_right_approver(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1", credit_limit_fen=None)
    # 7,000 × 300 = 2,100,000 fen: above the supervisor's tier
    placed = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 7000}]}, REP)
    assert (placed["status"], placed["required_role"]) == ("pending_approval", "area_manager")
    assert placed["approval_reasons"] == ["amount_over_threshold"]
    before = await event_count(rt)
    assert await refused(rt, "approve_order", {"order_id": placed["order_id"]}, SUPERVISOR) == (
        403,
        "approval_beyond_rights",
    )
    assert await refused(rt, "approve_order", {"order_id": placed["order_id"]}, OTHER_AREA_MANAGER) == (
        403,
        "outside_line",
    )
    assert await refused(rt, "approve_order", {"order_id": placed["order_id"]}, CLERK) == (403, "role_not_allowed")
    assert await refused(rt, "deliver_order", {"order_id": placed["order_id"]}, SYSTEM) == (409, "order_not_confirmed")
    assert await event_count(rt) == before
    approved = await ok(
        rt, "approve_order", {"order_id": placed["order_id"], "reason": "stock for the new season"}, AREA_MANAGER
    )
    assert approved["status"] == "confirmed"
    row = await order_row(rt, placed["order_id"])
    assert (row["status"], row["approved_by"]) == ("confirmed", "am1")
    # The approval keeps its reason in the history.
    async with rt.pool.acquire() as conn:
        decided = await conn.fetchval("SELECT data FROM events WHERE event_type = 'order.approved'")
    assert (decided["approver_id"], decided["reason"]) == ("am1", "stock for the new season")


async def test_credit_limit_and_overdue_debt_send_orders_to_the_sales_manager(rt, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1", credit_limit_fen=5_000, payment_terms_days=10)
    first = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}, REP)
    assert first["status"] == "confirmed"  # 3,000 of 5,000
    second = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 7}]}, REP)
    assert (second["approval_reasons"], second["required_role"]) == (["credit_limit_exceeded"], "sales_manager")
    assert await refused(rt, "approve_order", {"order_id": second["order_id"]}, AREA_MANAGER) == (
        403,
        "approval_beyond_rights",
    )
    await ok(rt, "reject_order", {"order_id": second["order_id"], "reason": "over the limit"}, SALES_MANAGER)
    assert (await order_row(rt, second["order_id"]))["reject_reason"] == "over the limit"
    # the first is delivered and not paid within its 10 days: the next order needs approval
    await ok(rt, "deliver_order", {"order_id": first["order_id"]}, SYSTEM)
    # On its due date the invoice is not overdue yet (salesplatform.dues): no approval for that.
    clock.advance(timedelta(days=10))
    on_due_date = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}]}, REP)
    assert on_due_date["status"] == "confirmed"
    clock.advance(timedelta(days=1))
    late = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}]}, REP)
    assert (late["approval_reasons"], late["required_role"]) == (["overdue_receivables"], "sales_manager")


async def test_orders_of_one_customer_in_concurrent_transactions_are_decided_one_after_the_other(rt) -> None:
    """While another transaction holds the customer's credit claim, an order for that customer
    is not decided, alone or in a batch; once it commits, each decides on the other's order."""
    await define_skus(rt)
    await add_customer(rt, "c1", credit_limit_fen=5_000)
    line = {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}  # 3,000 each
    before = await event_count(rt)
    async with rt.pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        assert await try_claims(holder, [customer_claim("c1")]) == ["customer:c1"]
        alone = asyncio.create_task(rt.run_command("place_order", line, REP))
        batch = asyncio.create_task(rt.bus.dispatch_many([Request("place_order", line, REP)]))
        await asyncio.sleep(0.5)
        assert not alone.done() and not batch.done()
        assert await event_count(rt) == before
        await tx.commit()
    decided = [await asyncio.wait_for(alone, 10), (await asyncio.wait_for(batch, 10))[0]]
    assert all(o.ok for o in decided)
    assert sorted(o.result["status"] for o in decided) == ["confirmed", "pending_approval"]


async def test_orders_of_one_batch_each_decide_on_what_the_ones_before_wrote(rt) -> None:
    """A batch reads its orders' customers, SKUs and promotions ahead, once; what a command of
    the batch changes (a promotion planned, a customer's open orders, a promotion's budget, an
    order placed) is read again by the commands after it."""
    await define_skus(rt)
    await add_customer(rt, "c1", credit_limit_fen=5_000)
    await add_customer(rt, "c2")
    cola = {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}
    outcomes = await rt.bus.dispatch_many(
        [
            Request(
                "plan_promotion",
                {
                    "promotion_id": "spring",
                    "name": "Spring cola",
                    "starts_on": "2026-03-01",
                    "ends_on": "2026-03-31",
                    "skus": ["COLA"],
                    "channels": ["retail"],
                    "discount_percent": 10,
                    "budget_fen": 500,
                },
                SALES_MANAGER,
            ),
            Request("place_order", cola, REP),
            Request("place_order", cola, REP),
            Request(
                "place_order", {"order_id": "o-1", "customer_id": "c2", "lines": [{"sku": "TEA", "quantity": 1}]}, REP
            ),
            Request(
                "place_order", {"order_id": "o-1", "customer_id": "c2", "lines": [{"sku": "TEA", "quantity": 1}]}, REP
            ),
        ]
    )
    assert all(o.ok for o in outcomes), [o.error for o in outcomes]
    first, second, once, again = (o.result for o in outcomes[1:])
    assert (first["status"], first["amount_fen"], first["lines"][0]["promotion_id"]) == ("confirmed", 2700, "spring")
    # the budget is spent, and 2,700 open + 3,000 passes the limit of 5,000
    assert (second["amount_fen"], second["lines"][0]["promotion_id"]) == (3000, None)
    assert (second["status"], second["approval_reasons"]) == ("pending_approval", ["credit_limit_exceeded"])
    assert "already_placed" not in once and again["already_placed"] is True


async def test_prices_between_floor_and_list_are_the_area_managers_call(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    line = {"sku": "COLA", "quantity": 10, "unit_price_fen": 280}
    by_rep = await ok(rt, "place_order", {"customer_id": "c1", "lines": [line]}, REP)
    assert (by_rep["status"], by_rep["approval_reasons"]) == ("pending_approval", ["price_below_list"])
    by_manager = await ok(rt, "place_order", {"customer_id": "c1", "lines": [line]}, AREA_MANAGER)
    assert by_manager["status"] == "confirmed"
    below_floor = {"sku": "COLA", "quantity": 10, "unit_price_fen": 200}
    before = await event_count(rt)
    assert await refused(rt, "place_order", {"customer_id": "c1", "lines": [below_floor]}, REP) == (
        403,
        "price_below_floor",
    )
    assert await event_count(rt) == before
    by_manager_below = await ok(rt, "place_order", {"customer_id": "c1", "lines": [below_floor]}, AREA_MANAGER)
    assert by_manager_below["approval_reasons"] == ["price_below_floor"]


async def test_bad_input_changes_nothing(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    await add_customer(rt, "c2", rep_id="r2")
    before = await event_count(rt)
    line = [{"sku": "COLA", "quantity": 1}]

    async def place(customer_id: str, lines: list, actor=REP) -> tuple[int, str]:
        return await refused(rt, "place_order", {"customer_id": customer_id, "lines": lines}, actor)

    assert await place("nobody", line) == (404, "unknown_customer")
    assert await place("c1", [{"sku": "GIN", "quantity": 1}]) == (404, "unknown_sku")
    assert await place("c1", [{"sku": "COLA", "quantity": 0}]) == (422, "validation_failed")
    assert await place("c1", [{"sku": "COLA", "quantity": -3}]) == (422, "validation_failed")
    assert await place("c1", []) == (422, "validation_failed")
    assert await place("c1", line + line) == (422, "validation_failed")  # one line per SKU
    assert await place("c2", line) == (403, "outside_line")
    assert await place("c1", line, CLERK) == (403, "role_not_allowed")
    assert await refused(rt, "deliver_order", {"order_id": "nope"}, SYSTEM) == (404, "order_not_found")
    sku = {
        "sku": "X",
        "name": "x",
        "brand": "b",
        "product_group": "g",
        "package": "p",
        "list_price_fen": 100,
        "floor_price_fen": 120,
    }
    assert await refused(rt, "define_sku", sku, SALES_MANAGER) == (409, "floor_above_list")
    assert await event_count(rt) == before
    other = await ok(rt, "place_order", {"customer_id": "c2", "lines": line}, OTHER_REP)
    cancel = {"order_id": other["order_id"], "reason": "x"}
    assert await refused(rt, "cancel_order", cancel, REP) == (403, "outside_line")


async def test_a_delivery_not_done_in_24_hours_is_flagged_and_arrives_late(rt, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1", payment_terms_days=30)
    placed = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}, REP)
    on_time = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "TEA", "quantity": 1}]}, REP)
    await ok(rt, "dispatch_order", {"order_id": on_time["order_id"]}, SYSTEM)
    clock.advance(timedelta(hours=23))
    delivered = await ok(rt, "deliver_order", {"order_id": on_time["order_id"]}, SYSTEM)
    assert delivered["on_time"] is True
    assert (await check_deadlines(rt)).done == {}
    clock.advance(timedelta(hours=2))
    assert (await check_deadlines(rt)).done == {"flag_delivery_overdue": [placed["order_id"]]}
    assert (await check_deadlines(rt)).done == {}  # flagged once
    assert (await order_row(rt, placed["order_id"]))["delivery_overdue"] is True
    late = await ok(rt, "deliver_order", {"order_id": placed["order_id"]}, SYSTEM)
    assert late["on_time"] is False
    async with reading(rt.pool, "receivables") as conn:
        invoice = await conn.fetchrow("SELECT * FROM invoices WHERE order_id = $1", placed["order_id"])
    assert (invoice["amount_fen"], invoice["open_fen"]) == (3000, 3000)
    assert invoice["due_on"] - invoice["issued_on"] == timedelta(days=30)
    await ok(rt, "confirm_delivery", {"order_id": placed["order_id"], "delivered": True}, REP)
    assert (await order_row(rt, placed["order_id"]))["delivery_confirmed"] is True


async def test_cancel_before_dispatch_only(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    placed = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}]}, REP)
    await ok(rt, "cancel_order", {"order_id": placed["order_id"], "reason": "duplicate"}, REP)
    assert (await order_row(rt, placed["order_id"]))["cancel_reason"] == "duplicate"
    dispatched = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 1}]}, REP)
    await ok(rt, "dispatch_order", {"order_id": dispatched["order_id"]}, SYSTEM)
    assert await refused(rt, "cancel_order", {"order_id": dispatched["order_id"], "reason": "x"}, REP) == (
        409,
        "order_already_dispatched",
    )


async def test_a_partial_deposit_not_completed_in_24_hours_is_flagged_and_settles_the_invoice(rt, clock) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    partial = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}, REP)
    complete = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "TEA", "quantity": 1}]}, REP)
    result = await ok(
        rt, "record_deposit", {"order_id": partial["order_id"], "amount_fen": 1000, "agreed_fen": 2000}, REP
    )
    assert result["deposit_due_by"] is not None
    await ok(rt, "record_deposit", {"order_id": complete["order_id"], "amount_fen": 400}, REP)
    assert await refused(rt, "record_deposit", {"order_id": partial["order_id"], "amount_fen": 1500}, REP) == (
        409,
        "deposit_exceeds_agreed",
    )
    clock.advance(timedelta(hours=25))
    flagged = await check_deadlines(rt)
    assert flagged.of("flag_deposit_overdue") == [partial["order_id"]]
    assert (await order_row(rt, partial["order_id"]))["deposit_overdue"] is True
    await ok(rt, "record_deposit", {"order_id": partial["order_id"], "amount_fen": 1000}, REP)
    await ok(rt, "deliver_order", {"order_id": partial["order_id"]}, SYSTEM)
    async with reading(rt.pool, "receivables") as conn:
        invoice = await conn.fetchrow("SELECT * FROM invoices WHERE order_id = $1", partial["order_id"])
    assert (invoice["amount_fen"], invoice["paid_fen"], invoice["open_fen"]) == (3000, 2000, 1000)


async def test_promotions_apply_within_budget_and_decline_with_a_reason(rt) -> None:
    await define_skus(rt)
    await add_customer(rt, "c1")
    await ok(
        rt,
        "plan_promotion",
        {
            "promotion_id": "spring",
            "name": "Spring cola",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
            "skus": ["COLA"],
            "channels": ["retail"],
            "discount_percent": 10,
            "budget_fen": 500,
        },
        SALES_MANAGER,
    )
    await ok(
        rt,
        "plan_promotion",
        {
            "promotion_id": "tea-gift",
            "name": "Tea 5+1",
            "starts_on": "2026-03-01",
            "ends_on": "2026-03-31",
            "skus": ["TEA"],
            "gift_rule": {"buy": 5, "get": 1},
            "budget_fen": 100_000,
        },
        SALES_MANAGER,
    )
    first = await ok(
        rt,
        "place_order",
        {
            "customer_id": "c1",
            "lines": [{"sku": "COLA", "quantity": 10}, {"sku": "TEA", "quantity": 11}],
        },
        REP,
    )
    assert [(x["unit_price_fen"], x["gift_quantity"], x["promotion_id"]) for x in first["lines"]] == [
        (270, 0, "spring"),
        (400, 2, "tea-gift"),
    ]
    second = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}, REP)
    assert second["lines"][0]["promotion_id"] is None and second["amount_fen"] == 3000
    notes = (await order_row(rt, second["order_id"]))["promotion_notes"]
    assert notes[0]["promotion_id"] == "spring" and notes[0]["reason"].startswith("budget_exhausted")
    async with reading(rt.pool, "promotions") as conn:
        spent = dict(await conn.fetch("SELECT promotion_id, spent_fen FROM promotions"))
    assert spent == {"spring": 300, "tea-gift": 800}
    await ok(rt, "cancel_order", {"order_id": first["order_id"], "reason": "changed"}, REP)
    async with reading(rt.pool, "promotions") as conn:
        assert dict(await conn.fetch("SELECT promotion_id, spent_fen FROM promotions")) == {"spring": 0, "tea-gift": 0}
    third = await ok(rt, "place_order", {"customer_id": "c1", "lines": [{"sku": "COLA", "quantity": 10}]}, REP)
    assert third["lines"][0]["promotion_id"] == "spring"
