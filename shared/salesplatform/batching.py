"""Group commit: many commands in one transaction, each with an outcome of its own.

Design note
-----------
A commit costs a round trip and a WAL flush whatever it holds, so under load the bus runs
commands in batches (`CommandBus.dispatch_many`: an ingest batch, or the requests `GroupCommit`
gathered while the workers were busy), one transaction for all of them. A batch must still
decide each command as if it ran alone, in the order of the batch.

- **Waves.** A command registered `batched` runs with its writes kept (`UnitOfWork.wave`): its
  events, the read-model keys it claimed, its side writes and its Idempotency-Key's result.
  Kept writes gather into a wave, applied in one statement per kind (one append for all the
  streams, one pass of each inline projection) when something needs them applied. A refused
  command kept nothing, so it needs no savepoint. Commands of one wave never read what another
  of them writes: the unit of work refuses such a read with `WaveConflict`, the wave is applied
  and the command runs again in the next wave, now seeing that write. A command that reads its
  own write (`own`) cannot keep its writes: it runs writing at once.
- **At once.** Any other command runs in a savepoint after the wave before it is applied,
  writing as it goes, so its refusal undoes only its own writes.
- **Claims** (`UnitOfWork.claim`) order the commands that read and change one piece of
  read-model state across transactions. The claims the commands declare (`CommandSpec.claims`)
  are taken ahead in one statement, without waiting: the commands whose claims another
  transaction holds are set aside and run next in a batch of their own that waits for them (in
  one order, so waiting batches never deadlock). A claim a handler takes beyond the declared
  ones is not waited for either (`ClaimBusy`): the command runs again alone after the batch.
- **Conflict** with another transaction (it appended to one of the wave's streams first, or
  stored the same key): the commands concerned run again alone, after the batch commits, and
  decide on what that transaction wrote.
- **A wave that fails otherwise** (an inline projection refuses its events): its commands run
  again at once, each in its own savepoint, so only the one at fault fails.
- **Broken transaction** (a statement failed outside any savepoint, a lock wait PostgreSQL
  broke, the first wave failed): nothing of the batch commits, and every command runs again
  in a transaction of its own.
- **Outage** (the database is unreachable): the error goes to the caller with nothing
  committed; ingest hands the messages back to wait, never dead-letters them for it.

Until the batch ends each command's slot is an `Outcome` or says why it has none yet
(`Pending`); the batch answers only once every slot holds an outcome.

Control flow: the unit of work tells the batch about a wave conflict or a busy claim by
raising (`WaveConflict`, `ClaimBusy`), because the handler stands between them and must stop
where it is; an exception is the one way out of code the batch does not own. Inside the batch,
outcomes are returned; `BatchBroken` is raised only to leave the transaction, which rolls
it back.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import TYPE_CHECKING

import asyncpg
import structlog

from salesplatform import tracing
from salesplatform.command import (
    Command,
    InternalError,
    Outcome,
    Request,
    Result,
    Scope,
    fingerprint,
    replay,
    scope_of,
)
from salesplatform.errors import ConcurrencyConflict, ServiceError
from salesplatform.ids import uuid4
from salesplatform.outages import is_contention, is_outage, is_transient
from salesplatform.projections import Change
from salesplatform.store import append_streams
from salesplatform.uow import (
    ClaimBusy,
    Preloaded,
    UnitOfWork,
    Wave,
    WaveConflict,
    apply_all_inline,
    try_claims,
    wait_for_claims,
)

if TYPE_CHECKING:
    from salesplatform.commands import CommandBus, CommandSpec

log = structlog.get_logger(__name__)

# Errors that say nothing about the command: run it again in a new transaction.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)

Prepared = tuple[int, "CommandSpec", Command]


class Pending(Enum):
    """Why a command of a batch has no outcome yet."""

    NOT_RUN = "not run"  # not run yet, or its wave was undone
    ALONE = "alone"  # runs again alone once the batch has committed
    AFTER_CLAIMS = "after claims"  # its declared claims are held elsewhere: runs next, waiting


Slot = Outcome | Pending


class BatchBroken(Exception):
    """The batch's transaction cannot go on; its commands run again one by one."""


