"""Bulk import of history: counts and totals right, rejected records listed with line, field and
message, a rerun appends nothing, the events reach the read models, the outbox and NATS, and
the same import works through the command (ingest), the HTTP upload and the command line."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from orders_testkit import (
    REP,
    SALES_MANAGER,
    SIGNING_KEY,
    SKUS,
    START,
    SYSTEM,
    add_customer,
    define_skus,
    feed_customers,
    ok,
    refused,
)

from bench.history_data import customer_envelopes, synthetic_history
from orders_service.application.history import import_lines, order_id_for_record
from orders_service.domain.events import registry
from orders_service.domain.policy import OrderPolicy
from orders_service.importer import IMPORT_ACTOR
from salesplatform.auth import mint
from salesplatform.projections import reading
from salesplatform.service import http_app

CUSTOMERS = [f"h{i:03d}" for i in range(40)]
PRICES = {sku: list_fen for sku, (list_fen, _, _) in SKUS.items()}


async def history_ready(rt) -> None:
    await define_skus(rt)
    await feed_customers(rt, customer_envelopes(CUSTOMERS, at=START - timedelta(days=400), terms_days=30))


def records(n: int) -> list[dict]:
    return list(synthetic_history(n, CUSTOMERS, PRICES, end=START - timedelta(hours=1)))


async def run_import(rt, lines: list[bytes], chunk_size: int = 2000, **kw):
    return await import_lines(
        rt.pool,
        lines,
        actor=IMPORT_ACTOR,
        clock=rt.clock,
        policy=OrderPolicy(),
        chunk_size=chunk_size,
        **kw,
    )


async def test_five_thousand_records_import_exactly_once_with_right_totals(rt) -> None:
    await history_ready(rt)
    history = records(5000)
    lines = [orjson.dumps(r) for r in history]
    orders = [r for r in history if r["kind"] == "order"]
    deliveries = [r for r in history if r["kind"] == "delivery"]
    payments = [r for r in history if r["kind"] == "payment"]
    ordered = sum(x["quantity"] * x["unit_price_fen"] for r in orders for x in r["lines"])
    amounts = {r["record_id"]: sum(x["quantity"] * x["unit_price_fen"] for x in r["lines"]) for r in orders}
    invoiced = sum(amounts[d["order_record_id"]] for d in deliveries)
    paid = sum(p["amount_fen"] for p in payments)

    report = await run_import(rt, lines)
    assert report.rejected == []
    assert (report.records, report.accepted, report.already_imported) == (5000, 5000, 0)
    assert (report.orders, report.deliveries, report.payments) == (len(orders), len(deliveries), len(payments))
    assert {k: len(v) for k, v in report.ids.items()} == {
        "orders": len(orders),
        "invoices": len(deliveries),
        "payments": len(payments),
    }
    delivery = deliveries[0]
    order_id = report.ids["orders"][delivery["order_record_id"]]
    invoice_ns = uuid.UUID("6a0f6f52-3d55-4b7e-9a51-5f3e1d4c2b10")
    assert report.ids["invoices"][delivery["record_id"]] == str(uuid.uuid5(invoice_ns, order_id))
    assert report.events_appended == 2 * len(orders) + 2 * len(deliveries) + len(payments)
    assert (report.order_amount_fen, report.payment_amount_fen) == (ordered, paid)

    async with rt.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE causation_id LIKE 'import:%'")
    assert stored == report.events_appended
    async with reading(rt.pool, "order_board") as conn:
        board = await conn.fetchrow(
            "SELECT count(*) AS n, sum(amount_fen)::bigint AS amount, count(*) FILTER (WHERE status = 'delivered') AS delivered"
            " FROM orders WHERE source = 'import'"
        )
        assert await conn.fetchval("SELECT count(*) FROM order_lines") == sum(len(r["lines"]) for r in orders)
    assert (board["n"], board["amount"], board["delivered"]) == (len(orders), ordered, len(deliveries))
    async with reading(rt.pool, "receivables") as conn:
        totals = await conn.fetchrow(
            "SELECT sum(amount_fen)::bigint AS invoiced, sum(paid_fen)::bigint AS paid,"
            " sum(open_fen)::bigint AS open FROM invoices"
        )
        allocated = await conn.fetchval("SELECT sum(amount_fen)::bigint FROM allocations")
    assert (totals["invoiced"], totals["paid"], allocated) == (invoiced, paid, paid)
    assert totals["open"] == invoiced - paid and isinstance(totals["open"], int)

    async with rt.pool.acquire() as conn:  # every imported event is exactly the published contract
        sample = await conn.fetch(
            "SELECT DISTINCT ON (event_type) event_type, data FROM events WHERE causation_id LIKE 'import:%'"
        )
    assert {r["event_type"] for r in sample} == {
        "order.placed",
        "order.confirmed",
        "order.delivered",
        "invoice.issued",
        "payment.received",
    }
    for r in sample:
        registry.model(r["event_type"]).model_validate(r["data"])

    again = await run_import(rt, lines, chunk_size=1500)
    assert (again.events_appended, again.already_imported, again.accepted, again.rejected) == (0, 5000, 0, [])
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE causation_id LIKE 'import:%'") == stored


async def test_records_of_later_chunks_find_what_earlier_chunks_imported(rt) -> None:
    """Deliveries and payments of a later chunk find their orders and open invoices in the read
    models an earlier chunk wrote, with the same result as one chunk."""
    await history_ready(rt)
    history = records(3000)
    deliveries = [r for r in history if r["kind"] == "delivery"]
    payments = [r for r in history if r["kind"] == "payment"]
    report = await run_import(rt, [orjson.dumps(r) for r in history], chunk_size=250)
    assert report.rejected == []
    assert (report.accepted, report.deliveries, report.payments) == (3000, len(deliveries), len(payments))
    paid = sum(p["amount_fen"] for p in payments)
    async with reading(rt.pool, "receivables") as conn:
        assert await conn.fetchval("SELECT sum(paid_fen)::bigint FROM invoices") == paid
        assert await conn.fetchval("SELECT count(*) FROM invoices WHERE open_fen < 0") == 0


async def test_the_report_keeps_a_chunk_of_ids_in_one_string_and_names_every_record(rt) -> None:
    """What the records became is kept a chunk at a time, not as an object per record (which
    made the importer's memory grow with the file), and still names every record's id."""
    await history_ready(rt)
    history = records(3000)
    report = await run_import(rt, [orjson.dumps(r) for r in history], chunk_size=500)
    assert report.rejected == []
    kept = [block for blocks in report.imported.values() for block in blocks] + report.delivered_orders
    assert len(kept) <= 4 * (3000 // 500)  # a string per kind per chunk, however many records
    ids = report.ids
    orders = [r["record_id"] for r in history if r["kind"] == "order"]
    assert list(ids["orders"]) == orders
    assert all(ids["orders"][rid] == order_id_for_record(rid) for rid in orders)
    assert list(ids["invoices"]) == [r["record_id"] for r in history if r["kind"] == "delivery"]
    assert list(ids["payments"]) == [r["record_id"] for r in history if r["kind"] == "payment"]


async def test_rejected_records_are_listed_and_change_nothing(rt) -> None:
    await history_ready(rt)
    placed = (START - timedelta(days=3)).isoformat()
    good = {
        "kind": "order",
        "record_id": "G1",
        "customer_id": "h001",
        "placed_at": placed,
        "lines": [{"sku": "COLA", "quantity": 10, "unit_price_fen": 300}],
    }
    lines = [
        orjson.dumps(good),
        b"{not json",
        orjson.dumps({**good, "record_id": "B1", "customer_id": "nobody"}),
        orjson.dumps({**good, "record_id": "B2", "lines": [{"sku": "GIN", "quantity": 1, "unit_price_fen": 1}]}),
        orjson.dumps({**good, "record_id": "B3", "lines": [{"sku": "COLA", "quantity": 0, "unit_price_fen": 1}]}),
        orjson.dumps(good),  # the same record id twice
        orjson.dumps(
            {
                "kind": "delivery",
                "record_id": "D1",
                "order_record_id": "G1",
                "delivered_at": (START - timedelta(days=2)).isoformat(),
            }
        ),
        orjson.dumps(
            {
                "kind": "delivery",
                "record_id": "D2",
                "order_record_id": "G1",
                "delivered_at": (START - timedelta(days=2)).isoformat(),
            }
        ),
        orjson.dumps({"kind": "delivery", "record_id": "D3", "order_record_id": "NOPE", "delivered_at": placed}),
        orjson.dumps(
            {
                "kind": "payment",
                "record_id": "P1",
                "customer_id": "h001",
                "amount_fen": 3001,
                "received_on": "2026-03-01",
            }
        ),
        orjson.dumps(
            {
                "kind": "payment",
                "record_id": "P2",
                "customer_id": "h001",
                "amount_fen": 1000,
                "received_on": "2026-03-01",
            }
        ),
        orjson.dumps({"kind": "refund", "record_id": "X1"}),
    ]
    report = await run_import(rt, lines)
    got = {(r.line, r.record_id, r.field) for r in report.rejected}
    assert got == {
        (2, None, None),
        (3, "B1", "customer_id"),
        (4, "B2", "lines.0.sku"),
        (5, "B3", "lines.0.quantity"),
        (6, "G1", "record_id"),
        (8, "D2", "order_record_id"),
        (9, "D3", "order_record_id"),
        (10, "P1", "amount_fen"),
        (12, "X1", None),
    }
    messages = {r.line: r.message for r in report.rejected}
    assert "unknown customer" in messages[3] and "more than the 3000 fen open" in messages[10]
    assert (report.accepted, report.events_appended) == (3, 5)
    async with reading(rt.pool, "receivables") as conn:
        assert await conn.fetchval("SELECT open_fen FROM invoices") == 2000


async def test_imported_history_is_history_like_any_other(rt) -> None:
    """Its orders take returns, its payments count in receivables, its events reach NATS."""
    await history_ready(rt)
    await add_customer(rt, "c1")
    placed = START - timedelta(days=5)
    lines = [
        orjson.dumps(
            {
                "kind": "order",
                "record_id": "OLD-1",
                "customer_id": "c1",
                "placed_at": placed.isoformat(),
                "lines": [{"sku": "TEA", "quantity": 6, "unit_price_fen": 390}],
                "rep_id": "r1",
            }
        ),
        orjson.dumps(
            {
                "kind": "delivery",
                "record_id": "OLD-D1",
                "order_record_id": "OLD-1",
                "delivered_at": (placed + timedelta(hours=30)).isoformat(),
            }
        ),
    ]
    report = await run_import(rt, lines)
    assert report.rejected == [] and report.events_appended == 4
    order_id = order_id_for_record("OLD-1")
    async with reading(rt.pool, "order_board") as conn:
        row = await conn.fetchrow("SELECT status, on_time, rep_id FROM orders WHERE order_id = $1", order_id)
    assert tuple(row) == ("delivered", False, "r1")
    ret = await ok(
        rt,
        "request_return",
        {"order_id": order_id, "lines": [{"sku": "TEA", "quantity": 2}], "scope": "part", "reason": "transit_damage"},
        REP,
    )
    assert ret["amount_fen"] == 780
    # a live payment against the imported invoice, and the next delivery's file referring back
    await ok(rt, "record_payment", {"customer_id": "c1", "amount_fen": 340}, REP)
    assert await refused(rt, "record_payment", {"customer_id": "c1", "amount_fen": 2001}, REP) == (
        409,
        "payment_exceeds_open_amount",
    )
    later = await run_import(
        rt,
        [
            orjson.dumps(
                {
                    "kind": "payment",
                    "record_id": "OLD-P1",
                    "customer_id": "c1",
                    "amount_fen": 2000,
                    "received_on": "2026-02-28",
                }
            )
        ],
    )
    assert later.rejected == [] and later.events_appended == 1
    async with reading(rt.pool, "receivables") as conn:
        assert await conn.fetchval("SELECT open_fen FROM invoices WHERE order_id = $1", order_id) == 0

    async def published() -> int:
        return (await rt.js.stream_info(rt.topology.event_stream)).state.messages

    for _ in range(100):
        async with rt.pool.acquire() as conn:
            imported_out = await conn.fetchval(
                "SELECT count(*) FROM outbox o JOIN events e USING (position) WHERE e.causation_id LIKE 'import:%'"
            )
        if imported_out == 0:
            break
        await asyncio.sleep(0.05)
    assert imported_out == 0
    msgs = await published()
    async with rt.pool.acquire() as conn:
        assert msgs == await conn.fetchval("SELECT count(*) FROM events WHERE origin IS NULL")


async def test_history_through_the_command_http_upload_and_command_line(rt, service_settings) -> None:
    await history_ready(rt)
    placed = (START - timedelta(days=2)).isoformat()
    records_ = [
        {
            "kind": "order",
            "record_id": "C1",
            "customer_id": "h002",
            "placed_at": placed,
            "lines": [{"sku": "WATER", "quantity": 4, "unit_price_fen": 150}],
        },
        {"kind": "order", "record_id": "C2", "customer_id": "h002", "placed_at": placed, "lines": []},
    ]
    via_command = await ok(rt, "import_history", {"records": records_}, SYSTEM)
    assert (via_command["accepted"], via_command["events_appended"], via_command["rejected_count"]) == (1, 2, 1)
    assert via_command["rejected"][0] == {
        "line": 2,
        "record_id": "C2",
        "field": "lines",
        "message": via_command["rejected"][0]["message"],
    }
    assert await refused(rt, "import_history", {"records": records_}, REP) == (403, "role_not_allowed")
    again = await ok(rt, "import_history", {"records": records_[:1]}, SYSTEM)
    assert (again["already_imported"], again["events_appended"]) == (1, 0)
    # The report names the order it created, by the id the README says how to derive; a rerun too.
    c1 = str(uuid.uuid5(uuid.UUID("9c3d2a4e-6f1b-4e8a-b7c5-3a2f1e0d9c87"), "order:C1"))
    assert via_command["ids"] == again["ids"] == {"orders": {"C1": c1}, "invoices": {}, "payments": {}}
    async with rt.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", f"order-{c1}") == 2

    history = records(400)
    upload = b"\n".join(orjson.dumps(r) for r in history[:300]) + b"\n\n"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app(rt)), base_url="http://orders") as http:
        denied = await http.post(
            "/imports", content=upload, headers={"Authorization": f"Bearer {mint(REP, SIGNING_KEY)}"}
        )
        assert denied.status_code == 403
        answer = await http.post(
            "/imports",
            content=upload,
            headers={
                "Authorization": f"Bearer {mint(SALES_MANAGER, SIGNING_KEY)}",
                "Content-Type": "application/x-ndjson",
            },
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["records"], answer.json()["accepted"], answer.json()["rejected"]) == (300, 300, [])

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"history-{service_settings.stream_prefix}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in history))
    try:
        env = {**os.environ, "ORDERS_DATABASE_URL": service_settings.database_url}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "orders_service.importer", str(path)],
            capture_output=True,
            env=env,
            timeout=60,
        )
    finally:
        path.unlink()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    cli = json.loads(done.stdout)
    assert (cli["records"], cli["already_imported"], cli["accepted"]) == (400, 300, 100)


@pytest.mark.parametrize("bad", [b'{"kind": "order"}', b"[]"])
async def test_a_file_of_only_bad_records_appends_nothing(rt, bad: bytes) -> None:
    await history_ready(rt)
    report = await run_import(rt, [bad])
    assert report.accepted == 0 and len(report.rejected) >= 1 and report.events_appended == 0


async def test_the_same_file_imported_twice_at_once_is_stored_once(rt) -> None:
    await history_ready(rt)
    lines = [orjson.dumps(r) for r in records(300)]
    results = await asyncio.gather(run_import(rt, lines), run_import(rt, lines), return_exceptions=True)
    conflicts = [r for r in results if isinstance(r, BaseException)]
    assert all(getattr(c, "code", None) == "concurrency_conflict" for c in conflicts), conflicts
    retry = await run_import(rt, lines)
    assert retry.rejected == []
    async with rt.pool.acquire() as conn:
        stored = await conn.fetchval("SELECT count(*) FROM events WHERE causation_id LIKE 'import:%'")
        twice = await conn.fetchval(
            "SELECT count(*) FROM (SELECT causation_id, event_type FROM events WHERE causation_id LIKE 'import:%'"
            " GROUP BY 1, 2 HAVING count(*) > 1) AS dup"
        )
    done = [r for r in results if not isinstance(r, BaseException)]
    assert stored == sum(r.events_appended for r in done) + retry.events_appended > 0
    assert twice == 0


async def test_fields_of_the_wrong_type_or_shape_are_rejected_by_line_and_field(rt) -> None:
    await history_ready(rt)
    good = {
        "kind": "order",
        "record_id": "T1",
        "customer_id": "h001",
        "placed_at": (START - timedelta(days=3)).isoformat(),
        "lines": [{"sku": "COLA", "quantity": 10, "unit_price_fen": 300}],
    }
    line = {"sku": "COLA", "quantity": 10, "unit_price_fen": 300}
    lines = [
        orjson.dumps({**good, "placed_at": "2026-02-30T10:00:00+08:00"}),  # no such day
        orjson.dumps({**good, "placed_at": "2026-02-03T10:00:00"}),  # no UTC offset
        orjson.dumps({**good, "lines": [line, {**line, "sku": "TEA", "quantity": 1.5}]}),
        orjson.dumps({**good, "lines": [{**line, "colour": "red"}]}),
        orjson.dumps({**good, "note": "x"}),
        orjson.dumps({**good, "record_id": 7}),
        orjson.dumps({**good, "lines": "COLA"}),
        orjson.dumps(
            {"kind": "payment", "record_id": "P9", "customer_id": "h001", "amount_fen": 5, "received_on": "2026-13-01"}
        ),
        orjson.dumps({"kind": "delivery", "record_id": "D9", "order_record_id": "T1", "delivered_at": None}),
        orjson.dumps({**good, "record_id": "  T1  "}),  # white space around a text is dropped
    ]
    report = await run_import(rt, lines)
    assert [(r.line, r.field) for r in report.rejected] == [
        (1, "placed_at"),
        (2, "placed_at"),
        (3, "lines.1.quantity"),
        (4, "lines.0.colour"),
        (5, "note"),
        (6, "record_id"),
        (7, "lines"),
        (8, "received_on"),
        (9, "delivered_at"),
    ]
    assert (report.accepted, report.events_appended) == (1, 2)
    assert report.ids["orders"] == {"T1": order_id_for_record("T1")}


def test_the_importer_does_not_load_the_dev_stack() -> None:
    probe = (
        "import sys, orders_service.importer; print(any(m.startswith('salesplatform.devstack') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


async def test_approvals_and_cancellations_import_with_their_history(rt) -> None:
    """An order that needed approval arrives with its approval history; a cancellation closes an
    order like a delivery does, and the second closing record of an order is refused."""
    await history_ready(rt)
    placed = START - timedelta(days=4)
    approved = placed + timedelta(hours=2)

    def order(record_id: str, sku: str, quantity: int, price: int, **more) -> bytes:
        lines = [{"sku": sku, "quantity": quantity, "unit_price_fen": price}]
        return orjson.dumps(
            {"kind": "order", "record_id": record_id, "customer_id": "h001", "placed_at": placed.isoformat()}
            | {"lines": lines}
            | more
        )

    def closing(kind: str, record_id: str, order_record_id: str, hours: int, **more) -> bytes:
        at = "delivered_at" if kind == "delivery" else "cancelled_at"
        moment = (placed + timedelta(hours=hours)).isoformat()
        return orjson.dumps(
            {"kind": kind, "record_id": record_id, "order_record_id": order_record_id, at: moment} | more
        )

    approval = {
        "required_role": "area_manager",
        "reasons": ["credit_limit_exceeded"],
        "approver_id": "m9",
        "approved_at": approved.isoformat(),
    }
    lines = [
        order("A1", "COLA", 10, 300, approval=approval),  # 3,000 fen
        order("A2", "TEA", 4, 390),  # 1,560 fen
        order("A3", "WATER", 5, 150),  # 750 fen
        closing("delivery", "D1", "A1", 20),
        closing("cancellation", "X2", "A2", 3, reason="customer withdrew"),
        closing("delivery", "D2", "A2", 5),  # refused: A2 is cancelled
        closing("cancellation", "X1", "A1", 30, reason="too late"),  # refused: A1 is delivered
        closing("delivery", "D3", "A3", 1),
        orjson.dumps(
            {
                "kind": "payment",
                "record_id": "P1",
                "customer_id": "h001",
                "amount_fen": 1000,
                "received_on": "2026-03-01",
            }
        ),
        order("A4", "COLA", 1, 300, approval={**approval, "approved_at": (placed - timedelta(hours=1)).isoformat()}),
    ]
    report = await run_import(rt, lines)
    assert [(r.line, r.record_id, r.field) for r in report.rejected] == [
        (6, "D2", "order_record_id"),
        (7, "X1", "order_record_id"),
        (10, "A4", "approval.approved_at"),
    ]
    assert "is cancelled" in report.rejected[0].message and "is delivered" in report.rejected[1].message
    assert (report.orders, report.deliveries, report.cancellations, report.payments) == (3, 2, 1, 1)
    # A1: placed, approval required, approved, confirmed, delivered + invoice; A2: placed, confirmed,
    # cancelled; A3: placed, confirmed, delivered + invoice; P1: received.
    assert report.events_appended == 6 + 3 + 4 + 1

    a1, a2 = order_id_for_record("A1"), order_id_for_record("A2")
    async with rt.pool.acquire() as conn:
        history = await conn.fetch(
            "SELECT event_type, stream_version, occurred_at FROM events WHERE stream_id = $1 ORDER BY position",
            f"order-{a1}",
        )
    assert [(h["event_type"], h["stream_version"]) for h in history] == [
        ("order.placed", 1),
        ("order.approval_required", 2),
        ("order.approved", 3),
        ("order.confirmed", 4),
        ("order.delivered", 5),
    ]
    assert history[2]["occurred_at"] == approved
    async with reading(rt.pool, "order_board") as conn:
        first = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", a1)
        second = await conn.fetchrow("SELECT * FROM orders WHERE order_id = $1", a2)
    assert (first["status"], first["required_role"], first["approval_reasons"], first["approved_by"]) == (
        "delivered",
        "area_manager",
        ["credit_limit_exceeded"],
        "m9",
    )
    assert (first["confirmed_at"], first["deliver_by"]) == (approved, approved + timedelta(hours=24))
    assert first["on_time"] is True  # delivered 18 h after the approval, within 24 h
    assert (second["status"], second["cancel_reason"], second["delivered_at"]) == (
        "cancelled",
        "customer withdrew",
        None,
    )
    async with reading(rt.pool, "receivables") as conn:
        totals = await conn.fetchrow(
            "SELECT count(*) AS n, sum(amount_fen)::bigint AS invoiced, sum(paid_fen)::bigint AS paid,"
            " sum(open_fen)::bigint AS open FROM invoices WHERE customer_id = 'h001'"
        )
    assert tuple(totals) == (2, 3000 + 750, 1000, 3750 - 1000)

    again = await run_import(rt, lines)
    assert (again.events_appended, again.already_imported, again.accepted) == (0, 7, 0)
