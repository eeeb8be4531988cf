"""Unit of work: load aggregates, decide, then append + inline projections + outbox in one
transaction. No dual write: publishing happens later, from the outbox, by the relay."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import asyncpg

from salesplatform.aggregate import Aggregate
from salesplatform.clock import Clock
from salesplatform.errors import NotFound
from salesplatform.events import Actor, Event, EventRegistry
from salesplatform.projections import Change, Projection, apply_inline
from salesplatform.store import NewEvent, RecordedEvent, append, load_payloads

A = TypeVar("A", bound=Aggregate)


@dataclass
class UnitOfWork:
    """Lives inside one open transaction on `conn`; the caller commits or rolls back.

    Rule kept here: the first write of the transaction is the events insert (loads are reads),
    so the transaction id that orders the global log is taken when the events are written.
    """

    conn: asyncpg.Connection
    registry: EventRegistry
    clock: Clock
    actor: Actor
    inline_projections: Sequence[Projection] = ()
    correlation_id: str | None = None
    causation_id: str | None = None
    # Per-transaction state shared by the units of work of one batch (projection locks held).
    locked_projections: dict[str, str] = field(default_factory=dict)
    recorded: list[RecordedEvent] = field(default_factory=list)
    changes: list[tuple[str, list[Change]]] = field(default_factory=list)

    async def load(self, cls: type[A], id: str) -> A:
        """The aggregate as of now (a new, empty one if the stream does not exist)."""
        stored = await load_payloads(self.conn, cls.stream_id_for(id))
        decode = self.registry.decode_payload
        events: list[Event] = [decode(t, v, data) for t, v, data in stored]
        return cls.replay(id, events)

    async def get(self, cls: type[A], id: str, what: str | None = None) -> A:
        agg = await self.load(cls, id)
        if agg.version == 0:
            raise NotFound(f"{what or cls.stream_prefix} {id} does not exist", code=f"{cls.stream_prefix}_not_found")
        return agg

    async def save(self, *aggregates: Aggregate) -> list[RecordedEvent]:
        out: list[RecordedEvent] = []
        for agg in aggregates:
            if not agg.pending:
                continue
            out.extend(await self.append(agg.stream_id, agg.version, agg.pending))
            agg.version += len(agg.pending)
            agg.pending = []
        return out

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event]
    ) -> list[RecordedEvent]:
        now = self.clock.now()
        new = [
            NewEvent(
                event_type=e.event_type,
                schema_version=e.schema_version,
                data=e.model_dump(mode="json"),
                occurred_at=now,
                recorded_at=now,
                actor=self.actor,
                correlation_id=self.correlation_id,
                causation_id=self.causation_id,
            )
            for e in events
        ]
        recorded = await append(self.conn, stream_id, expected_version, new, outbox=True)
        previous_path: str | None = None
        try:
            for projection in self.inline_projections:
                changes, path = await apply_inline(
                    self.conn, projection, recorded, self.locked_projections, restore=False
                )
                if previous_path is None:
                    previous_path = path
                if changes:
                    self.changes.append((projection.name, changes))
        finally:
            # One restore after all of them (a reactor finds its own tables again).
            if previous_path is not None:
                await self.conn.execute("SELECT set_config('search_path', $1, true)", previous_path)
        self.recorded.extend(recorded)
        return recorded

    async def finish(self) -> None:
        """Wake the relay and the catch-up runners once this transaction commits."""
        if self.recorded:
            await self.conn.execute("SELECT pg_notify('events', '')")