async def run_batch(bus: CommandBus, requests: list[Request], *, waits_for_claims: bool = False) -> list[Outcome]:
    """Run `requests` in one transaction (see the module's note); outcomes in their order.

    `waits_for_claims`: the batch waits for the claims its commands declare (the commands a
    batch before it set aside)."""
    assert bus.pool is not None, "bus not bound to a pool"
    slots: list[Slot] = [Pending.NOT_RUN] * len(requests)
    prepared: list[Prepared] = []
    for i, request in enumerate(requests):
        try:
            spec, command = bus.prepare(request)
            prepared.append((i, spec, command))
        except ServiceError as exc:
            slots[i] = Outcome(False, error=exc)
    if not prepared:
        return _decided(slots)
    try:
        async with bus.pool.acquire() as conn:
            async with conn.transaction():
                await Batch(bus, conn, requests, slots, waits_for_claims=waits_for_claims).run(prepared)
    except (asyncpg.PostgresError, BatchBroken) as exc:
        if is_outage(exc):
            raise  # the batch is handed back whole: nothing of it committed
        # A statement failed outside any savepoint (a handler's read in a wave): nothing of
        # the batch committed, so each command runs again in its own transaction.
        log.warning("batch_failed", error=str(exc), commands=len(prepared))
        return [await bus.dispatch_guarded(r) for r in requests]
    committed = [s for s in slots if isinstance(s, Outcome) and s.ok]
    for outcome in committed:
        bus.aggregates.put(outcome.seen)
    for outcome in committed:
        await bus.announce(outcome)
    aside = [i for i, s in enumerate(slots) if s is Pending.AFTER_CLAIMS]
    if aside:
        later = await run_batch(bus, [requests[i] for i in aside], waits_for_claims=True)
        for i, outcome in zip(aside, later, strict=True):
            slots[i] = outcome
    for i, slot in enumerate(slots):
        if slot is Pending.ALONE:
            slots[i] = await bus.dispatch_guarded(requests[i])
    return _decided(slots)


def _decided(slots: list[Slot]) -> list[Outcome]:
    outcomes = [s for s in slots if isinstance(s, Outcome)]
    if len(outcomes) != len(slots):
        raise AssertionError(f"a batch ended with commands undecided: {[s for s in slots if isinstance(s, Pending)]}")
    return outcomes


async def stored_results(conn: asyncpg.Connection, requests: list[Request]) -> dict[Scope, tuple[Result, str | None]]:
    """Results (with their fingerprints) of the batch's keys that were handled before, in
    one query. (Two commands of one batch with the same scope: the first runs, the second
    replays its result.)"""
    keyed = [scope_of(r) for r in requests if r.idempotency_key is not None]
    if not keyed:
        return {}
    rows = await conn.fetch(
        "SELECT k.actor_id, c.command, c.idempotency_key, c.result, c.fingerprint, c.actor_id = '' AS legacy"
        " FROM command_results c"
        " JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(actor_id, command, key)"
        "   ON c.command = k.command AND c.idempotency_key = k.key AND c.actor_id IN (k.actor_id, '')"
        " ORDER BY legacy DESC",
        [a for a, _, _ in keyed],
        [n for _, n, _ in keyed],
        [k for _, _, k in keyed],
    )
    # A caller's own row comes last and wins over one recorded before keys were scoped.
    return {(r["actor_id"], r["command"], r["idempotency_key"]): (r["result"], r["fingerprint"]) for r in rows}


