"""Attacks on the NATS layout, against a real server running the real services.

The four services run with the deployment's own configuration (`deploy/nats/nats.conf`), each
connected as its own user; then each set of credentials tries what it must not do. A refusal
is one of: the server's permissions violation, no responder (nothing is imported under that
subject), or JetStream answering "not found" (the stream or consumer is not in the caller's
account). After the attacks, the victims' streams and consumers are checked to be intact.

The same attacks also run on the test suite's own server (the namespaced form of the layout),
where every other test runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import orjson
import pytest
import pytest_asyncio

from customer_service.bootstrap import definition as customer_definition
from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import (
    TEST_SIGNING_KEY,
    nats_password_for_tests,
    settings_for_tests,
    stream_messages,
)
from salesplatform.devstack.servers import NatsServer
from salesplatform.events import Actor, Role
from salesplatform.messaging import Topology
from salesplatform.nats_layout import PRODUCTION, api_prefix, password_variable
from salesplatform.service import Runtime
from visit_service.bootstrap import definition as visit_definition

ROOT = Path(__file__).resolve().parents[1]
DEFINITIONS = {
    "customer": customer_definition,
    "visit": lambda: visit_definition("Asia/Shanghai"),
    "orders": orders_definition,
    "reporting": lambda: reporting_definition("Asia/Shanghai"),
}
MANAGER = Actor(id="m1", role=Role.sales_manager)
ERP = Actor(id="erp", role=Role.system)

DENIED = "denied"  # the server's permissions violation
ABSENT = "absent"  # no responder, or JetStream says the stream or consumer is not there
ALLOWED = "allowed"


@dataclass
class System:
    """The running services and how to reach the server as any user."""

    url: str
    namespace: str
    runtimes: dict[str, Runtime]

    def topology(self, service: str) -> Topology:
        return Topology(service, self.namespace)


class Client:
    """A connection as one user that records the permission violations the server reports."""

    def __init__(self, nc: nats.NATS, violations: list[str]) -> None:
        self.nc = nc
        self.violations = violations

    @classmethod
    async def connect(cls, url: str, user: str) -> Client:
        violations: list[str] = []

        async def on_error(error: Exception) -> None:
            violations.append(str(error).lower())

        nc = await nats.connect(
            url, user=user, password=nats_password_for_tests(user), error_cb=on_error, allow_reconnect=False
        )
        return cls(nc, violations)

    def _denied(self, kind: str, subject: str) -> bool:
        return any(f"permissions violation for {kind}" in v and subject.lower() in v for v in self.violations)

    async def request(self, subject: str, body: Any = b"") -> tuple[str, Any]:
        """(outcome, JetStream's answer)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            reply = await self.nc.request(subject, data, timeout=1.5)
        except nats.errors.NoRespondersError:
            return ABSENT, None
        except nats.errors.TimeoutError:
            await asyncio.sleep(0.1)
            return (DENIED if self._denied("publish", subject) else "timeout"), None
        answer = orjson.loads(reply.data) if reply.data else {}
        error = answer.get("error") if isinstance(answer, dict) else None
        if error and error.get("code") == 404:
            return ABSENT, answer
        return (ALLOWED if not error else f"error {error.get('err_code')}"), answer

    async def publish(self, subject: str, body: bytes = b"{}") -> str:
        await self.nc.publish(subject, body)
        await self.nc.flush()
        await asyncio.sleep(0.1)
        return DENIED if self._denied("publish", subject) else ALLOWED

    async def subscribe(self, subject: str) -> str:
        await self.nc.subscribe(subject)
        await self.nc.flush()
        await asyncio.sleep(0.1)
        return DENIED if self._denied("subscription", subject) else ALLOWED

    async def close(self) -> None:
        await self.nc.close()


async def _start_system(url: str, namespace: str, make_database: Callable[..., Awaitable[str]]) -> System:
    runtimes: dict[str, Runtime] = {}
    for name, definition in DEFINITIONS.items():
        settings = settings_for_tests(await make_database(name), url, namespace, service=name, pool_max=4)
        runtime = Runtime(definition(), settings, run_timers=False)
        await runtime.start()
        runtimes[name] = runtime
    system = System(url, namespace, runtimes)
    # Events on the streams under attack, and every consumer bound.
    outcome = await runtimes["customer"].run_command("define_division", {"division_id": "N", "name": "华东"}, ERP)
    assert outcome.ok
    outcome = await runtimes["orders"].run_command(
        "define_sku",
        {
            "sku": "cola",
            "name": "Cola",
            "brand": "Ours",
            "product_group": "soft_drinks",
            "package": "500ml",
            "list_price_fen": 300,
            "floor_price_fen": 250,
        },
        MANAGER,
    )
    assert outcome.ok
    for runtime in runtimes.values():
        await runtime.relay_flush()
    for _ in range(200):
        bound = [c for rt in runtimes.values() for c in rt.consumers if c._psub is not None]
        if len(bound) == sum(len(rt.consumers) for rt in runtimes.values()):
            break
        await asyncio.sleep(0.05)
    return system


async def _stop_system(system: System) -> None:
    for runtime in system.runtimes.values():
        await runtime.stop()


@pytest.fixture
def server_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sp-isolation-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def production(server_dir, make_database) -> AsyncIterator[System]:
    """The deployment's NATS configuration on a server of its own, the four services on it."""
    env = {password_variable(user): nats_password_for_tests(user) for user in PRODUCTION.users}
    config = ROOT / "deploy" / "nats" / "nats.conf"
    with NatsServer(server_dir / "nats", config_file=config, env=env) as server:
        system = await _start_system(server.url, "", make_database)
        try:
            yield system
        finally:
            await _stop_system(system)


@pytest_asyncio.fixture
async def namespaced(nats_url, unique_prefix, make_database) -> AsyncIterator[System]:
    """The four services on the test suite's server, under a test namespace."""
    system = await _start_system(nats_url, unique_prefix, make_database)
    try:
        yield system
    finally:
        await _stop_system(system)


async def _service_attacks(system: System) -> list[tuple[str, str, str]]:
    """(attack, expected, outcome): the customer service's credentials against the orders
    service's streams and consumers, against consumers others keep on its own stream, and
    against a stream it does not import."""
    customer = await Client.connect(system.url, "customer")
    orders_t, customer_t, reporting_t = (
        system.topology("orders"),
        system.topology("customer"),
        system.topology("reporting"),
    )
    orders_stream, ingest = orders_t.event_stream, orders_t.ingest_stream
    foreign = f"{api_prefix('orders')}"  # what customer imports from orders
    results: list[tuple[str, str, str]] = []

    async def attempt(name: str, expected: str, outcome: Awaitable[Any]) -> None:
        got = await outcome
        results.append((name, expected, got[0] if isinstance(got, tuple) else got))

    try:
        api = customer.request
        await attempt("read the ORDERS stream's state", ABSENT, api(f"$JS.API.STREAM.INFO.{orders_stream}"))
        await attempt("read a message of ORDERS", ABSENT, api(f"$JS.API.STREAM.MSG.GET.{orders_stream}", {"seq": 1}))
        await attempt("purge ORDERS", ABSENT, api(f"$JS.API.STREAM.PURGE.{orders_stream}"))
        await attempt("delete ORDERS", ABSENT, api(f"$JS.API.STREAM.DELETE.{orders_stream}"))
        await attempt(
            "update ORDERS (take its subjects)",
            ABSENT,
            api(f"$JS.API.STREAM.UPDATE.{orders_stream}", {"name": orders_stream, "subjects": ["x.>"]}),
        )
        await attempt("delete the ORDERS ingest stream", ABSENT, api(f"$JS.API.STREAM.DELETE.{ingest}"))
        await attempt(
            "delete orders' ingest consumer",
            ABSENT,
            api(f"$JS.API.CONSUMER.DELETE.{ingest}.{orders_t.durable('orders_ingest')}"),
        )
        await attempt(
            "create a consumer on ORDERS in its own account",
            ABSENT,
            api(
                f"$JS.API.CONSUMER.DURABLE.CREATE.{orders_stream}.spy",
                {"stream_name": orders_stream, "config": {"durable_name": "spy", "ack_policy": "explicit"}},
            ),
        )
        await attempt(
            "create another service's consumer on ORDERS through its import",
            ABSENT,
            api(
                f"{foreign}.CONSUMER.DURABLE.CREATE.{orders_stream}.visit_from_orders",
                {
                    "stream_name": orders_stream,
                    "config": {"durable_name": "visit_from_orders", "ack_policy": "explicit"},
                },
            ),
        )
        await attempt(
            "rename its own ORDERS consumer to another's in the request body",
            "error 10017",  # JetStream: the durable name in the body is not the one in the subject
            api(
                f"{foreign}.CONSUMER.DURABLE.CREATE.{orders_stream}.customer_from_orders",
                {
                    "stream_name": orders_stream,
                    "config": {"durable_name": "reporting_from_orders", "ack_policy": "explicit"},
                },
            ),
        )
        # Production names the event stream in what it exports. The tests' layout cannot (a
        # test's stream names are single tokens, which NATS wildcards do not split): there a
        # consumer's own durable may be made on any of the producer's streams, and only
        # JetStream's rule of one consumer per work queue keeps it off the ingest stream.
        await attempt(
            "attach its consumer to the ORDERS ingest stream through its import",
            "error 10099" if system.namespace else ABSENT,
            api(
                f"{foreign}.CONSUMER.DURABLE.CREATE.{ingest}.customer_from_orders",
                {"stream_name": ingest, "config": {"durable_name": "customer_from_orders", "ack_policy": "explicit"}},
            ),
        )
        dlq = orders_t.dlq_stream
        await attempt(
            "attach its consumer to the ORDERS dead letters through its import",
            ALLOWED if system.namespace else ABSENT,
            api(
                f"{foreign}.CONSUMER.DURABLE.CREATE.{dlq}.customer_from_orders",
                {"stream_name": dlq, "config": {"durable_name": "customer_from_orders", "ack_policy": "explicit"}},
            ),
        )
        await attempt(
            "delete its own ORDERS consumer (the producer's to manage)",
            ABSENT,
            api(f"{foreign}.CONSUMER.DELETE.{orders_stream}.customer_from_orders"),
        )
        await attempt(
            "take messages from reporting's consumer on ORDERS",
            ABSENT,
            api(f"{foreign}.CONSUMER.MSG.NEXT.{orders_stream}.reporting_from_orders", {"batch": 1, "no_wait": True}),
        )
        await attempt(
            "read reporting's consumer on ORDERS",
            ABSENT,
            api(f"{foreign}.CONSUMER.INFO.{orders_stream}.reporting_from_orders"),
        )
        own_stream = customer_t.event_stream
        for verb in ("DELETE", "INFO", "MSG.NEXT", "PAUSE"):
            await attempt(
                f"{verb} visit's consumer on its own CUSTOMER stream",
                DENIED,
                api(f"$JS.API.CONSUMER.{verb}.{own_stream}.visit_from_customer", {"batch": 1, "no_wait": True}),
            )
        if not system.namespace:  # the tests' layout cannot name the event stream in this denial
            await attempt(
                "rewrite visit's consumer on CUSTOMER by a create naming it in the body",
                DENIED,
                api(
                    f"$JS.API.CONSUMER.CREATE.{own_stream}",
                    {"stream_name": own_stream, "config": {"name": "visit_from_customer", "ack_policy": "none"}},
                ),
            )
        await attempt(
            "acknowledge for visit's consumer on CUSTOMER",
            DENIED,
            customer.publish(f"$JS.ACK.{own_stream}.visit_from_customer.1.1.1.1.0", b""),
        )
        await attempt(
            "consume REPORTING, which it does not import",
            DENIED,
            api(
                f"{api_prefix('reporting')}.CONSUMER.DURABLE.CREATE.{reporting_t.event_stream}.customer_from_reporting",
                {"stream_name": reporting_t.event_stream, "config": {"durable_name": "customer_from_reporting"}},
            ),
        )
        for kind in ("event", "result", "dlq"):
            await attempt(
                f"publish on orders.{kind}.*", DENIED, customer.publish(orders_t.subject(kind, "order.placed"))
            )
        await attempt("publish into orders' ingest", DENIED, customer.publish(orders_t.subject("ingest", "x")))
        await attempt("listen to orders' events", DENIED, customer.subscribe(orders_t.subject("event", ">")))
        await attempt("serve orders' commands", DENIED, customer.subscribe(orders_t.subject("cmd", "*")))
        # The customer service's own work, for contrast: its stream, its subjects, its import.
        await attempt("read its own stream's state", ALLOWED, api(f"$JS.API.STREAM.INFO.{own_stream}"))
        await attempt(
            "read its own consumer on ORDERS",
            ALLOWED,
            api(f"{foreign}.CONSUMER.INFO.{orders_stream}.customer_from_orders"),
        )
    finally:
        await customer.close()
    return results


async def _outside_attacks(system: System) -> list[tuple[str, str, str]]:
    outside = await Client.connect(system.url, "system")
    customer_t = system.topology("customer")
    token = mint(ERP, TEST_SIGNING_KEY)
    results: list[tuple[str, str, str]] = []
    try:
        reply = await outside.nc.request(
            customer_t.subject("cmd", "define_area"),
            orjson.dumps({"area_id": "A1", "name": "浦东", "division_id": "N"}),
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        results.append(
            ("send a command (request/reply)", ALLOWED, ALLOWED if orjson.loads(reply.data)["ok"] else "refused")
        )
        heard = await outside.nc.subscribe(customer_t.subject("result", ">"))
        await outside.nc.flush()
        ack = await outside.nc.jetstream().publish(
            customer_t.subject("ingest", "define_area"),
            orjson.dumps({"area_id": "A2", "name": "杭州", "division_id": "N"}),
            headers={"Authorization": f"Bearer {token}"},
        )
        results.append(
            ("send a command to ingest", ALLOWED, ALLOWED if ack.stream == customer_t.ingest_stream else "lost")
        )
        result = await heard.next_msg(timeout=15)
        results.append(("read results", ALLOWED, ALLOWED if orjson.loads(result.data)["ok"] else "refused"))
        for subject in (
            system.topology("reporting").subject("changed", ">"),
            customer_t.subject("dlq", "rejected"),
        ):
            results.append((f"listen to {subject}", ALLOWED, await outside.subscribe(subject)))
        for kind in ("event", "result", "dlq"):
            results.append(
                (f"publish on customer.{kind}.*", DENIED, await outside.publish(customer_t.subject(kind, "x")))
            )
        results.append(("listen to customer events", DENIED, await outside.subscribe(customer_t.subject("event", ">"))))
        results.append(
            (
                "listen to dead letters other than rejections",
                DENIED,
                await outside.subscribe(customer_t.subject("dlq", "processing_failed")),
            )
        )
        results.append(("serve customer commands", DENIED, await outside.subscribe(customer_t.subject("cmd", "*"))))
        for what, subject in (
            ("read the CUSTOMER stream", f"$JS.API.STREAM.INFO.{customer_t.event_stream}"),
            ("purge the CUSTOMER ingest stream", f"$JS.API.STREAM.PURGE.{customer_t.ingest_stream}"),
            ("delete the CUSTOMER stream", f"$JS.API.STREAM.DELETE.{customer_t.event_stream}"),
        ):
            outcome, _ = await outside.request(subject)
            results.append((what, ABSENT, outcome))
        outcome, _ = await outside.request(
            f"{api_prefix('customer')}.CONSUMER.MSG.NEXT.{customer_t.ingest_stream}.{customer_t.durable('customer_ingest')}",
            {"batch": 1},
        )
        results.append(("take queued commands from the ingest consumer", DENIED, outcome))
    finally:
        await outside.close()
    return results


async def _operator_attempts(system: System) -> list[tuple[str, str, str]]:
    operator = await Client.connect(system.url, "operator")
    customer_t = system.topology("customer")
    prefix = api_prefix("customer")
    results: list[tuple[str, str, str]] = []
    try:
        outcome, answer = await operator.request(f"{prefix}.STREAM.NAMES")
        results.append(("list the customer account's streams", ALLOWED, outcome))
        assert customer_t.event_stream in answer["streams"]
        outcome, _ = await operator.request(f"{prefix}.CONSUMER.INFO.{customer_t.event_stream}.visit_from_customer")
        results.append(("read a consumer's state", ALLOWED, outcome))
        for what, subject in (
            ("read an event", f"{prefix}.STREAM.MSG.GET.{customer_t.event_stream}"),
            ("purge the CUSTOMER stream", f"{prefix}.STREAM.PURGE.{customer_t.event_stream}"),
            ("delete a consumer", f"{prefix}.CONSUMER.DELETE.{customer_t.event_stream}.visit_from_customer"),
        ):
            outcome, _ = await operator.request(subject, {"seq": 1})
            results.append((what, ABSENT, outcome))
        results.append(("publish a forged event", DENIED, await operator.publish(customer_t.subject("event", "x"))))
    finally:
        await operator.close()
    return results


async def _intact(system: System) -> None:
    """The attacked streams and consumers are as their services left them."""
    orders = system.runtimes["orders"]
    messages = await stream_messages(orders.js, orders.topology.event_stream)
    assert [m.subject for m in messages] == [orders.topology.event_subject("sku.defined")]
    customer = system.runtimes["customer"]
    names = []
    for runtime in system.runtimes.values():
        for consumer in runtime.consumers:
            info = await consumer.js.consumer_info(consumer.stream, consumer.durable)
            names.append(info.name)
            assert info.config.ack_policy == "explicit"
    assert sorted(names) == sorted(f"{c}_from_{p}" for c in DEFINITIONS for p in PRODUCTION.service(c).consumes)
    assert (await customer.js.stream_info(customer.topology.event_stream)).config.subjects == [
        customer.topology.subject("event", ">")
    ]


def _check(results: list[tuple[str, str, str]]) -> None:
    wrong = [f"{name}: expected {expected}, got {got}" for name, expected, got in results if got != expected]
    assert not wrong, "\n".join(wrong)


async def test_the_deployed_layout_keeps_each_service_to_its_own(production: System) -> None:
    _check(await _service_attacks(production))
    _check(await _outside_attacks(production))
    _check(await _operator_attempts(production))
    await _intact(production)


async def test_the_test_suites_layout_keeps_each_service_to_its_own(namespaced: System) -> None:
    """Every other test runs on this server: the same attacks fail there too."""
    _check(await _service_attacks(namespaced))
    _check(await _outside_attacks(namespaced))
    await _intact(namespaced)


async def test_no_one_connects_without_credentials_or_with_anothers(production: System) -> None:
    for login in (
        {},
        {"user": "customer", "password": "wrong"},
        {"user": "customer", "password": nats_password_for_tests("orders")},
    ):
        with pytest.raises(nats.errors.Error):
            await nats.connect(
                production.url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **login
            )


@pytest.mark.fast
def test_every_service_consumes_what_the_layout_grants_it() -> None:
    for name, definition in DEFINITIONS.items():
        consumed = tuple(c.service for c in definition().consumes)
        assert sorted(consumed) == sorted(PRODUCTION.service(name).consumes), name
