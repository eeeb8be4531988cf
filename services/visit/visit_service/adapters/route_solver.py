"""The route planner: Google OR-Tools' vehicle routing solver over one cycle of weeks.

OR-Tools' routing library is the standard open solver for vehicle routing with time limits
and side constraints, installs as a wheel for this Python, and its search is deterministic for
a fixed strategy: the same problem gives the same plan. Each working day of the cycle is a
vehicle leaving the start point and coming back to it; an outlet visited every f weeks in a
cycle of N weeks is N/f nodes, the first on a day of the first f weeks, each next one on the
same weekday exactly f weeks later (a constraint on the nodes' vehicles); a day's travel at
the planning speed plus the standard visit duration per outlet fits the working hours (a time
dimension); the cost is the distance travelled. The first solution comes from local cheapest
insertion (which keeps the linked visits together), then local search descends to the nearest
optimum, within the time limit.

The solver holds the interpreter's lock while it calls back and runs for seconds, so the
service runs it in a child process (`solve_in_subprocess`: JSON in on stdin, out on stdout),
which is killed if it outlives its time limit by more than a grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
from dataclasses import dataclass
from typing import Any

from visit_service.domain.geo import Point
from visit_service.domain.route_planning import START, DaySheet, Outlet, PlanningProblem, PlanningRules

STRATEGY = "LOCAL_CHEAPEST_INSERTION"
METAHEURISTIC = "GREEDY_DESCENT"
GRACE_SECONDS = 20.0  # starting the child and loading the solver


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


def solve(problem: PlanningProblem) -> SolverResult:
    """Plan the rep's cycle (in this process)."""
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    started = time.monotonic()
    rules = problem.rules
    outlets = sorted(problem.outlets, key=lambda o: o.customer_id)
    if not outlets:
        return SolverResult("solved", (), None, 0.0, 0)
    cycle = problem.cycle_weeks
    workdays = sorted(rules.workdays)
    days_per_week = len(workdays)
    vehicles = cycle * days_per_week
    working_s = rules.working_minutes * 60
    visit_s = rules.visit_minutes * 60

    # Nodes: 0 is the start point, then one node per visit of an outlet in the cycle.
    keys = [START]
    owner: list[int] = [-1]
    copy_of: list[int] = [0]
    for i, outlet in enumerate(outlets):
        for k in range(cycle // rules.weeks_for(outlet.grade)):
            keys.append(outlet.customer_id)
            owner.append(i)
            copy_of.append(k)
    needed_s = visit_s * (len(keys) - 1)
    if needed_s > working_s * vehicles:
        return SolverResult(
            "infeasible",
            (),
            f"{len(keys) - 1} visits of {rules.visit_minutes} minutes do not fit {vehicles} working days of"
            f" {rules.working_minutes} minutes",
            time.monotonic() - started,
        )
    metres_per_second = rules.speed_kmh * 1000 / 3600
    distance = [[round(problem.distance_m(a, b)) for b in keys] for a in keys]
    travel = [
        [math.ceil(distance[a][b] / metres_per_second) + (visit_s if a else 0) for b in range(len(keys))]
        for a in range(len(keys))
    ]

    manager = pywrapcp.RoutingIndexManager(len(keys), vehicles, 0)
    model = pywrapcp.RoutingModel(manager)
    arc_cost = model.RegisterTransitMatrix(distance)
    model.SetArcCostEvaluatorOfAllVehicles(arc_cost)
    model.AddDimension(model.RegisterTransitMatrix(travel), 0, working_s, True, "time")
    solver = model.solver()
    first_node: dict[int, int] = {}
    for node in range(1, len(keys)):
        first_node.setdefault(owner[node], node)
    for node in range(1, len(keys)):
        weeks = rules.weeks_for(outlets[owner[node]].grade)
        index = manager.NodeToIndex(node)
        if copy_of[node] == 0:
            # The first visit falls in the first `weeks` weeks of the cycle.
            solver.Add(model.VehicleVar(index) < weeks * days_per_week)
        else:
            first = manager.NodeToIndex(first_node[owner[node]])
            solver.Add(model.VehicleVar(index) == model.VehicleVar(first) + copy_of[node] * weeks * days_per_week)

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = getattr(routing_enums_pb2.FirstSolutionStrategy, STRATEGY)
    params.local_search_metaheuristic = getattr(routing_enums_pb2.LocalSearchMetaheuristic, METAHEURISTIC)
    whole, fraction = divmod(rules.time_limit_seconds, 1)
    params.time_limit.seconds = int(whole)
    params.time_limit.nanos = int(fraction * 1e9)
    solution = model.SolveWithParameters(params)
    elapsed = time.monotonic() - started
    if solution is None:
        return SolverResult(
            "infeasible",
            (),
            "no plan keeps every outlet's frequency within the working hours (found none within the time limit)",
            elapsed,
        )
    sheets = []
    for vehicle in range(vehicles):
        stops: list[str] = []
        index = model.Start(vehicle)
        while not model.IsEnd(index):
            node = manager.IndexToNode(index)
            if node:
                stops.append(keys[node])
            index = solution.Value(model.NextVar(index))
        week, day = divmod(vehicle, days_per_week)
        sheets.append(DaySheet(week + 1, workdays[day], tuple(stops)))
    return SolverResult("solved", tuple(sheets), None, elapsed, int(solution.ObjectiveValue()))


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
