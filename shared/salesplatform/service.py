"""The composition root every service uses: one definition, one runtime, one HTTP app.

A service describes itself in a `ServiceDefinition` (its events, commands, projections,
reactors, what it consumes, its routes and timers); `Runtime` opens the pool and the NATS
connection, migrates, creates streams and runs the relay, consumers, projection runner,
reactors and timers; `http_app` serves
the commands and queries. Nothing is opened at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import asyncpg
import orjson
import structlog
import uvicorn
from fastapi import APIRouter, Depends, FastAPI
from fastapi import Request as HttpRequest
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from salesplatform import metrics, tracing
from salesplatform.auth import TokenVerifier, actor_from_header, key_source
from salesplatform.clock import Clock, SystemClock
from salesplatform.commands import (
    IDEMPOTENCY_KEY_MAX_LENGTH,
    CommandBus,
    GroupCommit,
    InternalError,
    Request,
    forget_command_results,
    withholding_guard,
)
from salesplatform.errors import InvalidInput, PermissionDenied, ServiceError, Unavailable
from salesplatform.events import Actor, EventRegistry, Role
from salesplatform.ids import uuid4
from salesplatform.inputs import storable_parameters
from salesplatform.listening import Listener
from salesplatform.logging import configure_logging
from salesplatform.messaging import (
    CommandGuard,
    CommandResponder,
    DeadLetters,
    FirstFailures,
    ForeignEventConsumer,
    IngestConsumer,
    JetStreamPublisher,
    OutboxRelay,
    Topology,
    connect,
    ensure_streams,
)
from salesplatform.migrations import migrate, wait_until_migrated
from salesplatform.nats_layout import api_prefix
from salesplatform.openapi import openapi_document, serve_docs
from salesplatform.outages import OutageLog, is_outage, is_transient
from salesplatform.projections import (
    Change,
    Projection,
    ProjectionRunner,
    RebuildRunning,
    ensure_projection,
    rebuild,
    rebuild_states,
    record_rebuild_failure,
)
from salesplatform.reactors import Reactor, ReactorRunner
from salesplatform.settings import ServiceSettings
from salesplatform.store import RecordedEvent, init_connection
from salesplatform.timers import Timer, TimerRun, log_run

log = structlog.get_logger(__name__)

# How long a stopping service takes at most (SIGTERM): HTTP requests in flight may finish for
# HTTP_DRAIN_SECONDS, then the loops end their batch within LOOP_DRAIN_SECONDS, then what was
# published is flushed within FLUSH_SECONDS. A deployment's grace period must cover the sum.
HTTP_DRAIN_SECONDS = 10
LOOP_DRAIN_SECONDS = 5.0
FLUSH_SECONDS = 2
# How soon a timer that met an outage runs again: doubling from the first, up to the most.
_TIMER_BACKOFF_FIRST = 0.5
_TIMER_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class Consumes:
    """Another service's events this service keeps a copy of."""

    service: str
    event_types: list[str] | None = None


@dataclass
class ServiceDefinition:
    name: str
    registry: EventRegistry
    build_bus: Callable[[EventRegistry, Clock], CommandBus]
    projections: list[Projection] = field(default_factory=list)
    # Events turned into the service's own commands, run with the runtime's bus
    # (salesplatform.reactors).
    reactors: list[Reactor] = field(default_factory=list)
    consumes: list[Consumes] = field(default_factory=list)
    migrations: Path | None = None
    # The service's HTTP routes: module-level routers whose endpoints take the runtime through
    # the `http_runtime` dependency (or, older style, functions of the runtime that build one).
    routers: list[APIRouter | Callable[[Runtime], APIRouter]] = field(default_factory=list)
    # Periodic jobs (SLA timers, end of business day), run as the service (salesplatform.timers).
    timers: list[Timer] = field(default_factory=list)
    # Called after projection changes commit (reporting publishes reporting.changed.*).
    on_changes: Callable[[Runtime, str, list[Change]], Awaitable[None]] | None = None
    title: str = ""
    # The service's business rules (its policy object, built from its settings), for routes to
    # read per request as `runtime.definition.rules`.
    rules: Any = None
    description: str = ""
    # Further subjects it publishes, for the AsyncAPI document: (subject suffix, model, text).
    extra_publishers: list[tuple[str, type, str]] = field(default_factory=list)
    # Called once NATS is connected, before any loop starts (opening an object store bucket).
    on_start: Callable[[Runtime], Awaitable[None]] | None = None
    # What a dead-lettered command keeps of its payload. By default the fields its command
    # declares personal (`Command.personal_fields`) are left out; a service holding keys of
    # the people concerned may seal them instead.
    dead_letter_guard: Callable[[Runtime], CommandGuard] | None = None
    # How GET /admin/dead-letters shows a payload the guard sealed (default: as stored).
    open_dead_letter: Callable[[Runtime, bytes], Awaitable[Any]] | None = None


