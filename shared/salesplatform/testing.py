"""A unit of work and an event store in memory, for tests of handlers without servers.

`MemoryEventStore` keeps each stream as the store keeps it: event type, schema version and the
event's JSON data, with who recorded it and when. `MemoryUnitOfWork` offers handlers the calls
they make of `UnitOfWork` (`actor`, `clock`, `load`, `load_many`, `get`, `save`, `append`,
`claim`, `preload_streams`, `preloaded`); its loads decode the stored data through the
service's real `EventRegistry` (upcasters included) and replay the real aggregates, and its
appends check the expected version as the store does. `dispatch_in_memory` runs a request
through a real `CommandBus`'s checks (unknown command, role, Idempotency-Key, validation) and
handler, keeping the handler's events only if it answers, as the bus's transaction does.

What needs the database it cannot serve: `conn` (read models asked in SQL), `schemas` and
`write_with_events` raise `NeedsDatabase`, so a test of such a handler fails saying so
instead of passing on made-up data. No inline projection runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import orjson

from salesplatform.aggregate import Aggregate
from salesplatform.clock import Clock
from salesplatform.command import Outcome, Request, Result, Scope, fingerprint, replay, scope_of
from salesplatform.errors import ConcurrencyConflict, NotFound, ServiceError
from salesplatform.events import Actor, Event, EventRegistry
from salesplatform.inputs import require_storable

if TYPE_CHECKING:
    from salesplatform.commands import CommandBus
    from salesplatform.uow import Preloaded, UnitOfWork

A = TypeVar("A", bound=Aggregate)


class NeedsDatabase(RuntimeError):
    """The handler asked for something only the database serves (a read model, a write
    beside its events): it cannot run on the unit of work in memory."""


@dataclass(frozen=True)
class StoredEvent:
    stream_id: str
    version: int  # the stream's version once this event is in it (1 for the first)
    event_type: str
    schema_version: int
    data: dict[str, Any]
    recorded_at: datetime
    actor: Actor
    correlation_id: str | None
    causation_id: str | None


@dataclass
class MemoryEventStore:
    """Streams in memory, in the order they were appended (`log`), for one test."""

    registry: EventRegistry
    log: list[StoredEvent] = field(default_factory=list)
    _streams: dict[str, list[StoredEvent]] = field(default_factory=dict)

    def version(self, stream_id: str) -> int:
        return len(self._streams.get(stream_id, ()))

    def stored(self, stream_id: str) -> list[StoredEvent]:
        return list(self._streams.get(stream_id, ()))

    def events(self, stream_id: str) -> list[Event]:
        """The stream's events, decoded as a load decodes them."""
        decode = self.registry.decode_payload
        return [decode(e.event_type, e.schema_version, e.data) for e in self._streams.get(stream_id, ())]

    def append(self, events: Sequence[StoredEvent], expected_version: int) -> None:
        if not events:
            return
        stream_id = events[0].stream_id
        if self.version(stream_id) != expected_version:
            raise ConcurrencyConflict(f"{stream_id} is at version {self.version(stream_id)}, not {expected_version}")
        self._streams.setdefault(stream_id, []).extend(events)
        self.log.extend(events)

    def truncate(self, lengths: dict[str, int], log_length: int) -> None:
        """Undo every append made since the streams had these lengths (a rollback)."""
        for stream_id, length in lengths.items():
            del self._streams[stream_id][length:]
        del self.log[log_length:]


