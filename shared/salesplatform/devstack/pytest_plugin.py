"""pytest plugin: one real PostgreSQL and one real NATS server for the whole test session.

Load with `-p salesplatform.devstack.pytest_plugin`. Tests get fresh databases from
`make_database` and namespace their NATS streams with `unique_prefix`, so one pair of servers
serves every test. Setting TEST_POSTGRES_ADMIN_DSN and/or TEST_NATS_URL runs the suite against
servers started elsewhere instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from salesplatform.devstack.servers import (
    NatsServer,
    PostgresServer,
    create_database,
    drop_database,
)
from salesplatform.settings import ServiceSettings

POSTGRES_ENV = "TEST_POSTGRES_ADMIN_DSN"
NATS_ENV = "TEST_NATS_URL"


@dataclass(frozen=True)
class StackServers:
    """Where the session's servers are: Postgres admin DSN (with its host and port) and NATS."""

    admin_dsn: str
    nats_url: str
    host: str
    port: int
    external: bool


def _run_coroutine(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine to completion on a private loop in a worker thread.

    Sync fixtures may be torn down while a test's event loop is running in this thread,
    where asyncio.run is not allowed.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coroutine)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(error)

    thread = threading.Thread(target=target, name="devstack-teardown")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def stack_servers() -> Iterator[StackServers]:
    """Start (or locate) the session's PostgreSQL and NATS servers; stop ours at the end."""
    external_dsn = os.environ.get(POSTGRES_ENV) or None
    external_nats = os.environ.get(NATS_ENV) or None
    root: Path | None = None
    if external_dsn is None or external_nats is None:
        root = Path(tempfile.mkdtemp(prefix="sp-test-"))
        root.chmod(0o711)  # PostgreSQL may run as another OS account (it refuses root)
    postgres: PostgresServer | None = None
    nats: NatsServer | None = None
    try:
        if root is not None and external_dsn is None:
            postgres = PostgresServer(root / "postgres", fsync_off=True).start()
        if root is not None and external_nats is None:
            nats = NatsServer(root / "nats").start()
        admin_dsn = external_dsn or (postgres.admin_dsn if postgres else "")
        parts = urlsplit(admin_dsn)
        yield StackServers(
            admin_dsn=admin_dsn,
            nats_url=external_nats or (nats.url if nats else ""),
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            external=external_dsn is not None and external_nats is not None,
        )
    finally:
        if nats is not None:
            nats.stop()
        if postgres is not None:
            postgres.stop()
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def nats_url(stack_servers: StackServers) -> str:
    """The NATS server's client URL."""
    return stack_servers.nats_url


@pytest.fixture(scope="session")
def postgres_admin_dsn(stack_servers: StackServers) -> str:
    """The superuser DSN of the session's PostgreSQL server."""
    return stack_servers.admin_dsn


@pytest.fixture
def unique_prefix() -> str:
    """A short random name part (letters and digits) to keep tests' NATS streams apart."""
    return "t" + secrets.token_hex(4)


@pytest.fixture
def make_database(stack_servers: StackServers) -> Iterator[Callable[..., Awaitable[str]]]:
    """`await make_database(prefix="t")` creates a fresh database and returns its DSN.

    Every database created is dropped (sessions disconnected first) when the test ends. The
    fixture itself is sync so it works with whatever event-loop scope the test uses.
    """
    created: list[str] = []

    async def factory(prefix: str = "t") -> str:
        name = f"{prefix.lower()}_{uuid.uuid4().hex[:12]}"
        dsn = await create_database(stack_servers.admin_dsn, name)
        created.append(name)
        return dsn

    yield factory

    async def drop_all() -> None:
        for name in created:
            await drop_database(stack_servers.admin_dsn, name)

    if created:
        _run_coroutine(drop_all())


def settings_for_tests(
    database_url: str, nats_url: str, jwt_secret: str, namespace: str, **overrides: object
) -> ServiceSettings:
    """A service's settings in the test suite: its own database, the session's NATS under a
    namespace of its own, short polling, few deliveries before a dead letter, a small pool."""
    values: dict[str, object] = {
        "poll_interval": 0.2,
        "max_deliveries": 3,
        "pool_min": 1,
        "pool_max": 8,
        **overrides,
    }
    return ServiceSettings(
        database_url=database_url, nats_url=nats_url, jwt_secret=jwt_secret, stream_prefix=namespace, **values
    )
