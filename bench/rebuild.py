"""Figure 5: rebuild every reporting projection from N events.

A synthetic sales history (bench/history.py: order.placed, order.delivered, visits, customers,
…) is COPYed straight into a fresh reporting database's `events` table, as the reporting
service keeps copies of other services' events. A separate process (bench/rebuild_worker.py)
then rebuilds each projection of `reporting_service.bootstrap.definition()` with
`salesplatform.projections.rebuild`, one after another and then all reports in one pass, while a
task keeps reading all projections; failed reads must be zero.

Figures: log events per second through one projection's rebuild (N × projections / total
time), the same for all projections one after another (N / total time), and a raw replay of
this very log (server cursor + orjson.loads) for comparison. Baseline: the raw replay of
321-byte envelopes. Goals: ≥ 100,000 events/s and ≥ 0.4× raw replay.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import orjson

from bench.harness import FigureResult, Goal, Ratio, ensure_service_importable, run_worker
from bench.history import EVENT_COLUMNS, History, chunks

TITLE = "Rebuild of all reporting projections from N events"
# Baselines measured just before this figure, so that both see the same machine.
BASELINES: tuple[str, ...] = ("pg_replay",)
FULL_EVENTS = 1_000_000
QUICK_EVENTS = 20_000
GOAL_EVENTS_PER_SECOND = 100_000
GOAL_REPLAY_FACTOR = 0.4
GOAL_ONE_PASS_FACTOR = 0.9


def reporting_projections() -> tuple[Any, list[Any]]:
    """The reporting service's definition and every projection it has (catch-up and inline)."""
    ensure_service_importable("reporting")
    from reporting_service.bootstrap import definition
    from salesplatform.clock import SystemClock

    defn = definition()
    bus = defn.build_bus(defn.registry, SystemClock())
    return defn, list(defn.projections) + list(bus.inline_projections)


async def prepare_database(dsn: str, defn: Any, projections: list[Any]) -> None:
    """The reporting service's schema, as its start would leave it: migrated, generation 1 of
    every projection."""
    from salesplatform.migrations import migrate
    from salesplatform.projections import ensure_projection
    from salesplatform.store import init_connection

    conn = await asyncpg.connect(dsn)
    try:
        await init_connection(conn)
        await migrate(conn, defn.migrations)
        for projection in projections:
            await ensure_projection(conn, projection)
    finally:
        await conn.close()


async def load_history(dsn: str, count: int, history: History | None = None, batch: int = 5000) -> float:
    """COPY `count` history events into `events` (5000 per transaction); returns events/s."""
    history = history or History()
    conn = await asyncpg.connect(dsn)
    try:
        start = time.perf_counter()
        for rows in chunks(history.rows(count), batch):
            async with conn.transaction():
                await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
        elapsed = time.perf_counter() - start
        await conn.execute("VACUUM ANALYZE events")
        return count / elapsed
    finally:
        await conn.close()


