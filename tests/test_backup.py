"""Backup and restore at a small size: business done across the customer, orders and reporting
services, backed up while they run (databases and what JetStream holds besides), restored
into empty databases and an empty NATS namespace; the services started on them report what
they reported before, keep the dead letter and run the command that was still queued."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import nats
import orjson
import pytest
from nats.js.api import StorageType, StreamConfig
from running_system import eventually, start_service_on

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.auth import SigningKey, load_signing_key, mint
from salesplatform.backup import all_streams, back_up, restore
from salesplatform.clock import business_date
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, connected_as, nats_login_for_tests, stream_messages
from salesplatform.events import Actor, Role
from salesplatform.messaging import Topology
from salesplatform.nats_layout import SYSTEM_USER

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
        f"{after_ns.upper()}_ORDERS_RESULTS": 1,  # the refusal its sender reconciles with
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


# -- onto freshly started servers, as an operator does it ----------------------------------------

OPERATOR = Actor(id="ops-1", role=Role.operator)
UNKNOWN_CUSTOMERS_ORDER = {"customer_id": "c-9", "lines": [{"sku": "COLA", "quantity": 1}]}
JUICE = {"sku": "JUICE", "name": "Juice", "brand": "B", "product_group": "drinks", "package": "can"}
DEVSTACK_TIMEOUT = 240.0


@dataclass
class Remote:
    """A service of a running stack, over HTTP with tokens the stack's key signs."""

    http: httpx.AsyncClient
    url: str
    key: SigningKey

    async def command(self, actor: Actor, name: str, payload: dict) -> httpx.Response:
        return await self.http.post(f"{self.url}/commands/{name}", json=payload, headers=self._bearer(actor))

    async def ok(self, actor: Actor, name: str, payload: dict) -> dict:
        r = await self.command(actor, name, payload)
        assert r.status_code == 200, f"{name}: {r.status_code} {r.text}"
        return r.json()

    async def get(self, actor: Actor, path: str, **params) -> httpx.Response:
        return await self.http.get(f"{self.url}{path}", params=params, headers=self._bearer(actor))

    def _bearer(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint(actor, self.key)}"}


def _devstack(mode: str, root: Path, output: Path) -> subprocess.Popen[bytes]:
    """`make run` (`run`) or `make servers` (`servers`) on the run directory `root`."""
    command = [sys.executable, "-m", "salesplatform.devstack", mode, "--root", str(root)]
    command += ["--ready-timeout", str(DEVSTACK_TIMEOUT)] if mode == "run" else []
    with output.open("ab") as handle:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,
        )


def _env() -> dict[str, str]:
    """This environment without the test servers' settings: what a person's shell has."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "NATS_", "TEST_", "SALESCTL_"))}


def _running(root: Path, process: subprocess.Popen[bytes], output: Path) -> dict:
    """The stack file once `process` has written it: its servers (and services) are ready."""
    deadline = time.monotonic() + DEVSTACK_TIMEOUT
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode}:\n{output.read_text()[-4000:]}"
        with contextlib.suppress(OSError, ValueError):
            stack = json.loads((root / "stack.json").read_text())
            if stack.get("pid") == process.pid:
                return stack
        time.sleep(0.25)
    raise AssertionError(f"not running within {DEVSTACK_TIMEOUT} s:\n{output.read_text()[-4000:]}")


def _stop(process: subprocess.Popen[bytes], output: Path) -> None:
    """SIGTERM to the stack's own process: services, then NATS, then PostgreSQL stop in order."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, output.read_text()[-4000:]


def _salesctl(stack: Path, *args: str) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "salesplatform.salesctl", "--stack", str(stack), "--operator", "ops-1", *args],
        capture_output=True,
        text=True,
        env={**_env(), "COLUMNS": "200"},
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _nats_password(stack: dict, user: str) -> str:
    return json.loads(Path(stack["secrets_file"]).read_text())["nats_passwords"][user]


async def _events_kept(stack: dict) -> dict[str, tuple[int, int]]:
    """Each service's own events: (in its log, in its event stream)."""
    kept = {}
    for service, url in stack["databases"].items():
        conn = await asyncpg.connect(url)
        try:
            logged = await conn.fetchval("SELECT count(*) FROM events WHERE origin IS NULL")
        finally:
            await conn.close()
        nc = await nats.connect(stack["nats_url"], user=service, password=_nats_password(stack, service))
        try:
            published = (await nc.jetstream().stream_info(Topology(service).event_stream)).state.messages
        finally:
            await nc.close()
        kept[service] = (logged, published)
    return kept