class Runtime:
    """Everything a running service holds. Use as `async with Runtime(defn, settings) as rt`."""

    def __init__(
        self,
        definition: ServiceDefinition,
        settings: ServiceSettings,
        *,
        clock: Clock | None = None,
        run_timers: bool = True,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.definition = definition
        self.settings = settings
        self.clock = clock or SystemClock()
        self.run_timers = run_timers
        self.topology = Topology(definition.name, settings.stream_prefix)
        self.registry = definition.registry
        self.bus = definition.build_bus(self.registry, self.clock)
        self.metrics = metrics.ServiceMetrics.registered(self)
        # Spans go where the settings say (`OTEL_TRACES_EXPORTER`), or to the provider given.
        self.tracer_provider = tracer_provider or tracing.provider_for(
            definition.name, settings.traces_exporter, version=metrics.build_version(definition.name)
        )
        self.tracer = tracing.tracer_of(self.tracer_provider)
        self.bus.metrics = self.metrics
        self.bus.tracer = self.tracer
        self.tokens = TokenVerifier(
            key_source(
                jwks=settings.jwks,
                jwks_file=settings.jwks_file,
                jwks_url=settings.jwks_url,
                refresh_seconds=settings.jwks_refresh_seconds,
            )
        )
        self.pool: asyncpg.Pool
        self.nc: NATS
        self.js: JetStreamContext
        self.relay: OutboxRelay
        self.runner: ProjectionRunner
        self.reactors: ReactorRunner
        self.consumers: list[ForeignEventConsumer] = []
        self.ingest: IngestConsumer
        self.responder: CommandResponder
        self.group: GroupCommit
        self.dead_letters: DeadLetters
        self._tasks: list[asyncio.Task[Any]] = []
        # Outages the service's loops meet, each logged once when it begins and once when it ends.
        self.outages = OutageLog(definition.name)
        self.listener: Listener | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        s = self.settings
        self.pool = await asyncpg.create_pool(
            s.database_url, min_size=s.pool_min, max_size=s.pool_max, init=init_connection
        )
        async with self.pool.acquire() as conn:
            if s.migrate_at_start:
                await migrate(conn, self.definition.migrations)
            else:
                await wait_until_migrated(conn, self.definition.migrations, timeout=s.migration_wait_seconds)
            due = []
            for p in self.definition.projections + self.bus.inline_projections:
                if await ensure_projection(conn, p):
                    due.append(p)
        self.bus.pool = self.pool
        await self.tokens.start()
        self.nc = await connect(
            s.nats_url, f"{self.definition.name}-service", user=s.nats_user, password=s.nats_password
        )
        self.js = self.nc.jetstream()
        await ensure_streams(
            self.js,
            self.topology,
            dead_letter_days=s.dead_letter_days,
            result_days=s.result_days,
            replicas=s.stream_replicas,
        )
        guard = self.definition.dead_letter_guard
        self.dead_letters = DeadLetters(
            self.js, self.topology, guard=guard(self) if guard is not None else withholding_guard(self.bus)
        )
        if self.definition.on_start is not None:
            await self.definition.on_start(self)

        self.relay = OutboxRelay(
            self.pool,
            JetStreamPublisher(self.nc),
            self.topology,
            batch_size=s.relay_batch,
            poll_interval=s.poll_interval,
            outages=self.outages,
        )
        self.runner = ProjectionRunner(
            self.pool,
            self.definition.projections,
            poll_interval=s.poll_interval,
            on_changes=self._on_changes,
            on_failure=self._on_projection_failure,
            outages=self.outages,
        )
        self.reactors = ReactorRunner(
            self.pool,
            self.bus,
            self.definition.reactors,
            self.definition.name,
            poll_interval=s.poll_interval,
            outages=self.outages,
        )
        await self.reactors.ensure()
        self.bus.after_commit.append(self._after_commit)
        self.relay.metrics = self.runner.metrics = self.metrics
        self.relay.tracer = self.runner.tracer = self.tracer
        for wanted in self.definition.consumes:
            self.consumers.append(
                ForeignEventConsumer(
                    self.pool,
                    # The producer's consumer API, as this service's account imports it.
                    self.nc.jetstream(prefix=api_prefix(wanted.service)),
                    self.dead_letters,
                    source=self.topology.of(wanted.service),
                    consumer_service=self.definition.name,
                    event_types=wanted.event_types,
                    batch_size=s.consumer_batch,
                    max_deliveries=s.max_deliveries,
                    on_stored=lambda _stored: self.runner.wake(),
                    outages=self.outages,
                )
            )
        # Ingest loops share the durable consumer (`ingest_workers`, one by default).
        self.ingest_loops = [
            IngestConsumer(
                self.bus,
                self.nc,
                self.js,
                self.dead_letters,
                self.topology,
                self.tokens,
                batch_size=s.ingest_batch,
                max_deliveries=s.max_deliveries,
                max_queue_seconds=s.ingest_max_queue_hours * 3600,
                outages=self.outages,
            )
            for _ in range(max(1, s.ingest_workers))
        ]
        first_failures = FirstFailures(self.pool)
        for loop in [*self.consumers, *self.ingest_loops]:
            loop.metrics = self.metrics
            loop.tracer = self.tracer
            loop.first_failures = first_failures
        self.ingest = self.ingest_loops[0]
        self.group = GroupCommit(self.bus, workers=max(1, min(s.command_workers, s.pool_max - 1)))
        self.responder = CommandResponder(self.group.submit, self.nc, self.topology, self.tokens)
        self.responder.tracer = self.tracer
        await self.responder.start()

        self.listener = Listener(s.database_url, "events", self._on_notify, outages=self.outages)
        await self.listener.open()

        self._spawn("listener", self.listener.run())
        self._spawn("relay", self.relay.run())
        self._spawn("projections", self.runner.run())
        if self.definition.reactors:
            self._spawn("reactors", self.reactors.run())
        for i, loop in enumerate(self.ingest_loops):
            self._spawn(f"ingest:{i}", loop.run())
        for c in self.consumers:
            self._spawn(c.durable, c.run())
        if self.run_timers:
            for timer in self.definition.timers:
                self._spawn(f"timer:{timer.name}", self._every(timer))
        self._spawn("timer:idempotency_retention", self._every(Timer("idempotency_retention", 3600.0, _forget_results)))
        for p in due:
            self._spawn(f"rebuild:{p.name}", self.rebuild(p.name))
        # Everything built at start (modules, models, pools) lives as long as the process:
        # keeping it out of the collector's generations shortens full collections, which
        # otherwise show up as pauses in the tail of request latency.
        gc.collect()
        gc.freeze()
        # Requests allocate many short-lived objects; collecting the young generation less
        # often costs little memory and fewer pauses.
        gc.set_threshold(50_000, 20, 50)
        log.info("service_started", nats=s.nats_url, topology=self.topology.service)

    async def stop(self) -> None:
        """Finish in-flight work, then close: stop taking new work, let loops end their batch."""
        await self.responder.stop()
        await self.group.close()
        for c in self.consumers:
            c.stop()
        for loop in self.ingest_loops:
            loop.stop()
        self.relay.stop()
        self.runner.stop()
        self.reactors.stop()
        if self.listener is not None:
            self.listener.stop()
        # Loops end after the batch they are in (a consumer's fetch waits at most a second);
        # timers and anything still running after the grace period are cancelled, which rolls
        # back an open transaction and leaves its messages unacked for redelivery.
        for task in self._tasks:
            if task.get_name().startswith("timer:"):
                task.cancel()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=LOOP_DRAIN_SECONDS)
            for task in pending:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.relay_flush()
        if self.listener is not None:
            await self.listener.close()
        # Every loop has finished its batch and the responder has drained its subscription, so
        # what is left is to flush what was published and close.
        with contextlib.suppress(Exception):
            await self.nc.flush(timeout=FLUSH_SECONDS)
        with contextlib.suppress(Exception):
            await self.nc.close()
        await self.pool.close()
        await self.tokens.stop()
        if self.tracer_provider is not None:
            # Spans still batched are exported before the process ends.
            self.tracer_provider.shutdown()
        log.info("service_stopped")

    async def relay_flush(self) -> None:
        """Publish what is in the outbox now (used at shutdown and by tests)."""
        async with self.pool.acquire() as conn:
            while await self.relay.publish_pending(conn) == self.relay.batch_size:
                pass

    def spawn(self, name: str, coro: Awaitable[Any]) -> None:
        """Run background work that the service's stop cancels (a rebuild, a long import)."""
        self._spawn(name, coro)

    def _spawn(self, name: str, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.create_task(coro, name=name)  # type: ignore[arg-type]
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    @staticmethod
    def _task_done(task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background_task_failed", task=task.get_name(), error=repr(task.exception()))

    def _on_notify(self, *_: object) -> None:
        self.relay.wake()
        self.runner.wake()
        self.reactors.wake()

    async def _every(self, timer: Timer) -> None:
        """Run the timer's job every period (and as each business day begins, if it says so);
        what a run did is logged and counted. A run that met an outage is tried again sooner,
        after a pause that doubles while the outage lasts (never longer than its interval)."""
        name, seconds = timer.name, timer.every
        place = f"timer:{name}"
        backoff = _TIMER_BACKOFF_FIRST
        while True:
            pause = seconds
            try:
                run = await timer.job(self)
                log_run(name, run)
                self.metrics.count_timer_run(name, run.counts())
                self.outages.recovered(place)
                backoff = _TIMER_BACKOFF_FIRST
                pause = timer.pause_after(self.clock.now(), self.settings.timezone)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_transient(exc):
                    if is_outage(exc):
                        self.outages.failed(place, exc)
                    else:
                        log.info("timer_contended", timer=name, error=repr(exc))
                    pause = min(backoff, seconds)
                    backoff = min(backoff * 2, _TIMER_BACKOFF_MAX)
                else:
                    log.exception("timer_failed", timer=name)
            await asyncio.sleep(pause)

    async def _after_commit(self, changes: list[tuple[str, list[Change]]]) -> None:
        for name, keys in changes:
            await self._on_changes(name, keys)

    async def _on_changes(self, name: str, changes: list[Change]) -> None:
        if self.definition.on_changes is not None:
            await self.definition.on_changes(self, name, changes)

    async def _on_projection_failure(self, name: str, event: RecordedEvent, error: str) -> None:
        await self.dead_letters.send(
            "projection_failed",
            event.envelope.to_json(),
            error=error,
            headers={"Projection": name, "Event-Id": str(event.envelope.event_id)},
            source=f"projection:{name}",
            dedup_id=f"dlq-projection-{name}-{event.envelope.event_id}",
        )

    # -- operations ------------------------------------------------------------------------

    def projection(self, name: str) -> Projection:
        for p in self.definition.projections + self.bus.inline_projections:
            if p.name == name:
                return p
        raise LookupError(name)

    async def rebuild(self, name: str) -> int:
        """Rebuild one projection from the log while the current one keeps serving. Its progress
        and outcome are kept in the database (`projection_generations`), where any replica reads
        them."""
        projection = self.projection(name)
        try:
            return (await rebuild(self.pool, [projection], on_failure=self._on_projection_failure))[name]
        except RebuildRunning:
            raise  # the generation being built is the other rebuild's, and it goes on
        except asyncio.CancelledError:
            # The service is stopping: say so, or the generation would read as running.
            with contextlib.suppress(Exception):
                await record_rebuild_failure(self.pool, name, "stopped with the service")
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):
                await record_rebuild_failure(self.pool, name, repr(exc))
            raise

    async def ready(self) -> dict[str, bool]:
        db = False
        with contextlib.suppress(Exception):
            async with self.pool.acquire() as conn:
                db = await conn.fetchval("SELECT true")
        return {"database": bool(db), "nats": self.nc.is_connected, "keys": self.tokens.ready}

    async def run_command(self, name: str, payload: Any, actor: Actor, **kw: Any) -> Any:
        """Run a command as a given actor (timers and tests)."""
        return await self.bus.dispatch(Request(name=name, payload=payload, actor=actor, **kw))


async def _forget_results(runtime: Runtime) -> TimerRun:
    """The idempotency retention: results older than it are deleted (hourly)."""
    async with runtime.pool.acquire() as conn:
        forgotten = await forget_command_results(conn, runtime.settings.idempotency_retention_hours)
    if forgotten:
        log.info("command_results_forgotten", count=forgotten)
    return TimerRun(facts={"forgotten": forgotten})


# -- HTTP -----------------------------------------------------------------------------------


def error_response(exc: ServiceError) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


def http_runtime(request: HttpRequest) -> Runtime:
    """FastAPI dependency: the service's runtime (its pool, bus and settings), read per request,
    so a module-level route never holds a pool that did not exist when the routes were built."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def http_actor(request: HttpRequest) -> Actor:
    """FastAPI dependency: the actor named by the bearer token."""
    runtime: Runtime = request.app.state.runtime
    return actor_from_header(request.headers.get("authorization"), runtime.tokens)


def operator_actor(request: HttpRequest) -> Actor:
    """FastAPI dependency of the operations endpoints (`/admin/*`): an operator's token only;
    business roles, managers included, have no operations rights."""
    actor = http_actor(request)
    if actor.role is not Role.operator:
        raise PermissionDenied("operations are for operators", code="operator_only")
    return actor


async def _service_error(_: HttpRequest, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc)


async def _validation_error(_: HttpRequest, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "code": e.get("type"), "message": e.get("msg")}
        for e in exc.errors()
    ]
    return error_response(InvalidInput(details))


# Starlette's own refusals (no such path, a method the path does not take) in the one body.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


async def _http_error(_: HttpRequest, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error = ServiceError(str(exc.detail), code=_HTTP_CODES.get(exc.status_code, "bad_request"))
    return JSONResponse({"error": error.to_dict()}, status_code=exc.status_code, headers=exc.headers)


async def _internal_error(request: HttpRequest, exc: Exception) -> JSONResponse:
    """A fault in a query: 500 in the one error body (the gateway logs the traceback); 503 if
    what the service depends on is away, which passes."""
    if is_transient(exc):
        return error_response(Unavailable(f"{request.method} {request.url.path} cannot be answered now: try again"))
    return error_response(InternalError(f"{request.method} {request.url.path} failed"))


class Readiness(BaseModel):
    status: Literal["ready"]
    checks: dict[str, bool] = Field(description="each dependency: reachable or not")


def http_app(runtime: Runtime, *, lifespan: Any = None) -> CommandGateway:
    defn = runtime.definition
    app = FastAPI(
        title=defn.title or f"{defn.name} service",
        description=defn.description,
        version="1",
        lifespan=lifespan,
        # Every route's path and query parameters hold text the service can store.
        dependencies=[Depends(storable_parameters)],
        # /docs is served below with Swagger UI's own files, not from the internet.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.contract = {}
    app.exception_handler(ServiceError)(_service_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(Exception)(_internal_error)
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    serve_docs(app)

    @app.get("/health/live", tags=["health"])
    async def live() -> dict[str, str]:
        return {"status": "live"}

    @app.get("/health/ready", tags=["health"], responses={200: {"model": Readiness}})
    async def ready() -> JSONResponse:
        """200 when the database and NATS answer; 503 in the error body, with the checks, when not."""
        checks = await runtime.ready()
        if all(checks.values()):
            return JSONResponse({"status": "ready", "checks": checks})
        down = ", ".join(name for name, ok in checks.items() if not ok)
        error = {"code": "not_ready", "message": f"not reachable: {down}", "checks": checks}
        return JSONResponse({"error": error}, status_code=503)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={200: {"content": {metrics.CONTENT_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics_exposition() -> Response:
        """Outbox, consumer and projection backlogs and counts of what the service did, in
        Prometheus text format: for a scraper on the operators' network."""
        return Response(await metrics.exposition(runtime), media_type=metrics.CONTENT_TYPE)

    @app.get("/schemas/events", tags=["contract"])
    async def event_schemas() -> dict[str, Any]:
        """JSON Schema of every event this service publishes (the envelope's `data`)."""
        return runtime.registry.json_schemas()

    @app.get("/asyncapi.json", tags=["contract"])
    async def asyncapi_document() -> dict[str, Any]:
        """The AsyncAPI 3 document of every subject this service publishes or serves."""
        from salesplatform.contract import asyncapi

        # Made once: it describes the code, and making it takes FastStream seconds.
        if "asyncapi" not in app.state.contract:
            app.state.contract["asyncapi"] = asyncapi(
                runtime.topology,
                runtime.registry,
                runtime.bus,
                title=app.title,
                description=defn.description,
                extra_publishers=defn.extra_publishers,
                server=runtime.settings.nats_url,
            )
        return app.state.contract["asyncapi"]  # type: ignore[no-any-return]

    @app.get("/schemas/commands", tags=["contract"])
    async def command_schemas() -> dict[str, Any]:
        return runtime.bus.json_schemas()

    @app.get("/admin/projections", tags=["operations"])
    async def projections_state(request: HttpRequest) -> Any:
        operator_actor(request)
        # One snapshot for both reads: a switch committing between them would show a rebuild
        # done beside the generations it replaced.
        async with runtime.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                "SELECT g.name, g.generation, g.status, g.events_applied, g.position, g.started_at,"
                " g.finished_at, g.error FROM projection_generations g ORDER BY g.name, g.generation"
            )
            rebuilds = await rebuild_states(conn)
        return {"generations": [dict(r) for r in rows], "rebuilds": rebuilds}

    @app.post("/admin/projections/{name}/rebuild", tags=["operations"], status_code=202)
    async def start_rebuild(name: str, request: HttpRequest) -> Any:
        """Rebuild a projection from the log; the current version answers until the switch."""
        operator_actor(request)
        try:
            runtime.projection(name)
        except LookupError:
            return error_response(ServiceError(f"no projection {name}", code="unknown_projection"))
        runtime.spawn(f"rebuild:{name}", runtime.rebuild(name))
        return {"projection": name, "status": "started"}

    from salesplatform.operations import router as operations_router

    app.include_router(operations_router(runtime))

    for name, spec in runtime.bus.published().items():
        _add_command_route(app, runtime, name, spec.command, spec.summary)

    for routes in defn.routers:
        app.include_router(routes if isinstance(routes, APIRouter) else routes(runtime))
    return CommandGateway(app, runtime, max_body=runtime.settings.http_command_max_bytes)


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"