class Batch:
    """One run of a batch inside its open transaction: fills `slots`, one per request."""

    def __init__(
        self,
        bus: CommandBus,
        conn: asyncpg.Connection,
        requests: list[Request],
        slots: list[Slot],
        *,
        waits_for_claims: bool = False,
    ) -> None:
        self.bus = bus
        self.conn = conn
        self.requests = requests
        self.slots = slots
        self.waits_for_claims = waits_for_claims
        self.locked: dict[str, str] = {}  # projection locks held, with their schemas
        self.held: set[str] = set()  # claims held
        self.preloaded = Preloaded()
        self.written = False  # anything written in the transaction yet
        self.replays: dict[Scope, tuple[Result, str | None]] = {}
        self.prints: dict[int, str] = {}  # fingerprints of the keyed commands
        self.prepared: dict[int, tuple[CommandSpec, Command]] = {}
        self.wave = Wave()

    async def run(self, prepared: list[Prepared]) -> None:
        prepared = await self._claim_ahead(prepared)
        self.prepared = {i: (spec, command) for i, spec, command in prepared}
        self.replays = await stored_results(self.conn, [self.requests[i] for i, _, _ in prepared])
        self.prints = {i: fingerprint(c) for i, _, c in prepared if self.requests[i].idempotency_key is not None}
        await self._preload(prepared)
        for i, spec, command in prepared:
            request = self.requests[i]
            if request.idempotency_key is not None:
                stored = self.replays.get(scope_of(request))
                if stored is not None:
                    try:
                        self.slots[i] = Outcome(True, replay(stored, request, self.prints[i]), replayed=True)
                    except ServiceError as exc:
                        self.slots[i] = Outcome(False, error=exc)
                    continue
            if spec.batched and await self._run_in_wave(i, spec, command):
                continue
            await self._apply_wave()
            await self._run_at_once(i, spec, command)
        await self._apply_wave()

    async def _claim_ahead(self, prepared: list[Prepared]) -> list[Prepared]:
        """Take the claims the commands declare, in one statement; returns the commands that
        run now. Claims another transaction holds are not waited for: their commands are set
        aside (`Pending.AFTER_CLAIMS`). With `waits_for_claims`, every claim is waited for
        instead; all waiting batches take their claims in one order, so they never deadlock. A
        claim a handler makes beyond the declared ones does not wait (`ClaimBusy`)."""
        keys_of = {i: set(spec.claims(command)) for i, spec, command in prepared if spec.claims is not None}
        keys = set().union(*keys_of.values())
        if not keys:
            return prepared
        if self.waits_for_claims:
            await wait_for_claims(self.conn, sorted(keys))
            self.held.update(keys)
            return prepared
        taken = set(await try_claims(self.conn, sorted(keys)))
        self.held.update(taken)
        busy = keys - taken
        if not busy:
            return prepared
        now: list[Prepared] = []
        for p in prepared:
            if keys_of.get(p[0], set()) & busy:
                self.slots[p[0]] = Pending.AFTER_CLAIMS
            else:
                now.append(p)
        return now

    async def _preload(self, prepared: list[Prepared]) -> None:
        """Let each kind of command read ahead for all of its commands in the batch."""
        by_spec: dict[str, tuple[CommandSpec, list[tuple[Request, Command]]]] = {}
        for i, spec, command in prepared:
            request = self.requests[i]
            if spec.preload is None or (request.idempotency_key is not None and scope_of(request) in self.replays):
                continue
            by_spec.setdefault(request.name, (spec, []))[1].append((request, command))
        for spec, items in by_spec.values():
            assert spec.preload is not None
            await spec.preload(self._unit_of_work(items[0][0], None), items)

    def _unit_of_work(self, request: Request, wave: Wave | None) -> UnitOfWork:
        return UnitOfWork(
            self.conn,
            self.bus.registry,
            self.bus.clock,
            request.actor,
            self.bus.inline_projections,
            correlation_id=request.correlation_id or str(uuid4()),
            causation_id=request.causation_id,
            locked_projections=self.locked,
            wave=wave,
            cache=self.bus.aggregates,
            held_claims=self.held,
            waits_for_claims=False,
            preloaded=self.preloaded,
            metadata=request.trace,
            tracer=self.bus.tracer,
        )

    async def _run_in_wave(self, i: int, spec: CommandSpec, command: Command) -> bool:
        """Run a batched command with its writes kept for the wave; True once its slot says
        what became of it. False: it reads its own writes (or what the wave writes, twice), so
        it must run writing at once."""
        request = self.requests[i]
        for attempt in (1, 2):
            uow = self._unit_of_work(request, self.wave)
            try:
                result = await spec.handler(command, uow)
            except WaveConflict as conflict:
                # It reads what the wave writes: apply the wave, then run it again in a new one.
                await self._apply_wave()
                if conflict.own or attempt == 2:
                    return False
                continue
            except ClaimBusy:
                self.slots[i] = Pending.ALONE
                return True
            except ConcurrencyConflict as exc:
                # Raised by a read (a lock wait PostgreSQL broke): the transaction may be lost.
                raise BatchBroken(str(exc)) from exc
            except ServiceError as exc:
                self.slots[i] = Outcome(False, error=exc)
                return True
            except asyncpg.PostgresError:
                raise  # the transaction may be lost: judged by the batch
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("command_failed", command=request.name)
                self.slots[i] = Outcome(False, error=InternalError(f"{request.name} failed"))
                return True
            self.wave.take(uow, i)
            if request.idempotency_key is not None:
                self.wave.results.append((*scope_of(request), self.prints[i], result))
                self.replays[scope_of(request)] = (result, self.prints[i])
            self.slots[i] = Outcome(True, result, seen=uow.seen)
            return True
        return False

    async def _run_at_once(self, i: int, spec: CommandSpec, command: Command) -> None:
        """Run a command in a savepoint, writing as it goes."""
        request = self.requests[i]
        self.written = True
        held_before = set(self.held)
        try:
            try:
                async with self.conn.transaction():
                    ran = await self.bus.run_in(
                        self.conn,
                        request,
                        spec,
                        command,
                        locked=self.locked,
                        held_claims=self.held,
                        preloaded=self.preloaded,
                        looked_up=True,
                    )
            except BaseException:
                self.held.intersection_update(held_before)  # claims taken in the savepoint went with it
                raise
            uow = ran.uow
            self.preloaded.wrote({e.envelope.stream_id for e in uow.recorded}, uow.claimed)
            self.slots[i] = Outcome(True, ran.result, changes=uow.changes, replayed=ran.replayed, seen=uow.seen)
            if request.idempotency_key is not None:
                # A later command of this batch with the same scope replays it.
                self.replays[scope_of(request)] = (ran.result, self.prints[i])
        except (ConcurrencyConflict, asyncpg.UniqueViolationError, *RETRYABLE):
            self.slots[i] = Pending.ALONE
        except ServiceError as exc:
            self.slots[i] = Outcome(False, error=exc)
        except Exception as exc:
            if is_outage(exc):
                raise  # not the command's fault: the whole batch waits
            # A fault in one handler must not fail the others in the batch.
            log.exception("command_failed", command=request.name)
            self.slots[i] = Outcome(False, error=InternalError(f"{request.name} failed"))

    async def _apply_wave(self) -> None:
        """Append the wave's events, apply them to the inline projections and keep its results,
        in a savepoint. If another transaction got there first, its commands run again alone
        after the batch; if an inline projection fails, each runs again here in a savepoint of
        its own, so only the one at fault fails.

        The batch's first write needs no savepoint (two round trips fewer): if it fails, there
        is nothing of the batch to keep, and every command runs again one by one."""
        wave, self.wave = self.wave, Wave()
        if not wave.members:
            return
        first_write, self.written = not self.written, True
        try:
            if first_write:
                changes = await self._write(wave)
            else:
                async with self.conn.transaction():
                    changes = await self._write(wave)
        except Exception as exc:
            if is_outage(exc):
                raise
            if first_write:
                raise BatchBroken(f"the first wave failed: {exc!r}") from exc
            self._forget(wave)
            if isinstance(exc, (ConcurrencyConflict, asyncpg.UniqueViolationError)) or is_contention(exc):
                for i in wave.members:
                    self.slots[i] = Pending.ALONE
                return
            log.warning("wave_failed", commands=len(wave.members), exc_info=True)
            for i in wave.members:
                await self._run_at_once(i, *self.prepared[i])
            return
        self.preloaded.wrote(wave.streams, wave.keys)
        first = self.slots[wave.members[0]]
        assert isinstance(first, Outcome)
        first.changes = changes

    async def _write(self, wave: Wave) -> list[tuple[str, list[Change]]]:
        with tracing.append(
            self.bus.tracer, len(wave.appends), sum(len(a.events) for a in wave.appends), wave.contexts
        ):
            recorded = await append_streams(self.conn, wave.appends, outbox=True)
        changes = await apply_all_inline(self.conn, self.bus.inline_projections, recorded, self.locked)
        for write in wave.writes:
            await write(self.conn)
        if wave.results:
            await self.conn.execute(
                "INSERT INTO command_results (actor_id, command, idempotency_key, fingerprint, result)"
                " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[])",
                *([r[n] for r in wave.results] for n in range(5)),
            )
        return changes

    def _forget(self, wave: Wave) -> None:
        """Undo what the batch kept of a wave that was rolled back: its outcomes and results."""
        for i in wave.members:
            self.slots[i] = Pending.NOT_RUN
        for actor_id, name, key, _, _ in wave.results:
            self.replays.pop((actor_id, name, key), None)


class GroupCommit:
    """Coalesces concurrent commands into shared transactions (one commit, one fsync, for
    many commands), each still with its own outcome (see the module's note).

    Under light load a batch holds one command and costs what `dispatch` costs; under heavy
    load batches grow to `max_batch`, which is how the command path goes past one
    transaction per command.
    """

    def __init__(self, bus: CommandBus, *, workers: int = 4, max_batch: int = 64) -> None:
        self.bus = bus
        self.max_batch = max_batch
        self._queue: asyncio.Queue[tuple[Request, asyncio.Future[Outcome]]] = asyncio.Queue()
        self._workers = [asyncio.create_task(self._work(), name="group-commit") for _ in range(workers)]

    async def submit(self, request: Request) -> Outcome:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, future))
        return await future

    async def _work(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                if len(batch) == 1:
                    outcomes = [await self.bus.dispatch(batch[0][0])]
                else:
                    outcomes = await self.bus.dispatch_many([r for r, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(outcome)
            for _ in batch:
                self._queue.task_done()

    async def close(self) -> None:
        await self._queue.join()
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
