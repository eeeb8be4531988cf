"""A PostgreSQL server of a test's own, stopped the ways production's stops: `pg_ctl stop -m
immediate` (a crash: recovery at the next start), `-m fast` (clients disconnected, open
transactions rolled back) and kill -9 of the postmaster. Only this server's postmaster is
signalled, by the PID in its own data directory."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

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
