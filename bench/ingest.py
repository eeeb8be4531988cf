"""Figure 2: the ingest path. Orders published by another system to `orders.ingest.place_order`
(JetStream `publish_async`, an `Authorization` header with a system-role JWT) and run by a
running orders service process (`python -m orders_service`).

Before the load the orders service learns the department the way it does in production: the
territory, staff and approved customers (with credit limits) arrive as customer-service events
on the CUSTOMER stream, and the catalogue is defined by HTTP commands.

Figure: events stored per second (own events, `origin IS NULL`) from the first publish until
the ingest consumer has acknowledged the last message. Baseline: a raw nats-py durable pull
consumer fetching 500 and acking each. Goals: ≥ 10,000 events/s and ≥ 0.6× the raw consumer.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import nats
import nats.js.errors
import orjson

from bench.harness import (
    CpuMeter,
    FigureResult,
    Goal,
    Ratio,
    ServiceProcess,
    ensure_service_importable,
    record_cpu,
    wait_until,
)
from bench.history import History, department, envelope_of

TITLE = "Ingest path: orders.ingest.place_order through a running orders service"
# Baselines measured just before this figure, so that both see the same machine.
BASELINES: tuple[str, ...] = ("nats_fetch_ack",)
GOAL_EVENTS_PER_SECOND = 10_000
GOAL_RAW_FACTOR = 0.6


@dataclass
class Sizes:
    customers: int
    probe: int  # orders of the unmeasured warm-up that also sizes the runs
    target_seconds: float  # each measured run is sized to take about this long
    max_orders: int


QUICK = Sizes(customers=300, probe=300, target_seconds=1.5, max_orders=20_000)
FULL = Sizes(customers=2_000, probe=2_000, target_seconds=8.0, max_orders=300_000)


def run_size(sizes: Sizes, orders_per_second: float) -> int:
    """Orders for one measured run: about `target_seconds` of work at the warm-up's rate."""
    return max(sizes.probe, min(sizes.max_orders, int(orders_per_second * sizes.target_seconds)))


def topology(service: str, prefix: str) -> Any:
    from salesplatform.messaging import Topology

    return Topology(service, prefix)


