"""Figure 4: bulk import of history through the orders service's importer, against raw COPY.

The measurement, `bench.import_worker.bench_import_async(n)`: a scratch database with customers
and a catalogue, `n` synthetic history records (orders, deliveries, payments) imported through
the importer, validated against the catalogue, the
customer directory and what came before, appended with their outbox rows and inline read
models. It runs here in its own process (bench/import_worker.py), once per run.

Figure: events appended per second. Baseline: asyncpg COPY of 321-byte envelopes, 5000 rows per
transaction, measured in this run; the importer's own COPY of the very events it appended is
reported beside it. Goal: ≥ 0.5× that COPY of the same events.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.harness import FigureResult, Goal, Ratio, ensure_service_importable, run_worker

TITLE = "Bulk import of history through the orders importer"
# Baselines measured just before this figure, so that both see the same machine.
BASELINES: tuple[str, ...] = ("pg_copy",)
QUICK_RECORDS = 6_000
FULL_RECORDS = 200_000
GOAL_COPY_FACTOR = 0.5


async def run(ctx: Any, fig: FigureResult) -> None:
    fig.ratios += [Ratio("events_per_second", "pg_copy"), Ratio("events_per_second", "same_events_copy")]
    fig.goals.append(
        Goal(
            f"import ≥ {GOAL_COPY_FACTOR}× raw COPY of the same events",
            "events_per_second",
            baseline="same_events_copy",
            factor=GOAL_COPY_FACTOR,
        )
    )
    ensure_service_importable("orders")
    records = QUICK_RECORDS if ctx.quick else FULL_RECORDS
    events = fig.measure("events_per_second", "events imported/s", "events/s")
    per_record = fig.measure("records_per_second", "records imported/s", "records/s")
    same_copy = fig.measure("same_events_copy", "raw COPY of the same events (one COPY)", "events/s")
    rerun = fig.measure("rerun_seconds", "re-import of the same file (appends nothing)", "s", higher_is_better=False)
    ctx.say(f"importing {records:,} history records × {ctx.runs} runs")
    for run in range(ctx.runs):
        result = await asyncio.to_thread(
            run_worker,
            ctx,
            "bench.import_worker",
            {"records": records, "admin_dsn": ctx.stack.admin_dsn},
            label="orders-importer",
            service="orders",
            profile=run == ctx.runs - 1,
        )
        if not result.get("events") or not result.get("seconds"):
            raise RuntimeError(f"the import appended nothing: {result}")
        events.add(result["events"] / result["seconds"])
        per_record.add(result["records"] / result["seconds"])
        if result.get("raw_copy_seconds"):
            same_copy.add(result["events"] / result["raw_copy_seconds"])
        if result.get("rerun_seconds") is not None:
            rerun.add(result["rerun_seconds"])
        fig.details.setdefault("runs", []).append(result)
        if result.get("rejected"):
            fig.notes.append(f"{result['rejected']} of {result['records']} records were rejected in a run.")
        if result.get("rerun_events_appended"):
            fig.notes.append(f"the re-import appended {result['rerun_events_appended']} events (should be 0).")
    fig.notes.append(
        f"{records:,} records per run (about half orders, three in ten deliveries, two in ten "
        "payments), each run on a fresh scratch database; the rate counts the import only."
    )
    fig.notes.append(
        "The worker's peak RSS is the importer's: the raw COPY comparison, which holds every "
        "appended event in memory, runs in a process of its own."
    )
