"""Timers: a job sends its commands as one kind of summary, which the runtime logs and counts;
a job about the business day also runs as each day begins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import structlog
from tally import definition
from waiting import wait_for

from salesplatform import metrics
from salesplatform.events import Actor, Role
from salesplatform.service import Runtime
from salesplatform.timers import SystemCommand, Timer, TimerRun, send_system_commands

ERP = Actor(id="erp", role=Role.system)


def opening(sheet_id: str, title: str = "T") -> SystemCommand:
    return SystemCommand("open_sheet", {"sheet_id": sheet_id, "title": title}, f"open:{sheet_id}", sheet_id)


async def test_a_run_says_what_its_commands_did_and_is_logged_and_counted(service_settings) -> None:
    runs: list[TimerRun] = []

    async def open_sheets(rt: Runtime) -> TimerRun:
        assert (await rt.run_command("open_sheet", {"sheet_id": "old", "title": "T"}, ERP)).ok
        run = await send_system_commands(
            rt,
            ERP,
            # a new sheet, one opened before (not due), one sent twice under one key, a bad one
            [opening("a"), opening("old"), opening("b"), opening("b"), opening("c", title="")],
            not_due={"sheet_exists"},
        )
        runs.append(run)
        return run

    defn = definition()
    defn.timers = [Timer("sheets", 3600.0, open_sheets)]
    with structlog.testing.capture_logs() as logs:
        async with Runtime(defn, service_settings) as rt:

            async def ran() -> bool:
                return bool(runs)

            await wait_for(ran, timeout=30)
            scraped = (await metrics.exposition(rt)).decode()
    run = runs[0]
    assert run.done == {"open_sheet": ["a", "b"]}
    assert run.already == ["b"] and run.not_due == ["old"] and run.refused == ["c"]
    assert run.counts() == {"done": 2, "already": 1, "not_due": 1, "refused": 1}
    for outcome, n in run.counts().items():
        assert f'sales_timer_commands_total{{outcome="{outcome}",service="tally",timer="sheets"}} {n}.0' in scraped
    ran_logs = [e for e in logs if e["event"] == "timer_ran"]
    assert [(e["timer"], e["done"], e["not_due"], e["refused"]) for e in ran_logs] == [("sheets", 2, 1, 1)]
    assert [e["subject"] for e in logs if e["event"] == "timer_command_refused"] == ["c"]


def test_a_timer_of_the_business_day_also_runs_as_the_day_begins() -> None:
    async def job(_: Runtime) -> TimerRun:
        return TimerRun()

    shanghai_23_59 = datetime(2026, 3, 2, 15, 59, tzinfo=UTC)  # 23:59 in Asia/Shanghai
    assert Timer("close", 300.0, job).pause_after(shanghai_23_59, "Asia/Shanghai") == 300.0
    day = Timer("close", 300.0, job, at_day_start=True)
    assert day.pause_after(shanghai_23_59, "Asia/Shanghai") == 60.5
    assert day.pause_after(shanghai_23_59 - timedelta(hours=1), "Asia/Shanghai") == 300.0
    # The same instant is mid-afternoon in London: the period decides.
    assert day.pause_after(shanghai_23_59, "Europe/London") == 300.0