@dataclass
class OrdersDesk:
    """A running orders service that knows the department, and the means to feed it orders."""

    ctx: Any
    service: ServiceProcess
    prefix: str
    history: History = field(default_factory=History)
    customers: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    # An outside system's connection (ingest, results, report changes), the customer
    # service's (its events, taught to orders) and an operator's (the orders service's state).
    nc: Any = None
    js: Any = None
    producer: Any = None
    operator: Any = None

    async def connect(self) -> None:
        from salesplatform.nats_layout import api_prefix

        stack = self.ctx.stack
        self.nc = await nats.connect(stack.nats.url, **stack.login("system"))
        self.js = self.nc.jetstream(publish_async_max_pending=4000)
        self.producer = await nats.connect(stack.nats.url, **stack.login("customer"))
        self.operator = await nats.connect(stack.nats.url, **stack.login("operator"))
        self.orders_state = self.operator.jetstream(prefix=api_prefix("orders"))

    async def close(self) -> None:
        for nc in (self.nc, self.producer, self.operator):
            if nc is not None:
                await nc.close()

    async def teach_department(self, customers: int) -> None:
        """Customer events on the customer stream (as the customer service would publish them),
        the catalogue by HTTP; then wait until the orders service has taken it all in."""
        from salesplatform.messaging import ensure_streams

        self.history, rows = department(customers)
        source = topology("customer", self.prefix)
        customer_js = self.producer.jetstream(publish_async_max_pending=4000)
        await ensure_streams(customer_js, source)
        foreign = [r for r in rows if not r[3].startswith(("sku.", "required_skus."))]
        futures = []
        for row in foreign:
            body = envelope_of(row)
            futures.append(
                await customer_js.publish_async(
                    source.event_subject(body["event_type"]),
                    orjson.dumps(body),
                    headers={"Nats-Msg-Id": body["event_id"], "Event-Type": body["event_type"]},
                )
            )
        await asyncio.gather(*futures)
        self.customers = [c for c, _ in self.history.customers]
        manager = self.ctx.token("m1", "sales_manager")
        async with httpx.AsyncClient(
            base_url=self.service.base_url, timeout=30, headers={"Authorization": f"Bearer {manager}"}
        ) as http:
            for sku, group, price in self.history.skus[:10]:
                response = await http.post(
                    "/commands/define_sku",
                    json={
                        "sku": sku,
                        "name": f"Product {sku}",
                        "brand": "Brand 1",
                        "product_group": group,
                        "package": "24x330ml",
                        "list_price_fen": price,
                        "floor_price_fen": price * 9 // 10,
                    },
                )
                if response.status_code != 200:
                    raise RuntimeError(f"define_sku failed: {response.status_code} {response.text[:400]}")
                self.skus.append(sku)
        stored = await wait_until(lambda: self._foreign_stored(len(foreign)), timeout=120, interval=0.1)
        if not stored:
            raise RuntimeError(f"the orders service did not store the {len(foreign)} customer events in 120 s")
        if not await wait_until(self.caught_up, timeout=120, interval=0.1):
            raise RuntimeError("the orders service's projections did not catch up with the customer events")

    async def _foreign_stored(self, count: int) -> bool:
        return (
            await fetchval(self.service.database_url, "SELECT count(*) FROM events WHERE origin IS NOT NULL") >= count
        )

    async def caught_up(self) -> bool:
        return await projections_caught_up(self.service.database_url, "orders")

    def order(self, n: int) -> tuple[str, dict[str, Any]]:
        """The n-th order: a few lines for one of the known customers."""
        order_id = f"o{uuid.uuid4().hex[:20]}"
        lines = [{"sku": self.skus[(n + k) % len(self.skus)], "quantity": 1 + (n + k) % 5} for k in range(2)]
        return order_id, {
            "order_id": order_id,
            "customer_id": self.customers[n % len(self.customers)],
            "lines": lines,
            "source": "system",
        }

    async def publish_orders(self, count: int, start: int = 0, on_sent: Any = None) -> int:
        """Publish `count` orders as fast as JetStream takes them; returns the last stream seq."""
        subject = topology("orders", self.prefix).subject("ingest", "place_order")
        token = self.ctx.token("erp", "system")
        futures = []
        for n in range(start, start + count):
            order_id, body = self.order(n)
            futures.append(
                await self.js.publish_async(
                    subject,
                    orjson.dumps(body),
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Nats-Msg-Id": f"ingest-{order_id}",
                    },
                )
            )
            if on_sent is not None:
                on_sent(order_id)
        acks = await asyncio.gather(*futures)
        return max(a.seq for a in acks)

    async def ingest_done(self, last_seq: int) -> bool:
        """The ingest consumer has acknowledged everything up to `last_seq`."""
        t = topology("orders", self.prefix)
        info = await self.orders_state.consumer_info(t.ingest_stream, t.durable("orders_ingest"))
        return info.ack_floor.stream_seq >= last_seq and info.num_ack_pending == 0

    async def rejected(self) -> int:
        t = topology("orders", self.prefix)
        try:
            info = await self.orders_state.stream_info(t.dlq_stream)
        except nats.js.errors.NotFoundError:
            return 0
        return int(info.state.messages)


