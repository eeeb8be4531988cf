"""Backup and restore at a small size: business done across the customer, orders and reporting
services, backed up while they run (databases and what JetStream holds besides), restored
into empty databases and an empty NATS namespace; the services started on them report what
they reported before, keep the dead letter and run the command that was still queued."""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, datetime

import orjson
from nats.js.api import StorageType, StreamConfig
from running_system import eventually, start_service_on

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.auth import mint
from salesplatform.backup import all_streams, back_up, restore
from salesplatform.clock import business_date
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, connected_as, nats_login_for_tests, stream_messages
from salesplatform.events import Actor, Role

MANAGER = Actor(id="m-1", role=Role.sales_manager)
SUPERVISOR = Actor(id="s-1", role=Role.supervisor, district="d-1", area="a-1")
REP = Actor(id="r-1", role=Role.rep, district="d-1", area="a-1")
LOGISTICS = Actor(id="wms", role=Role.system)
SERVICES = {"customer": customer_definition, "orders": orders_definition, "reporting": reporting_definition}


async def _start(stack, databases, nats_url, namespace):
    return {
        name: await start_service_on(stack, SERVICES[name](), databases[name], nats_url, namespace) for name in SERVICES
    }


async def _do_business(s) -> None:
    customer, orders = s["customer"], s["orders"]
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
    for n in (1, 2):
        outlet = {
            "customer_id": f"c-{n}",
            "name": f"Mart {n}",
            "address": f"{n} Century Ave",
            "phone": "13800138000",
            "nature": "company",
            "channel": "retail",
            "location_type": "residential",
        }
        await customer.ok(REP, "register_customer", outlet)
        await customer.ok(SUPERVISOR, "approve_customer", {"customer_id": f"c-{n}", "status": "active"})
    for sku, price in (("COLA", 250), ("TEA", 400)):
        sku_data = {"sku": sku, "name": sku, "brand": "B", "product_group": "drinks", "package": "can"}
        await orders.ok(MANAGER, "define_sku", {**sku_data, "list_price_fen": price, "floor_price_fen": price - 50})

    async def order(customer_id: str, sku: str, quantity: int):
        lines = [{"sku": sku, "quantity": quantity}]
        r = await orders.command(REP, "place_order", {"customer_id": customer_id, "lines": lines})
        return r.json()["order_id"] if r.status_code == 200 else None

    for customer_id, sku, quantity in (("c-1", "COLA", 4), ("c-2", "TEA", 2), ("c-1", "TEA", 1)):
        order_id = await eventually(lambda c=customer_id, k=sku, q=quantity: order(c, k, q))
        await orders.ok(LOGISTICS, "deliver_order", {"order_id": order_id})


async def _reports(reporting) -> dict:
    today = business_date(datetime.now(UTC)).isoformat()
    asked = {
        "sales": ("/reports/sales", {"from": today, "to": today, "group_by": "customer,sku"}),
        "customer_base": ("/reports/customer-base", {"group_by": "rep"}),
        "kpi": ("/reports/kpi", {"to": today, "group_by": "rep"}),
    }
    out = {}
    for name, (path, params) in asked.items():
        r = await reporting.get(MANAGER, path, **params)
        assert r.status_code == 200, r.text
        out[name] = r.json()
    return out


async def test_reports_after_a_restore_into_empty_servers_equal_those_before(
    make_database, nats_url, unique_prefix, tmp_path
) -> None:
    before_ns, after_ns = unique_prefix, "t" + secrets.token_hex(4)
    databases = {name: await make_database(name) for name in SERVICES}
    async with contextlib.AsyncExitStack() as stack:
        s = await _start(stack, databases, nats_url, before_ns)
        await _do_business(s)

        async def sales_counted():
            reports = await _reports(s["reporting"])
            return reports if len(reports["sales"]["items"]) == 3 else None

        before = await eventually(sales_counted)
        # A dead letter: an order for a customer nobody registered.
        async with connected_as(nats_url, "system") as erp:
            await erp.jetstream().publish(
                s["orders"].runtime.topology.subject("ingest", "place_order"),
                orjson.dumps({"customer_id": "c-9", "lines": [{"sku": "COLA", "quantity": 1}]}),
                headers={"Authorization": f"Bearer {mint(REP, TEST_SIGNING_KEY)}"},
            )
        await eventually(lambda: _dead_letters(s["orders"].runtime))
        manifest = await back_up(tmp_path / "backup", databases, nats_url, nats_login_for_tests, namespace=before_ns)
    assert manifest["services"]["orders"]["streams"][f"{before_ns.upper()}_ORDERS_DLQ"] == 1

    empty = {name: await make_database(name) for name in SERVICES}
    restored = await restore(tmp_path / "backup", empty, nats_url, nats_login_for_tests, namespace=after_ns)
    assert restored["orders"]["messages"] == {
        f"{after_ns.upper()}_ORDERS_INGEST": 0,
        f"{after_ns.upper()}_ORDERS_DLQ": 1,
    }
    assert restored["orders"]["events_to_publish"] > 0

    async with contextlib.AsyncExitStack() as stack:
        s = await _start(stack, empty, nats_url, after_ns)
        after = await _reports(s["reporting"])
        assert after == before
        dead = await _dead_letters(s["orders"].runtime)
        assert [orjson.loads(d.data)["customer_id"] for d in dead] == ["c-9"]

        # The restored system goes on: a new order reaches the reports through the new NATS.
        new_order = {"customer_id": "c-2", "lines": [{"sku": "COLA", "quantity": 5}]}
        placed = await s["orders"].ok(REP, "place_order", new_order)
        await s["orders"].ok(LOGISTICS, "deliver_order", {"order_id": placed["order_id"]})

        async def fourth_line():
            reports = await _reports(s["reporting"])
            return len(reports["sales"]["items"]) == 4

        await eventually(fourth_line)


async def _dead_letters(runtime) -> list:
    return await stream_messages(runtime.js, runtime.topology.dlq_stream)


async def test_every_stream_of_an_account_is_listed_past_the_first_page(nats_url, unique_prefix) -> None:
    """JetStream lists an account's streams 256 at a time; a backup must see past the first."""
    async with connected_as(nats_url, "orders") as nc:
        js = nc.jetstream()
        names = [f"{unique_prefix.upper()}_ORDERS_PAGE{n}" for n in range(260)]
        try:
            for n, name in enumerate(names):
                await js.add_stream(
                    StreamConfig(name=name, subjects=[f"{unique_prefix}.orders.page.{n}"], storage=StorageType.MEMORY)
                )
            listed = {info.config.name for info in await all_streams(js)}
        finally:
            for name in names:
                with contextlib.suppress(Exception):
                    await js.delete_stream(name)
    assert set(names) <= listed
