"""A small month driven into the running services the way an outside system would: commands over
NATS request/reply and ingest as the `system` user (outside_driver.py, which imports nothing of
the platform, and examples/send_commands.py), reports read over HTTP, report changes followed by
examples/follow_reports.py. Every expected figure is worked out by hand below.

November 2026, company time zone Asia/Shanghai; COLA costs 250 fen.
  c-1 (retail, grade A; credit AA, limit 100,000, 30 days), c-2 (wholesale, grade B; credit A,
  limit 50,000, payable on delivery). Rep r-1 of district d-1, area a-1.
  11-02  o-1  c-1 COLA×20 = 5000, delivered the same day: invoice i-1 due 12-02.
  11-10  c-1 regraded to C.
  11-12  o-2  c-1 COLA×10 = 2500, delivered: invoice i-2 due 12-12.
  11-15  return of o-1, COLA×4 = 1000 (transit damage), approved (with its reason) and resolved
         with a credit note of 1000: i-1 open 4000.
  11-20  payment of 2000 from c-1, oldest invoice first: i-1 open 2000.
  11-30  o-3  c-2 COLA×8 = 2000, delivered today: invoice i-3 due today.
         A place_order for an unknown SKU is rejected (dead letter, with its key).
Target of r-1 for November: 10,000.

Sales (net): c-1 5000 + 2500 − 1000 = 6500 (20 + 10 − 4 = 26 units); c-2 2000 (8); r-1 8500.
Composition by grade at the sale: A 5000 (o-1), C 2500 − 1000 = 1500, B 2000; by the current
grade: C 6500, B 2000.
Receivables on 11-30: c-1 i-1 2000 + i-2 2500 = 4500, not due; c-2 i-3 2000 due today: not
overdue (past_due 0); on 12-01 it is one day past due (d1_30 2000, past_due 2000).
Credit: c-1 open 4500, headroom 95,500; c-2 open 2000, headroom 48,000.
Collections: 2000 from c-1, none overdue.
Targets: r-1 actual 8500 of 10,000 = 85%.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from outside_driver import EXAMPLES, Outside
from running_system import eventually

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.auth import mint
from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, ensure_streams_of, nats_password_for_tests
from salesplatform.events import Actor, Role
from salesplatform.service import http_app

MANAGER = Actor(id="m-1", role=Role.sales_manager)
GENERAL_MANAGER = Actor(id="gm-1", role=Role.general_manager)
SUPERVISOR = Actor(id="s-1", role=Role.supervisor, district="d-1", area="a-1")
REP = Actor(id="r-1", role=Role.rep, district="d-1", area="a-1")
CRM = Actor(id="crm-1", role=Role.system)


def at(day: str, hour: int = 10) -> datetime:
    """`hour` o'clock of a November day in Shanghai, as UTC."""
    return datetime.fromisoformat(f"2026-11-{day}T{hour:02d}:00:00+08:00").astimezone(UTC)


