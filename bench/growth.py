"""Figure 7: growth. Figures 1 and 5 again at one size and at ten times that size: is the cost
per event flat as the data grows?

- Commands: the customer service's database is first filled with a history of customers
  (registered, approved, classified, credit limit set: COPY into `events`), its projections are
  brought up to date (catch-up on start, inline ones rebuilt through the admin API), then the
  command-path throughput of figure 1 is measured. Small: `base` events; large: 10 × base.
- Rebuild: figure 5 with N and 10 × N events.

The figure is µs per command / per event at each size and the ratio large / small (1.00 is
flat; 1.30 means 30% dearer per event at ten times the data).
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from bench import commands, rebuild
from bench.harness import FigureResult, ensure_service_importable, wait_until
from bench.history import EVENT_COLUMNS, History, chunks
from bench.ingest import projections_caught_up

TITLE = "Growth: figures 1 and 5 at ten times the data"
# Baselines measured just before this figure, so that both see the same machine.
BASELINES: tuple[str, ...] = ()
FACTOR = 10
QUICK_COMMAND_EVENTS = 1_000
FULL_COMMAND_EVENTS = 50_000
QUICK_REBUILD_EVENTS = 3_000
FULL_REBUILD_EVENTS = 100_000


def customer_history_rows(count: int) -> Any:
    """`count` customer-service events: the territory and staff, then customers (4 events each)."""
    history = History(
        seed=23, customers_per_rep=0, origins={"customer": None, "visit": "VISIT", "orders": "ORDERS"}, id_prefix="g"
    )
    produced = 0
    for row in history.territory_events():
        produced += 1
        yield row
    reps = list(history.territory.reps)
    n = 0
    while produced < count:
        for row in history.register_customer(reps[n % len(reps)]):
            if produced >= count:
                return
            produced += 1
            yield row
        n += 1


async def prefill_customer_database(dsn: str, count: int) -> None:
    """The customer service's schema, then `count` history events by COPY."""
    ensure_service_importable("customer")
    from customer_service.bootstrap import definition
    from salesplatform.migrations import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, definition().migrations)
        # Plain codecs from here: COPY sends jsonb in binary, as text it would need the
        # platform's text codec.
        for rows in chunks(customer_history_rows(count), 5000):
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
        await conn.execute("VACUUM ANALYZE events")
    finally:
        await conn.close()


async def bring_up_to_date(ctx: Any, base_url: str, dsn: str) -> None:
    """Catch-up projections catch up on start; inline ones are rebuilt through the admin API
    (a service only rebuilds them when their code version changes)."""
    from customer_service.bootstrap import definition
    from salesplatform.clock import SystemClock

    defn = definition()
    inline = [p.name for p in defn.build_bus(defn.registry, SystemClock()).inline_projections]
    operator = ctx.token("ops1", "operator")
    async with httpx.AsyncClient(
        base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {operator}"}
    ) as http:
        for name in inline:
            response = await http.post(f"/admin/projections/{name}/rebuild")
            if response.status_code != 202:
                raise RuntimeError(f"rebuild of {name} refused: {response.status_code} {response.text[:300]}")

        async def rebuilt() -> bool:
            state = (await http.get("/admin/projections")).json().get("rebuilds", {})
            failed = [f"{n}: {s['status']}" for n, s in state.items() if str(s.get("status", "")).startswith("failed")]
            if failed:
                raise RuntimeError("rebuild failed: " + "; ".join(failed))
            return all(state.get(n, {}).get("status") == "done" for n in inline)

        if not await wait_until(rebuilt, timeout=600, interval=0.2):
            raise RuntimeError("the inline projections were not rebuilt within 600 s")
    if not await wait_until(lambda: projections_caught_up(dsn, "customer"), timeout=600, interval=0.2):
        raise RuntimeError("the catch-up projections did not catch up within 600 s")


async def commands_at(ctx: Any, fig: FigureResult, events: int, key: str) -> None:
    dsn = await ctx.stack.fresh_database("growth")
    try:
        ctx.say(f"customer service with {events:,} events of history")
        await prefill_customer_database(dsn, events)
        service = ctx.service("customer", database_url=dsn, stream_prefix=f"f7{uuid.uuid4().hex[:6]}")
        with service:
            ctx.say("bringing its projections up to date")
            await bring_up_to_date(ctx, service.base_url, dsn)
            work = commands.workload(ctx, service)
            await work.setup(10 if ctx.quick else 200)
            ctx.say("measuring")
            seconds = 1.0 if ctx.quick else commands.FULL.seconds
            await commands.throughput(
                ctx,
                fig,
                service,
                work,
                [16],
                seconds,
                key=key,
                label=f"commands/s with {events:,} events stored",
                context=f", {events:,} events stored",
            )
    finally:
        await ctx.stack.drop_database(dsn)
    rate = fig.measurements[key]
    cost = fig.measure(f"{key}_us", f"µs per command with {events:,} events stored", "µs", higher_is_better=False)
    cost.runs = [1e6 / r for r in rate.runs]


def growth_ratio(fig: FigureResult, small: str, large: str, label: str) -> None:
    s, b = fig.measurements.get(small), fig.measurements.get(large)
    if s is None or b is None or not s.runs or not b.runs:
        return
    m = fig.measure(
        f"{large}_over_{small}",
        label,
        "×",
        higher_is_better=False,
        note="median cost at 10× the data / median cost at 1× (1.00 = flat)",
    )
    m.runs = [b.median / s.median]


async def run(ctx: Any, fig: FigureResult) -> None:
    command_events = QUICK_COMMAND_EVENTS if ctx.quick else FULL_COMMAND_EVENTS
    rebuild_events = QUICK_REBUILD_EVENTS if ctx.quick else FULL_REBUILD_EVENTS
    errors = []
    try:
        await commands_at(ctx, fig, command_events, "commands_1x")
        await commands_at(ctx, fig, command_events * FACTOR, "commands_10x")
        growth_ratio(fig, "commands_1x_us", "commands_10x_us", "command cost growth at 10× data")
    except Exception as exc:  # noqa: BLE001 - reported with the run's results
        errors.append(f"commands: {type(exc).__name__}: {exc}")
    try:
        # Quick mode keeps to the one-pass rebuild of all reports: rebuilding every projection
        # in turn at ten times the data would take most of the two minutes.
        platform = not ctx.quick
        await rebuild.measure(ctx, fig, rebuild_events, key_suffix="_1x", platform=platform)
        await rebuild.measure(ctx, fig, rebuild_events * FACTOR, key_suffix="_10x", platform=platform)
        growth_ratio(
            fig, "rebuild_us_per_event_1x", "rebuild_us_per_event_10x", "platform rebuild cost growth at 10× data"
        )
        growth_ratio(
            fig, "together_us_per_event_1x", "together_us_per_event_10x", "one-pass rebuild cost growth at 10× data"
        )
    except Exception as exc:  # noqa: BLE001 - reported with the run's results
        errors.append(f"rebuild: {type(exc).__name__}: {exc}")
    for e in errors:
        fig.fail(e)
    fig.notes.append(
        f"Commands: {command_events:,} and {command_events * FACTOR:,} stored events before the load; "
        f"rebuild: {rebuild_events:,} and {rebuild_events * FACTOR:,} events."
    )
    if ctx.quick:
        fig.notes.append(
            "At quick sizes fixed costs (schemas, process start, warm caches) weigh on the small "
            "point, so these ratios only show that the path works; the full run measures growth."
        )
