"""`salesctl` against running services: their HTTP APIs on loopback ports, NATS as the operator
user. An order sent to the orders service before the customer service registered its customer
is dead-lettered; the operator finds it, replays it too early (it fails again), replays it once
the customer is known (applied, and once only however often), and purges it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys

import orjson
import pytest
import pytest_asyncio
import uvicorn
from running_system import eventually

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import (
    TEST_SIGNING_KEY,
    connected_as,
    nats_password_for_tests,
    next_stream_message,
    stream_messages,
)
from salesplatform.events import Actor, Role
from salesplatform.service import http_app

MANAGER = Actor(id="m-1", role=Role.sales_manager)
SUPERVISOR = Actor(id="s-1", role=Role.supervisor, district="d-1", area="a-1")
REP = Actor(id="r-1", role=Role.rep, district="d-1", area="a-1")
OPERATOR = Actor(id="ops-1", role=Role.operator)
ORDER = {"customer_id": "c-1", "lines": [{"sku": "COLA-330", "quantity": 3}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def _served(runtime):
    """The service's HTTP API on a loopback port, as a deployment serves it."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(http_app(runtime), host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn tells only by this flag
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest_asyncio.fixture
async def system(start_service, nats_url, tmp_path):
    customer = await start_service(customer_definition())
    orders = await start_service(orders_definition())
    async with _served(customer.runtime) as customer_url, _served(orders.runtime) as orders_url:
        secrets = tmp_path / "secrets.json"
        secrets.write_text(json.dumps({"nats_passwords": {"operator": nats_password_for_tests("operator")}}))
        key = tmp_path / "signing-key.json"
        key.write_text(json.dumps(TEST_SIGNING_KEY.private_jwk()))
        stack = tmp_path / "stack.json"
        stack.write_text(
            json.dumps(
                {
                    "nats_url": nats_url,
                    "secrets_file": str(secrets),
                    "signing_key_file": str(key),
                    "services": {"customer": {"url": customer_url}, "orders": {"url": orders_url}},
                }
            )
        )
        yield customer, orders, stack


async def salesctl(stack, *args: str) -> tuple[int, str]:
    """Run the command line as an operator would: its own process, the stack file."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "salesplatform.salesctl",
        "--stack",
        str(stack),
        "--operator",
        "ops-1",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


# A dozen runs of the command line, each its own Python process.
@pytest.mark.timeout(400)
async def test_an_operator_repairs_a_dead_letter_with_salesctl(system) -> None:
    customer, orders, stack = system
    await orders.ok(
        MANAGER,
        "define_sku",
        {
            "sku": "COLA-330",
            "name": "Cola 330ml",
            "brand": "Cola",
            "product_group": "soft drinks",
            "package": "can",
            "list_price_fen": 250,
            "floor_price_fen": 200,
        },
    )
    async with connected_as(orders.runtime.settings.nats_url, "system") as erp:
        await erp.jetstream().publish(
            orders.runtime.topology.subject("ingest", "place_order"),
            orjson.dumps(ORDER),
            headers={"Authorization": f"Bearer {mint(REP, TEST_SIGNING_KEY)}", "Idempotency-Key": "erp-4711"},
        )

    seq = (await next_stream_message(orders.runtime.js, orders.runtime.topology.dlq_stream)).seq
    code, listed = await salesctl(stack, "dlq", "list", "--service", "orders")
    assert code == 0 and "place_order" in listed and "rejected" in listed and "r-1" in listed

    code, out = await salesctl(stack, "dlq", "show", "orders", str(seq))
    shown = json.loads(out)
    assert (code, shown["payload"], shown["idempotency_key"]) == (0, ORDER, "erp-4711")

    # Too early: the customer is still unknown to the orders service.
    code, out = await salesctl(stack, "dlq", "replay", "orders", str(seq))
    assert code == 1 and "failed" in out
    again = (await orders.runtime.js.stream_info(orders.runtime.topology.dlq_stream)).state.last_seq

    # The customer service registers and approves the customer; orders hears of it.
    await customer.ok(MANAGER, "define_division", {"division_id": "dv-1", "name": "East"})
    await customer.ok(MANAGER, "define_area", {"area_id": "a-1", "name": "Pudong", "division_id": "dv-1"})
    await customer.ok(MANAGER, "define_district", {"district_id": "d-1", "name": "Lujiazui", "area_id": "a-1"})
    await customer.ok(
        MANAGER, "assign_staff", {"staff_id": "s-1", "name": "Wang", "role": "supervisor", "district_id": "d-1"}
    )
    await customer.ok(
        MANAGER,
        "assign_staff",
        {"staff_id": "r-1", "name": "Li", "role": "rep", "district_id": "d-1", "supervisor_id": "s-1"},
    )
    outlet = {
        "customer_id": "c-1",
        "name": "Fresh Mart",
        "address": "1 Century Ave",
        "phone": "13800138000",
        "nature": "company",
        "channel": "retail",
        "location_type": "residential",
    }
    await customer.ok(REP, "register_customer", outlet)
    await customer.ok(SUPERVISOR, "approve_customer", {"customer_id": "c-1", "status": "active"})

    async def customer_known_to_orders():
        async with orders.runtime.pool.acquire() as conn:
            copied = await conn.fetchval(
                "SELECT count(*) FROM events WHERE origin IS NOT NULL AND event_type = 'customer.approved'"
            )
        status = (await orders.get(OPERATOR, "/admin/status")).json()
        return copied == 1 and all(p["behind"] == 0 for p in status["projections"])

    await eventually(customer_known_to_orders)
    code, out = await salesctl(stack, "dlq", "replay", "orders", "--command", "place_order", "--keep")
    assert code == 0 and "applied" in out and "already_applied" not in out
    code, out = await salesctl(stack, "dlq", "replay", "orders", "--reason", "rejected")
    assert code == 0 and "already_applied" in out
    # The sender's results: the refusal, then the replay's once, though it was replayed twice.
    results = await stream_messages(orders.runtime.js, orders.runtime.topology.results_stream)
    mine = [r.headers for r in results if (r.headers or {}).get("Idempotency-Key") == "erp-4711"]
    assert [(h["Result-Status"], h["Nats-Msg-Id"]) for h in mine] == [
        ("404", "r-1:place_order:erp-4711"),
        ("200", "r-1:place_order:erp-4711:replayed"),
    ]

    async with orders.runtime.pool.acquire() as conn:
        placed = await conn.fetch("SELECT actor FROM events WHERE event_type = 'order.placed'")
    assert [p["actor"]["replayed_by"] for p in placed] == ["ops-1"]

    code, out = await salesctl(stack, "dlq", "list", "--service", "orders")
    assert code == 0 and "place_order" not in out
    code, out = await salesctl(stack, "dlq", "purge", "orders", str(again))
    assert code == 1 and "dead_letter_not_found" in out

    code, out = await salesctl(stack, "status")
    assert code == 0 and out.count("ready") >= 2 and "orders_from_customer" in out
    code, out = await salesctl(stack, "streams", "--service", "orders")
    assert code == 0 and orders.runtime.topology.dlq_stream in out
    code, out = await salesctl(stack, "consumers", "--service", "customer")
    assert code == 0 and "orders_from_customer" in out
    code, out = await salesctl(stack, "projections", "rebuild", "orders", "customer_directory")
    assert code == 0 and "switched: customer_directory now serves generation 2" in out
    code, out = await salesctl(stack, "projections", "list", "--service", "orders")
    assert code == 0 and "customer_directory" in out
    code, out = await salesctl(stack, "token", "mint", "--role", "operator", "--id", "ops-2")
    assert code == 0 and out.count(".") == 2
