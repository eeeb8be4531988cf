"""Results of ingested commands are kept: an outside system that was away reconciles from the
results stream, and no one else reads it. Run on the deployment's own NATS configuration."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import orjson
import pytest
import pytest_asyncio
from nats.js.api import AckPolicy, ConsumerConfig

from customer_service.bootstrap import definition as customer_definition
from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import TEST_SIGNING_KEY, nats_password_for_tests, settings_for_tests
from salesplatform.devstack.servers import NatsServer
from salesplatform.events import Actor, Role
from salesplatform.nats_layout import PRODUCTION, api_prefix, password_variable
from salesplatform.service import Runtime

ROOT = Path(__file__).resolve().parents[1]
ERP = Actor(id="erp", role=Role.system)
CRM = Actor(id="crm", role=Role.system)


@pytest.fixture
def server_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sp-results-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest_asyncio.fixture
async def customer(server_dir, make_database) -> AsyncIterator[Runtime]:
    """The customer service on a NATS server running `deploy/nats/nats.conf`."""
    env = {password_variable(user): nats_password_for_tests(user) for user in PRODUCTION.users}
    with NatsServer(server_dir / "nats", config_file=ROOT / "deploy" / "nats" / "nats.conf", env=env) as server:
        settings = settings_for_tests(
            await make_database("customer"), server.url, "", service="customer", pool_max=4, result_days=3
        )
        async with Runtime(customer_definition(), settings, run_timers=False) as rt:
            yield rt


async def _connect(url: str, user: str) -> nats.NATS:
    return await nats.connect(url, user=user, password=nats_password_for_tests(user), allow_reconnect=False)


async def test_an_outside_system_reconciles_the_results_of_what_it_sent_while_away(customer: Runtime) -> None:
    url = customer.settings.nats_url
    token = mint(ERP, TEST_SIGNING_KEY)
    sent = {f"erp-{i}": {"division_id": f"D{i}", "name": f"区域{i}"} for i in range(5)}
    sent["erp-bad"] = {"division_id": "", "name": "无名"}  # refused: an empty id
    erp = await _connect(url, "system")
    for key, body in sent.items():
        await erp.jetstream().publish(
            "customer.ingest.define_division",
            orjson.dumps(body),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )
    await erp.close()  # away while the service works through them

    for _ in range(400):
        if (await customer.js.stream_info(customer.topology.ingest_stream)).state.messages == 0:
            break
        await asyncio.sleep(0.05)
    assert customer.ingest.accepted == 5 and customer.ingest.rejected == 1
    # Sent again after an outage (the same key): the result is kept once.
    erp = await _connect(url, "system")
    try:
        await erp.jetstream().publish(
            "customer.ingest.define_division",
            orjson.dumps(sent["erp-0"]),
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "erp-0"},
        )
        # Another system happens to use the same key on the same command: its own command,
        # with a result of its own.
        await erp.jetstream().publish(
            "customer.ingest.define_division",
            orjson.dumps({"division_id": "C0", "name": "客户关系"}),
            headers={"Authorization": f"Bearer {mint(CRM, TEST_SIGNING_KEY)}", "Idempotency-Key": "erp-0"},
        )
        for _ in range(400):
            if customer.ingest.accepted == 7:
                break
            await asyncio.sleep(0.05)

        results = erp.jetstream(prefix=api_prefix("customer"))
        info = await results.stream_info("CUSTOMER_RESULTS")
        assert info.config.max_age == 3 * 86_400
        await results.add_consumer(
            "CUSTOMER_RESULTS", ConsumerConfig(durable_name="erp_reconcile", ack_policy=AckPolicy.EXPLICIT)
        )
        reader = await results.pull_subscribe_bind("erp_reconcile", "CUSTOMER_RESULTS")
        seen: dict[str, dict] = {}
        crm: list[dict] = []
        for msg in await reader.fetch(10, timeout=5):
            result = orjson.loads(msg.data)
            await msg.ack_sync()
            if result.get("result", {}).get("division_id") == "C0":
                crm.append(result)
                continue
            assert msg.headers["Idempotency-Key"] not in seen
            seen[msg.headers["Idempotency-Key"]] = result
        assert seen.keys() == sent.keys()
        assert len(crm) == 1 and crm[0]["ok"]
        assert all(seen[key]["ok"] for key in sent if key != "erp-bad")
        assert seen["erp-bad"]["status"] == 422
        consumer = await results.consumer_info("CUSTOMER_RESULTS", "erp_reconcile")
        assert consumer.num_ack_pending == 0 and consumer.num_pending == 0
    finally:
        await erp.close()


async def _refused(nc: nats.NATS, subject: str) -> bool:
    try:
        reply = await nc.request(subject, b"", timeout=1.5)
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
        return True  # nothing imported under that subject, or the server refused to carry it
    answer = orjson.loads(reply.data) if reply.data else {}
    return bool(answer.get("error"))


async def test_only_outside_systems_read_a_services_results(customer: Runtime) -> None:
    orders = await _connect(customer.settings.nats_url, "orders")
    erp = await _connect(customer.settings.nats_url, "system")
    try:
        assert await _refused(orders, f"{api_prefix('customer')}.STREAM.INFO.CUSTOMER_RESULTS")
        assert await _refused(orders, "$JS.API.STREAM.INFO.CUSTOMER_RESULTS")
        assert await _refused(orders, f"{api_prefix('customer')}.STREAM.MSG.GET.CUSTOMER_RESULTS")
        # What outside systems are given reaches the results stream only.
        assert not await _refused(erp, f"{api_prefix('customer')}.STREAM.INFO.CUSTOMER_RESULTS")
        for stream in ("CUSTOMER", "CUSTOMER_INGEST", "CUSTOMER_DLQ"):
            assert await _refused(erp, f"{api_prefix('customer')}.STREAM.INFO.{stream}")
            assert await _refused(erp, f"{api_prefix('customer')}.STREAM.MSG.GET.{stream}")
    finally:
        await orders.close()
        await erp.close()
