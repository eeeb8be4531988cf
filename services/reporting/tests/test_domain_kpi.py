"""Goals and how figures are judged against them: pure, no I/O."""

from __future__ import annotations

from datetime import date

import pytest

from reporting_service.domain.kpi import (
    ageing_bucket,
    measure,
    month_bounds,
    rate,
    satisfaction_goal,
)

pytestmark = pytest.mark.fast


def test_a_rate_is_none_without_a_denominator() -> None:
    assert rate(0, 0) is None
    assert rate(3, 4) == 0.75


def test_visit_success_meets_its_goal_at_85_percent() -> None:
    assert measure("visit_success", 17, 20)["met"] is True
    assert measure("visit_success", 16, 20)["met"] is False
    assert measure("visit_success", 0, 0) == {
        "value": None,
        "numerator": 0,
        "denominator": 0,
        "goal": 0.85,
        "met": None,
    }


def test_completion_goals_are_100_percent_and_misuse_zero() -> None:
    assert measure("planned_visit_completion", 10, 10)["met"] is True
    assert measure("planned_visit_completion", 9, 10)["met"] is False
    assert measure("cooler_misuse", 0, 5)["met"] is True
    assert measure("cooler_misuse", 1, 5)["met"] is False


@pytest.mark.parametrize(
    ("period", "goal"),
    [("2025H1", 0.95), ("2025H2", 0.95), ("2026H1", 0.97), ("2026H2", 0.97), ("2027H1", 0.98), ("2030H2", 0.98)],
)
def test_satisfaction_goal_rises_with_the_years_since_the_first_survey(period: str, goal: float) -> None:
    assert satisfaction_goal(period, "2025H1") == goal


def test_satisfaction_years_count_from_a_second_half_start() -> None:
    assert satisfaction_goal("2026H1", "2025H2") == 0.95
    assert satisfaction_goal("2026H2", "2025H2") == 0.97


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (-5, "not_due"),
        (0, "not_due"),  # due today: not overdue yet
        (1, "d1_30"),
        (30, "d1_30"),
        (31, "d31_60"),
        (60, "d31_60"),
        (61, "d61_90"),
        (90, "d61_90"),
        (91, "d90_plus"),
    ],
)
def test_ageing_buckets(days: int, bucket: str) -> None:
    assert ageing_bucket(days) == bucket


def test_month_bounds() -> None:
    assert month_bounds("2026-02") == (date(2026, 2, 1), date(2026, 2, 28))
    assert month_bounds("2026-12") == (date(2026, 12, 1), date(2026, 12, 31))
