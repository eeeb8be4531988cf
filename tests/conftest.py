"""Cross-service fixtures: the real services, each with its own database, sharing one NATS
server under a test namespace, driven only through their public commands and queries."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """An empty directory for a server a test starts itself, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="sp-test-"))
    path.chmod(0o711)  # PostgreSQL's OS account must reach it when tests run as root
    yield path
    shutil.rmtree(path, ignore_errors=True)
