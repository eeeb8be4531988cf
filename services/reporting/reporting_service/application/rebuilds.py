"""Rebuild all report projections (or some) in one pass, in the background, with progress."""

from __future__ import annotations

import weakref
from typing import Any

from reporting_service.adapters.changes import publish_changes
from reporting_service.domain.reports import CHANGE_SUBJECTS
from reporting_service.projections.rebuild import RebuildRunning, rebuild_together
from salesplatform.projections import Projection
from salesplatform.store import RecordedEvent


class ReportRebuilds:
    """One per runtime. Progress goes to `runtime.rebuilds`, which GET /admin/projections shows."""

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

    def start(self, projections: list[Projection]) -> None:
        if self.running:
            raise RebuildRunning("a rebuild of the reports is already running")
        self.running = True
        states = self._announce(projections)
        # A task of the runtime, as the platform's own rebuild endpoint starts one, so that
        # stopping the service cancels it (its generations stay 'building' and are dropped by
        # the next rebuild).
        self.runtime.spawn("rebuild-all", self._guarded(projections, states))

    async def run(self, projections: list[Projection]) -> dict[str, int]:
        """Rebuild now and wait for it."""
        if self.running:
            raise RebuildRunning("a rebuild of the reports is already running")
        self.running = True
        return await self._guarded(projections, self._announce(projections))

    def _announce(self, projections: list[Projection]) -> dict[str, dict[str, Any]]:
        """Progress entries, shown by GET /admin/projections from the moment a rebuild starts."""
        states = {}
        for p in projections:
            states[p.name] = {"projection": p.name, "status": "running", "events": 0, "mode": "rebuild-all"}
            self.runtime.rebuilds[p.name] = states[p.name]
        return states

    async def _guarded(self, projections: list[Projection], states: dict[str, dict[str, Any]]) -> dict[str, int]:
        try:
            return await self._run(projections, states)
        finally:
            self.running = False

    async def _run(self, projections: list[Projection], states: dict[str, dict[str, Any]]) -> dict[str, int]:

        def progress(n: int) -> None:
            for state in states.values():
                state["events"] = n

        try:
            generations = await rebuild_together(
                self.runtime.pool,
                projections,
                on_progress=progress,
                on_failure=self.dead_letter,
            )
        except Exception as exc:
            for state in states.values():
                state["status"] = f"failed: {exc!r}"
            raise
        for name, generation in generations.items():
            states[name].update(status="done", generation=generation)
        # Everything may have changed: tell the subscribers of every report.
        await publish_changes(self.runtime, "rebuild-all", [{"report": r, "rebuilt": True} for r in CHANGE_SUBJECTS])
        return generations


_BY_RUNTIME: weakref.WeakKeyDictionary[Any, ReportRebuilds] = weakref.WeakKeyDictionary()


def rebuilds_of(runtime: Any) -> ReportRebuilds:
    found = _BY_RUNTIME.get(runtime)
    if found is None:
        found = _BY_RUNTIME[runtime] = ReportRebuilds(runtime)
    return found
