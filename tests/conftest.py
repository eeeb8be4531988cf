"""Cross-service fixtures: the real services, each with its own database, sharing one NATS
server under a test namespace, driven only through their public commands and queries."""

from __future__ import annotations

import contextlib

import httpx
import pytest_asyncio
from running_system import SECRET, Service

from salesplatform.clock import Clock
from salesplatform.devstack.pytest_plugin import settings_for_tests
from salesplatform.service import Runtime, ServiceDefinition, http_app


@pytest_asyncio.fixture
async def start_service(make_database, nats_url, unique_prefix):
    """`await start_service(definition)` → a running service on the shared test namespace."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(definition: ServiceDefinition, clock: Clock | None = None, **settings: object) -> Service:
            config = settings_for_tests(
                await make_database(definition.name), nats_url, SECRET, unique_prefix, pool_max=6, **settings
            )
            runtime = await stack.enter_async_context(Runtime(definition, config, clock=clock, run_timers=False))
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=http_app(runtime)), base_url=f"http://{definition.name}"
                )
            )
            return Service(runtime, client)

        yield start
