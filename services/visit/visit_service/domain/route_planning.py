"""Route planning (路序, 智能排线): the problem, the rules it must keep and how a plan is measured.

A rep's outlets are visited at a frequency set by their grade (A weekly, B every two weeks, C
every four, by default; an outlet without a grade like the least frequent grade). A plan covers
one cycle of weeks — the least common multiple of the frequencies in use (four by default) —
and says, for each week of the cycle and each working day, which outlets are visited in which
order, starting from and returning to the rep's start point. Each outlet is visited on one
weekday, in weeks exactly its frequency apart, so an A outlet is seen every Monday, a B outlet
every other Tuesday. A day's work (travel at the planning speed plus the standard visit
duration per outlet) fits the working hours.

Distance between two points is the haversine distance unless a distance matrix is supplied;
a plan's length is the sum of its days' loops (start → outlets in order → start). The current
routes are measured the same way over the same weeks, so the two can be compared side by side.

Pure: the solver that finds a plan lives in `adapters/route_solver.py`; these functions check
and measure what it found.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from visit_service.domain.geo import Point, haversine_m
from visit_service.domain.planning import RouteSheet, stops_for

START = "start"  # the start point's key in a distance matrix
DEFAULT_FREQUENCY_WEEKS: Mapping[str, int] = {"A": 1, "B": 2, "C": 4}


@dataclass(frozen=True)
class PlanningRules:
    """The numbers a plan is made with (defaults: VISIT_PLAN_* settings)."""

    frequency_weeks: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_FREQUENCY_WEEKS))
    visit_minutes: int = 20
    day_start_minute: int = 8 * 60 + 30  # 08:30
    day_end_minute: int = 17 * 60 + 30  # 17:30
    workdays: tuple[int, ...] = (1, 2, 3, 4, 5)
    speed_kmh: float = 25.0
    time_limit_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.frequency_weeks or any(w < 1 for w in self.frequency_weeks.values()):
            raise ValueError("every frequency is at least one week")
        if self.day_end_minute <= self.day_start_minute:
            raise ValueError("the working day ends after it starts")
        if (
            not self.workdays
            or any(d < 1 or d > 7 for d in self.workdays)
            or len(set(self.workdays)) != len(self.workdays)
        ):
            raise ValueError("workdays are distinct ISO weekdays 1..7")
        if self.visit_minutes < 1 or self.speed_kmh <= 0 or self.time_limit_seconds <= 0:
            raise ValueError("visit minutes, speed and time limit are positive")

    @property
    def working_minutes(self) -> int:
        return self.day_end_minute - self.day_start_minute

    def weeks_for(self, grade: str | None) -> int:
        """How many weeks apart an outlet of this grade is visited; ungraded: the longest."""
        if grade is not None and grade in self.frequency_weeks:
            return self.frequency_weeks[grade]
        return max(self.frequency_weeks.values())


@dataclass(frozen=True)
class Outlet:
    customer_id: str
    grade: str | None
    position: Point


@dataclass(frozen=True)
class PlanningProblem:
    rep_id: str
    start: Point
    outlets: tuple[Outlet, ...]
    rules: PlanningRules
    # Metres between points by key (customer ids and START), when supplied; else haversine.
    matrix: Mapping[str, Mapping[str, float]] | None = None

    @property
    def cycle_weeks(self) -> int:
        return cycle_weeks(self.rules.weeks_for(o.grade) for o in self.outlets)

    def position_of(self, key: str) -> Point:
        if key == START:
            return self.start
        return self._positions[key]

    @property
    def _positions(self) -> dict[str, Point]:
        return {o.customer_id: o.position for o in self.outlets}

    def distance_m(self, a: str, b: str) -> float:
        if a == b:
            return 0.0
        if self.matrix is not None:
            return float(self.matrix[a][b])
        return haversine_m(self.position_of(a), self.position_of(b))


def cycle_weeks(weeks: Iterable[int]) -> int:
    """The weeks after which every outlet's visits repeat: the lcm of the frequencies."""
    out = 1
    for w in weeks:
        out = math.lcm(out, w)
    return out


@dataclass(frozen=True)
class DaySheet:
    """One working day of a plan: week of the cycle (1-based), ISO weekday, outlets in order."""

    week: int
    weekday: int
    customer_ids: tuple[str, ...]


