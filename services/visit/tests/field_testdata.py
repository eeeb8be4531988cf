"""Test data of field execution: a rep's 40 outlets of mixed grades around a depot in
Shanghai, and the routes the rep drew by hand (each outlet at its grade's frequency)."""

from __future__ import annotations

import random

from visit_service.domain.geo import Point
from visit_service.domain.route_planning import DaySheet, Outlet

DEPOT = Point(31.2304, 121.4737)
GRADES = "A" * 10 + "B" * 14 + "C" * 16


def outlets() -> tuple[Outlet, ...]:
    rng = random.Random(23)
    return tuple(
        Outlet(
            f"o{i:02d}",
            grade,
            Point(
                round(DEPOT.latitude + rng.uniform(-0.04, 0.04), 6),
                round(DEPOT.longitude + rng.uniform(-0.05, 0.05), 6),
            ),
        )
        for i, grade in enumerate(GRADES)
    )


def hand_made_sheets() -> list[DaySheet]:
    """The rep's own routes over four weeks, Monday to Friday: the district cut into five
    strips from west to east, one per weekday, each walked from north to south; B outlets in
    weeks 1 and 3 or 2 and 4, C outlets in one week each, by customer number."""
    by_longitude = sorted(outlets(), key=lambda o: o.position.longitude)
    strips = [by_longitude[i * 8 : (i + 1) * 8] for i in range(5)]
    sheets = []
    for week in range(1, 5):
        for weekday, strip in enumerate(strips, start=1):
            day = []
            for o in sorted(strip, key=lambda o: -o.position.latitude):
                n = int(o.customer_id[1:])
                if (
                    o.grade == "A"
                    or (o.grade == "B" and (n % 2) == (week - 1) % 2)
                    or (o.grade == "C" and n % 4 == week - 1)
                ):
                    day.append(o.customer_id)
            sheets.append(DaySheet(week, weekday, tuple(day)))
    return sheets
