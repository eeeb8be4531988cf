"""What operators scrape (`GET /metrics`, Prometheus text format 0.0.4), made with
`prometheus_client`: how far the outbox, the consumers and the projections are behind, what the
service has done since it started, how long it took, and the process itself.

Three kinds of family:

- **State, read when scraped**: the outbox backlog, the log head, each catch-up projection's
  distance from the head, its rebuild, projection failures (one statement on the database) and
  each durable consumer's pending and unacked messages (one JetStream request per consumer).
  Read from the database and JetStream, so every replica reports the same.
- **Counts since the process started**: commands by status, events published, ingested commands
  by outcome, dead letters by reason. The parts doing the work keep them as plain integers
  (no lock on the command path); a collector hands them to the exposition.
- **Durations, in seconds** (histograms): commands by command and outcome, relay publishes,
  consumer batches, and the lag from an event being recorded to its being applied by each
  catch-up projection.

Every family carries a `service` label. A service runs as one process (one uvicorn server, no
worker processes; it scales out by replicas, each scraped on its own), so the registry is the
process's own and `prometheus_client`'s multiprocess mode is not needed; a runtime keeps a
registry of its own, so several runtimes in one process (tests) never mix their figures.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

import nats.errors
import nats.js.errors
from nats.js.api import ConsumerInfo
from prometheus_client import (
    GC_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from salesplatform.service import Runtime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Command latency: a command commits in a few milliseconds; a slow one waits for a claim or
# retries a conflict.
COMMAND_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A relay publish or a consumer batch: one round trip to JetStream up to many statements.
BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# An HTTP request answered: a page or a health check in milliseconds, a report page waiting for
# the services' APIs up to their timeout.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# From recorded to applied: milliseconds when all runs, up to hours after an outage or a rebuild.
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0)


def outcome_of(status: int) -> str:
    """A command's outcome as the latency histogram labels it: `accepted` (200), `refused` (the
    command or its sender was at fault: 4xx) or `failed` (the service was: 5xx)."""
    if status < 400:
        return "accepted"
    return "refused" if status < 500 else "failed"


@functools.cache
def build_version(service: str) -> str:
    """The installed version of the service's package (`sales-<service>`), else the platform's."""
    for name in (f"sales-{service}", "salesplatform"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return "unknown"


class ServiceMetrics:
    """The metrics of one running service: its registry, the histograms the command path,
    the relay, the consumers and the projections observe, and the state read at scrape time."""

    def __init__(self, service: str, *, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry
        self.command_seconds = Histogram(
            "sales_command_duration_seconds",
            "Time from the command bus taking a command to its outcome (in a batch: the batch's time).",
            ["service", "command", "outcome"],
            buckets=COMMAND_BUCKETS,
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "sales_relay_publish_duration_seconds",
            "Time the outbox relay took to publish a batch of events and have JetStream confirm it.",
            ["service"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.consumer_seconds = Histogram(
            "sales_consumer_batch_duration_seconds",
            "Time a durable consumer took to process a fetched batch of messages.",
            ["service", "durable"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.lag_seconds = Histogram(
            "sales_projection_lag_seconds",
            "Time from an event being recorded (by this or the producing service) to a catch-up "
            "projection applying it; one sample per batch, for its oldest event.",
            ["service", "projection"],
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.timer_commands = Counter(
            "sales_timer_commands",
            "Commands a timer sent, by what came of them: done, already (done before), not_due, refused.",
            ["service", "timer", "outcome"],
            registry=registry,
        )
        self._commands: dict[tuple[str, int], Any] = {}
        # The state and counts read at scrape time (a registered runtime's only).
        self.scraped: StateCollector | None = None

    @classmethod
    def registered(cls, runtime: Runtime) -> ServiceMetrics:
        """A service's metrics in a registry of its own, with the process, platform, build and
        state collectors."""
        registry = process_registry(runtime.definition.name)
        found = cls(runtime.definition.name, registry=registry)
        found.scraped = StateCollector(runtime)
        registry.register(found.scraped)
        return found

    def observe_command(self, command: str, status: int, seconds: float) -> None:
        child = self._commands.get((command, status))
        if child is None:
            child = self._commands[command, status] = self.command_seconds.labels(
                self.service, command, outcome_of(status)
            )
        child.observe(seconds)

    def count_timer_run(self, timer: str, counts: dict[str, int]) -> None:
        for outcome, n in counts.items():
            if n:
                self.timer_commands.labels(self.service, timer, outcome).inc(n)

    def observe_publish(self, seconds: float) -> None:
        self.publish_seconds.labels(self.service).observe(seconds)

    def observe_consumer_batch(self, durable: str, seconds: float) -> None:
        self.consumer_seconds.labels(self.service, durable).observe(seconds)

    def observe_lag(self, projection: str, recorded_at: datetime, applied_at: datetime) -> None:
        self.lag_seconds.labels(self.service, projection).observe(max(0.0, (applied_at - recorded_at).total_seconds()))


def process_registry(service: str) -> CollectorRegistry:
    """A registry of its own for `service`'s process: the process, platform and GC collectors
    of `prometheus_client` and `sales_build_info`. What every process serving `/metrics` has."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    if GC_COLLECTOR is not None:
        GCCollector(registry=registry)
    registry.register(BuildCollector(service))
    return registry


