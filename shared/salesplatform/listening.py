"""A LISTEN session that outlives database restarts.

A service is woken by PostgreSQL's NOTIFY on the `events` channel when events commit, so its
catch-up projections and its relay run at once rather than at their next poll. The session is
a connection of its own, and a restart of the server (a crash, a failover, `pg_ctl stop`)
ends it without a word to the service: left alone, the service would fall back to polling for
as long as it runs. Here the session is watched (its end is reported by asyncpg, and a quiet one
is checked now and then) and opened again, with a backoff, once the server is back; the
service is then woken once, for what committed while nobody listened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog

from salesplatform.outages import OutageLog, is_outage

log = structlog.get_logger(__name__)

_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 10.0


class Listener:
    """Keeps `LISTEN <channel>` open on `dsn` and calls `on_notify` for each notification, and
    once each time the session is (re)opened."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_notify: Callable[[], None],
        *,
        outages: OutageLog | None = None,
        check_every: float = 10.0,
    ) -> None:
        self.dsn = dsn
        self.channel = channel
        self.on_notify = on_notify
        self.outages = outages or OutageLog()
        self.check_every = check_every
        self.sessions = 0  # sessions opened since start: more than one after a reconnection
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._stopping = asyncio.Event()

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def open(self) -> None:
        """Open the first session (the service's start waits for it: the database is there)."""
        await self._open()

    def stop(self) -> None:
        self._stopping.set()
        self._lost.set()

    async def close(self) -> None:
        self.stop()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def run(self) -> None:
        """Watch the session, and open a new one whenever it ends, until stopped."""
        backoff = _BACKOFF_FIRST
        while not self._stopping.is_set():
            if not self.listening:
                try:
                    await self._open()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - tried again after a pause
                    if is_outage(exc):
                        self.outages.failed("listener", exc)
                    else:
                        log.warning("listener_retry", channel=self.channel, error=repr(exc))
                    await self._pause(backoff)
                    backoff = min(backoff * 2, _BACKOFF_MAX)
                    continue
                backoff = _BACKOFF_FIRST
                self.outages.recovered("listener")
                # What committed while the session was down sent no notification to anyone.
                self.on_notify()
            await self._watch()

    async def _open(self) -> None:
        self._lost.clear()
        conn = await asyncpg.connect(self.dsn)
        try:
            conn.add_termination_listener(self._on_terminated)
            await conn.add_listener(self.channel, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self.sessions += 1

    async def _watch(self) -> None:
        """Return once the session has ended: asyncpg says so when the socket closes; a
        session quiet for `check_every` is asked a trivial query, in case the server went
        away without closing it (a host gone, a network cut)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._lost.wait(), self.check_every)
        if self._stopping.is_set() or self._conn is None:
            return
        if self._lost.is_set():
            self.outages.failed("listener", ConnectionResetError(f"the LISTEN {self.channel} session ended"))
        else:
            try:
                await self._conn.fetchval("SELECT 1", timeout=self.check_every)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the session is given up and opened again
                self.outages.failed("listener", exc)
        conn, self._conn = self._conn, None
        conn.terminate()

    def _on_terminated(self, _conn: object) -> None:
        self._lost.set()

    def _on_notify(self, *_: object) -> None:
        self.on_notify()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