def _error_body(exc: ServiceError) -> tuple[int, bytes]:
    return exc.status, orjson.dumps({"error": exc.to_dict()})


async def serve_command(
    runtime: Runtime,
    name: str,
    body: bytes,
    header: Callable[[str], str | None],
) -> tuple[int, bytes]:
    """One HTTP command: (status, JSON body). `header` looks up a request header by its
    lower-case name."""
    try:
        actor = actor_from_header(header("authorization"), runtime.tokens)
    except ServiceError as exc:
        return _error_body(exc)
    outcome = await runtime.group.submit(
        Request(
            name=name,
            payload=body or b"{}",
            actor=actor,
            idempotency_key=header("idempotency-key"),
            correlation_id=header("x-correlation-id") or str(uuid4()),
            trace=tracing.current(runtime.tracer),
        )
    )
    if outcome.ok:
        return 200, orjson.dumps(outcome.result)
    return _error_body(outcome.error)  # type: ignore[arg-type]


class CommandGateway:
    """The service's ASGI application. `POST /commands/<name>` goes straight to the command
    bus; everything else (queries, health, contract, docs, operations) to the FastAPI app,
    which also documents the commands in its OpenAPI.

    Commands are the busiest requests a service takes, and each carries only a JSON body and
    a few headers: skipping the FastAPI and Starlette layers (middleware, routing over every
    route, dependency solving) takes about a quarter off the CPU a command costs the service.
    A body over `max_body` bytes is refused with 413 before it is read whole."""

    PREFIX = "/commands/"

    def __init__(self, api: FastAPI, runtime: Runtime, *, max_body: int) -> None:
        self.api = api
        self.runtime = runtime
        self.max_body = max_body
        # Every command is answered at /commands/<name>, also those only the service sends
        # itself: they are left out of the documents, and the bus refuses them to any token
        # with 403, as it does over NATS.
        self.commands = frozenset(runtime.bus.specs)

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self._serve(scope, receive, send)
            return
        # Each request runs in its own task: what is bound here is this request's alone.
        correlation_id = _correlation_id(scope) or str(uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id
        structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        refusal = _Refusal()

        async def observed(message: MutableMapping[str, Any]) -> None:
            refusal.see(message)
            await send(message)

        try:
            await self._traced(scope, receive, observed)
        finally:
            if refusal.status in LOGGED_REFUSALS:
                # Who was refused and why, never the token.
                log.info(
                    "request_refused",
                    method=scope["method"],
                    path=scope["path"],
                    status=refusal.status,
                    code=refusal.code(),
                )
            structlog.contextvars.unbind_contextvars("correlation_id")

    async def _traced(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if self.runtime.tracer is tracing.OFF:
            await self._serve(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        path = scope["path"]
        route = path if path.startswith(self.PREFIX) else None
        with tracing.http_request(self.runtime.tracer, scope["method"], path, headers, route) as span:

            async def send_seen(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    tracing.http_status(span, message["status"])
                await send(message)

            await self._serve(scope, receive, send_seen)

    async def _serve(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            if path.startswith(self.PREFIX) and path[len(self.PREFIX) :] in self.commands:
                status, body = await self._command(path[len(self.PREFIX) :], scope, receive)
                await send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        if scope["type"] != "http":
            await self.api(scope, receive, send)
            return
        try:
            await self.api(scope, receive, send)
        except Exception:
            # Starlette answered 500 in the error body already (`_internal_error`) and raises
            # the fault again for the server to log: it is logged here, once, as JSON.
            log.exception("request_failed", method=scope["method"], path=scope["path"])

    async def _command(
        self, name: str, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[MutableMapping[str, Any]]]
    ) -> tuple[int, bytes]:
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        too_large = PayloadTooLarge(f"a command body may hold at most {self.max_body} bytes")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            return _error_body(too_large)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return _error_body(ServiceError("the client went away", code="disconnected"))
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return _error_body(too_large)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        headers.setdefault("x-correlation-id", scope["state"]["correlation_id"])
        try:
            return await serve_command(self.runtime, name, b"".join(chunks), headers.get)
        except Exception as exc:
            if is_transient(exc):
                # Nothing was judged: the sender tries again (with the same Idempotency-Key).
                log.info("command_unavailable", command=name, error=repr(exc))
                return _error_body(Unavailable(f"{name} cannot run now: send it again shortly"))
            log.exception("command_failed", command=name)
            return _error_body(InternalError("the command failed"))


# Refusals logged for every HTTP request (the others are counted in /metrics): a refused
# authentication, a refused permission and a miss are what operators look for after an attack
# or a misconfigured client.
LOGGED_REFUSALS = frozenset({401, 403, 404})


def _correlation_id(scope: MutableMapping[str, Any]) -> str | None:
    for key, value in scope["headers"]:
        if key == b"x-correlation-id" and value:
            return str(value[:200].decode("latin-1"))
    return None


class _Refusal:
    """The status of a response as it is sent, and its body when it is a refusal."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    def see(self, message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body" and self.status in LOGGED_REFUSALS and len(self.body) < 4096:
            self.body += message.get("body", b"")

    def code(self) -> str | None:
        try:
            return str(orjson.loads(self.body)["error"]["code"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None


def _add_command_route(app: FastAPI, runtime: Runtime, name: str, model: type[BaseModel], summary: str) -> None:
    async def endpoint(request: HttpRequest) -> Response:
        # Reached only where the gateway does not answer (an app mounted under a prefix).
        status, body = await serve_command(runtime, name, await request.body(), request.headers.get)
        return Response(body, status_code=status, media_type="application/json")

    # The command's model and the models it nests go under components/schemas (a client
    # generator makes a class of each); the body refers to it by name.
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = {**schema.pop("$defs", {}), model.__name__: schema}
    app.add_api_route(
        f"/commands/{name}",
        endpoint,
        methods=["POST"],
        name=name,
        summary=summary.splitlines()[0] if summary else name,
        description=summary,
        tags=["commands"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
            },
            "responses": {
                "200": {
                    "description": "Done: the command's result (ids of what it made or changed, and its figures).",
                    "content": {"application/json": {"schema": {"type": "object", "title": f"{model.__name__}Result"}}},
                }
            },
            "x-defs": defs,
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": "Scoped to the caller and the command; the same key with the same body "
                    "replays the first result, with another body it is refused (422 idempotency_key_reused). "
                    "Kept for the service's idempotency retention (7 days by default).",
                    "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX_LENGTH},
                },
            ],
        },
    )


async def migrate_database(definition: ServiceDefinition, settings: ServiceSettings) -> list[str]:
    """Apply the service's migrations and nothing else (`python -m <service> migrate`): the
    deployment's migration Job, run once per release before its replicas need the schema.
    Returns the names applied now."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        applied = await migrate(conn, definition.migrations)
    finally:
        await conn.close()
    log.info("migrations_done", applied=applied)
    return applied


def main(definition: ServiceDefinition, settings: ServiceSettings, argv: list[str] | None = None) -> None:
    """`python -m <service>` serves until SIGTERM/SIGINT (in-flight work finishes before exit);
    `python -m <service> migrate` applies the database migrations and exits."""
    args = sys.argv[1:] if argv is None else argv
    configure_logging(definition.name, settings.log_level)
    if args == ["migrate"]:
        asyncio.run(migrate_database(definition, settings))
        return
    if args not in ([], ["serve"]):
        raise SystemExit(f"usage: python -m {definition.name}_service [serve | migrate]")
    runtime = Runtime(definition, settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = http_app(runtime, lifespan=lifespan)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        interface="asgi3",
        timeout_graceful_shutdown=HTTP_DRAIN_SECONDS,
    )
    server = uvicorn.Server(config)
    server.run()


def dump_contract(definition: ServiceDefinition) -> str:
    """The published contract of a service as JSON (events and commands)."""
    from salesplatform.clock import SystemClock as _Clock

    bus = definition.build_bus(definition.registry, _Clock())
    return json.dumps(
        {"service": definition.name, "events": definition.registry.json_schemas(), "commands": bus.json_schemas()},
        indent=2,
        default=str,
    )


__all__ = [
    "Consumes",
    "Runtime",
    "ServiceDefinition",
    "error_response",
    "http_actor",
    "http_app",
    "main",
    "migrate_database",
    "operator_actor",
]
