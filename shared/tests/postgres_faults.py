"""A PostgreSQL server of a test's own, stopped the ways production's stops: `pg_ctl stop -m
immediate` (a crash: recovery at the next start), `-m fast` (clients disconnected, open
transactions rolled back) and kill -9 of the postmaster. Only this server's postmaster is
signalled, by the PID in its own data directory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg

from salesplatform.devstack.servers import PostgresServer, ServerError, postgres_bin_dir


class FaultyPostgres(PostgresServer):
    def stop_with(self, mode: str) -> None:
        """`pg_ctl stop -m <mode>` (immediate or fast), waiting until the server is down."""
        self._run([postgres_bin_dir() / "pg_ctl", "stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60"])
        self._started = False

    def begin_smart_stop(self) -> None:
        """`pg_ctl stop -m smart` without waiting: the server refuses new connections ("the
        database system is shutting down") until the sessions still open end."""
        self._run([postgres_bin_dir() / "pg_ctl", "stop", "-D", str(self.data_dir), "-m", "smart", "-W"])
        self._started = False

    def wait_until_stopped(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while (self.data_dir / "postmaster.pid").exists():
            if time.monotonic() > deadline:
                raise AssertionError("PostgreSQL did not stop")
            time.sleep(0.05)

    def kill_postmaster(self) -> None:
        """kill -9 of the postmaster; returns once it is gone (its backends then exit by
        themselves on finding it dead)."""
        pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        if os.fsencode(self.data_dir) not in Path(f"/proc/{pid}/cmdline").read_bytes():
            raise AssertionError(f"pid {pid} is not this server's postmaster")
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._started = False

    def start_again(self, attempts: int = 30) -> None:
        """Start on the same port. After a kill -9 the old backends may hold the shared memory
        for a moment, and the start is refused until they have exited: tried again."""
        for attempt in range(attempts):
            try:
                self.start()
                return
            except ServerError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1.0)


@contextlib.contextmanager
def own_postgres_server() -> Iterator[FaultyPostgres]:
    """A server of the test's own, which it may stop: the session's serves every other test.
    No fsync (nothing here outlives the test), but commits wait for their WAL to be written,
    as in production: a crash of the server keeps every commit it confirmed."""
    root = Path(tempfile.mkdtemp(prefix="sp-fault-"))
    root.chmod(0o711)  # PostgreSQL may run as another OS account (it refuses root)
    server = FaultyPostgres(root / "postgres", settings={"fsync": "off", "full_page_writes": "off"})
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


async def stop_held_up(server: FaultyPostgres) -> None:
    """A smart shutdown that an open session holds up: meanwhile every other session is ended
    ("terminating connection due to administrator command", 57P01) and the new ones are
    refused ("the database system is shutting down", 57P03); then the server is down."""
    admin = await asyncpg.connect(server.admin_dsn)
    try:
        await asyncio.to_thread(server.begin_smart_stop)
        for _ in range(30):
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
    await asyncio.to_thread(server.wait_until_stopped)
