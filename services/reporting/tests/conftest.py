"""Fixtures of the reporting service's tests: a real Runtime on a fresh database and the
session's NATS server, a FixedClock at the end of November 2026, an HTTP client.

`month` gives each test its own runtime with the scenario's month in the log; `shared_month`
gives the read-only tests of one module one such runtime (the scenario is loaded once).
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from reporting_service.bootstrap import definition
from salesplatform.clock import FixedClock
from salesplatform.devstack.pytest_plugin import ensure_streams_of, settings_for_tests
from salesplatform.devstack.servers import create_database, drop_database
from salesplatform.service import Runtime, http_app
from salesplatform.settings import ServiceSettings

# The test kit sits next to this file; the suite imports test modules by path (importlib mode).
sys.path.insert(0, str(Path(__file__).parent))

from reporting_testkit import Harness, Month, local

END_OF_MONTH = local("2026-11-30", 12)


def settings_for_test(dsn: str, nats_url: str, prefix: str) -> ServiceSettings:
    return settings_for_tests(dsn, nats_url, prefix, service="reporting")


@contextlib.asynccontextmanager
async def running(settings: ServiceSettings) -> AsyncIterator[Harness]:
    # The producing services' streams exist, as in a running system, so the consumers bind at
    # once instead of waiting for them.
    await ensure_streams_of(settings.nats_url, settings.stream_prefix, ("customer", "visit", "orders"))
    clock = FixedClock(END_OF_MONTH)
    async with Runtime(definition("Asia/Shanghai"), settings, clock=clock, run_timers=False) as rt:
        transport = httpx.ASGITransport(app=http_app(rt))
        async with httpx.AsyncClient(transport=transport, base_url="http://reporting") as client:
            yield Harness(rt, clock, client)


@pytest_asyncio.fixture
async def reporting_settings(make_database, nats_url, unique_prefix) -> ServiceSettings:
    return settings_for_test(await make_database("reporting"), nats_url, unique_prefix)


@pytest_asyncio.fixture
async def h(reporting_settings) -> AsyncIterator[Harness]:
    async with running(reporting_settings) as harness:
        yield harness


@pytest_asyncio.fixture
async def month(h) -> Harness:
    """The whole month of the scenario in the local log, every projection caught up."""
    await h.feed(Month().everything())
    return h


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_month(stack_servers, nats_url) -> AsyncIterator[Harness]:
    """The month, loaded once for a module whose tests only read (loop scope: module)."""
    name = f"reporting_{uuid.uuid4().hex[:12]}"
    dsn = await create_database(stack_servers.admin_dsn, name)
    try:
        async with running(settings_for_test(dsn, nats_url, "t" + secrets.token_hex(4))) as harness:
            await harness.feed(Month().everything())
            yield harness
    finally:
        await drop_database(stack_servers.admin_dsn, name)