def check_matrix(matrix: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> list[str]:
    """What is wrong with a supplied distance matrix for these keys (empty: nothing)."""
    problems = []
    for a in keys:
        row = matrix.get(a)
        if row is None:
            problems.append(f"no row for {a}")
            continue
        for b in keys:
            if a == b:
                continue
            value = row.get(b)
            if value is None:
                problems.append(f"no distance from {a} to {b}")
            elif not math.isfinite(value) or value < 0:
                problems.append(f"the distance from {a} to {b} is not a non-negative number")
    return problems


def loop_distance_m(problem: PlanningProblem, customer_ids: Sequence[str]) -> float:
    """Start → each outlet in order → start."""
    if not customer_ids:
        return 0.0
    stops = [START, *customer_ids, START]
    return sum(problem.distance_m(a, b) for a, b in itertools.pairwise(stops))


def day_minutes(problem: PlanningProblem, customer_ids: Sequence[str]) -> float:
    """Travel at the planning speed plus the standard visit duration at each outlet."""
    travel_m = loop_distance_m(problem, customer_ids)
    return travel_m / (problem.rules.speed_kmh * 1000 / 60) + problem.rules.visit_minutes * len(customer_ids)


def plan_distance_m(problem: PlanningProblem, sheets: Iterable[DaySheet]) -> float:
    return sum(loop_distance_m(problem, s.customer_ids) for s in sheets)


@dataclass(frozen=True)
class Breach:
    customer_id: str
    problem: str


def frequency_breaches(problem: PlanningProblem, sheets: Sequence[DaySheet]) -> list[Breach]:
    """Every way a plan breaks the rules: an outlet visited more or less often than its grade
    says, on different weekdays, at uneven spacing, twice a day; a visit on a day off, to an
    outlet not in the problem, or a day longer than the working hours."""
    cycle = problem.cycle_weeks
    breaches: list[Breach] = []
    known = {o.customer_id: o for o in problem.outlets}
    seen: dict[str, list[tuple[int, int]]] = {}
    for sheet in sheets:
        if sheet.weekday not in problem.rules.workdays or not 1 <= sheet.week <= cycle:
            breaches.append(Breach("", f"week {sheet.week} weekday {sheet.weekday} is not a working day of the plan"))
        if len(set(sheet.customer_ids)) != len(sheet.customer_ids):
            breaches.append(Breach("", f"week {sheet.week} weekday {sheet.weekday} visits an outlet twice"))
        if day_minutes(problem, sheet.customer_ids) > problem.rules.working_minutes + 1e-6:
            breaches.append(Breach("", f"week {sheet.week} weekday {sheet.weekday} is longer than the working day"))
        for cid in sheet.customer_ids:
            if cid not in known:
                breaches.append(Breach(cid, "not an outlet of the plan"))
            seen.setdefault(cid, []).append((sheet.week, sheet.weekday))
    for cid, outlet in known.items():
        weeks = problem.rules.weeks_for(outlet.grade)
        visits = sorted(seen.get(cid, []))
        if len(visits) != cycle // weeks:
            breaches.append(Breach(cid, f"visited {len(visits)} times in {cycle} weeks, not {cycle // weeks}"))
            continue
        if len({d for _, d in visits}) > 1:
            breaches.append(Breach(cid, "visited on different weekdays"))
        gaps = {b - a for (a, _), (b, _) in itertools.pairwise(visits)}
        if gaps - {weeks}:
            breaches.append(Breach(cid, f"visits not {weeks} weeks apart"))
    return breaches


# -- routes over a cycle of real weeks ---------------------------------------------------------


def monday_of(day: date) -> date:
    return day - timedelta(days=day.isoweekday() - 1)


def cycle_days(effective_from: date, weeks: int, workdays: Sequence[int]) -> list[tuple[int, int, date]]:
    """(week 1.., weekday, date) of each working day of the cycle starting the week of
    `effective_from`."""
    monday = monday_of(effective_from)
    return [(w, d, monday + timedelta(days=7 * (w - 1) + d - 1)) for w in range(1, weeks + 1) for d in sorted(workdays)]


def current_sheets(routes: Sequence[RouteSheet], effective_from: date, weeks: int) -> list[DaySheet]:
    """What the routes as they are would have the rep visit on every day of the same weeks
    (every weekday: hand-made routes may run on days the plan does not use)."""
    return [
        DaySheet(w, d, tuple(s.customer_id for s in stops_for(routes, day)))
        for w, d, day in cycle_days(effective_from, weeks, range(1, 8))
    ]


@dataclass(frozen=True)
class Comparison:
    current_m: float
    proposed_m: float
    # Outlets on the current routes whose position is unknown: left out of the current length.
    unmeasured: tuple[str, ...]


def compare(
    problem: PlanningProblem,
    current: Sequence[DaySheet],
    proposed: Sequence[DaySheet],
    other_positions: Mapping[str, Point],
) -> Comparison:
    """The current and proposed plans' lengths over the same weeks. Outlets on the current
    routes that are not planned (lost ones, say) are measured by `other_positions`; those
    with no position at all are left out and named."""
    planned = {o.customer_id for o in problem.outlets}
    positions = {**other_positions, **{o.customer_id: o.position for o in problem.outlets}}

    def distance(a: str, b: str) -> float:
        if a in planned | {START} and b in planned | {START}:
            return problem.distance_m(a, b)
        return haversine_m(problem.start if a == START else positions[a], problem.start if b == START else positions[b])

    unmeasured = sorted({c for s in current for c in s.customer_ids if c not in positions})
    current_m = 0.0
    for sheet in current:
        stops = [START, *(c for c in sheet.customer_ids if c in positions), START]
        if len(stops) > 2:
            current_m += sum(distance(a, b) for a, b in itertools.pairwise(stops))
    return Comparison(
        current_m=round(current_m, 1),
        proposed_m=round(plan_distance_m(problem, proposed), 1),
        unmeasured=tuple(unmeasured),
    )
