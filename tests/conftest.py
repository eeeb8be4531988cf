"""Cross-service fixtures: the real services, each with its own database, sharing one NATS
server under a test namespace, driven only through their public commands and queries."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest_asyncio
from running_system import Service, start_service_on

from salesplatform.clock import Clock
from salesplatform.service import ServiceDefinition


@pytest_asyncio.fixture
async def start_service(make_database, nats_url, unique_prefix):
    """`await start_service(definition)` → a running service on the shared test namespace."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(definition: ServiceDefinition, clock: Clock | None = None, **settings: Any) -> Service:
            database_url = await make_database(definition.name)
            return await start_service_on(stack, definition, database_url, nats_url, unique_prefix, clock, **settings)

        yield start
