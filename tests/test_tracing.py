"""One trace follows a command from its outside caller through the orders service, over NATS,
into the reporting service's projection; spans recorded by the OpenTelemetry SDK in memory."""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson
import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from running_system import SIGNING_KEY, eventually

from orders_service.bootstrap import definition as orders_definition
from reporting_service.bootstrap import definition as reporting_definition
from salesplatform import tracing
from salesplatform.auth import mint
from salesplatform.devstack.pytest_plugin import connected_as
from salesplatform.events import Actor, Role
from salesplatform.settings import settings_for
from salesplatform.store import init_connection

MANAGER = Actor(id="m-1", role=Role.sales_manager)
SKU = {
    "sku": "COLA-330",
    "name": "Cola 330ml",
    "brand": "Cola",
    "product_group": "soft drinks",
    "package": "can",
    "list_price_fen": 250,
    "floor_price_fen": 200,
}


def recording(service: str, exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes[SERVICE_NAME])


async def test_one_trace_follows_a_command_from_the_caller_into_the_reporting_projection(start_service: Any) -> None:
    spans = InMemorySpanExporter()
    orders = await start_service(orders_definition(), tracer_provider=recording("orders", spans))
    reporting = await start_service(reporting_definition(), tracer_provider=recording("reporting", spans))

    # The outside caller's own span, sent as `traceparent` (W3C) with the command.
    caller = recording("caller", spans).get_tracer("test")
    with caller.start_as_current_span("order desk defines a SKU") as outside:
        headers = tracing.carrier(outside)
        r = await orders.command(MANAGER, "define_sku", SKU, **headers)
    assert r.status_code == 200, r.text
    trace_id = outside.get_span_context().trace_id

    def in_trace() -> dict[str, ReadableSpan]:
        return {s.name: s for s in spans.get_finished_spans() if s.context.trace_id == trace_id}

    async def applied_by_reporting() -> bool:
        return "project directory" in in_trace()

    await eventually(applied_by_reporting, timeout=30)
    found = in_trace()

    def parent_of(name: str) -> ReadableSpan:
        parent = found[name].parent
        assert parent is not None, f"{name} has no parent"
        return next(s for s in found.values() if s.context.span_id == parent.span_id)

    http = found["POST /commands/define_sku"]
    assert (service_of(http), http.kind) == ("orders", SpanKind.SERVER)
    assert http.parent is not None and http.parent.span_id == outside.get_span_context().span_id
    assert (http.attributes or {})["http.response.status_code"] == 200
    assert parent_of("command define_sku") is http
    assert parent_of("append").name == "command define_sku"
    publish = found["publish sku.defined"]
    assert (service_of(publish), publish.kind) == ("orders", SpanKind.PRODUCER)
    assert parent_of("publish sku.defined").name == "command define_sku"
    consume = found["consume sku.defined"]
    assert (service_of(consume), consume.kind) == ("reporting", SpanKind.CONSUMER)
    assert parent_of("consume sku.defined") is publish
    project = found["project directory"]
    assert service_of(project) == "reporting"
    assert parent_of("project directory").name == "command define_sku"

    # The event keeps the command's context in its envelope's metadata, in both services' logs.
    command = found["command define_sku"].context
    for service in (orders, reporting):
        conn = await asyncpg.connect(service.runtime.settings.database_url)
        try:
            await init_connection(conn)
            metadata = await conn.fetchval("SELECT metadata FROM events WHERE event_type = 'sku.defined'")
        finally:
            await conn.close()
        assert metadata["traceparent"].split("-")[1:3] == [f"{command.trace_id:032x}", f"{command.span_id:016x}"]


async def test_commands_sent_over_nats_go_on_the_callers_trace(start_service, nats_url: str) -> None:
    """Request/reply and the ingest work queue take `traceparent` from the message headers."""
    spans = InMemorySpanExporter()
    orders = await start_service(orders_definition(), tracer_provider=recording("orders", spans))
    caller = recording("caller", spans).get_tracer("test")
    token = {"Authorization": f"Bearer {mint(Actor(id='erp', role=Role.system), SIGNING_KEY)}"}
    topology = orders.runtime.topology
    async with connected_as(nats_url, "system") as nc:
        with caller.start_as_current_span("erp sends a SKU") as by_request:
            reply = await nc.request(
                topology.subject("cmd", "define_sku"),
                orjson.dumps({**SKU, "sku": "TEA-500"}),
                headers={**token, **tracing.carrier(by_request)},
                timeout=10,
            )
        assert orjson.loads(reply.data)["ok"], reply.data
        with caller.start_as_current_span("erp queues a SKU") as by_ingest:
            await nc.jetstream().publish(
                topology.subject("ingest", "define_sku"),
                orjson.dumps({**SKU, "sku": "WATER-1L"}),
                headers={**token, **tracing.carrier(by_ingest)},
            )

    def command_under(caller_span: Any) -> list[ReadableSpan]:
        context = caller_span.get_span_context()
        return [
            s
            for s in spans.get_finished_spans()
            if s.name == "command define_sku" and s.parent is not None and s.parent.span_id == context.span_id
        ]

    async def both_traced() -> bool:
        return bool(command_under(by_request)) and bool(command_under(by_ingest))

    await eventually(both_traced, timeout=30)
    assert service_of(command_under(by_ingest)[0]) == "orders"


async def test_with_tracing_off_nothing_is_recorded_or_carried(start_service: Any) -> None:
    orders = await start_service(orders_definition())
    assert orders.runtime.tracer is tracing.OFF and orders.runtime.tracer_provider is None
    spans = InMemorySpanExporter()
    with recording("caller", spans).get_tracer("test").start_as_current_span("caller") as outside:
        r = await orders.command(MANAGER, "define_sku", SKU, **tracing.carrier(outside))
    assert r.status_code == 200, r.text
    conn = await asyncpg.connect(orders.runtime.settings.database_url)
    try:
        assert await conn.fetchval("SELECT metadata FROM events WHERE event_type = 'sku.defined'") is None
    finally:
        await conn.close()


@pytest.mark.fast
def test_the_exporter_is_chosen_by_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    def exporter() -> tracing.Exporter:
        return settings_for("orders", database_url="postgresql://x/y").traces_exporter

    assert exporter() is tracing.Exporter.none
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert exporter() is tracing.Exporter.console
    provider = tracing.provider_for("orders", exporter())
    assert provider is not None and provider.resource.attributes[SERVICE_NAME] == "orders"
    provider.shutdown()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert exporter() is tracing.Exporter.otlp
    assert tracing.provider_for("orders", tracing.Exporter.none) is None
