"""Timers: jobs a service runs on a period, as the service itself (SLA flags, the end of a
business day, the 7-day follow-up rule).

A `Timer` names its job, how often it runs and whether it also runs as each business day begins
(in the company's time zone, `COMPANY_TIMEZONE`), so a job about "today" does not wait up to a
period after midnight. A job reads what is due from the read models and sends a command per
thing due with `send_system_commands`, as `service:<service>:<job>`, each under an idempotency
key made from what it is about: a job may run any number of times, on any number of replicas,
and the aggregates decide again (something done meanwhile is refused as not due). Every job
answers with one summary, a `TimerRun`, which the runtime logs (`timer_ran`, when it did
anything) and counts in `/metrics` (`sales_timer_commands_total{timer, outcome}`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from salesplatform.clock import business_date, end_of_business_day
from salesplatform.commands import Outcome, Request
from salesplatform.events import Actor

if TYPE_CHECKING:
    from salesplatform.service import Runtime

log = structlog.get_logger(__name__)

# Commands sent in one group commit: large enough to share commits, small enough that one
# transaction stays short.
BATCH = 200


@dataclass
class TimerRun:
    """What one run of a timer did, by what each command was about (`SystemCommand.subject`):
    `done`, by command, the ones that changed something now; `already`, done before (the same
    key replayed, or nothing left to do); `not_due`, refused with an expected refusal (the
    aggregate decided it was not due after all); `refused`, refused otherwise (logged as a
    warning). `facts`: what else the job reports (the business date it planned)."""

    done: dict[str, list[str]] = field(default_factory=dict)
    already: list[str] = field(default_factory=list)
    not_due: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def of(self, command: str) -> list[str]:
        """What `command` did now."""
        return self.done.get(command, [])

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.done.values())

    def counts(self) -> dict[str, int]:
        """Commands by outcome: done, already, not_due, refused."""
        return {
            "done": self.count,
            "already": len(self.already),
            "not_due": len(self.not_due),
            "refused": len(self.refused),
        }

    def add(self, other: TimerRun) -> TimerRun:
        """This run and `other` as one (a job made of two steps)."""
        for command, subjects in other.done.items():
            self.done.setdefault(command, []).extend(subjects)
        self.already += other.already
        self.not_due += other.not_due
        self.refused += other.refused
        self.facts.update(other.facts)
        return self


@dataclass(frozen=True)
class SystemCommand:
    """A command a timer sends: `subject` is what it is about (an id, for the summary), `key`
    its idempotency key (made from what it is about, so a rerun sends the same key)."""

    name: str
    payload: dict[str, Any]
    key: str | None
    subject: str


async def send_system_commands(
    rt: Runtime, actor: Actor, commands: Sequence[SystemCommand], *, not_due: Collection[str] = ()
) -> TimerRun:
    """Send `commands` as `actor` (in group commits of `BATCH`), and say what they did. A
    refusal whose code is in `not_due` is expected; any other is logged."""
    run = TimerRun()
    for start in range(0, len(commands), BATCH):
        chunk = commands[start : start + BATCH]
        outcomes = await rt.bus.dispatch_many([Request(c.name, c.payload, actor, idempotency_key=c.key) for c in chunk])
        for command, outcome in zip(chunk, outcomes, strict=True):
            _note(run, command, outcome, not_due)
    return run


def _note(run: TimerRun, command: SystemCommand, outcome: Outcome, not_due: Collection[str]) -> None:
    if outcome.ok:
        if outcome.replayed or (outcome.result or {}).get("created") is False:
            run.already.append(command.subject)
        else:
            run.done.setdefault(command.name, []).append(command.subject)
    elif outcome.error is not None and outcome.error.code in not_due:
        run.not_due.append(command.subject)
    else:
        run.refused.append(command.subject)
        log.warning(
            "timer_command_refused",
            command=command.name,
            subject=command.subject,
            code=outcome.error.code if outcome.error else None,
            error=outcome.error.message if outcome.error else None,
        )


Job = Callable[["Runtime"], Awaitable[TimerRun]]


@dataclass(frozen=True)
class Timer:
    """A job the runtime runs every `every` seconds; with `at_day_start`, also as soon as each
    business day begins in the company's time zone."""

    name: str
    every: float
    job: Job
    at_day_start: bool = False

    def pause_after(self, now: datetime, timezone: str) -> float:
        """Seconds until the next run."""
        if not self.at_day_start:
            return self.every
        next_day = end_of_business_day(business_date(now, timezone), timezone)
        # A moment past the boundary, so the job sees the new day.
        return max(0.0, min(self.every, (next_day - now).total_seconds() + 0.5))


def log_run(timer: str, run: TimerRun) -> None:
    """The runtime's record of a run: logged when it did anything."""
    counts = run.counts()
    if any(counts.values()):
        log.info("timer_ran", timer=timer, **counts, **run.facts)
