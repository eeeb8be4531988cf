from __future__ import annotations

import asyncpg
import pytest_asyncio
from tally import SECRET

from salesplatform.devstack.pytest_plugin import settings_for_tests
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
    return settings_for_tests(dsn, nats_url, SECRET, unique_prefix)