async def event_mix(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT event_type, count(*) AS n FROM events GROUP BY 1 ORDER BY 2 DESC")
        return {r["event_type"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def replay_log(dsn: str) -> tuple[int, float]:
    """The raw replay of this log: server cursor in log order + orjson.loads of data and actor."""
    conn = await asyncpg.connect(dsn)
    try:
        seen = 0
        start = time.perf_counter()
        async with conn.transaction():
            async for record in conn.cursor(
                "SELECT actor::text, data::text FROM events ORDER BY tx_id, position", prefetch=5000
            ):
                orjson.loads(record[0])
                orjson.loads(record[1])
                seen += 1
        return seen, seen / (time.perf_counter() - start)
    finally:
        await conn.close()


def run_rebuild_worker(
    ctx: Any, dsn: str, names: list[str], together: list[str], runs: int, platform: bool
) -> dict[str, Any]:
    job = {
        "dsn": dsn,
        "runs": runs,
        "readable": names,
        "projections": names,
        "platform": platform,
        "together": together,
    }
    return run_worker(ctx, "bench.rebuild_worker", job, label="reporting-rebuild", service="reporting")


async def measure(
    ctx: Any, fig: FigureResult, events: int, *, key_suffix: str = "", runs: int | None = None, platform: bool = True
) -> None:
    """Load `events` into a fresh reporting database and rebuild all projections `runs` times:
    with the platform's rebuild one by one (unless `platform` is false) and all reports in one
    pass."""
    runs = runs or ctx.runs
    defn, projections = reporting_projections()
    names = [p.name for p in projections]
    reports = [p.name for p in defn.projections]  # the catch-up ones: what the one-pass rebuild takes
    dsn = await ctx.stack.fresh_database("rebuild")
    try:
        await prepare_database(dsn, defn, projections)
        ctx.say(f"loading {events:,} history events by COPY")
        load_rate = await load_history(dsn, events)
        fig.details.setdefault("event_mix", await event_mix(dsn))
        fig.details[f"load_events_per_second{key_suffix}"] = round(load_rate)
        replay = fig.measure(
            f"replay_same_log{key_suffix}", f"raw replay of this log{_n(key_suffix, events)}", "events/s"
        )
        for _ in range(runs):
            _, replay_rate = await replay_log(dsn)
            replay.add(replay_rate)
        ctx.say(f"rebuilding {len(names)} projections × {runs} runs")
        result = await asyncio.to_thread(run_rebuild_worker, ctx, dsn, names, reports, runs, platform)
    finally:
        await ctx.stack.drop_database(dsn)
    n = _n(key_suffix, events)
    per = fig.measure(
        f"rebuild_rate{key_suffix}",
        f"log events/s through one projection's rebuild{n}",
        "events/s",
        note="N × projections / total rebuild time",
    )
    every = fig.measure(
        f"rebuild_all_rate{key_suffix}",
        f"log events/s, all projections in turn{n}",
        "events/s",
        note="N / total rebuild time",
    )
    cost = fig.measure(
        f"rebuild_us_per_event{key_suffix}",
        f"µs per event per projection{_n(key_suffix, events)}",
        "µs",
        higher_is_better=False,
    )
    failures = fig.measure(
        f"read_failures{key_suffix}",
        f"failed reads during rebuilds{_n(key_suffix, events)}",
        "reads",
        higher_is_better=False,
    )
    together_cost = fig.measure(
        f"together_us_per_event{key_suffix}",
        f"µs per event, all reports in one pass{_n(key_suffix, events)}",
        "µs",
        higher_is_better=False,
    )
    together = fig.measure(
        f"together_rate{key_suffix}",
        f"log events/s, all reports in one pass{_n(key_suffix, events)}",
        "events/s",
        note="N / time of one rebuild of every report",
    )
    by_projection: dict[str, list[float]] = {}
    for run in result["runs"]:
        failures.add(run["read_failures"])
        if run.get("together_seconds"):
            together.add(events / run["together_seconds"])
            together_cost.add(run["together_seconds"] / events * 1e6)
        if run.get("together_error"):
            fig.details[f"together_error{key_suffix}"] = run["together_error"]
        if run["seconds"]:
            total = sum(run["seconds"].values())
            per.add(events * len(names) / total)
            every.add(events / total)
            cost.add(total / (events * len(names)) * 1e6)
        for name, seconds in run["seconds"].items():
            by_projection.setdefault(name, []).append(events / seconds)
        if run["read_failure_samples"]:
            fig.details.setdefault(f"read_failure_samples{key_suffix}", run["read_failure_samples"])
    fig.details[f"events{key_suffix}"] = events
    fig.details[f"one_pass_rebuild_available{key_suffix}"] = result.get("together_available", False)
    for m in (per, every, cost, together, together_cost):
        if not m.runs:
            fig.measurements.pop(m.key)
    fig.details[f"projections{key_suffix}"] = names
    fig.details[f"reads{key_suffix}"] = [r["reads"] for r in result["runs"]]
    fig.details[f"per_projection_events_per_second{key_suffix}"] = {
        n: round(sorted(v)[len(v) // 2]) for n, v in by_projection.items()
    }
    apply_failures = result["runs"][-1]["apply_failures"] if result["runs"] else 0
    fig.details[f"projection_apply_failures{key_suffix}"] = apply_failures
    if apply_failures:
        fig.notes.append(
            f"{apply_failures} history events could not be applied by some projection "
            "(kept in projection_failures): the synthetic history and a projection disagree."
        )


def _n(suffix: str, events: int) -> str:
    return f" (N={events:,})" if suffix else ""


async def run(ctx: Any, fig: FigureResult) -> None:
    events = ctx.rebuild_events or (QUICK_EVENTS if ctx.quick else FULL_EVENTS)
    ways = [("rebuild_rate", "platform rebuild, per projection")]
    fig.ratios += [
        Ratio("rebuild_rate", "pg_replay"),
        Ratio("rebuild_rate", "replay_same_log"),
        Ratio("replay_same_log", "pg_replay"),
    ]
    fig.goals.append(Goal("no failed read during rebuilds", "read_failures", at_least=False, target=0, stat="max"))
    ways.append(("together_rate", "all reports, one-pass rebuild"))
    fig.ratios += [Ratio("together_rate", "pg_replay"), Ratio("together_rate", "replay_same_log")]
    fig.goals.append(
        Goal(
            f"one-pass rebuild of all reports ≥ {GOAL_ONE_PASS_FACTOR}× raw replay of the same log",
            "together_rate",
            baseline="replay_same_log",
            factor=GOAL_ONE_PASS_FACTOR,
        )
    )
    for key, what in ways:
        fig.goals += [
            Goal(f"{what} ≥ {GOAL_EVENTS_PER_SECOND:,} events/s", key, target=GOAL_EVENTS_PER_SECOND),
            Goal(f"{what} ≥ {GOAL_REPLAY_FACTOR}× raw replay", key, baseline="pg_replay", factor=GOAL_REPLAY_FACTOR),
        ]
    # A million events through every projection takes minutes a run: the full run does the
    # minimum of three runs here.
    await measure(ctx, fig, events, runs=min(ctx.runs, 3))
    fig.notes.append(
        f"N = {events:,} events ({_mix(fig)}). Platform pass: {len(fig.details['projections'])} "
        "projections rebuilt one after another with salesplatform.projections.rebuild, each reading "
        "the whole log; then one rebuild of all reports in one pass over the log. "
        "Reads of every projection continued throughout."
    )


def _mix(fig: FigureResult) -> str:
    mix = fig.details.get("event_mix") or {}
    return ", ".join(f"{t} {n:,}" for t, n in list(mix.items())[:6]) or "synthetic sales history"
