from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest_asyncio

from salesplatform.clock import FixedClock
from salesplatform.messaging import Topology, ensure_streams
from salesplatform.service import Runtime
from salesplatform.settings import ServiceSettings

# The tests import their shared helpers (orders_testkit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from orders_testkit import SECRET, START  # noqa: E402

from orders_service.bootstrap import definition  # noqa: E402
from orders_service.domain.policy import OrderPolicy  # noqa: E402


@pytest_asyncio.fixture
async def service_settings(make_database, nats_url, unique_prefix) -> ServiceSettings:
    dsn = await make_database("orders")
    return ServiceSettings(
        database_url=dsn, nats_url=nats_url, jwt_secret=SECRET, stream_prefix=unique_prefix,
        poll_interval=0.2, max_deliveries=3, pool_min=1, pool_max=6,
    )


@pytest_asyncio.fixture
async def clock() -> FixedClock:
    return FixedClock(START)


async def ensure_source_streams(settings: ServiceSettings) -> None:
    """The streams of the services this one consumes. Without them the consumers wait for the
    streams to appear, and a runtime's stop then waits out its grace period."""
    nc = await nats.connect(settings.nats_url)
    try:
        js = nc.jetstream()
        topology = Topology("orders", settings.stream_prefix)
        for source in ("customer", "visit"):
            await ensure_streams(js, topology.of(source))
    finally:
        await nc.close()


@pytest_asyncio.fixture
async def rt(service_settings, clock) -> AsyncIterator[Runtime]:
    await ensure_source_streams(service_settings)
    async with Runtime(definition(OrderPolicy()), service_settings, clock=clock, run_timers=False) as runtime:
        yield runtime
