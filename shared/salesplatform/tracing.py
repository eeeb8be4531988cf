"""Tracing with OpenTelemetry: one trace follows a command from its caller through the service
that ran it, the events it recorded and the services that applied them.

Spans: an HTTP request (`SERVER`), a command, an append of events, a relay publish
(`PRODUCER`), a consumed event (`CONSUMER`) and a projection batch. The W3C trace context
(`traceparent`, `tracestate`) travels:

- in from a caller: the HTTP request's headers, or the headers of a NATS command
  (`<service>.cmd.*`, `<service>.ingest.*`);
- with the command to the bus (`Request.trace`), which runs it in a span of its own;
- into the events it records: the envelope's `metadata` keeps the command span's context, stored
  with the event and published with it;
- out in the NATS headers of each published event (the relay's publish span), where another
  service's consumer continues it; the copy it keeps has the same envelope, so its projections
  apply the event in the same trace.

Work done for many commands or events at once (a group commit, a consumer's or a projection's
batch) gets one span per trace concerned, each timed as the whole batch: each trace stays whole
and shows how long its part waited with the others.

Which exporter is chosen by `OTEL_TRACES_EXPORTER`: `none` (the default: nothing is made, each
place costs a check), `console` (spans printed as JSON on standard output) or `otlp` (OTLP over
HTTP/protobuf, to `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, read by
the exporter itself). The SDK's other `OTEL_*` variables apply as documented by OpenTelemetry
(`OTEL_TRACES_SAMPLER`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`). Each runtime has a tracer
provider of its own with `service.name` set to the service's name.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

# The tracer of a service whose tracing is off: every place checks for it first and does nothing.
OFF: Tracer = trace.NoOpTracer()

_W3C = TraceContextTextMapPropagator()
Carrier = dict[str, str]


class Exporter(enum.StrEnum):
    none = "none"
    console = "console"
    otlp = "otlp"


def provider_for(service: str, exporter: Exporter, *, version: str = "unknown") -> TracerProvider | None:
    """The tracer provider a service's settings choose; None when tracing is off."""
    if exporter is Exporter.none:
        return None
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service, SERVICE_VERSION: version}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    return provider


def _exporter(exporter: Exporter) -> SpanExporter:
    if exporter is Exporter.console:
        return ConsoleSpanExporter()
    # Imported only when chosen: the OTLP exporter pulls in protobuf.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def tracer_of(provider: TracerProvider | None) -> Tracer:
    return OFF if provider is None else provider.get_tracer("salesplatform")


# -- carrying the context ---------------------------------------------------------------------


def carrier(span: Span) -> Carrier:
    """The W3C headers naming `span` as the parent of what follows."""
    out: Carrier = {}
    _W3C.inject(out, context=trace.set_span_in_context(span))
    return out


def context_of(headers: Mapping[str, str] | None) -> Context | None:
    """The parent named by W3C headers (case as sent on HTTP or NATS), or None."""
    if not headers:
        return None
    found = {k.lower(): v for k, v in headers.items() if k.lower() in ("traceparent", "tracestate")}
    return _W3C.extract(found) if "traceparent" in found else None


def incoming(tracer: Tracer, headers: Mapping[str, str] | None) -> Carrier | None:
    """A command's trace context as received in its headers, to hand to the bus with it."""
    if tracer is OFF or not headers:
        return None
    found = {k.lower(): v for k, v in headers.items() if k.lower() in ("traceparent", "tracestate")}
    return found or None


def current(tracer: Tracer) -> Carrier | None:
    """The context of the span running now (an HTTP request's), for a command it submits."""
    if tracer is OFF:
        return None
    span = trace.get_current_span()
    return carrier(span) if span.get_span_context().is_valid else None


# -- spans --------------------------------------------------------------------------------------


@contextlib.contextmanager
def http_request(
    tracer: Tracer, method: str, path: str, headers: Mapping[str, str], route: str | None
) -> Iterator[Span]:
    """The span of one HTTP request, child of the caller's `traceparent` if it sent one."""
    if tracer is OFF:
        yield trace.INVALID_SPAN
        return
    name = f"{method} {route}" if route else method
    with tracer.start_as_current_span(
        name,
        context=context_of(headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path, **({"http.route": route} if route else {})},
    ) as span:
        yield span


def http_status(span: Span, status: int) -> None:
    if span.is_recording():
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))


