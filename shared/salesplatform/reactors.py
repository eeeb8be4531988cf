"""Reactors: events (usually another service's, copied into the log) turned into this service's
commands, run through the service's own command bus.

A reactor declares the event types it reacts to and, for each event, says which commands to
send (`react`). The runtime's `ReactorRunner` reads the log after the reactor's checkpoint, in
log order, and runs each command with the bus as the reactor's service actor
(`service:<service>:<reactor>`), so every command is validated, authorised, traced, counted and
kept idempotent like any other. Its guarantees:

- At least once: the checkpoint moves past a batch only after every command of the batch has
  been answered. A crash in between sends the batch's commands again.
- Effectively once: each command carries an idempotency key made from the reactor, the event id
  and the reaction's own key, so a command sent again replays its first result.
- In order: events are reacted to one after the other in log order (so per stream), by one
  runner at a time across replicas (an advisory lock per reactor, which the others wait for).
- An outage (database, NATS) or contention is waited out: the batch is tried again later from
  the same checkpoint; nothing is dead-lettered for it. Each answer, a command refused (4xx)
  included, is handed to the reactor's `answered`, in the transaction that moves the checkpoint. A fault in code (a 5xx)
  stops the reactor at that event, logged as `reaction_failed`, and tries again with a backoff
  until the fault is fixed: an event is never skipped.
- `after`: catch-up projections whose state `react` (or the commands) read; the reactor never
  runs ahead of their checkpoints, so it judges each event against them as they stood there.

A reactor is not a projection: it is never rebuilt from the start (its effects are commands,
not a read model).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg
import structlog

from salesplatform import projections
from salesplatform.commands import CommandBus, Request
from salesplatform.errors import ConcurrencyConflict, ServiceError, Unavailable
from salesplatform.events import Actor, service_actor
from salesplatform.outages import OutageLog, is_outage, is_transient
from salesplatform.store import LOG_START, LogPosition, RecordedEvent, read_log_of_types

log = structlog.get_logger(__name__)

_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 10.0
# How soon a reactor held back by a projection it waits for looks again.
_HELD_BACK_PAUSE = 0.05
# How long a busy runner (woken within `projections.IDLE_SECONDS` of its last pass that read
# the log) lets commits gather before it looks again. Every commit of the service wakes it,
# and most commits hold nothing it reacts to (orders placed, to the visit-orders reactor):
# one pass per commit would cost a transaction each. A reaction waits at most this much
# longer under load; woken after a quiet spell, the runner looks at once.
_BUSY_GATHER_SECONDS = 0.05


@dataclass(frozen=True)
class Reaction:
    """One command a reactor sends for an event. `key` tells apart the commands one event
    leads to (a route id, an order id); with the event id it makes the command's idempotency
    key."""

    command: str
    payload: dict[str, Any]
    key: str = ""


@dataclass(frozen=True)
class Answer:
    """How the bus answered a reaction: its result, or the refusal (`Reactor.answered`)."""

    event: RecordedEvent
    reaction: Reaction
    result: dict[str, Any] | None = None
    error: ServiceError | None = None


class Reactor:
    """Subclasses set `name` and `event_types` and implement `react`.

    `after`: the catch-up projections it never runs ahead of. `takes_over`: a projection that
    reacted to these events before (older releases); a reactor new to a database starts at that
    projection's checkpoint instead of the start of the log.
    """

    name: ClassVar[str]
    event_types: ClassVar[frozenset[str]]
    after: ClassVar[tuple[str, ...]] = ()
    takes_over: ClassVar[str | None] = None

    async def react(self, conn: asyncpg.Connection, event: RecordedEvent) -> Sequence[Reaction]:
        """The commands `event` leads to (none: nothing to do). `conn` reads committed state,
        including what the commands for earlier events did."""
        raise NotImplementedError

    async def answered(self, conn: asyncpg.Connection, answer: Answer) -> None:
        """A command was answered: by default a refusal is logged. Runs in the transaction that
        moves the checkpoint past the event, so what is kept here is kept once."""
        if answer.error is not None:
            log.warning(
                "reaction_refused",
                reactor=self.name,
                event_id=str(answer.event.envelope.event_id),
                command=answer.reaction.command,
                code=answer.error.code,
            )


def idempotency_key(reactor: Reactor, event: RecordedEvent, reaction: Reaction) -> str:
    """The same event and reaction give the same key in every run and on every replica."""
    return f"reactor:{reactor.name}:{event.envelope.event_id}:{reaction.key}"


async def ensure_reactor(conn: asyncpg.Connection, reactor: Reactor) -> None:
    """Give a reactor new to this database its checkpoint: the start of the log, or where the
    projection it takes over had got to."""
    await conn.execute(
        "INSERT INTO public.reactor_checkpoints (name, tx_id, position)"
        " SELECT $1, coalesce(g.tx_id, '0'::xid8), coalesce(g.position, 0)"
        " FROM (SELECT 1) one"
        " LEFT JOIN public.projections p ON p.name = $2"
        " LEFT JOIN public.projection_generations g ON g.name = p.name AND g.generation = p.generation"
        " ON CONFLICT (name) DO NOTHING",
        reactor.name,
        reactor.takes_over,
    )


class _Stuck(Exception):
    """A reaction failed for a reason that is no outage and no refusal (a fault in code)."""


@dataclass
class ReactorRunner:
    """Runs a service's reactors with its bus. Woken by new events, and by a polling fallback."""

    pool: asyncpg.Pool
    bus: CommandBus
    reactors: Sequence[Reactor]
    service: str
    batch_size: int = 200
    poll_interval: float = 1.0
    outages: OutageLog = field(default_factory=OutageLog)

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # Set when a reactor stopped short of the log for a projection it waits for: the runner
        # then looks again soon rather than at the next poll.
        self._held_back = False
        self.actors: dict[str, Actor] = {r.name: service_actor(self.service, r.name) for r in self.reactors}
        if len(self.actors) != len(self.reactors):
            raise ValueError("two reactors share a name")

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def ensure(self) -> None:
        async with self.pool.acquire() as conn:
            for reactor in self.reactors:
                await ensure_reactor(conn, reactor)

    async def run_once(self) -> int:
        """React to everything there is to react to now; returns the events reacted to."""
        total = 0
        for reactor in self.reactors:
            while not self._stopping.is_set():
                n = await self.react_once(reactor)
                total += n
                if n == 0:
                    break
        return total

    async def react_once(self, reactor: Reactor) -> int:
        """One batch: the events after the checkpoint (up to the projections in `after`),
        their commands, then the checkpoint, in one transaction on this connection. Returns
        the events of the log passed (0: nothing to do)."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                # One runner at a time (replicas, or a loop and a caller): the others wait, then
                # read the checkpoint it left. Not a row lock: that would give this long
                # transaction an id, and every reader of the settled log would wait for it.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('reactor:' || $1))", reactor.name)
                row = await conn.fetchrow(
                    "SELECT tx_id::text::bigint, position FROM public.reactor_checkpoints WHERE name = $1",
                    reactor.name,
                )
                after = LogPosition(row[0], row[1]) if row is not None else LOG_START
                events, scanned, reached = await read_log_of_types(conn, after, self.batch_size, reactor.event_types)
                bound = await _bound(conn, reactor.after)
                if bound is not None and reached > bound:
                    self._held_back = True
                    reached = max(bound, after)
                    events = [e for e in events if LogPosition(e.tx_id, e.position) <= reached]
                if reached == after:
                    return 0
                if not events:
                    # Nothing to react to in the stretch: the checkpoint commits without
                    # waiting for the disk. A crash may take it back; the next pass then scans
                    # the same events of no interest again.
                    await conn.execute("SET LOCAL synchronous_commit = off")
                for event in events:
                    await self._react_to(conn, reactor, event)
                await conn.execute(
                    "UPDATE public.reactor_checkpoints SET tx_id = $2::text::xid8, position = $3,"
                    " reacted = reacted + $4, updated_at = now() WHERE name = $1",
                    reactor.name,
                    str(reached.tx_id),
                    reached.position,
                    len(events),
                )
        return scanned

    async def _react_to(self, conn: asyncpg.Connection, reactor: Reactor, event: RecordedEvent) -> None:
        envelope = event.envelope
        for reaction in await reactor.react(conn, event):
            outcome = await self.bus.dispatch(
                Request(
                    name=reaction.command,
                    payload=reaction.payload,
                    actor=self.actors[reactor.name],
                    idempotency_key=idempotency_key(reactor, event, reaction),
                    correlation_id=envelope.correlation_id or str(envelope.event_id),
                    causation_id=str(envelope.event_id),
                )
            )
            error = outcome.error
            if error is not None:
                if isinstance(error, ConcurrencyConflict | Unavailable):
                    raise error  # says nothing about the event: the batch runs again later
                if error.status >= 500:
                    raise _Stuck(f"{reaction.command} failed for {envelope.event_id}: {error.code}")
            await reactor.answered(conn, Answer(event, reaction, outcome.result, error))

    async def run(self) -> None:
        backoff = _BACKOFF_FIRST
        last_read = 0.0  # when the last pass that read the log ended
        while not self._stopping.is_set():
            self._wake.clear()
            self._held_back = False
            try:
                if await self.run_once():
                    last_read = time.perf_counter()
                backoff = _BACKOFF_FIRST
                self.outages.recovered("reactors")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the runner outlives any failure, with a backoff
                if is_outage(exc):
                    self.outages.failed("reactors", exc)
                elif is_transient(exc) or isinstance(exc, ConcurrencyConflict | Unavailable):
                    log.info("reaction_postponed", error=repr(exc), backoff=backoff)
                else:
                    log.error("reaction_failed", error=repr(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _HELD_BACK_PAUSE if self._held_back else self.poll_interval)
            if time.perf_counter() - last_read < projections.IDLE_SECONDS and not self._stopping.is_set():
                await asyncio.sleep(_BUSY_GATHER_SECONDS)


async def _bound(conn: asyncpg.Connection, projections: tuple[str, ...]) -> LogPosition | None:
    """The checkpoint of the least advanced of `projections` (their active generations)."""
    if not projections:
        return None
    rows = await conn.fetch(
        "SELECT g.tx_id::text::bigint, g.position FROM public.projections p"
        " JOIN public.projection_generations g ON g.name = p.name AND g.generation = p.generation"
        " WHERE p.name = ANY($1::text[])",
        list(projections),
    )
    if len(rows) != len(projections):
        return LOG_START  # not made yet: wait for them
    return min(LogPosition(r[0], r[1]) for r in rows)
