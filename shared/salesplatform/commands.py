"""Commands and the bus that runs them: one handler per command, whatever the transport.

HTTP, NATS request/reply and JetStream ingest all call `CommandBus.dispatch` (or
`dispatch_many` for a batch in one transaction), so validation, permissions, idempotency and
the error shapes are the same everywhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg
import orjson
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from salesplatform import tracing
from salesplatform.aggregate import Aggregate, AggregateCache
from salesplatform.clock import Clock
from salesplatform.errors import (
    ConcurrencyConflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceError,
    from_validation_error,
)
from salesplatform.events import Actor, EventRegistry, Role
from salesplatform.ids import uuid4
from salesplatform.metrics import DETACHED, ServiceMetrics
from salesplatform.outages import is_contention, is_outage, is_transient
from salesplatform.projections import Change, Projection
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

log = structlog.get_logger(__name__)


class Command(BaseModel):
    """Base of every command: imperative name, frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: ClassVar[str]
    # Payload fields (as sent) that may hold personal data, such as free text about a person:
    # left out of the command's dead letters.
    personal_fields: ClassVar[frozenset[str]] = frozenset()


Result = dict[str, Any]
# (actor id, command, Idempotency-Key): a key means something only to the caller who sent it,
# for the command it sent it with.
Scope = tuple[str, str, str]
Handler = Callable[[Any, UnitOfWork], Awaitable[Result]]
Preload = Callable[[UnitOfWork, list[tuple["Request", Any]]], Awaitable[None]]


@dataclass(frozen=True)
class CommandSpec:
    command: type[Command]
    handler: Handler
    roles: frozenset[Role] | None
    summary: str
    # In a batch, its writes join the others' (see `UnitOfWork.claim` for what it promises).
    batched: bool = False
    # The keys the handler will claim, known from the command alone: a batch takes them all
    # in one statement before it runs its commands.
    claims: Callable[[Any], Iterable[str]] | None = None
    # Reads ahead for a batch's commands of this kind: (unit of work, [(request, command)]).
    preload: Preload | None = None


@dataclass
class Request:
    """One command as it arrived: raw payload plus who sent it and why."""

    name: str
    payload: Any
    actor: Actor
    idempotency_key: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    # The W3C trace context (`traceparent`, `tracestate`) the command arrived with; once the bus
    # took it, its own span's, which the events it records keep.
    trace: dict[str, str] | None = None


@dataclass
class Outcome:
    ok: bool
    result: Result | None = None
    error: ServiceError | None = None
    changes: list[tuple[str, list[Change]]] = field(default_factory=list)
    replayed: bool = False
    # The aggregates the command loaded: cached once its transaction commits.
    seen: list[Aggregate] = field(default_factory=list, repr=False)

    @property
    def status(self) -> int:
        return 200 if self.ok else self.error.status  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "result": self.result}
        return {"ok": False, "status": self.status, "error": self.error.to_dict()}  # type: ignore[union-attr]


# The longest Idempotency-Key taken. A UUID (36) or a caller's own reference fits many times;
# the stored results' index could not hold keys of a few thousand characters.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class IdempotencyKeyRefused(ServiceError):
    """The Idempotency-Key cannot be used: too long, empty or with control characters, or
    already used by this caller for this command with another body. Nothing was changed."""

    status = 422
    code = "idempotency_key_invalid"


def check_idempotency_key(key: str) -> None:
    if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
        raise IdempotencyKeyRefused(
            f"an Idempotency-Key may hold at most {IDEMPOTENCY_KEY_MAX_LENGTH} characters, not {len(key)}",
            code="idempotency_key_too_long",
            field="Idempotency-Key",
        )
    if not key or any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise IdempotencyKeyRefused(
            "an Idempotency-Key must be non-empty and hold no control characters", field="Idempotency-Key"
        )


