from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import ensure_streams_of, settings_for_tests
from salesplatform.service import Runtime
from salesplatform.settings import ServiceSettings

# The tests import their shared helpers (orders_testkit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from orders_testkit import START

from orders_service.bootstrap import definition
from orders_service.domain.policy import OrderPolicy


@pytest_asyncio.fixture
async def service_settings(make_database, nats_url, unique_prefix) -> ServiceSettings:
    return settings_for_tests(await make_database("orders"), nats_url, unique_prefix, service="orders", pool_max=6)


@pytest_asyncio.fixture
async def clock() -> FixedClock:
    return FixedClock(START)


async def ensure_source_streams(settings: ServiceSettings) -> None:
    """The streams of the services this one consumes, as in a running system."""
    await ensure_streams_of(settings.nats_url, settings.stream_prefix, ("customer", "visit"))


@pytest_asyncio.fixture
async def rt(service_settings, clock) -> AsyncIterator[Runtime]:
    await ensure_source_streams(service_settings)
    async with Runtime(definition(OrderPolicy()), service_settings, clock=clock, run_timers=False) as runtime:
        yield runtime
