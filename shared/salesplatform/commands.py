"""Commands and the bus that runs them: one handler per command, whatever the transport.

HTTP, NATS request/reply and JetStream ingest all call `CommandBus.dispatch` (or
`dispatch_many` for a batch in one transaction), so validation, permissions, idempotency and
the error shapes are the same everywhere.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

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
from salesplatform.projections import Change, Projection
from salesplatform.uow import UnitOfWork

log = structlog.get_logger(__name__)


class Command(BaseModel):
    """Base of every command: imperative name, frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: ClassVar[str]


Result = dict[str, Any]
Handler = Callable[[Any, UnitOfWork], Awaitable[Result]]


@dataclass(frozen=True)
class CommandSpec:
    command: type[Command]
    handler: Handler
    roles: frozenset[Role] | None
    summary: str


@dataclass
class Request:
    """One command as it arrived: raw payload plus who sent it and why."""

    name: str
    payload: Any
    actor: Actor
    idempotency_key: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


@dataclass
class Outcome:
    ok: bool
    result: Result | None = None
    error: ServiceError | None = None
    changes: list[tuple[str, list[Change]]] = field(default_factory=list)
    replayed: bool = False

    @property
    def status(self) -> int:
        return 200 if self.ok else self.error.status  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "result": self.result}
        return {"ok": False, "status": self.status, "error": self.error.to_dict()}  # type: ignore[union-attr]


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
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.inline_projections = list(inline_projections)
        self.specs: dict[str, CommandSpec] = {}
        self.pool: asyncpg.Pool | None = None
        self.after_commit: list[Callable[[list[tuple[str, list[Change]]]], Awaitable[None]]] = []

    def command(
        self, cls: type[Command], *, roles: set[Role] | None = None, summary: str = ""
    ) -> Callable[[Handler], Handler]:
        """Register the handler of `cls`; `roles` limits who may send it at all (the handler
        still checks finer rules like territory)."""

        def decorate(fn: Handler) -> Handler:
            if cls.name in self.specs:
                raise ValueError(f"command {cls.name} registered twice")
            self.specs[cls.name] = CommandSpec(
                cls, fn, frozenset(roles) if roles else None, summary or (fn.__doc__ or "").strip()
            )
            return fn

        return decorate

    def _prepare(self, request: Request) -> tuple[CommandSpec, Command]:
        spec = self.specs.get(request.name)
        if spec is None:
            raise NotFound(f"unknown command {request.name}", code="unknown_command")
        if spec.roles is not None and request.actor.role not in spec.roles:
            raise PermissionDenied(
                f"role {request.actor.role} may not {request.name}", code="role_not_allowed"
            )
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
        looked_up: bool = False,
        notify: bool = True,
    ) -> tuple[Result, bool, UnitOfWork]:
        """Run one command inside the caller's open transaction. Returns (result, replayed).

        `looked_up`: the caller already checked the idempotency key (a batch does it once).
        """
        key = request.idempotency_key
        uow = UnitOfWork(
            conn,
            self.registry,
            self.clock,
            request.actor,
            self.inline_projections,
            correlation_id=request.correlation_id or str(uuid.uuid4()),
            causation_id=request.causation_id,
        )
        if locked is not None:
            uow.locked_projections = locked
        if key is not None and not looked_up:
            stored = await conn.fetchval(
                "SELECT result FROM command_results WHERE command = $1 AND idempotency_key = $2",
                request.name, key,
            )
            if stored is not None:
                return stored, True, uow
        result = await spec.handler(command, uow)
        if key is not None:
            await conn.execute(
                "INSERT INTO command_results (command, idempotency_key, result) VALUES ($1, $2, $3)",
                request.name, key, result,
            )
        if notify:
            await uow.finish()
        return result, False, uow

    async def dispatch(self, request: Request) -> Outcome:
        """Run one command in its own transaction; never raises for bad input or broken rules."""
        assert self.pool is not None, "bus not bound to a pool"
        structlog.contextvars.bind_contextvars(
            command=request.name, correlation_id=request.correlation_id, actor_id=request.actor.id
        )
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
                    return Outcome(False, error=ConcurrencyConflict(f"{request.name} kept conflicting: {exc}"))
                await asyncio.sleep(random.uniform(0, 0.002 * 2**min(attempt, 6)))
            except asyncpg.UniqueViolationError as exc:
                if exc.table_name == "command_results" or "command_results" in str(exc):
                    continue  # the same key committed concurrently: next loop returns its result
                raise
            except ServiceError as exc:
                return Outcome(False, error=exc)
        raise AssertionError("unreachable")

    async def dispatch_many(self, requests: list[Request]) -> list[Outcome]:
        """Run a batch in one transaction (group commit), each command in its own savepoint so
        one rejection does not undo the others. Falls back to one by one on a conflict."""
        assert self.pool is not None, "bus not bound to a pool"
        outcomes: list[Outcome | None] = [None] * len(requests)
        prepared: list[tuple[int, CommandSpec, Command]] = []
        for i, request in enumerate(requests):
            try:
                spec, command = self._prepare(request)
                prepared.append((i, spec, command))
            except ServiceError as exc:
                outcomes[i] = Outcome(False, error=exc)
        retry_alone: list[int] = []
        if prepared:
            async with self.pool.acquire() as conn:
                async with conn.transaction():
                    replays = await self._stored_results(conn, [requests[i] for i, _, _ in prepared])
                    locked: dict[str, str] = {}
                    appended = False
                    for i, spec, command in prepared:
                        request = requests[i]
                        key = (request.name, request.idempotency_key)
                        stored = replays.get(key) if request.idempotency_key is not None else None
                        if stored is not None:
                            outcomes[i] = Outcome(True, stored, replayed=True)
                            continue
                        try:
                            async with conn.transaction():
                                result, replayed, uow = await self._run_in(
                                    conn, request, spec, command, locked=locked, looked_up=True, notify=False
                                )
                            appended = appended or bool(uow.recorded)
                            outcomes[i] = Outcome(True, result, changes=uow.changes, replayed=replayed)
                            if request.idempotency_key is not None:
                                # A later command of this batch with the same key replays it.
                                replays[key] = result
                        except (ConcurrencyConflict, asyncpg.UniqueViolationError, *_RETRYABLE):
                            retry_alone.append(i)
                        except ServiceError as exc:
                            outcomes[i] = Outcome(False, error=exc)
                        except (asyncpg.PostgresConnectionError, ConnectionError, OSError):
                            raise
                        except Exception:
                            # A fault in one handler must not fail the others in the batch.
                            log.exception("command_failed", command=requests[i].name)
                            outcomes[i] = Outcome(False, error=InternalError(f"{requests[i].name} failed"))
                    if appended:
                        await conn.execute("SELECT pg_notify('events', '')")
            for o in outcomes:
                if o is not None and o.ok:
                    await self._after(o)
        for i in retry_alone:
            outcomes[i] = await self.dispatch(requests[i])
        return [o for o in outcomes if o is not None]

    @staticmethod
    async def _stored_results(
        conn: asyncpg.Connection, requests: list[Request]
    ) -> dict[tuple[str, str | None], Result]:
        """Results of the batch's keys that were handled before, in one query. (Two commands of
        one batch with the same key: the first runs, the second replays its result.)"""
        keyed = [(r.name, r.idempotency_key) for r in requests if r.idempotency_key is not None]
        if not keyed:
            return {}
        rows = await conn.fetch(
            "SELECT c.command, c.idempotency_key, c.result FROM command_results c"
            " JOIN unnest($1::text[], $2::text[]) AS k(command, key)"
            "   ON c.command = k.command AND c.idempotency_key = k.key",
            [n for n, _ in keyed], [k for _, k in keyed],
        )
        return {(r["command"], r["idempotency_key"]): r["result"] for r in rows}

    async def _after(self, outcome: Outcome) -> None:
        if outcome.changes:
            for hook in self.after_commit:
                await hook(outcome.changes)

    def json_schemas(self) -> dict[str, Any]:
        return {name: spec.command.model_json_schema() for name, spec in sorted(self.specs.items())}


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
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def close(self) -> None:
        while not self._queue.empty():
            await asyncio.sleep(0.01)
        for w in self._workers:
            w.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)


def invalid(field_name: str, message: str, code: str = "invalid") -> InvalidInput:
    return InvalidInput([{"field": field_name, "code": code, "message": message}])
