"""The route planner: Google OR-Tools' vehicle routing solver over one cycle of weeks.

OR-Tools' routing library is the standard open solver for vehicle routing with time limits
and side constraints, installs as a wheel for this Python, and its search is deterministic for
a fixed strategy: the same problem gives the same plan.

The plan is found in two steps, both with the routing solver:

1. Weekday zones: one vehicle per working day leaves the start point and comes back; each
   outlet is one stop weighing its visits in the cycle (A 4, B 2, C 1 in four weeks) and a
   day's zone holds at most its share of the cycle's visits plus a sixth (rounded up, and no
   more than its working time allows at the standard visit duration). The cost is the
   distance, so each weekday gets a compact part of the territory.
2. Weeks: in each zone, the outlets of a frequency of f weeks are cut, in the order the zone's
   tour meets them, into f runs; run k is visited in weeks k, k+f, … (A outlets every week), so
   every outlet keeps its weekday and its spacing. Each week's day is then ordered by a
   travelling-salesman solve from the start point.

Each solve starts from the path-cheapest-arc solution and descends to the nearest local optimum
(no randomness), within the time limit. A day that ends up longer than the working hours makes
the plan infeasible, with the reason.

The solver holds the interpreter's lock while it calls back and runs for seconds, so the
service runs it in a child process (`solve_in_subprocess`: JSON in on stdin, out on stdout),
which is killed if it outlives its time limit by more than a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

from visit_service.domain.geo import Point
from visit_service.domain.route_planning import (
    START,
    DaySheet,
    Outlet,
    PlanningProblem,
    PlanningRules,
    day_minutes,
)

STRATEGY = "PATH_CHEAPEST_ARC"
METAHEURISTIC = "GREEDY_DESCENT"
GRACE_SECONDS = 20.0  # starting the child and loading the solver
ZONE_SLACK = 1 / 6  # how much more than its share of the visits a weekday may hold


@dataclass(frozen=True)
class SolverResult:
    status: str  # solved | infeasible | failed
    sheets: tuple[DaySheet, ...]
    reason: str | None
    seconds: float
    distance_m: int | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": "ortools",
            "strategy": STRATEGY,
            "metaheuristic": METAHEURISTIC,
            "status": self.status,
            "seconds": round(self.seconds, 2),
        }


def _params(seconds: float) -> Any:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, STRATEGY)
    params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, METAHEURISTIC)
    params.time_limit.FromMilliseconds(max(1, int(seconds * 1000)))
    return params


def _tours(model: Any, manager: Any, solution: Any, vehicles: int) -> list[list[int]]:
    tours = []
    for vehicle in range(vehicles):
        nodes = []
        index = model.Start(vehicle)
        while not model.IsEnd(index):
            node = manager.IndexToNode(index)
            if node:
                nodes.append(node)
            index = solution.Value(model.NextVar(index))
        tours.append(nodes)
    return tours


def _order(nodes: list[int], distance: list[list[int]], seconds: float) -> list[int]:
    """The shortest loop found from the start point (node 0) through `nodes`."""
    from ortools.constraint_solver import pywrapcp

    if len(nodes) < 2:
        return list(nodes)
    sub = [0, *nodes]
    manager = pywrapcp.RoutingIndexManager(len(sub), 1, 0)
    model = pywrapcp.RoutingModel(manager)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix([[distance[a][b] for b in sub] for a in sub]))
    solution = model.SolveWithParameters(_params(seconds))
    if solution is None:
        return list(nodes)
    return [sub[n] for n in _tours(model, manager, solution, 1)[0]]


def zone_capacity(visits: int, days: int, rules: PlanningRules, weeks: int) -> int:
    """The most visits of the cycle one weekday's zone may hold."""
    share = math.ceil(visits / days * (1 + ZONE_SLACK))
    fits = (rules.working_minutes // rules.visit_minutes) * weeks
    return max(1, min(share, fits))


def solve(problem: PlanningProblem) -> SolverResult:
    """Plan the rep's cycle (in this process)."""
    from ortools.constraint_solver import pywrapcp

    started = time.monotonic()
    rules = problem.rules
    outlets = sorted(problem.outlets, key=lambda o: o.customer_id)
    if not outlets:
        return SolverResult("solved", (), None, 0.0, 0)
    weeks = problem.cycle_weeks
    workdays = sorted(rules.workdays)
    keys = [START, *(o.customer_id for o in outlets)]
    visits = [0, *(weeks // rules.weeks_for(o.grade) for o in outlets)]
    capacity = zone_capacity(sum(visits), len(workdays), rules, weeks)
    if sum(visits) > capacity * len(workdays) or max(visits) > capacity:
        return SolverResult(
            "infeasible",
            (),
            f"{sum(visits)} visits of {rules.visit_minutes} minutes in {weeks} weeks do not fit"
            f" {len(workdays)} working days of {rules.working_minutes} minutes a week",
            time.monotonic() - started,
        )
    distance = [[round(problem.distance_m(a, b)) for b in keys] for a in keys]

    # 1. A compact zone of outlets per weekday.
    manager = pywrapcp.RoutingIndexManager(len(keys), len(workdays), 0)
    model = pywrapcp.RoutingModel(manager)
    model.SetArcCostEvaluatorOfAllVehicles(model.RegisterTransitMatrix(distance))
    model.AddDimensionWithVehicleCapacity(
        model.RegisterUnaryTransitVector(visits), 0, [capacity] * len(workdays), True, "visits"
    )
    solution = model.SolveWithParameters(_params(rules.time_limit_seconds * 0.6))
    if solution is None:
        return SolverResult(
            "infeasible", (), "no split of the outlets over the working days was found", time.monotonic() - started
        )
    zones = _tours(model, manager, solution, len(workdays))

    # 2. Each zone's weeks: runs of each frequency in tour order, then each day in order.
    per_solve = rules.time_limit_seconds * 0.4 / max(1, weeks * len(workdays))
    sheets = []
    for weekday, zone in zip(workdays, zones, strict=True):
        by_week: dict[int, list[int]] = {w: [] for w in range(weeks)}
        for every in sorted({rules.weeks_for(outlets[n - 1].grade) for n in zone}):
            members = [n for n in zone if rules.weeks_for(outlets[n - 1].grade) == every]
            run = math.ceil(len(members) / every)
            for k in range(every):
                for week in range(k, weeks, every):
                    by_week[week].extend(members[k * run : (k + 1) * run])
        for week in range(weeks):
            order = _order(by_week[week], distance, per_solve)
            sheets.append(DaySheet(week + 1, weekday, tuple(keys[n] for n in order)))
    sheets.sort(key=lambda s: (s.week, s.weekday))
    elapsed = time.monotonic() - started
    long_days = [s for s in sheets if day_minutes(problem, s.customer_ids) > rules.working_minutes]
    if long_days:
        worst = max(long_days, key=lambda s: day_minutes(problem, s.customer_ids))
        return SolverResult(
            "infeasible",
            (),
            f"week {worst.week} weekday {worst.weekday} would take {day_minutes(problem, worst.customer_ids):.0f}"
            f" minutes, more than the {rules.working_minutes} of a working day",
            elapsed,
        )
    node_of = {key: node for node, key in enumerate(keys)}
    total = 0
    for sheet in sheets:
        stops = [0, *(node_of[c] for c in sheet.customer_ids), 0]
        total += sum(distance[a][b] for a, b in itertools.pairwise(stops))
    return SolverResult("solved", tuple(sheets), None, elapsed, total)


# -- the child process ------------------------------------------------------------------------


def problem_to_json(problem: PlanningProblem) -> dict[str, Any]:
    r = problem.rules
    return {
        "rep_id": problem.rep_id,
        "start": [problem.start.latitude, problem.start.longitude],
        "outlets": [[o.customer_id, o.grade, o.position.latitude, o.position.longitude] for o in problem.outlets],
        "rules": {
            "frequency_weeks": dict(r.frequency_weeks),
            "visit_minutes": r.visit_minutes,
            "day_start_minute": r.day_start_minute,
            "day_end_minute": r.day_end_minute,
            "workdays": list(r.workdays),
            "speed_kmh": r.speed_kmh,
            "time_limit_seconds": r.time_limit_seconds,
        },
        "matrix": None if problem.matrix is None else {a: dict(row) for a, row in problem.matrix.items()},
    }


def problem_from_json(doc: dict[str, Any]) -> PlanningProblem:
    r = doc["rules"]
    return PlanningProblem(
        rep_id=doc["rep_id"],
        start=Point(*doc["start"]),
        outlets=tuple(Outlet(cid, grade, Point(lat, lon)) for cid, grade, lat, lon in doc["outlets"]),
        rules=PlanningRules(
            frequency_weeks=r["frequency_weeks"],
            visit_minutes=r["visit_minutes"],
            day_start_minute=r["day_start_minute"],
            day_end_minute=r["day_end_minute"],
            workdays=tuple(r["workdays"]),
            speed_kmh=r["speed_kmh"],
            time_limit_seconds=r["time_limit_seconds"],
        ),
        matrix=doc["matrix"],
    )


def result_to_json(result: SolverResult) -> dict[str, Any]:
    return {
        "status": result.status,
        "sheets": [[s.week, s.weekday, list(s.customer_ids)] for s in result.sheets],
        "reason": result.reason,
        "seconds": result.seconds,
        "distance_m": result.distance_m,
    }


def result_from_json(doc: dict[str, Any]) -> SolverResult:
    return SolverResult(
        doc["status"],
        tuple(DaySheet(w, d, tuple(ids)) for w, d, ids in doc["sheets"]),
        doc["reason"],
        doc["seconds"],
        doc["distance_m"],
    )


async def solve_in_subprocess(problem: PlanningProblem) -> SolverResult:
    """Solve in a child process, off the service's event loop; a child that outlives the time
    limit by more than the grace period is killed and the plan reported as failed."""
    started = time.monotonic()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(
            child.communicate(json.dumps(problem_to_json(problem)).encode()),
            timeout=problem.rules.time_limit_seconds + GRACE_SECONDS,
        )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        return SolverResult("failed", (), "the planner did not finish in time", time.monotonic() - started)
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    if child.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return SolverResult("failed", (), f"the planner stopped: {tail[0]}", time.monotonic() - started)
    return result_from_json(json.loads(out))


def main() -> None:
    problem = problem_from_json(json.load(sys.stdin))
    json.dump(result_to_json(solve(problem)), sys.stdout)


if __name__ == "__main__":
    main()