async def _tables(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()


async def _all_published(stack: dict) -> dict[str, tuple[int, int]] | None:
    kept = await _events_kept(stack)
    return kept if all(logged == published for logged, published in kept.values()) else None


async def _send_to_ingest(stack: dict, key: SigningKey, actor: Actor, command: str, payload: dict) -> None:
    """As an outside system: publish a command to the orders service's ingest queue."""
    nc = await nats.connect(stack["nats_url"], user=SYSTEM_USER, password=_nats_password(stack, SYSTEM_USER))
    try:
        await nc.jetstream().publish(
            Topology("orders").subject("ingest", command),
            orjson.dumps(payload),
            headers={"Authorization": f"Bearer {mint(actor, key)}", "Idempotency-Key": f"erp-{command}"},
        )
    finally:
        await nc.close()


async def _dead_letters_listed(orders: Remote) -> list[dict]:
    r = await orders.get(OPERATOR, "/admin/dead-letters")
    assert r.status_code == 200, r.text
    return r.json()["dead_letters"]


async def _results(stack: dict) -> list[tuple[str, str]]:
    """What the orders service's results stream holds for its senders: (key, status)."""
    nc = await nats.connect(stack["nats_url"], user="orders", password=_nats_password(stack, "orders"))
    try:
        held = await stream_messages(nc.jetstream(), Topology("orders").results_stream)
    finally:
        await nc.close()
    return [(m.headers["Idempotency-Key"], m.headers["Result-Status"]) for m in held if m.headers]


async def _sku_defined(orders: Remote, sku: str) -> bool:
    r = await orders.get(MANAGER, "/catalogue/skus")
    assert r.status_code == 200, r.text
    return sku in {s["sku"] for s in r.json()["skus"]}


@pytest.mark.timeout(600)
async def test_a_backup_restored_onto_new_empty_servers_reports_as_before(tmp_path) -> None:
    """The operator's procedure end to end, each step the command it is: `make run`, business,
    a command left queued, `salesctl backup`; everything stopped; `make servers` on a new
    directory, `salesctl restore`, `make run` there."""
    first, second, backup, output = tmp_path / "first", tmp_path / "second", tmp_path / "backup", tmp_path / "out"
    stack = _devstack("run", first, output)
    try:
        running = _running(first, stack, output)
        key = load_signing_key(running["signing_key_file"])
        async with httpx.AsyncClient(timeout=30) as http:
            s = {name: Remote(http, running["services"][name]["url"], key) for name in SERVICES}
            await _do_business(s)

            async def sales_counted():
                reports = await _reports(s["reporting"])
                return reports if len(reports["sales"]["items"]) == 3 else None

            before = await eventually(sales_counted)
            await _send_to_ingest(running, key, REP, "place_order", UNKNOWN_CUSTOMERS_ORDER)
            dead_before = await eventually(lambda: _dead_letters_listed(s["orders"]))
        events_before = await eventually(lambda: _all_published(running))
    finally:
        _stop(stack, output)
    assert events_before["customer"][0] > 0 and events_before["orders"][0] > 0

    # The services stopped: a command sent now waits in the ingest queue; then the backup.
    servers = _devstack("servers", first, output)
    try:
        running = _running(first, servers, output)
        assert running["services"] == {}
        await _send_to_ingest(
            running, key, MANAGER, "define_sku", {**JUICE, "list_price_fen": 300, "floor_price_fen": 250}
        )
        _salesctl(first / "stack.json", "backup", str(backup))
    finally:
        _stop(servers, output)
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["services"]["orders"]["streams"] == {"ORDERS_INGEST": 1, "ORDERS_DLQ": 1, "ORDERS_RESULTS": 1}

    # New, empty servers in a new directory; the token keys are kept apart from backups.
    shutil.copytree(first / "auth", second / "auth")
    servers = _devstack("servers", second, output)
    try:
        fresh = _running(second, servers, output)
        assert [await _tables(url) for url in fresh["databases"].values()] == [0, 0, 0, 0]
        _salesctl(second / "stack.json", "restore", str(backup))
    finally:
        _stop(servers, output)

    stack = _devstack("run", second, output)
    try:
        restored = _running(second, stack, output)
        async with httpx.AsyncClient(timeout=30) as http:
            s = {name: Remote(http, restored["services"][name]["url"], key) for name in SERVICES}
            await eventually(lambda: _sku_defined(s["orders"], "JUICE"), timeout=60)
            events_after = await eventually(lambda: _all_published(restored), timeout=60)
            assert await _reports(s["reporting"]) == before
            assert await _dead_letters_listed(s["orders"]) == dead_before
            assert await _results(restored) == [("erp-place_order", "404"), ("erp-define_sku", "200")]
    finally:
        _stop(stack, output)
    # Every event is in its producer's log and stream again; the queued command added its own.
    assert {n: e for n, e in events_after.items() if n != "orders"} == {
        n: e for n, e in events_before.items() if n != "orders"
    }
    assert events_after["orders"][0] > events_before["orders"][0]
