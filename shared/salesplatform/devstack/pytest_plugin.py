"""pytest plugin: one real PostgreSQL and one real NATS server for the whole test session.

Load with `-p salesplatform.devstack.pytest_plugin`. Tests get fresh databases from
`make_database` and namespace their NATS streams with `unique_prefix`, so one pair of servers
serves every test. Setting TEST_POSTGRES_ADMIN_DSN and/or TEST_NATS_URL runs the suite against
servers started elsewhere instead.

NATS runs the production layout of accounts and permissions (`salesplatform.nats_layout`) in
its namespaced form, with the platform's own test services (`tally`, and `board` consuming
tally's events) added: every service in a test connects as its own user and reaches only what
it would in production. The users' passwords come from TEST_NATS_SEED (random per session); an
external server must run `nats_layout.server_config(TEST_LAYOUT, nats_passwords_for_tests(),
namespaced=True)` made with the same seed. Tokens are signed with a key pair made for the
session (`TEST_SIGNING_KEY`); services get its public key set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import shutil
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import nats
import nats.js.errors
import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg

from salesplatform import messaging
from salesplatform.auth import SigningKey
from salesplatform.devstack.servers import (
    NatsServer,
    PostgresServer,
    create_database,
    drop_database,
)
from salesplatform.nats_layout import PRODUCTION, Layout, ServiceGrant, server_config
from salesplatform.settings import ServiceSettings

POSTGRES_ENV = "TEST_POSTGRES_ADMIN_DSN"
NATS_ENV = "TEST_NATS_URL"
NATS_SEED_ENV = "TEST_NATS_SEED"

# The production layout, and the services the platform's own tests run.
TEST_LAYOUT: Layout = PRODUCTION.with_services(
    ServiceGrant("tally", announces=("changed",)), ServiceGrant("board", consumes=("tally",))
)
_NATS_SEED = os.environ.get(NATS_SEED_ENV) or secrets.token_hex(16)
# Signs every token the tests mint; services verify with its public key only.
TEST_SIGNING_KEY = SigningKey.generate("test-key")
TEST_JWKS = json.dumps({"keys": [TEST_SIGNING_KEY.public_jwk()]})


def nats_password_for_tests(user: str) -> str:
    return hmac.new(_NATS_SEED.encode(), user.encode(), hashlib.sha256).hexdigest()[:32]


def nats_passwords_for_tests() -> dict[str, str]:
    return {user: nats_password_for_tests(user) for user in TEST_LAYOUT.users}


def nats_login_for_tests(user: str) -> dict[str, str]:
    """`nats.connect(url, **nats_login_for_tests("customer"))`: connect as that user."""
    return {"user": user, "password": nats_password_for_tests(user)}


@contextlib.asynccontextmanager
async def connected_as(nats_url: str, user: str) -> AsyncIterator[NATS]:
    """A NATS connection as `user` (a service, `system` or `operator`), closed after."""
    nc = await nats.connect(nats_url, **nats_login_for_tests(user))
    try:
        yield nc
    finally:
        await nc.close()


async def ensure_streams_of(nats_url: str, namespace: str, services: list[str] | tuple[str, ...]) -> None:
    """Create the streams of `services` (each as that service) ahead of the one under test."""
    await messaging.ensure_streams_of(nats_url, namespace, services, login=nats_login_for_tests)


async def stream_messages(js: JetStreamContext, stream: str, *, after: int = 0) -> list[RawStreamMsg]:
    """The messages `stream` holds now with a sequence above `after`, read one by one (no
    consumer is made: a service's user may not make one without naming it)."""
    state = (await js.stream_info(stream)).state
    out = []
    for seq in range(max(state.first_seq, after + 1), state.last_seq + 1):
        with contextlib.suppress(nats.js.errors.NotFoundError):  # deleted, or gone from a work queue
            out.append(await js.get_msg(stream, seq))
    return out


async def next_stream_message(
    js: JetStreamContext, stream: str, *, after: int = 0, timeout: float = 10.0
) -> RawStreamMsg:
    """The first message of `stream` above sequence `after`, waiting up to `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await stream_messages(js, stream, after=after)
        if found:
            return found[0]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no message in {stream} after sequence {after} within {timeout} s")
        await asyncio.sleep(0.05)


def write_nats_config_for_tests(path: Path) -> Path:
    path.write_text(server_config(TEST_LAYOUT, nats_passwords_for_tests(), namespaced=True))
    path.chmod(0o600)
    return path


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


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked `fast` runs without servers: asking for them (directly or through another
    fixture) fails it before any server starts, so `pytest -m fast` never starts one."""
    if item.get_closest_marker("fast") is not None and "stack_servers" in getattr(item, "fixturenames", ()):
        pytest.fail(f"{item.nodeid} is marked fast but asks for the servers (stack_servers)", pytrace=False)


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
            config = write_nats_config_for_tests(root / "nats.conf")
            nats = NatsServer(root / "nats", config_file=config).start()
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
    database_url: str, nats_url: str, namespace: str, *, service: str, **overrides: object
) -> ServiceSettings:
    """The settings of `service` in the test suite: its own database, the session's NATS as its
    own user under a namespace of its own, the session's key set, short polling, few deliveries
    before a dead letter, a small pool."""
    values: dict[str, Any] = {
        "poll_interval": 0.2,
        "max_deliveries": 3,
        "pool_min": 1,
        "pool_max": 8,
        "jwks": TEST_JWKS,
        **nats_credentials_for_tests(service),
        **overrides,
    }
    return ServiceSettings(database_url=database_url, nats_url=nats_url, stream_prefix=namespace, **values)


def nats_credentials_for_tests(service: str) -> dict[str, str]:
    """The settings fields that make a service connect as its own NATS user."""
    return {"nats_user": service, "nats_password": nats_password_for_tests(service)}
