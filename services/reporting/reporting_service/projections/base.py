"""Projections that apply a stretch of the log with a few set-based statements.

The platform hands `apply_batch` the events of one batch, in log order. Every statement here
reads its events straight from the local log (`public.events`) for the stretch that batch
covers, so a batch of thousands of events costs a handful of statements, whatever its size.
The same code serves the catch-up runner and the platform's rebuild, which hands over
stretches of 100,000 events at a time, one pass over the log for all reports at once.

A stretch is (after, upto]: `after` exclusive, `upto` inclusive, in the log's (tx_id, position)
order. A batch read by the runner is exactly such a stretch (its events are settled, so nothing
can commit inside it later).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from salesplatform.projections import Change, Projection
from salesplatform.store import LogPosition, RecordedEvent


@dataclass(frozen=True)
class Stretch:
    after: LogPosition
    upto: LogPosition

    @classmethod
    def of(cls, events: Sequence[RecordedEvent]) -> Stretch:
        first, last = events[0], events[-1]
        return cls(LogPosition(first.tx_id, first.position - 1), LogPosition(last.tx_id, last.position))

    def predicate(self, alias: str = "e") -> str:
        # Integers only, so they are safe to inline; inlined bounds let the planner pick an
        # index range scan for a small batch and a sequential read for a big one.
        a, u = self.after, self.upto
        return (
            f"({alias}.tx_id, {alias}.position) > ('{int(a.tx_id)}'::xid8, {int(a.position)})"
            f" AND ({alias}.tx_id, {alias}.position) <= ('{int(u.tx_id)}'::xid8, {int(u.position)})"
        )


@dataclass(frozen=True)
class Statement:
    """One set-based statement, run when the stretch holds any of `on` (event types).

    `sql` may use __RANGE__ (the stretch as a predicate on alias `e`) and __TZ__ (the company
    time zone). When changes are wanted, each row it returns is turned into change keys (for
    reporting.changed.<report>) by `report_keys`.
    """

    on: frozenset[str]
    sql: str
    report_keys: Callable[[asyncpg.Record], Iterable[Change]] | None = None


_TZ_NAME = re.compile(r"^[A-Za-z0-9_+\-/]+$")


def checked_timezone(name: str) -> str:
    ZoneInfo(name)  # raises for an unknown zone
    if not _TZ_NAME.match(name):
        raise ValueError(f"bad time zone name {name!r}")
    return name


class StretchProjection(Projection, ABC):
    """A catch-up projection applied stretch by stretch with set-based SQL. The catch-up runner
    hands it the stretch it scanned (`apply_range`: no events loaded); `apply_batch` serves the
    paths that have the events in hand."""

    reads_log = True

    def __init__(self, timezone: str = "Asia/Shanghai") -> None:
        self.timezone = checked_timezone(timezone)

    async def apply_range(
        self,
        conn: asyncpg.Connection,
        after: LogPosition,
        upto: LogPosition,
        present: frozenset[str] | None,
        *,
        changes: bool = True,
    ) -> list[Change]:
        return await self.apply_stretch(
            conn, Stretch(after, upto), None if present is None else set(present), changes=changes
        )

    async def apply_batch(self, conn: asyncpg.Connection, events: list[RecordedEvent]) -> list[Change]:
        if not events:
            return []
        present = {e.event_type for e in events}
        return await self.apply_stretch(conn, Stretch.of(events), present, changes=True)

    @abstractmethod
    async def apply_stretch(
        self,
        conn: asyncpg.Connection,
        stretch: Stretch,
        present: set[str] | None,
        *,
        changes: bool,
    ) -> list[Change]:
        """Apply every event of the stretch this projection reads. `present`: the event types
        the stretch holds, if known (statements for absent types are skipped)."""


class SqlProjection(StretchProjection):
    """A projection that is a list of statements run in order over each stretch."""

    statements: Sequence[Statement] = ()

    def render(self, sql: str, stretch: Stretch) -> str:
        return sql.replace("__RANGE__", stretch.predicate("e")).replace("__TZ__", self.timezone)

    async def apply_stretch(
        self,
        conn: asyncpg.Connection,
        stretch: Stretch,
        present: set[str] | None,
        *,
        changes: bool,
    ) -> list[Change]:
        due = [s for s in self.statements if present is None or s.on & present]
        if not due:
            return []
        if not changes:
            # One round trip for the lot: a rebuild does not publish changes.
            await conn.execute("\n;\n".join(self.render(s.sql, stretch) for s in due))
            return []
        out: list[Change] = []
        seen: set[tuple[Any, ...]] = set()
        for s in due:
            rows = await conn.fetch(self.render(s.sql, stretch))
            if s.report_keys is None:
                continue
            for row in rows:
                for change in s.report_keys(row):
                    key = tuple(sorted(change.items()))
                    if key not in seen:
                        seen.add(key)
                        out.append(change)
        return out


def iso(value: Any) -> Any:
    """Dates in change keys travel as ISO strings."""
    return value.isoformat() if hasattr(value, "isoformat") else value


def month_of(day: Any) -> str | None:
    return None if day is None else f"{day.year:04d}-{day.month:02d}"


def keys(*changes: dict[str, Any]) -> Iterable[Change]:
    return [{k: iso(v) for k, v in c.items()} for c in changes]
