"""The development stack starts real servers, isolates service databases and cleans up."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from salesplatform.devstack import (
    NatsServer,
    PostgresServer,
    create_service_database,
    free_port,
)
from salesplatform.devstack.pytest_plugin import StackServers

pytest_plugins = ["pytester"]


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A short directory in the system temp dir that PostgreSQL's OS account can reach."""
    path = Path(tempfile.mkdtemp(prefix="sp-devstack-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.fast
def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


async def test_service_roles_reach_only_their_own_database(scratch_dir: Path) -> None:
    server = PostgresServer(scratch_dir / "pg", fsync_off=True)
    with server:
        assert server.port not in (5432, 0)
        assert server.admin_dsn == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
        alpha_dsn = await create_service_database(server.admin_dsn, "alpha", "alpha-secret")
        beta_dsn = await create_service_database(server.admin_dsn, "beta", "beta-secret")
        assert alpha_dsn == f"postgresql://alpha:alpha-secret@127.0.0.1:{server.port}/alpha"

        alpha = await asyncpg.connect(alpha_dsn)
        try:
            assert await alpha.fetchval("SELECT current_user") == "alpha"
            await alpha.execute("CREATE TABLE kept (id int)")
        finally:
            await alpha.close()

        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await asyncpg.connect(server.dsn("beta", user="alpha", password="alpha-secret"))
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(server.dsn("alpha", user="alpha", password="wrong"))
        beta = await asyncpg.connect(beta_dsn)
        try:  # the owner keeps CREATE on its public schema; nobody else has it
            await beta.execute("CREATE TABLE owned_by_beta (id int)")
            assert not await beta.fetchval("SELECT has_schema_privilege('alpha', 'public', 'CREATE')")
            assert not await beta.fetchval("SELECT has_database_privilege('alpha', 'beta', 'CONNECT')")
        finally:
            await beta.close()

        # Idempotent: a second call keeps the data and the credentials.
        assert await create_service_database(server.admin_dsn, "alpha", "alpha-secret") == alpha_dsn
        port = server.port

    assert not _accepts(port)
    assert not (scratch_dir / "pg" / "postmaster.pid").exists()

    # A restart on the same directory (a second `make run`) finds the cluster and its data.
    with PostgresServer(scratch_dir / "pg", fsync_off=True) as again:
        alpha = await asyncpg.connect(again.dsn("alpha", user="alpha", password="alpha-secret"))
        try:
            assert await alpha.fetchval("SELECT count(*) FROM kept") == 0
        finally:
            await alpha.close()


async def test_nats_server_runs_jetstream_and_stops(scratch_dir: Path) -> None:
    server = NatsServer(scratch_dir / "nats")
    with server:
        assert server.port != 4222
        assert server.url == f"nats://127.0.0.1:{server.port}"
        client = await nats.connect(server.url)
        try:
            js = client.jetstream()
            info = await js.account_info()
            assert info.limits is not None
            await js.add_stream(name="DEVSTACK", subjects=["devstack.event.>"])
            ack = await js.publish("devstack.event.tested", b"{}", headers={"Nats-Msg-Id": "one"})
            duplicate = await js.publish("devstack.event.tested", b"{}", headers={"Nats-Msg-Id": "one"})
            assert ack.seq == 1 and duplicate.duplicate
        finally:
            await client.close()
        process = server.process
        url = server.url

    assert process is not None and process.poll() is not None
    assert not _accepts(server.port)

    # A restart keeps its address and its JetStream data.
    with server:
        assert server.url == url
        client = await nats.connect(server.url)
        try:
            info = await client.jetstream().stream_info("DEVSTACK")
            assert info.state.messages == 1
        finally:
            await client.close()
    assert not _accepts(server.port)


async def test_make_database_gives_a_fresh_database(
    make_database: Callable[..., Awaitable[str]], stack_servers: StackServers, unique_prefix: str
) -> None:
    dsn = await make_database(prefix="devstack")
    other = await make_database()
    assert dsn != other
    conn = await asyncpg.connect(dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        assert name.startswith("devstack_")
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    finally:
        await conn.close()
    assert unique_prefix.isalnum() and len(unique_prefix) <= 10
    assert stack_servers.nats_url.startswith("nats://")


def test_plugin_uses_external_servers_and_drops_databases(
    pytester: pytest.Pytester, stack_servers: StackServers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run a small suite against this session's servers as 'external' ones; its databases go."""
    monkeypatch.setenv("TEST_POSTGRES_ADMIN_DSN", stack_servers.admin_dsn)
    monkeypatch.setenv("TEST_NATS_URL", stack_servers.nats_url)
    record = pytester.path / "created.txt"
    pytester.makepyfile(
        f"""
        import asyncpg, pytest

        @pytest.mark.asyncio
        async def test_inner(make_database, stack_servers, nats_url):
            assert stack_servers.external
            assert nats_url == {stack_servers.nats_url!r}
            dsn = await make_database(prefix="inner")
            conn = await asyncpg.connect(dsn)
            try:
                open({str(record)!r}, "w").write(await conn.fetchval("SELECT current_database()"))
            finally:
                await conn.close()
        """
    )
    result = pytester.runpytest_subprocess("-p", "salesplatform.devstack.pytest_plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    name = record.read_text()

    async def exists() -> bool:
        conn = await asyncpg.connect(stack_servers.admin_dsn)
        try:
            return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
        finally:
            await conn.close()

    assert name.startswith("inner_")
    assert asyncio.run(exists()) is False
