"""Rebuild all report projections (or some) in one pass over the log (the platform's
`rebuild` of several projections), in the background, with progress."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any

from reporting_service.adapters.changes import publish_changes
from reporting_service.domain.reports import CHANGE_SUBJECTS
from salesplatform.projections import Projection, RebuildRunning, rebuild, record_rebuild_failure
from salesplatform.store import RecordedEvent


class ReportRebuilds:
    """One per runtime. Progress is kept in `projection_generations`, which GET
    /admin/projections shows on every replica."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.running = False

    def projections(self, names: list[str] | None = None) -> list[Projection]:
        every = list(self.runtime.definition.projections) + list(self.runtime.bus.inline_projections)
        if not names:
            return every
        known = {p.name: p for p in every}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise LookupError(", ".join(unknown))
        return [known[n] for n in dict.fromkeys(names)]

    async def dead_letter(self, name: str, event: RecordedEvent, error: str) -> None:
        """An event a projection could not apply goes to the dead-letter subject, as the
        platform's runner does with the ones it cannot apply."""
        await self.runtime.dead_letters.send(
            "projection_failed",
            event.envelope.to_json(),
            error=error,
            headers={"Projection": name, "Event-Id": str(event.envelope.event_id)},
            source=f"projection:{name}",
            dedup_id=f"dlq-projection-{name}-{event.envelope.event_id}",
        )

    async def start(self, projections: list[Projection]) -> None:
        """Start a rebuild in the background and return once its generations exist, so that
        GET /admin/projections, on any replica, shows it running from the moment this returns.
        A task of the runtime, as the platform's own rebuild endpoint starts one, so that
        stopping the service cancels it (its generations are then marked failed, and dropped by
        the next rebuild)."""
        if self.running:
            raise RebuildRunning("a rebuild of the reports is already running")
        self.running = True
        started: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        finished: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.runtime.spawn("rebuild-all", self._guarded(projections, started, finished))
        await asyncio.wait([started, finished], return_when=asyncio.FIRST_COMPLETED)
        if not started.done():
            finished.result()  # what stopped it before it began (another replica's rebuild)

    async def run(self, projections: list[Projection]) -> dict[str, int]:
        """Rebuild now and wait for it."""
        if self.running:
            raise RebuildRunning("a rebuild of the reports is already running")
        self.running = True
        return await self._guarded(projections)

    async def _guarded(
        self,
        projections: list[Projection],
        started: asyncio.Future[Any] | None = None,
        finished: asyncio.Future[Any] | None = None,
    ) -> dict[str, int]:
        def began(generations: dict[str, int]) -> None:
            if started is not None and not started.done():
                started.set_result(generations)

        try:
            generations = await rebuild(self.runtime.pool, projections, on_failure=self.dead_letter, on_started=began)
        except asyncio.CancelledError:
            if finished is not None and not finished.done():
                finished.cancel()
            await self._record_failure(projections, "stopped with the service")
            raise
        except BaseException as exc:
            if finished is not None and started is not None and not started.done():
                finished.set_exception(exc)  # it never began: the caller of start() hears why
                return {}
            await self._record_failure(projections, repr(exc))
            raise
        finally:
            self.running = False
        if finished is not None and not finished.done():
            finished.set_result(None)
        # Everything may have changed: tell the subscribers of every report.
        await publish_changes(self.runtime, "rebuild-all", [{"report": r, "rebuilt": True} for r in CHANGE_SUBJECTS])
        return generations

    async def _record_failure(self, projections: list[Projection], error: str) -> None:
        """Keep why the rebuild stopped on the generations it was building, where every
        replica's GET /admin/projections reads it."""
        for p in projections:
            with contextlib.suppress(Exception):
                await record_rebuild_failure(self.runtime.pool, p.name, error)


_BY_RUNTIME: weakref.WeakKeyDictionary[Any, ReportRebuilds] = weakref.WeakKeyDictionary()


def rebuilds_of(runtime: Any) -> ReportRebuilds:
    found = _BY_RUNTIME.get(runtime)
    if found is None:
        found = _BY_RUNTIME[runtime] = ReportRebuilds(runtime)
    return found