@dataclass
class MemoryUnitOfWork:
    """`UnitOfWork` over a `MemoryEventStore`: writes at once, undone by `rollback`."""

    store: MemoryEventStore
    clock: Clock
    actor: Actor
    correlation_id: str | None = None
    causation_id: str | None = None
    claimed: set[str] = field(default_factory=set)
    preloaded: Preloaded | None = None
    seen: list[Aggregate] = field(default_factory=list)
    _lengths: dict[str, int] = field(default_factory=dict)
    _log_length: int = -1

    @property
    def registry(self) -> EventRegistry:
        return self.store.registry

    @property
    def conn(self) -> Any:
        raise NeedsDatabase("the handler reads uow.conn: it needs the database")

    async def load(self, cls: type[A], id: str) -> A:
        """The aggregate as of now (a new, empty one if the stream does not exist)."""
        agg = cls.replay(id, self.store.events(cls.stream_id_for(id)))
        self.seen.append(agg)
        return agg

    async def load_many(self, wanted: Sequence[tuple[type[Aggregate], str]]) -> list[Aggregate]:
        return [await self.load(cls, i) for cls, i in wanted]

    async def get(self, cls: type[A], id: str, what: str | None = None) -> A:
        agg = await self.load(cls, id)
        if agg.version == 0:
            raise NotFound(f"{what or cls.stream_prefix} {id} does not exist", code=f"{cls.stream_prefix}_not_found")
        return agg

    async def preload_streams(self, stream_ids: Sequence[str]) -> None:
        """Nothing to read ahead: every load reads the store."""

    async def claim(self, *keys: str) -> None:
        """Commands run one at a time here: a claim has nobody to wait for."""
        self.claimed.update(keys)

    async def schemas(self, *projection_names: str) -> dict[str, str]:
        raise NeedsDatabase(f"the handler reads the projections {', '.join(projection_names)}")

    async def write_with_events(self, write: Callable[[Any], Awaitable[object]]) -> None:
        raise NeedsDatabase("the handler writes beside its events")

    async def save(self, *aggregates: Aggregate) -> None:
        """Append each aggregate's new events, in the order given (see `append`)."""
        for agg in aggregates:
            if not agg.pending:
                continue
            await self.append(agg.stream_id, agg.version, agg.pending)
            agg.version += len(agg.pending)
            agg.pending = []

    async def append(self, stream_id: str, expected_version: int, events: Sequence[Event]) -> None:
        """Append `events` if the stream is still at `expected_version` (else
        `ConcurrencyConflict`), stored as JSON as the store stores them."""
        now = self.clock.now()
        data = [e.model_dump(mode="json") for e in events]
        for one in data:
            require_storable(one)
        if self._log_length < 0:
            self._log_length = len(self.store.log)
        self._lengths.setdefault(stream_id, self.store.version(stream_id))
        self.store.append(
            [
                StoredEvent(
                    stream_id,
                    expected_version + n,
                    e.event_type,
                    e.schema_version,
                    orjson.loads(orjson.dumps(d)),
                    now,
                    self.actor,
                    self.correlation_id,
                    self.causation_id,
                )
                for n, (e, d) in enumerate(zip(events, data, strict=True), start=1)
            ],
            expected_version,
        )

    def rollback(self) -> None:
        if self._log_length >= 0:
            self.store.truncate(self._lengths, self._log_length)
        self._lengths.clear()
        self._log_length = -1


@dataclass
class MemoryResults:
    """The results stored under Idempotency-Keys, as `command_results` keeps them."""

    kept: dict[Scope, tuple[Result, str]] = field(default_factory=dict)


async def dispatch_in_memory(
    bus: CommandBus, store: MemoryEventStore, request: Request, results: MemoryResults | None = None
) -> Outcome:
    """Run `request` with `bus`'s handler on a `MemoryUnitOfWork`, as `CommandBus.dispatch`
    runs it: refused (unknown command, role, key, body) before the handler; a handler that
    refuses leaves the store as it was; a key sent again replays its first result (with
    `results`). A fault in the handler, `NeedsDatabase` included, is raised to the test."""
    try:
        spec, command = bus.prepare(request)
    except ServiceError as exc:
        return Outcome(False, error=exc)
    print_ = fingerprint(command) if request.idempotency_key is not None else None
    if results is not None and print_ is not None:
        stored = results.kept.get(scope_of(request))
        if stored is not None:
            try:
                return Outcome(True, replay(stored, request, print_), replayed=True)
            except ServiceError as exc:
                return Outcome(False, error=exc)
    uow = MemoryUnitOfWork(
        store,
        bus.clock,
        request.actor,
        correlation_id=request.correlation_id,
        causation_id=request.causation_id,
    )
    try:
        result = await spec.handler(command, cast("UnitOfWork", uow))
    except ServiceError as exc:
        uow.rollback()
        return Outcome(False, error=exc)
    except BaseException:
        uow.rollback()
        raise
    if results is not None and print_ is not None:
        results.kept[scope_of(request)] = (result, print_)
    return Outcome(True, result, seen=uow.seen)
