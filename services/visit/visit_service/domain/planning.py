"""The day plan from routes, and the ids that make planning idempotent.

A visit's id is derived from rep, customer and business date (uuid5), so the planning timer can
run any number of times and a visit is planned once; an unplanned visit for a customer already
on that day's plan lands on the same id and is refused. The order handed over to the orders
service gets an id derived from the visit, so a retried order step names the same order.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from salesplatform.ids import uuid5

_VISIT_IDS = uuid.UUID("6f1d1c8e-2f0a-4a43-8d8e-1f1f4b8c9a10")
_ORDER_IDS = uuid.UUID("9a0f8f3c-7b65-4a5e-b1d2-6c3e2a9d4f20")


def visit_id_for(rep_id: str, customer_id: str, business_date: date) -> str:
    return str(uuid5(_VISIT_IDS, f"{rep_id}:{customer_id}:{business_date.isoformat()}"))


def order_id_for(visit_id: str) -> str:
    return str(uuid5(_ORDER_IDS, visit_id))


# Weeks are counted from this Monday, so a route that runs every N weeks runs in the weeks whose
# number modulo N is its offset, whatever the year.
_FIRST_MONDAY = date(2024, 1, 1)


def week_number(day: date) -> int:
    """Weeks since the first counted Monday (the week `day` lies in)."""
    return (day - _FIRST_MONDAY).days // 7


def cycle_offset_for(first_week_day: date, week: int, cycle_weeks: int) -> int:
    """The offset of a route that runs in week `week` (1-based) of a cycle whose first week is
    the one `first_week_day` lies in."""
    return (week_number(first_week_day) + week - 1) % cycle_weeks


@dataclass(frozen=True)
class RouteSheet:
    route_id: str
    name: str
    weekdays: tuple[int, ...]
    customer_ids: tuple[str, ...]
    # Runs every `cycle_weeks` weeks, in the weeks whose number modulo that is `cycle_offset`.
    cycle_weeks: int = 1
    cycle_offset: int = 0

    def runs_on(self, day: date) -> bool:
        return day.isoweekday() in self.weekdays and week_number(day) % self.cycle_weeks == self.cycle_offset


@dataclass(frozen=True)
class PlannedStop:
    route_id: str
    customer_id: str
    sequence: int


def stops_for(routes: Iterable[RouteSheet], day: date) -> list[PlannedStop]:
    """The day's stops in route order: routes running that day (its weekday, and its week of
    the route's cycle) by name (then id), each in its own customer order; a customer on two of
    the day's routes is visited once, at its first place."""
    stops: list[PlannedStop] = []
    seen: set[str] = set()
    for route in sorted(routes, key=lambda r: (r.name, r.route_id)):
        if not route.runs_on(day):
            continue
        for customer_id in route.customer_ids:
            if customer_id in seen:
                continue
            seen.add(customer_id)
            stops.append(PlannedStop(route.route_id, customer_id, len(stops) + 1))
    return stops
