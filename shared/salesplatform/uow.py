"""Unit of work: load aggregates, decide, then append + inline projections + outbox in the
command's transaction. No dual write: publishing happens later, from the outbox, by the relay.

A unit of work writes at once, or — for commands registered `batched` and run in a batch —
keeps its writes for the batch to apply together with other commands' (a `Wave`): one append
statement and one pass of every inline projection for many commands instead of several
statements for each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import asyncpg
from opentelemetry.trace import Tracer

from salesplatform import tracing
from salesplatform.aggregate import Aggregate, AggregateCache
from salesplatform.clock import Clock
from salesplatform.errors import ConcurrencyConflict, NotFound
from salesplatform.events import Actor, Event, EventRegistry
from salesplatform.inputs import require_storable
from salesplatform.projections import Change, Projection, apply_inline, locked_schemas
from salesplatform.store import (
    NewEvent,
    RecordedEvent,
    StreamAppend,
    append_streams,
    load_many_payloads,
    load_payloads,
)

A = TypeVar("A", bound=Aggregate)
Write = Callable[[asyncpg.Connection], Awaitable[object]]


# A claim is a transaction-scoped advisory lock in a key space of its own (the two-int form:
# a class number for claims and the hash of the key). Two keys with one hash only wait more.
_CLAIM_CLASS = 0x636C


async def try_claims(conn: asyncpg.Connection, keys: Sequence[str]) -> list[str]:
    """Lock each key no other transaction holds; returns the keys now held."""
    return list(
        await conn.fetchval(
            "SELECT coalesce(array_agg(k), '{}') FROM unnest($1::text[]) AS k"
            " WHERE pg_try_advisory_xact_lock($2, hashtext(k))",
            list(keys),
            _CLAIM_CLASS,
        )
    )


async def wait_for_claims(conn: asyncpg.Connection, keys: Sequence[str]) -> None:
    """Lock the keys, waiting for transactions that hold them; in one order everywhere, so two
    waiters never hold one key each of the other's."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($2, h)"
        " FROM (SELECT DISTINCT hashtext(k) AS h FROM unnest($1::text[]) AS k ORDER BY 1) AS ordered",
        list(keys),
        _CLAIM_CLASS,
    )


class ClaimBusy(ConcurrencyConflict):
    """A key this command claims is held by another transaction, and the command runs in a
    batch, which does not wait: it runs again alone after the batch. Raised, like
    `WaveConflict`, to leave the handler."""

    code = "claim_busy"


class WaveConflict(Exception):
    """A batched command reads what an earlier command of its wave is about to write (a stream
    it appends to, or a key it claimed): the wave is applied first and the command runs again
    in the next wave (writing at once, if it conflicts again). `own`: the command reads a
    stream it wrote itself, which only writing at once supports.

    Raised, not returned: it has to leave the handler, which stands between the unit of work
    and the batch (see `salesplatform.batching`)."""

    def __init__(self, what: str, *, own: bool = False) -> None:
        super().__init__(what)
        self.own = own


@dataclass
class Wave:
    """Writes of batched commands not yet applied. Commands of one wave never read what
    another of them writes: each stream is written by one command, each claimed key is held by
    one, and a command that would break that raises `WaveConflict`."""

    appends: list[StreamAppend] = field(default_factory=list)
    streams: set[str] = field(default_factory=set)
    keys: set[str] = field(default_factory=set)
    # (actor id, command, idempotency key, fingerprint, result) of keyed commands, stored with
    # the writes.
    results: list[tuple[str, str, str, str, Any]] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    # The members' trace contexts, for the span of the wave's append.
    contexts: list[dict[str, str] | None] = field(default_factory=list)

    def take(self, uow: UnitOfWork, member: int) -> None:
        self.appends.extend(uow.deferred)
        self.streams.update(a.stream_id for a in uow.deferred)
        self.keys.update(uow.claimed)
        self.writes.extend(uow.side_writes)
        self.members.append(member)
        self.contexts.append(uow.metadata)


Payloads = list[tuple[str, int, dict[str, Any]]]
_MISSING = object()