class BuildCollector(Collector):
    """`sales_build_info{service, version, python, implementation}`: the running build."""

    def __init__(self, service: str) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        info = InfoMetricFamily("sales_build", "The running build of the service.", labels=["service"])
        info.add_metric(
            [self.service],
            {
                "version": build_version(self.service),
                "python": platform.python_version(),
                "implementation": sys.implementation.name,
            },
        )
        yield info


class RequestDurations:
    """ASGI middleware observing `sales_http_request_duration_seconds{service, method, route,
    status}`: from a request arriving to its response starting (a stream, such as Server-Sent
    Events, counts until its first byte, not while it stays open). `route` is the path template
    the request matched (`/photos/{visit_id}/{photo_id}`), "" when none did, so a scraper sees
    a bounded set of series whatever paths are asked."""

    def __init__(self, app: Any, *, service: str, registry: CollectorRegistry) -> None:
        self.app = app
        self.service = service
        self.seconds = Histogram(
            "sales_http_request_duration_seconds",
            "Time from an HTTP request arriving to its response starting, by route template and status.",
            ["service", "method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "")
                self.seconds.labels(self.service, scope["method"], route, str(message["status"])).observe(
                    time.perf_counter() - started
                )
            await send(message)

        await self.app(scope, receive, timed_send)


def exposition_of(registry: CollectorRegistry) -> bytes:
    """Every family of `registry` in Prometheus text format (`CONTENT_TYPE`)."""
    return generate_latest(registry)


# What a bus, relay, consumer or runner observes into until a runtime gives it its own
# (a part built alone, as in a test): the same histograms, in no registry.
DETACHED = ServiceMetrics("")


@dataclass
class State:
    """What a scrape read from the database and JetStream."""

    outbox: int = 0
    head: int = 0
    failures: int = 0
    projections: list[dict[str, Any]] = field(default_factory=list)
    reactors: list[dict[str, Any]] = field(default_factory=list)
    consumers: list[tuple[str, ConsumerInfo]] = field(default_factory=list)


_STATE = """
SELECT (SELECT count(*) FROM public.outbox) AS outbox,
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM public.events_position_seq) AS head,
       (SELECT count(*) FROM public.projection_failures) AS failures
"""

_PROJECTIONS = """
SELECT p.name, g.generation, g.position, g.events_applied,
       b.generation AS building, b.events_applied AS building_applied, b.error AS building_error
  FROM public.projections p
  JOIN public.projection_generations g ON g.name = p.name AND g.generation = p.generation
  LEFT JOIN public.projection_generations b ON b.name = p.name AND b.status = 'building'
 ORDER BY p.name
"""


async def read_state(runtime: Runtime) -> State:
    async with runtime.pool.acquire() as conn:
        row = await conn.fetchrow(_STATE)
        # Inline projections change with the events themselves: never behind, no checkpoint. A
        # projection an older release ran (one that became a reactor) is no longer reported.
        caught_up = {p.name for p in runtime.definition.projections}
        projections = [dict(r) for r in await conn.fetch(_PROJECTIONS) if r["name"] in caught_up]
        reactors = [
            dict(r)
            for r in await conn.fetch(
                "SELECT name, position, reacted FROM public.reactor_checkpoints WHERE name = ANY($1::text[])"
                " ORDER BY name",
                [r.name for r in runtime.definition.reactors],
            )
        ]
    return State(
        outbox=row["outbox"],
        head=int(row["head"]),
        failures=row["failures"],
        projections=projections,
        reactors=reactors,
        consumers=await _consumers(runtime),
    )


class StateCollector(Collector):
    """Hands the state read by the last scrape and the counts the service keeps to the
    exposition. `exposition` reads the state (asynchronously) before rendering."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.state = State()

    def describe(self) -> list[Metric]:
        return []  # read only when scraped: nothing to check names against at registration

    def collect(self) -> Iterator[Metric]:
        rt, s = self.runtime, self.state
        service = rt.definition.name

        def gauge(name: str, text: str, labels: list[str]) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, labels=["service", *labels])

        def counter(name: str, text: str, labels: list[str]) -> CounterMetricFamily:
            return CounterMetricFamily(name, text, labels=["service", *labels])

        m = gauge("sales_outbox_pending", "Committed events not yet confirmed by JetStream.", [])
        m.add_metric([service], s.outbox)
        yield m
        m = gauge("sales_log_head_position", "The last position handed out in the event log.", [])
        m.add_metric([service], s.head)
        yield m
        m = gauge(
            "sales_projection_positions_behind",
            "Log positions between a catch-up projection's checkpoint and the head (at most the events to apply).",
            ["projection"],
        )
        for p in s.projections:
            m.add_metric([service, p["name"]], max(0, s.head - p["position"]))
        yield m
        m = gauge(
            "sales_reactor_positions_behind",
            "Log positions between a reactor's checkpoint and the head (at most the events to react to).",
            ["reactor"],
        )
        for r in s.reactors:
            m.add_metric([service, r["name"]], max(0, s.head - r["position"]))
        yield m
        reacted = counter("sales_reactor_events", "Events of its types a reactor has reacted to.", ["reactor"])
        for r in s.reactors:
            reacted.add_metric([service, r["name"]], r["reacted"])
        yield reacted
        m = gauge(
            "sales_projection_events_applied",
            "Events applied by a catch-up projection's active generation.",
            ["projection", "generation"],
        )
        for p in s.projections:
            m.add_metric([service, p["name"], str(p["generation"])], p["events_applied"])
        yield m
        m = gauge(
            "sales_projection_rebuild_running",
            "1 while a new generation of a catch-up projection is being built (from the database: any replica may run it).",
            ["projection"],
        )
        for p in s.projections:
            m.add_metric([service, p["name"]], int(p["building"] is not None and p["building_error"] is None))
        yield m
        m = gauge(
            "sales_projection_rebuild_events_applied",
            "Events the generation being built has applied so far.",
            ["projection"],
        )
        for p in s.projections:
            if p["building"] is not None:
                m.add_metric([service, p["name"]], p["building_applied"])
        yield m
        m = gauge(
            "sales_projection_rebuild_failed",
            "1 when the last rebuild of a catch-up projection failed (its error is in /admin/projections).",
            ["projection"],
        )
        for p in s.projections:
            m.add_metric([service, p["name"]], int(p["building_error"] is not None))
        yield m
        m = gauge("sales_projection_failures", "Events a projection could not apply (kept and dead-lettered).", [])
        m.add_metric([service], s.failures)
        yield m
        m = gauge("sales_consumer_pending", "Messages of a durable consumer's stream not yet delivered.", ["durable"])
        for durable, consumer in s.consumers:
            m.add_metric([service, durable], consumer.num_pending or 0)
        yield m
        m = gauge(
            "sales_consumer_ack_pending", "Messages delivered to a durable consumer and not yet acked.", ["durable"]
        )
        for durable, consumer in s.consumers:
            m.add_metric([service, durable], consumer.num_ack_pending or 0)
        yield m

        c = counter("sales_commands", "Commands run, by command and status (200: accepted).", ["command", "status"])
        for (name, status), n in sorted(rt.bus.counts.items()):
            c.add_metric([service, name, str(status)], n)
        yield c
        c = counter("sales_events_published", "Events the outbox relay published.", [])
        c.add_metric([service], rt.relay.published)
        yield c
        c = counter("sales_ingest", "Asynchronous commands taken from the ingest stream, by outcome.", ["outcome"])
        c.add_metric([service, "accepted"], sum(loop.accepted for loop in rt.ingest_loops))
        c.add_metric([service, "rejected"], sum(loop.rejected for loop in rt.ingest_loops))
        yield c
        c = counter("sales_dead_letters", "Messages sent to the dead-letter stream, by reason.", ["reason"])
        for reason, n in sorted(rt.dead_letters.sent.items()):
            c.add_metric([service, reason], n)
        yield c
        c = counter(
            "sales_outages", "Outages the service met (a dependency away), each once however many loops met it.", []
        )
        c.add_metric([service], rt.outages.count)
        yield c
        m = gauge("sales_outage_ongoing", "1 while an outage is not over for every loop that met it.", [])
        m.add_metric([service], int(rt.outages.ongoing))
        yield m


async def exposition(runtime: Runtime) -> bytes:
    """Read the state, then render every family of the runtime's registry."""
    found = runtime.metrics
    assert found.registry is not None and found.scraped is not None, "a runtime's metrics are registered"
    found.scraped.state = await read_state(runtime)
    return exposition_of(found.registry)


async def _consumers(runtime: Runtime) -> list[tuple[str, ConsumerInfo]]:
    """The state of the service's durable consumers (ingest, then other services' events);
    one not made yet is left out."""
    found = []
    # Each through its own JetStream context: another service's stream is reached through the
    # consumer API that service's account exports.
    for loop in [runtime.ingest, *runtime.consumers]:
        with contextlib.suppress(nats.js.errors.NotFoundError, nats.errors.TimeoutError):
            found.append((loop.durable, await loop.js.consumer_info(loop.stream, loop.durable, timeout=2)))
    return found