async def serve(app: Any, stack: contextlib.AsyncExitStack) -> str:
    """The app on a real loopback port, for programs in other processes."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
    )
    task = asyncio.create_task(server.serve())
    await eventually(lambda: asyncio.sleep(0, server.started), timeout=30, interval=0.02)

    async def stop() -> None:
        server.should_exit = True
        await task

    stack.push_async_callback(stop)
    return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


@pytest_asyncio.fixture
async def world(start_service, nats_url, unique_prefix) -> AsyncIterator[tuple[Outside, FixedClock]]:
    clock = FixedClock(at("02", 9))
    # The visit service's stream exists, as in a running system (reporting consumes it).
    await ensure_streams_of(nats_url, unique_prefix, ("visit",))
    customer = await start_service(customer_definition(), clock=clock)
    orders = await start_service(orders_definition(), clock=clock)
    reporting = await start_service(reporting_definition(), clock=clock)
    async with contextlib.AsyncExitStack() as stack:
        urls = {
            "customer": await serve(http_app(customer.runtime), stack),
            "orders": await serve(http_app(orders.runtime), stack),
            "reporting": await serve(http_app(reporting.runtime), stack),
        }
        outside = await Outside.connect(nats_url, nats_password_for_tests("system"), unique_prefix, urls)
        stack.push_async_callback(outside.close)
        yield outside, clock


def token(actor: Actor) -> str:
    """What the outside program is handed: the tokens of the people and the system it acts for."""
    return mint(actor, TEST_SIGNING_KEY)


async def set_up_the_organisation(o: Outside) -> None:
    m = token(MANAGER)
    await o.ok("customer", "define_division", {"division_id": "dv-1", "name": "East"}, m)
    await o.ok("customer", "define_area", {"area_id": "a-1", "name": "Pudong", "division_id": "dv-1"}, m)
    await o.ok("customer", "define_district", {"district_id": "d-1", "name": "Lujiazui", "area_id": "a-1"}, m)
    await o.ok(
        "customer", "assign_staff", {"staff_id": "s-1", "name": "Wang", "role": "supervisor", "district_id": "d-1"}, m
    )
    await o.ok(
        "customer",
        "assign_staff",
        {"staff_id": "r-1", "name": "Li", "role": "rep", "district_id": "d-1", "supervisor_id": "s-1"},
        m,
    )
    for cid, name, channel, grade, rating, limit, terms in (
        ("c-1", "Fresh Mart", "retail", "A", "AA", 100_000, 30),
        ("c-2", "Bulk Foods", "wholesale", "B", "A", 50_000, 0),
    ):
        await o.ok(
            "customer",
            "register_customer",
            {
                "customer_id": cid,
                "name": name,
                "address": "1 Century Ave",
                "phone": "13800138000",
                "nature": "company",
                "channel": channel,
                "location_type": "residential",
            },
            token(REP),
        )
        await o.ok("customer", "approve_customer", {"customer_id": cid, "status": "active"}, token(SUPERVISOR))
        await o.ok("customer", "classify_customer", {"customer_id": cid, "grade": grade, "reason": "yearly review"}, m)
        await o.ok(
            "customer",
            "set_credit_limit",
            {"customer_id": cid, "credit_rating": rating, "credit_limit_fen": limit, "payment_terms_days": terms},
            m,
        )
    await o.ok(
        "orders",
        "define_sku",
        {
            "sku": "COLA",
            "name": "Cola 330ml",
            "brand": "Cola",
            "product_group": "soft drinks",
            "package": "can",
            "list_price_fen": 250,
            "floor_price_fen": 200,
        },
        m,
    )
    await o.ok(
        "reporting", "set_target", {"month": "2026-11", "level": "rep", "subject_id": "r-1", "amount_fen": 10_000}, m
    )


def order(oid: str, customer: str, quantity: int, sku: str = "COLA") -> dict[str, Any]:
    return {
        "service": "orders",
        "command": "place_order",
        "key": f"crm-{oid}",
        "payload": {
            "order_id": oid,
            "customer_id": customer,
            "lines": [{"sku": sku, "quantity": quantity}],
            "source": "system",
        },
    }


def delivery(oid: str) -> dict[str, Any]:
    return {"service": "orders", "command": "deliver_order", "key": f"crm-deliver-{oid}", "payload": {"order_id": oid}}


async def sell(o: Outside, scratch: Path, oid: str, customer: str, quantity: int) -> None:
    """An order and its delivery, each through ingest, reconciled by its key."""
    placed = await o.ingest([order(oid, customer, quantity)], token(CRM), scratch)
    assert placed[f"crm-{oid}"]["ok"] is True and placed[f"crm-{oid}"]["result"]["status"] == "confirmed", placed
    delivered = await o.ingest([delivery(oid)], token(CRM), scratch)
    assert delivered[f"crm-deliver-{oid}"]["ok"] is True, delivered


@pytest.mark.timeout(600)
async def test_a_month_driven_from_outside_gives_the_figures_worked_out_by_hand(world, tmp_path) -> None:
    o, clock = world
    await set_up_the_organisation(o)
    m = token(MANAGER)

    # A program keeping copies of report rows follows the changes from the start.
    follower = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "follow_reports.py"),
        env=o.environment(m, REPORTING_URL=o.urls["reporting"], REPORTS="sales,receivables"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert follower.stdout is not None
        ready = await asyncio.wait_for(follower.stdout.readline(), 60)
        assert ready.strip() == b'{"ready": true}', (ready, await follower.stderr.read() if follower.stderr else b"")

        # The orders service learns the customers from their events: wait until it knows them.
        async def customers_known() -> bool:
            answer = await o.request(
                "orders",
                "place_order",
                {
                    "order_id": "probe",
                    "customer_id": "c-2",
                    "lines": [{"sku": "COLA", "quantity": 1}],
                    "source": "system",
                },
                token(CRM),
            )
            if answer["ok"]:
                await o.ok("orders", "cancel_order", {"order_id": "probe", "reason": "a probe"}, token(CRM))
            return answer["ok"]

        await eventually(customers_known, timeout=60)

        clock.set(at("02"))
        await sell(o, tmp_path, "o-1", "c-1", 20)

        clock.set(at("10"))
        await o.ok("customer", "classify_customer", {"customer_id": "c-1", "grade": "C", "reason": "sales fell"}, m)

        clock.set(at("12"))
        await sell(o, tmp_path, "o-2", "c-1", 10)

        clock.set(at("15"))
        ret = await o.ok(
            "orders",
            "request_return",
            {"order_id": "o-1", "lines": [{"sku": "COLA", "quantity": 4}], "scope": "part", "reason": "transit_damage"},
            token(REP),
        )
        approved = await o.ok(
            "orders",
            "approve_return",
            {"return_id": ret["return_id"], "reason": "cans dented in the truck"},
            token(GENERAL_MANAGER),
        )
        assert approved["status"] == "approved"
        await o.ok(
            "orders",
            "resolve_return",
            {"return_id": ret["return_id"], "resolution": "credit_note", "amount_fen": 1000},
            token(GENERAL_MANAGER),
        )

        clock.set(at("20"))
        paid = await o.request("orders", "record_payment", {"customer_id": "c-1", "amount_fen": 2000}, token(CRM))
        assert paid["ok"] is True, paid

        clock.set(at("30"))
        await sell(o, tmp_path, "o-3", "c-2", 8)
        # A command no rule lets through is reconciled as well: its rejection carries its key.
        refused = await o.ingest([order("o-4", "c-2", 1, sku="NO-SUCH-SKU")], token(CRM), tmp_path)
        assert refused["crm-o-4"]["ok"] is False and refused["crm-o-4"]["status"] in (404, 409, 422), refused

        # Both services agree on what c-1 owes, and neither calls an invoice due today overdue.
        c1 = (await o.get("orders", "/receivables/c-1", m))["ageing"]
        c2 = (await o.get("orders", "/receivables/c-2", m))["ageing"]
        assert (c1["open_fen"], c1["overdue_fen"], c2["open_fen"], c2["overdue_fen"]) == (4500, 0, 2000, 0)

        async def reported() -> list[dict[str, Any]]:
            rows = await o.report("/reports/sales", m, from_="2026-11-01", to="2026-11-30", period="month")
            return rows if rows and rows[0]["amount_fen"] == 8500 else []

        await eventually(reported, timeout=60)
        await check_every_report(o, m)

        # The follower printed the changed rows: c-2's sale of today among them.
        seen: list[dict[str, Any]] = []

        async def followed() -> bool:
            assert follower.stdout is not None
            line = await asyncio.wait_for(follower.stdout.readline(), 60)
            seen.append(json.loads(line))
            return any(
                s["report"] == "sales"
                and any(r.get("customer_id") == "c-2" and r["amount_fen"] == 2000 for r in s["rows"])
                for s in seen
            )

        await eventually(followed, timeout=60)
        assert any(s["report"] == "receivables" for s in seen) or await eventually(followed, timeout=60)
    finally:
        if follower.returncode is None:
            follower.terminate()
        await follower.wait()


async def check_every_report(o: Outside, m: str) -> None:
    month = {"from_": "2026-11-01", "to": "2026-11-30"}

    by_customer = {
        r["customer_id"]: (r["amount_fen"], r["quantity"], r["returned_amount_fen"])
        for r in await o.report("/reports/sales", m, **month, period="total", group_by="customer")
    }
    assert by_customer == {"c-1": (6500, 26, 1000), "c-2": (2000, 8, 0)}
    days = {r["period_start"]: r["amount_fen"] for r in await o.report("/reports/sales", m, **month, period="day")}
    assert days == {"2026-11-02": 5000, "2026-11-12": 2500, "2026-11-15": -1000, "2026-11-30": 2000}

    grades = {r["grade"]: r["amount_fen"] for r in await o.report("/reports/composition", m, **month, by="grade")}
    assert grades == {"A": 5000, "B": 2000, "C": 1500}
    current = await o.report("/reports/composition", m, **month, by="grade", classification="current")
    assert {r["grade"]: r["amount_fen"] for r in current} == {"B": 2000, "C": 6500}
    districts = await o.report("/reports/composition", m, **month, by="district")
    assert [(r["district_id"], r["amount_fen"], r["amount_share"]) for r in districts] == [("d-1", 8500, 1.0)]

    ageing = {
        r["customer_id"]: (r["not_due"], r["d1_30"], r["open_fen"], r["past_due_fen"])
        for r in await o.report("/reports/receivables", m, as_of="2026-11-30")
    }
    assert ageing == {"c-1": (4500, 0, 4500, 0), "c-2": (2000, 0, 2000, 0)}
    tomorrow = {
        r["customer_id"]: (r["not_due"], r["d1_30"], r["past_due_fen"])
        for r in await o.report("/reports/receivables", m, as_of="2026-12-01")
    }
    assert tomorrow == {"c-1": (4500, 0, 0), "c-2": (0, 2000, 2000)}

    credit = {
        r["customer_id"]: (r["open_fen"], r["headroom_fen"], r["over_limit"], r["sales_amount_fen"])
        for r in await o.report("/reports/credit", m, **month, group_by="customer")
    }
    assert credit == {"c-1": (4500, 95_500, False, 6500), "c-2": (2000, 48_000, False, 2000)}

    collections = await o.report("/reports/collections", m, **month, group_by="customer")
    assert [(r["customer_id"], r["collected_fen"], r["overdue_collected_fen"]) for r in collections] == [
        ("c-1", 2000, 0)
    ]

    returns = await o.report("/reports/returns", m, **month)
    assert [(r["reason"], r["amount_fen"]) for r in returns] == [("transit_damage", 1000)]

    targets = await o.report("/reports/targets", m, month="2026-11", as_of="2026-11-30")
    assert [(t["subject_id"], t["actual_fen"], t["achievement"]["value"]) for t in targets] == [("r-1", 8500, 0.85)]

    kpi = await o.report("/reports/kpi", m, **month)
    assert [
        (k["rep_id"], k["kpis"]["on_time_delivery"]["numerator"], k["kpis"]["on_time_delivery"]["denominator"])
        for k in kpi
    ] == [("r-1", 3, 3)]

    base = await o.report("/reports/customer-base", m, from_="2026-11-01", as_of="2026-11-30")
    assert [(b["new"], b["active"]) for b in base] == [(2, 2)]
