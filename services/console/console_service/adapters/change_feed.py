"""`reporting.changed.<report>` from NATS into the hub.

Core NATS delivers at most once, so after a reconnect every open page is told to re-read what it
shows. NATS being away when the console starts does not stop the console: pages are served, and
the feed keeps trying (1 s, doubling to 10 s) until it is connected.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats
import orjson
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from console_service.application.changes import ChangeHub
from salesplatform.messaging import Topology

log = structlog.get_logger(__name__)

RETRY_FIRST = 1.0
RETRY_MAX = 10.0


class ChangeFeed:
    def __init__(
        self, url: str, namespace: str, hub: ChangeHub, *, user: str | None = None, password: str | None = None
    ) -> None:
        self.url = url
        self.user, self.password = user, password
        self.subject = Topology("reporting", namespace).subject("changed", "*")
        self.hub = hub
        self.nc: NATS | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    async def _run(self) -> None:
        wait = RETRY_FIRST
        while True:
            try:
                self.nc = await nats.connect(
                    self.url,
                    name="console",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    allow_reconnect=True,
                    connect_timeout=2,
                    user=self.user,
                    password=self.password,
                    disconnected_cb=self._disconnected,
                    reconnected_cb=self._reconnected,
                    error_cb=self._error,
                )
                await self.nc.subscribe(self.subject, cb=self._on_notice)
                log.info("change_feed_connected", subject=self.subject)
                # Whatever changed while there was no feed: re-read.
                self.hub.resync()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS away at start: keep trying
                log.warning("change_feed_waiting", error=repr(exc), retry_in=wait)
                await asyncio.sleep(wait)
                wait = min(RETRY_MAX, wait * 2)

    async def _on_notice(self, msg: Msg) -> None:
        report = msg.subject.rsplit(".", 1)[-1]
        try:
            body = orjson.loads(msg.data)
            changes = body.get("changes") if isinstance(body, dict) else None
        except orjson.JSONDecodeError:
            log.warning("change_notice_unreadable", subject=msg.subject)
            return
        self.hub.publish(report, changes if isinstance(changes, list) else [])

    async def _disconnected(self) -> None:
        log.warning("change_feed_disconnected")

    async def _reconnected(self) -> None:
        log.info("change_feed_reconnected")
        self.hub.resync()

    async def _error(self, exc: Exception) -> None:
        log.warning("change_feed_error", error=repr(exc))