def start_command(tracer: Tracer, name: str, trace_context: Carrier | None, *, batch: int = 1) -> Span | None:
    """A command's span, child of the context it arrived with; None when tracing is off."""
    if tracer is OFF:
        return None
    attributes: dict[str, Any] = {"sales.command": name}
    if batch > 1:
        attributes["sales.batch_size"] = batch
    return tracer.start_span(f"command {name}", context=context_of(trace_context), attributes=attributes)


def end_command(span: Span | None, status: int, code: str | None = None) -> None:
    if span is None:
        return
    span.set_attribute("sales.status", status)
    if code:
        span.set_attribute("sales.error_code", code)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
    span.end()


@contextlib.contextmanager
def within(span: Span | None) -> Iterator[None]:
    """Make `span` the current one (spans started meanwhile are its children)."""
    if span is None:
        yield
        return
    with trace.use_span(span, end_on_exit=False):
        yield


# What `append` gives while tracing is off: entering and leaving it costs two method calls.
_NOTHING: contextlib.AbstractContextManager[object] = contextlib.nullcontext()


def append(
    tracer: Tracer, streams: int, events: int, contexts: Iterable[Carrier | None]
) -> contextlib.AbstractContextManager[object]:
    """The span of one append statement, child of the (first) command whose events it writes;
    a batch's wave links the other commands' spans."""
    if tracer is OFF:
        return _NOTHING
    found = [c for c in (context_of(c) for c in contexts) if c is not None]
    return tracer.start_as_current_span(
        "append",
        context=found[0] if found else None,
        attributes={"sales.streams": streams, "sales.events": events},
        links=[Link(trace.get_current_span(c).get_span_context()) for c in found[1:]],
    )


def event_metadata(
    tracer: Tracer, metadata: Mapping[str, Any] | None, kind: SpanKind, name: str, **attributes: Any
) -> Span | None:
    """A span about one event (a publish, a consumed message), child of the trace context the
    event keeps; None when tracing is off or the event keeps none."""
    if tracer is OFF:
        return None
    parent = context_of(metadata)
    if parent is None:
        return None
    return tracer.start_span(name, context=parent, kind=kind, attributes=attributes)


def published(tracer: Tracer, metadata: Mapping[str, Any] | None, event_type: str, event_id: str) -> Span | None:
    """The span of publishing an event, child of the command its envelope's metadata names."""
    if tracer is OFF:
        return None
    return event_metadata(tracer, metadata, SpanKind.PRODUCER, f"publish {event_type}", **{"sales.event_id": event_id})


def consumed(
    tracer: Tracer,
    headers: Mapping[str, str] | None,
    metadata: Mapping[str, Any] | None,
    event_type: str,
    event_id: str,
) -> Span | None:
    """The span of a consumed event: child of the publish span its NATS headers name, or, when
    it was published without one, of the command its envelope's metadata names."""
    if tracer is OFF:
        return None
    parent = headers if context_of(headers) is not None else metadata
    return event_metadata(tracer, parent, SpanKind.CONSUMER, f"consume {event_type}", **{"sales.event_id": event_id})


def batch_spans(
    tracer: Tracer,
    name: str,
    contexts: Iterable[Mapping[str, Any] | None],
    started_ns: int,
    **attributes: Any,
) -> None:
    """Spans of work done at once for events of several traces (a projection's batch), from
    `started_ns` to now: one per distinct trace context, or one of its own when none has any."""
    if tracer is OFF:
        return
    seen: set[str] = set()
    parents = []
    for metadata in contexts:
        if metadata and metadata.get("traceparent") and metadata["traceparent"] not in seen:
            seen.add(metadata["traceparent"])
            parents.append(context_of(metadata))
    end = time.time_ns()
    for parent in parents or [None]:
        span = tracer.start_span(name, context=parent, start_time=started_ns, attributes=attributes)
        span.end(end_time=end)


def now_ns() -> int:
    return time.time_ns()


__all__ = [
    "OFF",
    "Carrier",
    "Exporter",
    "append",
    "batch_spans",
    "carrier",
    "consumed",
    "context_of",
    "current",
    "end_command",
    "event_metadata",
    "http_request",
    "http_status",
    "incoming",
    "provider_for",
    "published",
    "start_command",
    "tracer_of",
    "within",
]
