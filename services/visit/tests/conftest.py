"""Fixtures of the visit service's tests: a real Runtime on a fresh database and the session's
NATS server, with a FixedClock, an HTTP client and a seeded directory."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest_asyncio

from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import ensure_streams_of, settings_for_tests
from salesplatform.service import Runtime, http_app
from salesplatform.settings import ServiceSettings
from visit_service.bootstrap import definition

# The test kit sits next to this file; the suite imports test modules by path (importlib mode).
sys.path.insert(0, str(Path(__file__).parent))

from visit_testkit import MONDAY_9AM, Harness


@pytest_asyncio.fixture
async def visit_settings(make_database, nats_url, unique_prefix) -> ServiceSettings:
    return settings_for_tests(await make_database("visit"), nats_url, unique_prefix, service="visit")


@pytest_asyncio.fixture
async def h(visit_settings):
    clock = FixedClock(MONDAY_9AM)
    # The producing services' streams exist, as in a running system, so the foreign-event
    # consumers bind at once instead of waiting for them.
    await ensure_streams_of(visit_settings.nats_url, visit_settings.stream_prefix, ("customer", "orders"))
    async with Runtime(definition("Asia/Shanghai"), visit_settings, clock=clock, run_timers=False) as rt:
        transport = httpx.ASGITransport(app=http_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://visit") as client:
            yield Harness(rt, clock, client)


@pytest_asyncio.fixture
async def world(h):
    await h.seed()
    return h
