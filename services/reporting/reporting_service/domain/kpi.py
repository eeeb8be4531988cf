"""Goals of the sales department and how a figure is judged against them. Pure.

The numbers come from the procedures: visits 100% as planned (按计划拜访), success ≥ 85%
(拜访成功率), 100% suggested orders (建议订单), required SKUs and the success picture in every
outlet (必备SKU, 成功图象), no cooler misuse, delivery within 24 hours, complaints answered
within 48 hours, satisfaction 95% / 97% / 98% in the first / second / third year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal


@dataclass(frozen=True)
class Goal:
    target: float
    direction: Literal["at_least", "at_most"] = "at_least"

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        # Rates are exact fractions; compare with a hair of slack for float rounding.
        if self.direction == "at_least":
            return value >= self.target - 1e-9
        return value <= self.target + 1e-9


GOALS: dict[str, Goal] = {
    "planned_visit_completion": Goal(1.0),
    "visit_success": Goal(0.85),
    "suggested_order_adoption": Goal(1.0),
    "required_sku_distribution": Goal(1.0),
    "price_tag_compliance": Goal(1.0),
    "display_compliance": Goal(1.0),
    "cooler_compliance": Goal(1.0),
    "cooler_misuse": Goal(0.0, "at_most"),
    "check_in_verification": Goal(1.0),
    "on_time_delivery": Goal(1.0),
    "complaint_ack_48h": Goal(1.0),
    "target_achievement": Goal(1.0),
}

# Satisfaction goals by year of the survey programme (counted from the first survey).
SATISFACTION_GOALS = (0.95, 0.97, 0.98)

DEFAULT_DORMANT_DAYS = 60

# Receivables ageing: (bucket, first and last day past due; None = open-ended). An invoice due
# today is 0 days past due and not overdue yet (salesplatform.dues, the orders service's rule too).
AGEING: tuple[tuple[str, int | None, int | None], ...] = (
    ("not_due", None, 0),
    ("d1_30", 1, 30),
    ("d31_60", 31, 60),
    ("d61_90", 61, 90),
    ("d90_plus", 91, None),
)


def rate(numerator: int, denominator: int) -> float | None:
    if denominator <= 0:
        return None
    return round(numerator / denominator, 4)


def measure(kpi: str, numerator: int, denominator: int) -> dict[str, Any]:
    """A figure with what it was computed from and how it stands against its goal."""
    goal = GOALS[kpi]
    value = rate(numerator, denominator)
    return {
        "value": value,
        "numerator": numerator,
        "denominator": denominator,
        "goal": goal.target,
        "met": goal.met(value),
    }


_PERIOD = re.compile(r"^([0-9]{4})H([12])$")


def parse_half_year(period: str) -> tuple[int, int]:
    m = _PERIOD.match(period)
    if not m:
        raise ValueError(f"not a half-year period: {period!r}")
    return int(m.group(1)), int(m.group(2))


def satisfaction_goal(period: str, first_period: str) -> float:
    """95% in the programme's first year (its first two half-years), 97% in the second, 98% on."""
    y, h = parse_half_year(period)
    y0, h0 = parse_half_year(first_period)
    halves = (y - y0) * 2 + (h - h0)
    year = max(halves, 0) // 2
    return SATISFACTION_GOALS[min(year, len(SATISFACTION_GOALS) - 1)]


def ageing_bucket(days_past_due: int) -> str:
    """Days past the due date → bucket; 0 (due today) or less means not overdue yet."""
    for name, first, last in AGEING:
        if (first is None or days_past_due >= first) and (last is None or days_past_due <= last):
            return name
    raise AssertionError("the buckets cover every day")


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of a YYYY-MM month."""
    y, m = int(month[:4]), int(month[5:7])
    first = date(y, m, 1)
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return first, date.fromordinal(nxt.toordinal() - 1)