def fingerprint(command: Command) -> str:
    """The hash of the command's canonical body: its validated fields that differ from their
    defaults, keys sorted. Bodies that differ only in spacing, key order, stripped whitespace or
    a field sent with its default value have one fingerprint; so does a body run by a release
    whose command has gained an optional field (a rolling update: one release stores the key,
    the next may see the message again)."""
    canonical = orjson.dumps(command.model_dump(mode="json", exclude_defaults=True), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def scope_of(request: Request) -> Scope:
    assert request.idempotency_key is not None
    return (request.actor.id, request.name, request.idempotency_key)


def replay(stored: tuple[Result, str | None], request: Request, print_: str) -> Result:
    """The first result of a key, for a request that sent it again; refused if the body is not
    the one the key was first used with. (A result recorded before fingerprints were kept has
    none, and is replayed.)"""
    result, first_print = stored
    if first_print is not None and first_print != print_:
        raise IdempotencyKeyRefused(
            f"the Idempotency-Key was already used for {request.name} with another body; "
            "use a new key for a new request",
            code="idempotency_key_reused",
            field="Idempotency-Key",
        )
    return result


# Rows recorded before keys were scoped to their caller have the actor ''. They keep answering
# their (command, key) until the retention removes them.
_LOOKUP_ONE = (
    "SELECT result, fingerprint FROM command_results"
    " WHERE command = $1 AND idempotency_key = $2 AND actor_id IN ($3, '')"
    " ORDER BY actor_id DESC LIMIT 1"
)


async def forget_command_results(conn: asyncpg.Connection, older_than_hours: float) -> int:
    """Delete stored results older than the retention; returns how many. A key sent again
    after that runs its command again."""
    done = await conn.execute(
        "DELETE FROM command_results WHERE recorded_at < now() - make_interval(secs => $1)",
        older_than_hours * 3600.0,
    )
    return int(done.split()[-1])


WITHHELD = "[withheld]"


def withholding_guard(bus: CommandBus) -> Callable[[str, bytes], Awaitable[tuple[bytes, dict[str, str]]]]:
    """What a dead-lettered command of `bus` keeps: its payload without the fields its command
    declares personal. A payload that is no JSON object, or names no command of the bus, is
    left out whole: nothing can tell what it holds."""

    async def guard(name: str, payload: bytes) -> tuple[bytes, dict[str, str]]:
        spec = bus.specs.get(name)
        try:
            doc = orjson.loads(payload) if payload else {}
        except orjson.JSONDecodeError:
            doc = None
        if spec is None or not isinstance(doc, dict):
            return b"", ({"Dlq-Withheld": "payload"} if payload else {})
        withheld = sorted(f for f in spec.command.personal_fields if f in doc)
        if not withheld:
            return payload, {}
        kept = {k: (WITHHELD if k in withheld else v) for k, v in doc.items()}
        return orjson.dumps(kept), {"Dlq-Withheld": ",".join(withheld)}

    return guard


_CONFLICT_RETRIES = 12
# Errors that say nothing about the command: run it again in a new transaction.
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)


