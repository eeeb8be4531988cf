from __future__ import annotations

import asyncpg
import nats
import pytest_asyncio

from salesplatform.devstack.pytest_plugin import nats_login_for_tests, settings_for_tests
from salesplatform.migrations import migrate
from salesplatform.store import init_connection


@pytest_asyncio.fixture
async def db(make_database):
    """A fresh, migrated database and a pool on it."""
    dsn = await make_database("plat")
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=8, init=init_connection)
    async with pool.acquire() as conn:
        await migrate(conn)
    try:
        yield pool
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def service_settings(make_database, nats_url, unique_prefix):
    dsn = await make_database("svc")
    return settings_for_tests(dsn, nats_url, unique_prefix, service="tally")


@pytest_asyncio.fixture
async def outside(nats_url):
    """A NATS connection of an outside system: sends commands and ingest, hears results."""
    nc = await nats.connect(nats_url, **nats_login_for_tests("system"))
    yield nc
    await nc.close()