@dataclass
class Preloaded:
    """What a batch read ahead for its commands, a statement for all of them instead of one per
    command: streams from the versions their loads start at, and read-model values, each
    filed under the claim key that orders its writers (or the stream whose writers change it).
    A stream the batch writes afterwards, or a key a command of the batch claimed and wrote, is
    read again. (A stream another transaction appends to meanwhile needs nothing here: the
    append's version guard refuses.)"""

    streams: dict[str, tuple[int, Payloads]] = field(default_factory=dict)
    values: dict[tuple[str, str], tuple[Any, str]] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)

    def events_after(self, stream_id: str, version: int) -> Payloads | None:
        kept = self.streams.get(stream_id)
        if kept is None or kept[0] != version or stream_id in self.written:
            return None
        return kept[1]

    def keep(self, kind: str, key: str, value: Any, *, claim: str) -> None:
        self.values[(kind, key)] = (value, claim)

    def value(self, kind: str, key: str) -> Any:
        """The value kept, or `Preloaded.MISSING` when there is none or it went stale."""
        kept = self.values.get((kind, key))
        if kept is None or kept[1] in self.changed or kept[1] in self.written:
            return _MISSING
        return kept[0]

    def wrote(self, streams: set[str], keys: set[str]) -> None:
        self.written.update(streams)
        self.changed.update(keys)

    MISSING: ClassVar[object] = _MISSING


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
    # Set when the writes are kept for the batch: the wave they will join.
    wave: Wave | None = None
    deferred: list[StreamAppend] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)
    # Claims this transaction holds (shared by the units of work of one batch), and whether a
    # claim held elsewhere is waited for (alone) or refused with `ClaimBusy` (in a batch).
    held_claims: set[str] = field(default_factory=set)
    waits_for_claims: bool = True
    # Reads the batch made ahead (none alone).
    preloaded: Preloaded | None = None
    side_writes: list[Write] = field(default_factory=list)
    # Committed aggregates to start loads from; and what this command loaded, for the cache
    # once the transaction commits.
    cache: AggregateCache | None = None
    seen: list[Aggregate] = field(default_factory=list)
    # What the command's events keep in their envelope's metadata (its W3C trace context), and
    # the tracer that records their append.
    metadata: dict[str, str] | None = None
    tracer: Tracer = tracing.OFF

    def _check_read(self, stream_id: str) -> None:
        if self.wave is None:
            return
        if stream_id in self.wave.streams:
            raise WaveConflict(f"{stream_id} is written earlier in the batch")
        if any(a.stream_id == stream_id for a in self.deferred):
            raise WaveConflict(f"{stream_id} is read after being written", own=True)

    async def load(self, cls: type[A], id: str) -> A:
        """The aggregate as of now (a new, empty one if the stream does not exist)."""
        return (await self.load_many([(cls, id)]))[0]  # type: ignore[return-value]

    async def load_many(self, wanted: Sequence[tuple[type[Aggregate], str]]) -> list[Aggregate]:
        """Several aggregates, of any kinds, in one read of the log (an order, its SKUs and the
        promotions in scope): one round trip instead of one per stream. An aggregate in the
        cache is read from after its version."""
        stream_ids = [cls.stream_id_for(i) for cls, i in wanted]
        for stream_id in stream_ids:
            self._check_read(stream_id)
        start: list[Aggregate | None] = [self.cache.get(sid) if self.cache is not None else None for sid in stream_ids]
        after: dict[str, int] = {}
        stored: dict[str, Payloads] = {}
        for sid, agg in zip(stream_ids, start, strict=True):
            version = agg.version if agg is not None else 0
            ahead = self.preloaded.events_after(sid, version) if self.preloaded is not None else None
            if ahead is not None:
                stored[sid] = ahead
            else:
                after.setdefault(sid, version)
        if after:
            stored.update(await load_payloads(self.conn, after))
        decode = self.registry.decode_payload
        loaded: list[Aggregate] = []
        for (cls, i), sid, agg in zip(wanted, stream_ids, start, strict=True):
            events = [decode(t, v, data) for t, v, data in stored.get(sid, ())]
            if agg is None:
                agg = cls.replay(i, events)
            else:
                agg.catch_up(events)
            loaded.append(agg)
        self.seen.extend(loaded)
        return loaded

    async def get(self, cls: type[A], id: str, what: str | None = None) -> A:
        agg = await self.load(cls, id)
        if agg.version == 0:
            raise NotFound(f"{what or cls.stream_prefix} {id} does not exist", code=f"{cls.stream_prefix}_not_found")
        return agg

    async def preload_streams(self, stream_ids: Sequence[str]) -> None:
        """Read these streams ahead, for the loads of the batch's commands (one statement).
        Alone (no batch reads ahead) it does nothing: each load reads its own stream."""
        if self.preloaded is None:
            return
        after = {sid: self.cache.version(sid) if self.cache is not None else 0 for sid in stream_ids}
        after = {sid: v for sid, v in after.items() if sid not in self.preloaded.streams}
        if not after:
            return
        stored = await load_many_payloads(self.conn, after)
        for sid, version in after.items():
            self.preloaded.streams[sid] = (version, stored.get(sid, []))

    async def claim(self, *keys: str) -> None:
        """Name the read-model state this command reads and may change (say `customer:c1` for a
        customer's open orders and invoices), before reading it. Commands claiming one key run
        one after the other, each seeing the last one's writes: in a batch by waves, across
        transactions by a lock held until commit. Alone, a command waits for the lock. A batch
        takes the claims its commands declare (`CommandSpec.claims`) ahead without waiting: the
        commands whose claims another transaction holds run next, in a batch that waits for
        them. A claim beyond the declared ones does not wait in a batch (`ClaimBusy`: the
        command runs again alone once the batch has committed), so two batches never wait for
        each other's handlers."""
        if self.wave is not None:
            for key in keys:
                if key in self.wave.keys:
                    raise WaveConflict(f"{key} is claimed earlier in the batch")
        missing = sorted(set(keys) - self.held_claims)
        if missing:
            if self.waits_for_claims:
                await wait_for_claims(self.conn, missing)
                self.held_claims.update(missing)
            else:
                self.held_claims.update(await try_claims(self.conn, missing))
                busy = [k for k in missing if k not in self.held_claims]
                if busy:
                    raise ClaimBusy(f"{', '.join(busy)} is held by another transaction")
        self.claimed.update(keys)

    async def schemas(self, *projection_names: str) -> dict[str, str]:
        """The active schema of each projection, for reads in this transaction. Takes each
        projection's lock shared, so no rebuild switches it before the transaction ends: all
        reads and inline writes of the transaction use one generation."""
        return await locked_schemas(self.conn, projection_names, self.locked_projections)

    async def save(self, *aggregates: Aggregate) -> None:
        """Append each aggregate's new events, in the order given (see `append`)."""
        for agg in aggregates:
            if not agg.pending:
                continue
            await self.append(agg.stream_id, agg.version, agg.pending)
            agg.version += len(agg.pending)
            agg.pending = []

    async def append(self, stream_id: str, expected_version: int, events: Sequence[Event]) -> None:
        """Append `events` to the stream if it is still at `expected_version`: at once, with
        the outbox rows and the inline projections (`ConcurrencyConflict` if another writer got
        there first), or, in a wave, kept for the batch to append with the wave's."""
        now = self.clock.now()
        data = [e.model_dump(mode="json") for e in events]
        for one in data:
            # Text PostgreSQL cannot store is the sender's mistake (422 naming the field),
            # found before anything is written, whatever the transport.
            require_storable(one)
        new = [
            NewEvent(
                event_type=e.event_type,
                schema_version=e.schema_version,
                data=d,
                occurred_at=now,
                recorded_at=now,
                actor=self.actor,
                correlation_id=self.correlation_id,
                causation_id=self.causation_id,
                metadata=self.metadata,
            )
            for e, d in zip(events, data, strict=True)
        ]
        if self.wave is not None:
            self._defer(StreamAppend(stream_id, expected_version, new))
            return
        with tracing.append(self.tracer, 1, len(new), [self.metadata]):
            recorded = await append_streams(self.conn, [StreamAppend(stream_id, expected_version, new)], outbox=True)
        self.changes.extend(
            await apply_all_inline(self.conn, self.inline_projections, recorded, self.locked_projections)
        )
        self.recorded.extend(recorded)

    async def write_with_events(self, write: Write) -> None:
        """A write of the command's besides its events (a new data key, say) that must commit
        with them: at once, or in a batch together with the wave's events, after them."""
        if self.wave is None:
            await write(self.conn)
        else:
            self.side_writes.append(write)

    def _defer(self, write: StreamAppend) -> None:
        for i, earlier in enumerate(self.deferred):
            if earlier.stream_id == write.stream_id:
                # The same stream again in this command: one append of both, in order.
                if write.expected_version != earlier.expected_version + len(earlier.events):
                    raise ValueError(f"{write.stream_id}: appends out of order")
                self.deferred[i] = StreamAppend(
                    earlier.stream_id, earlier.expected_version, [*earlier.events, *write.events]
                )
                return
        self.deferred.append(write)


async def apply_all_inline(
    conn: asyncpg.Connection,
    projections: Sequence[Projection],
    recorded: list[RecordedEvent],
    locked: dict[str, str],
) -> list[tuple[str, list[Change]]]:
    """Apply freshly appended events to every inline projection, in the appending transaction."""
    changed: list[tuple[str, list[Change]]] = []
    previous_path: str | None = None
    try:
        for projection in projections:
            changes, path = await apply_inline(conn, projection, recorded, locked, restore=False)
            if previous_path is None:
                previous_path = path
            if changes:
                changed.append((projection.name, changes))
    finally:
        # One restore after all of them (a reactor finds its own tables again).
        if previous_path is not None:
            await conn.execute("SELECT set_config('search_path', $1, true)", previous_path)
    return changed