class CommandBus:
    def __init__(
        self,
        registry: EventRegistry,
        clock: Clock,
        *,
        inline_projections: Sequence[Projection] = (),
        cache_size: int = 10_000,
    ) -> None:
        self.registry = registry
        self.aggregates = AggregateCache(cache_size)
        self.clock = clock
        self.inline_projections = list(inline_projections)
        self.specs: dict[str, CommandSpec] = {}
        self.pool: asyncpg.Pool | None = None
        self.after_commit: list[Callable[[list[tuple[str, list[Change]]]], Awaitable[None]]] = []
        # Outcomes since the process started, by (command, status): 200 accepted, else the error's.
        self.counts: Counter[tuple[str, int]] = Counter()
        # Where latencies and spans go (the runtime's; detached and off for a bus on its own).
        self.metrics: ServiceMetrics = DETACHED
        self.tracer = tracing.OFF

    def command(
        self,
        cls: type[Command],
        *,
        roles: set[Role] | None = None,
        summary: str = "",
        batched: bool = False,
        claims: Callable[[Any], Iterable[str]] | None = None,
        preload: Preload | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the handler of `cls`; `roles` limits who may send it at all (the handler
        still checks finer rules like territory).

        `batched`: in a batch (ingest, group commit) the handler's writes are applied together
        with other batched commands'. The handler promises to read other streams only through
        the unit of work, to name with `uow.claim` every read-model key it reads that a batched
        command may change, and to raise before it saves when it refuses. `claims`: the keys
        the handler claims, from the command, for a batch to take ahead. `preload`: reads a
        batch makes once for all its commands of this kind (`UnitOfWork.preload_streams`,
        `Preloaded.keep`) before running them; their handlers find them in `uow.preloaded`."""

        def decorate(fn: Handler) -> Handler:
            if cls.name in self.specs:
                raise ValueError(f"command {cls.name} registered twice")
            self.specs[cls.name] = CommandSpec(
                cls,
                fn,
                frozenset(roles) if roles else None,
                summary or (fn.__doc__ or "").strip(),
                batched,
                claims,
                preload,
            )
            return fn

        return decorate

    def _prepare(self, request: Request) -> tuple[CommandSpec, Command]:
        spec = self.specs.get(request.name)
        if spec is None:
            raise NotFound(f"unknown command {request.name}", code="unknown_command")
        if spec.roles is not None and request.actor.role not in spec.roles:
            raise PermissionDenied(f"role {request.actor.role} may not {request.name}", code="role_not_allowed")
        if request.idempotency_key is not None:
            check_idempotency_key(request.idempotency_key)
        try:
            if isinstance(request.payload, (bytes, str)):
                command = spec.command.model_validate_json(request.payload)
            else:
                command = spec.command.model_validate(request.payload)
        except ValidationError as exc:
            raise from_validation_error(exc) from None
        return spec, command

    async def _run_in(
        self,
        conn: asyncpg.Connection,
        request: Request,
        spec: CommandSpec,
        command: Command,
        *,
        locked: dict[str, str] | None = None,
        held_claims: set[str] | None = None,
        preloaded: Preloaded | None = None,
        looked_up: bool = False,
    ) -> tuple[Result, bool, UnitOfWork]:
        """Run one command inside the caller's open transaction. Returns (result, replayed).

        `looked_up`: the caller already checked the idempotency key (a batch does it once).
        `held_claims`: the batch's claims; a claim held elsewhere is then not waited for.
        """
        key = request.idempotency_key
        uow = UnitOfWork(
            conn,
            self.registry,
            self.clock,
            request.actor,
            self.inline_projections,
            correlation_id=request.correlation_id or str(uuid4()),
            causation_id=request.causation_id,
            cache=self.aggregates,
            metadata=request.trace,
            tracer=self.tracer,
        )
        if locked is not None:
            uow.locked_projections = locked
        if held_claims is not None:
            uow.held_claims = held_claims
            uow.waits_for_claims = False
        uow.preloaded = preloaded
        print_ = fingerprint(command) if key is not None else None
        if key is not None and print_ is not None and not looked_up:
            row = await conn.fetchrow(_LOOKUP_ONE, request.name, key, request.actor.id)
            if row is not None:
                return replay((row["result"], row["fingerprint"]), request, print_), True, uow
        result = await spec.handler(command, uow)
        if key is not None:
            await conn.execute(
                "INSERT INTO command_results (actor_id, command, idempotency_key, fingerprint, result)"
                " VALUES ($1, $2, $3, $4, $5)",
                request.actor.id,
                request.name,
                key,
                print_,
                result,
            )
        return result, False, uow

    async def dispatch(self, request: Request) -> Outcome:
        """Run one command in its own transaction; never raises for bad input or broken rules."""
        started = time.perf_counter()
        span = self._command_span(request, 1)
        if span is None:
            outcome = await self._dispatch(request)
        else:
            with tracing.within(span):
                outcome = await self._dispatch(request)
        self._done(request, outcome, time.perf_counter() - started, span)
        return outcome

    def _command_span(self, request: Request, batch: int) -> Any:
        span = tracing.start_command(self.tracer, request.name, request.trace, batch=batch)
        if span is not None:
            request.trace = tracing.carrier(span)
        return span

    def _done(self, request: Request, outcome: Outcome, seconds: float, span: Any) -> None:
        self.counts[request.name, outcome.status] += 1
        self.metrics.observe_command(request.name, outcome.status, seconds)
        tracing.end_command(span, outcome.status, outcome.error.code if outcome.error is not None else None)

    async def _dispatch(self, request: Request) -> Outcome:
        # Bound for this command's log lines only: a worker that runs the next command (or a
        # batch, which binds none) must not log under this one's correlation id.
        with structlog.contextvars.bound_contextvars(
            command=request.name, correlation_id=request.correlation_id, actor_id=request.actor.id
        ):
            return await self._dispatch_bound(request)

    async def _dispatch_bound(self, request: Request) -> Outcome:
        assert self.pool is not None, "bus not bound to a pool"
        try:
            spec, command = self._prepare(request)
        except ServiceError as exc:
            log.info("command_refused", status=exc.status, code=exc.code)
            return Outcome(False, error=exc)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                async with self.pool.acquire() as conn:
                    async with conn.transaction():
                        result, replayed, uow = await self._run_in(conn, request, spec, command)
                self.aggregates.put(uow.seen)
                outcome = Outcome(True, result, changes=uow.changes, replayed=replayed)
                await self._after(outcome)
                return outcome
            except (ConcurrencyConflict, *_RETRYABLE) as exc:
                # Another writer got there first (or PostgreSQL chose this transaction as a
                # deadlock victim): load again and decide again, after a short random pause so
                # a crowd of writers on one aggregate spreads out.
                if attempt == _CONFLICT_RETRIES - 1:
                    if isinstance(exc, ConcurrencyConflict):
                        return Outcome(False, error=exc)
                    # PostgreSQL kept giving the transaction up for others': nothing the
                    # command did, so it is not answered for it; its sender runs it again.
                    raise
                await asyncio.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
            except asyncpg.UniqueViolationError as exc:
                if exc.table_name == "command_results" or "command_results" in str(exc):
                    continue  # the same key committed concurrently: next loop returns its result
                raise
            except ServiceError as exc:
                return Outcome(False, error=exc)
        raise AssertionError("unreachable")

    async def dispatch_many(self, requests: list[Request]) -> list[Outcome]:
        """Run a batch in one transaction (group commit), so one commit serves them all;
        outcomes in the order of `requests` (see `_dispatch_many`)."""
        started = time.perf_counter()
        spans = [self._command_span(r, len(requests)) for r in requests]
        outcomes = await self._dispatch_many(requests)
        seconds = time.perf_counter() - started
        for request, outcome, span in zip(requests, outcomes, spans, strict=True):
            self._done(request, outcome, seconds, span)
        return outcomes

    async def _dispatch_many(self, requests: list[Request], *, waits_for_claims: bool = False) -> list[Outcome]:
        """Run a batch in one transaction (group commit), so one commit serves them all.

        Batched commands run in waves: their writes wait and are applied together, once for
        the wave, so a rejected one has written nothing. Other commands run each in a
        savepoint, after the wave before them is applied, so one rejection does not undo the
        others. A conflict with another transaction sends the commands concerned to run again
        alone; an error that breaks the transaction runs the whole batch again one by one.

        The claims the commands declare are taken ahead. A claim another transaction holds is
        not waited for: the commands that declare it are set aside, the others commit, and
        the ones set aside run next in a transaction of their own that waits for their claims
        (`waits_for_claims`), so they decide after the transaction holding them."""
        assert self.pool is not None, "bus not bound to a pool"
        outcomes: list[Outcome | None] = [None] * len(requests)
        prepared: list[tuple[int, CommandSpec, Command]] = []
        for i, request in enumerate(requests):
            try:
                spec, command = self._prepare(request)
                prepared.append((i, spec, command))
            except ServiceError as exc:
                outcomes[i] = Outcome(False, error=exc)
        if not prepared:
            return [o for o in outcomes if o is not None]
        try:
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    batch = _Batch(self, conn, requests, outcomes, waits_for_claims=waits_for_claims)
                    await batch.run(prepared)
        except (asyncpg.PostgresError, _BatchBroken) as exc:
            if is_outage(exc):
                raise  # the batch is handed back whole: nothing of it committed
            # A statement failed outside any savepoint (a handler's read in a wave): nothing of
            # the batch committed, so each command runs again in its own transaction.
            log.warning("batch_failed", error=str(exc), commands=len(prepared))
            return [await self._dispatch_guarded(r) for r in requests]
        for o in outcomes:
            if o is not None and o.ok:
                self.aggregates.put(o.seen)
        for o in outcomes:
            if o is not None and o.ok:
                await self._after(o)
        if batch.set_aside:
            later = await self._dispatch_many([requests[i] for i in batch.set_aside], waits_for_claims=True)
            for i, outcome in zip(batch.set_aside, later, strict=True):
                outcomes[i] = outcome
        for i in sorted(batch.retry_alone):
            outcomes[i] = await self._dispatch_guarded(requests[i])
        return [o for o in outcomes if o is not None]

    async def _dispatch_guarded(self, request: Request) -> Outcome:
        try:
            return await self._dispatch(request)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("command_failed", command=request.name)
            return Outcome(False, error=InternalError(f"{request.name} failed"))

    @staticmethod
    async def _stored_results(
        conn: asyncpg.Connection, requests: list[Request]
    ) -> dict[Scope, tuple[Result, str | None]]:
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

    async def _after(self, outcome: Outcome) -> None:
        if outcome.changes:
            for hook in self.after_commit:
                await hook(outcome.changes)

    def json_schemas(self) -> dict[str, Any]:
        return {name: spec.command.model_json_schema() for name, spec in sorted(self.specs.items())}


class _BatchBroken(Exception):
    """The batch's transaction cannot go on; its commands run again one by one."""


class _Batch:
    """One run of `CommandBus.dispatch_many` inside its open transaction."""

    def __init__(
        self,
        bus: CommandBus,
        conn: asyncpg.Connection,
        requests: list[Request],
        outcomes: list[Outcome | None],
        *,
        waits_for_claims: bool = False,
    ) -> None:
        self.bus = bus
        self.conn = conn
        self.requests = requests
        self.outcomes = outcomes
        self.waits_for_claims = waits_for_claims
        self.retry_alone: list[int] = []
        self.set_aside: list[int] = []  # their declared claims are held elsewhere: run next
        self.locked: dict[str, str] = {}  # projection locks held, with their schemas
        self.held: set[str] = set()  # claims held
        self.preloaded = Preloaded()
        self.written = False  # anything written in the transaction yet
        self.replays: dict[Scope, tuple[Result, str | None]] = {}
        self.prints: dict[int, str] = {}  # fingerprints of the keyed commands
        self.prepared: dict[int, tuple[CommandSpec, Command]] = {}
        self.wave = Wave()

    async def run(self, prepared: list[tuple[int, CommandSpec, Command]]) -> None:
        prepared = await self._claim_ahead(prepared)
        self.prepared = {i: (spec, command) for i, spec, command in prepared}
        self.replays = await self.bus._stored_results(self.conn, [self.requests[i] for i, _, _ in prepared])
        self.prints = {i: fingerprint(c) for i, _, c in prepared if self.requests[i].idempotency_key is not None}
        await self._preload(prepared)
        for i, spec, command in prepared:
            request = self.requests[i]
            if request.idempotency_key is not None:
                stored = self.replays.get(scope_of(request))
                if stored is not None:
                    try:
                        self.outcomes[i] = Outcome(True, replay(stored, request, self.prints[i]), replayed=True)
                    except ServiceError as exc:
                        self.outcomes[i] = Outcome(False, error=exc)
                    continue
            if spec.batched and await self._run_deferred(i, spec, command):
                continue
            await self._apply_wave()
            await self._run_at_once(i, spec, command)
        await self._apply_wave()

    async def _claim_ahead(
        self, prepared: list[tuple[int, CommandSpec, Command]]
    ) -> list[tuple[int, CommandSpec, Command]]:
        """Take the claims the commands declare, in one statement; returns the commands that
        run now. Claims another transaction holds are not waited for: their commands are set
        aside. With `waits_for_claims`, every claim is waited for instead; all waiting batches
        take their claims in one order, so they never deadlock. A claim a handler makes beyond
        the declared ones does not wait (`ClaimBusy`)."""
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
        self.set_aside = [i for i, _, _ in prepared if keys_of.get(i, set()) & busy]
        aside = set(self.set_aside)
        return [p for p in prepared if p[0] not in aside]

    async def _preload(self, prepared: list[tuple[int, CommandSpec, Command]]) -> None:
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

    async def _run_deferred(self, i: int, spec: CommandSpec, command: Command) -> bool:
        """Run a batched command with its writes kept for the wave. False: it reads its own
        writes, so it must run writing at once."""
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
                self.retry_alone.append(i)
                return True
            except ConcurrencyConflict as exc:
                # Raised by a read (a lock wait PostgreSQL broke): the transaction may be lost.
                raise _BatchBroken(str(exc)) from exc
            except ServiceError as exc:
                self.outcomes[i] = Outcome(False, error=exc)
                return True
            except asyncpg.PostgresError:
                raise  # the transaction may be lost: judged by the batch
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("command_failed", command=request.name)
                self.outcomes[i] = Outcome(False, error=InternalError(f"{request.name} failed"))
                return True
            self.wave.take(uow, i)
            if request.idempotency_key is not None:
                self.wave.results.append((*scope_of(request), self.prints[i], result))
                self.replays[scope_of(request)] = (result, self.prints[i])
            self.outcomes[i] = Outcome(True, result, seen=uow.seen)
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
                    result, replayed, uow = await self.bus._run_in(
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
            self.preloaded.wrote({e.envelope.stream_id for e in uow.recorded}, uow.claimed)
            self.outcomes[i] = Outcome(True, result, changes=uow.changes, replayed=replayed, seen=uow.seen)
            if request.idempotency_key is not None:
                # A later command of this batch with the same scope replays it.
                self.replays[scope_of(request)] = (result, self.prints[i])
        except (ConcurrencyConflict, asyncpg.UniqueViolationError, *_RETRYABLE):
            self.retry_alone.append(i)
        except ServiceError as exc:
            self.outcomes[i] = Outcome(False, error=exc)
        except Exception as exc:
            if is_outage(exc):
                raise  # not the command's fault: the whole batch waits
            # A fault in one handler must not fail the others in the batch.
            log.exception("command_failed", command=request.name)
            self.outcomes[i] = Outcome(False, error=InternalError(f"{request.name} failed"))

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
                raise _BatchBroken(f"the first wave failed: {exc!r}") from exc
            if isinstance(exc, (ConcurrencyConflict, asyncpg.UniqueViolationError)) or is_contention(exc):
                self._forget(wave)
                self.retry_alone.extend(wave.members)
                return
            log.warning("wave_failed", commands=len(wave.members), exc_info=True)
            self._forget(wave)
            for i in wave.members:
                await self._run_at_once(i, *self.prepared[i])
            return
        self.preloaded.wrote(wave.streams, wave.keys)
        first = self.outcomes[wave.members[0]]
        assert first is not None
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
        for i in wave.members:
            self.outcomes[i] = None
        for actor_id, name, key, _, _ in wave.results:
            self.replays.pop((actor_id, name, key), None)


class InternalError(ServiceError):
    status = 500
    code = "internal_error"


class GroupCommit:
    """Coalesces concurrent commands into shared transactions (one commit, one fsync, for
    many commands), each still in its own savepoint with its own outcome.

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


def invalid(field_name: str, message: str, code: str = "invalid") -> InvalidInput:
    return InvalidInput([{"field": field_name, "code": code, "message": message}])
