"""Set-based application of events: consecutive events of one type are applied in one statement.

A command appends a handful of events, a bulk import or a rebuild thousands; both go through the
same `on_<type>` methods, which take a run of events and write them with `unnest` arrays. Runs
keep log order, so an order's `order.placed` is always applied before its `order.confirmed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from itertools import groupby
from typing import Any, TypeVar, cast

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import RecordedEvent

Run = list[RecordedEvent]
K = TypeVar("K")


Handler = Callable[[asyncpg.Connection, Run], Awaitable[None]]


def runs(events: list[RecordedEvent]) -> list[tuple[str, Run]]:
    """Consecutive events of one type, in log order."""
    return [(t, list(group)) for t, group in groupby(events, key=lambda e: e.event_type)]


class RunProjection(Projection):
    def handler(self, event_type: str) -> Handler:
        return cast(
            "Callable[[Any, list[RecordedEvent]], Awaitable[None]]", getattr(self, "on_" + event_type.replace(".", "_"))
        )

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        for event_type, run in runs([e for e in events if self.handles(e)]):
            await self.handler(event_type)(conn, run)
        return []


def last_per(run: Run, key: str) -> Run:
    """The last event of the run for each value of `data[key]`: for updates that set absolute
    values, applying only the last one is the same as applying all in order."""
    out: dict[Any, RecordedEvent] = {}
    for event in run:
        out[event.data[key]] = event
    return list(out.values())


def column(run: Run, key: str) -> list[Any]:
    return [e.data[key] for e in run]


def occurred(run: Run) -> list[Any]:
    return [e.envelope.occurred_at for e in run]


def actors(run: Run) -> list[str]:
    return [e.envelope.actor.id for e in run]
