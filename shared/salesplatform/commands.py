"""The command bus: one handler per command, whatever the transport.

HTTP, NATS request/reply and JetStream ingest all call `CommandBus.dispatch` (one command in
a transaction of its own) or `CommandBus.dispatch_many` (a batch in one transaction, each
command with an outcome of its own: see `salesplatform.batching`), so validation,
permissions, idempotency and the error shapes are the same everywhere.

What a command, a request and an outcome are lives in `salesplatform.command` (no database
driver: the domain packages import it); the names are imported here too, for the callers of
the bus.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial, update_wrapper
from typing import Any, NamedTuple

import asyncpg
import orjson
import structlog
from pydantic import ValidationError

from salesplatform import tracing
from salesplatform.aggregate import AggregateCache
from salesplatform.batching import RETRYABLE, GroupCommit, run_batch
from salesplatform.clock import Clock
from salesplatform.command import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    Command,
    IdempotencyKeyRefused,
    InternalError,
    Outcome,
    Request,
    Result,
    Scope,
    check_idempotency_key,
    fingerprint,
    replay,
    scope_of,
)
from salesplatform.errors import (
    ConcurrencyConflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    ServiceError,
    from_validation_error,
)
from salesplatform.events import EventRegistry, Role
from salesplatform.ids import uuid4
from salesplatform.metrics import DETACHED, ServiceMetrics
from salesplatform.outages import is_transient
from salesplatform.projections import Change, Projection
from salesplatform.uow import Preloaded, UnitOfWork

__all__ = [
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "WITHHELD",
    "Command",
    "CommandBus",
    "CommandSpec",
    "GroupCommit",
    "IdempotencyKeyRefused",
    "InternalError",
    "Outcome",
    "Request",
    "Result",
    "Scope",
    "bound",
    "check_idempotency_key",
    "fingerprint",
    "forget_command_results",
    "invalid",
    "replay",
    "scope_of",
    "withholding_guard",
]

log = structlog.get_logger(__name__)

Handler = Callable[[Any, UnitOfWork], Awaitable[Result]]
Preload = Callable[[UnitOfWork, list[tuple[Request, Any]]], Awaitable[None]]


def bound(handler: Callable[..., Awaitable[Result]], **settings: Any) -> Handler:
    """The handler with its settings given at registration (the company's time zone, a
    service's rules): `bus.command(C)(bound(handler, timezone=tz))`. It keeps the handler's
    name and docstring, which is the command's summary."""
    return update_wrapper(partial(handler, **settings), handler)


@dataclass(frozen=True)
class CommandSpec:
    command: type[Command]
    handler: Handler
    roles: frozenset[Role] | None
    summary: str
    # In a batch, its writes join the others' in a wave (see `CommandBus.command` for what the
    # handler promises, and `salesplatform.batching`).
    batched: bool = False
    # The keys the handler will claim, known from the command alone: a batch takes them all
    # in one statement before it runs its commands.
    claims: Callable[[Any], Iterable[str]] | None = None
    # Reads ahead for a batch's commands of this kind: (unit of work, [(request, command)]).
    preload: Preload | None = None

    @property
    def internal(self) -> bool:
        """Only the service itself sends it (its reactors and timers): it is no part of the
        published contract (routes, command schemas, AsyncAPI), and no token may send it."""
        return self.roles == frozenset({Role.service})


class Ran(NamedTuple):
    """A command run by `CommandBus.run_in`, not yet committed."""

    result: Result
    replayed: bool  # the result stored for its Idempotency-Key; the handler did not run
    uow: UnitOfWork


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


# How often a command alone is decided again when another writer got there first.
_CONFLICT_RETRIES = 12


class CommandBus:
    """The commands of a service and their handlers (`command`), run by `dispatch` (one) or
    `dispatch_many` (a batch); bound to the service's pool by the runtime."""

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

    def prepare(self, request: Request) -> tuple[CommandSpec, Command]:
        """The handler of the request and its validated command; raises the `ServiceError`
        that refuses it (unknown command, role not allowed, bad key, invalid body)."""
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

    async def run_in(
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
    ) -> Ran:
        """Run one command inside the caller's open transaction (or savepoint): replay the
        result stored for its Idempotency-Key, or run its handler writing at once and store
        the result under the key. The caller commits, or rolls back on an exception.

        `looked_up`: the caller already checked the idempotency key (a batch does it once).
        `locked`, `held_claims`, `preloaded`: the batch's projection locks, claims and reads
        ahead, shared with this command; a claim held elsewhere is then not waited for.
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
                return Ran(replay((row["result"], row["fingerprint"]), request, print_), True, uow)
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
        return Ran(result, False, uow)

    async def dispatch(self, request: Request) -> Outcome:
        """Run one command in a transaction of its own (again, up to `_CONFLICT_RETRIES` times,
        when another writer got there first). Bad input and broken rules are answered in the
        `Outcome`, never raised; a fault below the rules (an outage, a handler's bug, a
        transaction PostgreSQL kept giving up) is raised to the caller."""
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
            spec, command = self.prepare(request)
        except ServiceError as exc:
            log.info("command_refused", status=exc.status, code=exc.code)
            return Outcome(False, error=exc)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                async with self.pool.acquire() as conn:
                    async with conn.transaction():
                        ran = await self.run_in(conn, request, spec, command)
                self.aggregates.put(ran.uow.seen)
                outcome = Outcome(True, ran.result, changes=ran.uow.changes, replayed=ran.replayed)
                await self.announce(outcome)
                return outcome
            except (ConcurrencyConflict, *RETRYABLE) as exc:
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
        """Run a batch in one shared transaction (group commit), so one commit serves most of
        them; the commands that met another transaction's writes or claims run after it, in
        transactions of their own. Outcomes in the order of `requests`; never raises for bad
        input or broken rules. How a batch decides each command as if it ran alone:
        `salesplatform.batching`."""
        started = time.perf_counter()
        spans = [self._command_span(r, len(requests)) for r in requests]
        outcomes = await run_batch(self, requests)
        seconds = time.perf_counter() - started
        for request, outcome, span in zip(requests, outcomes, spans, strict=True):
            self._done(request, outcome, seconds, span)
        return outcomes

    async def dispatch_guarded(self, request: Request) -> Outcome:
        """`dispatch` without the metrics and span (the batch's are kept), for a command of a
        batch that runs again alone: a handler's bug is its 500, not the batch's."""
        try:
            return await self._dispatch(request)
        except Exception as exc:
            if is_transient(exc):
                raise
            log.exception("command_failed", command=request.name)
            return Outcome(False, error=InternalError(f"{request.name} failed"))

    async def announce(self, outcome: Outcome) -> None:
        """Hand a committed outcome's projection changes to the `after_commit` hooks."""
        if outcome.changes:
            for hook in self.after_commit:
                await hook(outcome.changes)

    def published(self) -> dict[str, CommandSpec]:
        """The commands others may send: every one but those only the service sends itself."""
        return {name: spec for name, spec in self.specs.items() if not spec.internal}

    def json_schemas(self) -> dict[str, Any]:
        return {name: spec.command.model_json_schema() for name, spec in sorted(self.published().items())}


def invalid(field_name: str, message: str, code: str = "invalid") -> InvalidInput:
    return InvalidInput([{"field": field_name, "code": code, "message": message}])
