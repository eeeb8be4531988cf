"""`make bench` / `make bench-quick`: baselines, then every figure, then the report.

    .venv/bin/python -m bench            full run (half an hour or more: 1,000,000-event rebuild, growth at 10×)
    .venv/bin/python -m bench --quick    every figure at small size, under two minutes
    .venv/bin/python -m bench --only 1,5 some figures (with the baselines they are compared with)

The run starts its own PostgreSQL and NATS on free loopback ports in a temporary directory and
removes it afterwards (`--keep` keeps it, with the service logs). Results go to
bench/results/<date>.json and .md; the markdown is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from bench import baselines as base
from bench import pg_statements as statements
from bench.harness import (
    RESULTS_DIR,
    FigureResult,
    Goal,
    Measurement,
    MemorySampler,
    ServiceProcess,
    Stack,
    cpu_line,
    error_text,
    machine,
    markdown,
    new_work_dir,
    versions,
    write_report,
)
from bench.profiling import Profile, render, sampling

MEMORY_GOAL_MB = 120.0
MEMORY_FIGURES = {"1", "2", "3", "4", "5"}


@dataclass
class Context:
    """What a figure gets: the servers, the mode, the baselines, and helpers to start services."""

    stack: Stack
    quick: bool
    runs: int
    work_dir: Path
    sampler: MemorySampler
    baselines: dict[str, Measurement]
    log_level: str = "INFO"
    rebuild_events: int | None = None  # figure 5's N, when not the mode's default
    http_client: str = "keepalive"  # figure 1's load generator (bench/load.py)
    lag_rate: float = 1_000.0  # figure 3's fixed rate for the lag runs (the goal's)
    figure: str = ""
    profile: bool = True  # py-spy samples the last measured run of each figure
    profiles: list[Profile] = field(default_factory=list)
    peaks: dict[str, list[float]] = field(default_factory=dict)  # service -> peak RSS per process
    _started: int = 0
    figure_started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"  [{self.figure or '-'} +{time.monotonic() - self.figure_started:4.1f}s] {text}", flush=True)

    def service(
        self, name: str, *, database_url: str, stream_prefix: str, extra_env: Mapping[str, str] | None = None
    ) -> ServiceProcess:
        """A service process (not started) on its own database and stream prefix."""
        return ServiceProcess(
            name,
            database_url=database_url,
            nats_url=self.stack.nats.url,
            nats_password=self.stack.nats_passwords[name],
            jwks=self.stack.jwks,
            stream_prefix=stream_prefix,
            log_dir=self.work_dir / "logs",
            sampler=self.sampler,
            log_level=self.log_level,
            extra_env=extra_env,
            label=self.process_label(name),
        )

    def process_label(self, name: str) -> str:
        """`<service>#<figure>.<n>`: memory is reported per process, grouped by service."""
        self._started += 1
        return f"{name}#{self.figure}.{self._started}"

    def token(self, actor_id: str, role: str, district: str | None = None, area: str | None = None) -> str:
        from salesplatform.auth import mint
        from salesplatform.events import Actor

        return mint(Actor(id=actor_id, role=role, district=district, area=area), self.stack.signing_key)

    @contextlib.contextmanager
    def profiled(self, pid: int | None, label: str, *, last: bool = True) -> Iterator[None]:
        """Sample `pid` with py-spy during the block if it is a figure's last measured run.

        Sampling the last run rather than an extra one costs no time; py-spy reads the process
        from outside at 100 Hz (250 Hz in quick mode) without stopping it (about 1–2% of a
        core), so that run is perturbed a little and the median of the runs hardly at all."""
        if not self.profile or not last or self.figure == "7":
            yield
            return
        # Quick runs last a second or two: sample faster to get enough stacks from them.
        rate = 250 if self.quick else 100
        with sampling(pid, label, self.work_dir / "profiles", self.profiles, figure=self.figure, rate=rate):
            yield


FigureRun = Callable[[Context, FigureResult], Awaitable[None]]


@dataclass(frozen=True)
class Figure:
    number: str
    title: str
    run: FigureRun
    baselines: tuple[str, ...]  # measured just before the figure


def figures() -> list[Figure]:
    """Every figure, in the order they run (6, memory, is made from the others)."""
    from bench import bulk_import, commands, end_to_end, growth, ingest, rebuild

    modules = [("1", commands), ("2", ingest), ("3", end_to_end), ("4", bulk_import), ("5", rebuild), ("7", growth)]
    return [Figure(n, m.TITLE, m.run, m.BASELINES) for n, m in modules]


async def run_figure(ctx: Context, figure: Figure) -> FigureResult:
    """Measure the figure's baselines, then the figure; whatever goes wrong becomes an error
    entry, never the end of the run."""
    number, title, fn = figure.number, figure.title, figure.run
    fig = FigureResult(number, title)
    ctx.figure = number
    ctx.figure_started = started = time.monotonic()
    before = dict(ctx.sampler.peak_mb)
    print(f"Figure {number}: {title}", flush=True)
    if figure.baselines:
        fig.baselines, fig.baseline_errors = await base.measure(
            ctx.stack, list(figure.baselines), base.QUICK if ctx.quick else base.FULL, ctx.runs, say=ctx.say
        )
    try:
        if ctx.stack.pg_statements:
            await statements.reset(ctx.stack.admin_dsn)
        await fn(ctx, fig)
        if ctx.stack.pg_statements:
            fig.details["pg_statements"] = [
                s.to_dict() for s in await statements.top(ctx.stack.admin_dsn, ctx.stack.databases)
            ]
    except Exception as exc:  # noqa: BLE001 - reported with the run's results
        fig.fail(error_text(exc))
        if getattr(exc, "stderr", None):
            fig.details["worker_stderr"] = exc.stderr
        print(f"  figure {number} failed: {fig.error}", flush=True)
    fig.seconds = time.monotonic() - started
    # Peak RSS of every service process this figure started; figures 1–5 make figure 6.
    for label, peak in ctx.sampler.peak_mb.items():
        if before.get(label) != peak:
            fig.memory[label] = {"peak_mb": round(peak, 1)}
            if number in MEMORY_FIGURES:
                ctx.peaks.setdefault(label.split("#", 1)[0], []).append(peak)
    return fig


def memory_figure(ctx: Context) -> FigureResult:
    """Figure 6: the highest RSS each service process reached during figures 1–5."""
    fig = FigureResult("6", "Memory: peak RSS of each service process during figures 1–5")
    for service, peaks in sorted(ctx.peaks.items()):
        m = fig.measure(
            f"peak_rss_{service}",
            f"peak RSS, {service}",
            "MB",
            higher_is_better=False,
            note="one value per process started; the goal applies to the highest",
        )
        for peak in peaks:
            m.add(peak)
        fig.goals.append(
            Goal(
                f"{service}: peak RSS ≤ {MEMORY_GOAL_MB:.0f} MB",
                m.key,
                at_least=False,
                target=MEMORY_GOAL_MB,
                stat="max",
            )
        )
    if not fig.measurements:
        fig.fail("no service process ran, so no memory was measured")
    fig.notes.append(
        "RSS is sampled every 0.2 s from /proc/<pid>/status (VmRSS) and the kernel's "
        "high-water mark VmHWM is read before each process stops."
    )
    return fig


def slowest(results: list[FigureResult], baselines: Mapping[str, Measurement]) -> str | None:
    """The figure furthest below one of its goals (lowest ratio to goal), among those with a
    service under load; ties and all-met go to the lowest ratio anyway."""
    worst: tuple[float, str] | None = None
    for fig in results:
        if fig.figure not in {"1", "2", "3", "4", "5"}:
            continue
        for goal in fig.goals:
            ev = goal.evaluate(fig, fig.compared_with(baselines))
            if ev["ratio_to_goal"] is None:
                continue
            if worst is None or ev["ratio_to_goal"] < worst[0]:
                worst = (ev["ratio_to_goal"], fig.figure)
    return worst[1] if worst else None


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    runs = args.runs or (3 if quick else 5)
    only = set(args.only.split(",")) if args.only else None
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    work_dir = new_work_dir(args.work_dir)
    stack = Stack(work_dir, pg_statements=args.pg_statements)
    sampler = MemorySampler()
    report: dict[str, Any] = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "runs": runs,
        "machine": machine(),
        "versions": versions(),
        "settings": {
            "postgres": "default settings (fsync on)" + (", pg_stat_statements loaded" if args.pg_statements else ""),
            "service_log_level": args.log_level,
            "http_client": args.http_client,
        },
    }
    print(f"Benchmark ({report['mode']} mode, {runs} runs per figure); servers in {work_dir}", flush=True)
    ctx = Context(
        stack,
        quick,
        runs,
        work_dir,
        sampler,
        {},
        log_level=args.log_level,
        profile=not args.no_profile,
        rebuild_events=args.rebuild_events,
        http_client=args.http_client,
        lag_rate=args.lag_rate,
    )
    results: list[FigureResult] = []
    report.update(baselines={}, baseline_errors={}, figures=[], profile=None)
    try:
        try:
            stack.start()
        except Exception as exc:  # noqa: BLE001 - reported with the run's results
            # Without servers nothing can be measured; the report still says why.
            reason = f"the benchmark's own PostgreSQL/NATS did not start: {error_text(exc)}"
            report["error"] = reason
            for figure in figures():
                failed = FigureResult(figure.number, figure.title)
                failed.fail(reason)
                results.append(failed)
        else:
            chosen = [f for f in figures() if only is None or f.number in only]
            # Each figure's baselines are measured just before it; the others once, here.
            adjacent = {key for f in chosen for key in f.baselines}
            print("Baselines", flush=True)
            measured, errors = await base.measure(
                stack,
                [k for k in base.CASES if k not in adjacent],
                base.QUICK if quick else base.FULL,
                runs,
                say=lambda text: print(f"  {text}", flush=True),
            )
            ctx.baselines = measured
            report["baselines"] = {k: m.to_dict() for k, m in measured.items()}
            report["baseline_errors"] = errors
            for figure in chosen:
                results.append(await run_figure(ctx, figure))
            if only is None or "6" in only:
                results.append(memory_figure(ctx))
        results.sort(key=lambda f: f.figure)
        report["figures"] = [f.to_dict(ctx.baselines) for f in results]
        report["profile"] = profile_report(ctx, results) if not args.no_profile else None
    finally:
        sampler.close()
        stack.stop()
        if args.keep:
            print(f"Kept {work_dir} (server data, service logs, profiles)", flush=True)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    report["seconds"] = time.monotonic() - t0
    return report


def profile_report(ctx: Context, results: list[FigureResult]) -> dict[str, Any]:
    """Where time goes on the slowest path: the figure furthest below one of its goals, from the
    CPU time of each process during its runs and the py-spy samples of its last measured run.
    Every figure's profile is kept in the JSON."""
    summaries = [p.summary() for p in ctx.profiles]
    number = slowest(results, ctx.baselines)
    if number is None:
        return {"summary": "No figure has a measured goal, so there is no slowest path.", "profiles": summaries}
    fig = next(f for f in results if f.figure == number)
    chosen = [s for s in summaries if s.get("figure") == number]
    sentences = [f"Slowest path: figure {number} ({fig.title}), the furthest below its goal."]
    cpu = fig.cpu_per_event()
    if cpu:
        of, per_process = next(iter(cpu.items()))
        sentences.append(f"CPU µs per event of {fig.measurements[of].label} (median): {cpu_line(per_process)}.")
    for s in chosen:
        if "error" in s:
            continue
        parts = ", ".join(f"{name} {pct:.0f}%" for name, pct in s["self_by_part_percent"][:4])
        own = ", ".join(
            f"{name.split(' (')[0]} {pct:.0f}%" for name, pct in s.get("top_own_functions_inclusive_percent", [])[:5]
        )
        sentences.append(
            f"In {s['label']}, busy time by innermost frame: {parts}; the project's own functions "
            f"with the most time under them: {own}."
        )
    if not chosen:
        sentences.append(
            "No py-spy profile was taken for it (py-spy missing, or the figure failed before its last run)."
        )
    top: list[str] = []
    for s in chosen:
        top += [*render(s), ""]
    return {"figure": number, "summary": " ".join(sentences), "top": top, "profiles": summaries}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="every figure at small size (under 2 minutes)")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (default 5, quick 3; at least 3)")
    parser.add_argument("--only", default=None, help="comma-separated figure numbers, e.g. 1,5")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the servers live (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (data, logs, profiles)")
    parser.add_argument("--log-level", default="INFO", help="the services' LOG_LEVEL (default INFO, as deployed)")
    parser.add_argument(
        "--no-profile", action="store_true", help="do not sample the last run of each figure with py-spy"
    )
    parser.add_argument(
        "--http-client",
        choices=("keepalive", "httpx"),
        default="keepalive",
        help="figure 1's load generator: the light keep-alive client (default) or httpx",
    )
    parser.add_argument(
        "--rebuild-events", type=int, default=None, help="N of figure 5 (default 1,000,000; quick 20,000)"
    )
    parser.add_argument(
        "--lag-rate",
        type=float,
        default=1_000.0,
        help="figure 3's orders/s in the lag runs (default 1,000, the goal's; another rate has no goal)",
    )
    parser.add_argument(
        "--pg-statements",
        action="store_true",
        help="load pg_stat_statements and report each figure's PostgreSQL time by statement",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results directory")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 3:
        parser.error("--runs must be at least 3: a median needs repeated runs")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The report is the output; library events only when they warn.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    logging.basicConfig(level=logging.WARNING)
    report = asyncio.run(main_async(args))
    json_path, md_path = write_report(report, args.out)
    print()
    print(markdown(report))
    print(f"Results: {json_path}  {md_path}", flush=True)
    failed = [f for f in report.get("figures", []) if f["status"] != "ok"]
    return 1 if failed and len(failed) == len(report.get("figures", [])) else 0


if __name__ == "__main__":
    sys.exit(main())