async def fetchval(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def projections_caught_up(dsn: str, service: str) -> bool:
    """Every catch-up projection of `service` has reached the head of its log."""
    ensure_service_importable(service)
    names = catch_up_projections(service)
    conn = await asyncpg.connect(dsn)
    try:
        head = await conn.fetchrow(
            "SELECT tx_id::text::bigint AS tx, position FROM events ORDER BY tx_id DESC, position DESC LIMIT 1"
        )
        if head is None:
            return True
        behind = await conn.fetchval(
            "SELECT count(*) FROM projections p JOIN projection_generations g"
            " ON g.name = p.name AND g.generation = p.generation"
            " WHERE p.name = ANY($1::text[]) AND (g.tx_id::text::bigint, g.position) < ($2::bigint, $3::bigint)",
            names,
            head["tx"],
            head["position"],
        )
        return behind == 0
    finally:
        await conn.close()


@functools.cache
def catch_up_projections(service: str) -> list[str]:
    module = importlib.import_module(f"{service}_service.bootstrap")
    return [p.name for p in module.definition().projections]


@dataclass
class IngestRun:
    orders: int
    seconds: float
    events: int
    rejected: int


async def ingest_once(desk: OrdersDesk, orders: int, offset: int) -> IngestRun:
    """Publish `orders` and wait until the ingest consumer has acked them all."""
    dsn = desk.service.database_url
    before = await fetchval(dsn, "SELECT count(*) FROM events WHERE origin IS NULL")
    rejected_before = await desk.rejected()
    start = time.perf_counter()
    last_seq = await desk.publish_orders(orders, offset)
    done = await wait_until(lambda: desk.ingest_done(last_seq), timeout=300, interval=0.01)
    elapsed = time.perf_counter() - start
    desk.service.check_alive()
    if not done:
        raise RuntimeError(f"the orders service did not finish {orders} ingested orders in 300 s")
    after = await fetchval(dsn, "SELECT count(*) FROM events WHERE origin IS NULL")
    rejected = await desk.rejected() - rejected_before
    if after == before:
        raise RuntimeError(f"no event stored; {rejected} of {orders} orders were dead-lettered")
    return IngestRun(orders, elapsed, after - before, rejected)


async def measure_ingest(ctx: Any, fig: FigureResult, desk: OrdersDesk, sizes: Sizes, runs: int) -> None:
    stored = fig.measure("events_per_second", "events stored/s", "events/s")
    placed = fig.measure("orders_per_second", "orders run/s", "orders/s")
    warm = await ingest_once(desk, sizes.probe, 0)
    offset = sizes.probe
    orders = run_size(sizes, (warm.orders - warm.rejected) / warm.seconds)
    fig.details["orders_per_run"] = orders
    ctx.say(f"{orders:,} orders per run (warm-up: {warm.orders / warm.seconds:,.0f} orders/s)")
    meter = CpuMeter(ctx.stack, {"orders": desk.service.pid})
    for run in range(runs):
        meter.start()
        with ctx.profiled(desk.service.pid, f"fig{ctx.figure}-orders-ingest", last=run == runs - 1):
            result = await ingest_once(desk, orders, offset)
        record_cpu(fig, meter, result.events, of=stored.key)
        offset += orders
        if result.rejected:
            fig.details["rejected"] = fig.details.get("rejected", 0) + result.rejected
        stored.add(result.events / result.seconds)
        placed.add((result.orders - result.rejected) / result.seconds)
        fig.details.setdefault("events_per_order", []).append(
            round(result.events / max(1, result.orders - result.rejected), 2)
        )


async def run(ctx: Any, fig: FigureResult) -> None:
    sizes = QUICK if ctx.quick else FULL
    dsn = await ctx.stack.fresh_database("orders")
    prefix = f"f2{uuid.uuid4().hex[:6]}"
    service = ctx.service("orders", database_url=dsn, stream_prefix=prefix)
    fig.ratios += [Ratio("events_per_second", "nats_fetch_ack"), Ratio("orders_per_second", "nats_fetch_ack")]
    fig.goals += [
        Goal(f"ingest ≥ {GOAL_EVENTS_PER_SECOND:,} events/s", "events_per_second", target=GOAL_EVENTS_PER_SECOND),
        Goal(
            f"ingest ≥ {GOAL_RAW_FACTOR}× raw fetch+ack",
            "events_per_second",
            baseline="nats_fetch_ack",
            factor=GOAL_RAW_FACTOR,
        ),
    ]
    try:
        with service:
            desk = OrdersDesk(ctx, service, prefix)
            await desk.connect()
            try:
                ctx.say(f"teaching the orders service {sizes.customers} customers")
                await desk.teach_department(sizes.customers)
                await measure_ingest(ctx, fig, desk, sizes, ctx.runs)
            finally:
                await desk.close()
    finally:
        await ctx.stack.drop_database(dsn)
    fig.notes.append(
        f"{fig.details.get('orders_per_run', 0):,} orders per run (sized from a warm-up to take about "
        f"{sizes.target_seconds:g} s), published with publish_async while the service consumes; the "
        "window runs from the first publish to the consumer's last ack."
    )
